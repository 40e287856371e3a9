"""How a large dataset's sample is allocated over judge levels (core/importing/keep_sample.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from changeover.core.importing.keep_sample import allocate


def test_levels_share_the_sample_evenly_where_they_can():
    assert allocate(200, [9_000, 1_000]) == [100, 100]
    assert allocate(200, [9_000, 30]) == [170, 30]  # a rare level gives all it has
    assert allocate(201, [500, 500, 500]) == [67, 67, 67]
    assert allocate(202, [500, 500, 500]) == [68, 67, 67]
    assert allocate(10, [3, 0, 4]) == [3, 0, 4]  # fewer responses than asked: all of them
    assert allocate(0, [5, 5]) == [0, 0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=6), st.integers(0, 600))
def test_allocation_fills_up_to_n_and_only_grows(sizes, n):
    out = allocate(n, sizes)
    assert sum(out) == min(n, sum(sizes))
    assert all(0 <= k <= s for k, s in zip(out, sizes))
    more = allocate(n + 1, sizes)  # a larger sample keeps everything a smaller one kept
    assert all(b >= a for a, b in zip(out, more))
    # as even as the sizes allow: a stratum below another's share is full
    for k, s in zip(out, sizes):
        assert k == s or k >= max(out) - 1
