"""Escape while the model compiles: the compile cannot be interrupted, and the screen says so
rather than sitting on "cancelling" for the ~18 s a compile may still take."""

import threading

from test_tui_results import ScreenApp, build_workspace, settle, status_text, sync

from changeover.core.model import FitCancelled
from changeover.tui.screens.results import ResultsScreen


@sync
async def test_cancelling_while_compiling_says_why_it_waits():
    store, es = build_workspace()
    compiling, cancelled, release = threading.Event(), threading.Event(), threading.Event()

    def compiles(store_, eval_set, settings, on_progress=None, cancel=None):
        on_progress(0.0, "compiling the model for correct (once per shape)")
        compiling.set()
        cancel.wait(timeout=20)
        cancelled.set()
        release.wait(timeout=20)  # the compile runs on after the escape
        raise FitCancelled("cancelled")

    app = ScreenApp(lambda: ResultsScreen(store, es, compiles))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        assert compiling.wait(5)
        screen = app.screen
        progress = screen.query_one("#results-progress-message")
        for _ in range(50):  # the progress message reaches the screen
            await pilot.pause(0.02)
            if "compiling" in str(progress.content):
                break
        await pilot.press("escape")
        assert cancelled.wait(5)
        await pilot.pause()
        assert screen.fitting and "once the model has compiled" in status_text(screen)
        release.set()
        await settle(pilot)
        assert not screen.fitting and "cancelled" in status_text(screen)
    assert store.fits(es.id) == []
