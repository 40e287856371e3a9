"""The results screen: canned fits, the fit worker (finish and cancel), a stale fit updated by
the labels since, the instant posterior without a fit."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import (
    BAD,
    GOOD,
    INCUMBENT,
    MAYBE,
    RATES,
    ScreenApp,
    build_workspace,
    canned_fitter,
    canned_posteriors,
    fixed_fitter,
    plain,
    run_async,
    save_canned_fit,
    settle,
    table_text,
)
from helpers import (
    RESULT_MODELS as MODELS,
)
from helpers import (
    RESULT_REGIONS as REGIONS,
)
from textual.widgets import DataTable, Static

from changeover.core.types import FitCancelled
from changeover.core.workspace import Workspace
from changeover.tui.screens.results import ResultsScreen
from changeover.tui.screens.results_tables import table_axis
from changeover.tui.widgets.intervals import Axis, verdict_label


def status_text(screen) -> str:
    return plain(screen.query_one("#results-status", Static).content)


def candidates_text(screen) -> str:
    return plain(screen.query_one("#results-candidates", Static).content)


def host(ws: Workspace, es) -> ScreenApp:
    return ScreenApp(lambda: ResultsScreen(ws, es))


@run_async
async def test_canned_fit_numbers_and_verdicts():
    store, es = build_workspace()
    fit = save_canned_fit(store, es)
    app = host(Workspace(store), es)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        data = screen.data
        assert data.source == "full" and data.fit.id == fit.id and not data.stale
        # the data behind the table: means are the planted ones (symmetric draws)
        for model in MODELS:
            for row in (*REGIONS, "overall"):
                mean = data.cell("correct", row, model).value.mean
                assert mean == pytest.approx(RATES[model], abs=1e-6)
        assert data.cell("correct", "eu", GOOD).decision.verdict == "ready"
        assert data.cell("correct", "eu", BAD).decision.verdict == "not ready"
        assert data.cell("correct", "eu", MAYBE).decision.verdict == "undecided"
        assert data.cell("correct", "eu", INCUMBENT).decision is None
        assert data.cell("correct", "overall", GOOD).delta.mean == pytest.approx(0.06, abs=1e-6)
        # what is on screen
        text = table_text(screen.query_one("#results-table-0", DataTable))
        assert "0.860" in text and "0.700" in text and "+0.060" in text and "-0.100" in text
        assert verdict_label("ready") in text and verdict_label("not ready") in text
        assert verdict_label("undecided") in text and "incumbent" in text
        assert "fit #1" in status_text(screen) and "stale" not in status_text(screen)
        lines = candidates_text(screen)
        assert f"{verdict_label('not ready')} {BAD}" in lines  # the name is shown literally
        assert f"{verdict_label('undecided')} {MAYBE}" in lines and "labels needed" in lines
        # the scale metric: mean level 2.3 and the share at or above its pass level ("3")
        assert data.cell("style", "eu", GOOD).value.mean == pytest.approx(2.3, abs=1e-6)
        assert data.cell("style", "eu", GOOD).pass_share.mean == pytest.approx(0.5, abs=1e-6)
        style = table_text(screen.query_one("#results-table-1", DataTable))
        assert "2.30 [" in style and ">=3 0.500 [" in style and "mean level 1-3" in style
        # markup in the eval-set name is shown as text
        title = plain(screen.query_one("#results-title", Static).content)
        assert "support [red]mini[/red]" in title


@run_async
async def test_all_metrics_tab_and_keyboard_tabs():
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = host(Workspace(store), es)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = table_text(app.screen.query_one("#results-table-all", DataTable))
        assert text.splitlines()[0].startswith("correct") and "2.30 inc" in text
        await pilot.press("right_square_bracket")
        assert app.screen.query_one("TabbedContent").active == "results-metric-1"
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert app.screen.query_one("TabbedContent").active == "results-metric-all"


@run_async
async def test_instant_posterior_without_a_fit_is_marked():
    store, es = build_workspace()
    app = host(Workspace(store), es)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.data.source == "instant" and screen.data.fit is None
        assert "instant posterior" in status_text(screen)
        assert "no full fit yet" in status_text(screen)
        await pilot.press("i")  # nothing to switch to
        await settle(pilot)
        assert "no full fit yet: press f" in status_text(screen)


@run_async
async def test_a_label_after_the_fit_updates_it_and_keeps_the_estimator():
    """One more label: the screen keeps the fit (updated by that label, marked stale with the
    count), never switches to the unpooled instant posterior, and the verdicts stay unless the
    label really moves them."""
    store, es = build_workspace()
    ws = Workspace(store, canned_fitter())
    fit = ws.fit(es)
    app = host(ws, es)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        before = screen.data
        assert before.source == "full" and not before.stale
        unlabelled = next(r for r in store.browse(es.id) if r.n_ratings == 0 and r.model == GOOD)
        store.add_rating(unlabelled.response_id, "correct", "cy", 1)
        await pilot.press("r")  # the app reloads on resume; r does the same here
        await settle(pilot)
        after = screen.data
        assert after.stale and after.source == "updated" and after.fit.id == fit.id
        assert after.labels_since == 1 and after.khat < 0.7
        assert "stale: 1 label since, updated by it · f refits" in status_text(screen)
        assert [c.verdict for c in after.candidates] == [c.verdict for c in before.candidates]
        # the label counts in the cell it went to
        assert (
            after.cell("correct", "eu" if "eu" in unlabelled.external_id else "us", GOOD).labels
            == before.cell("correct", "eu" if "eu" in unlabelled.external_id else "us", GOOD).labels
            + 1
        )
        await pilot.press("i")  # the unpooled instant posterior on request, marked as such
        await settle(pilot)
        assert screen.data.source == "instant" and "instant posterior" in status_text(screen)
        await pilot.press("i")
        await settle(pilot)
        assert screen.data.source == "updated"


@run_async
async def test_a_canned_fit_without_its_counts_is_shown_stale_as_fitted():
    store, es = build_workspace()
    save_canned_fit(store, es)  # kept without the counts it saw: it cannot be updated
    app = host(Workspace(store), es)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        unlabelled = next(r for r in store.browse(es.id) if r.n_ratings == 0 and r.model == GOOD)
        store.add_rating(unlabelled.response_id, "correct", "cy", 0)
        await pilot.press("r")
        await settle(pilot)
        assert screen.data.stale and screen.data.source == "full"
        assert "too far to update · f refits" in status_text(screen)
        assert screen.data.cell("correct", "us", GOOD).value.mean == pytest.approx(0.86, abs=1e-6)


@run_async
async def test_fit_from_the_screen_finishes_and_the_table_updates():
    store, es = build_workspace()
    calls: list = []
    ws = Workspace(store, fixed_fitter(canned_posteriors(es), calls=calls))
    app = host(ws, es)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.data.source == "instant"
        await pilot.press("f")
        await settle(pilot)
        assert calls and calls[0] != threading.current_thread().name  # ran in a thread
        assert len(store.fits(es.id)) == 1
        assert screen.data.source == "full" and screen.data.fit.id == store.fits(es.id)[0].id
        overall = screen.data.cell("correct", "overall", GOOD).value.mean
        assert overall == pytest.approx(0.86, abs=1e-6)
        assert "fit #1 finished" in status_text(screen) and not screen.fitting
        assert "0.860" in table_text(screen.query_one("#results-table-0", DataTable))


@run_async
async def test_a_running_fit_is_cancelled_with_escape():
    store, es = build_workspace()
    started, seen, compiled = threading.Event(), threading.Event(), threading.Event()

    def blocking(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        started.set()
        on_progress(0.1, "compiling the model for correct (once per shape)")
        compiled.wait(timeout=20)  # compiling does not look at the cancel event
        if cancel.wait(timeout=20):
            seen.set()
            raise FitCancelled("cancelled")
        raise AssertionError("not cancelled")

    app = host(Workspace(store, blocking), es)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("f")
        assert started.wait(5)
        await pilot.pause()
        assert screen.fitting and screen.query_one("#results-progress").display
        await pilot.press("escape")
        await pilot.pause()
        assert "the model is compiling, which cannot be interrupted" in status_text(screen)
        compiled.set()
        await settle(pilot)
        assert seen.is_set() and store.fits(es.id) == []
        assert not screen.fitting and "cancelled" in status_text(screen)
        assert app.screen is screen  # escape cancelled the fit; it did not leave the screen


@run_async
async def test_a_failing_fitter_is_reported_not_raised():
    store, es = build_workspace()

    def broken(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        raise RuntimeError("sampler exploded")

    app = host(Workspace(store, broken), es)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert "fit failed" in status_text(app.screen) and store.fits(es.id) == []


def test_shared_axis_holds_every_interval_of_the_table():
    store, es = build_workspace()
    save_canned_fit(store, es)
    table = Workspace(store).results(es).table("correct")
    axis = table_axis(table)
    cells = [c for row in table.rows for c in row.cells]
    assert axis.lo <= min(c.value.lower for c in cells)
    assert axis.hi >= max(c.value.upper for c in cells)
    bar = axis.bar(0.7, 0.8, 0.9)
    assert len(bar) == axis.width and bar.count("●") == 1


def test_interval_bar_is_plain_text_with_ascii_fallback():
    axis = Axis(0.0, 1.0, 11, 0.5)
    assert axis.bar(0.2, 0.5, 0.8) == "  ├──●──┤  "
    assert axis.bar(0.2, 0.5, 0.8, ascii=True) == "  [--o--]  "
    assert axis.ruler() == "┼────┼────┼" and axis.labels() == "0.0 0.5 1.0"
    assert verdict_label("not ready", ascii=True) == "x not ready"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_results_snapshot(snap_compare, monkeypatch, size):
    monkeypatch.setattr(
        "changeover.core.store.base.now", lambda: "2026-01-02T03:04:05.000000+00:00"
    )
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = host(Workspace(store), es)
    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_opening_results_does_not_import_the_sampler():
    code = (
        "import sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from helpers import build_workspace, save_canned_fit\n"
        "from changeover.core.workspace import Workspace\n"
        "store, es = build_workspace(); save_canned_fit(store, es)\n"
        "ws = Workspace(store)\n"
        "assert ws.results(es).source == 'full'\n"
        "assert ws.results(es, instant=True).source == 'instant'\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'nutpie') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


@run_async
async def test_through_the_real_app_results_fit_and_calibration():
    from changeover.tui.app import ChangeoverApp
    from changeover.tui.screens.calibration import CalibrationScreen

    store, es = build_workspace()
    calls: list = []
    app = ChangeoverApp(Workspace(store, canned_fitter(calls)), rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ResultsScreen) and screen.data.source == "instant"
        await pilot.press("f")
        await settle(pilot)
        assert calls and len(store.fits(es.id)) == 1 and screen.data.source == "full"
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CalibrationScreen)
        calibration = plain(app.screen.query_one("#calibration-status", Static).content)
        assert f"fit #{store.fits(es.id)[0].id}" in calibration
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ResultsScreen)


def test_axis_labels_thin_out_but_keep_both_ends():
    axis = Axis(0.0, 1.0, 14, 0.1)  # eleven ticks cannot all be labelled in 14 cells
    line = axis.labels()
    assert len(line) == 14 and line.startswith("0.0") and line.endswith("1.0")
    assert line.split() != [format(t, ".1f") for t in axis.ticks()]  # some were left out
    wide = Axis(0.0, 1.0, 60, 0.1)  # room for all eleven
    assert wide.labels().split() == [format(t, ".1f") for t in wide.ticks()]


def test_axis_spanning_holds_any_intervals():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    bounds = st.floats(-5, 5, allow_nan=False).flatmap(
        lambda lo: st.tuples(st.just(lo), st.floats(lo, lo + 3, allow_nan=False))
    )

    @settings(max_examples=80, deadline=None)
    @given(st.lists(bounds, min_size=1, max_size=6), st.integers(8, 40))
    def check(intervals, width):
        axis = Axis.spanning(intervals, width=width)
        assert axis.lo <= min(lo for lo, _ in intervals) + 1e-9
        assert axis.hi >= max(hi for _, hi in intervals) - 1e-9
        for lo, hi in intervals:
            bar = axis.bar(lo, (lo + hi) / 2, hi)
            assert len(bar) == width and bar.count("●") == 1
        assert len(axis.ruler()) == width and len(axis.labels()) == width

    check()


@run_async
async def test_ascii_glyphs_when_asked(monkeypatch):
    monkeypatch.setenv("CHANGEOVER_ASCII", "1")
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = host(Workspace(store), es)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = table_text(app.screen.query_one("#results-table-0", DataTable))
        assert "+ ready" in text and "x not ready" in text and "[" in text and "o" in text
        assert "✔" not in text and "●" not in text and "├" not in text


def six_regions_four_models():
    """The demo's shape: four models, six regions with long names, a few labels per cell."""
    from changeover.core.store import Store
    from changeover.core.types import EvalSet, Metric, Region

    regions = ("North America", "UK & Ireland", "DACH", "Latin America", "Southeast Asia", "ME")
    models = ("atlas-2", "atlas-3", "swift-mini", "guardian-1")
    store = Store.memory()
    es = store.save_eval_set(
        EvalSet(
            0,
            "kestrel",
            "atlas-2",
            tuple(Region(r, 1.0 + k) for k, r in enumerate(regions)),
            (Metric("correct", ("no", "yes"), "higher", 0.03),),
        )
    )
    responses, judgments, ratings = [], [], []
    for r in regions:
        for k in range(30):
            item = f"{r}-{k}"
            for m, model in enumerate(models):
                responses.append((item, r, f"q {item}", None, model, f"a {item} {m}"))
                judge = int((k + m) % 4 != 0)
                judgments.append((item, model, "correct", "judge", judge, None, None, None))
                if k < 12:
                    ratings.append((item, model, "correct", "ann", judge, "2026-01-01T00:00:00"))
    with store.importing(es.id) as batch:
        batch.add_responses(responses)
        batch.add_judgments(judgments)
        batch.add_ratings(ratings)
    return store, es, regions, models


@run_async
async def test_at_80x24_every_model_region_and_candidate_is_on_screen():
    """A triage engineer on an 80x24 SSH session sees every candidate's verdict, every region
    and the overall row without scrolling; the numbers behind a cell are one key away."""
    from helpers import screen_text

    store, es, regions, models = six_regions_four_models()
    app = host(Workspace(store, canned_fitter()), es)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.compact
        text = screen_text(app)
        for name in (*models, *regions, "overall"):
            assert name in text, name
        lines = text.splitlines()
        for c in screen.data.candidates:  # one line each, verdict and P(all hold) included
            line = next(line for line in lines if f" {c.candidate}  P(all hold) " in line)
            assert verdict_label(c.verdict) in line
        assert len(lines) == 24
        await pilot.press("right")  # arrows move within the table; they do not switch tabs
        assert screen.query_one("TabbedContent").active == "results-metric-0"
        await pilot.press("enter")  # the cell under the cursor, in full
        await pilot.pause()
        details = screen_text(app)
        assert "Details: one cell" in details and "90% interval" in details
        await pilot.press("escape", "d")
        await pilot.pause()
        assert "Details: the candidates" in screen_text(app)
    wide = host(Workspace(store, canned_fitter()), es)
    async with wide.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        assert not wide.screen.compact  # the full cells, with bars, where they fit
        assert "├" in screen_text(wide) or "●" in screen_text(wide)


def test_a_cells_details_say_how_many_responses_tied_between_raters():
    from dataclasses import replace

    from changeover.tui.screens.results_tables import cell_details

    store, es = build_workspace()
    data = Workspace(store).results(es, instant=True)
    table = data.metrics[0]
    row = table.rows[0]
    tied = replace(row, cells=tuple(replace(c, ties=2) for c in row.cells))
    data = replace(data, metrics=(replace(table, rows=(tied, *table.rows[1:])),))
    model = row.cells[1].model
    text = cell_details(data, table.name, row.region, model, data.threshold).plain
    assert "(and 2 whose raters tied: unlabelled until a rating breaks it)" in text


@run_async
async def test_f_on_a_current_fit_says_so_and_offers_another_seed():
    """f with no labels since the last (passing) fit refitted the same counts with the same
    seed (35 s for the same draws): it says the fit is current; f again refits, next seed."""
    store, es = build_workspace()
    calls: list = []
    ws = Workspace(store, canned_fitter(calls))
    app = host(ws, es)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("f")
        await settle(pilot)
        first = store.fits(es.id)[0]
        assert len(calls) == 1 and "fit #1 finished" in status_text(screen)
        await pilot.press("f")
        await settle(pilot)
        assert len(calls) == 1 and len(store.fits(es.id)) == 1  # nothing fitted
        seed = first.settings.seed + 1
        assert f"fit #1 is current (no labels since): f again refits with seed {seed}" in (
            status_text(screen)
        )
        await pilot.press("f")
        await settle(pilot)
        assert len(calls) == 2 and store.fits(es.id)[0].settings.seed == seed
        unlabelled = next(r for r in store.browse(es.id) if r.n_ratings == 0)
        store.add_rating(unlabelled.response_id, "correct", "cy", 1)  # new labels: f fits
        await pilot.press("r", "f")
        await settle(pilot)
        assert len(calls) == 3


@run_async
async def test_the_fit_progress_line_fits_80_columns():
    """The compile message was cut at 80 columns ('... (once per'): the bar is narrower."""
    from helpers import screen_text

    store, es = build_workspace()
    go = threading.Event()
    message = "compiling the model for correct (once per shape)"

    def blocking(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        on_progress(0.4, message)
        go.wait(timeout=20)
        raise FitCancelled("cancelled")

    app = host(Workspace(store, blocking), es)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        for _ in range(100):
            await pilot.pause(0.05)
            if app.screen.progress_message == message:
                break
        await pilot.pause()
        line = next(x for x in screen_text(app).splitlines() if "40%" in x)
        go.set()
        await settle(pilot)
    assert message in line, line


def test_a_full_cell_is_as_wide_as_its_verdict_line():
    """'+0.008 0.9496 ? undecided' (25 cells) lost its word in a 23-cell column on "all
    metrics": the columns take their widest line."""
    from changeover.core.decide.verdicts import Decision
    from changeover.core.model.posterior import Interval
    from changeover.core.results import Cell
    from changeover.tui.screens.results_layout import FULL, GridRow, choose_layout
    from changeover.tui.widgets.intervals import summary_cell

    iv = Interval(0.5, 0.4, 0.6)
    inc = Cell("a", 10, iv)
    cand = Cell(
        "b",
        10,
        iv,
        delta=Interval(0.008, -0.1, 0.1),
        decision=Decision("undecided", 0.9496, "P = 0.9496"),
    )
    rows = [GridRow("correct", "correct", (inc, cand), ".3f", 2)]
    layout = choose_layout(rows, ("a", "b"), 200, 40, 0.95, False)
    assert layout.kind == FULL
    line = summary_cell(cand, 0.95).plain.splitlines()[1]
    assert line == "+0.008 0.9496 ? undecided" and layout.widths[1] >= len(line)
