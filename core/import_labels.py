"""Import of human labels for responses already in the workspace (`changeover import-labels`):
parse, check, write, all or nothing, like a responses import (core/importer.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from changeover.core.import_check import Columns
from changeover.core.import_held import held_labels
from changeover.core.import_read import (
    BAD,
    CHUNK_ROWS,
    LINE,
    ImportFailed,
    Problem,
    Sink,
    all_rows,
    as_text,
    format_of,
    open_chunks,
    scan_bytes,
    show,
    trimmed,
)
from changeover.core.import_report import ImportReport
from changeover.core.store import Store, now
from changeover.core.types import ChangeoverError, EvalSet

LABEL_COLS = ("item_id", "model", "metric", "rater", "value")


def _pick_eval_set(store: Store, name: str | None) -> EvalSet:
    if name is not None:
        return store.eval_set(name)
    sets = store.eval_sets()
    if not sets:
        raise ChangeoverError(
            f"{store.path or 'workspace'}: no eval sets yet; import responses first"
        )
    return sets[0]


def _iso(value: str) -> str | None:
    """An ISO 8601 time as a UTC timestamp like the store's own, or None if it is not one."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _label_chunk(
    df: pl.DataFrame, cols: Columns, sink: Sink, skip: set[str], times: dict[str, str | None]
) -> pl.DataFrame:
    es = cols.es
    df = as_text(df, sink)
    absent = [c for c in (*LABEL_COLS, "created_at") if c not in df.columns]
    df = df.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in absent])
    df = df.with_columns(trimmed([*LABEL_COLS, "created_at"]))
    for c in LABEL_COLS:
        if c not in skip:
            sink.rows(df.filter(pl.col(c).is_null()).select(LINE), c, lambda r: "empty")
    names = [m.name for m in es.metrics]
    metric = pl.col("metric")
    sink.rows(
        df.filter(metric.is_not_null() & (metric != BAD) & ~metric.is_in(names)).select(
            LINE, "metric"
        ),
        "metric",
        lambda r: f"{show(r['metric'])} is not a metric of {es.name!r} ({', '.join(names)})",
    )
    level = pl.Series("level", [None] * df.height, dtype=pl.Int64)
    for m in es.metrics:
        level = df.select(
            pl.when(metric == m.name)
            .then(cols.levels(df["value"], m))
            .otherwise(level)
            .alias("level")
        ).to_series()
    df = df.with_columns(level)
    sink.rows(
        df.filter(
            metric.is_in(names)
            & pl.col("value").is_not_null()
            & (pl.col("value") != BAD)
            & pl.col("level").is_null()
        ).select(LINE, "metric", "value"),
        "value",
        lambda r: (
            f"{show(r['value'])} is not a level of {r['metric']} "
            f"({', '.join(es.metric(r['metric']).levels)})"
        ),
    )
    for v in df["created_at"].drop_nulls().unique().to_list():
        if v not in times:
            times[v] = _iso(v)
    df = df.with_columns(
        pl.col("created_at")
        .replace_strict(times, default=None, return_dtype=pl.String)
        .alias("stamp")
        if times
        else pl.lit(None, dtype=pl.String).alias("stamp")
    )
    sink.rows(
        df.filter(pl.col("created_at").is_not_null() & pl.col("stamp").is_null()).select(
            LINE, "created_at"
        ),
        "created_at",
        lambda r: f"{show(r['created_at'])} is not an ISO 8601 time (e.g. 2026-11-02T14:05:00Z)",
    )
    return df.select(LINE, "item_id", "model", "metric", "rater", "level", "stamp")


def import_labels(
    store: Store,
    path: str | Path,
    eval_set: str | None = None,
    fmt: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Human labels (item_id, model, metric, rater, value [, created_at]) for responses already
    in the workspace; all or nothing, and a file imported twice adds nothing."""
    path = Path(path)
    fmt = format_of(path, fmt)
    es = _pick_eval_set(store, eval_set)
    sink = Sink(str(path), "row" if fmt == "parquet" else "line")
    if not path.is_file():
        raise ImportFailed([Problem(str(path), 0, "", "no such file")])
    if fmt != "parquet":
        scan_bytes(path, sink)
    header, chunks = open_chunks(path, fmt, sink, chunk_rows)
    skip: set[str] = set()
    for c in LABEL_COLS:
        if header is not None and c not in header:
            sink.add(1 if fmt == "csv" else 0, c, "missing column")
            skip.add(c)
    cols, times = Columns(es), dict[str, str | None]()
    parts = [_label_chunk(df, cols, sink, skip, times) for df in chunks]
    k = all_rows(parts, sink).filter(
        pl.all_horizontal(pl.col("item_id", "model", "metric", "rater", "level").is_not_null())
    )
    _check_labels(store, es, k, sink)
    sink.raise_if_any()
    k = k.unique(["item_id", "model", "metric", "rater"], keep="first", maintain_order=True)
    stamp = now()
    with store.importing(es.id) as batch:
        batch.add_ratings(
            zip(
                *(k[c].to_list() for c in ("item_id", "model", "metric", "rater", "level")),
                k["stamp"].fill_null(stamp).to_list(),
            )
        )
    return ImportReport(
        eval_set=es,
        rows=sum(p.height for p in parts),
        added=dict(batch.added),
        missing_judgments={},
        file=path.name,
        labels=k.height,
        kind="labels",
    )


def _check_labels(store: Store, es: EvalSet, k: pl.DataFrame, sink: Sink) -> None:
    u, key = sink.unit, ["item_id", "model", "metric", "rater"]
    k = k.with_columns(
        pl.col(LINE).first().over(key).alias("_first"),
        pl.col("level").first().over(key).alias("_flevel"),
    )
    label = lambda r, c: es.metric(r["metric"]).levels[r[c]]  # noqa: E731
    sink.rows(
        k.filter(pl.col("level") != pl.col("_flevel")),
        "value",
        lambda r: (
            f"{label(r, 'level')} here but {label(r, '_flevel')} on {u} {r['_first']} "
            f"(item {r['item_id']}, model {r['model']}, {r['metric']}, rater {r['rater']})"
        ),
    )
    found = store.response_keys(es.id, k["item_id"].unique().to_list())
    have = pl.DataFrame(
        list(found), orient="row", schema={"item_id": pl.String, "model": pl.String}
    )
    sink.rows(
        k.join(have, on=["item_id", "model"], how="anti").sort(LINE),
        "item_id",
        lambda r: (
            f"no response of model {r['model']!r} to item {r['item_id']!r} in eval set {es.name!r}"
        ),
    )
    held = held_labels(store, es.id).filter("active").select(*key, held=pl.col("level"))
    if held.height:
        clash = k.join(held, on=key, how="inner").filter(pl.col("held") != pl.col("level"))
        sink.rows(
            clash.sort(LINE),
            "value",
            lambda r: (
                f"rater {r['rater']} already has the label {label(r, 'held')} for this response's "
                f"{r['metric']} in the workspace, not {label(r, 'level')}; retract it in the app first"
            ),
        )
