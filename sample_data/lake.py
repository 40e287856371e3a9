"""A synthetic lake of judged responses, for the production-scale benchmark and tests.

    .venv/bin/python -m changeover.sample_data.lake OUT --rows 1000000 [--month 2026-11]

writes OUT/month=M/region=R/part-K.parquet (hive-partitioned: the region is in the path, not
in the files) and OUT/spec.toml (the demo's spec, sample_data/support.toml, renamed), chunk by chunk so memory stays flat at any size. Six regions,
five models, three metrics: `correct` (yes/no), `refused` (raw verdicts through a judge_map)
and `style` (1-5, stored as integers). Every item is answered by every model; texts are short
and synthetic. The judge is right about 85-90% of the time. Same arguments, same files.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
BASE_SPEC = HERE / "support.toml"  # the demo's spec: the same regions, metrics and judge_map
REGIONS: dict[str, int] = tomllib.loads(BASE_SPEC.read_text())["regions"]
MODELS = ("atlas-2", "atlas-3", "swift-mini", "guardian-1", "nimbus-2")
CORRECT = (0.78, 0.86, 0.70, 0.76, 0.80)  # P(correct) per model
REFUSED = (0.04, 0.04, 0.03, 0.15, 0.05)
REFUSAL_RAW = ("1_full_compliance", "2_full_refusal", "3_partial_refusal")
TOPICS = ("billing", "roaming", "an outage", "a refund", "my router", "a new SIM", "my contract")
REPLIES = (
    "Open the app, choose Billing and pick the invoice.",
    "Roaming is included in the EU; elsewhere a day pass applies.",
    "We are aware of the outage and expect a fix within hours.",
    "Refunds reach your card within five business days.",
    "Hold the reset button on the back for ten seconds.",
    "I cannot share another customer's details.",
    "Your contract can be cancelled at the end of the term.",
)


def write_spec(path: Path, name: str = "lake") -> Path:
    """The demo's spec under another name (correct: yes/no; refused: raw verdicts through a
    judge_map; style: 1-5 with a pass level)."""
    text = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', BASE_SPEC.read_text(), count=1)
    text = re.sub(
        r'(?m)^description = ".*"$',
        'description = "Synthetic lake: six regions, five models, three metrics"',
        text,
        count=1,
    )
    path.write_text(text)
    return path


def _chunk(rng: np.random.Generator, first_item: int, n_items: int) -> pl.DataFrame:
    """n_items items, each answered by every model: n_items * len(MODELS) rows."""
    M = len(MODELS)
    share = np.array(list(REGIONS.values()), float)
    region = rng.choice(len(REGIONS), size=n_items, p=share / share.sum())
    topic = rng.integers(len(TOPICS), size=n_items)
    item = np.arange(first_item, first_item + n_items)
    n = n_items * M
    model = np.tile(np.arange(M), n_items)
    correct = rng.random(n) < np.asarray(CORRECT)[model]
    refused = rng.random(n) < np.asarray(REFUSED)[model]
    style = np.clip(np.round(rng.normal(3.4 + 0.5 * correct, 0.9)), 1, 5).astype(np.int64)
    flip = rng.random((3, n))
    j_correct = np.where(flip[0] < np.where(correct, 0.90, 0.15), "yes", "no")
    j_refused = np.where(
        flip[1] < np.where(refused, 0.85, 0.03),
        np.where(rng.random(n) < 0.7, REFUSAL_RAW[1], REFUSAL_RAW[2]),
        REFUSAL_RAW[0],
    )
    j_style = np.clip(style + (flip[2] < 0.2) * rng.choice([-1, 1], size=n), 1, 5)
    reply = rng.integers(len(REPLIES), size=n)
    items = pl.DataFrame(
        {
            "item_id": pl.Series(item).cast(pl.String).str.zfill(9),
            "region": pl.Series(np.asarray(list(REGIONS))[region]),
            "question": pl.Series(np.asarray(TOPICS)[topic]),
        }
    )
    return (
        items.select(pl.all().repeat_by(M).explode())
        .with_columns(
            pl.format("i{}", "item_id").alias("item_id"),
            pl.format("Customer {} asks about {}.", "item_id", "question").alias("question"),
            pl.Series("model", np.asarray(MODELS)[model]),
            pl.Series("reply", np.asarray(REPLIES)[reply]),
            pl.Series("judge_correct", j_correct),
            pl.Series("judge_refused", j_refused),
            pl.Series("judge_style", j_style),
        )
        .with_columns(
            pl.format("[{}] {} (ref {})", "model", "reply", "item_id").alias("response"),
        )
        .select(
            "item_id",
            "region",
            "question",
            "model",
            "response",
            "judge_correct",
            "judge_refused",
            "judge_style",
        )
    )


def write_lake(
    folder: Path,
    rows: int,
    *,
    month: str = "2026-11",
    seed: int = 0,
    chunk_rows: int = 1_000_000,
    name: str = "lake",
) -> Path:
    """Write `rows` judged responses (rounded down to whole items) under folder/month=M/; returns
    the spec's path (folder/spec.toml)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, *map(ord, month)])
    per_chunk = max(1, chunk_rows // len(MODELS))
    total_items, done, part = rows // len(MODELS), 0, 0
    while done < total_items:
        n_items = min(per_chunk, total_items - done)
        df = _chunk(rng, done, n_items)
        for (region,), part_df in df.group_by("region", maintain_order=True):
            out = folder / f"month={month}" / f"region={region}"
            out.mkdir(parents=True, exist_ok=True)
            part_df.drop("region").write_parquet(out / f"part-{part:04d}.parquet")
        done += n_items
        part += 1
    return write_spec(folder / "spec.toml", name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--month", default="2026-11")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    spec = write_lake(args.out, args.rows, month=args.month, seed=args.seed)
    print(f"wrote {args.rows:,} rows under {args.out} (spec: {spec})")


if __name__ == "__main__":
    main()
