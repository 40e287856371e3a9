"""`changeover info --format json`, and how an eval set's source reads in `info`'s text.

JSON shape (`"schema": "changeover.info/1"`): the workspace and its schema version, and per eval
set its name, incumbent, judge, models, regions, metrics, `period`, `source` (null when every
judged response is stored, else kind, location, files, rows, fingerprint, sample_per_cell,
stratify, seed, engine, spec, created_at, updated_at), `responses_judged` (what the counts
cover), `responses_stored` (texts kept), items, judgments, ratings (and `ratings_open`, those
chosen by a person and left out of the fit), labelled responses and fits.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from changeover.core.workspace import EvalSetSource, Workspace


def source_text(source: EvalSetSource) -> str:
    """One line: where the judged responses live and what the workspace keeps of them."""
    where = (
        f"dataset {source.location} ({len(source.files):,} files)"
        if source.kind == "dataset"
        else f"counts from {source.location}"
    )
    period = f", period {source.period}" if source.period else ""
    sample = (
        f"; sample of {source.sample_per_cell} per model and region by {source.stratify}'s judge "
        f"level, seed {source.seed}"
        if source.kind == "dataset"
        else ""
    )
    return (
        f"source: {where}{period}: {source.rows:,} judged responses ({source.engine}){sample}; "
        f"fingerprint {source.fingerprint[:12]}"
    )


def info_json(ws: Workspace) -> str:
    """The workspace's eval sets as JSON (ASCII, one document)."""
    sets: list[dict[str, Any]] = []
    for es in ws.eval_sets():
        summary = ws.summary(es, with_results=False)
        s, src = summary.stats, summary.source
        fit = summary.latest_fit
        sets.append(
            {
                "name": es.name,
                "incumbent": es.incumbent,
                "judge": es.judge,
                "period": src.period if src else None,
                "source": None if src is None else {**src._asdict(), "files": list(src.files)},
                "models": list(summary.models),
                "regions": [{"name": r.name, "traffic": r.traffic} for r in es.regions],
                "metrics": [
                    {"name": m.name, "levels": list(m.levels), "direction": m.direction}
                    for m in es.metrics
                ],
                "responses_judged": summary.responses_judged,
                "responses_stored": s.responses,
                "items": s.items,
                "judgments": s.judgments,
                "judgments_missing": s.judgments_missing,
                "ratings": s.ratings,
                "ratings_open": s.open_ratings,
                "labelled_responses": s.labelled_responses,
                "fits": summary.fits,
                "latest_fit": None if fit is None else {"id": fit.id, "created_at": fit.created_at},
            }
        )
    doc = {
        "schema": "changeover.info/1",
        "workspace": str(ws.path) if ws.path else None,
        "schema_version": ws.schema_version(),
        "eval_sets": sets,
    }
    return json.dumps(doc, indent=2, ensure_ascii=True)
