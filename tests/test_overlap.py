"""Overlap between raters: realised share converges, no rater twice, never a third rater."""

import random
from collections import defaultdict

import pytest

from changeover.core.labelling.overlap import overlap_due, pick_overlap, realised_share
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region


def workspace(n_items: int = 400) -> tuple[Store, EvalSet]:
    store = Store.memory()
    es = store.save_eval_set(
        EvalSet(
            id=0,
            name="s",
            incumbent="old",
            regions=(Region("EU", 1.0),),
            metrics=(Metric("correct", ("no", "yes")),),
        )
    )
    with store.importing(es.id) as batch:
        batch.add_responses(
            [(f"q{i}", "EU", "?", None, m, "text") for i in range(n_items) for m in ("old", "new")]
        )
    return store, es


def simulate(store, es, raters, picks, share, seed=0):
    """Raters ask in random turns; a fresh pick is a random response nobody has labelled."""
    rng = random.Random(seed)
    ids = [r.response_id for r in store.browse(es.id, limit=10_000)]
    rng.shuffle(ids)
    fresh = iter(ids)
    raters_of: dict[int, list[str]] = defaultdict(list)
    overlaps = 0
    history = []
    for _ in range(picks):
        rater = rng.choice(raters)
        rid = pick_overlap(store, es, rater, share=share, seed=seed)
        if rid is None:
            rid = next(fresh)
            while raters_of[rid]:
                rid = next(fresh)
        else:
            overlaps += 1
            assert len(raters_of[rid]) == 1, "overlap gave a response with other than one rater"
        assert rater not in raters_of[rid], "a rater got a response they labelled"
        raters_of[rid].append(rater)
        store.add_rating(rid, "correct", rater, rng.randint(0, 1))
        history.append(realised_share(store, es))
    return raters_of, overlaps, history


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_share_converges_and_rules_hold(share):
    store, es = workspace()
    raters_of, overlaps, history = simulate(store, es, ["ann", "bob", "cy"], 500, share)
    assert overlaps > 0
    assert max(len(v) for v in raters_of.values()) == 2  # never a third rater
    assert abs(history[-1] - share) < 0.01
    assert abs(history[100] - share) < 0.03  # already close early on
    labelled = sum(1 for v in raters_of.values() if v)
    doubled = sum(1 for v in raters_of.values() if len(v) == 2)
    assert store.rater_overlap_counts(es.id) == (labelled, doubled)


def test_single_rater_never_overlaps():
    store, es = workspace(50)
    _, overlaps, history = simulate(store, es, ["ann"], 60, 0.1)
    assert overlaps == 0 and history[-1] == 0.0


def test_zero_share_and_bad_share():
    store, es = workspace(50)
    _, overlaps, _ = simulate(store, es, ["ann", "bob"], 60, 0.0)
    assert overlaps == 0
    with pytest.raises(ValueError):
        overlap_due(10, 0, 1.5)


def test_deterministic_and_respects_exclude():
    store, es = workspace(50)
    simulate(store, es, ["ann"], 30, 0.1)  # 30 responses labelled by ann only
    first = pick_overlap(store, es, "bob", seed=7)
    assert first is not None and first == pick_overlap(store, es, "bob", seed=7)
    assert pick_overlap(store, es, "ann", seed=7) is None  # ann labelled them all herself
    labelled_by_ann = set(store.single_rater_responses(es.id, "bob"))
    assert len(labelled_by_ann) == 30
    assert pick_overlap(store, es, "bob", seed=7, exclude=labelled_by_ann) is None
    others = {pick_overlap(store, es, "bob", seed=s) for s in range(20)}
    assert len(others) > 1  # the seed matters


def test_retracted_label_frees_the_response():
    store, es = workspace(10)
    rating = store.add_rating(1, "correct", "ann", 1)
    assert store.single_rater_responses(es.id, "bob") == [1]
    store.retract(rating.id, "ann")
    assert store.single_rater_responses(es.id, "bob") == []
    assert store.rater_overlap_counts(es.id) == (0, 0)


def test_overlap_queue_wraps_the_label_queue():
    from changeover.core.labelling.overlap import OverlapQueue
    from changeover.core.labelling.queue import LabelQueue

    store, es = workspace(100)
    ann = OverlapQueue(LabelQueue(store, es, "ann", seed=1, min_per_cell=2), share=0.1, seed=3)
    for _ in range(50):
        pick = ann.next()
        assert pick.response_id not in ann.overlaps  # alone: nothing to overlap with
        store.add_rating(pick.response_id, "correct", "ann", 1)
        ann.done(pick.response_id)
    assert store.rater_overlap_counts(es.id) == (50, 0)
    bob = OverlapQueue(LabelQueue(store, es, "bob", seed=2, min_per_cell=2), share=0.1, seed=3)
    seen, second = set(), 0
    for _ in range(60):
        pick = bob.next()
        assert pick.response_id not in seen
        seen.add(pick.response_id)
        is_overlap = pick.response_id in bob.overlaps
        before = bob.labelled_total()
        store.add_rating(pick.response_id, "correct", "bob", 0)
        bob.done(pick.response_id)
        if is_overlap:
            second += 1
            assert bob.labelled_total() == before  # a second label adds no labelled response
            assert [r.rater for r in store.active_ratings(pick.response_id)] == ["ann", "bob"]
    labelled, doubled = store.rater_overlap_counts(es.id)
    assert second == doubled > 0 and abs(doubled / labelled - 0.1) <= 0.01
    skipped = bob.next()
    bob.skip(skipped.response_id)
    assert skipped.response_id not in bob.overlaps
