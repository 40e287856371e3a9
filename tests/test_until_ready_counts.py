"""What bench/until_ready.py counts over its sessions (issue 22's "label until ready"): the
false-ready share's interval and where the false readies came from. No sampling, no sessions."""

import sys
from pathlib import Path

import pytest
from scipy.stats import binom

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import until_ready


@pytest.mark.parametrize(("hits", "runs"), [(9, 200), (12, 200), (1, 40), (40, 40)])
def test_the_interval_is_clopper_pearson(hits, runs):
    lo, hi = until_ready.binomial_interval(hits, runs)
    # each end is the rate at which the count seen is exactly 2.5% in its tail
    if hits < runs:
        assert binom.cdf(hits, runs, hi) == pytest.approx(0.025, abs=1e-9)
    else:
        assert hi == 1.0
    if hits > 0:
        assert binom.sf(hits - 1, runs, lo) == pytest.approx(0.025, abs=1e-9)
    assert 0.0 <= lo < hits / runs <= hi <= 1.0 or hits == runs


def test_no_false_ready_leaves_the_lower_end_at_zero():
    lo, hi = until_ready.binomial_interval(0, 200)
    assert lo == 0.0 and binom.cdf(0, 200, hi) == pytest.approx(0.025)


def test_false_readies_are_told_apart_by_their_worlds_own_delta():
    run = until_ready.Run
    runs = [
        run(margin_ready=True, population_delta=0.09),  # its responses clear the margin
        run(margin_ready=True, population_delta=-0.02),
        run(cand_ready=True, population_delta=0.05),
        run(population_delta=0.10),
        run(population_delta=-0.05),
        run(margin_ready=True),  # kept before the delta was recorded: not counted
    ]
    p = until_ready.population(runs)
    assert p["clear"] == pytest.approx(1.645 * (2 * 0.7 * 0.3 / 200) ** 0.5)
    assert p["known"] == 5 and p["above"] == 3 and p["false"] == 3 and p["false_above"] == 2
    assert p["false_deltas"] == [-0.02, 0.05, 0.09]
    shares = until_ready.summary(runs)
    assert shares["either"] == pytest.approx(4 / 6)
    assert shares["interval"] == until_ready.binomial_interval(4, 6)


def test_the_replayed_bars_are_the_rules_own_by_default():
    from changeover.core.decide.cell_checks import threshold_at

    bars = until_ready.Bars("as it is")
    for nc, ni in [(10, 10), (10, 11), (14, 10), (20, 20), (18, 15), (40, 40), (14, 39), (400, 9)]:
        for pooled in (True, False):
            assert bars.at(0.95, nc, ni, pooled) == pytest.approx(
                threshold_at(0.95, nc, ni, pooled=pooled)
            )
    assert until_ready.Bars("x", growth=2.0).at(0.95, 20, 20, False) == pytest.approx(1 - 0.05 / 4)


def test_a_replay_finds_the_first_look_past_the_bars():
    # looks: below the minimum, an instant posterior at the minimum, then the fit's looks
    looks = [
        [230, 0.99, None, 9, 10, "undecided"],  # 9 labels: never decided
        [240, 0.94, None, 10, 10, "undecided"],  # instant, under 0.95
        [250, 0.9745, 0.97, 10, 10, "undecided"],  # pooled under 0.975
        [260, 0.9765, 0.97, 10, 11, "ready"],  # both past their bars at n = 10.48
    ]
    run = until_ready.Run(margin_trace=looks)
    assert until_ready.replay(run, until_ready.Bars("as it is")) == 260
    assert until_ready.replay(run, until_ready.Bars("own 0.97", own=0.6)) is None
    assert until_ready.replay(run, until_ready.Bars("pooled 0.35", pooled=0.35)) is None
    instant = until_ready.Run(margin_trace=[[230, 0.955, None, 10, 10, "ready"]])
    assert until_ready.replay(instant, until_ready.Bars("as it is")) == 230
    assert until_ready.replayed([run, instant])["the rule as it is"] == 2
    assert until_ready.replayed([run, until_ready.Run()]) is None  # a run without looks kept
