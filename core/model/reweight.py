"""A kept fit brought up to date with the labels given since, without refitting.

The calibration model's likelihood is a product over cells of multinomials in the count tables
(labelled responses `n[h, j]`, judged-only responses `u[j]`), so its log is linear in the
counts: the posterior given today's counts is the fit's posterior reweighted, draw by draw, by
the likelihood of the difference between today's counts and the fit's. A label on a response
that was judged-only moves one count from `u[j]` to `n[h, j]` and weighs a draw by
P(H = h | J = j) under it. The weights are Pareto-smoothed (PSIS, Vehtari et al. 2024, as ArviZ
does for leave-one-out) and their Pareto k says whether they can be trusted: above 0.7 the
labels moved the posterior too far from the draws and only a refit answers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from changeover.core.model.counts import Counts
from changeover.core.model.instant import cell_flags
from changeover.core.model.posterior import Posterior

K_MAX = 0.7  # above this PSIS weights are unreliable (Vehtari et al.'s threshold for S >= 2000)


@dataclass(frozen=True)
class Reweighted:
    """A fit's posterior of one metric given today's counts, or why it cannot be."""

    posterior: Posterior  # today's draws (resampled by weight); the fit's own when not usable
    khat: float  # Pareto k of the weights (0 when nothing changed, NaN when not computable)
    labels_since: int  # labelled responses added (or removed, negative) since the fit
    usable: bool  # the weights can be trusted (k <= K_MAX): the draws are today's


def log_likelihood(post: Posterior, n: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per draw, the log-likelihood of count tables n[M, R, H, J] and u[M, R, J] (up to a
    constant that does not depend on the draw); counts may be negative (a difference)."""
    joint = post.p[..., :, None] * post.confusion  # [S, M, R, H, J]: P(H = h, J = j)
    marginal = joint.sum(axis=3)  # [S, M, R, J]: P(J = j)
    with np.errstate(divide="ignore", invalid="ignore"):
        labelled = np.where(n[None] != 0, n[None] * np.log(joint), 0.0)
        judged = np.where(u[None] != 0, u[None] * np.log(marginal), 0.0)
    return labelled.sum(axis=(1, 2, 3, 4)) + judged.sum(axis=(1, 2, 3))


def reweight(post: Posterior, today: Counts, seed: int = 0) -> Reweighted:
    """The fit's posterior `post` (which carries the counts it was fitted on) given `today`'s
    counts of the same metric. Resampling is systematic and seeded: same inputs, same draws."""
    fitted = post.counts
    same_cells = (
        fitted is not None
        and fitted.models == today.models
        and fitted.regions == today.regions
        and fitted.n.shape == today.n.shape
    )
    if not same_cells:  # no counts kept with the fit, or models/regions came or went
        return Reweighted(post, float("nan"), 0, False)
    assert fitted is not None
    dn, du = today.n - fitted.n, today.u - fitted.u
    added = int(dn.sum())
    if not dn.any() and not du.any():
        return Reweighted(post, 0.0, 0, True)
    log_ratio = log_likelihood(post, dn, du)
    if not np.all(np.isfinite(log_ratio)):  # a draw that gives today's data no chance at all
        finite = np.isfinite(log_ratio)
        if not finite.any():
            return Reweighted(post, float("inf"), added, False)
        log_ratio = np.where(finite, log_ratio, -np.inf)
    log_w, khat = _psis(log_ratio)
    khat = float(khat)
    if not np.isfinite(khat) or khat > K_MAX:
        return Reweighted(post, khat, added, False)
    idx = _systematic(np.exp(log_w - log_w.max()), np.random.default_rng(seed))
    fresh = cell_flags(today)  # today's tallies; ties the counts do not know stay as they were
    flags = replace(
        post.flags,
        cell_labels=fresh.cell_labels,
        unlabelled_cells=fresh.unlabelled_cells,
        cell_ties=post.flags.cell_ties if fresh.cell_ties is None else fresh.cell_ties,
    )
    moved = replace(post, p=post.p[idx], confusion=post.confusion[idx], counts=today, flags=flags)
    return Reweighted(moved, khat, added, True)


def _psis(log_ratio: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed log weights (normalised) and k, through ArviZ's implementation."""
    from arviz_stats.base.array import array_stats

    finite = np.isfinite(log_ratio)
    smoothed, khat = array_stats.psislw(-log_ratio[finite], r_eff=1.0)  # it takes -log lik
    out = np.full(log_ratio.shape, -np.inf)
    out[finite] = smoothed
    top = out.max()
    return out - (top + np.log(np.exp(out - top).sum())), float(khat)


def _systematic(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a systematic resample: each draw kept about S * weight times, in order."""
    w = weights / weights.sum()
    n = len(w)
    positions = (rng.random() + np.arange(n)) / n
    idx = np.searchsorted(np.cumsum(w), positions)
    return np.minimum(idx, n - 1)
