"""The "label until ready" scenario of bench/decision_errors.py: a rater labels the margin world
through the app's active queue and looks at the verdicts every few labels until they settle.

One run, as a user takes it, through core/workspace.py (the path the app and the CLI take):
the margin world (bench/decision_errors.py: cand +0.12 in five regions, exactly at the margin in
the sixth) imported into an in-memory workspace; one rater labels blind what `Workspace.queue`
hands out (every cell filled to 10 first, emptiest first; after a fit, the cells whose labels
settle the most open decisions), answering with the truth. Every `every` labels the rater looks
at `Workspace.results`: the instant posterior before the first fit, afterwards the kept fit,
updated by the labels given since (Pareto-smoothed reweighting), exactly what the results
screen shows. The first fit comes when every cell holds the queue's minimum; after that the
rater refits whenever the screen says the update is unusable (Pareto k > 0.7) and then takes a
fresh queue (its scorer comes from the latest fit). A run stops when every candidate is settled
(ready or not ready) or after `budget` labels past the fill.

Counted per run: whether the margin cell (cand in the last region) or the candidate cand was
ever shown "ready" at a look, the labels given, the fits run, how each run ended, and the margin
cell's population delta (cand's share of "yes" minus inc's over the world's judged responses,
which the labels are drawn from). Printed: the false-ready share with its 95% interval, and how
many false readies came from worlds whose own responses clear the margin.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from changeover.core.decide import cell_checks
from changeover.core.decide.rule import MIN_LABELS_PER_CELL
from changeover.core.store import Store
from changeover.core.types import Direction, EvalSet, Metric, Region, Source, Verdict
from changeover.core.workspace import Workspace

RATER = "rater"


@dataclass
class Run:
    """One labelling session and what the rater saw."""

    margin_ready: bool = False  # the margin cell shown "ready" at some look
    cand_ready: bool = False  # the candidate cand shown "ready" at some look
    first_ready_look: int | None = None  # labels given when the margin cell or cand was first ready
    labels: int = 0
    fits: int = 0
    failed_fits: int = 0
    looks: int = 0
    ended: str = ""  # "settled" | "budget" | "exhausted"
    verdicts: dict = field(default_factory=dict)  # candidate -> last verdict seen
    trace: list = field(
        default_factory=list
    )  # per look: (labels, {(cand, region): (P, own P, nc, ni)})
    seconds: float = 0.0
    # cand's rate minus inc's in the margin cell over the world's judged responses (the
    # population the labels are drawn from; theta's delta is -margin, this one varies)
    population_delta: float | None = None
    # per look, the margin cell: [labels given, P, own P (None: instant), nc, ni, verdict]
    margin_trace: list = field(default_factory=list)


def world_store(rng, theta, fpr, se, models, regions, margin, per_cell):
    """(store, eval set, truth {response id: human level}, rates [M, R]: the share of each
    cell's responses whose human level is "yes") of one world: every response of every cell
    judged, none labelled."""
    es = EvalSet(
        0,
        "until-ready",
        models[0],
        tuple(Region(r, 1.0) for r in regions),
        (Metric("correct", ("no", "yes"), Direction.HIGHER, margin),),
    )
    store = Store.memory()
    human: dict[tuple[str, str], int] = {}
    with store.importing_eval_set(es) as batch:
        rows, verdicts = [], []
        for r, region in enumerate(regions):
            for m, model in enumerate(models):
                h = (rng.random(per_cell) < theta[m, r]).astype(int)
                j = (rng.random(per_cell) < np.where(h == 1, se[m, r], fpr[m, r])).astype(int)
                for i in range(per_cell):
                    item = f"{region}-{i}"
                    human[(item, model)] = int(h[i])
                    rows.append((item, region, "q", None, model, "a"))
                    verdicts.append((item, model, "correct", "judge", int(j[i]), None, None, None))
        batch.add_responses(rows)
        batch.add_judgments(verdicts)
    es = store.eval_set("until-ready")
    rates = np.array(
        [
            [np.mean([human[(f"{r}-{i}", m)] for i in range(per_cell)]) for r in regions]
            for m in models
        ]
    )
    truth: dict[int, int] = {}
    page = store.responses_page(es.id)
    while page:
        truth.update({row.response_id: human[(row.item_id, row.model)] for row in page})
        page = store.responses_page(es.id, page[-1].response_id)
    return store, es, truth, rates


def _look(results, run: Run, margin_region: str, cand: str = "cand") -> bool:
    """Record what the screen shows; True when every candidate is settled."""
    run.looks += 1
    seen = {}
    settled = True
    for c in results.candidates:
        run.verdicts[c.candidate] = c.verdict
        settled &= c.verdict in (Verdict.READY, Verdict.NOT_READY)
        for cell in c.cells:
            seen[(c.candidate, cell.region)] = (
                cell.decision.probability,
                cell.own_probability,
                cell.candidate_labels,
                cell.incumbent_labels,
                cell.decision.verdict,
            )
        if c.candidate != cand:
            continue
        margin_cell = next(x for x in c.cells if x.region == margin_region)
        run.margin_trace.append(
            [
                run.labels,
                margin_cell.decision.probability,
                margin_cell.own_probability,
                margin_cell.candidate_labels,
                margin_cell.incumbent_labels,
                str(margin_cell.decision.verdict),
            ]
        )
        ready_now = margin_cell.decision.verdict == Verdict.READY or c.verdict == Verdict.READY
        if ready_now and run.first_ready_look is None:
            run.first_ready_look = run.labels
        run.margin_ready |= margin_cell.decision.verdict == Verdict.READY
        run.cand_ready |= c.verdict == Verdict.READY
    run.trace.append((run.labels, seen))
    return settled


def label_until_ready(
    store: Store, es: EvalSet, truth: dict[int, int], seed: int, every: int = 10, budget: int = 600
) -> Run:
    """One session (see the module docstring)."""
    start = time.perf_counter()
    ws = Workspace(store)
    run = Run()
    margin_region = es.region_names[-1]
    cells = len(store.models(es.id)) * len(es.region_names)
    fill = cells * MIN_LABELS_PER_CELL
    queue = ws.queue(es, RATER, seed=seed, overlap=0)
    fitted = False
    while True:
        pick = queue.next()
        if pick is None:
            run.ended = "exhausted"
            break
        store.add_rating(pick.response_id, "correct", RATER, truth[pick.response_id])
        queue.done(pick.response_id)
        run.labels += 1
        if run.labels % every:
            continue
        if not fitted and run.labels >= fill:
            fitted = _fit(ws, es, run)
            queue = ws.queue(es, RATER, seed=seed + run.fits, overlap=0)
        results = ws.results(es)
        if fitted and results.stale and results.source != Source.UPDATED:
            _fit(ws, es, run)  # the screen says the update is unusable: refit
            queue = ws.queue(es, RATER, seed=seed + run.fits, overlap=0)
            results = ws.results(es)
        if _look(results, run, margin_region):
            run.ended = "settled"
            break
        if run.labels >= fill + budget:
            run.ended = "budget"
            break
    run.seconds = time.perf_counter() - start
    return run


def _fit(ws: Workspace, es: EvalSet, run: Run) -> bool:
    record = ws.fit(es)
    run.fits += 1
    run.failed_fits += not record.diagnostics.ok
    return True


def summary(runs: list[Run]) -> dict:
    """Shares over runs."""
    k = max(len(runs), 1)
    either = sum(r.margin_ready or r.cand_ready for r in runs)  # the target's count
    return {
        "runs": len(runs),
        "margin_ready": sum(r.margin_ready for r in runs) / k,
        "cand_ready": sum(r.cand_ready for r in runs) / k,
        "either": either / k,
        "labels": float(np.mean([r.labels for r in runs])) if runs else 0.0,
        "fits": float(np.mean([r.fits for r in runs])) if runs else 0.0,
        "failed_fits": sum(r.failed_fits for r in runs),
        "ended": {e: sum(r.ended == e for r in runs) for e in ("settled", "budget", "exhausted")},
        "verdicts": {
            c: {
                v: sum(r.verdicts.get(c) == v for r in runs)
                for v in (Verdict.READY, Verdict.NOT_READY, Verdict.UNDECIDED)
            }
            for c in ("cand", "even", "worse")
        },
        "seconds": sum(r.seconds for r in runs),
        "interval": binomial_interval(either, len(runs)),
        "population": population(runs),
        "replayed": replayed(runs),
    }


def binomial_interval(hits: int, runs: int, level: float = 0.95) -> tuple[float, float]:
    """The Clopper-Pearson interval of a share seen in `hits` of `runs` (200 sessions at 5%
    leave it 2.4-9.0%: one run of the bench cannot tell 4% from 6%)."""
    from scipy.stats import beta

    tail = (1 - level) / 2
    lo = float(beta.ppf(tail, hits, runs - hits + 1)) if hits else 0.0
    hi = float(beta.ppf(1 - tail, hits + 1, runs - hits)) if hits < runs else 1.0
    return lo, hi


def population(runs: list[Run]) -> dict:
    """Where the false readies came from. The margin cell's true rates differ by exactly the
    margin, but its 200 judged responses are a draw from them: their own delta varies (sd about
    0.046) and the labels can only ever tell that one. Counted: runs whose population delta is
    above the margin by `clear` (1.645 of that sd: a cell whose every response was labelled
    would be shown ready there), among all runs and among the false readies."""
    import decision_errors as sim

    known = [r for r in runs if r.population_delta is not None]
    clear = 1.645 * float(np.sqrt(2 * 0.7 * 0.3 / sim.PER_CELL))
    false = [r for r in known if r.margin_ready or r.cand_ready]

    def clears(r: Run) -> bool:
        return r.population_delta is not None and r.population_delta > -sim.MARGIN + clear

    return {
        "known": len(known),
        "clear": clear,
        "above": sum(map(clears, known)),
        "false": len(false),
        "false_above": sum(map(clears, false)),
        "false_deltas": sorted(round(r.population_delta or 0.0, 3) for r in false),
    }


@dataclass(frozen=True)
class Bars:
    """The bars "ready" must reach, as core/decide/cell_checks.threshold_at draws them, with its
    constants open to change, for replaying kept looks: with rho = n / MIN_CELL_LABELS between
    1 and max_rho (n the harmonic mean of the two cells' labels), own data 1 - (1 - g) * own /
    rho**growth and the pooled posterior 1 - (1 - g) * pooled / rho**growth. The defaults are
    the rule as it is (a test holds them to threshold_at)."""

    name: str
    own: float = 1.0
    pooled: float = cell_checks.POOLED_SHARE
    growth: float = 1.0
    max_rho: float = cell_checks.MAX_RHO

    def at(self, threshold: float, nc: float, ni: float, pooled: bool) -> float:
        n = 2.0 / (1.0 / max(nc, 1) + 1.0 / max(ni, 1))
        rho = min(max(n / cell_checks.MIN_CELL_LABELS, 1.0), self.max_rho)
        share = self.pooled if pooled else self.own
        return 1.0 - (1.0 - threshold) * share / rho**self.growth


REPLAYS = (
    Bars("the rule as it is"),
    Bars("the bar rising as 1/rho^1.5", growth=1.5),
    Bars("the bar rising as 1/rho^2", growth=2.0),
    Bars("the bar rising until 80 labels a cell", max_rho=8.0),
    Bars("pooled posterior 1 - (1 - g) * 0.35", pooled=0.35),
    Bars("own data 0.97 at the minimum", own=0.6),
)


def replay(run: Run, bars: Bars, threshold: float = 0.95) -> int | None:
    """The labels at which the margin cell's kept looks first pass `bars`, or None. Replays the
    probabilities and labels each look showed (the cell checks' other conditions, and the
    candidate's verdict, are not replayed: with the rule as it is this reproduces every
    session's first ready look)."""
    for labels, p, own, nc, ni, _ in run.margin_trace:
        if nc is None or ni is None or min(nc, ni) < MIN_LABELS_PER_CELL:
            continue
        own_bar = bars.at(threshold, nc, ni, pooled=False)
        if own is None:  # an instant posterior: unpooled, its own check
            if p >= own_bar - 1e-12:
                return labels
        elif p >= bars.at(threshold, nc, ni, pooled=True) - 1e-12 and own >= own_bar - 1e-12:
            return labels
    return None


def replayed(runs: list[Run]) -> dict[str, int] | None:
    """Runs whose margin cell would have been shown ready under each of REPLAYS (None when the
    runs kept no looks)."""
    if not runs or not all(r.margin_trace for r in runs):
        return None
    return {b.name: sum(replay(r, b) is not None for r in runs) for b in REPLAYS}


def margin_world(k: int):
    """(store, eval set, truth, rates) of margin world k of the until-ready stream
    (bench/decision_errors.py's simulator)."""
    import decision_errors as sim

    rng = np.random.default_rng([2026, sim.STREAM["until-ready"], k])
    world = sim.make_world(rng, "margin", 0)
    return world_store(
        rng, world.theta, world.fpr, world.se, sim.MODELS, sim.REGIONS, sim.MARGIN, sim.PER_CELL
    )


def ready_session(k: int, budget: int = 300, every: int = 10):
    """Label-until-ready session k in margin world k."""
    store, es, truth, rates = margin_world(k)
    try:
        run = label_until_ready(store, es, truth, seed=k, every=every, budget=budget)
    finally:
        store.close()
    run.population_delta = margin_delta(rates)
    return run


def margin_delta(rates: np.ndarray) -> float:
    """cand's share minus inc's in the margin cell (the last region) of a world's rates."""
    return float(rates[1, -1] - rates[0, -1])


def sessions(runs: int, budget: int, every: int, cache: Path | None = None) -> dict:
    """The "label until ready" scenario over `runs` margin worlds. With a cache each session's
    outcome is kept (and reused: delete them after changing the rules)."""
    out = []
    for k in range(runs):
        path = None if cache is None else cache / f"until-ready-{budget}-{every}-{k}.json"
        if path is not None and path.exists():
            run = Run(**json.loads(path.read_text()))
            if run.population_delta is None:  # kept before the field existed: the world tells
                store, _, _, rates = margin_world(k)
                store.close()
                run.population_delta = margin_delta(rates)
            out.append(run)
            continue
        run = ready_session(k, budget, every)
        if path is not None:
            kept = {**run.__dict__, "trace": []}  # the outcome and the margin cell's looks
            path.write_text(json.dumps(kept))
        out.append(run)
        print(
            f"until-ready {k + 1}/{runs}: {run.labels} labels, {run.fits} fits, {run.ended}, "
            f"margin cell ready {run.margin_ready}, cand ready {run.cand_ready}",
            file=sys.stderr,
            flush=True,
        )
    return summary(out)


def summarise(m: dict, every: int, budget: int) -> None:
    """Print what `sessions` measured."""
    print(
        f"\n== label until ready: {m['runs']} runs, a look every {every} labels, at most "
        f"{budget} labels after the fill; {m['seconds']:.0f} s"
    )
    print(
        f"margin cell shown ready at some look in {m['margin_ready']:.3f} of runs, cand "
        f"{m['cand_ready']:.3f}, either {m['either']:.3f}"
    )
    print(
        f"labels per run {m['labels']:.0f}, fits per run {m['fits']:.1f} "
        f"({m['failed_fits']} failed their diagnostics); runs ended: {m['ended']}"
    )
    for cand, counts in m["verdicts"].items():
        print(f"  last verdict of {cand}: {counts}")
    lo, hi = m["interval"]
    print(f"either, 95% interval (Clopper-Pearson): {lo:.3f}-{hi:.3f}")
    p = m["population"]
    if p["known"]:
        print(
            f"the margin cell's population delta (cand - inc over its 200 judged responses) was "
            f"above the margin by more than {p['clear']:.3f} in {p['above']} of {p['known']} "
            f"worlds and in {p['false_above']} of the {p['false']} with a false ready "
            f"(their deltas: {p['false_deltas']})"
        )
    if m["replayed"] is not None:
        print("the margin cell's looks replayed under other bars (runs shown ready at some look):")
        for name, count in m["replayed"].items():
            print(f"  {name:44s} {count:4d} of {m['runs']}")
