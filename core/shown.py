"""Numbers shown beside the limit they are judged against: with as many decimals as it takes
for the shown number to sit on the same side of the limit as the number itself, so a text
never reads "P = 0.95 ... neither >= 0.95" (0.9485) or "R-hat 1.010 > 1.01" (1.0104)."""

from __future__ import annotations

import math
import operator

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def beside(
    x: float | None,
    limit: float,
    op: str = ">=",
    digits: int = 2,
    most: int = 4,
    slack: float = 0.0,
) -> str:
    """`x` with `digits` decimals, or up to `most` when fewer would put it on the other side of
    `limit` under `op` ("-" for None or NaN). `slack` lets an `x` that misses the limit by a
    hair count as meeting it (a probability is a mean of booleans: 0.95 may be 0.9499999)."""
    if x is None or not math.isfinite(x):
        return "-"
    holds = _OPS[op]
    nudged = x + slack if op in (">=", ">") else x - slack
    truth = holds(nudged, limit)
    for d in range(digits, most + 1):
        if holds(round(x, d), limit) == truth:
            return f"{x:.{d}f}"
    # still on the wrong side at `most` decimals: cut away from the limit, on x's side of it
    scale = 10**most
    cut = math.ceil(x * scale) if x > limit else math.floor(x * scale)
    return f"{cut / scale:.{most}f}"


def probability_text(p: float | None, threshold: float) -> str:
    """A probability beside the threshold a verdict compares it with (>=): never `0.95` beside
    "undecided" at 0.95 (`0.9496`, or `0.949` for 0.9485)."""
    return beside(p, threshold, ">=", 2, 4, slack=1e-9)
