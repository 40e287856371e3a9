"""The labelling queue: fills cells to a minimum, balances judge levels, never repeats a rater.

`make_workspace` builds the small deterministic eval set the TUI tests use as well.
"""

import random
from collections import Counter

import pytest

from changeover.core.queue import LabelQueue
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region

MODELS = ("oldmodel-alpha", "newmodel-beta", "newmodel-gamma")
REGIONS = ("EU", "US", "APAC")
RATIONALE = "JUDGE-RATIONALE"


def spec(name="support") -> EvalSet:
    return EvalSet(
        id=0,
        name=name,
        incumbent=MODELS[0],
        regions=(Region("EU", 3.0), Region("US", 2.0), Region("APAC", 1.0)),
        metrics=(
            Metric("correct", ("no", "yes"), "higher", 0.03, "Is the answer right?", ("n", "y")),
            Metric("refused", ("no", "yes"), "match", 0.02, "Did it decline?", ("n", "y")),
            Metric(
                "style",
                ("1", "2", "3", "4", "5"),
                "higher",
                0.2,
                "Tone and clarity.",
                ("1", "2", "3", "4", "5"),
                pass_level=3,
            ),
        ),
        description="support bot migration",
        judge="judge-x",
    )


def make_workspace(
    store: Store,
    n_items: int = 30,
    seed: int = 7,
    name: str = "support",
    texts: dict[int, str] | None = None,
) -> EvalSet:
    """An eval set of n_items items x 3 models, judged on every metric; fixed for a seed."""
    rng = random.Random(seed)
    es = store.save_eval_set(spec(name))
    texts = texts or {}
    responses, judgments = [], []
    for k in range(n_items):
        ext = f"q{k:04d}"
        region = REGIONS[k % len(REGIONS)]
        question = f"Question {k}: how do I reset my password on device {k % 7}?"
        reference = f"Reference answer {k}." if k % 2 == 0 else None
        for mi, model in enumerate(MODELS):
            text = texts.get(
                k * len(MODELS) + mi, f"Answer {k} from a model: press settings, then reset."
            )
            responses.append((ext, region, question, reference, model, text))
            for metric, levels in (("correct", 2), ("refused", 2), ("style", 5)):
                level = rng.randrange(levels)
                judgments.append(
                    (
                        ext,
                        model,
                        metric,
                        "judge-x",
                        level,
                        str(level),
                        None,
                        f"{RATIONALE} {metric} {level}",
                    )
                )
    with store.importing(es.id) as batch:
        batch.add_responses(responses)
        batch.add_judgments(judgments)
    return store.eval_set(es.id)


@pytest.fixture
def store():
    s = Store.memory()
    yield s
    s.close()


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
