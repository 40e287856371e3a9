"""Labels needed to settle every decision: the active queue against random labelling.

Simulates labelling sessions on workspaces with known truth. Per (metric, model, region) cell a
pool of responses gets a true human level drawn from a known rate and a judge level drawn
through a known, imperfect confusion (sensitivity and specificity 0.80-0.95, differing by
cell). Labels arrive in batches (default 20); after each batch the instant posterior
(core/instant.py) is refitted and core/decide judges every candidate. A session stops when
every candidate's verdict is "ready" or "not ready" (its decision is settled), or at the budget.

Policies compared (all label every metric of a response at once):
- random: a simple random sample of responses (uniform over all unlabelled responses);
- queue:  core/queue.py's rule without a scorer: fill each cell to the minimum, then uniform
          over cells, judge levels balanced inside a cell;
- active: the same, but after each refit cells are chosen by core/active.py's scorer.

Printed per policy over the seeds: labels needed (mean, and per seed), sessions that hit the
budget, the coverage of the final 90% intervals of every cell's rate (against the true rate),
and wrong final verdicts (against the verdicts the true rates imply). Then the ratios.

Run: .venv/bin/python bench/label_efficiency.py [--seeds 5] [--batch 20] [--budget 12000]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.active import make_scorer  # noqa: E402
from core.counts import Counts  # noqa: E402
from core.decide import UNDECIDED, decide_all  # noqa: E402
from core.instant import instant_posterior  # noqa: E402
from core.types import EvalSet, Metric, Region  # noqa: E402

MODELS = ("old", "good", "bad", "mixed")
REGIONS = (("EU", 4.0), ("US", 3.0), ("APAC", 2.0), ("LATAM", 1.0))
METRICS = (Metric("correct", ("no", "yes"), "higher", 0.03),
           Metric("refused", ("no", "yes"), "lower", 0.03))
LEVELS = ("no", "yes")
POLICIES = ("random", "queue", "active")


def truth_rates(rng: np.random.Generator) -> np.ndarray:
    """True positive rate per [metric, model, region]: "good" is ready everywhere, "bad" is
    clearly worse in one region, "mixed" is worse on refusals in one region and close to the
    margin on correctness elsewhere. The incumbent's rates vary by region and seed."""
    K, M, R = len(METRICS), len(MODELS), len(REGIONS)
    p = np.empty((K, M, R))
    base_c = rng.uniform(0.72, 0.85, R)
    base_r = rng.uniform(0.04, 0.10, R)
    p[0, 0], p[1, 0] = base_c, base_r
    p[0, 1], p[1, 1] = base_c + rng.uniform(0.04, 0.08, R), base_r - rng.uniform(0.0, 0.02, R)
    p[0, 2], p[1, 2] = base_c + rng.uniform(0.0, 0.04, R), base_r + rng.uniform(-0.01, 0.01, R)
    p[0, 2, rng.integers(R)] -= 0.15
    p[0, 3], p[1, 3] = base_c + rng.uniform(0.02, 0.05, R), base_r + rng.uniform(-0.02, 0.0, R)
    p[1, 3, rng.integers(R)] += 0.12
    return np.clip(p, 0.01, 0.99)


def true_verdicts(p: np.ndarray) -> dict[str, str]:
    """Ready if every cell meets its margin, else not ready (what an oracle would say)."""
    out = {}
    for m, model in enumerate(MODELS[1:], start=1):
        ok = True
        for k, metric in enumerate(METRICS):
            delta = p[k, m] - p[k, 0]
            ok &= bool(np.all(delta > -metric.margin) if metric.direction == "higher"
                       else np.all(delta < metric.margin))
        out[model] = "ready" if ok else "not ready"
    return out


@dataclass
class World:
    """A simulated eval set: per cell, pools of unlabelled response indices per judge level of
    the balance metric, and every response's human and judge levels for every metric."""

    p: np.ndarray  # [K, M, R] true rates
    H: np.ndarray  # [K, M, R, N] human levels
    J: np.ndarray  # [K, M, R, N] judge levels
    pools: dict = field(default_factory=dict)  # (m, r) -> {judge level: [response indices]}
    n: np.ndarray | None = None  # [K, M, R, 2, 2] labelled counts
    labelled: np.ndarray | None = None  # [M, R] labelled responses per cell
    by_level: np.ndarray | None = None  # [M, R, 2] labelled per balance-metric judge level


def make_world(seed: int, per_cell: int) -> World:
    rng = np.random.default_rng(seed)
    p = truth_rates(rng)
    K, M, R = p.shape
    H = (rng.random((K, M, R, per_cell)) < p[..., None]).astype(np.int8)
    se = rng.uniform(0.80, 0.95, (K, M, R, 1))
    sp = rng.uniform(0.80, 0.95, (K, M, R, 1))
    pos = np.where(H == 1, rng.random(H.shape) < se, rng.random(H.shape) > sp)
    J = pos.astype(np.int8)
    w = World(p, H, J)
    for m in range(M):
        for r in range(R):
            idx = rng.permutation(per_cell)
            w.pools[m, r] = {j: [i for i in idx if J[0, m, r, i] == j] for j in (0, 1)}
    w.n = np.zeros((K, M, R, 2, 2), np.int64)
    w.labelled = np.zeros((M, R), np.int64)
    w.by_level = np.zeros((M, R, 2), np.int64)
    return w


def label(w: World, m: int, r: int, level: int) -> None:
    i = w.pools[m, r][level].pop()
    for k in range(w.H.shape[0]):
        w.n[k, m, r, w.H[k, m, r, i], w.J[k, m, r, i]] += 1
    w.labelled[m, r] += 1
    w.by_level[m, r, level] += 1


def label_balanced(w: World, m: int, r: int, rng: np.random.Generator) -> bool:
    """Label one response of a cell, the judge level with the fewest labels first."""
    levels = sorted((0, 1), key=lambda j: (w.by_level[m, r, j], rng.random()))
    for j in levels:
        if w.pools[m, r][j]:
            label(w, m, r, j)
            return True
    return False


def counts(w: World) -> list[Counts]:
    K = w.H.shape[0]
    judged = np.stack([(w.J[k][..., None] == np.arange(2)).sum(axis=2) for k in range(K)])
    out = []
    for k, metric in enumerate(METRICS):
        n = w.n[k]
        out.append(Counts(metric.name, LEVELS, MODELS, tuple(r for r, _ in REGIONS), n.copy(),
                          judged[k] - n.sum(axis=2)))
    return out


EVAL_SET = EvalSet(0, "sim", "old", tuple(Region(r, t) for r, t in REGIONS), METRICS)


@dataclass
class Session:
    policy: str
    labels: int
    settled: bool
    coverage: tuple[int, int]  # (cells covered, cells)
    wrong: int  # candidates whose final verdict differs from the true one (undecided counts)
    refits: int
    verdicts: dict = field(default_factory=dict)  # candidate -> final verdict
    labelled: list = field(default_factory=list)  # [M][R] labelled responses per cell


class _State:
    def __init__(self, cell, labelled):
        self.cell, self.labelled = cell, labelled


def run_session(seed: int, policy: str, batch: int = 20, budget: int = 12000,
                per_cell: int = 1500, min_per_cell: int = 10, draws: int = 1000,
                threshold: float = 0.95, min_labels: int = 30) -> Session:
    w = make_world(seed, per_cell)
    rng = np.random.default_rng([seed, POLICIES.index(policy)])
    M, R = len(MODELS), len(REGIONS)
    weights = EVAL_SET.traffic_weights
    scorer = None
    total, refits = 0, 0
    regions = [r for r, _ in REGIONS]

    def fit():
        return [instant_posterior(c, weights, draws=draws, seed=seed) for c in counts(w)]

    posts = fit()
    while True:
        for _ in range(batch):
            if total >= budget:
                break
            cell = choose(w, policy, rng, scorer, min_per_cell, regions)
            if cell is None or not label_balanced(w, *cell, rng):
                break
            total += 1
        posts = fit()
        refits += 1
        verdicts = decide_all(posts, {m.name: (m.direction, m.margin) for m in METRICS}, "old",
                              threshold, min_labels)
        settled = all(v.verdict != UNDECIDED for v in verdicts)
        if settled or total >= budget:
            break
        if policy == "active":
            scorer = make_scorer(posts, EVAL_SET, threshold, min_labels)
    truth = true_verdicts(w.p)
    wrong = sum(v.verdict != truth[v.candidate] for v in verdicts)
    covered = cells = 0
    for k, post in enumerate(posts):
        lo, hi = np.quantile(post.p[..., 1], [0.05, 0.95], axis=0)
        covered += int(((lo <= w.p[k]) & (w.p[k] <= hi)).sum())
        cells += M * R
    return Session(policy, total, settled, (covered, cells), wrong, refits,
                   {v.candidate: v.verdict for v in verdicts}, w.labelled.tolist())


def choose(w: World, policy: str, rng, scorer, min_per_cell: int, regions) -> tuple[int, int] | None:
    """The next cell to label under a policy (None when nothing is left)."""
    M, R = w.labelled.shape
    left = np.array([[len(w.pools[m, r][0]) + len(w.pools[m, r][1]) for r in range(R)]
                     for m in range(M)])
    if left.sum() == 0:
        return None
    if policy == "random":  # uniform over unlabelled responses: a cell in proportion to what is left
        flat = rng.choice(M * R, p=(left / left.sum()).ravel())
        return divmod(int(flat), R)
    open_ = [(m, r) for m in range(M) for r in range(R) if left[m, r] > 0]
    short = [c for c in open_ if w.labelled[c] < min_per_cell]
    if short:
        lowest = min(w.labelled[c] for c in short)
        pool = [c for c in short if w.labelled[c] == lowest]
        return pool[rng.integers(len(pool))]
    if policy == "active" and scorer is not None:
        states = [_State((MODELS[m], regions[r]), int(w.labelled[m, r])) for m, r in open_]
        weights = scorer(states)
        wv = np.array([max(weights.get((MODELS[m], regions[r]), 0.0), 0.0) for m, r in open_])
        if wv.sum() > 0:
            return open_[rng.choice(len(open_), p=wv / wv.sum())]
    return open_[rng.integers(len(open_))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--budget", type=int, default=12000)
    ap.add_argument("--per-cell", type=int, default=1500)
    args = ap.parse_args(argv)
    policies = POLICIES
    results: dict[str, list[Session]] = {p: [] for p in policies}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for policy in policies:
            s = run_session(seed, policy, args.batch, args.budget, args.per_cell)
            results[policy].append(s)
            print(f"seed {seed} {policy:>6}: {s.labels:5d} labels, settled={s.settled}, "
                  f"coverage {s.coverage[0]}/{s.coverage[1]}, wrong verdicts {s.wrong}, "
                  f"{s.refits} refits", flush=True)
    print(f"\n{len(MODELS)} models x {len(REGIONS)} regions x {len(METRICS)} metrics, "
          f"{args.per_cell} responses per cell, batches of {args.batch}, budget {args.budget}, "
          f"{args.seeds} seeds, {time.perf_counter() - t0:.0f} s")
    mean = {}
    for p in policies:
        ss = results[p]
        mean[p] = float(np.mean([s.labels for s in ss]))
        cov = sum(s.coverage[0] for s in ss) / sum(s.coverage[1] for s in ss)
        print(f"{p:>6}: mean {mean[p]:7.0f} labels  (per seed {[s.labels for s in ss]}), "
              f"budget hit {sum(not s.settled for s in ss)}/{len(ss)}, "
              f"90% coverage {cov:.1%}, wrong verdicts {sum(s.wrong for s in ss)}")
    for base in ("random", "queue"):
        ratio = mean["active"] / mean[base]
        per_seed = [a.labels / b.labels for a, b in zip(results["active"], results[base])]
        print(f"active / {base}: {ratio:.2f} ({1 - ratio:.0%} fewer labels); per seed "
              + ", ".join(f"{x:.2f}" for x in per_seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
