"""Simpler estimators shown beside the calibration model, for yes/no metrics.

Per (model, region) cell and for the traffic-weighted overall, the rate of the positive level:

- ``judge``: the raw judge rate over every judged response, Wilson score interval;
- ``human``: human labels only, Beta(1, 1) prior and binomial likelihood on the labelled
  responses' majority labels; posterior mean and equal-tailed interval;
- ``rogan_gladen``: theta = (p_judge + sp - 1) / (se + sp - 1), with the judge's sensitivity
  and specificity estimated from the labelled table, clipped to [0, 1]; delta-method interval
  var = (var p + theta^2 var se + (1 - theta)^2 var sp) / (se + sp - 1)^2;
- ``ppi++``: prediction-powered mean (Angelopoulos et al. 2023, "PPI++"): judge prediction f =
  the judge said the positive level, Y = the majority human label; on n labelled and N judge-only
  responses, theta = mean_N(lambda f) + mean_n(Y - lambda f) with the power-tuning
  lambda = cov_n(Y, f) / ((1 + n/N) var_{n+N}(f)) clipped to [0, 1], and the normal interval
  with se^2 = var_n(Y - lambda f)/n + lambda^2 var_N(f)/N (as the reference implementation
  ppi_py does for the mean).

Intervals are at `level` (default 0.90, matching the report). The overall row is the
traffic-weighted sum of the regions: a normal interval with var = sum w^2 var_r for judge,
Rogan-Gladen and PPI++, and Monte Carlo over the Beta posteriors (seeded) for human-only.
A method that cannot be computed in a cell (e.g. no labels) gives None with a note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

METHODS = ("judge", "human", "rogan_gladen", "ppi++")


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
    return float(stats.norm.ppf(0.5 + level / 2))


def _none(method: str, note: str) -> Estimate:
    return Estimate(method, None, None, None, note)


def wilson(k: int, n: int, level: float = 0.90) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return 0.0, 1.0
    z, p = _z(level), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def judge_rate(n: np.ndarray, u: np.ndarray, level: float = 0.90) -> Estimate:
    """n [2, 2] (human h, judge j) and u [2]: judge-positive share of all judged responses."""
    total = int(n.sum() + u.sum())
    if total == 0:
        return _none("judge", "no judged responses")
    k = int(n[:, 1].sum() + u[1])
    lo, hi = wilson(k, total, level)
    p = k / total
    return Estimate("judge", p, lo, hi, f"{k}/{total} judged yes", np.sqrt(p * (1 - p) / total))


def human_only(n: np.ndarray, level: float = 0.90) -> Estimate:
    """Beta(1, 1)-binomial posterior on the majority human labels."""
    k, total = int(n[1].sum()), int(n.sum())
    a, b = 1 + k, 1 + total - k
    lo, hi = stats.beta.ppf([0.5 - level / 2, 0.5 + level / 2], a, b)
    note = f"{k}/{total} labelled yes" if total else "no labels: the Beta(1, 1) prior"
    return Estimate("human", a / (a + b), float(lo), float(hi), note, float(stats.beta.std(a, b)))


def rogan_gladen(n: np.ndarray, u: np.ndarray, level: float = 0.90) -> Estimate:
    """Judge rate corrected with the labelled sensitivity and specificity, delta-method interval."""
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
    theta = float(np.clip(raw, 0.0, 1.0))
    var = (
        p * (1 - p) / total
        + theta**2 * se * (1 - se) / pos
        + (1 - theta) ** 2 * sp * (1 - sp) / neg
    ) / youden**2
    sd = float(np.sqrt(var))
    z = _z(level)
    note = f"se {se:.3f}, sp {sp:.3f}" + (" (clipped)" if raw != theta else "")
    return Estimate(
        "rogan_gladen", theta, max(0.0, theta - z * sd), min(1.0, theta + z * sd), note, sd
    )


def ppi_plus_plus(n: np.ndarray, u: np.ndarray, level: float = 0.90) -> Estimate:
    """PPI++ mean with the power-tuning lambda, from the 2 x 2 labelled table and the judge-only counts."""
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
    sd = float(np.sqrt(max(var, 0.0)))
    z = _z(level)
    return Estimate("ppi++", theta, theta - z * sd, theta + z * sd, f"lambda {lam:.2f}", sd)


def _cell(
    metric: str, model: str, region: str, n: np.ndarray, u: np.ndarray, level: float
) -> BaselineCell:
    return BaselineCell(
        metric,
        model,
        region,
        int(n.sum() + u.sum()),
        int(n.sum()),
        (
            judge_rate(n, u, level),
            human_only(n, level),
            rogan_gladen(n, u, level),
            ppi_plus_plus(n, u, level),
        ),
    )


def _overall(
    metric: str,
    model: str,
    cells: list[BaselineCell],
    weights: np.ndarray,
    human_draws: np.ndarray,
    level: float,
) -> BaselineCell:
    z, out = _z(level), []
    for method in METHODS:
        parts = [c.get(method) for c in cells]
        if method == "human":
            lo, hi = np.quantile(human_draws, [0.5 - level / 2, 0.5 + level / 2])
            est = float(sum(w * p.estimate for w, p in zip(weights, parts)))
            out.append(Estimate(method, est, float(lo), float(hi), "traffic-weighted", None))
            continue
        if any(p.estimate is None for p, w in zip(parts, weights) if w > 0):
            out.append(_none(method, "missing in some region"))
            continue
        est = float(sum(w * p.estimate for w, p in zip(weights, parts) if w > 0))
        sd = float(np.sqrt(sum(w**2 * p.sd**2 for w, p in zip(weights, parts) if w > 0)))
        out.append(
            Estimate(
                method,
                est,
                max(0.0, est - z * sd),
                min(1.0, est + z * sd),
                "traffic-weighted, normal interval",
                sd,
            )
        )
    return BaselineCell(
        metric,
        model,
        "overall",
        sum(c.n_judged for c in cells),
        sum(c.n_labelled for c in cells),
        tuple(out),
    )


def baselines(
    counts, weights: Sequence[float] | Mapping[str, float], level: float = 0.90, seed: int = 0
) -> list[BaselineCell]:
    """Every baseline for every (model, region) cell and the overall of a yes/no metric's Counts."""
    if len(counts.levels) != 2:
        return []
    if isinstance(weights, Mapping):
        weights = [weights.get(r, 0.0) for r in counts.regions]
    w = np.asarray(weights, float)
    w = w / w.sum()
    rng = np.random.default_rng(seed)
    out: list[BaselineCell] = []
    for m, model in enumerate(counts.models):
        cells = [
            _cell(counts.metric, model, region, counts.n[m, r], counts.u[m, r], level)
            for r, region in enumerate(counts.regions)
        ]
        k = counts.n[m, :, 1, :].sum(axis=-1)
        tot = counts.n[m].sum(axis=(-1, -2))
        draws = rng.beta(1 + k, 1 + tot - k, size=(20_000, len(k))) @ w
        out += cells + [_overall(counts.metric, model, cells, w, draws, level)]
    return out


def baselines_all(counts: Mapping, weights, level: float = 0.90) -> list[BaselineCell]:
    """Baselines of every yes/no metric (metric name -> Counts)."""
    return [cell for c in counts.values() for cell in baselines(c, weights, level)]
