"""How often decisions go wrong on simulated workspaces with known truth (issue 14).

Each workspace has 4 models (inc, the incumbent; cand; even, +0.02 everywhere; worse, -0.15
everywhere) x 6 regions x 200 judged responses per cell, one yes/no metric ("higher", margin
0.05), incumbent rates drawn from U(0.60, 0.80) per region. The judge errs differently by model,
region and cell: logit false-positive rate -2.2 + N(0, 0.3) per model + N(0, 0.3) per region +
N(0, 0.2) per cell, discrimination N(4.0, 0.4) per model (sensitivity ~0.86, false positives
~0.10). Labels come as the queue gives them: 10 per cell, balancing the judge's levels, from a
rater who is always right. Every workspace is fitted with the real default fitter
(core.model.fit.fit_counts, default Settings) and decided with core.decide.verdicts's defaults.

Scenarios:
- margin: cand is +0.12 in five regions and exactly at the margin (-0.05) in the sixth. A cell
  at the margin should be called ready at most ~5% of the time (threshold 0.95), and so should
  the candidate, whose every cell must hold. Run at each of --labels (10 and 20 per cell).
- unlabelled: cand is +0.12 in five regions and -0.10 in the sixth, where nobody has labelled
  anything (no model) and the judge is lenient (+1.5 on the logit of its yes rate). No cell
  without labels may be ready; printed also is the coverage of the unlabelled cells' intervals.
- triage: the margin world, plus labels chosen in the browse screen: per cell 4 open labels on
  responses picked because the judge looks wrong (a response the judge got wrong with
  probability 0.8, else any), and an open second opinion on every blind-labelled response where
  judge and human disagree (wrong 20% of the time, a 1-1 tie then) -- by another rater in even
  cells, by the same rater (replacing their blind label) in odd ones. Labels go through a real
  Store and core.model.counts.counts_for; the 90% intervals should cover the truth in >= 88% of cells.
  Every 4th workspace is also fitted with the open labels counted (include_open=True).
- until-ready ("label until ready", bench/until_ready.py): the margin world in a workspace; one
  rater labels through the app's active queue and looks at the verdicts every --every labels
  (the instant posterior before the first fit, then the kept fit updated by the labels since,
  refitted when the update is unusable) until every candidate is settled or --budget labels
  past the fill; counted are the runs in which the margin cell or cand was ever shown ready.

Printed per scenario: the share of fits in which each candidate cell was called ready, the share
in which the candidate was, coverage, how often the cell checks held back what the pooled
posterior alone called ready (and whether the cell truly was at or below the margin: caught, or
above it: cost), failed diagnostics and the time taken; at the end the targets of issue 22
against what this run measured.

Run: .venv/bin/python bench/decision_errors.py [--fits 200] [--labels 10,20] [--runs 200]
     [--only margin,unlabelled,triage,until-ready] [--budget 300] [--every 10] [--cache DIR]
With --cache, every fit is kept there (posterior draws, counts, truth) and reused when the bench
runs again with the same options, so the decision rules can be re-measured without refitting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.special import expit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from changeover.core.decide.cell_checks import widen_unlabelled  # noqa: E402
from changeover.core.decide.verdicts import decide_all  # noqa: E402
from changeover.core.model.counts import Counts, counts_for  # noqa: E402
from changeover.core.model.fit import Settings, fit_counts  # noqa: E402
from changeover.core.model.instant import cell_flags  # noqa: E402
from changeover.core.model.posterior import Posterior, from_bytes, to_bytes  # noqa: E402
from changeover.core.store import Store  # noqa: E402
from changeover.core.types import Direction, EvalSet, Metric, Region, Verdict  # noqa: E402

MODELS = ("inc", "cand", "even", "worse")
REGIONS = tuple(f"r{k}" for k in range(6))
MARGIN = 0.05
PER_CELL = 200
WEIGHTS = [1 / len(REGIONS)] * len(REGIONS)
SPECS = {"correct": (Direction.HIGHER, MARGIN)}
SCENARIOS = ("margin", "unlabelled", "triage")
STREAM = {"margin": 0, "unlabelled": 1, "triage": 2, "until-ready": 3}  # rng streams


@dataclass
class World:
    theta: np.ndarray  # [M, R] true rates
    fpr: np.ndarray  # [M, R] the judge's P(yes | human no)
    se: np.ndarray  # [M, R] the judge's P(yes | human yes)
    labels: np.ndarray  # [M, R] blind labels per cell
    judge_base: np.ndarray  # [M, R] logit fpr from the model and region effects (no cell's own)
    beta: np.ndarray  # [M, 1] the judge's discrimination per model (logit se - logit fpr)


def make_world(rng: np.random.Generator, scenario: str, labels: int) -> World:
    M, R = len(MODELS), len(REGIONS)
    inc = rng.uniform(0.60, 0.80, R)
    cand = inc + 0.12
    cand[-1] = inc[-1] - (0.10 if scenario == "unlabelled" else MARGIN)
    theta = np.clip(np.stack([inc, cand, inc + 0.02, inc - 0.15]), 0.02, 0.98)
    base = -2.2 + rng.normal(0, 0.3, (M, 1)) + rng.normal(0, 0.3, (1, R))
    logit_fpr = base + rng.normal(0, 0.2, (M, R))
    beta = rng.normal(4.0, 0.4, (M, 1))
    plan = np.full((M, R), labels)
    if scenario == "unlabelled":
        logit_fpr[:, -1] += 1.5  # a lenient judge where nobody labelled
        base[:, -1] += 1.5
        plan[:, -1] = 0
    return World(theta, expit(logit_fpr), expit(logit_fpr + beta), plan, base, beta)


def draw_cell(rng, theta: float, fpr: float, se: float) -> tuple[np.ndarray, np.ndarray]:
    """(human, judge) levels of one cell's responses."""
    h = (rng.random(PER_CELL) < theta).astype(int)
    j = (rng.random(PER_CELL) < np.where(h == 1, se, fpr)).astype(int)
    return h, j


def balanced(rng, judge: np.ndarray, k: int) -> np.ndarray:
    """k responses as the queue picks them: the judge level with the fewest labels first."""
    pools = {level: list(rng.permutation(np.flatnonzero(judge == level))) for level in (0, 1)}
    taken, chosen = {0: 0, 1: 0}, []
    for _ in range(k):
        options = [level for level in (0, 1) if pools[level]]
        if not options:
            break
        level = min(options, key=lambda x: (taken[x], rng.random()))
        chosen.append(pools[level].pop())
        taken[level] += 1
    return np.array(chosen, dtype=int)


def simulate_counts(rng, world: World) -> Counts:
    """Counts of a world labelled by the queue alone (margin and unlabelled scenarios)."""
    M, R = world.theta.shape
    n = np.zeros((M, R, 2, 2), np.int64)
    u = np.zeros((M, R, 2), np.int64)
    for m in range(M):
        for r in range(R):
            h, j = draw_cell(rng, world.theta[m, r], world.fpr[m, r], world.se[m, r])
            picked = balanced(rng, j, int(world.labels[m, r]))
            np.add.at(n[m, r], (h[picked], j[picked]), 1)
            u[m, r] = np.bincount(np.delete(j, picked), minlength=2)
    return Counts("correct", ("no", "yes"), MODELS, REGIONS, n, u)


def triage_store(rng, world: World) -> tuple[Store, EvalSet]:
    """A workspace with the queue's blind labels and browse-triage open labels (see above)."""
    M, R = world.theta.shape
    es = EvalSet(
        0,
        "triage",
        "inc",
        tuple(Region(r, 1.0) for r in REGIONS),
        (Metric("correct", ("no", "yes"), Direction.HIGHER, MARGIN),),
    )
    store = Store.memory()
    truth: dict[tuple[str, str], tuple[int, int]] = {}
    with store.importing_eval_set(es) as batch:
        rows, verdicts = [], []
        for r, region in enumerate(REGIONS):
            for m, model in enumerate(MODELS):
                h, j = draw_cell(rng, world.theta[m, r], world.fpr[m, r], world.se[m, r])
                for i in range(PER_CELL):
                    item = f"{region}-{i}"
                    truth[(item, model)] = (int(h[i]), int(j[i]))
                    rows.append((item, region, "q", None, model, "a"))
                    verdicts.append((item, model, "correct", "judge", int(j[i]), None, None, None))
        batch.add_responses(rows)
        batch.add_judgments(verdicts)
    es = store.eval_set("triage")
    ids: dict[tuple[str, str], int] = {}
    page = store.responses_page(es.id)
    while page:
        ids.update({(row.item_id, row.model): row.response_id for row in page})
        page = store.responses_page(es.id, page[-1].response_id)
    for r, region in enumerate(REGIONS):
        for m, model in enumerate(MODELS):
            keys = [(f"{region}-{i}", model) for i in range(PER_CELL)]
            h = np.array([truth[k][0] for k in keys])
            j = np.array([truth[k][1] for k in keys])
            picked = balanced(rng, j, int(world.labels[m, r]))
            for i in picked:
                store.add_rating(ids[keys[i]], "correct", "blind", int(h[i]))
            rest = np.setdiff1d(np.arange(PER_CELL), picked)
            wrong = rest[h[rest] != j[rest]]
            for _ in range(4):  # open labels on responses that look wrongly judged
                pool = wrong if wrong.size and rng.random() < 0.8 else rest
                i = int(rng.choice(pool))
                store.add_rating(ids[keys[i]], "correct", "triage", int(h[i]), blind=False)
            rater = "triage" if (m + r) % 2 == 0 else "blind"  # odd cells: the same rater
            for i in picked[h[picked] != j[picked]]:  # second opinions where they disagree
                value = int(h[i]) if rng.random() >= 0.2 else 1 - int(h[i])
                store.add_rating(ids[keys[i]], "correct", rater, value, blind=False)
    return store, es


@dataclass
class Fit:
    theta: np.ndarray
    counts: Counts
    posterior: Posterior
    ok: bool
    seconds: float


def run_fit(counts: Counts, theta: np.ndarray) -> Fit:
    result = fit_counts({"correct": counts}, WEIGHTS, Settings())
    return Fit(theta, counts, result.posteriors[0], result.diagnostics.ok, result.seconds)


def _save(path: Path, fit: Fit) -> None:
    c = fit.counts
    np.savez(
        path,
        theta=fit.theta,
        n=c.n,
        u=c.u,
        posterior=np.frombuffer(to_bytes([fit.posterior]), dtype=np.uint8),
        meta=np.frombuffer(
            json.dumps({"ok": fit.ok, "seconds": fit.seconds, "ties": c.ties}).encode(), np.uint8
        ),
    )


def _load(path: Path) -> Fit:
    data = np.load(path)
    meta = json.loads(data["meta"].tobytes().decode())
    counts = Counts(
        "correct", ("no", "yes"), MODELS, REGIONS, data["n"], data["u"], ties=meta["ties"]
    )
    post = from_bytes(data["posterior"].tobytes())[0]
    return Fit(data["theta"], counts, post, meta["ok"], meta["seconds"])


def fits(scenario: str, k: int, labels: int, cache: Path | None) -> list[Fit]:
    """The fits of workspace k of a scenario (two for every 4th triage workspace)."""
    variants = ["default"] + (["open"] if scenario == "triage" and k % 4 == 0 else [])
    out = []
    for variant in variants:
        path = None if cache is None else cache / f"{scenario}-{labels}-{k}-{variant}.npz"
        if path is not None and path.exists():
            out.append(_load(path))
            continue
        rng = np.random.default_rng([2026, STREAM[scenario], k])
        world = make_world(rng, scenario, labels)
        if scenario == "triage":
            store, es = triage_store(rng, world)
            counts = counts_for(store, es, include_open=variant == "open")["correct"]
            store.close()
        else:
            counts = simulate_counts(rng, world)
        fit = run_fit(counts, world.theta)
        if path is not None:
            _save(path, fit)
        out.append(fit)
    return out


def decided(fit: Fit):
    """The candidates' decisions, with the flags today's code derives from the counts."""
    post = replace(fit.posterior, flags=cell_flags(fit.counts), counts=fit.counts)
    return {d.candidate: d for d in decide_all([post], SPECS, "inc")}


def _covered(fit: Fit, widen: bool = False) -> np.ndarray:
    """[M, R] whether each cell's 90% interval covers the true rate (with widen: after
    core.decide.cell_checks.widen_unlabelled)."""
    post = replace(fit.posterior, flags=cell_flags(fit.counts))
    post = widen_unlabelled(post) if widen else post
    lo, hi = np.quantile(post.quantity(), [0.05, 0.95], axis=0)
    return (lo <= fit.theta) & (fit.theta <= hi)


def measure(results: list[Fit], open_results: Sequence[Fit] = ()) -> dict:
    """Error rates over fits: decided by core.decide.verdicts ("rule") and by the pooled posterior
    alone, P >= 0.95 in every cell ("pooled", the rule before the cell checks)."""
    k = len(results)
    ready = np.zeros((k, len(MODELS) - 1, len(REGIONS)), bool)
    pooled = np.zeros_like(ready)
    p_cand = np.zeros((k, 2, len(REGIONS)))  # cand's P(condition): pooled, own data
    covered, unl_covered, widened = [], [], []
    for f, fit in enumerate(results):
        d = decided(fit)
        for m, model in enumerate(MODELS[1:]):
            ready[f, m] = [c.decision.verdict == Verdict.READY for c in d[model].cells]
            pooled[f, m] = [c.decision.probability >= 0.95 - 1e-9 for c in d[model].cells]
        p_cand[f] = [
            [c.decision.probability for c in d["cand"].cells],
            [np.nan if c.own_probability is None else c.own_probability for c in d["cand"].cells],
        ]
        labelled = fit.counts.labels_per_cell > 0
        cover = _covered(fit)
        covered.append(cover[labelled])
        unl_covered.append(cover[~labelled])
        widened.append(_covered(fit, widen=True)[~labelled])
    unlabelled = np.stack([f.counts.labels_per_cell[1:] == 0 for f in results])
    unlabelled |= np.stack([f.counts.labels_per_cell[:1] == 0 for f in results])
    # The checks fire where the pooled posterior alone said ready and the rule did not; they
    # catch a cell whose true delta is at or below the margin, and cost one that is above it.
    truly = np.stack([f.theta[1:] - f.theta[:1] > -MARGIN + 1e-12 for f in results])
    held = pooled & ~ready
    return {
        "fits": k,
        "cells": {name: x[:, 0].mean(axis=0) for name, x in (("rule", ready), ("pooled", pooled))},
        "candidate": {
            name: {model: float(x[:, m].all(axis=1).mean()) for m, model in enumerate(MODELS[1:])}
            for name, x in (("rule", ready), ("pooled", pooled))
        },
        "unlabelled_ready": {
            "rule": int((ready & unlabelled).sum()),
            "pooled": int((pooled & unlabelled).sum()),
        },
        "coverage": np.concatenate(covered),
        "unlabelled_coverage": np.concatenate(unl_covered),
        "widened_coverage": np.concatenate(widened),
        "open_coverage": np.concatenate([_covered(f).ravel() for f in open_results])
        if open_results
        else np.array([]),
        "failed": sum(not f.ok for f in results),
        "fit_seconds": sum(f.seconds for f in results) + sum(f.seconds for f in open_results),
        "checks": {
            "pooled_ready": int(pooled.sum()),
            "held": int(held.sum()),
            "caught": int((held & ~truly).sum()),
            "cost": int((held & truly).sum()),
        },
        "bars": best_bars(p_cand),
        "wrong_ready": {
            "rule": int((ready & ~truly).sum()),
            "pooled": int((pooled & ~truly).sum()),
        },
    }


def best_bars(p: np.ndarray, rate: float = 0.05) -> dict:
    """The frontier on these fits (margin world: cand's last region at the margin, the others
    +0.12): for the pooled posterior alone and for the cell's own data alone, the lowest bar
    that calls the margin cell ready in at most `rate` of them, and the share of the other
    cells ready at it (in-sample, so a little optimistic)."""
    out = {}
    for j, name in enumerate(("pooled", "own")):
        margin, others = p[:, j, -1], p[:, j, :-1]
        if np.isnan(margin).any():
            continue
        allowed = int(np.floor(rate * margin.size))
        top = np.sort(margin)[::-1]
        bar = top[allowed] + 1e-9 if allowed < top.size else 0.0
        out[name] = (bar, float((margin >= bar).mean()), float((others >= bar).mean()))
    return out


def summarise(name: str, m: dict, seconds: float) -> None:
    k = m["fits"]
    print(
        f"\n== {name}: {k} fits; fitting took {m['fit_seconds']:.0f} s "
        f"({m['fit_seconds'] / max(k, 1):.1f} s per fit), this run {seconds:.0f} s"
    )
    for rule in ("pooled", "rule"):
        label = (
            "pooled posterior alone" if rule == "pooled" else "core.decide.verdicts (with checks)"
        )
        cells = ", ".join(f"{r} {x:.3f}" for r, x in zip(REGIONS, m["cells"][rule]))
        c = m["candidate"][rule]
        print(f"{label}: cand's cells ready in {cells}")
        print(
            f"  {'':24} candidates ready: cand {c['cand']:.3f}, even (truly ready) "
            f"{c['even']:.3f}, worse (truly not) {c['worse']:.3f}; ready cells without labels "
            f"{m['unlabelled_ready'][rule]}"
        )
    cov, unl, opened = m["coverage"], m["unlabelled_coverage"], m["open_coverage"]
    print(f"90% coverage, labelled cells: {cov.mean():.3f} of {cov.size}")
    if unl.size:
        wide = m["widened_coverage"]
        print(
            f"90% coverage, unlabelled cells: {unl.mean():.3f} of {unl.size}; "
            f"{wide.mean():.3f} after widen_unlabelled"
        )
    if opened.size:
        print(
            f"with the open labels counted (include_open): 90% coverage {opened.mean():.3f} "
            f"of {opened.size} cells"
        )
    ch = m["checks"]
    print(
        f"the cell checks: the pooled posterior alone called {ch['pooled_ready']} cells ready; "
        f"the checks held back {ch['held']} of them: {ch['caught']} truly at or below the "
        f"margin (caught), {ch['cost']} above it (cost); ready cells truly at or below the "
        f"margin: {m['wrong_ready']['rule']} with the checks, {m['wrong_ready']['pooled']} without"
    )
    if name.startswith("margin"):
        for rule, (bar, margin, good) in m["bars"].items():
            print(
                f"best single bar, {rule} alone: P >= {bar:.4f} calls the margin cell ready in "
                f"{margin:.3f} of fits and the +0.12 cells in {good:.3f}"
            )
    print(f"fits that failed diagnostics: {m['failed']}")


def targets(margin: dict[int, dict], ready_runs: dict | None) -> None:
    """The issue's targets against what this run measured."""
    rows: list[tuple[str, str, float, bool | None]] = []
    for labels in (10, 20):
        if labels in margin:
            x = float(margin[labels]["cells"]["rule"][-1])
            rows.append((f"margin cell ready, {labels} labels per cell", "<= 5%", x, x <= 0.05))
    if 10 in margin:
        five = margin[10]["cells"]["rule"][:-1]
        good = float(np.mean(five))
        name = f"+0.12 cells ready, 10 labels per cell ({np.min(five):.0%}-{np.max(five):.0%})"
        rows.append((name, ">= 65%", good, good >= 0.65))
    if ready_runs is not None:
        x, runs = ready_runs["either"], ready_runs["runs"]
        lo, hi = ready_runs["interval"]
        name = f"label until ready: margin cell or cand ready ({runs} runs; 95% {lo:.1%}-{hi:.1%})"
        # the target is over 200 sessions: fewer cannot show it met
        rows.append((name, "<= 5%", x, x <= 0.05 if runs >= 200 or x > 0.05 else None))
    print("\n== targets (issue 22), the default fit with the cell checks")
    print(f"{'':72s} {'target':>7s} {'measured':>9s}  met")
    for name, goal, value, met in rows:
        shown = {True: "yes", False: "NO", None: "too few runs"}[met]
        print(f"{name:72s} {goal:>7s} {value:9.1%}  {shown}")
    print(
        "(SummEval's coverage >= 88% and no cell off by more than 0.5 levels: "
        "bench/scale_acceptance.py;\n XSTest's and the sample workspace's verdicts no worse: "
        "tests/test_verdicts_real.py;\n what any rule could reach from a cell's own data: "
        "bench/decision_bound.py)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=200, help="simulated workspaces per scenario")
    ap.add_argument(
        "--only", default=",".join((*SCENARIOS, "until-ready")), help="comma-separated scenarios"
    )
    ap.add_argument(
        "--labels", default="10,20", help="blind labels per cell (margin: each; others: the first)"
    )
    ap.add_argument("--cache", type=Path, default=None, help="keep and reuse fits here")
    ap.add_argument("--runs", type=int, default=200, help="label-until-ready sessions")
    ap.add_argument("--budget", type=int, default=300, help="labels after the fill, per session")
    ap.add_argument("--every", type=int, default=10, help="labels between looks")
    args = ap.parse_args(argv)
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
    label_counts = [int(x) for x in args.labels.split(",")]
    margin: dict[int, dict] = {}
    ready_runs = None
    for name in args.only.split(","):
        if name == "until-ready":
            import until_ready

            ready_runs = until_ready.sessions(args.runs, args.budget, args.every, args.cache)
            until_ready.summarise(ready_runs, args.every, args.budget)
            continue
        for labels in label_counts if name == "margin" else label_counts[:1]:
            start = time.perf_counter()
            default, opened = [], []
            for k in range(args.fits):
                got = fits(name, k, labels, args.cache)
                default.append(got[0])
                opened += got[1:]
                if (k + 1) % 10 == 0:
                    print(f"{name}: {k + 1}/{args.fits} fits", file=sys.stderr, flush=True)
            m = measure(default, opened)
            summarise(f"{name}, {labels} labels per cell", m, time.perf_counter() - start)
            if name == "margin":
                margin[labels] = m
    targets(margin, ready_runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
