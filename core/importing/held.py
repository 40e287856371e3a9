"""A re-import checked against what the workspace holds. An import adds; it never rewrites a
stored response or verdict. So when the file gives a response the workspace already holds a
different judge verdict (the judge was run again, or the file was edited), those rows are
named with their file:line and nothing is imported: silently keeping the old verdict would
leave the user believing the new one is in."""

from __future__ import annotations

import polars as pl

from changeover.core.importing.read import LINE, Sink
from changeover.core.types import EvalSet

HELD = {"item_id": pl.String, "model": pl.String, "metric": pl.String, "held": pl.Int64}
LABELS = {
    "item_id": pl.String,
    "model": pl.String,
    "metric": pl.String,
    "rater": pl.String,
    "level": pl.Int64,
    "active": pl.Boolean,
    "open": pl.Boolean,
}


def level_columns(es: EvalSet) -> dict[str, str]:
    """metric -> the key column that carries the file's judge level during the checks."""
    return {m.name: f"__lvl_{m.name}" for m in es.metrics}


def held_responses(store, held: EvalSet | None, keys: pl.DataFrame, sink: Sink) -> pl.DataFrame:
    """(item_id, model) of the file's responses the workspace already holds; reports each row
    whose judge verdict on one of them differs from the stored one. `keys` has LINE, item_id,
    model and the level columns of `level_columns`."""
    none = pl.DataFrame(schema={"item_id": pl.String, "model": pl.String})
    if held is None:
        return none
    items = keys["item_id"].drop_nulls().unique().to_list()
    stored = pl.DataFrame(store.judgment_levels(held.id, items), schema=HELD, orient="row")
    if stored.height == 0:
        return none
    columns = level_columns(held)
    first = keys.filter(
        pl.col("item_id").is_not_null()
        & pl.col("model").is_not_null()
        & pl.struct("item_id", "model").is_first_distinct()
    )
    for m in held.metrics:
        if columns[m.name] not in first.columns:
            continue
        mine = first.select(LINE, "item_id", "model", pl.col(columns[m.name]).alias("level"))
        if m.unmapped == "error":  # an unmappable value is reported as such already
            mine = mine.filter(pl.col("level").is_not_null())
        differs = (
            mine.join(stored.filter(pl.col("metric") == m.name), on=["item_id", "model"])
            .filter(pl.col("level").ne_missing(pl.col("held")))
            .sort(LINE)
        )

        def message(r: dict, m=m) -> str:
            def name(level):
                return "missing" if level is None else m.levels[level]

            return (
                f"{name(r['level'])} here, but the workspace holds {name(r['held'])} for this "
                f"response (item {r['item_id']}, model {r['model']}); an import never rewrites a "
                "stored verdict: give the file's verdict as it was, or import the new verdicts "
                "as another eval set (a new name in the spec)"
            )

        sink.rows(differs, f"judge_{m.name}", message)
    return stored.select("item_id", "model").unique()


def held_labels(store, eval_set_id: int) -> pl.DataFrame:
    """Every label event the workspace holds in an eval set, by the names an import file uses;
    `active` is false where the label was retracted since."""
    return pl.DataFrame(store.rating_keys(eval_set_id), schema=LABELS, orient="row")
