"""Import: parse, check, write. Responses, judge verdicts and human labels from CSV, JSONL or Parquet.

Every row is checked before anything is written; all problems are collected with their line
(CSV: the physical line where the record starts, JSONL: the physical line, Parquet: the row)
and nothing is stored when there is any. Files are read in chunks, twice (check, then write),
so memory stays bounded; the write is one transaction (`Store.importing_eval_set`): the eval
set and its rows are saved together or not at all. Reading is in core/import_read.py, the
spec in core/import_spec.py.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from changeover.core.import_read import (
    BAD,
    FORMATS,
    LINE,
    MAX_SHOWN,
    ImportFailed,
    Problem,
    Sink,
    as_text,
    format_of,
    listing,
    open_chunks,
    scan_bytes,
    show,
    trimmed,
)
from changeover.core.import_spec import load_spec
from changeover.core.store import Store, now
from changeover.core.types import ChangeoverError, EvalSet, Metric

__all__ = [
    "FORMATS",
    "MAX_SHOWN",
    "ImportFailed",
    "ImportReport",
    "Problem",
    "import_file",
    "import_labels",
    "load_spec",
]

CHUNK_ROWS = 100_000


@dataclass
class ImportReport:
    """What an import did: `added` counts new rows per table (models, items, responses,
    judgments, ratings); re-importing the same file adds 0 of each."""

    eval_set: EvalSet
    rows: int
    added: dict[str, int]
    missing_judgments: dict[
        str, int
    ]  # metric -> unmappable (or empty) judge values stored as missing
    file: str = ""
    items: int = 0
    responses: int = 0  # distinct (item, model) in the file
    models: tuple[str, ...] = ()
    labels: int = 0  # human labels in the file
    kept_labels: int = (
        0  # file labels not added: the workspace already holds that rater's own label
    )
    kind: str = "responses"  # or "labels" (import_labels)

    def summary(self) -> str:
        """A short human text: what was added, what was already there, what became missing."""
        a = self.added
        if self.kind == "responses":
            text = (
                f"imported {a.get('responses', 0):,} responses "
                f"({a.get('items', 0):,} items, {a.get('models', 0)} models), "
                f"{a.get('judgments', 0):,} judgments, {a.get('ratings', 0):,} labels "
                f"from {self.rows:,} rows of {self.file or 'the file'} into "
                f"{self.eval_set.name!r}"
            )
            held = self.responses - a.get("responses", 0)
            if self.rows and not any(a.get(k, 0) for k in ("responses", "judgments", "ratings")):
                text = (
                    f"nothing new: the {self.rows:,} rows of {self.file or 'the file'} are "
                    f"already in {self.eval_set.name!r}"
                )
            elif held > 0:  # an import adds; it never rewrites a stored response or verdict
                text += f"; {held:,} responses already there were kept as stored"
        else:
            text = (
                f"imported {a.get('ratings', 0):,} labels from {self.rows:,} rows of "
                f"{self.file or 'the file'} into {self.eval_set.name!r}"
            )
            already = self.labels - a.get("ratings", 0)
            if already > 0:
                text += f" ({already:,} already in the workspace)"
        if self.kept_labels:
            text += (
                f"; {self.kept_labels:,} labels already given by the same rater in the "
                "workspace were left as they are"
            )
        missing = {k: v for k, v in self.missing_judgments.items() if v}
        if missing:
            total = sum(missing.values())
            per = ", ".join(f"{k}: {v:,}" for k, v in missing.items())
            text += f"; {total:,} judge values unmappable -> missing ({per})"
        return text


# ---- import_file -------------------------------------------------------------------------

TEXT_COLS = ("item_id", "region", "question", "model", "response")


class _Columns:
    """The columns a responses file may have under a spec, and how their values map to levels."""

    def __init__(self, es: EvalSet):
        self.es = es
        self.judge = {m.name: f"judge_{m.name}" for m in es.metrics}
        self.score = {m.name: f"judge_{m.name}_score" for m in es.metrics}
        self.rationale = {m.name: f"judge_{m.name}_rationale" for m in es.metrics}
        self.human = {m.name: f"human_{m.name}" for m in es.metrics}
        self.required = [*TEXT_COLS, *self.judge.values()]
        self.known = {
            *self.required,
            "reference",
            "rater",
            *self.score.values(),
            *self.rationale.values(),
            *self.human.values(),
        }
        self._cache: dict[str, dict[str, int | None]] = {m.name: {} for m in es.metrics}

    def unknown(self, names: list[str]) -> list[str]:
        return [c for c in names if c.startswith(("judge_", "human_")) and c not in self.known]

    def levels(self, s: pl.Series, metric: Metric) -> pl.Series:
        """Level index per value (null where empty or unmappable); mapping cached per value."""
        cache = self._cache[metric.name]
        for v in s.drop_nulls().unique().to_list():
            if v not in cache:
                cache[v] = None if v == BAD else _level_of(metric, v)
        return (
            s.replace_strict(cache, default=None, return_dtype=pl.Int64)
            if cache
            else pl.Series(s.name, [None] * len(s), dtype=pl.Int64)
        )

    def prepare(self, df: pl.DataFrame, sink: Sink) -> pl.DataFrame:
        """Text columns, absent ones as null, key columns trimmed."""
        df = as_text(df, sink)
        absent = [c for c in self.known if c not in df.columns]
        if absent:
            df = df.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in absent])
        return df.with_columns(trimmed(["item_id", "region", "model", "rater"]))


def _level_of(metric: Metric, value: str) -> int | None:
    level = metric.level_of(value)
    if level is None and re.fullmatch(r"\s*-?\d+\.0*\s*", value):  # "3.0" in a CSV means 3
        level = metric.level_of(value.strip().split(".")[0])
    if level is None and len(value.strip()) == 1:  # a key typed in the other case: "Y" for "y"
        folded = [k.casefold() for k in metric.keys]
        if folded.count(value.strip().casefold()) == 1:
            level = folded.index(value.strip().casefold())
    return level


def _header_problems(cols: _Columns, names: list[str], sink: Sink, line: int) -> set[str]:
    """Missing and unknown columns; returns the required columns that are missing."""
    missing = [c for c in cols.required if c not in names]
    for c in missing:
        sink.add(line, c, "missing column")
    for c in cols.unknown(names):
        sink.add(
            line,
            c,
            f"no metric {c.split('_', 1)[1]!r} in the spec "
            f"(metrics: {', '.join(m.name for m in cols.es.metrics)})",
        )
    if "rater" not in names and any(c in names for c in cols.human.values()):
        sink.add(line, "rater", "missing column: human_ labels need the rater who gave them")
    return set(missing)


def _hash_of(col: str) -> pl.Expr:
    """Hash of a text column for comparisons; null where the value is empty or already reported."""
    c = pl.col(col)
    return pl.when(c.is_null() | (c == BAD)).then(None).otherwise(c.hash())


def _check_chunk(df: pl.DataFrame, cols: _Columns, sink: Sink, skip: set[str]) -> pl.DataFrame:
    """Row checks of one chunk; returns the keys the whole-file checks need."""
    es = cols.es
    for c in TEXT_COLS:
        if c in skip:
            continue
        empty = pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")
        sink.rows(
            df.filter(empty).select(LINE),
            c,
            lambda r, c=c: f"empty {c}" if c == "response" else "empty",
        )
    regions = list(es.region_names)
    sink.rows(
        df.filter(
            pl.col("region").is_not_null()
            & (pl.col("region") != BAD)
            & ~pl.col("region").is_in(regions)
        ).select(LINE, "region"),
        "region",
        lambda r: f"{show(r['region'])} is not a region of the spec ({listing(regions)})",
    )
    keys = [
        pl.col(LINE),
        pl.col("item_id"),
        pl.col("model"),
        pl.col("rater"),
        pl.col("region"),
        _hash_of("question").alias("qh"),
        _hash_of("response").alias("rh"),
    ]
    judged = []
    for m in es.metrics:
        jc, sc = cols.judge[m.name], cols.score[m.name]
        judged += [jc, sc, cols.rationale[m.name]]
        level = cols.levels(df[jc], m)
        raw = pl.col(jc)
        unknown = raw.is_not_null() & (raw != BAD) & level.is_null()
        names = ", ".join(m.levels)
        if m.unmapped == "error" and jc not in skip:
            sink.rows(
                df.filter(unknown).select(LINE, jc),
                jc,
                lambda r, jc=jc, m=m, names=names: (
                    f"{show(r[jc])} is not a level of {m.name} ({names}); map it in [metrics.judge_map] "
                    'or set unmapped = "missing"'
                ),
            )
            sink.rows(
                df.filter(raw.is_null()).select(LINE),
                jc,
                lambda r: 'empty judge value (set unmapped = "missing" to store it as missing)',
            )
        keys.append((level.is_null() & (raw != BAD).fill_null(True)).alias(f"__miss_{m.name}"))
        score = pl.col(sc)
        sink.rows(
            df.filter(
                score.is_not_null()
                & (score != BAD)
                & score.cast(pl.Float64, strict=False).is_null()
            ).select(LINE, sc),
            sc,
            lambda r, sc=sc: f"{show(r[sc])} is not a number",
        )
        hc = cols.human[m.name]
        hlevel = cols.levels(df[hc], m)
        sink.rows(
            df.filter(pl.col(hc).is_not_null() & (pl.col(hc) != BAD) & hlevel.is_null()).select(
                LINE, hc
            ),
            hc,
            lambda r, hc=hc, m=m, names=names: (
                f"{show(r[hc])} is not a level of {m.name} ({names})"
            ),
        )
    labelled = pl.any_horizontal([pl.col(h).is_not_null() for h in cols.human.values()])
    if "rater" not in skip:
        sink.rows(
            df.filter(labelled & pl.col("rater").is_null()).select(LINE),
            "rater",
            lambda r: "empty, but the row has human_ labels",
        )
    keys.append(pl.struct(judged).hash().alias("jh"))
    return df.select(keys)


def _check_file(keys: pl.DataFrame, cols: _Columns, sink: Sink, held: pl.DataFrame | None) -> None:
    """Checks across rows: duplicates, rows of one response that disagree, items that disagree.

    Window functions run only on the rows concerned (responses with several rows, items whose
    rows differ), so a clean million-row file costs two hash passes.
    """
    u = sink.unit
    im, imr = ["item_id", "model"], ["item_id", "model", "rater"]
    k = keys.filter(pl.col("item_id").is_not_null() & pl.col("model").is_not_null())
    multi = k.filter(pl.struct(im).is_duplicated())
    if multi.height:
        m = multi.with_columns(
            pl.int_range(pl.len()).over(imr).alias("_pk"),
            pl.col(LINE).first().over(imr).alias("_fk"),
            pl.int_range(pl.len()).over(im).alias("_pim"),
            pl.col(LINE).first().over(im).alias("_fim"),
            pl.col("rater").first().over(im).is_null().alias("_frnull"),
            (pl.col("rh") != pl.col("rh").first().over(im)).alias("_rdiff"),
            (pl.col("jh") != pl.col("jh").first().over(im)).alias("_jdiff"),
        )
        dup_key = pl.col("_pk") > 0
        dup_im = ~dup_key & (pl.col("_pim") > 0) & (pl.col("rater").is_null() | pl.col("_frnull"))

        def who(r: dict) -> str:
            rater = f", rater {r['rater']}" if r["rater"] else ""
            return f"item {r['item_id']}, model {r['model']}{rater}"

        sink.rows(m.filter(dup_key), "item_id", lambda r: f"duplicate of {u} {r['_fk']} ({who(r)})")
        sink.rows(
            m.filter(dup_im),
            "item_id",
            lambda r: (
                f"duplicate of {u} {r['_fim']} (item {r['item_id']}, model {r['model']}; rows of one "
                "response with several raters need a rater on each)"
            ),
        )
        same = ~dup_key & ~dup_im & (pl.col("_pim") > 0)
        sink.rows(
            m.filter(same & pl.col("_rdiff")),
            "response",
            lambda r: (
                f"differs from {u} {r['_fim']}, another row of this response (rows of one response may "
                "differ only in rater and human_ labels)"
            ),
        )
        sink.rows(
            m.filter(same & pl.col("_jdiff")),
            "judge_*",
            lambda r: f"judge values differ from {u} {r['_fim']}, another row of this response",
        )
    k = k.with_columns(
        pl.when(pl.col("region") == BAD).then(None).otherwise(pl.col("region")).alias("region")
    )
    odd = (
        k.group_by("item_id")
        .agg(
            pl.col("qh").drop_nulls().n_unique().alias("nq"),
            pl.col("region").drop_nulls().n_unique().alias("nr"),
        )
        .filter((pl.col("nq") > 1) | (pl.col("nr") > 1))
        .select("item_id")
    )
    if odd.height:
        it = (
            k.join(odd, on="item_id", how="semi")
            .sort(LINE)
            .with_columns(
                pl.col(LINE).first().over("item_id").alias("_fil"),
                (pl.col("qh") != pl.col("qh").drop_nulls().first().over("item_id")).alias("_qdiff"),
                pl.col("region").drop_nulls().first().over("item_id").alias("_freg"),
            )
        )
        sink.rows(
            it.filter(pl.col("_qdiff")),
            "question",
            lambda r: f"item {r['item_id']} has a different question on {u} {r['_fil']}",
        )
        sink.rows(
            it.filter(
                pl.col("region").is_in(list(cols.es.region_names))
                & pl.col("_freg").is_not_null()
                & (pl.col("region") != pl.col("_freg"))
            ),
            "region",
            lambda r: f"item {r['item_id']} is in {show(r['_freg'])} on {u} {r['_fil']}",
        )
    if held is not None and held.height:
        first = (
            k.unique("item_id", keep="first", maintain_order=True)
            .join(held, on="item_id", how="inner")
            .sort(LINE)
        )
        sink.rows(
            first.filter(pl.col("qh") != pl.col("qh_held")),
            "question",
            lambda r: f"item {r['item_id']} has a different question in the workspace",
        )
        sink.rows(
            first.filter(
                pl.col("region").is_not_null() & (pl.col("region") != pl.col("region_held"))
            ),
            "region",
            lambda r: f"item {r['item_id']} is in {show(r['region_held'])} in the workspace",
        )


def _resolve_spec(spec: str | Path | EvalSet) -> tuple[EvalSet, str]:
    if isinstance(spec, EvalSet):
        return spec, "spec"
    return load_spec(spec), str(spec)


def _held_eval_set(store: Store, name: str) -> EvalSet | None:
    return next((e for e in store.eval_sets() if e.name == name), None)


def import_file(
    store: Store,
    path: str | Path,
    spec: str | Path | EvalSet,
    fmt: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Check every row of a responses file, then write it all in one transaction (or nothing)."""
    path = Path(path)
    es, spec_file = _resolve_spec(spec)
    fmt = format_of(path, fmt)
    sink = Sink(str(path), "row" if fmt == "parquet" else "line")
    if not path.is_file():
        raise ImportFailed([Problem(str(path), 0, "", "no such file")])
    held = _held_eval_set(store, es.name)
    if held is not None:
        for m in es.metrics:
            old = next((x for x in held.metrics if x.name == m.name), None)
            if old is not None and old.levels != m.levels:
                sink.add(
                    0,
                    f"metrics.{m.name}.levels",
                    f"the workspace holds {m.name} with levels "
                    f"{', '.join(old.levels)}, not {', '.join(m.levels)}",
                    file=spec_file,
                )
    cols = _Columns(es)
    if fmt != "parquet":
        scan_bytes(path, sink)
    header, chunks = open_chunks(path, fmt, sink, chunk_rows)
    skip = (
        set() if header is None else _header_problems(cols, header, sink, 1 if fmt == "csv" else 0)
    )
    seen: set[str] = set(header or ())
    parts = []
    for df in chunks:
        seen.update(df.columns)
        parts.append(_check_chunk(cols.prepare(df, sink), cols, sink, skip))
    if header is None:
        for c in cols.unknown(sorted(seen - {LINE})):
            sink.add(0, c, f"no metric {c.split('_', 1)[1]!r} in the spec")
    keys = pl.concat(parts) if parts else None
    if keys is None or keys.height == 0:
        if not sink.total:
            sink.add(0, "", "no rows")
        sink.raise_if_any()
    held_items = None
    if held is not None:
        rows = store.item_index(held.id)
        if rows:
            held_items = pl.DataFrame(
                rows,
                schema={"item_id": pl.String, "region_held": pl.String, "question": pl.String},
                orient="row",
            ).select("item_id", "region_held", pl.col("question").hash().alias("qh_held"))
    _check_file(keys, cols, sink, held_items)
    models = keys["model"].drop_nulls().unique(maintain_order=True).to_list()
    known_models = models + (store.models(held.id) if held is not None else [])
    if es.incumbent not in known_models:
        sink.add(
            0,
            "model",
            f"the incumbent {es.incumbent!r} ({spec_file}) has no responses "
            f"(models: {listing(models)})",
        )
    sink.raise_if_any()

    first = keys.filter(pl.struct("item_id", "model").is_first_distinct())
    missing = {m.name: int(first[f"__miss_{m.name}"].sum()) for m in es.metrics}
    items, responses = keys["item_id"].n_unique(), first.height
    n_rows = keys.height
    del keys, parts, first
    added, labels, kept = _write(store, path, fmt, es, cols, held, chunk_rows)
    saved = store.eval_set(es.name)
    return ImportReport(
        eval_set=saved,
        rows=n_rows,
        added=added,
        missing_judgments=missing,
        file=path.name,
        items=items,
        responses=responses,
        models=tuple(models),
        labels=labels,
        kept_labels=kept,
    )


def _write(
    store: Store,
    path: Path,
    fmt: str,
    es: EvalSet,
    cols: _Columns,
    held: EvalSet | None,
    chunk_rows: int,
) -> tuple[dict[str, int], int, int]:
    """Second pass: stage every chunk, then save the eval set and merge in one transaction."""
    quiet = Sink(str(path))
    given = same = None
    if held is not None:
        events = store.rating_keys(held.id)
        if events:
            ev = pl.DataFrame(
                events,
                orient="row",
                schema={
                    "item_id": pl.String,
                    "model": pl.String,
                    "metric": pl.String,
                    "rater": pl.String,
                    "level": pl.Int64,
                    "active": pl.Boolean,
                },
            )
            given = ev.select("item_id", "model", "metric", "rater").unique()
            same = ev.filter("active").drop("active").unique()
    stamp = now()
    labels = kept = 0
    with store.importing_eval_set(es) as batch:
        _, chunks = open_chunks(path, fmt, quiet, chunk_rows, checking=False)
        for raw in chunks:
            df = cols.prepare(raw, quiet)
            first = df.filter(pl.struct("item_id", "model").is_first_distinct())
            batch.add_responses(
                zip(
                    *(
                        first[c].to_list()
                        for c in ("item_id", "region", "question", "reference", "model", "response")
                    )
                )
            )
            ids, models = first["item_id"].to_list(), first["model"].to_list()
            for m in es.metrics:
                jc = cols.judge[m.name]
                level = cols.levels(first[jc], m).to_list()
                score = first[cols.score[m.name]].cast(pl.Float64, strict=False).to_list()
                batch.add_judgments(
                    zip(
                        ids,
                        models,
                        itertools.repeat(m.name),
                        itertools.repeat(es.judge),
                        level,
                        first[jc].to_list(),
                        score,
                        first[cols.rationale[m.name]].to_list(),
                    )
                )
            for m in es.metrics:
                hc = cols.human[m.name]
                lab = df.filter(pl.col("rater").is_not_null() & pl.col(hc).is_not_null())
                if lab.height == 0:
                    continue
                lab = lab.select(
                    "item_id",
                    "model",
                    pl.lit(m.name).alias("metric"),
                    "rater",
                    cols.levels(lab[hc], m).alias("level"),
                )
                labels += lab.height
                if given is not None:  # never add to, or revive, what a rater already said
                    held_same = lab.join(same, on=lab.columns, how="semi").height
                    before = lab.height
                    lab = lab.join(given, on=["item_id", "model", "metric", "rater"], how="anti")
                    kept += before - lab.height - held_same
                batch.add_ratings(
                    zip(*(lab[c].to_list() for c in lab.columns), itertools.repeat(stamp))
                )
        quiet.raise_if_any()  # the file changed between the passes: roll back, write nothing
    return dict(batch.added), labels, kept


# ---- import_labels -----------------------------------------------------------------------

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
    df: pl.DataFrame, cols: _Columns, sink: Sink, skip: set[str], times: dict[str, str | None]
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
    cols, times = _Columns(es), {}
    parts = [_label_chunk(df, cols, sink, skip, times) for df in chunks]
    k = pl.concat(parts) if parts else None
    if k is None or k.height == 0:
        if not sink.total:
            sink.add(0, "", "no rows")
        sink.raise_if_any()
    k = k.filter(
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
    events = [e for e in store.rating_keys(es.id) if e.active]
    if events:
        held = pl.DataFrame(
            [(e.item_id, e.model, e.metric, e.rater, e.value) for e in events],
            orient="row",
            schema={
                "item_id": pl.String,
                "model": pl.String,
                "metric": pl.String,
                "rater": pl.String,
                "held": pl.Int64,
            },
        )
        clash = k.join(held, on=key, how="inner").filter(pl.col("held") != pl.col("level"))
        sink.rows(
            clash.sort(LINE),
            "value",
            lambda r: (
                f"rater {r['rater']} already has the label {label(r, 'held')} for this response's "
                f"{r['metric']} in the workspace, not {label(r, 'level')}; retract it in the app first"
            ),
        )
