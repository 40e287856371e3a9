"""The checks of a responses import, before anything is written: the columns a file may have
under its spec, the row checks of each chunk and the checks across rows of the whole file.

Problems go to a Sink with their line; nothing here writes. core/importing/responses.py runs these on a
file or on Inspect logs, core/importing/lake.py on a sample, core/importing/counts.py reuses the
column mapping.
"""

from __future__ import annotations

import re

import polars as pl

from changeover.core.importing.held import level_columns
from changeover.core.importing.read import BAD, LINE, Sink, listing, show
from changeover.core.importing.values import as_text, trimmed
from changeover.core.types import EvalSet, Metric

TEXT_COLS = ("item_id", "region", "question", "model", "response")


class Columns:
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


def header_problems(cols: Columns, names: list[str], sink: Sink, line: int) -> set[str]:
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


def check_chunk(
    df: pl.DataFrame, cols: Columns, sink: Sink, skip: set[str], levels: bool = False
) -> pl.DataFrame:
    """Row checks of one chunk; returns the keys the whole-file checks need (with `levels`,
    the judge level per metric too, for a re-import's check against the workspace)."""
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
    keys: list[pl.Expr | pl.Series] = [
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
        if levels:
            keys.append(level.alias(level_columns(es)[m.name]))
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


def check_file(keys: pl.DataFrame, cols: Columns, sink: Sink, held: pl.DataFrame | None) -> None:
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
