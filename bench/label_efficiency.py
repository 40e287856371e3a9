"""Labels needed to settle every decision: the active queue against random labelling.

Simulates labelling sessions on workspaces with known truth. Per (metric, model, region) cell a
pool of responses gets a true human level drawn from a known level distribution and a judge
level drawn through a known, imperfect confusion P(J | H). Labels arrive in batches (default
20); after each batch the instant posterior (core/model/instant.py) is refitted and core/decide/verdicts judges
every candidate. A session stops when every candidate's verdict is "ready" or "not ready" (its
decision is settled), or at the budget. A label covers every metric of a response (a rater rates
all metrics in one pass).

Scenarios:
- synthetic: 4 models x 4 regions x 2 yes/no metrics; rates drawn per seed: "good" is ready
  everywhere, "bad" is 15 points less correct in one region, "mixed" refuses 12 points more in
  one region; judge sensitivity and specificity 0.80-0.95, different in every cell;
- kestrel: the sample workspace's generating truth (sample_data/truth.json: 4 models x 6
  regions, correct / refused (match) / style 1-5, the judge's true confusion per cell), with
  fresh pools drawn per seed.

Policies (labels inside a cell always balance the judge levels of the first metric, except
random):
- random: a simple random sample of responses (uniform over all unlabelled responses);
- queue:  core/labelling/queue.py's rule without a scorer: fill each cell to the minimum, then uniform
          over cells;
- active: the same, but after each refit cells are chosen by core/labelling/active.py's scorer.

Printed per scenario and policy over the seeds: labels needed (mean, and per seed), sessions
that hit the budget, the coverage of the final 90% intervals of every cell's quantity (rate or
mean level) against the truth, and wrong final verdicts against the verdicts the truth implies
(an undecided verdict at the budget counts as wrong). Then the ratios.

Run: .venv/bin/python bench/label_efficiency.py [--scenario synthetic|kestrel|both]
     [--seeds 5] [--batch 20] [--budget 12000] [--per-cell 1500] [--forecast-seeds 3]

It ends with a check of core/decide/forecast.py's labels-needed forecast: after 30 labels in every cell,
each undecided comparison gets t times its forecast labels (t = 0.5 ... 4) in a copy of the
world; printed is the share settled by each t.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from changeover.core.decide.rule import DecisionRule  # noqa: E402
from changeover.core.decide.verdicts import decide, decide_all  # noqa: E402
from changeover.core.labelling.active import make_scorer  # noqa: E402
from changeover.core.model.counts import Counts  # noqa: E402
from changeover.core.model.instant import CellDraws, instant_posterior  # noqa: E402
from changeover.core.types import EvalSet, Metric, Region, Verdict  # noqa: E402

POLICIES = ("random", "queue", "active")
YES_NO = ("no", "yes")


@dataclass(frozen=True)
class Scenario:
    """Known truth: dist[k] is [M, R, L_k] (true level distribution), confusion[k] is
    [M, R, L_k, L_k] (P(J = j | H = h)); eval_set carries models' order via `models`."""

    name: str
    eval_set: EvalSet
    models: tuple[str, ...]  # incumbent first
    dist: tuple[np.ndarray, ...]
    confusion: tuple[np.ndarray, ...]

    def quantity(self, k: int) -> np.ndarray:
        """[M, R] true decision quantity: positive rate (L = 2) or mean level on 1..L."""
        d = self.dist[k]
        return d[..., -1] if d.shape[-1] == 2 else d @ np.arange(1, d.shape[-1] + 1)

    def verdicts(self) -> dict[str, str]:
        """Ready if every cell meets its condition, else not ready (what an oracle would say)."""
        out = {}
        for m, model in enumerate(self.models[1:], start=1):
            ok = True
            for k, metric in enumerate(self.eval_set.metrics):
                q = self.quantity(k)
                delta, d = q[m] - q[0], metric.margin
                cond = {"higher": delta > -d, "lower": delta < d, "match": np.abs(delta) <= d}
                ok &= bool(np.all(cond[metric.direction]))
            out[model] = "ready" if ok else "not ready"
        return out


def _binary(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], axis=-1)


def _binary_confusion(se: np.ndarray, sp: np.ndarray) -> np.ndarray:
    return np.stack([np.stack([sp, 1 - sp], -1), np.stack([1 - se, se], -1)], axis=-2)


def synthetic(seed: int) -> Scenario:
    rng = np.random.default_rng([seed, 1])
    models = ("old", "good", "bad", "mixed")
    regions = (("EU", 4.0), ("US", 3.0), ("APAC", 2.0), ("LATAM", 1.0))
    metrics = (Metric("correct", YES_NO, "higher", 0.03), Metric("refused", YES_NO, "lower", 0.03))
    R = len(regions)
    p = np.empty((2, 4, R))
    base_c, base_r = rng.uniform(0.72, 0.85, R), rng.uniform(0.04, 0.10, R)
    p[0, 0], p[1, 0] = base_c, base_r
    p[0, 1], p[1, 1] = base_c + rng.uniform(0.04, 0.08, R), base_r - rng.uniform(0.0, 0.02, R)
    p[0, 2], p[1, 2] = base_c + rng.uniform(0.0, 0.04, R), base_r + rng.uniform(-0.01, 0.01, R)
    p[0, 2, rng.integers(R)] -= 0.15
    p[0, 3], p[1, 3] = base_c + rng.uniform(0.02, 0.05, R), base_r + rng.uniform(-0.02, 0.0, R)
    p[1, 3, rng.integers(R)] += 0.12
    p = np.clip(p, 0.01, 0.99)
    se, sp = rng.uniform(0.80, 0.95, (2, 2, 4, R))
    es = EvalSet(0, "synthetic", "old", tuple(Region(n, t) for n, t in regions), metrics)
    return Scenario(
        "synthetic",
        es,
        models,
        tuple(_binary(p[k]) for k in range(2)),
        tuple(_binary_confusion(se[k], sp[k]) for k in range(2)),
    )


def kestrel(seed: int = 0) -> Scenario:
    """The sample workspace's generating truth (same truth every seed; pools differ)."""
    truth = json.loads((ROOT / "sample_data" / "truth.json").read_text())
    models, regions = tuple(truth["models"]), tuple(truth["regions"])
    margins = truth["margins"]
    metrics = (
        Metric("correct", YES_NO, "higher", margins["correct"]),
        Metric("refused", YES_NO, "match", margins["refused"]),
        Metric("style", ("1", "2", "3", "4", "5"), "higher", margins["style"], pass_level=3),
    )
    dist, conf = [], []
    for metric in metrics:
        cells, judge = truth["cells"][metric.name], truth["judge"][metric.name]
        if metric.is_binary:
            p = np.array([[cells[m][r]["rate"] for r in regions] for m in models])
            se = np.array([[judge[m][r]["sensitivity"] for r in regions] for m in models])
            sp = np.array([[judge[m][r]["specificity"] for r in regions] for m in models])
            dist.append(_binary(p))
            conf.append(_binary_confusion(se, sp))
        else:
            d = np.array([[cells[m][r]["distribution"] for r in regions] for m in models])
            c = np.array([[judge[m][r]["confusion"] for r in regions] for m in models])
            dist.append(d / d.sum(-1, keepdims=True))
            conf.append(c / c.sum(-1, keepdims=True))
    es = EvalSet(
        0,
        "kestrel",
        truth["incumbent"],
        tuple(Region(r, float(t)) for r, t in truth["regions"].items()),
        metrics,
    )
    return Scenario("kestrel", es, models, tuple(dist), tuple(conf))


SCENARIOS = {"synthetic": synthetic, "kestrel": kestrel}


@dataclass
class World:
    """Pools of responses: every response's human and judge level per metric, and per cell the
    unlabelled response indices by judge level of the first (balance) metric."""

    scenario: Scenario
    H: list  # per metric [M, R, N] human levels
    J: list  # per metric [M, R, N] judge levels
    n: list  # per metric [M, R, L, L] labelled counts (h, j)
    pools: dict = field(default_factory=dict)  # (m, r) -> {judge level: [indices]}
    labelled: np.ndarray | None = None  # [M, R]
    by_level: np.ndarray | None = None  # [M, R, L_0]


def _draw(rng, probs: np.ndarray, n: int) -> np.ndarray:
    """n categorical draws per row of probs [..., L] -> [..., n]."""
    cum = np.cumsum(probs, axis=-1)
    u = rng.random((*probs.shape[:-1], n, 1))
    return (u > cum[..., None, :]).sum(-1).clip(0, probs.shape[-1] - 1).astype(np.int8)


def make_world(scenario: Scenario, seed: int, per_cell: int) -> World:
    rng = np.random.default_rng([seed, 2])
    H, J, n = [], [], []
    for d, c in zip(scenario.dist, scenario.confusion):
        h = _draw(rng, d, per_cell)  # [M, R, N]
        rows = np.take_along_axis(c, h[..., None].astype(np.int64), axis=2)  # [M, R, N, L]
        H.append(h)
        J.append(_draw_rows(rng, rows))
        n.append(np.zeros((*d.shape[:2], d.shape[-1], d.shape[-1]), np.int64))
    M, R = scenario.dist[0].shape[:2]
    L0 = scenario.dist[0].shape[-1]
    w = World(scenario, H, J, n)
    for m in range(M):
        for r in range(R):
            idx = rng.permutation(per_cell)
            w.pools[m, r] = {j: [i for i in idx if J[0][m, r, i] == j] for j in range(L0)}
    w.labelled = np.zeros((M, R), np.int64)
    w.by_level = np.zeros((M, R, L0), np.int64)
    return w


def _draw_rows(rng, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row of rows [..., L] -> [...]."""
    cum = np.cumsum(rows, axis=-1)
    u = rng.random(rows.shape[:-1])[..., None]
    return (u > cum).sum(-1).clip(0, rows.shape[-1] - 1).astype(np.int8)


def label(w: World, m: int, r: int, level: int) -> None:
    i = w.pools[m, r][level].pop()
    for k in range(len(w.H)):
        w.n[k][m, r, w.H[k][m, r, i], w.J[k][m, r, i]] += 1
    w.labelled[m, r] += 1
    w.by_level[m, r, level] += 1


def label_in_cell(w: World, m: int, r: int, rng, balanced: bool = True) -> bool:
    """Label one response of a cell: the judge level with the fewest labels first (balanced),
    or a uniformly random unlabelled response."""
    sizes = np.array([len(w.pools[m, r][j]) for j in range(w.by_level.shape[2])])
    if sizes.sum() == 0:
        return False
    if not balanced:
        label(w, m, r, int(rng.choice(len(sizes), p=sizes / sizes.sum())))
        return True
    for j in sorted(range(len(sizes)), key=lambda j: (w.by_level[m, r, j], rng.random())):
        if sizes[j]:
            label(w, m, r, j)
            return True
    return False


def counts(w: World) -> list[Counts]:
    s = w.scenario
    out = []
    for k, metric in enumerate(s.eval_set.metrics):
        L = metric.n_levels
        judged = (w.J[k][..., None] == np.arange(L)).sum(axis=2)  # [M, R, L]
        n = w.n[k]
        out.append(
            Counts(
                metric.name,
                metric.levels,
                s.models,
                s.eval_set.region_names,
                n.copy(),
                judged - n.sum(axis=2),
            )
        )
    return out


@dataclass
class Session:
    scenario: str
    policy: str
    labels: int
    settled: bool
    coverage: tuple[int, int]  # (cells covered, cells)
    wrong: int  # candidates whose final verdict differs from the true one (undecided counts)
    refits: int
    verdicts: dict = field(default_factory=dict)  # candidate -> final verdict
    labelled: list = field(default_factory=list)  # [M][R] labelled responses per cell


class _State:
    """What core/labelling/queue.py's scorer reads from a cell: .cell and .labelled."""

    def __init__(self, cell, labelled):
        self.cell, self.labelled = cell, labelled


def run_session(
    seed: int,
    policy: str,
    batch: int = 20,
    budget: int = 12000,
    per_cell: int = 1500,
    min_per_cell: int = 10,
    draws: int = 1000,
    threshold: float = 0.95,
    min_labels: int = 30,
    scenario: str = "synthetic",
    forecast: str = "preposterior",
) -> Session:
    s = SCENARIOS[scenario](seed)
    es = s.eval_set
    w = make_world(s, seed, per_cell)
    rng = np.random.default_rng([seed, POLICIES.index(policy)])
    weights = es.traffic_weights
    pass_levels = {m.name: m.pass_level for m in es.metrics}
    specs = {m.name: (m.direction, m.margin) for m in es.metrics}
    scorer = None
    total = refits = 0
    rule, cells = DecisionRule(threshold, min_labels), CellDraws()  # as a workspace keeps them

    def fit():
        return [
            instant_posterior(
                c, weights, draws=draws, seed=seed, pass_level=pass_levels[c.metric], cache=cells
            )
            for c in counts(w)
        ]

    while True:
        for _ in range(batch):
            if total >= budget:
                break
            cell = choose(w, policy, rng, scorer, min_per_cell)
            if cell is None or not label_in_cell(w, *cell, rng, balanced=policy != "random"):
                break
            total += 1
        posts = fit()
        refits += 1
        verdicts = decide_all(posts, specs, es.incumbent, rule, cells)
        settled = all(v.verdict != Verdict.UNDECIDED for v in verdicts)
        if settled or total >= budget or cell is None:
            break
        if policy == "active":
            scorer = make_scorer(posts, es, rule, forecast=forecast, cache=cells)
    truth = s.verdicts()
    wrong = sum(v.verdict != truth[v.candidate] for v in verdicts)
    covered = cells = 0
    for k, post in enumerate(posts):
        lo, hi = np.quantile(post.quantity(), [0.05, 0.95], axis=0)
        q = s.quantity(k)
        covered += int(((lo <= q) & (q <= hi)).sum())
        cells += q.size
    return Session(
        scenario,
        policy,
        total,
        settled,
        (covered, cells),
        wrong,
        refits,
        {v.candidate: v.verdict for v in verdicts},
        w.labelled.tolist(),
    )


def choose(w: World, policy: str, rng, scorer, min_per_cell: int) -> tuple[int, int] | None:
    """The next cell to label under a policy (None when nothing is left)."""
    M, R = w.labelled.shape
    left = np.array(
        [[sum(len(v) for v in w.pools[m, r].values()) for r in range(R)] for m in range(M)]
    )
    if left.sum() == 0:
        return None
    if (
        policy == "random"
    ):  # uniform over unlabelled responses: a cell in proportion to what is left
        flat = rng.choice(M * R, p=(left / left.sum()).ravel())
        return divmod(int(flat), R)
    open_ = [(m, r) for m in range(M) for r in range(R) if left[m, r] > 0]
    short = [c for c in open_ if w.labelled[c] < min_per_cell]
    if short:  # the emptiest cell below the minimum first, as core/labelling/queue.py does
        lowest = min(w.labelled[c] for c in short)
        pool = [c for c in short if w.labelled[c] == lowest]
        return pool[rng.integers(len(pool))]
    if policy == "active" and scorer is not None:
        models, regions = w.scenario.models, w.scenario.eval_set.region_names
        states = [_State((models[m], regions[r]), int(w.labelled[m, r])) for m, r in open_]
        weights = scorer(states)  # the queue draws a cell in proportion to these weights
        wv = np.array([max(weights.get((models[m], regions[r]), 0.0), 0.0) for m, r in open_])
        if wv.sum() > 0:
            return open_[rng.choice(len(open_), p=wv / wv.sum())]
    return open_[rng.integers(len(open_))]


def forecast_check(
    seed: int,
    scenario: str,
    per_cell: int = 1500,
    start: int = 30,
    draws: int = 1000,
    threshold: float = 0.95,
    min_labels: int = 30,
    steps: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
) -> list[float]:
    """Check core/decide/forecast.py's labels-needed forecast: after `start` labels in every cell, for each
    undecided (metric, region) comparison with a forecast of a + b labels, label t*a and t*b
    more (t in `steps`) in a copy of the world and refit; returns, per forecast, the smallest
    t that settled the comparison (inf when even the last step did not)."""
    import copy

    s = SCENARIOS[scenario](seed)
    es = s.eval_set
    w = make_world(s, seed, per_cell)
    rng = np.random.default_rng([seed, 99])
    M, R = w.labelled.shape
    for m in range(M):
        for r in range(R):
            for _ in range(start):
                label_in_cell(w, m, r, rng)
    weights = es.traffic_weights
    specs = {m.name: (m.direction, m.margin) for m in es.metrics}
    kidx = {m.name: k for k, m in enumerate(es.metrics)}
    posts = [instant_posterior(c, weights, draws=draws, seed=seed) for c in counts(w)]
    found = []
    for cand in decide_all(posts, specs, es.incumbent, DecisionRule(threshold, min_labels)):
        for cell in cand.cells:
            fc = cell.forecast
            if fc is None or fc.capped or fc.total == 0:
                continue
            k, r = kidx[cell.metric], es.region_names.index(cell.region)
            c, i = s.models.index(cand.candidate), s.models.index(es.incumbent)
            sim = copy.deepcopy(w)
            done_c = done_i = 0
            when = float("inf")
            for t in steps:
                while done_c < round(t * fc.candidate_labels) and label_in_cell(sim, c, r, rng):
                    done_c += 1
                while done_i < round(t * fc.incumbent_labels) and label_in_cell(sim, i, r, rng):
                    done_i += 1
                post = instant_posterior(counts(sim)[k], weights, draws=draws, seed=seed)
                q = post.quantity()
                direction, margin = specs[cell.metric]
                if (
                    decide(q[:, c, r] - q[:, i, r], direction, margin, threshold).verdict
                    != Verdict.UNDECIDED
                ):
                    when = t
                    break
            found.append(when)
    return found


def report(name: str, results: dict[str, list[Session]], elapsed: float, args) -> None:
    print(
        f"\n== {name}: batches of {args.batch}, budget {args.budget}, {args.per_cell} responses "
        f"per cell, {args.seeds} seeds, {elapsed:.0f} s"
    )
    mean = {}
    for p, ss in results.items():
        mean[p] = float(np.mean([s.labels for s in ss]))
        cov = sum(s.coverage[0] for s in ss) / sum(s.coverage[1] for s in ss)
        print(
            f"{p:>6}: mean {mean[p]:7.0f} labels  (per seed {[s.labels for s in ss]}), "
            f"budget hit {sum(not s.settled for s in ss)}/{len(ss)}, "
            f"90% coverage {cov:.1%} of {sum(s.coverage[1] for s in ss)} cells, "
            f"wrong verdicts {sum(s.wrong for s in ss)}"
        )
    for base in ("random", "queue"):
        ratio = mean["active"] / mean[base]
        per_seed = [a.labels / b.labels for a, b in zip(results["active"], results[base])]
        print(
            f"active / {base}: {ratio:.2f} ({1 - ratio:.0%} fewer labels); per seed "
            + ", ".join(f"{x:.2f}" for x in per_seed)
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", choices=(*SCENARIOS, "both"), default="both")
    ap.add_argument("--seeds", type=int, default=5, help="labelling sessions per policy (0: skip)")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--budget", type=int, default=12000)
    ap.add_argument("--per-cell", type=int, default=1500)
    ap.add_argument(
        "--forecast-seeds",
        type=int,
        default=3,
        help="seeds for the check of the labels-needed forecast (0: skip)",
    )
    args = ap.parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    for name in names if args.seeds > 0 else ():
        results: dict[str, list[Session]] = {p: [] for p in POLICIES}
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            for policy in POLICIES:
                s = run_session(seed, policy, args.batch, args.budget, args.per_cell, scenario=name)
                results[policy].append(s)
                print(
                    f"{name} seed {seed} {policy:>6}: {s.labels:5d} labels, "
                    f"settled={s.settled}, coverage {s.coverage[0]}/{s.coverage[1]}, "
                    f"wrong verdicts {s.wrong}, verdicts {s.verdicts}",
                    flush=True,
                )
        report(name, results, time.perf_counter() - t0, args)
    if args.forecast_seeds:
        print(
            "\n== labels-needed forecast (core/decide/verdicts), after 30 labels in every cell: label "
            "t x the forecast in a copy, refit, is the comparison settled?"
        )
        for name in names:
            ts = [
                t
                for seed in range(args.forecast_seeds)
                for t in forecast_check(seed, name, args.per_cell)
            ]
            if not ts:
                print(f"{name}: no undecided comparison with a forecast")
                continue
            arr = np.array(ts)
            shares = ", ".join(f"<= {x:g}x: {np.mean(arr <= x):.0%}" for x in (0.5, 1, 1.5, 2, 4))
            print(
                f"{name}: {len(ts)} forecasts over {args.forecast_seeds} seeds; settled at "
                f"{shares}; median {np.median(arr):g}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
