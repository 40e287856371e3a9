"""The calibration model of a scale metric (L > 2 levels, e.g. 1-5 ratings): judge first.

What the data identify, per cell (model m, region r): the unlabelled counts pin the judge's
level distribution q[m, r, j] and nothing else; the labels, which the queue draws given the
cell and the judge level, tell what a human says of a response the judge put at level j,
r[m, r, j, h] = P(H = h | J = j). The true level distribution follows by the law of total
probability, pi[m, r, h] = sum_j q[m, r, j] r[m, r, j, h]. The posterior factorises:

- q[m, r] | counts ~ Dirichlet(judged counts + a prior of total weight one, spread as the
  model's judge levels over all its regions), drawn exactly (no sampler, seeded);
- r by NUTS: an ordered logistic in h with location A[j] + d[m, j] + b[r] + e[m, r] and
  cutpoints c shared by all. A[j] (the average judge's calibration curve, one free location per
  judge level, so a judge that compresses the scale is no harder than one that tracks it) is
  centred on "the human agrees with the judge" (N(0, 3) around level j's own interval);
  d[m, j] (how the judge's errors differ by the model judged: one judge can be lenient on one
  system and harsh on another by levels) and the region and cell effects are partially
  pooled, non-centred and sum to zero (the average lives in A alone).

Why not the forward model (core/model/fit.py: the truth first, then the judge given the truth) for
scales: on real ratings it failed its diagnostics and its single judge slope, with a floor
prior on every level, pulled the means toward the middle of the scale (README, "Scales: judge
first"). Here the counts' information sits on q, which is drawn exactly, and NUTS samples a few
dozen weakly coupled parameters whose data are the labels alone, at the same cost for 1M judged
responses as for 1k.

The confusion matrices kept per draw (P(J = j | H = h), as every face expects) follow by Bayes'
rule: q[j] r[j, h] / pi[h].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from changeover.core.model import nuts
from changeover.core.model.counts import Counts
from changeover.core.model.instant import dirichlet

if TYPE_CHECKING:  # PyMC loads when a model is built
    import pymc as pm

# Prior scales (logit units of the human's level given the judge's; one level of the human
# scale is about two). Chosen on SummEval (bench/scale_acceptance.py; README, "Scales on real
# ratings"): a narrower CURVE_SD pulled the top level of a judge that puts most responses at 5
# toward the middle, and a narrower MODEL_SD shrank the systems whose judge is off by levels;
# wider ones changed nothing.
CURVE_SD = 3.0  # A[j] around "the human agrees with the judge"
GAP_MEAN, GAP_SD = float(np.log(2.0)), 0.75  # log of the gap between the human scale's cutpoints
MODEL_SD = 2.0  # HalfNormal scale of the per-model shift of the judge's errors
MODEL_LEVEL_SD = 1.0  # HalfNormal scale of per-model, per-judge-level deviations
REGION_SD = 0.5  # HalfNormal scale of region effects
CELL_SD = 0.5  # HalfNormal scale of the model x region interaction


def build_scale_model(counts: Counts) -> pm.Model:
    """The PyMC model of r = P(H | J) per cell; the labels are pm.Data "n" [M, R, L(h), L(j)]."""
    import pymc as pm
    import pytensor.tensor as pt

    from changeover.core.model.parts import ordered_logistic, zero_sum

    M, R, L = counts.u.shape  # which terms exist; sizes are data (core/model/cache.py)
    with pm.Model() as model:
        n = pm.Data("n", counts.n.astype(float))
        Ms, Rs, Ls = n.shape[0], n.shape[1], n.shape[2]
        # The human scale's cutpoints: centred (A carries the location), gaps positive.
        log_gap = pm.Normal("log_gap", GAP_MEAN, GAP_SD, shape=(Ls - 2,))
        steps = pt.concatenate([pt.zeros((1,)), pt.cumsum(pt.exp(log_gap))])
        cut = steps - pt.mean(steps)
        # Level j's own interval on that scale: (cut[j-1], cut[j]), its ends one mean gap out.
        gap = pt.mean(pt.exp(log_gap))
        ends = pt.concatenate([cut[:1] - gap, cut, cut[-1:] + gap])
        agree = 0.5 * (ends[:-1] + ends[1:])  # [L]: the location where H = j is most likely
        curve = agree + pm.Normal("curve", 0.0, CURVE_SD, shape=(Ls,))
        sd_model = pm.HalfNormal("sd_model", MODEL_SD)
        sd_model_level = pm.HalfNormal("sd_model_level", MODEL_LEVEL_SD)
        shift = sd_model * zero_sum("z_model", (M,), (Ms,))[:, None] + sd_model_level * zero_sum(
            "z_model_level", (M, L), (Ms, Ls), axes=2
        )  # [M, L(j)]
        if R > 1:
            sd_region = pm.HalfNormal("sd_region", REGION_SD)
            sd_cell = pm.HalfNormal("sd_cell", CELL_SD)
            cell = sd_region * zero_sum("z_region", (R,), (Rs,))[None, :] + sd_cell * zero_sum(
                "z_cell", (M, R), (Ms, Rs), axes=2
            )
        else:
            cell = pt.zeros((Ms, Rs))
        loc = curve[None, None, :] + shift[:, None, :] + cell[:, :, None]  # [M, R, L(j)]
        r = ordered_logistic(loc[..., None], cut)  # [M, R, L(j), L(h)]
        # n[m, r, h, j]: given the judge level, the human level is a draw from r[m, r, j].
        labels = pt.transpose(n, (0, 1, 3, 2))
        pm.Potential("labels", pt.sum(labels * pt.log(pt.clip(r, 1e-300, 1.0))))
        pm.Deterministic("r", r)
    return model


def judge_prior(counts: Counts) -> np.ndarray:
    """[M, R, L] Dirichlet prior of q: total weight one, spread as each model's judge levels
    over all its regions (a cell's own counts decide; the prior pulls nothing toward the
    middle of the scale)."""
    return _prior(_judged(counts))


def _judged(counts: Counts) -> np.ndarray:
    return counts.u + counts.n.sum(axis=2)  # [M, R, L(j)]: every judged response


def _prior(judged: np.ndarray) -> np.ndarray:
    per_model = judged.sum(axis=1, keepdims=True) + 1.0 / judged.shape[-1]
    shares = per_model / per_model.sum(axis=-1, keepdims=True)
    return np.broadcast_to(shares, judged.shape).astype(float)


def judge_draws(counts: Counts, chains: int, draws: int, seed: int) -> np.ndarray:
    """[C, D, M, R, L] exact posterior draws of q (seeded: same seed, same draws)."""
    judged = _judged(counts)
    q = dirichlet(np.random.default_rng([seed, 0x5CA1E]), judged + _prior(judged), chains * draws)
    return q.reshape(chains, draws, *judged.shape)


def combine(q: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pi [.., M, R, L(h)] and confusion P(J = j | H = h) [.., M, R, L(h), L(j)] from q and r."""
    joint = q[..., :, None] * r  # [..., L(j), L(h)]: P(J = j, H = h)
    pi = joint.sum(axis=-2)
    confusion = np.swapaxes(joint, -1, -2) / np.maximum(pi[..., None], 1e-300)
    return pi, confusion


def scale_job(counts: Counts) -> nuts.Job:
    """One scale metric's fit: r by NUTS, then q drawn exactly with the same seed and combined
    (core/model/fit.sample runs it)."""

    def finish(draws: dict[str, np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
        r = draws["r"]
        return combine(judge_draws(counts, r.shape[0], r.shape[1], seed), r)

    M, R, _ = counts.u.shape
    return nuts.Job(
        build=lambda: build_scale_model(counts),
        key=("scale", M > 1, R > 1),  # the sizes are data (see build_scale_model)
        data={"n": counts.n},
        var_names=("r",),
        finish=finish,
        make=scale_job,
        args=(counts,),
    )
