"""Counts from a small hand-built workspace: consensus labels, ties, retractions, exclusions, missing."""

import numpy as np
import pytest

from changeover.core.model.counts import Counts, counts_for, data_hash
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region

T = "2026-01-01T00:00:00+00:00"


@pytest.fixture
def workspace():
    store = Store.memory()
    es = store.save_eval_set(
        EvalSet(
            id=0,
            name="demo",
            incumbent="inc",
            regions=(Region("eu", 3.0), Region("us", 1.0)),
            metrics=(Metric("refused", ("no", "yes")), Metric("style", ("1", "2", "3"))),
        )
    )
    with store.importing(es.id) as batch:
        # the file lists the candidate first: counts must still put the incumbent first
        batch.add_responses(
            [
                ("i1", "eu", "q1", None, "cand", "a"),
                ("i1", "eu", "q1", None, "inc", "b"),
                ("i2", "eu", "q2", None, "cand", "c"),
                ("i2", "eu", "q2", None, "inc", "d"),
                ("i3", "us", "q3", None, "cand", "e"),
                ("i3", "us", "q3", None, "inc", "f"),
                ("i4", "us", "q4", None, "cand", "g"),
                ("i4", "us", "q4", None, "inc", "h"),
            ]
        )
        j = [
            ("i1", "inc", 1),
            ("i1", "cand", 0),
            ("i2", "inc", 0),
            ("i2", "cand", None),
            ("i3", "inc", 1),
            ("i4", "inc", 0),
            ("i4", "cand", 1),
        ]  # i3/cand has no judgment row at all; i2/cand's verdict was unmappable (NULL)
        batch.add_judgments([(x, m, "refused", "judge", v, None, None, None) for x, m, v in j])
        batch.add_judgments(
            [
                (x, m, "style", "judge", 2, None, None, None)
                for x in ("i1", "i2", "i3", "i4")
                for m in ("inc", "cand")
            ]
        )
        batch.add_ratings(
            [
                ("i1", "inc", "refused", "ann", 1, T),
                ("i1", "cand", "refused", "ann", 1, T),
                ("i1", "cand", "refused", "bob", 0, T),  # tie
                ("i2", "inc", "refused", "ann", 0, T),
                ("i2", "inc", "refused", "bob", 0, T),
                ("i2", "inc", "refused", "cy", 1, T),  # majority 0
                ("i2", "cand", "refused", "ann", 1, T),  # labelled, but the judgment is missing
                ("i4", "inc", "refused", "ann", 1, T),  # retracted below
                ("i4", "cand", "refused", "ann", 0, T),
                ("i4", "cand", "refused", "bob", 1, T),
                ("i1", "inc", "style", "ann", 0, T),
            ]
        )
    retract = next(
        r
        for r in store.ratings(es.id)
        if r.metric == "refused"
        and r.value == 1
        and store.response_view(r.response_id).item.external_id == "i4"
    )
    store.retract(retract.id, "ann")
    return store, store.eval_set("demo")


def test_counts_majority_ties_missing_and_retractions(workspace):
    store, es = workspace
    counts = counts_for(store, es)
    c = counts["refused"]
    assert c.models == ("inc", "cand") and c.regions == ("eu", "us") and c.levels == ("no", "yes")
    inc, cand, eu, us = 0, 1, 0, 1
    expected_n = np.zeros((2, 2, 2, 2), np.int64)
    expected_n[inc, eu, 1, 1] = 1  # i1
    expected_n[inc, eu, 0, 0] = 1  # i2, majority of three
    assert (c.n == expected_n).all()
    expected_u = np.zeros((2, 2, 2), np.int64)
    expected_u[cand, eu, 0] = 1  # i1/cand: raters tied, so it stays unlabelled
    expected_u[inc, us, 1] = 1  # i3/inc: never labelled
    expected_u[inc, us, 0] = 1  # i4/inc: its only label was retracted
    expected_u[cand, us, 1] = 1  # i4/cand: tie between ann and bob
    assert (c.u == expected_u).all()
    assert c.ties == 2
    assert c.missing_judgments == 2  # i2/cand (NULL) and i3/cand (no row)
    assert c.labels_per_cell.tolist() == [[2, 0], [0, 0]]

    style = counts["style"]
    assert style.n.shape == (2, 2, 3, 3) and style.n[inc, eu, 0, 2] == 1
    assert style.u.sum() == 7 and style.ties == 0 and style.missing_judgments == 0


def test_excluded_rater_breaks_a_tie(workspace):
    store, es = workspace
    c = counts_for(store, es, exclude_raters=["bob"])["refused"]
    assert c.n[1, 1, 0, 1] == 1  # i4/cand: ann's 0 against the judge's 1
    assert c.n[1, 0, 1, 0] == 1  # i1/cand: ann's 1 against the judge's 0
    assert c.n[0, 0, 0, 0] == 0  # i2/inc: ann 0 against cy 1 now ties
    assert c.ties == 1


def test_data_hash_is_stable_and_sensitive(workspace):
    store, es = workspace
    first = data_hash(counts_for(store, es))
    assert first == data_hash(counts_for(store, es))
    c = counts_for(store, es)
    changed = dict(c)
    bumped = c["refused"].u.copy()
    bumped[0, 0, 0] += 1
    changed["refused"] = Counts(**{**c["refused"].__dict__, "u": bumped})
    assert data_hash(changed) != first
    rid = store.response_view(1).response.id
    store.add_rating(rid, "refused", "dee", 1)
    assert data_hash(counts_for(store, es)) != first


def test_judge_counts_cache_follows_imports(workspace):
    store, es = workspace
    before = counts_for(store, es)["refused"]
    with store.importing(es.id) as batch:
        batch.add_responses([("i5", "us", "q5", None, "inc", "x")])
        batch.add_judgments([("i5", "inc", "refused", "judge", 1, None, None, None)])
    after = counts_for(store, es)["refused"]
    assert after.u[0, 1, 1] == before.u[0, 1, 1] + 1


def _rid(store, es, item, model):
    return next(
        r.response_id for r in store.responses_page(es.id) if r.item_id == item and r.model == model
    )


def test_open_labels_are_left_out_of_the_fit_by_default(workspace):
    # Browse triage: a rater opens a response because the judge's verdict looks wrong and labels
    # it openly (blind = 0). Such labels are chosen, not drawn: counting them as random made the
    # 90% intervals cover 0.83 in simulation. By default they stay out of n.
    store, es = workspace
    i3_inc = _rid(store, es, "i3", "inc")  # judge said yes, never labelled
    store.add_rating(i3_inc, "refused", "dee", 0, blind=False)
    before = counts_for(store, es)["refused"]
    assert before.n[0, 1].sum() == 0 and before.u[0, 1, 1] == 1  # still unlabelled
    assert before.left_out == 1 and before.open_counted == 0
    # Asked for, they count, and the counts say so (for the warning).
    included = counts_for(store, es, include_open=True)["refused"]
    assert included.n[0, 1, 0, 1] == 1 and included.open_counted == 1 and included.left_out == 0


def test_an_open_second_opinion_does_not_make_a_tie(workspace):
    # i2/inc holds three imported labels (0, 0, 1). An open triage label from a fourth rater
    # (1) would make it 2-2 and silently unlabel it; left out, the majority stands.
    store, es = workspace
    store.add_rating(_rid(store, es, "i2", "inc"), "refused", "eve", 1, blind=False)
    c = counts_for(store, es)["refused"]
    assert c.n[0, 0, 0, 0] == 1 and c.ties == 2
    assert counts_for(store, es, include_open=True)["refused"].ties == 3


def test_imported_labels_count_unless_the_user_says_they_were_chosen(workspace):
    store, es = workspace
    assert counts_for(store, es)["refused"].n.sum() == 2  # imported labels (blind = 0) count
    c = counts_for(store, es, imported_random=False)["refused"]
    assert c.n.sum() == 0 and c.left_out == 4 and c.ties == 0  # i1 of both, i2/inc, i4/cand
    # blind labels given in the app always count
    store.add_rating(_rid(store, es, "i3", "inc"), "refused", "dee", 1)
    assert counts_for(store, es, imported_random=False)["refused"].n[0, 1, 1, 1] == 1


def test_ties_are_counted_per_cell(workspace):
    store, es = workspace
    c = counts_for(store, es)["refused"]
    assert c.ties_per_cell.tolist() == [[0, 0], [1, 1]]  # i1/cand in eu, i4/cand in us
    assert c.ties_per_cell.sum() == c.ties


def test_a_blind_label_replaced_openly_still_counts(workspace):
    # The rater gets i3/inc blind from the queue and says no; later, in browse, they see the
    # judge said yes and re-rate it openly. Dropping the response would drop exactly the
    # disagreements a triage looks at (coverage fell to 0.69 in simulation): the blind label
    # counts. An undo, or a later blind re-rating, is not a replacement by an open label.
    store, es = workspace
    rid = _rid(store, es, "i3", "inc")
    store.add_rating(rid, "refused", "dee", 0)
    store.add_rating(rid, "refused", "dee", 1, blind=False)
    c = counts_for(store, es)["refused"]
    assert c.n[0, 1, 0, 1] == 1 and c.n[0, 1].sum() == 1 and c.left_out == 0
    assert counts_for(store, es, include_open=True)["refused"].n[0, 1, 1, 1] == 1
    store.add_rating(rid, "refused", "dee", 1)  # blind again: that label counts, alone
    c = counts_for(store, es)["refused"]
    assert c.n[0, 1, 1, 1] == 1 and c.n[0, 1].sum() == 1
    last = store.active_ratings(rid)[-1]
    store.retract(last.id, "dee")  # undone: nothing of dee's counts
    assert counts_for(store, es)["refused"].n[0, 1].sum() == 0


def test_a_tie_between_raters_is_counted_and_said(workspace):
    # i1/cand (eu) and i4/cand (us) were each rated by two raters who disagreed: each counts as
    # unlabelled, and every face says so where the label went missing, not only in a total.
    from changeover.core.render.report import render, report_rows
    from changeover.core.workspace import Workspace

    store, es = workspace
    results = Workspace(store).results(es, instant=True)
    eu = results.cell("refused", "eu", "cand")
    assert (eu.labels, eu.ties) == (0, 1)
    assert results.cell("refused", "overall", "cand").ties == 2
    assert results.cell("refused", "eu", "inc").ties == 0
    flags = {f.kind: f.message for f in results.flags}
    assert "2 labelled response(s) left out" in flags["ties"]
    assert "cand in eu: 1, cand in us: 1" in flags["ties"]
    unlabelled = [f.message for f in results.flags if f.kind == "unlabelled_cell"]
    assert any("cand in eu (1 rated, but their raters tied)" in m for m in unlabelled)
    assert "0 (+1 tied)" in render(results, "text")
    rows = {(r["metric"], r["region"], r["model"]): r for r in report_rows(results)}
    assert rows["refused", "us", "cand"]["ties"] == 1


def test_consensus_is_the_median_and_the_majority_on_yes_no():
    from changeover.core.model.counts import consensus

    for a in range(7):  # yes/no: exactly the majority vote, a tie on an even split
        for b in range(7):
            want = None if a == b else (0 if a > b else 1)
            assert consensus({0: a, 1: b}) == want, (a, b)
    assert consensus({1: 1, 2: 1, 3: 1}) == 2  # three raters who all differ: the median
    assert consensus({2: 1, 3: 2, 4: 1}) == 3
    assert consensus({0: 1, 4: 1}) is None  # two raters apart: no middle rating
    assert consensus({1: 2, 3: 2}) is None
    assert consensus({1: 1, 2: 1, 3: 2}) is None  # the middle ratings 2 and 3 differ
    assert consensus({}) is None and consensus({2: 0}) is None


def test_three_raters_who_all_differ_on_a_scale_give_the_median(workspace):
    """A response whose three raters said 1, 2 and 3 is labelled 2 (a majority vote tied it
    and left it out)."""
    store, es = workspace
    response = next(
        b.response_id
        for b in store.browse(es.id, limit=50)
        if store.response_view(b.response_id).item.external_id == "i3" and b.model == "inc"
    )
    for rater, value in (("ann", 0), ("bob", 1), ("cy", 2)):
        store.add_rating(response, "style", rater, value)
    style = counts_for(store, es)["style"]
    assert style.n[0, 1, 1, 2] == 1 and style.ties == 0  # inc in us: human 2 of 3, judge 3
