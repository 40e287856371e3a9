"""Which responses of a large dataset the workspace keeps: a seeded sample of N per (model,
region), stratified by one metric's judge level.

Each response gets a pseudo-random key, a seeded hash of (item_id, model) that knows nothing of
the text, the verdicts or any label. Inside a stratum (model, region, judge level) the sample is
the responses with the smallest keys: a simple random sample of that stratum. How many each
stratum gets depends only on the strata's sizes (`allocate`), so whether a response is kept is a
function of its cell, its judge level and chance alone; the queue then picks among the kept
responses at random given cell and judge level, which keeps the calibration model's assumption.

A larger N keeps everything a smaller N kept (`allocate` only grows, and a stratum's smallest
keys are a prefix of its larger smallest keys), so drawing more never drops a labelled response.
"""

from __future__ import annotations

from collections.abc import Sequence


def allocate(n: int, sizes: Sequence[int]) -> list[int]:
    """Split `n` over strata of the given sizes as evenly as they allow (water-filling): every
    stratum gets min(size, t) or t + 1, the +1s going to the first strata that have room.

    Balanced strata label every judge level alike, however rare, which is what the confusion
    estimates need. The result only grows with `n` (stratum by stratum), so samples nest."""
    if n <= 0 or not sizes:
        return [0] * len(sizes)
    if n >= sum(sizes):
        return list(sizes)
    lo, hi = 0, max(sizes)  # largest t with sum(min(size, t)) <= n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(s, mid) for s in sizes) <= n:
            lo = mid
        else:
            hi = mid - 1
    out = [min(s, lo) for s in sizes]
    extra = n - sum(out)
    for i, s in enumerate(sizes):
        if extra == 0:
            break
        if s > lo:
            out[i] += 1
            extra -= 1
    return out
