"""SummEval (../shared/data/summeval) for the scale model's slow tests and
bench/scale_acceptance.py: as count tables, or as the files a user imports.

Each of the 12 systems is a model, one region ("news"); the judge is GPT-4's 1-5 score
(`judge_<d>`), the human label the median of the three experts (`human_<d>`). A response the
judge gave no score on a dimension is judged "missing" there. Labels: a seeded simple random
sample of `fraction` of each system's summaries (at least 2), rated on every dimension (as the
experts did); the rest are judged only. A cell is checked against the all-expert mean of its
system.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from changeover.core.model.counts import Counts

LEVELS = ("1", "2", "3", "4", "5")
DIMENSIONS = ("coherence", "consistency", "fluency", "relevance")


def summeval_dir() -> Path | None:
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "summeval"
    return folder if (folder / "responses.csv").is_file() else None


def responses() -> pl.DataFrame:
    folder = summeval_dir()
    if folder is None:
        raise FileNotFoundError("SummEval data not found in ../shared/data/summeval")
    frame = pl.read_csv(folder / "responses.csv", infer_schema_length=0)
    order = sorted(frame["system"].unique().to_list(), key=lambda s: int(s[1:]))
    rank = {name: k for k, name in enumerate(order)}
    return frame.with_columns(pl.col("system").replace_strict(rank).alias("_rank")).sort(
        "_rank", "item_id", maintain_order=True
    )


def systems(frame: pl.DataFrame) -> tuple[str, ...]:
    return tuple(frame["system"].unique(maintain_order=True).to_list())


def labelled(frame: pl.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """[rows] which summaries get expert labels: `fraction` of each system's, seeded."""
    chosen = np.zeros(frame.height, dtype=bool)
    for m, name in enumerate(systems(frame)):
        rows = np.flatnonzero((frame["system"] == name).to_numpy())
        k = max(2, round(fraction * len(rows)))
        rng = np.random.default_rng([seed, m])
        chosen[rng.choice(rows, size=k, replace=False)] = True
    return chosen


def truth(frame: pl.DataFrame, dimension: str) -> np.ndarray:
    """[M] the all-expert mean of each system."""
    return np.array(
        [
            frame.filter(pl.col("system") == name)[f"human_{dimension}"].cast(pl.Float64).mean()
            for name in systems(frame)
        ]
    )


def summeval_counts(
    dimension: str, fraction: float, seed: int, frame: pl.DataFrame | None = None
) -> tuple[Counts, np.ndarray]:
    """(Counts of one dimension with `fraction` of each system's summaries labelled, the
    all-expert mean per system [M])."""
    frame = responses() if frame is None else frame
    names = systems(frame)
    chosen = labelled(frame, fraction, seed)
    M, L = len(names), len(LEVELS)
    n = np.zeros((M, 1, L, L), dtype=np.int64)
    u = np.zeros((M, 1, L), dtype=np.int64)
    model = frame["system"].replace_strict({s: k for k, s in enumerate(names)}).to_numpy()
    judge_text = frame[f"judge_{dimension}"].fill_null("").to_numpy()
    judged = judge_text != ""
    judge = np.where(judged, judge_text, "1").astype(float).astype(int) - 1
    human = frame[f"human_{dimension}"].cast(pl.Float64).round().cast(pl.Int64).to_numpy() - 1
    keep = judged & chosen
    np.add.at(n, (model[keep], 0, human[keep], judge[keep]), 1)
    keep = judged & ~chosen
    np.add.at(u, (model[keep], 0, judge[keep]), 1)
    return Counts(dimension, LEVELS, names, ("news",), n, u), truth(frame, dimension)


def write_files(
    folder: Path, dimensions: tuple[str, ...], fraction: float, seed: int
) -> tuple[Path, Path, Path]:
    """(responses CSV, spec TOML, labels CSV) as a user would import them: the three experts'
    ratings as three raters (their consensus, the median, is the label summeval_counts uses)."""
    frame = responses()
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "spec.toml"
    metrics = "".join(
        f'\n[[metrics]]\nname = "{d}"\nlevels = {list(LEVELS)!r}\ndirection = "higher"\n'
        f'margin = 0.25\nunmapped = "missing"\n'
        for d in dimensions
    ).replace("'", '"')
    spec.write_text(
        f'name = "summeval"\nincumbent = "{systems(frame)[0]}"\njudge = "gpt-4-0314"\n'
        f'\n[regions]\n"news" = 1\n{metrics}'
    )
    out = folder / "responses.csv"
    table = frame.select(
        pl.col("item_id"),
        pl.lit("news").alias("region"),
        pl.col("item_id").alias("question"),
        pl.col("system").alias("model"),
        pl.col("response"),
        *[pl.col(f"judge_{d}").fill_null("") for d in dimensions],
    )
    table.write_csv(out)
    labels = folder / "labels.csv"
    chosen = labelled(frame, fraction, seed)
    rows = frame.filter(pl.Series(chosen))
    pl.concat(
        [
            rows.select(
                pl.col("item_id"),
                pl.col("system").alias("model"),
                pl.lit(d).alias("metric"),
                pl.lit(f"expert{k}").alias("rater"),
                pl.col(f"expert{k}_{d}")
                .cast(pl.Float64)
                .cast(pl.Int64)
                .cast(pl.Utf8)
                .alias("value"),
            )
            for d in dimensions
            for k in (1, 2, 3)
        ]
    ).write_csv(labels)
    return out, spec, labels
