"""Small lakes of judged responses for the dataset-import tests (sample_data/lake.py writes
them), and the counts every engine must agree with, computed eagerly here."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from changeover.core.importing.spec import load_spec
from changeover.sample_data.lake import write_lake


def small_lake(folder: Path, rows: int = 3_000, month: str = "2026-11", seed: int = 0) -> Path:
    """A hive-partitioned lake (month=M/region=R/part-K.parquet) in folder; returns the spec."""
    return write_lake(folder, rows, month=month, seed=seed, chunk_rows=max(rows // 3, 5))


def read_lake(folder: Path) -> pl.DataFrame:
    """Every row of a lake, eagerly, with the region and month from the path."""
    return pl.read_parquet(folder / "**" / "*.parquet", hive_partitioning=True).with_columns(
        pl.col("region").cast(pl.String), pl.col("month").cast(pl.String)
    )


def eager_counts(df: pl.DataFrame, spec: Path) -> set[tuple]:
    """(metric, model, region, level, n) by reading every row: what a stored count must be."""
    es = load_spec(spec)
    out = set()
    for m in es.metrics:
        raw = df[f"judge_{m.name}"].cast(pl.String)
        levels = pl.Series([m.level_of(v) for v in raw.to_list()], dtype=pl.Int64)
        grouped = (
            df.select("model", "region")
            .with_columns(levels.alias("level"))
            .group_by("model", "region", "level")
            .len()
        )
        out |= {(m.name, *row) for row in grouped.iter_rows()}
    return out
