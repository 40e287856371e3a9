"""The results screen: canned fits, the fit worker (finish and cancel), stale and instant marking."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import numpy as np
import pytest
from textual.app import App
from textual.widgets import DataTable, Static

from changeover.core.counts import counts_for, data_hash
from changeover.core.posterior import Posterior, to_bytes
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region
from changeover.tui.screens.results import INSTANT_NOTE, ResultsScreen
from changeover.tui.widgets.intervals import Axis, verdict_label

INCUMBENT, GOOD, BAD, MAYBE = "old-model", "good-model", "bad-[b]model[/b]", "maybe-model"
MODELS = (INCUMBENT, GOOD, BAD, MAYBE)
REGIONS = ("eu", "us")
TRAFFIC = (3.0, 1.0)
# planted rates of "correct" per model (same in both regions) and half-widths of their draws
RATES = {INCUMBENT: 0.80, GOOD: 0.86, BAD: 0.70, MAYBE: 0.79}
WIDTHS = {INCUMBENT: 0.01, GOOD: 0.01, BAD: 0.01, MAYBE: 0.12}
S = 400


def make_eval_set(store: Store) -> EvalSet:
    return store.save_eval_set(
        EvalSet(
            id=0,
            name="support [red]mini[/red]",
            incumbent=INCUMBENT,
            regions=tuple(Region(r, t) for r, t in zip(REGIONS, TRAFFIC)),
            metrics=(
                Metric("correct", ("no", "yes"), "higher", 0.02, keys=("n", "y")),
                Metric("style", ("1", "2", "3"), "higher", 0.1, keys=("1", "2", "3")),
            ),
        )
    )


def build_workspace(labels_per_cell: int = 6) -> tuple[Store, EvalSet]:
    """Two regions, four models, 10 items per region; judge verdicts on all, a few labels."""
    store = Store.memory()
    es = make_eval_set(store)
    responses, judgments, ratings = [], [], []
    for region in REGIONS:
        for k in range(10):
            item = f"{region}-{k}"
            for m, model in enumerate(MODELS):
                responses.append(
                    (item, region, f"question {item}", None, model, f"answer {item} {m}")
                )
                judge = int((k + m) % 5 != 0)
                judgments.append((item, model, "correct", "judge", judge, str(judge), None, None))
                judgments.append((item, model, "style", "judge", (k + m) % 3, None, None, None))
                if k < labels_per_cell:
                    human = judge if k % 4 else 1 - judge
                    ratings.append((item, model, "correct", "ann", human, "2026-01-01T00:00:00"))
                    ratings.append(
                        (item, model, "style", "ann", (k + 2 * m) % 3, "2026-01-01T00:00:00")
                    )
                    if k < 3:
                        ratings.append(
                            (item, model, "correct", "bob", judge, "2026-01-01T00:00:01")
                        )
    with store.importing(es.id) as batch:
        batch.add_responses(responses)
        batch.add_judgments(judgments)
        batch.add_ratings(ratings)
    return store, es


def canned_posteriors(es: EvalSet, cell_labels: int = 40) -> list[Posterior]:
    """Draws symmetric around planted means, so every posterior mean is known exactly."""
    offsets = np.linspace(-1.0, 1.0, S)
    M, R = len(MODELS), len(REGIONS)
    weights = np.array(es.traffic_weights)
    flags = {"cell_labels": [[cell_labels] * R for _ in MODELS], "unlabelled_cells": []}
    p = np.zeros((S, M, R, 2))
    for m, model in enumerate(MODELS):
        p[:, m, :, 1] = (RATES[model] + WIDTHS[model] * offsets)[:, None]
    p[..., 0] = 1.0 - p[..., 1]
    conf = np.zeros((S, M, R, 2, 2))
    conf[..., 1, 1] = 0.9 + 0.05 * offsets[:, None, None]
    conf[..., 1, 0] = 1.0 - conf[..., 1, 1]
    conf[..., 0, 0] = 0.8 + 0.05 * offsets[:, None, None]
    conf[..., 0, 1] = 1.0 - conf[..., 0, 0]
    correct = Posterior(
        "correct", ("no", "yes"), MODELS, REGIONS, weights, p, conf, "full", None, flags
    )
    ps = np.zeros((S, M, R, 3))
    for m in range(M):
        ps[:, m] = [0.2, 0.3, 0.5]  # mean level 2.3 everywhere: every candidate exactly even
    ps[..., 0] += 0.05 * offsets[:, None, None]
    ps[..., 2] -= 0.05 * offsets[:, None, None]
    conf3 = np.tile(np.eye(3) * 0.7 + 0.1, (S, M, R, 1, 1))
    style = Posterior(
        "style", ("1", "2", "3"), MODELS, REGIONS, weights, ps, conf3, "full", 2, flags
    )
    return [correct, style]


DIAGNOSTICS = {
    "max_rhat": 1.003,
    "min_ess_bulk": 812.0,
    "min_ess_tail": 640.0,
    "divergences": 0,
    "ok": True,
    "sampler": "canned",
    "per_metric": {},
}


def save_canned_fit(store: Store, es: EvalSet, diagnostics: dict | None = None):
    return store.save_fit(
        es.id,
        {"canned": True},
        data_hash(counts_for(store, es)),
        diagnostics or DIAGNOSTICS,
        {},
        to_bytes(canned_posteriors(es)),
    )


def sync(fn):
    """Run an async Pilot test with asyncio.run (no async pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def settle(pilot) -> None:
    """Let loading and fit workers finish and their messages land (no sleeping)."""
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


class ScreenApp(App):
    """A tiny host: the screen under test pushed on top of the default one."""

    def __init__(self, make_screen):
        super().__init__()
        self.make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())


def plain(renderable) -> str:
    return getattr(renderable, "plain", str(renderable))


def table_text(table: DataTable) -> str:
    return "\n".join(
        " | ".join(plain(c) for c in table.get_row(row.key)) for row in table.ordered_rows
    )


def status_text(screen) -> str:
    return plain(screen.query_one("#results-status", Static).content)


def candidates_text(screen) -> str:
    return plain(screen.query_one("#results-candidates", Static).content)


@sync
async def test_canned_fit_numbers_and_verdicts():
    store, es = build_workspace()
    fit = save_canned_fit(store, es)
    app = ScreenApp(lambda: ResultsScreen(store, es, None))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        data = screen.data
        assert data.source == "full" and data.fit.id == fit.id and not data.stale
        # the data behind the table: means are the planted ones (symmetric draws)
        for model in MODELS:
            for row in (*REGIONS, "overall"):
                assert data.cell("correct", row, model).mean == pytest.approx(
                    RATES[model], abs=1e-6
                )
        assert data.cell("correct", "eu", GOOD).verdict == "ready"
        assert data.cell("correct", "eu", BAD).verdict == "not ready"
        assert data.cell("correct", "eu", MAYBE).verdict == "undecided"
        assert data.cell("correct", "eu", INCUMBENT).verdict is None
        assert data.cell("correct", "overall", GOOD).delta == pytest.approx(0.06, abs=1e-6)
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
        assert data.cell("style", "eu", GOOD).mean == pytest.approx(2.3, abs=1e-6)
        assert data.cell("style", "eu", GOOD).pass_share[0] == pytest.approx(0.5, abs=1e-6)
        style = table_text(screen.query_one("#results-table-1", DataTable))
        assert "2.30 [" in style and ">=3 0.500 [" in style and "mean level 1-3" in style
        # markup in the eval-set name is shown as text
        assert "support [red]mini[/red]" in plain(
            screen.query_one("#results-title", Static).content
        )


@sync
async def test_all_metrics_tab_and_keyboard_tabs():
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = ScreenApp(lambda: ResultsScreen(store, es, None))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = table_text(app.screen.query_one("#results-table-all", DataTable))
        assert text.splitlines()[0].startswith("correct") and "2.300" in text
        await pilot.press("right_square_bracket")
        assert app.screen.query_one("TabbedContent").active == "results-metric-1"
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert app.screen.query_one("TabbedContent").active == "results-metric-all"


@sync
async def test_instant_posterior_without_a_fit_is_marked():
    store, es = build_workspace()
    app = ScreenApp(lambda: ResultsScreen(store, es, None))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.data.source == "instant" and screen.data.fit is None
        assert INSTANT_NOTE in status_text(screen)
        assert "no full fit yet" in status_text(screen)


@sync
async def test_new_label_makes_the_fit_stale_and_shows_the_instant_posterior():
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = ScreenApp(lambda: ResultsScreen(store, es, None))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.data.source == "full"
        before = screen.data.cell("correct", "us", GOOD)
        unlabelled = next(r for r in store.browse(es.id) if r.n_ratings == 0 and r.model == GOOD)
        store.add_rating(unlabelled.response_id, "correct", "cy", 0)
        await pilot.press("r")  # the app reloads on resume; r does the same here
        await settle(pilot)
        assert screen.data.stale and screen.data.source == "instant"
        assert "stale" in status_text(screen) and INSTANT_NOTE in status_text(screen)
        assert screen.data.cell("correct", "us", GOOD) != before
        await pilot.press("i")  # back to the (stale) full fit, still marked
        await settle(pilot)
        assert screen.data.source == "full" and "stale" in status_text(screen)


def canned_fitter(calls: list):
    def fit(store, eval_set, settings, on_progress=None, cancel=None):
        assert settings is not None
        calls.append(threading.current_thread().name)
        for k in range(5):
            on_progress(k / 4, f"step {k}")
        return save_canned_fit(store, eval_set)

    return fit


@sync
async def test_fit_from_the_screen_finishes_and_the_table_updates():
    store, es = build_workspace()
    calls: list = []
    app = ScreenApp(lambda: ResultsScreen(store, es, canned_fitter(calls)))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.data.source == "instant"
        await pilot.press("f")
        await settle(pilot)
        assert calls and calls[0] != threading.current_thread().name  # ran in a thread
        assert len(store.fits(es.id)) == 1
        assert screen.data.source == "full" and screen.data.fit.id == store.fits(es.id)[0].id
        assert screen.data.cell("correct", "overall", GOOD).mean == pytest.approx(0.86, abs=1e-6)
        assert "fit #1 finished" in status_text(screen) and not screen.fitting
        assert "0.860" in table_text(screen.query_one("#results-table-0", DataTable))


class FitCancelled(Exception):
    """Named like core.model.FitCancelled: the screen must recognise it by name."""


@sync
async def test_a_running_fit_is_cancelled_with_escape():
    store, es = build_workspace()
    started, seen = threading.Event(), threading.Event()

    def blocking(store_, eval_set, settings, on_progress=None, cancel=None):
        started.set()
        on_progress(0.1, "warming up")
        if cancel.wait(timeout=20):
            seen.set()
            raise FitCancelled("cancelled")
        return save_canned_fit(store_, eval_set)

    app = ScreenApp(lambda: ResultsScreen(store, es, blocking))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("f")
        assert started.wait(5)
        await pilot.pause()
        assert screen.fitting and screen.query_one("#results-progress").display
        await pilot.press("escape")
        await settle(pilot)
        assert seen.is_set() and store.fits(es.id) == []
        assert not screen.fitting and "cancelled" in status_text(screen)
        assert app.screen is screen  # escape cancelled the fit; it did not leave the screen


@sync
async def test_a_failing_fitter_is_reported_not_raised():
    store, es = build_workspace()

    def broken(store_, eval_set, settings, on_progress=None, cancel=None):
        raise RuntimeError("sampler exploded")

    app = ScreenApp(lambda: ResultsScreen(store, es, broken))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert "fit failed" in status_text(app.screen) and store.fits(es.id) == []


def test_shared_axis_holds_every_interval_of_the_table():
    store, es = build_workspace()
    save_canned_fit(store, es)
    from changeover.tui.screens.results import table_axis
    from changeover.tui.screens.results_data import load_results

    view = load_results(store, es).table("correct")
    axis = table_axis(view)
    assert axis.lo <= min(c.lo for c in view.cells.values())
    assert axis.hi >= max(c.hi for c in view.cells.values())
    bar = axis.bar(0.7, 0.8, 0.9)
    assert len(bar) == axis.width and bar.count("●") == 1


def test_interval_bar_is_plain_text_with_ascii_fallback():
    axis = Axis(0.0, 1.0, 11, 0.5)
    assert axis.bar(0.2, 0.5, 0.8) == "  ├──●──┤  "
    assert axis.bar(0.2, 0.5, 0.8, ascii=True) == "  [--o--]  "
    assert (
        axis.ruler() == "┼────┼────┼" and axis.labels() == "0.0 0.5 1.0"
    )  # each tick value centred on its mark
    assert verdict_label("not ready", ascii=True) == "x not ready"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_results_snapshot(snap_compare, monkeypatch, size):
    monkeypatch.setattr("changeover.core.store.now", lambda: "2026-01-02T03:04:05.000000+00:00")
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = ScreenApp(lambda: ResultsScreen(store, es, None))
    assert snap_compare(app, terminal_size=size, run_before=_settle)


async def _settle(pilot) -> None:
    await settle(pilot)


def test_opening_results_does_not_import_the_sampler():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_tui_results import build_workspace, save_canned_fit\n"
        "from tui.screens.results_data import load_results\n"
        "store, es = build_workspace(); save_canned_fit(store, es)\n"
        "assert load_results(store, es).source == 'full'\n"
        "assert load_results(store, es, prefer='instant').source == 'instant'\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'nutpie') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


@sync
async def test_through_the_real_app_results_fit_and_calibration():
    from changeover.tui.app import ChangeoverApp
    from changeover.tui.screens.calibration import CalibrationScreen

    store, es = build_workspace()
    calls: list = []
    app = ChangeoverApp(store, fitter=canned_fitter(calls), rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
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
        assert f"fit #{store.fits(es.id)[0].id}" in plain(
            app.screen.query_one("#calibration-status", Static).content
        )
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


@sync
async def test_ascii_glyphs_when_asked(monkeypatch):
    monkeypatch.setenv("CHANGEOVER_ASCII", "1")
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = ScreenApp(lambda: ResultsScreen(store, es, None))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = table_text(app.screen.query_one("#results-table-0", DataTable))
        assert "+ ready" in text and "x not ready" in text and "[" in text and "o" in text
        assert "✔" not in text and "●" not in text and "├" not in text
