"""Decisions on hand-made draws: each direction, the threshold edge, joint probability,
the minimum-labels rule and the labels-needed forecast."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from changeover.core.decide.rule import DecisionRule
from changeover.core.decide.verdicts import (
    Comparison,
    decide,
    decide_all,
    decide_candidate,
    forecast_labels,
    labels_to_minimum,
)
from changeover.core.model.posterior import CellFlags, Posterior
from changeover.core.types import Verdict


def normal(mu, sd, n=4000, seed=0):
    return np.random.default_rng(seed).normal(mu, sd, n)


@pytest.mark.parametrize(
    "direction,mu,verdict",
    [
        ("higher", 0.0, Verdict.READY),
        ("higher", -0.10, Verdict.NOT_READY),
        ("higher", -0.03, Verdict.UNDECIDED),
        ("lower", 0.0, Verdict.READY),
        ("lower", 0.10, Verdict.NOT_READY),
        ("lower", 0.03, Verdict.UNDECIDED),
        ("match", 0.0, Verdict.READY),
        ("match", 0.10, Verdict.NOT_READY),
        ("match", -0.10, Verdict.NOT_READY),
        ("match", 0.03, Verdict.UNDECIDED),
    ],
)
def test_each_direction(direction, mu, verdict):
    d = decide(normal(mu, 0.01), direction, 0.03)
    assert d.verdict == verdict
    assert d.reason


def test_probability_is_non_inferiority():
    draws = normal(0.0, 0.02)
    assert decide(draws, "higher", 0.03).probability == pytest.approx(np.mean(draws > -0.03))
    assert decide(draws, "lower", 0.03).probability == pytest.approx(np.mean(draws < 0.03))
    assert decide(draws, "match", 0.03).probability == pytest.approx(np.mean(np.abs(draws) <= 0.03))


def test_reason_reads_like_the_design():
    draws = np.array([0.1] * 98 + [-0.1] * 2)
    d = decide(draws, "higher", 0.03, 0.95)
    assert d.reason == "P(delta > -0.03) = 0.98 >= 0.95"


def test_edge_at_threshold():
    draws = np.array([0.0] * 95 + [-1.0] * 5)  # P(delta > -d) is exactly 0.95
    assert decide(draws, "higher", 0.03, 0.95).verdict == Verdict.READY
    assert decide(draws, "higher", 0.03, 0.951).verdict == Verdict.UNDECIDED
    draws = np.array([-1.0] * 95 + [0.0] * 5)
    assert decide(draws, "higher", 0.03, 0.95).verdict == Verdict.NOT_READY


def test_threshold_is_an_argument():
    draws = normal(0.0, 0.02)  # P(delta > -0.03) ~ 0.93
    assert decide(draws, "higher", 0.03, 0.95).verdict == Verdict.UNDECIDED
    assert decide(draws, "higher", 0.03, 0.90).verdict == Verdict.READY


def test_unknown_direction():
    with pytest.raises(ValueError):
        decide(normal(0, 1), "sideways", 0.1)


def make_posterior(
    q, metric="correct", labels=None, regions=("eu", "us"), models=("inc", "a", "b")
):
    """q: [S, M, R] rate of yes."""
    q = np.clip(np.asarray(q, float), 0, 1)
    p = np.stack([1 - q, q], axis=-1)
    S, M, R = q.shape
    conf = np.broadcast_to(np.array([[0.9, 0.1], [0.2, 0.8]]), (S, M, R, 2, 2)).copy()
    flags = CellFlags.from_dict({} if labels is None else {"cell_labels": labels})
    return Posterior(
        metric, ("no", "yes"), models, regions, np.full(R, 1 / R), p, conf, flags=flags
    )


def cells(S, means, sds, seed=1):
    rng = np.random.default_rng(seed)
    means, sds = np.asarray(means, float), np.asarray(sds, float)
    return means + sds * rng.standard_normal((S,) + means.shape)


def test_candidate_ready_only_if_every_cell_ready():
    S = 4000
    q = cells(S, [[0.80, 0.80], [0.82, 0.82], [0.82, 0.70]], [[0.01, 0.01]] * 3)
    post = make_posterior(q, labels=[[50, 50]] * 3)
    specs = {"correct": ("higher", 0.03)}
    a = decide_candidate([post], specs, "a", "inc")
    b = decide_candidate([post], specs, "b", "inc")
    assert a.verdict == Verdict.READY and len(a.cells) == 2
    assert b.verdict == Verdict.NOT_READY and "correct/us" in b.reason
    assert [c.decision.verdict for c in b.cells] == [Verdict.READY, Verdict.NOT_READY]
    assert [d.candidate for d in decide_all([post], specs, "inc")] == ["a", "b"]
    # the summary is the reason without the joint probability (the app shows that apart)
    for d in (a, b):
        assert d.reason == f"{d.summary}; P(all hold) = {d.joint_probability:.2f}"
        assert "P(all" not in d.summary


def test_joint_probability_uses_the_same_draws():
    # Two cells, each condition holds in exactly half the draws; the joint depends on how
    # the draws line up: the same half (0.5) or complementary halves (0).
    S = 1000
    half = np.r_[np.full(S // 2, 0.9), np.full(S // 2, 0.5)]
    for other, expected in ((half, 0.5), (half[::-1], 0.0)):
        q = np.zeros((S, 2, 2))
        q[:, 0, :] = 0.7
        q[:, 1, 0], q[:, 1, 1] = half, other
        post = make_posterior(q, labels=[[40, 40], [40, 40]], models=("inc", "a"))
        d = decide_candidate([post], {"correct": ("higher", 0.03)}, "a", "inc")
        assert d.joint_probability == pytest.approx(expected)
        manual = np.mean((q[:, 1, 0] - q[:, 0, 0] > -0.03) & (q[:, 1, 1] - q[:, 0, 1] > -0.03))
        assert d.joint_probability == pytest.approx(manual)


def test_joint_probability_across_metrics():
    S = 4000
    q1 = cells(S, [[0.8, 0.8], [0.8, 0.8]], [[0.01] * 2] * 2, seed=2)
    q2 = cells(S, [[0.1, 0.1], [0.1, 0.1]], [[0.01] * 2] * 2, seed=3)
    p1 = make_posterior(q1, "correct", [[40, 40]] * 2, models=("inc", "a"))
    p2 = make_posterior(q2, "refused", [[40, 40]] * 2, models=("inc", "a"))
    specs = {"correct": ("higher", 0.02), "refused": ("match", 0.02)}
    d = decide_candidate([p1, p2], specs, "a", "inc")
    conds = [q1[:, 1, r] - q1[:, 0, r] > -0.02 for r in range(2)]
    conds += [np.abs(q2[:, 1, r] - q2[:, 0, r]) <= 0.02 for r in range(2)]
    assert d.joint_probability == pytest.approx(np.mean(np.logical_and.reduce(conds)))
    assert d.joint_probability <= min(c.decision.probability for c in d.cells) + 1e-12
    assert len(d.cells) == 4


def test_min_labels_rule_blocks_ready():
    S = 4000
    q = cells(S, [[0.8, 0.8], [0.85, 0.85]], [[0.01] * 2] * 2)
    specs = {"correct": ("higher", 0.03)}
    few = make_posterior(q, labels=[[40, 40], [10, 12]], models=("inc", "a"))
    d = decide_candidate([few], specs, "a", "inc", DecisionRule(min_labels=30))
    assert all(c.decision.verdict == Verdict.READY for c in d.cells)
    assert d.verdict == Verdict.UNDECIDED
    assert "only 22 human labels on correct (minimum 30)" in d.reason
    assert labels_to_minimum(d, 30) == {"correct": 8}
    assert (
        decide_candidate([few], specs, "a", "inc", DecisionRule(min_labels=20)).verdict
        == Verdict.READY
    )
    unknown = make_posterior(q, labels=None, models=("inc", "a"))
    d = decide_candidate([unknown], specs, "a", "inc")
    assert d.verdict == Verdict.UNDECIDED and "unknown" in d.reason


def test_the_overall_row_says_ready_only_where_the_candidate_could_be():
    """The traffic-weighted overall passes the candidate's checks: with too few labels on the
    metric it is undecided as the candidate is (it said "ready" beside an undecided region of a
    one-region eval set); with enough it follows the pooled posterior."""
    S = 4000
    q = cells(S, [[0.8, 0.8], [0.85, 0.85]], [[0.01] * 2] * 2)
    specs = {"correct": ("higher", 0.03)}
    few = make_posterior(q, labels=[[40, 40], [10, 12]], models=("inc", "a"))
    d = decide_candidate([few], specs, "a", "inc", DecisionRule(min_labels=30))
    (overall,) = d.overall
    assert overall.region == "overall" and overall.decision.verdict == Verdict.UNDECIDED
    assert "only 22 human labels on correct (minimum 30)" in overall.decision.reason
    d = decide_candidate([few], specs, "a", "inc", DecisionRule(min_labels=20))
    assert d.overall[0].decision.verdict == Verdict.READY
    worse = make_posterior(
        cells(S, [[0.8, 0.8], [0.6, 0.6]], [[0.01] * 2] * 2), labels=[[40, 40]] * 2,
        models=("inc", "a"),
    )  # fmt: skip
    assert (
        decide_candidate([worse], specs, "a", "inc").overall[0].decision.verdict
        == Verdict.NOT_READY
    )


def test_unlabelled_cells_are_flagged():
    q = cells(1000, [[0.8, 0.8], [0.85, 0.85]], [[0.01] * 2] * 2)
    post = make_posterior(q, labels=[[40, 40], [0, 60]], models=("inc", "a"))
    d = decide_candidate([post], {"correct": ("higher", 0.03)}, "a", "inc")
    assert [c.unlabelled for c in d.cells] == [True, False]


def test_forecast_only_for_undecided_cells():
    S = 4000
    q = cells(S, [[0.80, 0.80], [0.80, 0.78]], [[0.02, 0.005], [0.02, 0.005]])
    post = make_posterior(q, labels=[[20, 200], [20, 200]], models=("inc", "a"))
    d = decide_candidate([post], {"correct": ("higher", 0.03)}, "a", "inc")
    eu, us = d.cells
    assert eu.decision.verdict == Verdict.UNDECIDED and eu.forecast is not None
    assert not eu.forecast.capped and eu.forecast.total > 0
    assert us.forecast is None or us.decision.verdict == Verdict.UNDECIDED
    assert d.forecasts and "labels" in d.forecasts[0].text


def forecast_total(
    mu, sd_c=0.02, sd_i=0.02, threshold=0.95, nc=20, ni=20, direction="higher", max_labels=2000
):
    rng = np.random.default_rng(5)
    qi = 0.8 + sd_i * rng.standard_normal(4000)
    qc = 0.8 + mu + sd_c * rng.standard_normal(4000)
    return forecast_labels(Comparison(qc, qi, direction, 0.03, threshold, nc, ni), max_labels)


def test_forecast_is_monotone_and_sane():
    # Further from the margin -> fewer labels; a stricter threshold -> more labels.
    totals = [forecast_total(mu).total for mu in (0.015, 0.01, 0.0, -0.01)]
    assert 0 < totals[0] < totals[1] < totals[2] < totals[3]
    assert forecast_total(0.05).total == 0  # already settled
    assert forecast_total(0.0, threshold=0.90).total <= forecast_total(0.0, threshold=0.99).total
    # Labels go where the uncertainty is: the noisier cell gets most of them.
    f = forecast_total(0.0, sd_c=0.04, sd_i=0.005, nc=20, ni=20)
    assert f.candidate_labels > f.incumbent_labels
    # Check the projection by hand: the variance after the forecast's labels should settle it
    # and one label fewer overall should not (with the best split).
    rng = np.random.default_rng(5)
    qi = 0.8 + 0.02 * rng.standard_normal(4000)
    qc = 0.8 + 0.02 * rng.standard_normal(4000)
    f = forecast_labels(Comparison(qc, qi, "higher", 0.03, 0.95, 20, 20))
    r_c, r_i = 20 / (20 + f.candidate_labels), 20 / (20 + f.incumbent_labels)
    delta = qc - qi
    shrink = np.sqrt(
        (qc.var() * r_c + qi.var() * r_i - 2 * np.cov(qc, qi, bias=True)[0, 1] * np.sqrt(r_c * r_i))
        / delta.var()
    )
    projected = delta.mean() + (delta - delta.mean()) * shrink
    assert decide(projected, "higher", 0.03).verdict != Verdict.UNDECIDED


def test_forecast_caps():
    # The mean sits exactly on the margin: no amount of labels settles it.
    rng = np.random.default_rng(0)
    qi = 0.8 + 0.02 * rng.standard_normal(4000)
    qc = qi - 0.03 + 0.02 * rng.standard_normal(4000)
    qc = qc - (qc - qi).mean() - 0.03
    f = forecast_labels(Comparison(qc, qi, "higher", 0.03, 0.95, 20, 20), max_labels=500)
    assert f.capped and "more than 500" in f.text
    assert forecast_total(-0.02, max_labels=50).capped


def test_forecast_match_direction():
    f_near = forecast_total(0.0, direction="match")
    f_edge = forecast_total(0.01, direction="match")
    assert not f_near.capped and not f_edge.capped
    assert f_near.total < f_edge.total


# ---- the checks a cell must pass besides the pooled posterior (core/decide/cell_checks.py) ----------


def counted_posterior(q, n, u, models=("inc", "a"), regions=("eu", "us")):
    """A 'full' posterior with draws q [S, M, R] that keeps the count tables n and u, as a
    kept fit does."""
    from changeover.core.model.counts import Counts
    from changeover.core.model.instant import cell_flags

    post = make_posterior(q, models=models, regions=regions)
    counts = Counts("correct", ("no", "yes"), models, regions, np.asarray(n), np.asarray(u))
    return Posterior(
        post.metric,
        post.levels,
        models,
        regions,
        post.weights,
        post.p,
        post.confusion,
        flags=cell_flags(counts),
        counts=counts,
    )


def tables(labelled, judge_yes=0.75, per_cell=400):
    """n [2, 2, 2, 2], u [2, 2, 2] from labelled[m][r] = (k, human yes where the judge said no,
    human yes where it said yes), k labels at each judge level; the rest of the cell's
    responses unlabelled, a share judge_yes of them judged yes."""
    n = np.zeros((2, 2, 2, 2), np.int64)
    u = np.zeros((2, 2, 2), np.int64)
    for m in range(2):
        for r in range(2):
            k, yes_no, yes_yes = labelled[m][r]
            n[m, r] = [[k - yes_no, k - yes_yes], [yes_no, yes_yes]]
            rest = per_cell - 2 * k
            u[m, r] = [round(rest * (1 - judge_yes)), rest - round(rest * (1 - judge_yes))]
    return n, u


def test_a_cell_needs_its_own_labels_to_be_ready():
    # The pooled posterior is sure (+0.05, sd 0.01), but the incumbent's us cell has 2 labels:
    # pooling alone decided it before; now it is undecided, says why, and asks for 8 labels
    # (the queue's minimum is 10).
    q = cells(4000, [[0.80, 0.80], [0.85, 0.85]], [[0.01] * 2] * 2)
    post = make_posterior(q, labels=[[40, 2], [40, 40]], models=("inc", "a"))
    d = decide_candidate([post], {"correct": ("higher", 0.03)}, "a", "inc")
    eu, us = d.cells
    assert eu.decision.verdict == Verdict.READY and not eu.blocked
    assert us.decision.verdict == Verdict.UNDECIDED and us.decision.probability > 0.99
    assert "fewer than 10 labels in the cell (candidate 40, incumbent 2)" in us.blocked
    assert (us.forecast.candidate_labels, us.forecast.incumbent_labels) == (0, 8)
    assert d.verdict == Verdict.UNDECIDED
    # labels lost to ties between raters are named where they would have counted
    tied = replace(
        post, flags=CellFlags.from_dict({**post.flags.to_dict(), "cell_ties": [[0, 2], [0, 1]]})
    )
    _, us = decide_candidate([tied], {"correct": ("higher", 0.03)}, "a", "inc").cells
    assert "(candidate 40, incumbent 2; 3 more rated, but their raters tied)" in us.blocked
    # a response whose raters tied was labelled: it counts toward the minimum (8 + 2 here)
    eight = make_posterior(q, labels=[[40, 8], [40, 40]], models=("inc", "a"))
    eight = replace(
        eight, flags=CellFlags.from_dict({**eight.flags.to_dict(), "cell_ties": [[0, 2], [0, 0]]})
    )
    _, us = decide_candidate([eight], {"correct": ("higher", 0.03)}, "a", "inc").cells
    assert us.decision.verdict == Verdict.READY and not us.blocked
    # the minimum is an argument; a "not ready" on pooling alone is held back as well
    assert (
        decide_candidate(
            [post], {"correct": ("higher", 0.03)}, "a", "inc", DecisionRule(min_cell_labels=2)
        ).verdict
        == Verdict.READY
    )
    bad = make_posterior(
        cells(4000, [[0.8, 0.8], [0.6, 0.6]], [[0.01] * 2] * 2),
        labels=[[40, 0], [40, 0]],
        models=("inc", "a"),
    )
    assert (
        decide_candidate([bad], {"correct": ("higher", 0.03)}, "a", "inc").cells[1].decision.verdict
        == Verdict.UNDECIDED
    )


def test_pooling_alone_does_not_make_a_cell_ready():
    # The pooled draws say the candidate is +0.05 in both regions (sure). In eu its own 10
    # labels agree (5 of 5 human yes where the judge said yes, against 2 of 5); in us its 10
    # labels put it well below the incumbent: 1 of 5 against 5 of 5. That cell is undecided;
    # its forecast is on its own data.
    q = cells(4000, [[0.70, 0.70], [0.75, 0.75]], [[0.01] * 2] * 2)
    n, u = tables([[(5, 2, 2), (5, 1, 5)], [(5, 0, 5), (5, 1, 1)]])
    d = decide_candidate([counted_posterior(q, n, u)], {"correct": ("higher", 0.05)}, "a", "inc")
    eu, us = d.cells
    assert eu.decision.verdict == Verdict.READY and eu.own_probability >= 0.95
    assert us.decision.verdict == Verdict.UNDECIDED and us.own_probability < 0.5
    assert "its own labels give P = " in us.blocked and us.forecast is not None
    assert d.verdict == Verdict.UNDECIDED and not d.unchecked
    # a posterior without its counts cannot be checked, and its decision says so
    bare = decide_candidate(
        [make_posterior(q, labels=[[40, 40], [40, 40]], models=("inc", "a"))],
        {"correct": ("higher", 0.05)},
        "a",
        "inc",
    )
    assert bare.verdict == Verdict.READY and bare.unchecked
    # an instant posterior is its own check: it is decided as it stands
    from dataclasses import replace

    assert (
        decide_candidate(
            [replace(counted_posterior(q, n, u), source="instant")],
            {"correct": ("higher", 0.05)},
            "a",
            "inc",
            DecisionRule(min_labels=20),
        ).verdict
        == Verdict.READY
    )


def test_the_bar_for_ready_rises_with_the_labels_of_a_comparison():
    # Repeated looks: at the queue's minimum (10 labels a cell) a cell's own data must reach the
    # threshold asked for and the pooled posterior half as close to 1 again; with more labels
    # both must reach more: 1 - (1 - g) * share / rho, rho the harmonic mean of the two cells'
    # labels over 10, at most 4. Unknown labels leave the threshold as it is.
    from changeover.core.decide.cell_checks import bars, threshold_at

    assert threshold_at(0.95, 10, 10, pooled=False) == pytest.approx(0.95)
    assert threshold_at(0.95, 10, 10) == pytest.approx(0.975)
    assert threshold_at(0.95, 6, 7, pooled=False) == pytest.approx(0.95)  # not lower below
    assert threshold_at(0.95, 20, 20, pooled=False) == pytest.approx(0.975)
    assert threshold_at(0.95, 10, 40, pooled=False) == pytest.approx(1 - 0.05 / 1.6)  # n = 16
    assert threshold_at(0.90, 40, 40) == pytest.approx(1 - 0.1 * 0.5 / 4)
    assert threshold_at(0.95, None, 40) == 0.95
    # it stops rising at 40 labels a cell (MAX_RHO): rising without end, the active queue needed
    # about twice the labels to settle every decision (tests/test_label_efficiency_slow.py)
    assert threshold_at(0.95, 400, 400, pooled=False) == pytest.approx(1 - 0.05 / 4)
    assert threshold_at(0.95, 80, 40) == threshold_at(0.95, 40, 40) == pytest.approx(0.99375)
    np.testing.assert_allclose(
        threshold_at(0.95, np.array([10, 20]), 20, pooled=False), [1 - 0.05 / (4 / 3), 0.975]
    )
    # an instant posterior is a cell's own data: its bar is the own one
    assert bars(0.95, 10, 10, "instant") == (pytest.approx(0.95), pytest.approx(0.95))
    assert bars(0.95, 10, 10, "full") == (pytest.approx(0.975), pytest.approx(0.95))


def test_the_same_probability_is_ready_at_the_minimum_but_not_after_many_looks():
    # P(delta > -0.03) about 0.98 in both regions: ready with 10 labels a cell (the pooled bar
    # is 0.975 there), undecided with 40 (0.994) and the reason says why. "Not ready" keeps the
    # threshold.
    # delta ~ N(0.0, 0.0141): P(delta > -0.03) = P(z > -2.12) = 0.983
    q = cells(4000, [[0.80, 0.80], [0.80, 0.80]], [[0.01, 0.01], [0.01, 0.01]])
    early = make_posterior(q, labels=[[10, 10], [10, 10]], models=("inc", "a"))
    late = make_posterior(q, labels=[[40, 40], [40, 40]], models=("inc", "a"))
    spec = {"correct": ("higher", 0.03)}
    (eu, _) = decide_candidate([early], spec, "a", "inc", DecisionRule(min_labels=10)).cells
    assert eu.decision.verdict == Verdict.READY and 0.975 < eu.decision.probability < 0.994
    (eu, _) = decide_candidate([late], spec, "a", "inc", DecisionRule(min_labels=10)).cells
    assert eu.decision.verdict == Verdict.UNDECIDED
    assert "ready needs 0.9938 with 40 and 40 labels" in eu.decision.reason
    assert "repeated looks" in eu.decision.reason
    worse = q - np.array([0.0, 0.2])[None, :, None]
    bad = make_posterior(worse, labels=[[40, 40], [40, 40]], models=("inc", "a"))
    (eu, _) = decide_candidate([bad], spec, "a", "inc", DecisionRule(min_labels=10)).cells
    assert eu.decision.verdict == Verdict.NOT_READY


def test_a_judge_level_without_labels_gives_no_verdict_but_says_what_to_label():
    # Labels only where the judge said "no" (every fit failed its diagnostics in that case):
    # no verdict on the metric, and the responses to label instead.
    q = cells(4000, [[0.70, 0.70], [0.40, 0.40]], [[0.01] * 2] * 2)
    n, u = tables([[(5, 1, 5), (5, 1, 5)], [(5, 1, 5), (5, 1, 5)]])
    n[1, :, :, 1] = 0  # the candidate: no labels where the judge said yes
    d = decide_candidate([counted_posterior(q, n, u)], {"correct": ("higher", 0.05)}, "a", "inc")
    assert d.verdict == Verdict.UNDECIDED  # pooled alone: not ready everywhere
    assert all(c.decision.verdict == Verdict.UNDECIDED for c in d.cells)
    (request,) = d.to_label
    assert (request.metric, request.model, request.level) == ("correct", "a", "yes")
    assert request.judged == u[1, :, 1].sum()
    assert "label responses of a the judge rated 'yes'" in d.reason
    # the incumbent unidentified: every candidate waits
    n2, _ = tables([[(5, 1, 5), (5, 1, 5)], [(5, 1, 5), (5, 1, 5)]])
    n2[0, :, :, 0] = 0
    d = decide_candidate([counted_posterior(q, n2, u)], {"correct": ("higher", 0.05)}, "a", "inc")
    assert [x.model for x in d.to_label] == ["inc"] and d.verdict == Verdict.UNDECIDED


def test_an_unlabelled_cells_interval_carries_the_judges_unknown_lean():
    # Without labels in a cell only the judge's level distribution is seen there; the full
    # model borrows the judge's behaviour from other cells (unlabelled cells covered 0.71 in
    # simulation with a lenient judge there). Widened, the judge's levels stay as observed.
    from changeover.core.decide.cell_checks import widen_unlabelled

    rng = np.random.default_rng(0)
    for L in (2, 3):
        S = 2000
        p = rng.dirichlet(np.full(L, 20.0), size=(S, 1, 2))
        conf = np.broadcast_to(np.eye(L) * 0.8 + 0.2 / L, (S, 1, 2, L, L)).copy()
        levels = ("no", "yes") if L == 2 else ("1", "2", "3")
        post = Posterior(
            "x",
            levels,
            ("a",),
            ("eu", "us"),
            np.array([0.5, 0.5]),
            p,
            conf,
            flags=CellFlags.from_dict({"cell_labels": [[0, 12]]}),
        )
        wide = widen_unlabelled(post)
        q, w = post.quantity(), wide.quantity()
        width = lambda x: np.subtract(*np.quantile(x, [0.95, 0.05], axis=0))  # noqa: E731
        assert width(w)[0, 0] > 2 * width(q)[0, 0]  # eu, unlabelled: much wider
        np.testing.assert_array_equal(w[:, 0, 1], q[:, 0, 1])  # us, labelled: untouched
        t = np.einsum("sh,shj->sj", post.p[:, 0, 0], post.confusion[:, 0, 0])
        t2 = np.einsum("sh,shj->sj", wide.p[:, 0, 0], wide.confusion[:, 0, 0])
        inside = (wide.p[:, 0, 0] > 1e-9).all(axis=1)  # draws not clipped to the simplex's edge
        np.testing.assert_allclose(t2[inside], t[inside], atol=1e-6)
        np.testing.assert_allclose(wide.p.sum(axis=-1), 1.0)
        assert wide.flags.to_dict()["widened_cells"] == [["a", "eu"]]


def test_a_reason_shows_the_digits_that_decide():
    """0.9485 of the draws hold at threshold 0.95: undecided, and the reason says 0.949 (or
    0.948), never "0.95 ... neither >= 0.95"; a threshold of 0.975 is not cut to 0.97."""
    delta = np.r_[np.full(9485, 0.0), np.full(515, -1.0)]
    d = decide(delta, "match", 0.05)
    assert d.verdict == "undecided"
    assert "P(|delta| <= 0.05) = 0.948" in d.reason or "= 0.949" in d.reason
    assert "neither >= 0.95" in d.reason and "= 0.95," not in d.reason
    assert decide(delta, "match", 0.05, 0.975).reason.endswith("neither >= 0.975")


def test_one_label_is_one_label():
    from changeover.core.decide.verdicts import Forecast

    assert Forecast("correct", "eu", 1, 0, False, 2000).text == (
        "correct/eu: about 1 label (1 candidate, 0 incumbent)"
    )
    assert "about 3 labels" in Forecast("correct", "eu", 2, 1, False, 2000).text
