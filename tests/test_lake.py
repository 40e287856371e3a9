"""Import at production scale: counts and a stratified sample from a dataset of judged responses
(core/importing/lake.py), periods, drawing more, and the checks with file and row."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import polars as pl
import pytest
from helpers_lake import eager_counts, read_lake, small_lake

from changeover.cli.main import main
from changeover.core.importing.keep_sample import allocate
from changeover.core.importing.read import ImportFailed
from changeover.core.model.counts import counts_for
from changeover.core.store import SCHEMA_VERSION
from changeover.core.store.base import MIGRATIONS
from changeover.core.types import ChangeoverError
from changeover.core.workspace import Workspace


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("lake")
    return folder, small_lake(folder)


def stored(ws: Workspace, es) -> pl.DataFrame:
    """The responses the workspace keeps, with their judge level of `correct`."""
    rows = ws.store._rows(  # the test reads the file as any SQLite tool would
        "SELECT i.external_id AS item_id, r.id, r.model, i.region, j.value AS level "
        "FROM responses r JOIN items i ON i.id = r.item_id JOIN judgments j "
        "ON j.response_id = r.id AND j.metric = 'correct' WHERE i.eval_set_id = ?",
        (es.id,),
    )
    return pl.DataFrame(rows)


def test_counts_are_every_row_and_the_sample_the_only_text(lake):
    folder, spec = lake
    ws = Workspace.memory()
    report = ws.import_dataset(folder, spec, sample_per_cell=20)
    es = report.eval_set
    assert es.name == "lake@2026-11" and report.source.period == "2026-11"
    df = read_lake(folder)
    assert report.source.rows == df.height == 3_000
    held = ws.store.aggregate_counts(es.id)
    assert {(c.metric, c.model, c.region, c.level, c.n) for c in held} == eager_counts(df, spec)
    # the model's unlabelled counts are aggregate minus labelled: every row, not the sample
    counts = counts_for(ws.store, es)
    per_cell = df.group_by("model", "region").len()
    for model, region, n in per_cell.iter_rows():
        c = counts["style"]
        assert c.judged_per_cell[c.models.index(model), c.regions.index(region)] == n
    kept = stored(ws, es)
    cells = kept.group_by("model", "region").len()
    assert cells.height == 30 and set(cells["len"]) == {20}  # 5 models x 6 regions, 20 each
    assert ws.summary(es, with_results=False).stats.responses == 600


def test_the_sample_is_balanced_over_judge_levels_and_nests(lake, tmp_path):
    folder, spec = lake
    df = read_lake(folder)
    ws = Workspace.memory()
    es = ws.import_dataset(folder, spec, sample_per_cell=20).eval_set
    small = stored(ws, es)
    sizes = df.group_by("model", "region", "judge_correct").len()
    for (model, region), cell in small.group_by("model", "region"):
        have = cell.group_by("level").len()
        got = dict(zip(have["level"].to_list(), have["len"].to_list()))
        size = dict(
            sizes.filter((pl.col("model") == model) & (pl.col("region") == region))
            .select("judge_correct", "len")
            .iter_rows()
        )
        assert [got.get(0, 0), got.get(1, 0)] == allocate(20, [size["no"], size["yes"]])
    # more of the same data keeps everything kept, and its labels
    first = small.sort("id")["id"][0]
    ws.add_rating(int(first), "correct", "ann", 1)
    again = ws.import_dataset(folder, spec, sample_per_cell=35)
    assert again.drawn_before == 600 and again.stored == 35 * 30
    big = stored(ws, es)
    assert set(small["id"]) <= set(big["id"])
    assert ws.summary(es, with_results=False).stats.ratings == 1


def test_the_sample_depends_on_the_seed_not_on_file_order(lake, tmp_path):
    folder, spec = lake
    shuffled = tmp_path / "shuffled"
    for path in folder.rglob("*.parquet"):
        out = shuffled / path.relative_to(folder)
        out.parent.mkdir(parents=True, exist_ok=True)
        pl.read_parquet(path).sample(fraction=1.0, shuffle=True, seed=3).write_parquet(out)
    keys = []
    for where, seed in ((folder, 0), (shuffled, 0), (folder, 1)):
        ws = Workspace.memory()
        es = ws.import_dataset(where, spec, sample_per_cell=10, seed=seed).eval_set
        kept = stored(ws, es)
        keys.append(set(zip(kept["item_id"], kept["model"])))
    assert keys[0] == keys[1]  # the rows' order in the files does not matter
    assert keys[0] != keys[2]  # the seed does


def test_a_flat_csv_dataset_counts_the_same(lake, tmp_path):
    folder, spec = lake
    df = read_lake(folder).drop("month")
    flat = tmp_path / "flat"
    flat.mkdir()
    half = df.height // 2
    df.head(half).write_csv(flat / "a.csv")
    df.tail(df.height - half).write_csv(flat / "b.csv")
    ws = Workspace.memory()
    report = ws.import_dataset(str(flat / "*.csv"), spec, sample_per_cell=5)
    assert report.source.period is None and report.eval_set.name == "lake"
    held = ws.store.aggregate_counts(report.eval_set.id)
    assert {(c.metric, c.model, c.region, c.level, c.n) for c in held} == eager_counts(df, spec)


def test_periods_are_eval_sets_of_their_own(tmp_path):
    small_lake(tmp_path, rows=1_000, month="2026-10", seed=1)
    spec = small_lake(tmp_path, rows=1_500, month="2026-11", seed=2)
    ws = Workspace.memory()
    with pytest.raises(ImportFailed, match=r"several periods \(month: 2026-10, 2026-11\)"):
        ws.import_dataset(tmp_path, spec, sample_per_cell=5)
    oct_ = ws.import_dataset(tmp_path, spec, sample_per_cell=5, period="2026-10").eval_set
    nov = ws.import_dataset(tmp_path, spec, sample_per_cell=5, period="2026-11").eval_set
    assert (oct_.name, nov.name) == ("lake@2026-10", "lake@2026-11")
    assert ws.source(oct_).rows == 1_000 and ws.source(nov).rows == 1_500
    # the same item ids in both months are different items: a label in October stays there
    shared = set(stored(ws, oct_)["item_id"]) & set(stored(ws, nov)["item_id"])
    assert shared
    item = sorted(shared)[0]
    oct_id = stored(ws, oct_).filter(pl.col("item_id") == item)["id"][0]
    before = counts_for(ws.store, nov)["correct"].n.sum()
    ws.add_rating(int(oct_id), "correct", "ann", 1)
    assert counts_for(ws.store, oct_)["correct"].n.sum() == 1
    assert counts_for(ws.store, nov)["correct"].n.sum() == before == 0
    with pytest.raises(ImportFailed, match="no period '2026-12'"):
        ws.import_dataset(tmp_path, spec, sample_per_cell=5, period="2026-12")


def test_changed_data_is_not_mixed_into_an_imported_period(lake, tmp_path):
    folder, spec = lake
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    ws = Workspace.memory()
    ws.import_dataset(copy, spec, sample_per_cell=5)
    extra = pl.read_parquet(next(copy.rglob("*.parquet"))).with_columns(
        pl.format("new-{}", "item_id").alias("item_id")
    )
    extra.write_parquet(next(copy.rglob("*.parquet")).parent / "part-late.parquet")
    with pytest.raises(ChangeoverError, match="the data changed since"):
        ws.import_dataset(copy, spec, sample_per_cell=5)


def _bad_lake(tmp_path: Path, spec_from: Path) -> tuple[Path, Path]:
    folder = tmp_path / "bad"
    part = folder / "month=2026-11" / "region=DACH"
    part.mkdir(parents=True)
    spec = folder / "spec.toml"
    shutil.copy(spec_from, spec)
    rows = {
        "item_id": ["a", "b", "c", "d", "e", "a"],
        "question": ["q a", "q b", "q c", "q d", "q e", "q a"],
        "model": ["atlas-2"] * 6,
        "response": ["fine", "   ", "fine", "fine", "fine", "again"],
        "judge_correct": ["yes", "no", "yes", "yes", "no", "yes"],
        "judge_refused": ["1_full_compliance"] * 2 + ["4_maybe"] + ["1_full_compliance"] * 3,
        "judge_style": [3, 4, 5, 1, 2, 3],
    }
    pl.DataFrame(rows).write_parquet(part / "part-0.parquet")
    other = folder / "month=2026-11" / "region=Mars"
    other.mkdir(parents=True)
    pl.DataFrame({k: v[:1] for k, v in rows.items()}).with_columns(
        pl.lit("z").alias("item_id")
    ).write_parquet(other / "part-0.parquet")
    return folder, spec


def test_problems_name_the_file_and_row_and_nothing_is_written(lake, tmp_path):
    folder, spec = _bad_lake(tmp_path, lake[1])
    path = tmp_path / "ws.changeover"
    code = main(["import", str(path), str(folder), "--spec", str(spec), "--sample-per-cell", "5"])
    assert code == 1 and not path.exists()  # a failed first import leaves no workspace
    ws = Workspace.memory()
    with pytest.raises(ImportFailed) as err:
        ws.import_dataset(folder, spec, sample_per_cell=5)
    text = str(err.value)
    where = "month=2026-11/region=DACH/part-0.parquet: row"
    assert f"{where} 2: response: empty response" in text
    assert f"{where} 3: judge_refused: '4_maybe' is not a level of refused" in text
    assert f"{where} 6: item_id: duplicate of {where.split(':')[0]} row 1 (item a" in text
    assert "month=2026-11/region=Mars/part-0.parquet: row 1: region: 'Mars' is not a region" in text
    assert ws.eval_sets() == []


def test_a_csv_problem_names_its_physical_line(lake, tmp_path):
    folder, spec = lake
    df = read_lake(folder).drop("month").head(4)
    df = df.with_columns(
        pl.Series("response", ["two\nlines", "ok", "", "ok"]),
    )
    flat = tmp_path / "csv"
    flat.mkdir()
    df.write_csv(flat / "part.csv")
    with pytest.raises(ImportFailed, match=r"part\.csv:5: response: empty response"):
        Workspace.memory().import_dataset(flat, spec, sample_per_cell=5)


def test_a_schema_1_workspace_opens_and_migrates(tmp_path):
    path = tmp_path / "old.changeover"
    con = sqlite3.connect(path)
    con.executescript(MIGRATIONS[1] + "; PRAGMA user_version = 1;")
    con.execute("INSERT INTO changeover_meta VALUES ('app', 'changeover')")
    con.execute(
        "INSERT INTO eval_sets (name, incumbent, created_at) VALUES ('old', 'm', '2026-01-01')"
    )
    con.commit()
    con.close()
    with Workspace.open(path) as ws:
        assert ws.schema_version() == SCHEMA_VERSION == 4
        es = ws.eval_set("old")
        assert ws.source(es) is None and ws.store.aggregate_counts(es.id) is None


def test_info_json_reports_judged_and_stored(lake, tmp_path, capsys):
    folder, spec = lake
    path = tmp_path / "ws.changeover"
    assert (
        main(["import", str(path), str(folder), "--spec", str(spec), "--sample-per-cell", "4"]) == 0
    )
    assert "kept 120 responses as the labelling sample" in capsys.readouterr().out
    assert main(["info", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    [es] = doc["eval_sets"]
    assert (es["responses_judged"], es["responses_stored"]) == (3_000, 120)
    assert es["period"] == "2026-11" and es["source"]["kind"] == "dataset"
    assert es["source"]["files"] and es["source"]["sample_per_cell"] == 4
    assert main(["info", str(path)]) == 0
    assert "source: dataset" in capsys.readouterr().out


def test_the_queue_says_when_a_cells_sample_runs_out(lake, tmp_path):
    folder, spec = lake
    ws = Workspace.open(tmp_path / "ws.changeover", create=True)
    es = ws.import_dataset(folder, spec, sample_per_cell=2).eval_set
    queue = ws.queue(es, "ann", overlap=0)
    notices, labelled = [], 0
    while (pick := queue.next()) is not None:
        for m in es.metrics:
            ws.add_rating(pick.response_id, m.name, "ann", 0)
        queue.done(pick.response_id)
        labelled += 1
        notices += queue.take_notices()
    notices += queue.take_notices()
    assert labelled == 60  # every kept response, and no more
    assert len(notices) == 30  # once per cell
    assert "--sample-per-cell 4" in notices[0] and str(folder) in notices[0]
    assert "--period 2026-11" in notices[0] and "changeover import " in notices[0]
    ws.close()


def test_summary_shows_period_and_source(lake):
    folder, spec = lake
    ws = Workspace.memory()
    es = ws.import_dataset(folder, spec, sample_per_cell=3).eval_set
    summary = ws.summary(es, with_results=False)
    assert summary.responses_judged == 3_000
    assert summary.responses_text == "90 of 3,000 · sampled · 2026-11"
