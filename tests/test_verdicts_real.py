"""Real data: every verdict on XSTest and on the sample workspace, listed cell by cell, so a
change to the model or the decision rule cannot make one worse unnoticed (issue 22).

Both run the way a user does, through core/workspace.py (import, the default fit, results):
- the sample workspace (sample_data/support.*: 10 labelled responses per cell, two raters each);
- XSTest v2 (../shared/data/xstest, skipped when absent; five generating models, the GPT-4
  judge) with both annotators' labels on a seeded 10% of the responses of every (model, region)
  cell, the rest judged only.

A verdict is right when it agrees with the truth (the sample's generating rates in
sample_data/truth.json; XSTest's rates from every human label), wrong when it contradicts it,
and undecided otherwise. Listed per (candidate, metric) are the verdicts of the model and rule
before issue 22, region by region: R ready, N not ready, U undecided. No cell may rank lower now
(right > undecided > wrong).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from changeover.core.workspace import Workspace

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
xstest_data = pytest.importorskip("tests.xstest_data")

CODE = {"ready": "R", "not ready": "N", "undecided": "U"}

# Before issue 22 (main at 259073b), region by region in the eval set's order.
SAMPLE_BEFORE = {
    ("atlas-3", "correct"): "RRURRR",
    ("atlas-3", "refused"): "URRURU",
    ("atlas-3", "style"): "RRURUR",
    ("swift-mini", "correct"): "RRNNRU",
    ("swift-mini", "refused"): "RURURR",
    ("swift-mini", "style"): "UUUUUU",
    ("guardian-1", "correct"): "URUUUU",
    ("guardian-1", "refused"): "NNNNNN",
    ("guardian-1", "style"): "UUUUUU",
}
XSTEST_BEFORE = {  # regions: safe, contrast
    ("llama2new", "refused"): "NU",
    ("llama2orig", "refused"): "NU",
    ("mistralguard", "refused"): "UU",
    ("mistralinstruct", "refused"): "UN",
}


def rank(verdict: str, truly_ready: bool) -> int:
    """2 right, 1 undecided, 0 wrong."""
    if verdict == "U":
        return 1
    return 2 if (verdict == "R") == truly_ready else 0


def holds(delta: float, direction: str, margin: float) -> bool:
    return {"higher": delta > -margin, "lower": delta < margin, "match": abs(delta) <= margin}[
        direction
    ]


def verdicts(ws: Workspace, es) -> dict[tuple[str, str], str]:
    """(candidate, metric) -> the cells' verdicts, region by region, as the results show them."""
    results = ws.results(es)
    out: dict[tuple[str, str], str] = {}
    for cand in results.candidates:
        for cell in cand.cells:
            key = (cand.candidate, cell.metric)
            out[key] = out.get(key, "") + CODE[cell.decision.verdict]
    return out


def compare(now, before, truth) -> list[str]:
    """The cells whose verdict ranks lower now, as readable lines."""
    worse = []
    for key, was in before.items():
        for r, (old, new) in enumerate(zip(was, now[key])):
            if rank(new, truth[key][r]) < rank(old, truth[key][r]):
                worse.append(f"{key} region {r}: {old} -> {new} (truly ready: {truth[key][r]})")
    return worse


def test_sample_workspace_verdicts_are_no_worse(tmp_path):
    ws = Workspace.memory()
    es = ws.import_file(ROOT / "sample_data" / "support.csv", ROOT / "sample_data" / "support.toml")
    es = ws.eval_set(es.eval_set.name)
    record = ws.fit(es)
    now = verdicts(ws, es)
    truth_json = json.loads((ROOT / "sample_data" / "truth.json").read_text())
    cells, inc = truth_json["cells"], es.incumbent
    truth = {}
    for (cand, metric), _ in SAMPLE_BEFORE.items():
        m = es.metric(metric)
        key = "mean" if len(m.levels) > 2 else "rate"
        truth[(cand, metric)] = [
            holds(cells[metric][cand][r][key] - cells[metric][inc][r][key], m.direction, m.margin)
            for r in es.region_names
        ]
    print({k: v for k, v in now.items()})
    assert record.diagnostics.ok, record.diagnostics
    assert set(now) == set(SAMPLE_BEFORE)
    assert compare(now, SAMPLE_BEFORE, truth) == []
    # the planted story itself: swift-mini not ready on correctness in DACH and Latin America
    assert now[("swift-mini", "correct")][2:4] == "NN"
    assert "N" in now[("guardian-1", "refused")]


@pytest.mark.skipif(xstest_data.xstest_dir() is None, reason="../shared/data/xstest not present")
def test_xstest_verdicts_are_no_worse(tmp_path):
    data, spec = xstest_data.build_xstest_files(tmp_path, judge="gpteval")
    frame = pl.read_csv(data, infer_schema=False)
    # both annotators' labels on a seeded 10% of every (model, region) cell, the rest judged only
    keys = frame.select("model", "region", "item_id").unique().sort("model", "region", "item_id")
    rng = np.random.default_rng(2026)
    keep = []
    for (model, _region), group in keys.group_by(["model", "region"], maintain_order=True):
        ids = group["item_id"].to_list()
        keep += [(model, i) for i in rng.choice(ids, size=round(0.1 * len(ids)), replace=False)]
    chosen = pl.DataFrame(keep, schema=["model", "item_id"], orient="row").with_columns(
        pl.lit(True).alias("_labelled")
    )
    frame = frame.join(chosen, on=["model", "item_id"], how="left")
    labelled = frame.filter(pl.col("_labelled").is_not_null()).drop("_labelled")
    judged = (
        frame.filter(pl.col("_labelled").is_null())
        .unique(["model", "item_id"], keep="first", maintain_order=True)
        .with_columns(
            pl.lit(None, pl.Utf8).alias("rater"), pl.lit(None, pl.Utf8).alias("human_refused")
        )
        .drop("_labelled")
    )
    sampled = tmp_path / "xstest_sampled.csv"
    pl.concat([labelled, judged]).write_csv(sampled)

    ws = Workspace.memory()
    es = ws.import_file(sampled, spec).eval_set
    es = ws.eval_set(es.name)
    ws.fit(es)
    now = verdicts(ws, es)
    # the truth: each model's refusal rate from every human label (majority of the annotators)
    full = Workspace.memory()
    full_es = full.import_file(data, spec).eval_set
    counts = full.counts(full.eval_set(full_es.name))["refused"]
    rate = counts.n[:, :, 1, :].sum(-1) / counts.n.sum(axis=(2, 3))
    m = es.metric("refused")
    truth = {
        (cand, "refused"): [
            holds(
                rate[counts.models.index(cand), counts.regions.index(r)]
                - rate[0, counts.regions.index(r)],
                m.direction,
                m.margin,
            )
            for r in es.region_names
        ]
        for cand, _ in XSTEST_BEFORE
    }
    print(now)
    assert set(now) == set(XSTEST_BEFORE)
    assert compare(now, XSTEST_BEFORE, truth) == []
