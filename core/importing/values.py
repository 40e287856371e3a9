"""The values of an import file as text: numbers, bytes and nested values, made the text columns
the checks compare (core/importing/check.py, core/importing/counts.py, core/importing/lake_files.py)."""

from __future__ import annotations

import polars as pl

from changeover.core.importing.read import BAD, LINE, NESTED, Sink

NOT_UTF8 = "not valid UTF-8"


def as_text(df: pl.DataFrame, sink: Sink) -> pl.DataFrame:
    """Every column as text (3.0 -> "3"); nested values are reported and replaced by BAD."""
    exprs: list[pl.Expr | pl.Series] = []
    for c, dtype in df.schema.items():
        if c == LINE or dtype == pl.String:
            continue
        col = pl.col(c)
        if dtype.is_nested():
            bad = df.filter(col.is_not_null()).select(LINE)
            sink.rows(bad, c, lambda r: NESTED)
            exprs.append(
                pl.when(col.is_not_null())
                .then(pl.lit(BAD))
                .otherwise(None)
                .cast(pl.String)
                .alias(c)
            )
        elif dtype.is_float():
            whole = col.is_finite() & (col == col.round()) & (col.abs() < 1e15)
            exprs.append(
                pl.when(whole)
                .then(col.cast(pl.Int64, strict=False).cast(pl.String))
                .otherwise(col.cast(pl.String))
                .alias(c)
            )
        elif dtype == pl.Binary:
            exprs.append(_binary_text(df, c, sink))
        else:
            exprs.append(col.cast(pl.String, strict=False).alias(c))
    return df.with_columns(exprs) if exprs else df


def _binary_text(df: pl.DataFrame, c: str, sink: Sink) -> pl.Series:
    """A Parquet column of bytes as text: bytes that are not UTF-8 are reported (polars would
    stop at the first) and replaced by BAD."""
    try:
        return df[c].cast(pl.String)
    except pl.exceptions.PolarsError:
        pass
    text = utf8_or_bad(df[c])
    sink.rows(df.filter(text == BAD).select(LINE), c, lambda r: NOT_UTF8)
    return text


def utf8_or_bad(s: pl.Series) -> pl.Series:
    """A column of bytes as text, BAD where the bytes are not UTF-8 (the caller reports it)."""
    out: list[str | None] = []
    for raw in s.to_list():
        try:
            out.append(None if raw is None else raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(BAD)
    return pl.Series(s.name, out, dtype=pl.String)


def trimmed(cols: list[str]) -> list[pl.Expr]:
    """Key columns compared as trimmed text; blank is missing."""
    out = []
    for c in cols:
        s = pl.col(c).str.strip_chars()
        out.append(pl.when(s == "").then(None).otherwise(s).alias(c))
    return out
