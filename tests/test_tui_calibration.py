"""The calibration screen: counts, kappa, the judge's accuracy, rater agreement, diagnostics."""

from __future__ import annotations

import pytest
from helpers import (
    DIAGNOSTICS,
    GOOD,
    ScreenApp,
    build_workspace,
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

from changeover.core.judge.agreement import cohen_kappa, kappa_from_table
from changeover.core.model.counts import counts_for
from changeover.core.types import Diagnostics
from changeover.core.workspace import Workspace
from changeover.tui.screens.calibration import CalibrationScreen


def head_text(screen, k: int) -> str:
    return plain(screen.query_one(f"#calibration-head-{k}", Static).content)


def status_text(screen) -> str:
    return plain(screen.query_one("#calibration-status", Static).content)


@run_async
async def test_counts_kappa_accuracy_and_diagnostics():
    store, es = build_workspace()
    fit = save_canned_fit(store, es)
    counts = counts_for(store, es)["correct"]
    app = ScreenApp(lambda: CalibrationScreen(Workspace(store), es))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        cells = {(c.model, c.region): c for c in screen.data.calibration_of("correct")}
        assert set(cells) == {(m, r) for m in MODELS for r in REGIONS}
        m, r = MODELS.index(GOOD), REGIONS.index("eu")
        cell = cells[GOOD, "eu"]
        assert [list(row) for row in cell.counts] == counts.n[m, r].tolist()
        assert cell.kappa == pytest.approx(kappa_from_table(counts.n[m, r]), nan_ok=True)
        assert cell.sensitivity.mean == pytest.approx(0.9, abs=1e-6)  # the canned confusion
        assert cell.specificity.mean == pytest.approx(0.8, abs=1e-6)
        table = screen.query_one("#calibration-table-0", DataTable)
        row = " | ".join(plain(c).replace("\n", " ") for c in table.get_row(f"{GOOD}\x00eu"))
        assert f" | {cell.labels} | " in row and "0.90 [" in row and "0.80 [" in row
        assert cell.labels < 10 and f"few labels ({cell.labels} < 10)" in row
        n = counts.n[m, r]
        assert " ".join(str(int(x)) for x in n[1]) in " ".join(row.split())  # the count table
        assert f"fit #{fit.id}" in status_text(screen)
        head = head_text(screen, 0)
        assert "R-hat max 1.003" in head and "divergences 0" in head and "ok" in head


@run_async
async def test_rater_agreement_matches_an_independent_computation():
    store, es = build_workspace()
    app = ScreenApp(lambda: CalibrationScreen(Workspace(store), es))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        # the fixture: bob labels items k < 3 with the judge's verdict; ann labels the judge's
        # verdict except on k % 4 == 0, where she flips it
        ann, bob = [], []
        for _region in REGIONS:
            for k in range(3):
                for mi in range(len(MODELS)):
                    judge = int((k + mi) % 5 != 0)
                    ann.append(judge if k % 4 else 1 - judge)
                    bob.append(judge)
        expected = cohen_kappa(ann, bob, 2)
        pair = app.screen.data.agreement["correct"].pairs[0]
        assert (pair.rater_a, pair.rater_b, pair.shared) == ("ann", "bob", len(ann))
        assert pair.kappa == pytest.approx(expected)
        head = head_text(app.screen, 0)
        assert f"kappa ann / bob: {expected:.2f} on {len(ann)} shared" in head
        assert "instant posterior" in status_text(app.screen)
        assert "no sampler diagnostics" in head


@run_async
async def test_failed_diagnostics_and_near_random_judge_are_flagged():
    store, es = build_workspace()
    save_canned_fit(store, es, diagnostics={**DIAGNOSTICS, "ok": False, "max_rhat": 1.08})
    app = ScreenApp(lambda: CalibrationScreen(Workspace(store), es))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "FAILED" in head_text(app.screen, 0) and "1.080" in head_text(app.screen, 0)
        random_cells = [
            c
            for c in app.screen.data.calibration_of("correct")
            if any("near random" in w for w in c.warnings)
        ]
        assert random_cells and all(c.kappa < 0.2 or c.youden.includes(0.0) for c in random_cells)
        await pilot.press("right_square_bracket")
        assert app.screen.query_one("TabbedContent").active == "calibration-metric-1"
        text = table_text(app.screen.query_one("#calibration-table-1", DataTable))
        assert "h\\j" in text  # the 3-level count table


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_calibration_snapshot(snap_compare, monkeypatch, size):
    monkeypatch.setattr(
        "changeover.core.store.base.now", lambda: "2026-01-02T03:04:05.000000+00:00"
    )
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = ScreenApp(lambda: CalibrationScreen(Workspace(store), es))
    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_a_failed_fit_says_what_to_do():
    from changeover.tui.screens.calibration import diagnostics_text

    failed = Diagnostics(ok=False, max_rhat=1.004, min_ess_bulk=900.0, min_ess_tail=700.0,
                         divergences=1)  # fmt: skip
    assert "--target-accept 0.98" in diagnostics_text(failed).plain
    assert "f on Results runs a full fit" in diagnostics_text(failed, quick=True).plain
    slow = Diagnostics(ok=False, max_rhat=1.02, min_ess_bulk=900.0, min_ess_tail=700.0)
    assert "next seed" in diagnostics_text(slow).plain
    assert "--target-accept" not in diagnostics_text(slow).plain
    passed = Diagnostics(ok=True, max_rhat=1.004, min_ess_bulk=900.0, min_ess_tail=700.0)
    assert "next seed" not in diagnostics_text(passed).plain
