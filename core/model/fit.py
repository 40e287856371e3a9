"""The calibration model: an ordered-logistic latent-class model on the count tables.

Per metric with L levels, model m and region r (README, "The calibration model"):
- true level distribution pi[m, r] = OrderedLogistic(s[m] * z[m, r], cut[m]), z summing to zero
  over a model's regions;
- judge confusion P(J = j | H = h) = OrderedLogistic(beta[m] * h + b[m, r], cut_judge) with
  b[m, r] = bm[m] + br[r] + e[m, r]: the judge's errors differ by model, by region and (a
  little) by cell, partially pooled; pooling="shared" uses one confusion everywhere;
- n[m, r, :, :] ~ Multinomial(pi[h] P(j | h)); u[m, r, :] ~ Multinomial(sum_h pi[h] P(j | h)).
For L = 2 this is exactly the sensitivity/specificity model with
theta = sigmoid(s[m] z - cut), specificity = 1 - sigmoid(b - cut_judge) and
sensitivity = sigmoid(beta + b - cut_judge).

The data enter only through the counts (pm.Data, swapped into the compiled nutpie model
without recompiling), so a gradient costs the same for 1M judged responses as for 1k. The data
term (and, in the aligned form, the cell offset with its prior and log-Jacobian) is one compiled
kernel with a hand-written gradient (core/model/likelihood.py, as a PyTensor Op:
likelihood_ops.py); the priors and transforms are PyMC's.

Geometry: in the forward parametrisation the unlabelled counts pin only the judge-positive
rate, a narrow ridge that tightens like 1/sqrt(N), so NUTS trajectories lengthen with N. For
yes/no metrics whose cells hold enough judged responses to pin that rate (see `geometry_for`),
the model is sampled with tau[m, r] = logit P(J = yes) as a parameter and the cell's judge
offset e[m, r] solved from it in closed form (`_aligned_cell_offset`): the counts then pin tau
along one axis, which a diagonal mass matrix learns, and the steps per draw stay flat in N.
Small or one-sided cells mix better in the forward form. Scales (L > 2) have their own
judge-first model (core/model/scale.py). Step counts: README, "Sampling geometry".

Three steps: build_model(counts, settings) -> sample(counts, settings, ...) (which builds or
reuses the compiled model) -> summarise(...); fit_counts runs them for every metric.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from changeover.core.model import nuts
from changeover.core.model.counts import Counts
from changeover.core.model.instant import posterior_of
from changeover.core.model.parts import ordered_logistic, zero_sum
from changeover.core.model.posterior import Posterior
from changeover.core.settings import Settings
from changeover.core.types import (
    ESS_MIN,
    RHAT_MAX,
    Diagnostics,
    FitCancelled,
    ModelsReady,
    Source,
)

if TYPE_CHECKING:  # PyMC and PyTensor load when a model is built
    import pymc as pm
    from pytensor.tensor import TensorVariable

    from changeover.core.model.cache import Prepared

__all__ = ["FitCancelled", "FitResult", "Settings", "fit_counts"]

Progress = nuts.Progress


@dataclass
class FitResult:
    """What a fitter returns: every metric's posterior, the diagnostics (overall, and per
    metric under `per_metric`), the settings it sampled with, and how long it took."""

    posteriors: list[Posterior]
    diagnostics: Diagnostics
    settings: Settings
    seconds: float
    extra: dict[str, nuts.SamplerStats] = field(default_factory=dict)  # per metric, for benches


# ---- build -------------------------------------------------------------------------------


def _log_multinomial_coef(n: np.ndarray, axes: tuple[int, ...]) -> float:
    """sum of log(N! / prod n!) over the tables, so the log-density is the true Multinomial one."""
    from scipy.special import gammaln

    return float(np.sum(gammaln(n.sum(axis=axes) + 1)) - np.sum(gammaln(n + 1)))


ALIGNED_INFORMATION = 20.0  # "auto": aligned geometry from this Fisher information per cell


def geometry_for(counts: Counts, settings: Settings) -> str:
    """The parametrisation used: "aligned" or "forward".

    "auto" picks the aligned form for yes/no metrics (partial pooling) when the judged
    responses of a typical cell pin the judge-positive rate t: the median over cells of
    N t (1 - t), the Fisher information on logit t, is at least ALIGNED_INFORMATION (a standard
    error below ~0.22 on the logit scale): a cell with little information on t has no ridge to
    align with, and one-sided cells (a rare outcome) took more steps aligned than forward. The
    forward form is used for shared pooling.
    """
    if counts.u.shape[-1] != 2 or settings.pooling == "shared":
        return "forward"
    if settings.geometry != "auto":
        return settings.geometry
    judged = counts.u.sum(axis=-1).astype(float)
    t = (counts.u[..., 1] + 0.5) / (judged + 1.0)
    return "aligned" if float(np.median(judged * t * (1 - t))) >= ALIGNED_INFORMATION else "forward"


def adaptation_for(counts: Counts, settings: Settings) -> str:
    """nutpie's mass-matrix adaptation: diagonal unless the settings say otherwise (on the
    yes/no metrics the low-rank one left divergences and lower ESS; on the scale model, whose
    parameters are few and weakly coupled, it made no difference)."""
    return "diag" if settings.adaptation == "auto" else settings.adaptation


def build_model(counts: Counts, settings: Settings = Settings()) -> pm.Model:
    """The PyMC model of one yes/no metric's counts (pm.Data "n" and "u", swappable).
    Scales have their own model: core/model/scale.py."""
    import pymc as pm
    import pytensor.tensor as pt

    # imports numba: only when a model is built
    from changeover.core.model.likelihood_ops import aligned as aligned_loglik
    from changeover.core.model.likelihood_ops import loglik

    aligned = geometry_for(counts, settings) == "aligned"

    M, R, L = counts.u.shape  # which terms exist (one model or region has no deviations)
    if L != 2:
        raise ValueError(f"{counts.metric}: {L} levels; scales are fitted by core/model/scale.py")
    h_levels = np.arange(L, dtype=float)
    with pm.Model() as model:
        n = pm.Data("n", counts.n.astype(float))
        u = pm.Data("u", counts.u.astype(float))
        # The sizes of the parameters come from the data, so one compiled model serves every
        # workspace of this structure (core/model/cache.py); M and R above only choose terms.
        Ms, Rs = n.shape[0], n.shape[1]
        coef = pm.Data(
            "coef",
            np.array(
                _log_multinomial_coef(counts.n, (2, 3)) + _log_multinomial_coef(counts.u, (2,))
            ),
        )

        # True levels. cut[m]: each model's own level shape, at its average over regions
        # (N(0, 2) on the logit scale covers rates from ~2% to ~98% without favouring any).
        # L = 2: one cut, -logit of the rate.
        cut = pm.Normal("cut", 0.0, 2.0, shape=(Ms, 1))
        # Regions differ from their model's average by s[m] * z (non-centred: few labels per
        # cell, so the data rarely pin a region's deviation tightly). z sums to zero over the
        # regions of a model, so the model's level lives in cut alone: with free z, cut and the
        # mean of z made a ridge. Each model has its own spread s[m]: a candidate can be uneven
        # across regions where the incumbent is not. One shared s tied every model's regions
        # together, and the fit crawled between "this model is uneven" and "the judge is harsh
        # in these cells" (low tail ESS; one s per model mixed well). s[m] ~ HalfNormal(1):
        # differences between regions of more than ~2 logits (e.g. 50% vs 88%) are not expected.
        s = pm.HalfNormal("s", 1.0, shape=(Ms, 1))
        z = zero_sum("z", (M, R), (Ms, Rs))
        eta = s * z  # each cell's deviation from its model's average, on the logit scale
        pi = ordered_logistic(eta[:, :, None], cut[:, None, :])  # [M, R, L]

        # The judge. beta: how far the true "yes" moves the judge's log-odds, N(3, 2): a useful
        # judge is assumed better than chance (beta > 0), which also fixes which latent class
        # is which in cells without labels. cut_judge: its threshold, centred where a judge
        # tracking the truth would put it, halfway, N(1.5, 2).
        beta0 = pm.Normal("beta0", 3.0, 2.0)
        cut_judge = pm.Normal("cut_judge", 1.5, 2.0, shape=(1,))
        if settings.pooling == "shared":
            beta = pt.ones(Ms) * beta0
            b = pt.zeros((Ms, Rs))
        else:
            # The judge's errors differ by the model judged and by region (on XSTest
            # one judge's sensitivity ranged 0.21-0.87 across models). Partial pooling,
            # non-centred, as deviations that sum to zero (beta0 and cut_judge carry the
            # average judge; free deviations made ridges with them). Scales HalfNormal(1) for
            # models (big differences happen) and HalfNormal(0.5) for regions and for the
            # discrimination (smaller shifts expected; keeps them shrunk when few labels speak).
            sd_beta = pm.HalfNormal("sd_beta", 0.5)
            sd_bm = pm.HalfNormal("sd_bm", 1.0)
            sd_br = pm.HalfNormal("sd_br", 0.5)
            beta = beta0 + sd_beta * zero_sum("z_beta", (M,), (Ms,))
            bm = sd_bm * zero_sum("z_bm", (M,), (Ms,))
            br = sd_br * zero_sum("z_br", (R,), (Rs,))
            b = bm[:, None] + br[None, :]
            if aligned:
                # tau = logit P(J = yes) per cell is the parameter; the cell's judge offset is
                # derived from it (_aligned_cell_offset). Its prior, the log-Jacobian and the
                # likelihood are one compiled kernel (core/model/likelihood.aligned_loglik); the
                # offset is also written out here, for the confusion matrices kept per draw.
                tau = pm.Flat("tau", shape=(Ms, Rs))
                data, offset_prior = aligned_loglik(
                    eta, cut, beta, b, cut_judge, n, u, tau, CELL_SD
                )
                pm.Potential("cell_offset_prior", offset_prior)
                b = b + _aligned_cell_offset(pt.sigmoid(eta - cut), beta, b, cut_judge, tau)
            else:
                # Judge shifts particular to one cell, beyond the model and region effects,
                # N(0, CELL_SD) as in the aligned form (non-centred here).
                b = b + CELL_SD * pm.Normal("z_e", 0.0, 1.0, shape=(Ms, Rs))
        loc = beta[:, None, None] * h_levels[None, None, :] + b[:, :, None]  # [M, R, L(h)]
        confusion = ordered_logistic(loc[..., None], cut_judge)  # [M, R, L(h), L(j)]

        if not aligned:
            # n[m, r, h, j] ~ pi[h] C[h, j] and u[m, r, j] ~ sum_h pi[h] C[h, j]: one compiled
            # kernel with its gradient (core/model/likelihood.py: as a graph it was most of a
            # gradient's cost).
            data = loglik(eta, cut, beta, b, cut_judge, n, u)
        pm.Potential("likelihood", coef + data)
        pm.Deterministic("p", pi)
        pm.Deterministic("confusion", confusion)
    return model


# Prior sd of a cell's own judge offset (logit scale): smaller than model-level shifts. A fixed
# scale, not a learned one: in the aligned form e is derived (centred), and a learned scale
# would make a funnel with it.
CELL_SD = 0.5


def _aligned_cell_offset(
    theta: TensorVariable,
    beta: TensorVariable,
    b: TensorVariable,
    cut_judge: TensorVariable,
    tau: TensorVariable,
) -> TensorVariable:
    """The cell's judge offset e[m, r], derived from tau[m, r] = logit P(J = yes) (L = 2).

    Why: unlabelled counts pin only the judge-positive rate t = theta se + (1 - theta)(1 - sp).
    Sampled in the forward parametrisation that is a narrow curved ridge whose width shrinks
    like 1/sqrt(N), and NUTS trajectories grow with N. Here t (as tau = logit t) is itself a
    parameter, the counts pin it along one axis (which a diagonal mass matrix learns), and the
    cell's judge offset e that makes the model reproduce t is solved for. The model is
    unchanged: e still has its prior N(0, CELL_SD), added with the log-Jacobian log|de/dtau|
    (core/model/likelihood.aligned_loglik, which also solves for e inside the sampler), and tau's
    declared prior is flat.

    The solution is closed-form. With x = exp(e), A = exp(logit se at e = 0) and
    C = exp(logit fpr at e = 0), t = theta Ax / (1 + Ax) + (1 - theta) Cx / (1 + Cx) becomes
    AC (1 - t) x^2 - (t (A + C) - theta A - (1 - theta) C) x - t = 0, whose roots have the
    product -t / (AC (1 - t)) < 0: exactly one is positive. (It replaced six Newton steps,
    which made the gradient about three times as expensive as the forward model's.) Here it
    gives the confusion matrices kept per draw; the sampler's gradient never goes through it.
    """
    import pytensor.tensor as pt

    a = beta[:, None] + b - cut_judge[0]  # logit sensitivity without the cell offset
    c = b - cut_judge[0]  # logit false-positive rate without the cell offset
    t = pt.sigmoid(tau)
    big_a, big_c = pt.exp(a), pt.exp(c)
    half_b = 0.5 * (t * (big_a + big_c) - theta * big_a - (1 - theta) * big_c)
    quad = big_a * big_c * (1 - t)
    root = pt.sqrt(half_b**2 + quad * t)
    # the positive root, in the form without cancellation for either sign of half_b
    x = pt.switch(half_b >= 0, (half_b + root) / quad, t / (root - half_b))
    return pt.log(x)


# ---- sample ------------------------------------------------------------------------------


def _compiled_key(counts: Counts, settings: Settings) -> tuple:
    """What a compiled model depends on besides the counts (swapped in, shapes included): the
    pooling, the geometry, and whether there are several models and several regions (with one,
    the deviations between them are not in the graph)."""
    M, R, _ = counts.u.shape
    return settings.pooling, geometry_for(counts, settings), M > 1, R > 1


def sample(
    counts: Counts,
    settings: Settings,
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
    seed_offset: int = 0,
    label: str = "",
    prepared: Prepared | None = None,
) -> tuple[np.ndarray, np.ndarray, nuts.SamplerStats]:
    """Draws of one metric: (p [C, D, M, R, L], confusion [C, D, M, R, L, L], stats dict).

    Scales (L > 2) are sampled by core/model/scale.py's judge-first model. `prepared`: the
    compiled model from `prepare_models`, when at hand."""
    seed = settings.seed + seed_offset
    job = job_for(counts, settings)
    draws, extra = nuts.run(
        job, settings, seed, adaptation_for(counts, settings), on_progress, cancel, label, prepared
    )
    return (*job.finish(draws, seed), extra)


def prepare_models(
    counts: dict[str, Counts],
    settings: Settings,
    cancel: threading.Event | None = None,
    on_progress: Progress | None = None,
    background: bool = False,
) -> dict[str, Prepared]:
    """Every metric's compiled model (nuts.prepare: from memory, the disk cache, or compiled
    in child processes, several at once), by metric; {} when the sampler compiles nothing of
    ours (PyMC's own)."""
    if nuts.sampler_name(settings) != "nutpie":
        return {}
    jobs = [job_for(c, settings) for c in counts.values()]
    return dict(zip(counts, nuts.prepare(jobs, cancel, on_progress, list(counts), background)))


def models_ready(prepared: dict[str, Prepared]) -> ModelsReady:
    """How the metrics' compiled models came (prepare_models' result), for the faces."""
    came = {
        source: tuple(m for m, p in prepared.items() if p.source == source)
        for source in ("compiled", "disk", "memory")
    }
    seconds = max((p.seconds for p in prepared.values()), default=0.0)
    return ModelsReady(came["compiled"], came["disk"], came["memory"], seconds)


def job_for(counts: Counts, settings: Settings) -> nuts.Job:
    """What one metric's fit samples: the yes/no model, or the judge-first model of a scale."""
    if counts.u.shape[-1] > 2:
        from changeover.core.model.scale import scale_job

        return scale_job(counts)
    coef = _log_multinomial_coef(counts.n, (2, 3)) + _log_multinomial_coef(counts.u, (2,))
    return nuts.Job(
        build=lambda: build_model(counts, settings),
        key=("yes/no", *_compiled_key(counts, settings)),
        data={"n": counts.n, "u": counts.u, "coef": np.array(coef)},
        var_names=("p", "confusion"),
        finish=lambda draws, seed: (draws["p"], draws["confusion"]),
        make=job_for,
        args=(counts, settings),
    )


# ---- summarise ---------------------------------------------------------------------------


def diagnose(p: np.ndarray, confusion: np.ndarray, divergences: int) -> Diagnostics:
    """R-hat, bulk and tail ESS over the reported quantities ([C, D, ...] arrays), judged
    against the limits.

    ArviZ's numbers, from core.model.diagnostics (vectorised over the columns, where ArviZ loops over
    them in Python)."""
    from changeover.core.model.diagnostics import rhat_ess

    C, D = p.shape[:2]
    flat = np.concatenate([p.reshape(C, D, -1), confusion.reshape(C, D, -1)], axis=2)
    flat = flat[:, :, flat.std(axis=(0, 1)) > 1e-12]  # constant entries carry no information
    if C < 2 or flat.shape[2] == 0:
        rhat, bulk, tail = float("nan"), float("nan"), float("nan")
    else:
        rhats, bulks, tails = rhat_ess(flat, prob=(0.05, 0.95))
        rhat, bulk, tail = (
            float(np.nanmax(rhats)),
            float(np.nanmin(bulks)),
            float(np.nanmin(tails)),
        )
    reasons = _reasons(rhat, bulk, tail, int(divergences))
    return Diagnostics(not reasons, rhat, bulk, tail, int(divergences), reasons)


def _reasons(max_rhat: float, bulk: float, tail: float, divergences: int) -> tuple[str, ...]:
    """Why these numbers fail the limits (none: they pass); NaN fails."""
    reasons = []
    if not max_rhat <= RHAT_MAX:
        reasons.append(f"R-hat {max_rhat:.3f} > {RHAT_MAX}")
    if not min(bulk, tail) >= ESS_MIN:
        reasons.append(f"ESS {min(bulk, tail):.0f} < {ESS_MIN}")
    if divergences:
        reasons.append(f"{divergences} divergent transitions")
    return tuple(reasons)


def summarise(
    counts: Counts,
    weights: Sequence[float],
    p: np.ndarray,
    confusion: np.ndarray,
    settings: Settings,
    pass_level: int | None = None,
) -> Posterior:
    """A Posterior from chain x draw arrays, thinned to at most settings.keep_draws draws."""
    C, D = p.shape[:2]
    step = max(1, math.ceil(C * D / settings.keep_draws))
    p = p[:, ::step].reshape(-1, *p.shape[2:])
    confusion = confusion[:, ::step].reshape(-1, *confusion.shape[2:])
    return posterior_of(counts, weights, p, confusion, Source.FULL, pass_level)


def fit_counts(
    counts: dict[str, Counts],
    weights: Sequence[float],
    settings: Settings,
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
    pass_levels: dict[str, int | None] | None = None,
) -> FitResult:
    """Fit every metric's model; diagnostics per metric and overall. Raises FitCancelled."""
    start = time.perf_counter()
    posteriors: list[Posterior] = []
    per_metric: dict[str, Diagnostics] = {}
    extra: dict[str, nuts.SamplerStats] = {}
    names = list(counts)
    prepared = prepare_models(counts, settings, cancel, on_progress)
    for k, name in enumerate(names):
        if cancel is not None and cancel.is_set():
            raise FitCancelled("fit cancelled")

        def scaled(fraction: float, message: str, k: int = k) -> None:
            if on_progress is not None:
                on_progress((k + fraction) / len(names), message)

        p, conf, stats = sample(counts[name], settings, scaled, cancel, k, name, prepared.get(name))
        per_metric[name] = replace(
            diagnose(p, conf, stats["divergences"]), sampler=nuts.sampler_name(settings)
        )
        extra[name] = stats
        pass_level = (pass_levels or {}).get(name)
        posteriors.append(summarise(counts[name], weights, p, conf, settings, pass_level))
    if on_progress is not None:
        on_progress(1.0, "done")
    diagnostics = _overall(per_metric, nuts.sampler_name(settings))
    return FitResult(posteriors, diagnostics, settings, time.perf_counter() - start, extra)


def _overall(per_metric: dict[str, Diagnostics], sampler: str) -> Diagnostics:
    """The fit's diagnostics: the worst numbers over the metrics, judged against the limits,
    with every metric's reasons under its name."""
    if not per_metric:
        return Diagnostics(False, reasons=("no metrics",), sampler=sampler)
    # the builtins, in the metrics' order, as stored fits were judged (NaN included)
    max_rhat = max(v.max_rhat for v in per_metric.values())
    bulk = min(v.min_ess_bulk for v in per_metric.values())
    tail = min(v.min_ess_tail for v in per_metric.values())
    divergences = sum(v.divergences for v in per_metric.values())
    reasons = tuple(f"{m}: {r}" for m, v in per_metric.items() for r in v.reasons)
    ok = not _reasons(max_rhat, bulk, tail, divergences)
    return Diagnostics(ok, max_rhat, bulk, tail, divergences, reasons, sampler, per_metric)
