"""Simpler estimators shown beside the calibration model, for yes/no metrics and scales.

Per (model, region) cell and for the traffic-weighted overall, the decision quantity: the rate of
the positive level (yes/no, bounds [0, 1]) or the mean level on 1..L (scales, bounds [1, L]).
Every estimate and interval is clipped to those bounds.

Which responses get a human label is not a simple random sample of the cell: the queue balances
the judge's levels (core/labelling/queue.py), so a cell whose judge says "yes" 5% of the time gets about
as many labels on judge-"yes" responses as on judge-"no" ones. Only estimators that condition on
the judge's level are unbiased under that design, so the human-only and PPI++ baselines are
post-stratified by the judge's level j, with q_j = the share of the cell's judged responses at
level j (labelled or not):

- ``judge``: the raw judge rate over every judged response, Wilson score interval (yes/no), or
  the judge's mean level with a normal interval (scales);
- ``human``: post-stratified human labels: P(H | J = j) ~ Dirichlet(HUMAN_PRIOR / L + labelled
  responses with judge level j, by human level) and q ~ Dirichlet(1/L + judged responses by
  level), the quantity sum_j q_j E[H | J = j] by Monte Carlo (seeded), posterior mean and
  equal-tailed interval. The prior is half a pseudo-label per judge level spread evenly over the
  human levels (why half: HUMAN_PRIOR): a judge level without labels gets that prior, honestly
  wide. With random labels it is the ordinary human-only estimate, conditioned on the judge's
  levels;
- ``rogan_gladen`` (yes/no only): theta = (p_judge + sp - 1) / (se + sp - 1), with the judge's
  sensitivity and specificity from the labelled table, clipped to [0, 1]; delta-method interval
  var = (var p + theta^2 var se + (1 - theta)^2 var sp) / (se + sp - 1)^2. (se and sp are
  estimated within the true levels, so they are unbiased under judge-balanced labelling only
  when the balance does not matter; shown for comparison);
- ``ppi++``: stratified prediction-powered inference (Fisch et al. 2024, "Stratified
  Prediction-Powered Inference for Hybrid Language Model Evaluation") with the judge's levels
  as strata. Inside a stratum the judge's prediction is constant, so each stratum's PPI++ mean
  is its labelled mean whatever the power-tuning lambda: theta = sum_j q_j ybar_j, and
  se^2 = sum_j q_j^2 s_j^2 / n_j + (sum_j q_j ybar_j^2 - theta^2) / N (the second term: q is
  estimated from the N judged responses). s_j^2 is the variance of the stratum's labels with one
  pseudo-label spread evenly over the levels, so a stratum whose labels all agree still has a
  width (the plain plug-in variance gave zero-width intervals). A judge level with judged
  responses but no labels is merged into the nearest labelled level (and said so in the note).
  With random labels and the optimal lambda, ordinary PPI++ on a yes/no judge is this same
  regression (post-stratification) estimator to first order.

`human_only` and `ppi_plus_plus` (the unstratified forms, as ppi_py computes the mean) are kept
for comparison; the report shows the stratified ones. Intervals are at `level` (default 0.90,
matching the report). The overall row is the traffic-weighted sum of the regions: a normal
interval with var = sum w^2 var_r for judge, Rogan-Gladen and PPI++, and Monte Carlo over the
cells' draws for human-only. A method that cannot be computed in a cell gives None with a note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from changeover.core.model.counts import Counts
from changeover.core.model.instant import conjugate_draws

METHODS = ("judge", "human", "rogan_gladen", "ppi++")
HUMAN_DRAWS = 4000  # Monte Carlo draws of the post-stratified human-only posterior per cell
# Pseudo-labels per judge level in the human-only prior, spread evenly over the human levels.
# One (Perks; Jeffreys for yes/no) pulled a scale's strata of two labels each far toward the
# middle; a quarter made intervals too narrow at rates near 0.5. Chosen by simulation
# (bench/estimator_coverage.py; figures in the README).
HUMAN_PRIOR = 0.5


@dataclass(frozen=True)
class Estimate:
    method: str
    estimate: float | None
    lo: float | None
    hi: float | None
    note: str = ""
    sd: float | None = None  # standard error (normal methods); used for the overall


@dataclass(frozen=True)
class BaselineCell:
    metric: str
    model: str
    region: str  # a region name or "overall"
    n_judged: int
    n_labelled: int
    estimates: tuple[Estimate, ...]  # in METHODS order

    def get(self, method: str) -> Estimate:
        return next(e for e in self.estimates if e.method == method)


def _z(level: float) -> float:
    from scipy.special import ndtri  # when asked (the CLI's start-up is spared it)

    return float(ndtri(0.5 + level / 2))  # the normal quantile


def _none(method: str, note: str) -> Estimate:
    return Estimate(method, None, None, None, note)


def level_values(n_levels: int) -> np.ndarray:
    """The value of each level in the decision quantity: 0/1 for yes/no, 1..L for a scale."""
    if n_levels == 2:
        return np.array([0.0, 1.0])
    return np.arange(1.0, n_levels + 1.0)


def bounds(n_levels: int) -> tuple[float, float]:
    """The range of the decision quantity: [0, 1] for a rate, [1, L] for a mean level."""
    v = level_values(n_levels)
    return float(v[0]), float(v[-1])


def _normal(method: str, est: float, sd: float, level: float, n_levels: int, note: str) -> Estimate:
    """A normal interval est +- z sd, estimate and interval clipped to the quantity's bounds."""
    lo_b, hi_b = bounds(n_levels)
    z = _z(level)
    clipped = float(np.clip(est, lo_b, hi_b))
    if clipped != est:
        note += " (clipped)"
    lo, hi = max(lo_b, est - z * sd), min(hi_b, est + z * sd)
    return Estimate(method, clipped, float(min(lo, clipped)), float(max(hi, clipped)), note, sd)


def wilson(k: int, n: int, level: float = 0.90) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return 0.0, 1.0
    z, p = _z(level), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the ends, without rounding
    hi = 1.0 if k == n else min(1.0, centre + half)
    return float(lo), float(hi)


def judge_rate(n: np.ndarray, u: np.ndarray, level: float = 0.90) -> Estimate:
    """Judge-positive share (yes/no, Wilson) or the judge's mean level (scales, normal)."""
    total = int(n.sum() + u.sum())
    if total == 0:
        return _none("judge", "no judged responses")
    by_level = n.sum(axis=0) + u
    L = len(by_level)
    if L > 2:
        v = level_values(L)
        share = by_level / total
        mean = float(share @ v)
        var = float(share @ v**2 - mean**2)
        return _normal("judge", mean, np.sqrt(max(var, 0.0) / total), level, L, f"{total} judged")
    k = int(by_level[1])
    lo, hi = wilson(k, total, level)
    p = k / total
    return Estimate("judge", p, lo, hi, f"{k}/{total} judged yes", np.sqrt(p * (1 - p) / total))


def human_only(n: np.ndarray, level: float = 0.90) -> Estimate:
    """Beta(1, 1)-binomial posterior on the majority human labels, unstratified (yes/no)."""
    k, total = int(n[1].sum()), int(n.sum())
    a, b = 1 + k, 1 + total - k
    from scipy.special import betaincinv  # not scipy.stats, which takes a second to import

    lo, hi = betaincinv(a, b, [0.5 - level / 2, 0.5 + level / 2])  # the Beta quantiles
    note = f"{k}/{total} labelled yes" if total else "no labels: the Beta(1, 1) prior"
    sd = float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))  # the Beta's, as scipy.stats has it
    return Estimate("human", a / (a + b), float(lo), float(hi), note, sd)


def human_draws(n: np.ndarray, u: np.ndarray, rng: np.random.Generator, draws: int) -> np.ndarray:
    """[draws] of the post-stratified human-only posterior of the cell's quantity."""
    L = n.shape[0]
    p, _ = conjugate_draws(rng, n, u, 1.0 / L, HUMAN_PRIOR / L, draws)
    return p @ level_values(L)


def _human_note(n: np.ndarray, u: np.ndarray, levels: Sequence[str] | None) -> str:
    labelled, judged = n.sum(axis=0), n.sum(axis=0) + u
    total = int(labelled.sum())
    if total == 0:
        return "no labels: the prior"
    L = n.shape[0]
    names = list(levels) if levels is not None else [str(j) for j in range(L)]
    bare = [names[j] for j in range(L) if judged[j] > 0 and labelled[j] == 0]
    note = (
        f"{int(n[1].sum())}/{total} labelled yes" if L == 2 else f"{total} labelled"
    ) + ", post-stratified by judge level"
    if bare:
        note += f"; no labels where the judge said {', '.join(bare)}: the prior there"
    return note


def human_stratified(
    n: np.ndarray,
    u: np.ndarray,
    level: float = 0.90,
    seed: int = 0,
    levels: Sequence[str] | None = None,
) -> Estimate:
    """Human labels post-stratified by the judge's level (see the module docstring)."""
    if int(n.sum() + u.sum()) == 0:
        return _none("human", "no judged responses")
    d = human_draws(n, u, np.random.default_rng(seed), HUMAN_DRAWS)
    return _from_draws("human", d, level, _human_note(n, u, levels))


def _from_draws(method: str, d: np.ndarray, level: float, note: str) -> Estimate:
    lo, hi = np.quantile(d, [0.5 - level / 2, 0.5 + level / 2])
    return Estimate(method, float(d.mean()), float(lo), float(hi), note, float(d.std()))


def rogan_gladen(n: np.ndarray, u: np.ndarray, level: float = 0.90) -> Estimate:
    """Judge rate corrected with the labelled sensitivity and specificity, delta-method interval."""
    if n.shape[0] != 2:
        return _none("rogan_gladen", "yes/no metrics only")
    pos, neg = int(n[1].sum()), int(n[0].sum())
    total = int(n.sum() + u.sum())
    if pos == 0 or neg == 0:
        return _none("rogan_gladen", "needs labelled yes and no responses")
    se, sp = n[1, 1] / pos, n[0, 0] / neg
    p = (n[:, 1].sum() + u[1]) / total
    youden = se + sp - 1
    if youden <= 0:
        return _none("rogan_gladen", f"judge no better than chance (se + sp - 1 = {youden:.2f})")
    raw = (p + sp - 1) / youden
    var = (
        p * (1 - p) / total + raw**2 * se * (1 - se) / pos + (1 - raw) ** 2 * sp * (1 - sp) / neg
    ) / youden**2
    return _normal(
        "rogan_gladen", float(raw), float(np.sqrt(var)), level, 2, f"se {se:.3f}, sp {sp:.3f}"
    )


def ppi_plus_plus(n: np.ndarray, u: np.ndarray, level: float = 0.90) -> Estimate:
    """Unstratified PPI++ mean with the power-tuning lambda, as ppi_py computes it (yes/no),
    clipped to [0, 1]. Biased when labels balance the judge's levels: see stratified_ppi."""
    n_lab, n_unl = int(n.sum()), int(u.sum())
    if n_lab < 2:
        return _none("ppi++", "needs at least 2 labelled responses")
    y, f = np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 0.0, 1.0])
    w = n.reshape(-1).astype(float)  # cells (h, j) = (0,0), (0,1), (1,0), (1,1)
    my, mf = (w @ y) / n_lab, (w @ f) / n_lab
    cov_yf = (w @ (y * f)) / n_lab - my * mf
    if n_unl == 0:
        lam = 0.0
    else:
        T = n_lab + n_unl
        f_all = n[:, 1].sum() + u[1]
        var_f = (f_all - f_all**2 / T) / (T - 1)
        lam = (
            0.0 if var_f <= 0 else float(np.clip(cov_yf / ((1 + n_lab / n_unl) * var_f), 0.0, 1.0))
        )
    resid = y - lam * f
    m_res = (w @ resid) / n_lab
    var_res = (w @ resid**2) / n_lab - m_res**2
    pu = u[1] / n_unl if n_unl else 0.0
    theta = float((lam * pu if n_unl else 0.0) + m_res)
    var = var_res / n_lab + (lam**2 * pu * (1 - pu) / n_unl if n_unl else 0.0)
    sd = float(np.sqrt(max(float(var), 0.0)))
    return _normal("ppi++", theta, sd, level, 2, f"lambda {lam:.2f}")


def _strata(labelled: np.ndarray, judged: np.ndarray) -> list[list[int]]:
    """Judge levels grouped into strata: every level with judged responses, a level without
    labels merged into the nearest labelled level (the lower one on a tie)."""
    have = [j for j in range(len(judged)) if labelled[j] > 0]
    groups: dict[int, list[int]] = {j: [] for j in have}
    for j in range(len(judged)):
        if judged[j] == 0 and labelled[j] == 0:
            continue
        target = j if j in groups else min(have, key=lambda k: (abs(k - j), k))
        groups[target].append(j)
    return [g for g in groups.values() if g]


def stratified_ppi(
    n: np.ndarray, u: np.ndarray, level: float = 0.90, levels: Sequence[str] | None = None
) -> Estimate:
    """Stratified PPI++ with the judge's levels as strata (see the module docstring)."""
    L = n.shape[0]
    labelled, judged = n.sum(axis=0), n.sum(axis=0) + u
    N = int(judged.sum())
    if int(labelled.sum()) < 2:
        return _none("ppi++", "needs at least 2 labelled responses")
    v = level_values(L)
    groups = _strata(labelled, judged)
    c = np.stack([n[:, g].sum(axis=1) for g in groups]).astype(float)  # [stratum, human level]
    k = c.sum(axis=1)
    ybar = c @ v / k
    ss = (c * (v[None, :] - ybar[:, None]) ** 2).sum(axis=1)  # within-stratum sums of squares
    # A stratum whose few labels all agree has a plug-in variance of 0 (zero-width intervals):
    # each stratum's variance is shrunk toward the pooled within-stratum variance by one
    # pseudo-label, and the pooled one toward the variance of a uniform level by one.
    pooled = (ss.sum() + v.var()) / (k.sum() - len(groups) + 1.0)
    s2 = (ss + pooled) / k
    q = np.array([judged[g].sum() / N for g in groups])
    theta = float(q @ ybar)
    var = float(q**2 @ (s2 / k)) + max(float(q @ ybar**2) - theta**2, 0.0) / N
    names = list(levels) if levels is not None else [str(j) for j in range(L)]
    merged = [names[j] for j in range(L) if judged[j] > 0 and labelled[j] == 0]
    note = "stratified by judge level"
    if merged:
        note += f"; no labels where the judge said {', '.join(merged)}: merged with a neighbour"
    return _normal("ppi++", theta, float(np.sqrt(var)), level, L, note)


def _cell(
    metric: str,
    model: str,
    region: str,
    n: np.ndarray,
    u: np.ndarray,
    level: float,
    human: Estimate,
    levels: Sequence[str] | None = None,
) -> BaselineCell:
    return BaselineCell(
        metric,
        model,
        region,
        int(n.sum() + u.sum()),
        int(n.sum()),
        (
            judge_rate(n, u, level),
            human,
            rogan_gladen(n, u, level),
            stratified_ppi(n, u, level, levels),
        ),
    )


def _overall(
    metric: str,
    model: str,
    cells: list[BaselineCell],
    weights: np.ndarray,
    human: np.ndarray | None,
    level: float,
    n_levels: int,
) -> BaselineCell:
    out = []
    for method in METHODS:
        parts = [c.get(method) for c in cells]
        if method == "human" and human is not None:
            out.append(_from_draws(method, human, level, "traffic-weighted"))
            continue
        if any(p.estimate is None for p, w in zip(parts, weights) if w > 0):
            out.append(_none(method, "missing in some region"))
            continue
        est = float(sum(w * p.estimate for w, p in zip(weights, parts) if w > 0))
        sd = float(np.sqrt(sum(w**2 * (p.sd or 0.0) ** 2 for w, p in zip(weights, parts) if w > 0)))
        out.append(_normal(method, est, sd, level, n_levels, "traffic-weighted, normal interval"))
    return BaselineCell(
        metric,
        model,
        "overall",
        sum(c.n_judged for c in cells),
        sum(c.n_labelled for c in cells),
        tuple(out),
    )


Weights = Sequence[float] | Mapping[str, float]  # in the regions' order, or by region


def baselines(
    counts: Counts, weights: Weights, level: float = 0.90, seed: int = 0
) -> list[BaselineCell]:
    """Every baseline for every (model, region) cell and the overall of one metric's Counts."""
    if isinstance(weights, Mapping):
        weights = [weights.get(r, 0.0) for r in counts.regions]
    w = np.asarray(weights, float)
    w = w / w.sum()
    L = len(counts.levels)
    out: list[BaselineCell] = []
    for m, model in enumerate(counts.models):
        cells, draws = [], []
        for r, region in enumerate(counts.regions):
            n, u = counts.n[m, r], counts.u[m, r]
            if int(n.sum() + u.sum()) == 0:
                human, d = _none("human", "no judged responses"), None
            else:
                d = human_draws(n, u, np.random.default_rng([seed, m, r]), HUMAN_DRAWS)
                human = _from_draws("human", d, level, _human_note(n, u, counts.levels))
            draws.append(d)
            cells.append(_cell(counts.metric, model, region, n, u, level, human, counts.levels))
        usable = all(d is not None for d, wr in zip(draws, w) if wr > 0)
        total = (
            sum(wr * d for d, wr in zip(draws, w) if wr > 0 and d is not None) if usable else None
        )
        out += cells + [_overall(counts.metric, model, cells, w, total, level, L)]
    return out


def baselines_all(
    counts: Mapping[str, Counts], weights: Weights, level: float = 0.90
) -> list[BaselineCell]:
    """Baselines of every metric (metric name -> Counts), yes/no and scales."""
    return [cell for c in counts.values() for cell in baselines(c, weights, level)]
