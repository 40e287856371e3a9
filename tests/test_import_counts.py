"""`changeover import-counts`: counts made elsewhere, checked by line, and a sample file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from helpers_lake import read_lake, small_lake

from changeover.cli.main import main
from changeover.core.importing.read import ImportFailed
from changeover.core.workspace import Workspace


def counts_of(df: pl.DataFrame) -> pl.DataFrame:
    """Raw judge values counted per (model, region), as a warehouse's GROUP BY gives them."""
    parts = [
        df.group_by("model", "region", pl.col(f"judge_{metric}").cast(pl.String))
        .len()
        .select(
            "model",
            "region",
            pl.lit(metric).alias("metric"),
            pl.col(f"judge_{metric}").alias("judge_level"),
            pl.col("len").alias("count"),
        )
        for metric in ("correct", "refused", "style")
    ]
    return pl.concat(parts).sort("metric", "model", "region", "judge_level")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A lake's spec, counts and a sample of 3 responses per (model, region)."""
    folder = tmp_path_factory.mktemp("counts")
    spec = small_lake(folder, rows=2_000)
    df = read_lake(folder)
    counts = folder / "counts.csv"
    counts_of(df).write_csv(counts)
    sample = folder / "sample.csv"
    df.drop("month").group_by("model", "region", maintain_order=True).head(3).write_csv(sample)
    return spec, counts, sample


def test_counts_and_a_sample_import_and_say_so(files, tmp_path, capsys):
    spec, counts, sample = files
    path = tmp_path / "ws.changeover"
    argv = ["import-counts", str(path), str(counts), "--spec", str(spec), "--sample", str(sample)]
    assert main([*argv, "--period", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert "counts of 2,000 judged responses" in out and "kept 90 responses" in out
    with Workspace.open(path, read_only=True) as ws:
        es = ws.eval_set("lake@2026-11")
        source = ws.source(es)
        assert source.kind == "counts" and source.rows == 2_000 and source.period == "2026-11"
        assert sum(c.n for c in ws.store.aggregate_counts(es.id) if c.metric == "style") == 2_000
    assert main([*argv, "--period", "2026-11"]) == 0  # the same again: nothing new
    assert "nothing new" in capsys.readouterr().out


def test_bad_counts_are_reported_by_line(files, tmp_path):
    spec, counts, sample = files
    text = counts.read_text().splitlines()
    head, rows = text[0], text[1:]
    bad = [
        head,
        *rows[:3],
        rows[3].replace("correct", "kindness", 1),  # line 5: no such metric
        rows[4].rsplit(",", 1)[0] + ",-4",  # line 6: not a count
        rows[5],
        rows[5],  # line 8: the same key twice
        *rows[6:],
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(ImportFailed) as err:
        Workspace.memory().import_counts(path, spec, sample=sample)
    text = str(err.value)
    assert "bad.csv:5: metric: 'kindness' is not a metric of the spec" in text
    assert "bad.csv:6: count: '-4' is not a count" in text
    assert "bad.csv:8: judge_level: the same (model, region, metric, judge_level) as line 7" in text


def test_metrics_must_count_the_same_responses_and_the_sample_fit_in(files, tmp_path):
    spec, counts, sample = files
    df = pl.read_csv(counts, infer_schema=False)
    short = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("1")).otherwise("count").alias("count")
    )
    path = tmp_path / "short.csv"
    short.write_csv(path)
    with pytest.raises(ImportFailed, match="the metrics count different numbers of responses"):
        Workspace.memory().import_counts(path, spec, sample=sample)
    # a sample with more responses of a stratum than the counts hold is refused, nothing kept
    one = counts_of(read_lake(spec.parent).group_by("model", "region").head(1))
    path = tmp_path / "one.csv"
    one.write_csv(path)
    ws = Workspace.memory()
    with pytest.raises(ImportFailed, match="the sample holds .* the counts only "):
        ws.import_counts(path, spec, sample=sample)
    assert ws.eval_sets() == []


def test_a_workspace_in_a_missing_folder_is_refused(files, tmp_path, capsys):
    """As `changeover import` does: a typo in the folder makes no tree of folders."""
    spec, counts, sample = files
    path = tmp_path / "no" / "such" / "ws.changeover"
    argv = ["import-counts", str(path), str(counts), "--spec", str(spec), "--sample", str(sample)]
    assert main(argv) == 1
    assert "no folder" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
