"""Browse: pages from SQLite, filters, search and the detail pane, driven through the app."""

from helpers import MODELS, RATIONALE, canned_fitter, make_workspace, run_async, screen_text, settle

from changeover.core.workspace import Workspace
from changeover.tui.app import ChangeoverApp
from changeover.tui.screens.browse import PAGE, BrowseScreen


async def open_browse(pilot) -> BrowseScreen:
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, BrowseScreen)
    return pilot.app.screen


def table_ids(screen: BrowseScreen) -> list[int]:
    return [r.response_id for r in screen.rows]


@run_async
async def test_pages_hold_one_page_and_turn_on_keys(store):
    make_workspace(store, n_items=60)  # 180 responses
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_browse(pilot)
        table = screen.query_one("#browse-table")
        assert table.row_count == PAGE and table_ids(screen) == list(range(1, PAGE + 1))
        assert "rows 1-50 of 180" in screen_text(app)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert table_ids(screen) == list(range(51, 101)) and table.row_count == PAGE
        assert "rows 51-100 of 180" in screen_text(app)
        await pilot.press("ctrl+end", "down")  # past the last row: the next page, cursor on top
        await settle(pilot)
        assert table_ids(screen)[0] == 101 and table.cursor_row == 0
        await pilot.press("up")  # before the first row: the previous page, cursor at the bottom
        await settle(pilot)
        assert table_ids(screen)[0] == 51 and table.cursor_row == PAGE - 1
        for _ in range(5):  # the last page is short and there is nothing after it
            await pilot.press("right_square_bracket")
            await settle(pilot)
        assert table_ids(screen) == list(range(151, 181))
        assert "rows 151-180 of 180" in screen_text(app)


@run_async
async def test_filters_reach_sql(store):
    es = make_workspace(store, n_items=30)  # 90 responses, 10 items per region
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_browse(pilot)
        await pilot.press("m")  # first model
        await settle(pilot)
        assert screen.total == 30 and {r.model for r in screen.rows} == {MODELS[0]}
        await pilot.press("g")  # and the first region
        await settle(pilot)
        assert screen.total == 10 and {(r.model, r.region) for r in screen.rows} == {
            (MODELS[0], "EU")
        }
        await pilot.press("x")
        await settle(pilot)
        assert screen.total == 90
        # judge level on the first metric, then its next level
        await pilot.press("j")
        await settle(pilot)
        judged_no = screen.total
        await pilot.press("j")
        await settle(pilot)
        assert screen.filter.metric == "correct" and screen.filter.judge_level == 1
        assert screen.total + judged_no == 90 and 0 < judged_no < 90
        for row in screen.rows:
            view = store.response_view(row.response_id)
            assert [j.value for j in view.judgments if j.metric == "correct"] == [1]
        # a human label that disagrees with the judge, one that agrees, and the unrated filter
        await pilot.press("x")
        await settle(pilot)
        judge = {
            rid: [j.value for j in store.response_view(rid).judgments if j.metric == "correct"][0]
            for rid in (1, 2)
        }
        store.add_rating(1, "correct", "bob", 1 - judge[1])
        store.add_rating(2, "correct", "bob", judge[2])
        await pilot.press("k", "d")
        await settle(pilot)
        assert screen.filter.metric == "correct" and screen.filter.disagree
        assert table_ids(screen) == [1]
        await pilot.press("d", "h")  # human level "no"
        await settle(pilot)
        assert set(table_ids(screen)) == {
            rid for rid in (1, 2) if store.active_ratings(rid)[0].value == 0
        }
        await pilot.press("x", "u")
        await settle(pilot)
        assert screen.total == 88 and not {1, 2} & set(table_ids(screen))
    assert len(store.ratings(es.id)) == 2


@run_async
async def test_search_and_detail_pane(store):
    texts = {3 * 7 + 1: "Hold the power button for [b]ten[/b] seconds."}
    make_workspace(store, n_items=30, texts=texts)
    store.add_rating(3 * 7 + 2, "style", "carol", 4)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_browse(pilot)
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"power button", "enter")
        await settle(pilot)
        assert screen.filter.search == "power button" and table_ids(screen) == [3 * 7 + 2]
        text = screen_text(app)
        assert "Hold the power button for [b]ten[/b] seconds." in text  # literally
        assert "model newmodel-beta" in text and RATIONALE in text
        await pilot.press("slash", "ctrl+u")
        await pilot.press(*"Question 7:", "enter")
        await settle(pilot)
        assert table_ids(screen) == [22, 23, 24]
        await pilot.press("down")  # response 23, the one carol labelled
        await settle(pilot)
        await pilot.press("tab", "end")
        await pilot.pause()
        assert "style: 5 by carol" in screen_text(app)
        await pilot.press("slash", "escape")  # escape closes the search box, not the screen
        await settle(pilot)
        assert isinstance(app.screen, BrowseScreen) and screen.filter.search == "Question 7:"
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, BrowseScreen)


@run_async
async def test_a_big_set_never_loads_more_than_a_page(store):
    make_workspace(store, n_items=1000)  # 3000 responses
    calls = []
    real = store.browse_page

    def spy(*args, **kwargs):
        calls.append(kwargs.get("limit"))
        return real(*args, **kwargs)

    store.browse_page = spy
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_browse(pilot)
        await pilot.press("right_square_bracket", "right_square_bracket")
        await settle(pilot)
        assert screen.total == 3000 and screen.first_row == 2 * PAGE
        assert screen.query_one("#browse-table").row_count == PAGE
    assert calls and set(calls) == {PAGE}


def slow_pages(store, seconds: float = 0.02) -> None:
    """Pages that take as long as on a big workspace, so keys arrive while one is on its way."""
    import time

    real = store.browse_page

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    store.browse_page = slow


@run_async
async def test_a_burst_of_page_keys_moves_as_many_pages(store):
    make_workspace(store, n_items=300)  # 900 responses: 18 pages
    slow_pages(store)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_browse(pilot)
        await pilot.press(*["right_square_bracket"] * 15)  # pressed faster than pages load
        await settle(pilot)
        assert screen.first_row == 15 * PAGE  # was 2 pages on
        assert table_ids(screen) == list(range(15 * PAGE + 1, 16 * PAGE + 1))
        assert f"rows {15 * PAGE + 1}-{16 * PAGE} of 900" in screen_text(app)
        await pilot.press(*["right_square_bracket"] * 5)  # past the end: the last page
        await settle(pilot)
        assert table_ids(screen) == list(range(851, 901)) and screen.first_row == 17 * PAGE
        await pilot.press(*["left_square_bracket"] * 4, "right_square_bracket")  # they add up
        await settle(pilot)
        assert screen.first_row == 14 * PAGE and table_ids(screen)[0] == 14 * PAGE + 1


@run_async
async def test_the_detail_pane_starts_at_the_top_of_each_row(store):
    make_workspace(store, n_items=9, texts={k: "long line\n" * 80 for k in range(27)})
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_browse(pilot)
        detail = screen.query_one("#browse-detail")
        await pilot.press("tab", "end")  # the detail pane, scrolled to its end
        await pilot.pause()
        assert detail.scroll_y > 0
        await pilot.press("shift+tab", "down")  # back to the table, the next row
        await settle(pilot)
        assert screen.highlighted().response_id == 2
        assert detail.scroll_y == 0  # the new row's detail from its top
