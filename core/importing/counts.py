"""Counts from anywhere: judge-level counts made by another engine (a warehouse's GROUP BY,
Spark, DuckDB) plus a sample file in the responses-file format (`changeover import-counts`).

The counts file has one row per (model, region, metric, judge_level) with its `count`;
`judge_level` is the judge's value as the data holds it (a level label, a key or a judge_map
entry), mapped through the spec like any verdict, so the SQL needs no mapping. Every row is
checked and reported by line; per (model, region) every metric must count the same responses
(each response has a verdict, perhaps a missing one, for every metric).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import polars as pl

from changeover.core.importing.check import Columns
from changeover.core.importing.lake import (
    LakeReport,
    counts_fingerprint,
    held_source,
    period_named,
    write_sampled,
)
from changeover.core.importing.lake_scan import not_a_level
from changeover.core.importing.read import (
    LINE,
    FileSource,
    ImportFailed,
    Problem,
    Sink,
    format_of,
    listing,
    open_chunks,
    show,
)
from changeover.core.importing.spec import load_spec
from changeover.core.importing.values import as_text, trimmed
from changeover.core.store import Store, now
from changeover.core.store.rows import EvalSetSource, JudgeLevelCount
from changeover.core.types import ChangeoverError, EvalSet

COUNT_COLS = ("model", "region", "metric", "judge_level", "count")


def read_counts(path: Path, es: EvalSet, fmt: str | None = None) -> list[JudgeLevelCount]:
    """The counts of a file, checked row by row (all problems with their line), summed per
    (metric, model, region, level)."""
    fmt = format_of(path, fmt)
    sink = Sink(str(path), "row" if fmt == "parquet" else "line")
    if not path.is_file():
        raise ImportFailed([Problem(str(path), 0, "", "no such file")])
    header, chunks = open_chunks(path, fmt, sink, 100_000)
    for c in COUNT_COLS:
        if header is not None and c not in header:
            sink.add(1 if fmt == "csv" else 0, c, "missing column")
    sink.raise_if_any()
    parts = [as_text(df, sink) for df in chunks]
    df = pl.concat(parts, how="diagonal") if parts else pl.DataFrame()
    absent = [c for c in COUNT_COLS if c not in df.columns]
    df = df.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in absent)
    if df.height == 0:
        sink.add(0, "", "no rows")
        sink.raise_if_any()
    df = df.with_columns(trimmed(["model", "region", "metric"]))
    for c in ("model", "region", "metric"):
        sink.rows(df.filter(pl.col(c).is_null()).select(LINE), c, lambda r: "empty")
    regions, names = list(es.region_names), [m.name for m in es.metrics]
    sink.rows(
        df.filter(pl.col("region").is_not_null() & ~pl.col("region").is_in(regions)),
        "region",
        lambda r: f"{show(r['region'])} is not a region of the spec ({listing(regions)})",
    )
    sink.rows(
        df.filter(pl.col("metric").is_not_null() & ~pl.col("metric").is_in(names)),
        "metric",
        lambda r: f"{show(r['metric'])} is not a metric of the spec ({', '.join(names)})",
    )
    n = pl.col("count").str.strip_chars().cast(pl.Int64, strict=False)
    df = df.with_columns(n.alias("n"))
    sink.rows(
        df.filter(pl.col("n").is_null() | (pl.col("n") < 0)),
        "count",
        lambda r: f"{show(r['count'])} is not a count (a whole number, 0 or more)",
    )
    cols, level = Columns(es), pl.Series("level", [None] * df.height, dtype=pl.Int64)
    for m in es.metrics:
        mapped = cols.levels(df["judge_level"], m)
        level = pl.select(
            pl.when(df["metric"] == m.name).then(mapped).otherwise(level).alias("level")
        ).to_series()
    df = df.with_columns(level)
    for m in es.metrics:
        if m.unmapped != "error":
            continue
        mine = df.filter(pl.col("metric") == m.name)
        sink.rows(
            mine.filter(pl.col("judge_level").is_not_null() & pl.col("level").is_null()),
            "judge_level",
            partial(not_a_level, column="judge_level", metric=m),
        )
        sink.rows(
            mine.filter(pl.col("judge_level").is_null()),
            "judge_level",
            lambda r: 'empty judge value (set unmapped = "missing" to count it as missing)',
        )
    key = ["model", "region", "metric", "judge_level"]
    sink.rows(
        df.with_columns(pl.col(LINE).first().over(key).alias("_first")).filter(
            pl.col(LINE) != pl.col("_first")
        ),
        "judge_level",
        lambda r: f"the same (model, region, metric, judge_level) as {sink.unit} {r['_first']}",
    )
    sink.raise_if_any()
    summed = (
        df.group_by("metric", "model", "region", "level")
        .agg(pl.col("n").sum())
        .sort("metric", "model", "region", "level", nulls_last=True)
    )
    counts = [JudgeLevelCount(*row) for row in summed.iter_rows()]
    _check_cells(counts, es, str(path))
    return counts


def _check_cells(counts: list[JudgeLevelCount], es: EvalSet, file: str) -> None:
    """Every metric counts the same responses per (model, region); the incumbent is there."""
    per: dict[tuple[str, str], dict[str, int]] = {}
    for c in counts:
        cell = per.setdefault((c.model, c.region), {})
        cell[c.metric] = cell.get(c.metric, 0) + c.n
    problems = []
    for (model, region), by_metric in sorted(per.items()):
        totals = {m.name: by_metric.get(m.name, 0) for m in es.metrics}
        if len(set(totals.values())) > 1:
            shown = ", ".join(f"{k} {v:,}" for k, v in totals.items())
            problems.append(
                Problem(
                    file,
                    0,
                    "count",
                    f"{model} in {region}: the metrics count different numbers of responses "
                    f"({shown}); each response needs a verdict, or a missing one, for every metric",
                )
            )
    if es.incumbent not in {c.model for c in counts}:
        models = sorted({c.model for c in counts})
        problems.append(
            Problem(
                file,
                0,
                "model",
                f"the incumbent {es.incumbent!r} has no counts ({listing(models)})",
            )
        )
    if problems:
        raise ImportFailed(problems)


def import_counts(
    store: Store,
    counts_path: str | Path,
    spec: str | Path,
    *,
    sample: str | Path,
    period: str | None = None,
    fmt: str | None = None,
) -> LakeReport:
    """Counts made elsewhere and a sample of the responses they count (a responses file; labels
    in it are imported too); one transaction. The same counts again add the responses of
    another sample file (drawing more)."""
    counts_path, sample_path = Path(counts_path), Path(sample)
    es = period_named(load_spec(spec), period)
    counts = read_counts(counts_path, es, fmt)
    fingerprint = counts_fingerprint("counts", counts)
    held = held_source(store, es, fingerprint)
    rows = sum(c.n for c in counts if c.metric == es.metrics[0].name)
    source_file = FileSource(sample_path, None)
    stamp = now()
    files = (counts_path.name, sample_path.name)
    source = EvalSetSource(
        kind="counts",
        period=period,
        location=str(counts_path.resolve()),
        files=tuple(dict.fromkeys((*(held.files if held else ()), *files))),
        rows=rows,
        fingerprint=fingerprint,
        sample_per_cell=None,
        stratify=None,
        seed=None,
        engine="counts file",
        spec=str(Path(spec).resolve()),
        created_at=held.created_at if held else stamp,
        updated_at=stamp,
    )
    before = 0
    if held is not None:
        before = store.stats(store.eval_set(es.name).id).responses
    if not sample_path.is_file():
        raise ChangeoverError(f"{sample_path}: no such file")
    return write_sampled(store, es, str(spec), source_file, source, counts, before)
