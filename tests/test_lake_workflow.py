"""A sampled eval set goes through everything a file-imported one does: browse, rate with the
active queue, fit, report and export, on the counts of every judged response."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from helpers import canned_fitter, run_async, screen_text, settle
from helpers_lake import small_lake

from changeover.core.model.counts import counts_for
from changeover.core.render.report import render
from changeover.core.settings import Settings
from changeover.core.workspace import Workspace
from changeover.tui.app import ChangeoverApp


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("lake")
    return folder, small_lake(folder, rows=6_000)


def rate_with_the_queue(ws: Workspace, es, per_cell: int) -> int:
    """Label the queue's picks until every cell holds `per_cell` (the judge's level, as a
    rater who agrees with the judge would)."""
    queue = ws.queue(es, "ann", overlap=0)
    given = 0
    while given < per_cell * 30 and (pick := queue.next()) is not None:
        view = ws.response_view(pick.response_id)
        for j in view.judgments:
            ws.add_rating(pick.response_id, j.metric, "ann", j.value if j.value is not None else 0)
        queue.done(pick.response_id)
        given += 1
    return given


def test_rate_fit_report_and_export_on_a_sample(lake, tmp_path):
    folder, spec = lake
    ws = Workspace.open(tmp_path / "ws.changeover", create=True, fitter=canned_fitter())
    es = ws.import_dataset(folder, spec, sample_per_cell=15).eval_set
    assert ws.browse_count(es.id) == 15 * 30  # browse pages through the sample
    assert rate_with_the_queue(ws, es, per_cell=10) == 300
    counts = counts_for(ws.store, es)["correct"]
    assert counts.labels_per_cell.min() == 10  # the queue filled every cell to its minimum
    assert counts.judged_per_cell.sum() == 6_000  # and the model sees every judged response
    fit = ws.fit(es)
    results = ws.results(es)
    assert results.fit is not None and results.fit.id == fit.id and not results.stale
    doc = json.loads(render(results, "json"))
    judged = {(b["metric"], b["model"], b["region"]): b["n_judged"] for b in doc["baselines"]}
    assert len(judged) >= 30
    per_cell = {(c.model, c.region): 0 for c in ws.store.aggregate_counts(es.id)}
    for c in ws.store.aggregate_counts(es.id):
        if c.metric == "correct" and c.level is not None:
            per_cell[(c.model, c.region)] += c.n
    for (metric, model, region), n in judged.items():
        if metric == "correct" and region != "overall":
            assert n == per_cell[(model, region)]
    assert {c["model"] for c in doc["candidates"]} == set(ws.models(es.id)) - {es.incumbent}
    out = io.StringIO()
    assert ws.export(es, "responses", "csv", out) == 15 * 30  # the texts kept
    assert ws.export(es, "ratings", "csv", io.StringIO()) == 300 * 3
    ws.close()


@pytest.mark.slow
def test_a_sampled_eval_set_fits_with_the_real_model(lake, tmp_path):
    folder, spec = lake
    ws = Workspace.open(tmp_path / "ws.changeover", create=True)
    es = ws.import_dataset(folder, spec, sample_per_cell=12).eval_set
    rate_with_the_queue(ws, es, per_cell=10)
    fit = ws.fit(es, Settings.quick(seed=3, draws=200, tune=200))
    results = ws.results(es, fit_id=fit.id)
    assert results.source == "full" and len(results.metrics) == 3
    overall = results.metrics[0].rows[-1]
    # the lake's generator: atlas-2 correct 78%, atlas-3 86% (the judge agrees with the raters)
    assert 0.6 < overall.cell("atlas-2").value.mean < 0.95
    ws.close()


@run_async
async def test_the_eval_sets_screen_shows_period_and_source(lake, tmp_path):
    folder, spec = lake
    ws = Workspace.open(tmp_path / "ws.changeover", create=True, fitter=canned_fitter())
    ws.import_dataset(folder, spec, sample_per_cell=3)
    app = ChangeoverApp(ws, rater="ann", seed=1)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "lake@2026-11" in text and "90 of 6,000 · sampled · 2026-11" in text, text
    ws.close()
