"""The heavy part of a dataset import, done by polars' streaming engine without loading the rows:
the checks of a file import, the judged counts per (model, region, metric, judge level), and
the stratified sample (core/importing/keep_sample.py says why it is drawn the way it is).

Checks run as aggregates first: one grouped pass counts the rows by model, region, raw judge
values and problem flags (empty fields, scores that are not numbers), a second groups the rows
by item to find duplicates and items whose question or region differ. Only when a check fails
are its first rows looked up again, by file and row, for the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import polars as pl

from changeover.core.importing.keep_sample import allocate
from changeover.core.importing.lake_files import FILE, ROW, Dataset, locate
from changeover.core.importing.read import MAX_SHOWN, Problem, Sink, listing, show
from changeover.core.importing.values import trimmed
from changeover.core.store.rows import JudgeLevelCount
from changeover.core.types import EvalSet, Metric

KEYS = ("item_id", "region", "model")  # compared trimmed, as a file import does
HASH = "__key"  # the seeded hash of (item_id, model) that orders a stratum's sample
RARE = 0.02  # strata that need more than this share of their rows are read whole


def blank(c: str) -> pl.Expr:
    return pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")


def prepared(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Key columns trimmed, blank as missing."""
    return lf.with_columns(trimmed(list(KEYS)))


def owned(columns: list[str] | tuple[str, ...]) -> list[pl.Expr]:
    """Text columns copied into buffers of their own. A few rows filtered from a whole dataset
    otherwise keep views into every batch they came from: 6,000 rows of 20 million held 1.9 GB
    (0.36 GB copied)."""
    return [pl.concat_str(pl.col(c), pl.lit("")).alias(c) for c in columns]


def _score_flag(m: Metric) -> str:
    return f"__bad_score_{m.name}"


def grouped(lf: pl.LazyFrame, es: EvalSet, scored: set[str]) -> pl.DataFrame:
    """Rows counted by model, region, every raw judge value and the problem flags: the whole
    dataset in a table of a few hundred rows."""
    flags = [blank(c).alias(f"__empty_{c}") for c in ("item_id", "question", "response")]
    for m in es.metrics:
        if m.name in scored:
            sc = pl.col(f"judge_{m.name}_score")
            bad = sc.is_not_null() & sc.cast(pl.Float64, strict=False).is_null()
            flags.append(bad.alias(_score_flag(m)))
    keys = ["model", "region", *(f"judge_{m.name}" for m in es.metrics)]
    return lf.group_by(*keys, *flags).agg(pl.len().alias("n")).collect(engine="streaming")


class Checker:
    """Turns failed aggregate checks into problems with the file and row of their first rows."""

    def __init__(self, ds: Dataset, lf: pl.LazyFrame, sink: Sink):
        self.ds, self.lf, self.sink = ds, lf, sink

    def rows(
        self,
        predicate: pl.Expr,
        total: int,
        column: str,
        message: Callable[[dict], str],
        show_cols: tuple[str, ...] = (),
    ) -> None:
        if total <= 0:
            return
        hits = (
            self.lf.filter(predicate)
            .select(pl.col(ROW), *owned([FILE, *show_cols]))
            .head(MAX_SHOWN)
            .collect(engine="streaming")
        )
        for (name, line), row in zip(locate(self.ds, hits), hits.iter_rows(named=True)):
            self.sink.kept.append(Problem(name, line, column, message(row), self.sink.unit))
        self.sink.total += total

    def where(self, hits: pl.DataFrame) -> list[str]:
        unit = "row" if self.ds.fmt == "parquet" else "line"
        return [f"{name} {unit} {line}" for name, line in locate(self.ds, hits)]


def _says(row: dict, text: str) -> str:
    return text


def not_a_level(row: dict, column: str, metric: Metric) -> str:
    return (
        f"{show(row[column])} is not a level of {metric.name} ({', '.join(metric.levels)}); "
        'map it in [metrics.judge_map] or set unmapped = "missing"'
    )


def _not_a_number(row: dict, column: str) -> str:
    return f"{show(row[column])} is not a number"


def check_rows(
    check: Checker,
    table: pl.DataFrame,
    es: EvalSet,
    levels: Callable[[pl.Series, Metric], pl.Series],
) -> None:
    """The row checks of a file import (core/importing/check.py), on the grouped table."""

    def count(expr: pl.Expr) -> int:
        return int(table.filter(expr)["n"].sum())

    for c in ("item_id", "question", "response"):
        check.rows(
            blank(c),
            count(pl.col(f"__empty_{c}")),
            c,
            partial(_says, text="empty response" if c == "response" else "empty"),
        )
    for c in ("model", "region"):
        check.rows(pl.col(c).is_null(), count(pl.col(c).is_null()), c, lambda r: "empty")
    regions = list(es.region_names)
    odd = [r for r in table["region"].drop_nulls().unique().sort().to_list() if r not in regions]
    check.rows(
        pl.col("region").is_in(odd),
        count(pl.col("region").is_in(odd)),
        "region",
        lambda r: f"{show(r['region'])} is not a region of the spec ({listing(regions)})",
        ("region",),
    )
    for m in es.metrics:
        jc = f"judge_{m.name}"
        if m.unmapped == "error":
            raw = table[jc].drop_nulls().unique().sort()
            bad = raw.filter(levels(raw, m).is_null()).to_list()
            check.rows(
                pl.col(jc).is_in(bad),
                count(pl.col(jc).is_in(bad)),
                jc,
                partial(not_a_level, column=jc, metric=m),
                (jc,),
            )
            check.rows(
                pl.col(jc).is_null(),
                count(pl.col(jc).is_null()),
                jc,
                lambda r: 'empty judge value (set unmapped = "missing" to store it as missing)',
            )
        if _score_flag(m) in table.columns:
            sc = f"judge_{m.name}_score"
            check.rows(
                pl.col(sc).is_not_null() & pl.col(sc).cast(pl.Float64, strict=False).is_null(),
                count(pl.col(_score_flag(m))),
                sc,
                partial(_not_a_number, column=sc),
                (sc,),
            )


def check_items(check: Checker, seed: int) -> None:
    """Duplicate (item, model) rows, and items whose question or region differ between rows.

    Duplicates: the (item, model) keys' hashes, sorted (8 bytes a row; a grouping by key would
    hold far more). Items: grouped by the item's hash with the least and greatest hash of its
    question and region, which differ only when the rows do."""
    question = pl.when(blank("question")).then(None).otherwise(pl.col("question").hash(seed))
    region = pl.col("region").hash(seed)
    keyed = check.lf.filter(pl.col("item_id").is_not_null() & pl.col("model").is_not_null())
    pairs = keyed.select(pl.struct("item_id", "model").hash(seed).alias("h"))
    hashes = pairs.collect(engine="streaming")["h"].sort()
    twice = hashes.filter(hashes == hashes.shift(1)).unique()
    del hashes
    odd = (
        keyed.group_by(pl.col("item_id").hash(seed).alias("ih"))
        .agg(
            question.min().alias("q0"),
            question.max().alias("q1"),
            region.min().alias("r0"),
            region.max().alias("r1"),
        )
        .filter((pl.col("q0") != pl.col("q1")) | (pl.col("r0") != pl.col("r1")))
        .collect(engine="streaming")
    )
    if odd.height == 0 and twice.len() == 0:
        return
    items = (
        keyed.filter(
            pl.struct("item_id", "model").hash(seed).is_in(twice.head(MAX_SHOWN).implode())
        )
        .select(pl.col("item_id").hash(seed).alias("ih"))
        .collect(engine="streaming")["ih"]
    )
    odd_items = pl.concat([odd["ih"].head(MAX_SHOWN), items]).unique()
    rows = (
        check.lf.filter(pl.col("item_id").hash(seed).is_in(odd_items.implode()))
        .select(pl.col(ROW), question.alias("qh"), *owned([FILE, "item_id", "model", "region"]))
        .collect(engine="streaming")
    )
    rows = rows.with_columns(pl.Series("where", check.where(rows)))
    first_of_pair = pl.col("where").first().over("item_id", "model")
    first_of_item = pl.col("where").first().over("item_id")
    rows = rows.with_columns(
        pl.int_range(pl.len()).over("item_id", "model").alias("_k"),
        first_of_pair.alias("_fk"),
        first_of_item.alias("_fi"),
        (pl.col("qh") != pl.col("qh").drop_nulls().first().over("item_id")).alias("_qdiff"),
        pl.col("region").drop_nulls().first().over("item_id").alias("_freg"),
    )
    found: list[tuple[pl.DataFrame, str, Callable[[dict], str]]] = [
        (
            rows.filter(pl.col("_k") > 0),
            "item_id",
            lambda r: f"duplicate of {r['_fk']} (item {r['item_id']}, model {r['model']})",
        ),
        (
            rows.filter(pl.col("_qdiff")),
            "question",
            lambda r: f"item {r['item_id']} has a different question on {r['_fi']}",
        ),
        (
            rows.filter(pl.col("_freg").is_not_null() & (pl.col("region") != pl.col("_freg"))),
            "region",
            lambda r: f"item {r['item_id']} is in {show(r['_freg'])} on {r['_fi']}",
        ),
    ]
    for bad, column, message in found:
        for (name, line), r in zip(locate(check.ds, bad), bad.iter_rows(named=True)):
            check.sink.kept.append(Problem(name, line, column, message(r), check.sink.unit))
        check.sink.total += bad.height


def judged_counts(
    table: pl.DataFrame, es: EvalSet, levels: Callable[[pl.Series, Metric], pl.Series]
) -> list[JudgeLevelCount]:
    """Judged responses per (metric, model, region, judge level); level None: no usable verdict."""
    out = []
    for m in es.metrics:
        jc = f"judge_{m.name}"
        per = (
            table.select("model", "region", levels(table[jc], m).alias("level"), "n")
            .group_by("model", "region", "level")
            .agg(pl.col("n").sum())
            .sort("model", "region", "level", nulls_last=True)
        )
        out += [JudgeLevelCount(m.name, *row) for row in per.iter_rows()]
    return out


def draw_sample(
    lf: pl.LazyFrame,
    table: pl.DataFrame,
    metric: Metric,
    per_cell: int,
    seed: int,
    levels: Callable[[pl.Series, Metric], pl.Series],
    columns: list[str],
) -> pl.DataFrame:
    """`per_cell` responses of every (model, region), stratified by `metric`'s judge level: in
    each stratum the rows with the smallest keys (see core/importing/keep_sample.py). Rows without a usable
    level of that metric are not drawn.

    A streaming pass over the keys keeps those below a cut that leaves every stratum a few
    more candidates than it needs (keys are uniform hashes), and all keys of small strata; the
    exact smallest are chosen in memory, and a second pass reads their rows. A stratum left
    short (vanishingly rare) is read again whole."""
    jc = f"judge_{metric.name}"
    raw = table.select("model", "region", jc, "n").filter(
        pl.col("model").is_not_null() & pl.col("region").is_not_null()
    )
    raw = raw.with_columns(levels(raw[jc], metric).alias("level")).filter(
        pl.col("level").is_not_null()
    )
    sizes = raw.group_by("model", "region", "level").agg(pl.col("n").sum())
    want: dict[tuple, int] = {}
    for (model, region), cell in sizes.group_by("model", "region"):
        by_level = dict(zip(cell["level"].to_list(), cell["n"].to_list()))
        ordered = list(range(metric.n_levels))
        for lv, k in zip(ordered, allocate(per_cell, [by_level.get(lv, 0) for lv in ordered])):
            if k:
                want[(model, region, lv)] = k
    sizes_of = {(m, r, lv): n for m, r, lv, n in sizes.iter_rows()}
    key = pl.struct("item_id", "model").hash(seed).alias(HASH)
    stratum = pl.struct("model", "region", jc).hash(seed).alias("__stratum")
    strata = ["model", "region", "__level"]
    raw = raw.with_columns(stratum)  # the same hash, on the small table, names each stratum
    schema = {"model": pl.String, "region": pl.String, "__level": pl.Int64}
    wanted = pl.DataFrame(
        [(m, r, lv, k) for (m, r, lv), k in want.items()],
        schema={**schema, "__want": pl.Int64},
        orient="row",
    )
    wanted = wanted.join(
        raw.select("model", "region", pl.col("level").alias("__level"), "__stratum").unique(),
        on=strata,
    )
    share = {s: (k + 6 * math.sqrt(k) + 10) / sizes_of[s] for s, k in want.items()}
    whole = {s for s, x in share.items() if x > RARE}  # small strata: read every row
    while True:
        common = max((x for s, x in share.items() if s not in whole), default=0.0)
        cut = min(int(common * 2**64), 2**64 - 1)
        read = wanted.join(
            pl.DataFrame(list(whole), schema=list(schema.items()), orient="row"),
            on=strata,
            how="semi",
        )["__stratum"]
        # Elementwise filters only (a join or a per-row lookup would not stream): the keys under
        # the common cut, and every row of the small strata; 16 bytes a row at most.
        found = (
            lf.select(stratum, key)
            .filter((pl.col(HASH) <= cut) | pl.col("__stratum").is_in(read.implode()))
            .collect(engine="streaming")
            .join(wanted, on="__stratum")
            .sort(HASH)
            .filter(pl.int_range(pl.len()).over(strata) < pl.col("__want"))
        )
        got = found.group_by(strata).agg(pl.len().alias("got"), pl.col("__want").first())
        short = {tuple(row[:3]) for row in got.iter_rows() if row[3] < row[4]} | (
            set(want) - {tuple(row[:3]) for row in got.iter_rows()}
        )
        if not short - whole:
            keys = found[HASH]
            break
        whole |= short  # vanishingly rare: a stratum's keys fell short of the cut
    if keys.len() == 0:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    sample = lf.filter(key.is_in(keys.implode())).select(owned(columns))
    return sample.collect(engine="streaming").with_columns(key).sort(HASH).select(columns)
