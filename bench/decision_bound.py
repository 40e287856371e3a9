"""What any rule could decide from a comparison's own cells in the margin world (issue 22).

No sampler runs here. The workspaces are bench/decision_errors.py's margin world (the same
simulator and seeds): cand is +0.12 against inc in five regions and exactly at the margin
(-0.05) in the sixth; each cell holds 200 judged responses and k labels balancing the judge's
levels. Each of cand's six comparisons is read from its two cells only, by rules that know more
about the simulator than a fit does, to learn how far the issue's first target (margin cell ready
<= 5%, +0.12 cells ready >= 65% at 10 labels per cell) is from what the data allow:

- Neyman-Pearson ceilings: the most powerful test of "delta = -0.05" against "delta = +0.12"
  at 5%. They know the alternative, so no rule that holds for every delta does better:
  "judge known" knows inc's true rate and the cand cell's judge error rates; "judge effects
  known" knows the judge's model and region effects and discrimination, not the cell's own
  N(0, 0.2) effect, and reads inc's rate (U(0.60, 0.80)) from its cell.
- Posterior rules, the form core.decide.verdicts takes: P(delta > -0.05 | the two cells) with flat
  priors on both rates, the judge's model and region effects known up to N(0, unc) (what
  pooling over 24 cells can teach a model), the cell's own judge effect assumed N(0, sd) (the
  simulator's is 0.2; core/model/fit.py's CELL_SD is 0.5). Shown at the threshold 0.95 and at the
  bar that holds the margin cell to 5%.
- The own-data check as it is (core/decide/cell_checks.py): the instant posterior, each cell on its own
  (core.model.instant), at 0.95 and at its 5% bar.

With --cache (bench/decision_errors.py's kept fits) it also prints how well the default fit
knows each cell's judge: the posterior sd of the logit false-positive rate and its error, the
`unc` a posterior rule would have with what the fit learns.

Run: .venv/bin/python bench/decision_bound.py [--worlds 2000] [--labels 10,20] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit, logit, logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decision_errors as sim

from changeover.core.model.instant import instant_posterior

LOW, HIGH = -sim.MARGIN, 0.12  # the margin cell's delta, the other five cells'
GRID = np.linspace(0.0025, 0.9975, 400)  # rates, for flat priors
INC = np.linspace(0.60, 0.80, 81)  # inc's rates in the simulator
NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(15)
LOG_W = np.log(WEIGHTS / WEIGHTS.sum())
POSTERIOR_RULES = ((0.2, 0.0), (0.2, 0.3), (0.2, 0.6), (0.5, 0.0), (0.5, 0.3), (0.5, 0.6))


def draw(worlds: int, labels: int) -> dict[str, np.ndarray]:
    """Per world the cells of inc (model 0) and cand (model 1) in every region: judged "yes"
    [W, 2, R], labelled tables [W, 2, R, 2(h), 2(j)], judge effects without the cell's own,
    discrimination, true rates, judge error rates [W, 2, R]."""
    out: dict[str, list] = {k: [] for k in ("yes", "n", "base", "beta", "theta", "fpr", "se")}
    for k in range(worlds):
        rng = np.random.default_rng([2026, sim.STREAM["margin"], k])
        world = sim.make_world(rng, "margin", labels)
        counts = sim.simulate_counts(rng, world)
        out["yes"].append(counts.n[:2, :, :, 1].sum(axis=2) + counts.u[:2, :, 1])
        out["n"].append(counts.n[:2])
        out["base"].append(world.judge_base[:2])
        out["beta"].append(np.broadcast_to(world.beta[:2], world.theta[:2].shape))
        for key in ("theta", "fpr", "se"):
            out[key].append(getattr(world, key)[:2])
        out.setdefault("counts", []).append(counts)
    return {k: (v if k == "counts" else np.array(v)) for k, v in out.items()}


def loglik(theta, fpr, se, yes, n):
    """log P(every judge level, the labels' human levels | rate, judge), broadcast; the queue's
    choice depends on the judge's level alone, so it drops out."""
    p1 = theta * se + (1 - theta) * fpr
    ll = yes * np.log(p1) + (sim.PER_CELL - yes) * np.log1p(-p1)
    h1 = theta * se / p1, theta * (1 - se) / (1 - p1)  # P(h = 1 | j = 1), P(h = 1 | j = 0)
    ll = ll + n[..., 1, 1] * np.log(h1[0]) + n[..., 0, 1] * np.log1p(-h1[0])
    return ll + n[..., 1, 0] * np.log(h1[1]) + n[..., 0, 0] * np.log1p(-h1[1])


def cell_loglik(d: dict, rates: np.ndarray, sd: float, shift=None) -> np.ndarray:
    """[W, 2, R, len(rates)] log-likelihood of each cell at `rates` (or, with `shift` [W, R],
    cand's cells at inc's rates + shift), the cell's own judge effect N(0, sd) integrated out."""
    lf = d["base"][..., None, None] + sd * NODES  # [W, 2, R, 1, nodes]
    fpr, se = expit(lf), expit(lf + d["beta"][..., None, None])
    theta = np.broadcast_to(rates, d["yes"].shape + rates.shape)
    if shift is not None:
        theta = theta.copy()
        theta[:, 1] = np.clip(rates + shift[..., None], 1e-4, 1 - 1e-4)
    yes, n = d["yes"][..., None, None], d["n"][..., None, None, :, :]
    return logsumexp(loglik(theta[..., None], fpr, se, yes, n) + LOG_W, axis=-1)


def neyman_pearson(d: dict) -> dict[str, np.ndarray]:
    """[W, R] log-likelihood ratios (+0.12 against -0.05) of the two ceilings."""
    inc = d["theta"][:, 0]
    fpr, se = d["fpr"][:, 1], d["se"][:, 1]
    yes, n = d["yes"][:, 1], d["n"][:, 1]
    known = loglik(inc + HIGH, fpr, se, yes, n) - loglik(inc + LOW, fpr, se, yes, n)
    ratio = []
    for delta in (LOW, HIGH):
        ll = cell_loglik(d, INC, 0.2, shift=np.full(inc.shape, delta))
        ratio.append(logsumexp(ll[:, 0] + ll[:, 1], axis=-1))
    return {"judge known": known, "judge effects known": ratio[1] - ratio[0]}


def posterior_rule(d: dict, sd: float, unc: float) -> np.ndarray:
    """[W, R] P(delta > -0.05 | the two cells), flat rate priors, judge as in the docstring."""
    ll = cell_loglik(d, GRID, float(np.hypot(sd, unc)))
    post = np.exp(ll - ll.max(axis=-1, keepdims=True))
    post /= post.sum(axis=-1, keepdims=True)
    cdf_inc = np.cumsum(post[:, 0], axis=-1)  # P(inc <= grid)
    below = np.searchsorted(GRID, GRID - LOW, side="left") - 1  # inc < cand + 0.05
    held = np.where(below >= 0, np.take(cdf_inc, np.clip(below, 0, None), axis=-1), 0.0)
    return (post[:, 1] * held).sum(axis=-1)


def own_data(d: dict) -> np.ndarray:
    """[W, R] the instant posterior's P(delta > -0.05), as core/decide/cell_checks.py computes it."""
    out = []
    for counts in d["counts"]:
        q = instant_posterior(counts, sim.WEIGHTS).quantity()
        out.append(((q[:, 1] - q[:, 0]) > LOW).mean(axis=0))
    return np.array(out)


def in_chunks(rule, d: dict, *args, size: int = 100):
    """rule(d, *args) computed on `size` worlds at a time (the grids are large), joined."""
    worlds = len(d["yes"])
    parts = [
        rule({k: v[i : i + size] for k, v in d.items()}, *args) for i in range(0, worlds, size)
    ]
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def row(name: str, score: np.ndarray, probability: bool) -> str:
    """A rule's margin and +0.12 shares at 0.95 (posterior rules) and at its 5% bar."""
    margin, good = score[:, -1], score[:, :-1]
    bar = np.quantile(margin, 0.95)
    at_bar = f"{(good > bar).mean():6.1%}"
    if not probability:
        return f"{name:44s} {'':>7s} {'':>7s} {'':>7s} {at_bar}"
    return (
        f"{name:44s} {(margin >= 0.95).mean():7.1%} {(good >= 0.95).mean():7.1%} "
        f"{bar:7.4f} {at_bar}"
    )


def judge_known(cache: Path, labels: int) -> str:
    """How well the kept margin fits with `labels` per cell know each cell's judge."""
    sd, err = [], []
    for path in sorted(cache.glob(f"margin-{labels}-*-default.npz")):
        k = int(path.stem.split("-")[2])
        world = sim.make_world(np.random.default_rng([2026, sim.STREAM["margin"], k]), "margin", 0)
        fpr = np.asarray(sim._load(path).posterior.confusion)[..., 0, 1]
        x = logit(np.clip(fpr, 1e-9, 1 - 1e-9))  # [draws, M, R]
        sd.append(x.std(axis=0))
        err.append(np.median(x, axis=0) - logit(world.fpr))
    if not sd:
        return f"no kept margin fits with {labels} labels per cell in {cache}"
    rms = float(np.sqrt(np.mean(np.square(err))))
    return (
        f"the default fit ({len(sd)} kept fits): a cell's logit false-positive rate has posterior "
        f"sd {np.median(sd):.2f} (median), its median is off the truth by {rms:.2f} (rms)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, default=2000, help="simulated margin workspaces")
    ap.add_argument("--labels", default="10,20", help="labels per cell, comma-separated")
    ap.add_argument("--cache", type=Path, default=None, help="decision_errors.py's kept fits")
    args = ap.parse_args(argv)
    for labels in (int(x) for x in args.labels.split(",")):
        start = time.perf_counter()
        d = draw(args.worlds, labels)
        print(f"\n== {labels} labels per cell, {args.worlds} margin worlds")
        print(f"{'rule':44s} {'at 0.95: margin':>15s} {'+0.12':>7s} {'5% bar':>7s} {'+0.12'}")
        for name, lr in in_chunks(neyman_pearson, d).items():
            print(row(f"Neyman-Pearson ceiling, {name}", lr, False))
        for sd, unc in POSTERIOR_RULES:
            score = in_chunks(posterior_rule, d, sd, unc)
            print(row(f"posterior, cell judge sd {sd}, effects +-{unc}", score, True))
        print(row("own data alone (core.model.instant)", own_data(d), True))
        if args.cache is not None:
            print(judge_known(args.cache, labels))
        print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
