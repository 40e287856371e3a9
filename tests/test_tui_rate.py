"""The blind labelling session, driven through the real app; every check reads the database."""

from datetime import datetime

import pytest
from helpers import MODELS, RATIONALE, canned_fitter, make_workspace, run_async, screen_text, settle

from changeover.core.store import Store
from changeover.core.types import ChangeoverError
from changeover.core.workspace import Workspace
from changeover.tui.app import ChangeoverApp, run_app
from changeover.tui.screens.browse import BrowseScreen
from changeover.tui.screens.help import HelpScreen
from changeover.tui.screens.rate import RateScreen

HOSTILE = "[bold red]x[/] \x1b]52;c;aGVsbG8=\x07 tail"
KEYS = ("y", "n", "4")  # correct yes, refused no, style 4 -> levels 1, 0, 3


async def start_rating(pilot):
    await settle(pilot)
    await pilot.press("r")
    await settle(pilot)
    assert isinstance(pilot.app.screen, RateScreen)
    return pilot.app.screen


@run_async
async def test_ten_responses_give_ten_times_metrics_ratings(store):
    es = make_workspace(store, n_items=30)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=3)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_rating(pilot)
        shown = []
        for _ in range(10):
            shown.append(screen.view.response.id)
            await pilot.press(*KEYS)
        await pilot.pause()
        assert "this session: 10 responses" in screen_text(app)
    ratings = store.ratings(es.id)
    assert len(ratings) == 10 * len(es.metrics)
    assert {r.response_id for r in ratings} == set(shown) and len(set(shown)) == 10
    assert {r.rater for r in ratings} == {"ann"}
    assert all(r.blind and r.source == "app" and r.retracts is None for r in ratings)
    stamps = [datetime.fromisoformat(r.created_at) for r in ratings]
    assert stamps == sorted(stamps) and all(s.tzinfo is not None for s in stamps)
    by_metric = {m.name: {r.value for r in ratings if r.metric == m.name} for m in es.metrics}
    assert by_metric == {"correct": {1}, "refused": {0}, "style": {3}}


@run_async
async def test_each_label_is_on_disk_before_the_next_key(tmp_path):
    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as s:
        make_workspace(s, n_items=9)
    store = Store.open(path)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_rating(pilot)
        for k, key in enumerate(KEYS * 2, start=1):
            await pilot.press(key)
            with Store.open(path, read_only=True) as other:  # another connection sees it
                assert len(other.ratings(1)) == k
    store.close()


@run_async
async def test_undo_appends_a_retraction_and_walks_back(store):
    es = make_workspace(store, n_items=30)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=4)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_rating(pilot)
        first = screen.view.response.id
        await pilot.press("y", "n")
        await pilot.press("u")
        await pilot.pause()
        events = store.ratings(es.id)
        assert len(events) == 3 and events[2].retracts == events[1].id and events[2].value is None
        assert [r.metric for r in store.active_ratings(first)] == ["correct"]
        assert screen.current == 1  # asking "refused" again
        await pilot.press("n", "4")  # finishes the first response
        await pilot.pause()
        assert screen.view.response.id != first
        second = screen.view.response.id
        await pilot.press("u")  # walks back into the first response
        await pilot.pause()
        assert screen.view.response.id == first and screen.current == 2
        assert screen.queue.labelled_total() == store.labelled_total(es.id)
        assert "this session: 0 responses" in screen_text(app)
        await pilot.press("2")
        await pilot.pause()
        assert screen.view.response.id == second  # the one put aside comes back first
    active = store.ratings(es.id, include_retracted=False)
    assert sorted((r.metric, r.value) for r in active) == [
        ("correct", 1),
        ("refused", 0),
        ("style", 1),
    ]
    assert sum(r.retracts is not None for r in store.ratings(es.id)) == 2


@run_async
async def test_skip_stores_nothing(store):
    es = make_workspace(store, n_items=30)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=5)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_rating(pilot)
        seen = set()
        for _ in range(4):
            seen.add(screen.view.response.id)
            await pilot.press("s")
            await pilot.pause()
        assert len(seen) == 4 and screen.view.response.id not in seen
    assert store.ratings(es.id) == []


@run_async
async def test_blind_screen_shows_no_model_no_judge_no_other_rater(store):
    es = make_workspace(store, n_items=12)
    for rid in range(1, 37, 2):  # another rater labelled every other response
        store.add_rating(rid, "correct", "bob-the-other", 1)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=6)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_rating(pilot)
        for _ in range(8):
            text = screen_text(app)
            assert "Question" in text and "Answer" in text  # the response is on screen
            for forbidden in (
                *MODELS,
                "newmodel",
                "oldmodel",
                RATIONALE,
                "judge-x",
                "bob-the-other",
            ):
                assert forbidden not in text, forbidden
            await pilot.press("question_mark")  # the help screen is no window into it either
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            help_text = screen_text(app)
            assert "Is the answer right?" in help_text and "[y] yes" in help_text
            assert not any(m in help_text for m in MODELS) and RATIONALE not in help_text
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press(*KEYS)
            await pilot.pause()
    assert len(store.ratings(es.id)) == 18 + 8 * 3


@run_async
async def test_model_text_renders_literally(store):
    texts = {k: HOSTILE for k in range(9 * 3)}
    make_workspace(store, n_items=9, texts=texts)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=7)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_rating(pilot)
        text = screen_text(app)
        assert "[bold red]x[/] ␛]52;c;aGVsbG8=␇ tail" in text
        assert "\x1b" not in text and "\x07" not in text
        await pilot.press("q")
        await pilot.press("enter")  # browse: the table and the detail pane
        await settle(pilot)
        assert isinstance(app.screen, BrowseScreen)
        text = screen_text(app)
        assert "[bold red]x[/] ␛]52;c;aGVsbG8=␇ tail" in text
        assert "\x1b" not in text


@run_async
async def test_read_only_refuses_rating(tmp_path):
    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as s:
        es = make_workspace(s, n_items=6)
    with pytest.raises(ChangeoverError, match="read-only"):
        run_app(path, read_only=True, rate=True, rater="ann")
    store = Store.open(path, read_only=True)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert not isinstance(app.screen, RateScreen)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")  # open rating from browse is refused as well
        await settle(pilot)
        assert isinstance(app.screen, BrowseScreen)
    store.close()
    with Store.open(path) as s:
        assert s.ratings(es.id) == []


@run_async
async def test_open_rating_from_browse_is_not_blind(store):
    es = make_workspace(store, n_items=6)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, RateScreen) and not app.screen.blind
        assert MODELS[1] in screen_text(app)  # triage shows the model and the judge
        await pilot.press(*KEYS)
        await settle(pilot)
        assert isinstance(app.screen, BrowseScreen)
        await pilot.press("tab", "end")  # the detail pane, scrolled down to the labels
        await pilot.pause()
        assert "by ann (open)" in screen_text(app)
    ratings = store.ratings(es.id)
    assert [(r.response_id, r.blind) for r in ratings] == [(2, False)] * 3


# ---- the room the response gets, and the header -------------------------------------------

LONG_QUESTION = "My router keeps dropping the connection every evening, " * 6
LONG_REFERENCE = "Restart the router, then check the line status page; " * 6
RESPONSE_LINES = [f"Line {k} of the response." for k in range(1, 31)]


def long_texts_workspace(store):
    es = make_workspace(store, n_items=6, texts={k: "\n".join(RESPONSE_LINES) for k in range(18)})
    store.con.execute(
        "UPDATE items SET question = ?, reference = ?", (LONG_QUESTION, LONG_REFERENCE)
    )
    store.con.commit()
    return es


@run_async
async def test_at_80x24_the_response_gets_most_of_the_screen(store):
    long_texts_workspace(store)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_rating(pilot)
        text = screen_text(app)
        shown = [line for line in RESPONSE_LINES if line in text]
        assert len(shown) >= 12, text  # was 3: question, reference and guideline took the rest
        lines = text.splitlines()
        question = [ln for ln in lines if "My router keeps" in ln]
        reference = [ln for ln in lines if "Restart the router" in ln]
        assert len(question) == 1 and question[0].rstrip().endswith("…")  # one line, cut
        assert len(reference) == 1 and reference[0].rstrip().endswith("…")
        assert "Is the answer right?" not in text  # the guideline is on ?
        await pilot.press("e")  # the question and the reference in full
        await pilot.pause()
        flat = " ".join(c for c in screen_text(app).split() if c.isascii())  # no scrollbar
        assert LONG_QUESTION.strip() in flat and LONG_REFERENCE.strip() in flat
        await pilot.press("e")
        await pilot.pause()
        assert len([ln for ln in screen_text(app).splitlines() if "My router" in ln]) == 1
        await pilot.press("question_mark")
        await pilot.pause()
        help_text = " ".join(screen_text(app).split())
        assert "Is the answer right?" in help_text and "brings every cell to 10 first" in help_text


def test_the_cell_counter_does_not_read_as_an_error():
    from changeover.tui.screens.rate import cell_text

    assert cell_text(4, 10) == "cell 4/10 min"
    assert cell_text(12, 10) == "cell 12, min 10 met"  # was "this cell: 12/10 labels"
    assert "/" not in cell_text(10, 10)


def one_metric_workspace(store):
    """Like XSTest: a single yes/no metric, so undoing a response's label leaves it unlabelled."""
    from dataclasses import replace

    from helpers import queue_spec

    es = store.save_eval_set(replace(queue_spec(), metrics=queue_spec().metrics[:1]))
    rows = [
        (f"q{k}", "EU", f"Question {k}?", None, m, f"Answer {k} by {m}.")
        for k in range(12)
        for m in MODELS
    ]
    with store.importing(es.id) as batch:
        batch.add_responses(rows)
        batch.add_judgments([(r[0], r[4], "correct", "judge-x", 1, "1", None, None) for r in rows])
    return store.eval_set(es.id)


def header_count(app) -> int:
    line = next(ln for ln in screen_text(app).splitlines() if "this session" in ln)
    return int(line.split(" labelled")[0].rsplit(" ", 1)[1].split("/")[0])


@run_async
async def test_header_count_after_undo_into_the_previous_response(store):
    es = one_metric_workspace(store)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=2)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_rating(pilot)
        await pilot.press("y", "y")  # two responses labelled
        await settle(pilot)
        assert header_count(app) == store.labelled_total(es.id) == 2
        await pilot.press("u")  # back into the second response: unlabelled again
        await settle(pilot)
        assert header_count(app) == store.labelled_total(es.id) == 1
        await pilot.press("n")  # labelled again
        await settle(pilot)
        assert header_count(app) == store.labelled_total(es.id) == 2  # was one behind
        await pilot.press("y")
        await settle(pilot)
        assert header_count(app) == store.labelled_total(es.id) == 3
