"""The labelling queue: fills cells to a minimum, balances judge levels, never repeats a rater.

`make_workspace` builds the small deterministic eval set the TUI tests use as well.
"""

from collections import Counter

from helpers import MODELS, REGIONS, make_workspace

from changeover.core.labelling.queue import LabelQueue
from changeover.core.store import Store


def label(store, q, es, rater, n):
    out = []
    for _ in range(n):
        pick = q.next()
        assert pick is not None
        for m in es.metrics:
            store.add_rating(pick.response_id, m.name, rater, 0)
        q.done(pick.response_id)
        out.append(pick)
    return out


def test_fills_every_cell_to_the_minimum_first(store):
    es = make_workspace(store, n_items=60)
    q = LabelQueue(store, es, "ann", seed=1, min_per_cell=3)
    picks = label(store, q, es, "ann", 27)  # 3 models x 3 regions x 3
    cells = Counter((p.model, p.region) for p in picks)
    assert set(cells) == {(m, r) for m in MODELS for r in REGIONS}
    assert set(cells.values()) == {3}
    q.refresh()
    assert all(q.cell_progress(m, r) == (3, 3) for m in MODELS for r in REGIONS)


def test_balances_judge_levels_within_a_cell(store):
    es = make_workspace(store, n_items=120)
    q = LabelQueue(store, es, "ann", seed=2, min_per_cell=4)
    picks = label(store, q, es, "ann", 36)
    for cell in {(p.model, p.region) for p in picks}:
        levels = Counter(p.judge_level for p in picks if (p.model, p.region) == cell)
        assert levels[0] == levels[1] == 2, (cell, levels)


def test_never_hands_a_rater_a_response_they_labelled(store):
    es = make_workspace(store, n_items=6)  # 18 responses
    q = LabelQueue(store, es, "ann", seed=3, min_per_cell=1)
    seen = [p.response_id for p in label(store, q, es, "ann", 18)]
    assert len(set(seen)) == 18
    assert q.next() is None
    # another rater still gets work: responses labelled by ann only
    q2 = LabelQueue(store, es, "bob", seed=3, min_per_cell=1)
    assert q2.next() is not None


def test_skipped_responses_do_not_come_back(store):
    es = make_workspace(store, n_items=3)
    q = LabelQueue(store, es, "ann", seed=4)
    seen = set()
    while (pick := q.next()) is not None:
        assert pick.response_id not in seen
        seen.add(pick.response_id)
        q.skip(pick.response_id)
    assert len(seen) == 9


def test_deterministic_given_a_seed(store):
    es = make_workspace(store, n_items=60)
    a = [LabelQueue(store, es, "ann", seed=5).next().response_id for _ in range(3)]
    b = [LabelQueue(store, es, "ann", seed=6).next().response_id for _ in range(8)]
    assert len(set(a)) == 1
    assert len(set(b)) == 1  # same seed, same first pick
    seq1 = [p.response_id for p in label(store, LabelQueue(store, es, "x", seed=9), es, "x", 5)]
    other = Store.memory()
    es2 = make_workspace(other, n_items=60)
    seq2 = [p.response_id for p in label(other, LabelQueue(other, es2, "x", seed=9), es2, "x", 5)]
    assert seq1 == seq2


def test_a_scorer_steers_cells_after_the_minimum(store):
    es = make_workspace(store, n_items=90)
    target = (MODELS[2], "US")
    q = LabelQueue(
        store,
        es,
        "ann",
        seed=8,
        min_per_cell=0,
        scorer=lambda cells: {c.cell: (1.0 if c.cell == target else 0.0) for c in cells},
    )
    picks = label(store, q, es, "ann", 6)
    assert {(p.model, p.region) for p in picks} == {target}
