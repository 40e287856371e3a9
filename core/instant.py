"""The instant posterior: the conjugate, unpooled reading of each cell's human x judge table.

Per cell (model, region) the joint distribution of the human level H and the judge level J is
written as q = P(J) times P(H | J):
- q ~ Dirichlet(1 + judged responses by judge level, labelled and unlabelled);
- P(H | J = j) ~ Dirichlet(1 + labelled responses with judge level j, by human level);
- P(H) = sum_j q_j P(H | J = j), and the judge's confusion P(J | H) by Bayes, draw by draw.

This is the exact posterior of the unpooled model (every cell on its own, uniform Dirichlet
priors) under the labelling assumption of the calibration model: within a cell, which responses
get a human label depends only on the judge's level. It needs no sampler, so the app can refresh
it after every label; the full model (core/model.py) adds pooling across models and regions.

Uniform Dirichlet(1) priors: with no labels in a judge level, P(H | J = j) is uniform over the
human levels, which makes an unlabelled cell honestly wide rather than quietly trusting the judge.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from changeover.core.counts import Counts
from changeover.core.posterior import Posterior

PRIOR = 1.0  # Dirichlet concentration of every prior (uniform over the simplex)

# Draws of one cell depend only on (seed, cell, counts, draws): cache them, so a refresh after
# one new label redraws one cell instead of all of them.
_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_CACHE_MAX = 4096


def _dirichlet(rng: np.random.Generator, alpha: np.ndarray, draws: int) -> np.ndarray:
    """[draws, *alpha.shape] Dirichlet draws over the last axis of alpha."""
    g = rng.standard_gamma(np.broadcast_to(alpha, (draws, *alpha.shape)))
    return g / g.sum(axis=-1, keepdims=True)


def conjugate_draws(
    rng: np.random.Generator,
    n: np.ndarray,
    u: np.ndarray,
    prior_judge: np.ndarray | float,
    prior_human: np.ndarray | float,
    draws: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(p [S, L(h)], confusion [S, L(h), L(j)]) of one cell's table read as P(J) P(H | J).

    n is [L(h), L(j)], u is [L(j)]; q = P(J) ~ Dirichlet(prior_judge + judged by level) and
    P(H | J = j) ~ Dirichlet(prior_human[j] + labelled with judge level j) (prior_human is
    [L(j), L(h)] or a scalar)."""
    q = _dirichlet(rng, prior_judge + n.sum(axis=0) + u, draws)  # [S, L(j)]
    h_given_j = _dirichlet(rng, prior_human + n.T, draws)  # [S, L(j), L(h)]
    joint = q[:, :, None] * h_given_j  # [S, j, h]
    p = joint.sum(axis=1)  # [S, h]
    return p, np.swapaxes(joint, 1, 2) / p[:, :, None]  # confusion [S, h, j]


def _cell(
    seed: int, stream: int, m: int, r: int, n: np.ndarray, u: np.ndarray, draws: int
) -> tuple[np.ndarray, np.ndarray]:
    """(p [S, L], confusion [S, L(h), L(j)]) of one cell; n is [L(h), L(j)], u is [L(j)].
    `stream` tells metrics apart, so the metrics of one cell draw independently (a shared
    stream would couple them in the joint probability that all of a candidate's cells hold)."""
    key = (seed, stream, m, r, draws, n.tobytes(), u.tobytes(), n.shape[0])
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    rng = np.random.default_rng([seed, stream, m, r])
    p, confusion = conjugate_draws(rng, n, u, PRIOR, PRIOR, draws)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = (p, confusion)
    return p, confusion


def instant_posterior(
    counts: Counts,
    weights: Sequence[float],
    draws: int = 2000,
    seed: int = 0,
    pass_level: int | None = None,
) -> Posterior:
    """Exact conjugate posterior of the unpooled model for one metric (source="instant")."""
    M, R, L = counts.u.shape
    p = np.empty((draws, M, R, L))
    confusion = np.empty((draws, M, R, L, L))
    stream = zlib.crc32(counts.metric.encode("utf-8"))
    for m in range(M):
        for r in range(R):
            p[:, m, r], confusion[:, m, r] = _cell(
                seed, stream, m, r, counts.n[m, r], counts.u[m, r], draws
            )
    return Posterior(
        metric=counts.metric,
        levels=counts.levels,
        models=counts.models,
        regions=counts.regions,
        weights=np.asarray(weights, dtype=float),
        p=p,
        confusion=confusion,
        source="instant",
        pass_level=pass_level,
        flags=cell_flags(counts),
    )


def cell_flags(counts: Counts) -> dict:
    """The flags every estimator sets: labelled responses per cell and the unlabelled cells."""
    labels = counts.labels_per_cell
    return {
        "cell_labels": labels.astype(int).tolist(),
        "unlabelled_cells": [
            [counts.models[m], counts.regions[r]] for m, r in zip(*np.nonzero(labels == 0))
        ],
    }
