"""The instant posterior's prior: scarce labels must not be dominated by it (issue 14, item 4)."""

import numpy as np
import pytest

from changeover.core.model.counts import Counts
from changeover.core.model.instant import PRIOR_LABELS, instant_posterior, label_prior


def workspace(rng, dist, confusion, per_cell=200, labels=10) -> Counts:
    """Counts of 4 models x 6 regions with the given true level distribution [L] and judge
    confusion [L(h), L(j)] in every cell, labels balancing the judge's levels as the queue does."""
    L = len(dist)
    M, R = 4, 6
    n = np.zeros((M, R, L, L), np.int64)
    u = np.zeros((M, R, L), np.int64)
    for m in range(M):
        for r in range(R):
            h = rng.choice(L, per_cell, p=dist)
            j = (rng.random(per_cell)[:, None] > np.cumsum(confusion[h], axis=1)).sum(axis=1)
            order = rng.permutation(per_cell)
            rank = np.empty(per_cell, int)  # position of each response among its judge level
            for level in range(L):
                mine = order[j[order] == level]
                rank[mine] = np.arange(mine.size)
            labelled = np.argsort(rank * L + j + rng.random(per_cell) * 0.5, kind="stable")[:labels]
            np.add.at(n[m, r], (h[labelled], j[labelled]), 1)
            u[m, r] = np.bincount(np.delete(j, labelled), minlength=L)
    levels = ("no", "yes") if L == 2 else tuple(str(k + 1) for k in range(L))
    return Counts(
        "x", levels, tuple(f"m{k}" for k in range(M)), tuple(f"r{k}" for k in range(R)), n, u
    )


def coverage(counts: Counts, truth: float, seed: int = 0) -> tuple[float, float]:
    """(share of cells whose 90% interval covers the truth, mean of the posterior means)."""
    post = instant_posterior(counts, [1 / 6] * 6, draws=2000, seed=seed)
    q = post.quantity()
    lo, hi = np.quantile(q, [0.05, 0.95], axis=0)
    return float(np.mean((lo <= truth) & (truth <= hi))), float(q.mean())


def test_a_rare_outcome_keeps_its_rate():
    # A true rate of 0.02 with 10 labels per cell, 5 of them where the judge said yes: the
    # uniform prior gave each cell about 0.11 [0.02, 0.27] and covered the truth in ~60% of
    # cells; two pseudo-labels shaped like the metric's labels leave the rate where it is.
    rng = np.random.default_rng(4)
    confusion = np.array([[0.95, 0.05], [0.15, 0.85]])
    covered, means = [], []
    for seed in range(4):
        c, m = coverage(workspace(rng, np.array([0.98, 0.02]), confusion), 0.02, seed)
        covered.append(c)
        means.append(m)
    assert np.mean(covered) >= 0.85, covered
    assert abs(np.mean(means) - 0.02) < 0.01, means


def test_a_scale_is_not_pulled_to_the_middle():
    rng = np.random.default_rng(6)
    dist = np.array([0.02, 0.03, 0.10, 0.35, 0.50])  # mean level 4.28
    confusion = np.full((5, 5), 0.02) + np.eye(5) * 0.9
    confusion = np.roll(confusion, 1, axis=1)  # a lenient judge: one level up, mostly
    confusion[4] = [0.02, 0.02, 0.02, 0.04, 0.9]
    confusion /= confusion.sum(axis=1, keepdims=True)
    truth = float(dist @ np.arange(1, 6))
    covered, means = [], []
    for seed in range(3):
        c, m = coverage(workspace(rng, dist, confusion), truth, seed)
        covered.append(c)
        means.append(m)
    assert np.mean(covered) >= 0.85, covered
    assert abs(np.mean(means) - truth) < 0.1, means


def test_the_prior_is_shaped_like_the_metrics_labels():
    n = np.zeros((2, 1, 2, 2), np.int64)
    n[0, 0] = [[30, 2], [0, 8]]  # judge no: 30 human no, 0 yes; judge yes: 2 no, 8 yes
    n[1, 0] = [[18, 0], [0, 0]]
    prior = label_prior(n)  # [j, h]
    np.testing.assert_allclose(prior.sum(axis=1), PRIOR_LABELS)
    # judge no: (48 + 1/2) no and 1/2 yes of 49 labels, to one significant digit, renormalised
    assert prior[0] == pytest.approx(PRIOR_LABELS * np.array([1.0, 0.01]) / 1.01)
    assert prior[1] == pytest.approx(PRIOR_LABELS * np.array([0.2, 0.8]))  # 2.5 and 8.5 of 11
    # no labels anywhere: the prior is flat over the human levels
    np.testing.assert_allclose(label_prior(np.zeros((1, 1, 3, 3))), PRIOR_LABELS / 3)
