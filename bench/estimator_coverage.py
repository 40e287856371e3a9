"""Coverage of the baselines and the instant posterior under the queue's labelling (issue 14).

No sampler runs here: every estimator is conjugate or closed-form, so thousands of simulated
cells take seconds. Labels come as the queue gives them: inside a cell of 200 judged responses,
10 labels balancing the judge's levels (the level with the fewest labels first), from a rater
who is always right.

- baselines: single cells at true rates 0.02 / 0.10 / 0.50 / 0.90 (judge sensitivity and
  specificity per row below) and three 1-5 scales (judge biased by 0, +1 and -0.5 levels, with
  noise); the unstratified human-only and PPI++ (core.model.baselines.human_only, ppi_plus_plus)
  against the post-stratified ones the report shows (human_stratified, stratified_ppi).
- instant: workspaces of 4 models x 6 regions, rare yes/no outcomes (rates 0.02-0.06), common
  ones (0.60-0.80) and a 1-5 scale, the judge differing by model and region; the instant
  posterior's 90% intervals with the old uniform prior (Dirichlet(1) on every P(H | J = j))
  against the prior worth two labels shaped like the metric's labels (core.model.instant).

- margin: the own-data check of core/decide/cell_checks.py alone, on bench/decision_errors.py's margin
  world (a cell exactly at the margin): how often the instant posterior gives P >= 0.95 there,
  which bounds how often the decision rule calls it ready (10, 20 and 40 labels per cell).

Printed per row: mean estimate (or bias), coverage of the 90% interval, mean width, and the
share of zero-width intervals and of intervals leaving the scale.

Run: .venv/bin/python bench/estimator_coverage.py [--only baselines,instant,margin] [--cells N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from changeover.core import baselines as B  # noqa: E402
from changeover.core.model.counts import Counts  # noqa: E402
from changeover.core.model.instant import conjugate_draws, instant_posterior, label_prior  # noqa: E402


def queue_labels(rng, h: np.ndarray, j: np.ndarray, L: int, k: int = 10):
    """(n [L, L], u [L]) of one cell labelled as the queue does."""
    taken, free = np.zeros(L, int), np.ones(h.size, bool)
    picked = []
    for _ in range(k):
        options = [level for level in range(L) if (free & (j == level)).any()]
        level = min(options, key=lambda x: (taken[x], rng.random()))
        i = int(rng.choice(np.flatnonzero(free & (j == level))))
        free[i] = False
        taken[level] += 1
        picked.append(i)
    n = np.zeros((L, L), np.int64)
    np.add.at(n, (h[picked], j[picked]), 1)
    return n, np.bincount(j[free], minlength=L)


def draw_judge(rng, h: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """One judge level per response from P(J | H) rows."""
    cum = np.cumsum(confusion[h], axis=1)
    return (rng.random(h.size)[:, None] > cum).sum(axis=1).clip(0, confusion.shape[1] - 1)


def scale_confusion(rng, bias: float, noise: float = 0.8, L: int = 5) -> np.ndarray:
    """A judge who says round(h + bias + noise * N(0, 1)), clipped to the scale."""
    x = np.arange(L)[:, None] + bias + noise * rng.standard_normal((L, 20000))
    j = np.clip(np.rint(x), 0, L - 1).astype(int)
    return np.stack([np.bincount(row, minlength=L) / row.size for row in j])


def row(name: str, values: list[tuple], truth: float) -> None:
    a = np.array([v for v in values if v[0] is not None], float)
    cov = np.mean((a[:, 1] <= truth) & (truth <= a[:, 2]))
    width = a[:, 2] - a[:, 1]
    lo, hi = (0.0, 1.0) if truth <= 1 else (1.0, 5.0)
    out = np.mean((a[:, 1] < lo - 1e-9) | (a[:, 2] > hi + 1e-9))
    print(
        f"  {name:<22} mean {a[:, 0].mean():6.3f}  coverage {cov:.3f}  width {width.mean():.3f}"
        f"  zero-width {np.mean(width < 1e-9):.3f}  outside the scale {out:.3f}"
    )


def baselines(cells: int, rng) -> None:
    print(f"== baselines: {cells} cells per row, 200 judged, 10 labels balancing judge levels")
    for theta, se, sp in (
        (0.02, 0.80, 0.95),
        (0.10, 0.85, 0.90),
        (0.5, 0.85, 0.85),
        (0.9, 0.9, 0.8),
    ):
        confusion = np.array([[sp, 1 - sp], [1 - se, se]])
        est = {k: [] for k in ("human (unstratified)", "ppi++ (unstratified)", "human", "ppi++")}
        for _ in range(cells):
            h = (rng.random(200) < theta).astype(int)
            n, u = queue_labels(rng, h, draw_judge(rng, h, confusion), 2)
            for key, e in zip(
                est,
                (
                    B.human_only(n),
                    B.ppi_plus_plus(n, u),
                    B.human_stratified(n, u),
                    B.stratified_ppi(n, u),
                ),
            ):
                est[key].append((e.estimate, e.lo, e.hi))
        print(f"rate {theta} (sensitivity {se}, specificity {sp})")
        for key, values in est.items():
            row(key, values, theta)
    for dist, bias in (
        ((0.05, 0.1, 0.2, 0.4, 0.25), 0.0),
        ((0.3, 0.3, 0.2, 0.15, 0.05), 1.0),
        ((0.02, 0.03, 0.05, 0.3, 0.6), -0.5),
    ):
        dist, confusion = np.array(dist), scale_confusion(rng, bias)
        truth = float(dist @ np.arange(1, 6))
        est = {k: [] for k in ("judge", "human", "ppi++")}
        for _ in range(cells // 2):
            h = rng.choice(5, 200, p=dist)
            n, u = queue_labels(rng, h, draw_judge(rng, h, confusion), 5)
            for key, e in zip(
                est, (B.judge_rate(n, u), B.human_stratified(n, u), B.stratified_ppi(n, u))
            ):
                est[key].append((e.estimate, e.lo, e.hi))
        print(f"1-5 scale, mean level {truth:.2f}, judge bias {bias:+g} levels")
        for key, values in est.items():
            row(key, values, truth)


def workspace(rng, kind: str) -> tuple[Counts, np.ndarray]:
    """4 x 6 cells of one kind ("rare", "common", "scale") and the true quantity [M, R]."""
    M, R = 4, 6
    if kind == "scale":
        cuts = np.array([-2.5, -1.2, 0.3, 1.8])
        dist = np.empty((M, R, 5))
        confusion = np.empty((M, R, 5, 5))
        for m in range(M):
            a, bias = rng.normal(0.8, 0.6), rng.normal(0.4, 0.4)
            for r in range(R):
                dist[m, r] = np.diff(np.r_[0, expit(cuts - a - rng.normal(0, 0.3)), 1])
                confusion[m, r] = scale_confusion(rng, bias + rng.normal(0, 0.2))
    else:
        low, high = (0.02, 0.06) if kind == "rare" else (0.6, 0.8)
        theta = rng.uniform(low, high, (M, R))
        lf = -3.0 + rng.normal(0, 0.3, (M, 1)) + rng.normal(0, 0.3, (1, R))
        fpr, se = expit(lf), expit(lf + rng.normal(4.0, 0.4, (M, 1)))
        dist = np.stack([1 - theta, theta], -1)
        confusion = np.stack([np.stack([1 - fpr, fpr], -1), np.stack([1 - se, se], -1)], -2)
    L = dist.shape[-1]
    n = np.zeros((M, R, L, L), np.int64)
    u = np.zeros((M, R, L), np.int64)
    for m in range(M):
        for r in range(R):
            h = rng.choice(L, 200, p=dist[m, r])
            n[m, r], u[m, r] = queue_labels(rng, h, draw_judge(rng, h, confusion[m, r]), L)
    levels = ("no", "yes") if L == 2 else tuple("12345")
    counts = Counts("x", levels, tuple("abcd"), tuple("uvwxyz"), n, u)
    return counts, dist @ B.level_values(L)


def instant(cells: int, rng) -> None:
    reps = max(cells // 24, 1)
    print(f"\n== instant posterior: {reps} workspaces of 4 x 6 cells per row")
    for kind in ("rare", "common", "scale"):
        got: dict[str, list] = {"uniform prior (before)": [], "two labels, pooled shape": []}
        for _ in range(reps if kind != "scale" else max(reps // 2, 1)):
            counts, truth = workspace(rng, kind)
            L = len(counts.levels)
            for key, prior in zip(got, (np.ones((L, L)), label_prior(counts.n))):
                for m in range(4):
                    for r in range(6):
                        p, _ = conjugate_draws(
                            rng, counts.n[m, r], counts.u[m, r], 1.0, prior, 2000
                        )
                        q = p @ B.level_values(L)
                        lo, hi = np.quantile(q, [0.05, 0.95])
                        got[key].append((q.mean() - truth[m, r], lo <= truth[m, r] <= hi, hi - lo))
        print(f"{kind}:")
        for key, values in got.items():
            a = np.array(values, float)
            print(
                f"  {key:<26} bias {a[:, 0].mean():+.3f}  coverage {a[:, 1].mean():.3f}  "
                f"width {a[:, 2].mean():.3f}  ({len(a)} cells)"
            )


def margin(cells: int, rng) -> None:
    """The own-data check alone: how often the instant posterior calls the margin cell of
    bench/decision_errors.py's margin world ready (P >= 0.95), without any fit."""
    import decision_errors as de

    print(f"\n== the instant posterior at the margin: {cells} workspaces per row")
    for labels in (10, 20, 40):
        ready = []
        for k in range(cells):
            world_rng = np.random.default_rng([rng.integers(2**32), labels, k])
            counts = de.simulate_counts(world_rng, de.make_world(world_rng, "margin", labels))
            q = instant_posterior(counts, de.WEIGHTS, draws=2000, seed=k).quantity()
            ready.append(np.mean(q[:, 1, -1] - q[:, 0, -1] > -de.MARGIN) >= 0.95)
        print(f"  {labels} labels per cell: margin cell ready in {np.mean(ready):.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="baselines,instant,margin")
    ap.add_argument("--cells", type=int, default=2000, help="simulated cells per row")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for name in args.only.split(","):
        {"baselines": baselines, "instant": instant, "margin": margin}[name](args.cells, rng)
    print(f"\n{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
