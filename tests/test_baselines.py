"""Baselines against hand computations on small tables, and under judge-balanced labelling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from changeover.core.model.baselines import (
    HUMAN_PRIOR,
    baselines,
    human_only,
    human_stratified,
    judge_rate,
    ppi_plus_plus,
    rogan_gladen,
    stratified_ppi,
    wilson,
)
from changeover.core.model.counts import Counts

Z90 = 1.6448536269514722
N_TABLE = np.array([[40, 10], [5, 45]])  # rows: human no/yes; columns: judge no/yes
U = np.array([500, 400])  # judge-only responses: judge no, judge yes


def test_wilson_by_hand():
    k, n = 455, 1000
    p = k / n
    denom = 1 + Z90**2 / n
    centre = (p + Z90**2 / (2 * n)) / denom
    half = Z90 * math.sqrt(p * (1 - p) / n + Z90**2 / (4 * n**2)) / denom
    assert wilson(k, n) == pytest.approx((centre - half, centre + half))
    lo, hi = wilson(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0 < hi < 0.3


def test_judge_rate():
    e = judge_rate(N_TABLE, U)
    assert e.estimate == pytest.approx(455 / 1000)
    assert (e.lo, e.hi) == pytest.approx(wilson(455, 1000))


def test_human_only():
    e = human_only(N_TABLE)
    assert e.estimate == pytest.approx(51 / 102)
    assert (e.lo, e.hi) == pytest.approx(stats.beta.interval(0.90, 51, 51))
    e = human_only(np.zeros((2, 2), int))
    assert e.estimate == pytest.approx(0.5) and e.lo == pytest.approx(0.05)


def test_rogan_gladen_by_hand():
    se, sp, p = 45 / 50, 40 / 50, 455 / 1000
    theta = (p + sp - 1) / (se + sp - 1)
    assert theta == pytest.approx(0.255 / 0.7)
    var = (
        p * (1 - p) / 1000 + theta**2 * se * (1 - se) / 50 + (1 - theta) ** 2 * sp * (1 - sp) / 50
    ) / (se + sp - 1) ** 2
    e = rogan_gladen(N_TABLE, U)
    assert e.estimate == pytest.approx(theta)
    assert e.lo == pytest.approx(theta - Z90 * math.sqrt(var))
    assert e.hi == pytest.approx(theta + Z90 * math.sqrt(var))


def test_rogan_gladen_clips_and_refuses():
    # Judge rate below 1 - sp: the raw correction is negative and is clipped to 0.
    e = rogan_gladen(np.array([[40, 10], [5, 45]]), np.array([900, 0]))
    assert e.estimate == 0.0 and "clipped" in e.note
    assert rogan_gladen(np.array([[10, 0], [0, 0]]), U).estimate is None
    assert rogan_gladen(np.array([[5, 5], [5, 5]]), U).estimate is None  # se + sp - 1 = 0


def expand(n, u):
    """Raw arrays (Y, f labelled; f unlabelled) from the count tables."""
    Y, f = [], []
    for h in range(2):
        for j in range(2):
            Y += [h] * n[h, j]
            f += [j] * n[h, j]
    fu = [0] * u[0] + [1] * u[1]
    return np.array(Y, float), np.array(f, float), np.array(fu, float)


@pytest.mark.parametrize(
    "n,u",
    [
        (N_TABLE, U),
        (np.array([[12, 3], [7, 8]]), np.array([300, 120])),
        (np.array([[5, 0], [0, 5]]), np.array([10, 3])),
    ],
)
def test_ppi_plus_plus_on_raw_arrays(n, u):
    Y, f, fu = expand(n, u)
    nl, N = len(Y), len(fu)
    cov = np.mean((Y - Y.mean()) * (f - f.mean()))
    lam = np.clip(cov / ((1 + nl / N) * np.var(np.r_[f, fu], ddof=1)), 0, 1)
    theta = np.mean(lam * fu) + np.mean(Y - lam * f)
    se = math.sqrt(np.std(Y - lam * f) ** 2 / nl + np.std(lam * fu) ** 2 / N)
    e = ppi_plus_plus(n, u)
    assert e.estimate == pytest.approx(theta)
    assert (e.lo, e.hi) == pytest.approx((theta - Z90 * se, theta + Z90 * se))
    assert f"lambda {lam:.2f}" == e.note


def test_ppi_plus_plus_beats_human_only_with_a_good_judge():
    # A judge that agrees with the humans 95% of the time: PPI++ is narrower than human-only.
    n, u = np.array([[48, 2], [3, 47]]), np.array([5000, 4000])
    ppi, human = ppi_plus_plus(n, u), human_only(n)
    assert ppi.hi - ppi.lo < human.hi - human.lo
    # With no labelled responses it says so instead of guessing.
    assert ppi_plus_plus(np.zeros((2, 2), int), u).estimate is None


def make_counts():
    n = np.zeros((2, 2, 2, 2), np.int64)
    u = np.zeros((2, 2, 2), np.int64)
    n[0, 0], u[0, 0] = N_TABLE, U
    n[0, 1], u[0, 1] = [[20, 5], [2, 23]], [100, 150]
    n[1, 0], u[1, 0] = [[30, 6], [4, 60]], [300, 600]
    n[1, 1], u[1, 1] = 0, [50, 70]
    return Counts("correct", ("no", "yes"), ("inc", "cand"), ("eu", "us"), n, u)


def human_expectation(n, u, a=HUMAN_PRIOR):
    """E of the post-stratified human-only posterior: q and P(H | J) are independent."""
    L = n.shape[0]
    v = np.array([0.0, 1.0]) if L == 2 else np.arange(1.0, L + 1)
    judged = n.sum(axis=0) + u
    q = (1 / L + judged) / (1 + judged.sum())
    h_given_j = (a / L + n.T) / (a + n.sum(axis=0))[:, None]  # [j, h]
    return float(q @ (h_given_j @ v))


def test_cells_and_overall():
    counts = make_counts()
    rows = baselines(counts, {"eu": 3.0, "us": 1.0})
    assert [(r.model, r.region) for r in rows] == [
        ("inc", "eu"),
        ("inc", "us"),
        ("inc", "overall"),
        ("cand", "eu"),
        ("cand", "us"),
        ("cand", "overall"),
    ]
    inc_eu, inc_us, inc_all = rows[:3]
    assert inc_eu.n_judged == 1000 and inc_eu.n_labelled == 100
    j = inc_all.get("judge")
    expected = 0.75 * (455 / 1000) + 0.25 * (178 / 300)
    assert j.estimate == pytest.approx(expected)
    sd = math.sqrt(0.75**2 * 0.455 * 0.545 / 1000 + 0.25**2 * (178 / 300) * (122 / 300) / 300)
    assert j.hi - j.lo == pytest.approx(2 * Z90 * sd)
    h = inc_all.get("human")
    e_eu, e_us = human_expectation(N_TABLE, U), human_expectation(counts.n[0, 1], counts.u[0, 1])
    assert inc_eu.get("human").estimate == pytest.approx(e_eu, abs=0.005)
    assert h.estimate == pytest.approx(0.75 * e_eu + 0.25 * e_us, abs=0.005)
    assert h.lo < h.estimate < h.hi
    p = inc_all.get("ppi++")
    assert p.estimate == pytest.approx(
        0.75 * inc_eu.get("ppi++").estimate + 0.25 * inc_us.get("ppi++").estimate
    )
    # The unlabelled cell: no Rogan-Gladen, no PPI++, so no overall either; judge still there,
    # and human-only is the prior there (wide), so its overall is wide too.
    cand_us, cand_all = rows[4], rows[5]
    assert cand_us.get("rogan_gladen").estimate is None and cand_us.get("ppi++").estimate is None
    assert cand_all.get("ppi++").estimate is None and cand_all.get("judge").estimate is not None
    human_us = cand_us.get("human")
    assert human_us.hi - human_us.lo > 0.8 and "no labels" in human_us.note


def test_stratified_ppi_by_hand():
    # Strata: judge no (1000 - 450 = 550 of 1000 judged... here 45 + 500 = 545) and judge yes.
    judged = N_TABLE.sum(axis=0) + U  # [545, 455]
    q = judged / judged.sum()
    ybar = N_TABLE[1] / N_TABLE.sum(axis=0)  # P(H = yes | J = j): 5/45, 45/55
    theta = float(q @ ybar)
    k = N_TABLE.sum(axis=0)
    ss = k * ybar * (1 - ybar)
    pooled = (ss.sum() + 0.25) / (k.sum() - 2 + 1)
    var = float(q**2 @ ((ss + pooled) / k / k)) + (float(q @ ybar**2) - theta**2) / 1000
    e = stratified_ppi(N_TABLE, U)
    assert e.estimate == pytest.approx(theta)
    assert (e.lo, e.hi) == pytest.approx(
        (theta - Z90 * math.sqrt(var), theta + Z90 * math.sqrt(var))
    )


def test_stratified_ppi_merges_an_unlabelled_judge_level():
    n = np.array([[8, 0], [2, 0]])  # labels only where the judge said no
    e = stratified_ppi(n, np.array([90, 100]), levels=("no", "yes"))
    assert e.estimate == pytest.approx(0.2) and "judge said yes: merged" in e.note
    h = human_stratified(n, np.array([90, 100]), levels=("no", "yes"))
    assert "judge said yes: the prior there" in h.note and h.hi - h.lo > 0.4


def balanced_cells(rng, theta, se, sp, cells=400, per_cell=200, per_level=5):
    """Counts of `cells` regions of one model, labels balanced between the judge's levels."""
    n = np.zeros((1, cells, 2, 2), np.int64)
    u = np.zeros((1, cells, 2), np.int64)
    for r in range(cells):
        h = (rng.random(per_cell) < theta).astype(int)
        j = np.where(h == 1, rng.random(per_cell) < se, rng.random(per_cell) < 1 - sp).astype(int)
        for level in (0, 1):
            idx = np.flatnonzero(j == level)
            chosen = rng.permutation(idx)[:per_level]
            np.add.at(n[0, r], (h[chosen], level), 1)
            u[0, r, level] = idx.size - chosen.size
    regions = tuple(f"r{k}" for k in range(cells))
    return Counts("correct", ("no", "yes"), ("m",), regions, n, u)


def test_baselines_hold_when_the_queue_balances_judge_levels():
    # The queue gives judge-"yes" responses as many labels as judge-"no" ones, so a rate of 0.10
    # looks like ~0.45 in the labelled sample (human-only averaged 0.345 and covered 9.7% of
    # cells before; PPI++ averaged -0.04 with intervals below 0).
    rng = np.random.default_rng(5)
    counts = balanced_cells(rng, 0.10, se=0.85, sp=0.90)
    rows = [b for b in baselines(counts, [1.0] * 400) if b.region != "overall"]
    for method, bias, coverage in (("human", 0.05, 0.87), ("ppi++", 0.01, 0.90)):
        est = np.array([[b.get(method).estimate, b.get(method).lo, b.get(method).hi] for b in rows])
        assert abs(est[:, 0].mean() - 0.10) < bias, (method, est[:, 0].mean())
        covered = np.mean((est[:, 1] <= 0.10) & (est[:, 2] >= 0.10))
        assert covered >= coverage, (method, covered)
        assert np.all(est[:, 2] - est[:, 1] > 0.01), method  # no zero-width intervals
        assert np.all((est[:, 1] >= 0) & (est[:, 2] <= 1)), method


def test_every_interval_stays_inside_the_scale():
    rng = np.random.default_rng(9)
    for L in (2, 3, 5):
        lo_b, hi_b = (0, 1) if L == 2 else (1, L)
        for _ in range(60):
            n = rng.integers(0, 4, size=(L, L)) * (rng.random((L, L)) < 0.5)
            u = rng.integers(0, 40, size=L)
            for e in (judge_rate(n, u), stratified_ppi(n, u), human_stratified(n, u)):
                if e.estimate is not None:
                    assert lo_b <= e.lo <= e.estimate <= e.hi <= hi_b, (n, u, e)
                    assert e.hi - e.lo > 0, (n, u, e)
            e = ppi_plus_plus(n, u) if L == 2 else None
            if e is not None and e.estimate is not None:
                assert 0 <= e.lo <= e.estimate <= e.hi <= 1, (n, u, e)


def test_scale_baselines_by_hand():
    n = np.array([[3, 1, 0], [1, 4, 1], [0, 1, 5]])  # 1-3 scale, rows human, columns judge
    u = np.array([40, 60, 100])
    judged = n.sum(axis=0) + u  # [44, 66, 106]
    v = np.array([1.0, 2.0, 3.0])
    j = judge_rate(n, u)
    mean = float(judged @ v / judged.sum())
    sd = math.sqrt((judged @ v**2 / judged.sum() - mean**2) / judged.sum())
    assert j.estimate == pytest.approx(mean)
    assert (j.lo, j.hi) == pytest.approx((mean - Z90 * sd, mean + Z90 * sd))
    p = stratified_ppi(n, u)
    ybar = v @ n / n.sum(axis=0)  # human mean per judge level
    assert p.estimate == pytest.approx(float(judged @ ybar / judged.sum()))
    h = human_stratified(n, u)
    assert h.estimate == pytest.approx(human_expectation(n, u), abs=0.01)
    assert rogan_gladen(n, u).estimate is None


def test_scales_get_judge_human_and_ppi():
    n = np.zeros((1, 1, 3, 3), np.int64)
    n[0, 0] = [[3, 1, 0], [1, 4, 1], [0, 1, 5]]
    c = Counts("style", ("1", "2", "3"), ("inc",), ("eu",), n, np.array([[[40, 60, 100]]]))
    cell, overall = baselines(c, [1.0])
    assert [e.method for e in cell.estimates] == ["judge", "human", "rogan_gladen", "ppi++"]
    assert cell.get("ppi++").estimate == pytest.approx(overall.get("ppi++").estimate)
    assert overall.get("human").estimate == pytest.approx(cell.get("human").estimate)
