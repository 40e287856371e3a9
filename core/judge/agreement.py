"""Agreement between raters and between the judge and humans: Cohen's kappa and Krippendorff's alpha.

Pure numpy. Levels are integer indices 0..L-1 (ordinal: lowest first); missing is None/NaN.
Kappa for ordinal scales can be weighted (linear or quadratic disagreement weights); alpha is
nominal or ordinal (Krippendorff's rank-based ordinal distance).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, Protocol

import numpy as np

from changeover.core.types import EvalSet

Weights = Literal["none", "linear", "quadratic"] | None
Level = Literal["nominal", "ordinal"]


def confusion_table(a: Sequence, b: Sequence, n_levels: int | None = None) -> np.ndarray:
    """L x L table of (a level, b level) over positions where both are present."""
    la, lb = _pair_present(a, b)
    if n_levels is None:
        n_levels = int(max(la.max(initial=-1), lb.max(initial=-1))) + 1
    table = np.zeros((n_levels, n_levels), dtype=np.int64)
    np.add.at(table, (la, lb), 1)
    return table


def _pair_present(a: Sequence, b: Sequence) -> tuple[np.ndarray, np.ndarray]:
    fa = np.array([np.nan if x is None else x for x in a], dtype=float)
    fb = np.array([np.nan if x is None else x for x in b], dtype=float)
    if fa.shape != fb.shape:
        raise ValueError(f"label vectors differ in length ({fa.size} vs {fb.size})")
    keep = ~(np.isnan(fa) | np.isnan(fb))
    return fa[keep].astype(np.int64), fb[keep].astype(np.int64)


def disagreement_weights(n_levels: int, weights: Weights = None) -> np.ndarray:
    """Cohen's disagreement weights: 0 on the diagonal; 1 off it (unweighted), |i-j|/(L-1)
    (linear) or ((i-j)/(L-1))^2 (quadratic)."""
    idx = np.arange(n_levels)
    diff = np.abs(idx[:, None] - idx[None, :]).astype(float)
    if weights in (None, "none"):
        return (diff > 0).astype(float)
    scale = max(n_levels - 1, 1)
    if weights == "linear":
        return diff / scale
    if weights == "quadratic":
        return (diff / scale) ** 2
    raise ValueError(f"unknown kappa weights {weights!r} (none, linear or quadratic)")


def kappa_from_table(table: np.ndarray, weights: Weights = None) -> float:
    """Cohen's kappa of a square contingency table; NaN when it is empty or chance
    disagreement is zero (both raters used a single level)."""
    table = np.asarray(table, dtype=float)
    total = table.sum()
    if total == 0:
        return float("nan")
    obs = table / total
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    w = disagreement_weights(table.shape[0], weights)
    expected = float((w * exp).sum())
    if expected <= 1e-15:
        return float("nan")
    return 1.0 - float((w * obs).sum()) / expected


def cohen_kappa(
    a: Sequence, b: Sequence, n_levels: int | None = None, weights: Weights = None
) -> float:
    """Cohen's kappa between two label vectors (positions missing in either are dropped)."""
    return kappa_from_table(confusion_table(a, b, n_levels), weights)


def coincidence_matrix(data: np.ndarray, n_levels: int) -> np.ndarray:
    """Krippendorff's coincidence matrix of a raters x units array (NaN = missing)."""
    data = np.asarray(data, dtype=float)
    counts = np.zeros((data.shape[1], n_levels))  # units x levels
    for level in range(n_levels):
        counts[:, level] = (data == level).sum(axis=0)
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts, m = counts[pairable], m[pairable]
    o = np.einsum("uc,uk->ck", counts / (m - 1)[:, None], counts)
    o -= np.diag((counts / (m - 1)[:, None]).sum(axis=0))  # a value is not paired with itself
    return o


def krippendorff_alpha(
    data: np.ndarray, level: Level = "nominal", n_levels: int | None = None
) -> float:
    """Krippendorff's alpha of a raters x units array of level indices (NaN = missing).
    Units with fewer than two values are not pairable and ignored; NaN when undefined."""
    data = np.asarray(data, dtype=float)
    if n_levels is None:
        finite = data[~np.isnan(data)]
        n_levels = int(finite.max()) + 1 if finite.size else 0
    if n_levels == 0:
        return float("nan")
    o = coincidence_matrix(data, n_levels)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    if level == "nominal":
        delta = 1.0 - np.eye(n_levels)
    elif level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo = np.minimum.outer(np.arange(n_levels), np.arange(n_levels))
        hi = np.maximum.outer(np.arange(n_levels), np.arange(n_levels))
        delta = (cum[hi + 1] - cum[lo] - (n_c[lo] + n_c[hi]) / 2.0) ** 2
    else:
        raise ValueError(f"unknown level of measurement {level!r} (nominal or ordinal)")
    expected = float((np.outer(n_c, n_c) * delta).sum())
    if expected <= 1e-15:
        return float("nan")
    return 1.0 - (n - 1) * float((o * delta).sum()) / expected


# ---- agreement in a workspace ------------------------------------------------------------


@dataclass(frozen=True)
class PairAgreement:
    """Kappa between two raters on the responses both rated."""

    rater_a: str
    rater_b: str
    shared: int
    kappa: float


@dataclass(frozen=True)
class RaterAgreement:
    """Agreement between human raters on one metric."""

    metric: str
    raters: tuple[str, ...]
    units: int  # responses with labels from at least two raters
    pairs: tuple[PairAgreement, ...]
    alpha: float  # Krippendorff's alpha (nominal for yes/no, ordinal for scales); NaN if undefined
    weights: str  # kappa weights used for the pairs


def kappa_weights_for(n_levels: int) -> Weights:
    """The kappa we report: unweighted for yes/no, quadratic-weighted for ordinal scales."""
    return None if n_levels <= 2 else "quadratic"


def rater_agreement_from_labels(
    metric: str, n_levels: int, labels: Iterable[tuple[int, str, int]]
) -> RaterAgreement:
    """Agreement from (response_id, rater, level) triples of one metric."""
    by_rater: dict[str, dict[int, int]] = defaultdict(dict)
    for response_id, rater, value in labels:
        if value is not None:
            by_rater[rater][response_id] = int(value)
    raters = tuple(sorted(by_rater))
    weights = kappa_weights_for(n_levels)
    pairs = []
    for ra, rb in combinations(raters, 2):
        shared = sorted(by_rater[ra].keys() & by_rater[rb].keys())
        if shared:
            kappa = cohen_kappa(
                [by_rater[ra][u] for u in shared],
                [by_rater[rb][u] for u in shared],
                n_levels=n_levels,
                weights=weights,
            )
            pairs.append(PairAgreement(ra, rb, len(shared), kappa))
    units = sorted({u for r in raters for u in by_rater[r]})
    alpha, n_units = float("nan"), 0
    if len(raters) >= 2 and units:
        col = {u: k for k, u in enumerate(units)}
        data = np.full((len(raters), len(units)), np.nan)
        for i, r in enumerate(raters):
            for u, v in by_rater[r].items():
                data[i, col[u]] = v
        n_units = int(((~np.isnan(data)).sum(axis=0) >= 2).sum())
        if n_units:
            alpha = krippendorff_alpha(data, "nominal" if n_levels <= 2 else "ordinal", n_levels)
    return RaterAgreement(metric, raters, n_units, tuple(pairs), alpha, weights or "none")


class RaterLabels(Protocol):
    """What agreement reads of the store (core/store's `rater_labels`): one row per active label,
    (response id, metric, model, region, rater, level)."""

    def rater_labels(self, eval_set_id: int) -> Iterable[tuple[int, str, str, str, str, int]]: ...


def rater_agreement(store: RaterLabels, eval_set: EvalSet) -> dict[str, RaterAgreement]:
    """Agreement between human raters, per metric of an eval set (active labels only)."""
    grouped: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for response_id, metric, _model, _region, rater, value in store.rater_labels(eval_set.id):
        grouped[metric].append((response_id, rater, value))
    return {
        m.name: rater_agreement_from_labels(m.name, m.n_levels, grouped.get(m.name, ()))
        for m in eval_set.metrics
    }
