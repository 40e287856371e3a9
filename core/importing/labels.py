"""Import of human labels for responses already in the workspace (`changeover import-labels`):
parse, check, write, all or nothing, like a responses import (core/importing/responses.py).

A label is imported as drawn at random given its cell and the judge's level (what the fit
assumes), or as open: its response chosen by a person (a triage in a spreadsheet), stored as
the app stores its own open labels and left out of the fit. `selection` says which: for the
whole file (`--open`) or per row (a `selection` column of `random` / `open`). A ratings export
(`changeover export --what ratings`) imports as it is: its `label` column is the value, its
`selection` column says how each label was chosen, and events not `active` (retracted labels,
retractions) are skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from changeover.core.importing.check import Columns
from changeover.core.importing.held import held_labels
from changeover.core.importing.read import (
    BAD,
    CHUNK_ROWS,
    LINE,
    ImportFailed,
    Problem,
    Sink,
    all_rows,
    format_of,
    open_chunks,
    scan_bytes,
    show,
)
from changeover.core.importing.report import ImportReport
from changeover.core.importing.values import as_text, trimmed
from changeover.core.store import Store, now
from changeover.core.types import (
    IMPORT,
    IMPORT_OPEN,
    OPEN,
    RANDOM,
    ChangeoverError,
    EvalSet,
)

LABEL_COLS = ("item_id", "model", "metric", "rater", "value")
OPTIONAL = ("created_at", "selection", "active")
VALUE_ALIAS = "label"  # the ratings export's name for the value
_TRUTH = {"true": True, "1": True, "false": False, "0": False}


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
    df: pl.DataFrame,
    cols: Columns,
    sink: Sink,
    skip: set[str],
    times: dict[str, str | None],
    selection: str,
) -> tuple[pl.DataFrame, int]:
    """The chunk's labels in force, checked, with the number of rows it had."""
    es = cols.es
    read = df.height
    df = as_text(df, sink)
    value = "value" if "value" in df.columns or VALUE_ALIAS not in df.columns else VALUE_ALIAS
    df = df.rename({value: "value"}) if value != "value" else df
    absent = [c for c in (*LABEL_COLS, *OPTIONAL) if c not in df.columns]
    df = df.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in absent])
    df = df.with_columns(trimmed([*LABEL_COLS, *OPTIONAL]))
    df = _active_only(df, sink)
    for c in LABEL_COLS:
        if c not in skip:
            name = value if c == "value" else c
            sink.rows(df.filter(pl.col(c).is_null()).select(LINE), name, lambda r: "empty")
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
        value,
        lambda r: (
            f"{show(r['value'])} is not a level of {r['metric']} "
            f"({', '.join(es.metric(r['metric']).levels)})"
        ),
    )
    df = _selection(df, sink, selection)
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
    return df.select(LINE, "item_id", "model", "metric", "rater", "level", "stamp", "open"), read


def _active_only(df: pl.DataFrame, sink: Sink) -> pl.DataFrame:
    """The rows in force: an export's events that are not `active` (a retracted label, or the
    retraction itself) are left out; a file without the column is all in force."""
    active = pl.col("active").str.to_lowercase()
    sink.rows(
        df.filter(pl.col("active").is_not_null() & ~active.is_in(list(_TRUTH))).select(
            LINE, "active"
        ),
        "active",
        lambda r: f"{show(r['active'])} is not true or false",
    )
    in_force = active.replace_strict(_TRUTH, default=True, return_dtype=pl.Boolean)
    return df.filter(in_force.fill_null(True))


def _selection(df: pl.DataFrame, sink: Sink, selection: str) -> pl.DataFrame:
    """Each row's selection as a boolean column "open": the row's own (`random` / `open`), or
    the whole file's (`--open`) where it has none; a row that says random in a file imported
    with --open is refused rather than guessed."""
    said = pl.col("selection").str.to_lowercase()
    sink.rows(
        df.filter(said.is_not_null() & ~said.is_in([RANDOM, OPEN])).select(LINE, "selection"),
        "selection",
        lambda r: f"{show(r['selection'])} is not {RANDOM} or {OPEN}",
    )
    if selection == OPEN:
        sink.rows(
            df.filter(said == RANDOM).select(LINE),
            "selection",
            lambda r: f"{RANDOM} here, but --open imports every label of the file as {OPEN}",
        )
    return df.with_columns(said.fill_null(selection).eq(OPEN).alias("open"))


def import_labels(
    store: Store,
    path: str | Path,
    eval_set: str | None = None,
    fmt: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    selection: str = RANDOM,
) -> ImportReport:
    """Human labels (item_id, model, metric, rater, value [, created_at, selection]) for
    responses already in the workspace; all or nothing, and a file imported twice adds nothing.
    `selection` is how the rows without a `selection` of their own were chosen: RANDOM (counted
    in the fit) or OPEN (chosen by a person: stored as open, left out of the fit)."""
    if selection not in (RANDOM, OPEN):
        raise ValueError(f"selection must be {RANDOM!r} or {OPEN!r}, not {selection!r}")
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
            if c == "value" and VALUE_ALIAS in header:
                continue
            sink.add(1 if fmt == "csv" else 0, c, "missing column")
            skip.add(c)
    cols, times = Columns(es), dict[str, str | None]()
    read = [_label_chunk(df, cols, sink, skip, times, selection) for df in chunks]
    parts = [df for df, _ in read]
    k = all_rows(parts, sink).filter(
        pl.all_horizontal(pl.col("item_id", "model", "metric", "rater", "level").is_not_null())
    )
    _check_labels(store, es, k, sink)
    sink.raise_if_any()
    k = k.unique(["item_id", "model", "metric", "rater"], keep="first", maintain_order=True)
    k = k.with_columns(pl.col("stamp").fill_null(now()))
    with store.importing(es.id) as batch:
        for is_open, source in ((False, IMPORT), (True, IMPORT_OPEN)):
            part = k.filter(pl.col("open") == is_open)
            batch.add_ratings(
                part.select("item_id", "model", "metric", "rater", "level", "stamp").iter_rows(),
                source=source,
            )
    return ImportReport(
        eval_set=es,
        rows=sum(n for _, n in read),
        added=dict(batch.added),
        missing_judgments={},
        file=path.name,
        labels=k.height,
        open_labels=int(k["open"].sum()),
        not_in_force=sum(n for _, n in read) - sum(p.height for p in parts),
        kind="labels",
    )


def _check_labels(store: Store, es: EvalSet, k: pl.DataFrame, sink: Sink) -> None:
    u, key = sink.unit, ["item_id", "model", "metric", "rater"]
    k = k.with_columns(
        pl.col(LINE).first().over(key).alias("_first"),
        pl.col("level").first().over(key).alias("_flevel"),
        pl.col("open").first().over(key).alias("_fopen"),
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
    how = lambda is_open: OPEN if is_open else RANDOM  # noqa: E731
    sink.rows(
        k.filter((pl.col("level") == pl.col("_flevel")) & (pl.col("open") != pl.col("_fopen"))),
        "selection",
        lambda r: (
            f"{how(r['open'])} here but {how(r['_fopen'])} on {u} {r['_first']} "
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
    held = held_labels(store, es.id).filter("active")
    held = held.select(*key, held=pl.col("level"), held_open=pl.col("open"))
    if held.height:
        both = k.join(held, on=key, how="inner")
        clash = both.filter(pl.col("held") != pl.col("level"))
        sink.rows(
            clash.sort(LINE),
            "value",
            lambda r: (
                f"rater {r['rater']} already has the label {label(r, 'held')} for this response's "
                f"{r['metric']} in the workspace, not {label(r, 'level')}; retract it in the app first"
            ),
        )
        sink.rows(
            both.filter(
                (pl.col("held") == pl.col("level")) & (pl.col("held_open") != pl.col("open"))
            ).sort(LINE),
            "selection",
            lambda r: (
                f"rater {r['rater']} already has this label for this response's {r['metric']} "
                f"in the workspace as {how(r['held_open'])}, not {how(r['open'])}; give the row "
                f"the selection {how(r['held_open'])}"
                + (" (or import the file with --open)" if r["held_open"] else "")
                + ", or leave it out"
            ),
        )
