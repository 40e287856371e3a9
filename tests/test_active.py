"""The active queue rule on hand-made posteriors, and plugged into core/labelling/queue.py."""

from dataclasses import replace

import numpy as np
import pytest

from changeover.core.labelling.active import cell_scores, make_scorer, needs
from changeover.core.labelling.queue import CellState, LabelQueue
from changeover.core.model.posterior import CellFlags, Posterior
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region

REGIONS = ("EU", "US")
ES = EvalSet(
    0,
    "s",
    "old",
    (Region("EU", 1.0), Region("US", 1.0)),
    (Metric("correct", ("no", "yes"), "higher", 0.03),),
)
S = 4000


def post(
    rates: dict[str, list[tuple[float, float]]],
    labels: int = 40,
    seed: int = 0,
    same: dict[str, str] | None = None,
) -> Posterior:
    """Draws of each model's rate per region ~ Normal(mean, sd); `same` copies draws."""
    rng = np.random.default_rng(seed)
    models = tuple(rates)
    p = np.empty((S, len(models), len(REGIONS), 2))
    for m, name in enumerate(models):
        src = (same or {}).get(name)
        for r, (mu, sd) in enumerate(rates[name]):
            x = p[:, models.index(src), r, 1] if src else np.clip(rng.normal(mu, sd, S), 0, 1)
            p[:, m, r, 1], p[:, m, r, 0] = x, 1 - x
    flags = CellFlags.from_dict(
        {"cell_labels": [[labels] * len(REGIONS) for _ in models], "unlabelled_cells": []}
    )
    return Posterior(
        "correct",
        ("no", "yes"),
        models,
        REGIONS,
        np.array([0.5, 0.5]),
        p,
        np.zeros((S, len(models), len(REGIONS), 2, 2)),
        flags=flags,
    )


OLD = [(0.70, 0.005), (0.70, 0.02)]
A = [(0.80, 0.005), (0.70, 0.02)]  # ready in EU, undecided in US
B = [(0.50, 0.005), (0.70, 0.02)]  # not ready in EU: settled, whatever US says


def test_only_open_decisions_score():
    scores = cell_scores([post({"old": OLD, "a": A, "b": B})], ES)
    assert scores[("a", "US")] > 0
    assert scores[("a", "EU")] == 0  # decided ready
    assert scores[("b", "EU")] == 0 and scores[("b", "US")] == 0  # candidate already not ready
    assert scores[("old", "EU")] == 0  # no open comparison there
    assert scores[("a", "US")] + scores[("old", "US")] > 0


def test_incumbent_cell_sums_over_candidates():
    one = cell_scores([post({"old": OLD, "a": A})], ES)
    two = cell_scores([post({"old": OLD, "a": A, "c": A}, same={"c": "a"})], ES)
    assert one[("old", "US")] > 0
    assert two[("old", "US")] == pytest.approx(2 * one[("old", "US")])
    assert two[("c", "US")] == pytest.approx(one[("a", "US")])


def test_cheaper_decision_worth_more():
    near = [(0.80, 0.005), (0.70, 0.02)]
    far = [(0.80, 0.005), (0.68, 0.02)]  # closer to the margin: needs more labels
    scores = cell_scores([post({"old": OLD, "a": near, "c": far})], ES)
    assert scores[("a", "US")] > scores[("c", "US")] > 0


def test_leaning_not_ready_cell_alone_counts():
    d = [(0.66, 0.02), (0.70, 0.02)]  # EU leans not ready, US leans ready: both undecided
    old = [(0.70, 0.02), (0.70, 0.02)]
    scores = cell_scores([post({"old": old, "d": d})], ES)
    assert scores[("d", "EU")] > 0 and scores[("d", "US")] == 0


def test_minimum_labels_shortfall():
    e = [(0.90, 0.005), (0.90, 0.005)]  # ready everywhere but with 20 labels (< 30)
    scores = cell_scores([post({"old": OLD, "e": e}, labels=10)], ES)
    assert scores[("e", "EU")] > 0 and scores[("e", "US")] > 0
    assert scores[("old", "EU")] == 0


def test_scorer_counts_off_labels_and_is_greedy():
    old = [(0.70, 0.005), (0.70, 0.012)]  # the incumbent better known: an uneven split
    posts = [post({"old": old, "a": A})]
    scorer = make_scorer(posts, ES)
    cells = [("old", "EU"), ("old", "US"), ("a", "EU"), ("a", "US")]
    states = {c: CellState(*c, labelled=40) for c in cells}
    w = scorer(list(states.values()))
    best = [c for c, v in w.items() if v > 0]
    assert len(best) == 1 and best[0] in {("old", "US"), ("a", "US")}
    need = sum(n.labels for n in needs(posts, ES) if n.cell == best[0])
    states[best[0]].labelled += need  # the forecast's labels for that cell have arrived
    w2 = scorer(list(states.values()))
    best2 = [c for c, v in w2.items() if v > 0]
    other = ({("old", "US"), ("a", "US")} - {best[0]}).pop()
    if any(n.cell == other for n in needs(posts, ES)):
        assert best2 == [other]
    else:  # every forecast met before the next fit: stay on the open decision's cells
        assert best2 and set(best2) <= {("old", "US"), ("a", "US")}
    soft = make_scorer(posts, ES, greedy=False)(list(states.values()))
    assert soft[("a", "EU")] == 0


def test_settled_everything_gives_no_weight():
    posts = [post({"old": OLD, "b": B})]
    assert not any(cell_scores(posts, ES).values())
    assert not any(make_scorer(posts, ES)([CellState("b", "US", 40)]).values())


def test_plugs_into_label_queue():
    store = Store.memory()
    es = store.save_eval_set(ES)
    with store.importing(es.id) as batch:
        rows = [
            (f"q{r}{i}", r, "?", None, m, "t")
            for r in REGIONS
            for i in range(30)
            for m in ("old", "a", "b")
        ]
        batch.add_responses(rows)
        batch.add_judgments(
            [(x[0], x[4], "correct", "judge", i % 2, None, None, None) for i, x in enumerate(rows)]
        )
    posts = [post({"old": OLD, "a": A, "b": B})]
    scorer = make_scorer(posts, es)
    best = {
        c
        for c, v in scorer([CellState(m, r) for m in ("old", "a", "b") for r in REGIONS]).items()
        if v > 0
    }
    queue = LabelQueue(store, es, "ann", seed=1, min_per_cell=0, scorer=make_scorer(posts, es))
    picks = [queue.next() for _ in range(5)]
    assert all((p.model, p.region) in best for p in picks)


def test_the_workspace_queue_follows_the_latest_fit():
    from changeover.core.model.fit import FitResult
    from changeover.core.settings import Settings
    from changeover.core.types import Diagnostics
    from changeover.core.workspace import Workspace

    store = Store.memory()
    es = store.save_eval_set(ES)
    canned = [post({"old": OLD, "a": A, "b": B})]

    def fitter(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        return FitResult(canned, Diagnostics(ok=True), settings, 0.0)

    ws = Workspace(store, fitter)
    assert ws.queue(es, "ann", overlap=0).scorer is None  # no fit yet: the queue stays uniform
    with store.importing(es.id) as batch:
        batch.add_responses(
            [(f"q{r}", r, "?", None, m, "t") for r in REGIONS for m in ("old", "a", "b")]
        )
    ws.fit(es, Settings.quick())
    scorer = ws.queue(es, "ann", overlap=0).scorer
    states = [CellState(m, r, 40) for m in ("old", "a", "b") for r in REGIONS]
    kept = {c for c, v in scorer(states).items() if v > 0}
    # the kept fit carries the counts it was fitted on (no labels here), which the decisions
    # check each cell against (core/decide/cell_checks.py): the direct scorer gets them too
    from dataclasses import replace

    from changeover.core.model.counts import counts_for

    with_counts = [replace(canned[0], counts=counts_for(store, es)["correct"])]
    direct = {c for c, v in make_scorer(with_counts, es)(states).items() if v > 0}
    assert kept == direct and kept


def test_settle_forecast_moves_the_mean():
    from changeover.core.decide.verdicts import Comparison, forecast_labels
    from changeover.core.labelling.active import settle_forecast

    rng = np.random.default_rng(5)
    qi = rng.normal(0.70, 0.03, S)
    on_margin = rng.normal(0.67, 0.03, S)  # delta's mean sits on -margin
    # core/decide/verdicts keeps the mean where it is: on the margin it can never settle
    assert forecast_labels(Comparison(on_margin, qi, "higher", 0.03, 0.95, 10, 10)).capped
    a, b = settle_forecast(Comparison(on_margin, qi, "higher", 0.03, 0.95, 10, 10))
    assert 0 < a + b < 2000
    near = settle_forecast(Comparison(rng.normal(0.70, 0.03, S), qi, "higher", 0.03, 0.95, 10, 10))
    far = settle_forecast(Comparison(rng.normal(0.75, 0.03, S), qi, "higher", 0.03, 0.95, 10, 10))
    assert sum(far) < sum(near)
    assert settle_forecast(Comparison(qi, qi, "higher", 0.03, 0.95, 10, 10)) == (
        0,
        0,
    )  # no doubt left
    hopeless = settle_forecast(
        Comparison(on_margin, qi, "higher", 0.03, 0.95, 10, 10), max_labels=5
    )
    assert hopeless is None


def test_a_cell_held_back_by_its_checks_asks_for_the_labels_they_need():
    # The pooled draws settle a in US (ready), but the cell has 2 labels (minimum 10): the need
    # is the decision's forecast (8 more), not the pooled posterior's "settled already".
    from changeover.core.decide.verdicts import decide_all

    p = post({"old": OLD, "a": [(0.80, 0.005), (0.80, 0.005)]})
    p = replace(p, flags=CellFlags.from_dict({"cell_labels": [[40, 40], [40, 2]]}))
    (a,) = decide_all([p], {"correct": ("higher", 0.03)}, "old")
    us = a.cells[1]
    assert us.blocked and us.forecast.candidate_labels == 8
    got = [n for n in needs([p], ES) if n.cell == ("a", "US")]
    assert [n.labels for n in got] == [8]
