"""The start screen: counts per eval set, and every candidate's verdict of the last fit, at 80
columns as at 160 (the verdicts used to share one table cell, cut at 80 columns and capped at
60 characters, so the last candidates' verdicts never showed)."""

from dataclasses import replace

import pytest
from helpers import canned_fitter, make_workspace, run_async, screen_text, settle

from changeover.core.results import probability_text
from changeover.core.workspace import Workspace
from changeover.tui.app import ChangeoverApp
from changeover.tui.screens.eval_sets import SetRow, verdict_panel, verdict_summary


def row_of(ws: Workspace, es) -> SetRow:
    """What the start screen reads of one eval set, results included."""
    fit = ws.latest_fit(es)
    results = ws.results(es) if fit is not None else None
    return SetRow(es, *ws.size(es), tuple(ws.models(es.id)), fit, ws.source(es), results)


def test_the_table_counts_verdicts_and_the_panel_names_every_candidate(store):
    es = make_workspace(store, n_items=30)
    ws = Workspace(store, canned_fitter())
    assert verdict_summary(row_of(ws, es)) == "no fit yet"
    assert "no fit yet" in verdict_panel(row_of(ws, es)).plain
    fit = ws.fit(es)
    row = row_of(ws, es)
    results = row.results
    assert results is not None and (row.items, row.responses) == (30, 90)
    verdicts = [c.verdict for c in results.candidates]
    assert verdict_summary(row) == ", ".join(
        f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts)
    )
    panel = verdict_panel(row).plain.splitlines()
    assert f"last fit #{fit.id}" in panel[0] and "incumbent oldmodel-alpha" in panel[0]
    for c, line in zip(results.candidates, panel[1:], strict=True):
        p = probability_text(c.joint_probability, results.threshold)
        assert c.candidate in line and c.verdict in line and f"P(all hold) {p}" in line
    failed = Workspace(store, canned_fitter(diagnostics={"ok": False, "divergences": 2}))
    failed.fit(es)
    assert verdict_summary(row_of(failed, es)).endswith(" (diagnostics failed)")
    assert "diagnostics FAILED" in verdict_panel(row_of(failed, es)).plain
    assert "verdicts on their way" in verdict_panel(replace(row, results=None)).plain


@pytest.mark.parametrize("width", [80, 160])
def test_every_candidate_verdict_shows_at_any_width(store, width):
    es = make_workspace(store, n_items=30)
    ws = Workspace(store, canned_fitter())
    ws.fit(es)
    results = ws.results(es)

    @run_async
    async def run():
        app = ChangeoverApp(ws, rater="ann", seed=1)
        async with app.run_test(size=(width, 24)) as pilot:
            await settle(pilot)
            return screen_text(app)

    text = run()
    for c in results.candidates:
        line = next((ln for ln in text.splitlines() if f" {c.candidate} " in ln), "")
        p = probability_text(c.joint_probability, results.threshold)
        assert c.verdict in line and f"P(all hold) {p}" in line, (c.candidate, text)


@run_async
async def test_the_panel_follows_the_highlighted_set(store):
    make_workspace(store, n_items=6)
    second = make_workspace(store, n_items=6, name="second")
    ws = Workspace(store, canned_fitter(diagnostics={"ok": False, "divergences": 2}))
    ws.fit(second)
    app = ChangeoverApp(ws, rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "support · 3 models" in screen_text(app) and "no fit yet" in screen_text(app)
        await pilot.press("down")
        await settle(pilot)
        text = screen_text(app)
        assert "second · 3 models" in text and "diagnostics FAILED" in text


@run_async
async def test_counts_show_before_the_verdicts_are_worked_out(store):
    """The latest fit's results take seconds on a big set: the counts do not wait for them."""
    import threading

    es = make_workspace(store, n_items=30)
    ws = Workspace(store, canned_fitter())
    ws.fit(es)
    release = threading.Event()
    real = ws.results

    def slow_results(*args, **kwargs):
        release.wait(20)
        return real(*args, **kwargs)

    ws.results = slow_results  # type: ignore[method-assign]
    app = ChangeoverApp(ws, rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if "verdicts on their way" in screen_text(app):
                break
        text = screen_text(app)
        assert "verdicts on their way" in text and app.screen.counting
        assert " 30 " in text and " 90 " in text  # items and responses are in already
        release.set()
        await settle(pilot)
        assert "P(all hold)" in screen_text(app) and not app.screen.counting
