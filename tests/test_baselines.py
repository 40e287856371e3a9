"""Baselines against hand computations on small tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from changeover.core.baselines import (
    baselines,
    human_only,
    judge_rate,
    ppi_plus_plus,
    rogan_gladen,
    wilson,
)
from changeover.core.counts import Counts

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
    assert h.estimate == pytest.approx(0.75 * 51 / 102 + 0.25 * 26 / 52)
    assert h.lo < h.estimate < h.hi
    # The unlabelled cell: no Rogan-Gladen, no PPI++, so no overall either; judge still there.
    cand_us, cand_all = rows[4], rows[5]
    assert cand_us.get("rogan_gladen").estimate is None and cand_us.get("ppi++").estimate is None
    assert cand_all.get("ppi++").estimate is None and cand_all.get("judge").estimate is not None


def test_scales_are_skipped():
    c = Counts(
        "style",
        ("1", "2", "3"),
        ("inc",),
        ("eu",),
        np.zeros((1, 1, 3, 3), np.int64),
        np.zeros((1, 1, 3), np.int64),
    )
    assert baselines(c, [1.0]) == []
