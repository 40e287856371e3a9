"""The instant posterior: the conjugate reading of each cell's human x judge table.

Per cell (model, region) the joint distribution of the human level H and the judge level J is
written as q = P(J) times P(H | J):
- q ~ Dirichlet(1 + judged responses by judge level, labelled and unlabelled);
- P(H | J = j) ~ Dirichlet(prior_j + labelled responses with judge level j, by human level);
- P(H) = sum_j q_j P(H | J = j), and the judge's confusion P(J | H) by Bayes, draw by draw.

Every cell is read on its own under the labelling assumption of the calibration model: within a
cell, which responses get a human label depends only on the judge's level. It needs no sampler,
so the app can refresh it after every label; the full model (core/model/fit.py) adds pooling across
models and regions.

The prior of P(H | J = j) is PRIOR_LABELS pseudo-labels shaped like all of the metric's labels
with judge level j (every cell's, smoothed by one pseudo-label spread evenly): a cell's own
labels outweigh it once it has a few at that level, and a judge level without labels in the
cell gets what the judge's verdict means elsewhere, with the width of two labels. A uniform
Dirichlet(1) prior, as before, dominated scarce labels: two pseudo-labels against five real
ones turned a rate of 0.02 into about 0.11 and pulled scales to the middle, so intervals
covered the truth far less than 90% of the time on rare outcomes and scales
(bench/estimator_coverage.py; figures in the README).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from changeover.core.model.cell_draws import CellDraws
from changeover.core.model.counts import Counts
from changeover.core.model.posterior import CellFlags, Posterior
from changeover.core.types import Source

PRIOR = 1.0  # Dirichlet concentration of each level in q's prior (uniform over the simplex)
PRIOR_LABELS = 2.0  # pseudo-labels in the prior of each P(H | J = j) (see the module docstring)


def dirichlet(rng: np.random.Generator, alpha: np.ndarray, draws: int) -> np.ndarray:
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
    q = dirichlet(rng, prior_judge + n.sum(axis=0) + u, draws)  # [S, L(j)]
    h_given_j = dirichlet(rng, prior_human + n.T, draws)  # [S, L(j), L(h)]
    joint = q[:, :, None] * h_given_j  # [S, j, h]
    p = joint.sum(axis=1)  # [S, h]
    return p, np.swapaxes(joint, 1, 2) / p[:, :, None]  # confusion [S, h, j]


def label_prior(n: np.ndarray, labels: float = PRIOR_LABELS) -> np.ndarray:
    """[L(j), L(h)] Dirichlet prior of P(H | J = j): `labels` pseudo-labels shaped like the
    metric's labels with judge level j over every cell of n [M, R, L(h), L(j)], smoothed."""
    L = n.shape[-1]
    pooled = n.sum(axis=(0, 1)).T + 1.0 / L  # [j, h]
    shares = pooled / pooled.sum(axis=1, keepdims=True)
    # One significant digit (renormalised): one more label rarely moves them, so a refresh
    # after a label still redraws only that label's cell (the cache key holds the prior); the
    # prior is worth two labels, so the rounding does not matter to the posterior.
    scale = 10.0 ** (np.floor(np.log10(shares)))
    rounded = np.round(shares / scale) * scale
    return labels * rounded / rounded.sum(axis=1, keepdims=True)


def _cell(
    seed: int,
    stream: int,
    m: int,
    r: int,
    n: np.ndarray,
    u: np.ndarray,
    draws: int,
    prior: np.ndarray,
    cache: CellDraws | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(p [S, L], confusion [S, L(h), L(j)]) of one cell; n is [L(h), L(j)], u is [L(j)].
    `stream` tells metrics apart, so the metrics of one cell draw independently (a shared
    stream would couple them in the joint probability that all of a candidate's cells hold).
    Seeded by the cell alone: the same draws with or without a `cache`."""
    key = (seed, stream, m, r, draws, n.tobytes(), u.tobytes(), n.shape[0], prior.tobytes())
    hit = None if cache is None else cache.get(key)
    if hit is not None:
        return hit
    rng = np.random.default_rng([seed, stream, m, r])
    drawn = conjugate_draws(rng, n, u, PRIOR, prior, draws)
    if cache is not None:
        cache.put(key, drawn)
    return drawn


def instant_posterior(
    counts: Counts,
    weights: Sequence[float] | np.ndarray,
    draws: int = 2000,
    seed: int = 0,
    pass_level: int | None = None,
    cache: CellDraws | None = None,
) -> Posterior:
    """The conjugate posterior of every cell of one metric (source INSTANT); `cache` keeps
    each cell's draws for the next call."""
    M, R, L = counts.u.shape
    p = np.empty((draws, M, R, L))
    confusion = np.empty((draws, M, R, L, L))
    stream = zlib.crc32(counts.metric.encode("utf-8"))
    prior = label_prior(counts.n)
    for m in range(M):
        for r in range(R):
            p[:, m, r], confusion[:, m, r] = _cell(
                seed, stream, m, r, counts.n[m, r], counts.u[m, r], draws, prior, cache
            )
    return posterior_of(counts, weights, p, confusion, Source.INSTANT, pass_level)


def posterior_of(
    counts: Counts,
    weights: Sequence[float] | np.ndarray,
    p: np.ndarray,
    confusion: np.ndarray,
    source: Source,
    pass_level: int | None = None,
) -> Posterior:
    """A Posterior of draws p [S, M, R, L] and confusion [S, M, R, L, L] computed from `counts`
    (kept with it, with the cells' label counts as flags); the instant posterior's and the
    full fit's."""
    return Posterior(
        metric=counts.metric,
        levels=counts.levels,
        models=counts.models,
        regions=counts.regions,
        weights=np.asarray(weights, dtype=float),
        p=p,
        confusion=confusion,
        source=source,
        pass_level=pass_level,
        flags=cell_flags(counts),
        counts=counts,
    )


def cell_flags(counts: Counts) -> CellFlags:
    """The flags every estimator sets: labelled responses per cell, the unlabelled cells and
    the raters' ties per cell (when the counts know them)."""
    labels = counts.labels_per_cell
    ties = counts.ties_per_cell
    return CellFlags(
        cell_labels=tuple(tuple(int(x) for x in row) for row in labels),
        cell_ties=None if ties is None else tuple(tuple(int(x) for x in row) for row in ties),
        unlabelled_cells=tuple(
            (counts.models[m], counts.regions[r]) for m, r in zip(*np.nonzero(labels == 0))
        ),
    )
