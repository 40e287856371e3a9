"""The blind labelling session, driven through the real app; every check reads the database."""

from datetime import datetime

import pytest
from helpers import MODELS, RATIONALE, make_workspace, run_async, screen_text, settle

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
    app = ChangeoverApp(Workspace(store), rater="ann", seed=3)
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
    app = ChangeoverApp(Workspace(store), rater="ann", seed=1)
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
    app = ChangeoverApp(Workspace(store), rater="ann", seed=4)
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
    app = ChangeoverApp(Workspace(store), rater="ann", seed=5)
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
    app = ChangeoverApp(Workspace(store), rater="ann", seed=6)
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
    app = ChangeoverApp(Workspace(store), rater="ann", seed=7)
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
    app = ChangeoverApp(Workspace(store), rater="ann", seed=1)
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
    app = ChangeoverApp(Workspace(store), rater="ann", seed=1)
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
