"""Import benchmark: 10k, 100k and 1M responses into fresh workspaces.

Prints rows per second, CPU time, peak memory (VmHWM, or ru_maxrss, of a child process that
does only the import) and the ratio of time per row at the largest size to the smallest.
Targets: 1M responses in under 60 s, peak memory under 1 GB, ratio under 1.5.
`--index both` imports each size also into a workspace without the search index (as on a SQLite
without FTS5 trigrams) and prints what keeping the index costs.

    .venv/bin/python bench/import_scale.py [--sizes 10000 100000 1000000] [--format parquet|csv|jsonl]
                                           [--repeat 3] [--index with|without|both]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
REGIONS = {
    "North America": 1_450_000,
    "Europe": 1_200_000,
    "Latin America": 800_000,
    "Asia Pacific": 950_000,
    "Middle East": 400_000,
    "Africa": 500_000,
}
MODELS = ("atlas-2", "borealis-1", "cirrus-3", "dune-mini")
OPENINGS = [
    "Thanks for reaching out.",
    "Happy to help with that.",
    "Sorry for the trouble.",
    "Good question.",
    "Let me walk you through it.",
    "I checked your account.",
]
BODIES = [
    "Open Settings, choose Billing and select the invoice you need.",
    "Refunds reach your card within five to seven business days.",
    "Your order left our warehouse yesterday and should arrive on Friday.",
    "You can change the delivery address until the parcel is dispatched.",
    "The warranty covers manufacturing defects for two years.",
    "Reset the router by holding the button on the back for ten seconds.",
    "I cannot share another customer's details, but I can help with yours.",
    "Premium members get free returns within sixty days.",
    "Please update the app to version 4.2, which fixes this crash.",
    "Two-factor authentication can be turned on under Security.",
]
SPEC = """name = "bench"
incumbent = "atlas-2"
judge = "judge-bench"
[regions]
{regions}
[[metrics]]
name = "correct"
levels = ["no", "yes"]
direction = "higher"
margin = 0.03
[[metrics]]
name = "refused"
levels = ["no", "yes"]
direction = "match"
margin = 0.02
[[metrics]]
name = "style"
levels = ["1", "2", "3", "4", "5"]
direction = "higher"
margin = 0.2
"""


def generate(n: int, folder: Path, fmt: str, seed: int = 0) -> tuple[Path, Path]:
    """n responses (4 models per item), ~5% of them labelled by two raters (two rows each)."""
    rng = np.random.default_rng(seed)
    n_items = n // len(MODELS)
    item = np.repeat(np.arange(n_items), len(MODELS))
    model = np.tile(np.arange(len(MODELS)), n_items)
    region_names = list(REGIONS)
    region = rng.integers(0, len(region_names), n_items)[item]
    df = pl.DataFrame(
        {
            "item_id": "q" + pl.Series(item).cast(pl.String).str.pad_start(7, "0"),
            "region": pl.Series(region_names)[region],
            "question": pl.Series(
                [
                    f"How do I {w}?"
                    for w in (
                        "get a refund",
                        "reset my router",
                        "track my parcel",
                        "change my address",
                        "enable 2FA",
                    )
                ]
            )[item % 5]
            + " (#"
            + pl.Series(item).cast(pl.String)
            + ")",
            "model": pl.Series(MODELS)[model],
            "response": pl.Series(OPENINGS)[rng.integers(0, len(OPENINGS), n)]
            + " "
            + pl.Series(BODIES)[rng.integers(0, len(BODIES), n)]
            + " "
            + pl.Series(BODIES)[rng.integers(0, len(BODIES), n)],
            "judge_correct": pl.Series(["no", "yes"])[(rng.random(n) < 0.8).astype(np.int64)],
            "judge_refused": pl.Series(["no", "yes"])[(rng.random(n) < 0.05).astype(np.int64)],
            "judge_style": pl.Series(rng.integers(1, 6, n)).cast(pl.String),
        }
    )
    mask = pl.Series(rng.random(n) < 0.05)
    labelled = df.filter(mask)
    human = [
        labelled.with_columns(
            pl.lit(r).alias("rater"),
            pl.Series("human_correct", ["no", "yes"])[
                (rng.random(labelled.height) < 0.8).astype(np.int64)
            ],
        )
        for r in ("ann", "bob")
    ]
    df = pl.concat(
        [
            df.filter(~mask).with_columns(
                pl.lit(None, dtype=pl.String).alias("rater"),
                pl.lit(None, dtype=pl.String).alias("human_correct"),
            ),
            *human,
        ]
    )
    df = df.sort("item_id", "model", maintain_order=True)
    data = folder / f"bench_{n}.{fmt}"
    if fmt == "parquet":
        df.write_parquet(data)
    elif fmt == "csv":
        df.write_csv(data)
    else:
        df.write_ndjson(data)
    spec = folder / "bench.toml"
    spec.write_text(SPEC.format(regions="\n".join(f'"{k}" = {v}' for k, v in REGIONS.items())))
    return data, spec


def _peak_kb(usage: resource.struct_rusage) -> int:
    """Peak resident memory of this process image. ru_maxrss survives fork + exec on Linux (it
    would report the parent's peak), so prefer VmHWM, which starts afresh with the new image."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return usage.ru_maxrss


def child(data: str, spec: str, workspace: str, index: str = "with") -> None:
    sys.path.insert(0, str(ROOT))
    from changeover.core.importing.responses import import_file
    from changeover.core.store import Store, fts

    if index == "without":  # migration 2 then leaves the index out, as without trigrams
        fts.available = lambda con: False

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with Store.open(workspace, create=True) as store:
        report = import_file(store, data, spec)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": _peak_kb(usage) / 1024,
                "rows": report.rows,
                "cpu": cpu,
                "responses": report.added.get("responses", 0),
                "summary": report.summary(),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--format", choices=("parquet", "csv", "jsonl"), default="parquet")
    ap.add_argument("--repeat", type=int, default=3, help="runs per size below 1M (median kept)")
    ap.add_argument(
        "--index",
        choices=("with", "without", "both"),
        default="with",
        help="the search index in the workspace (both: each size twice, side by side)",
    )
    ap.add_argument(
        "--child", nargs=4, metavar=("DATA", "SPEC", "WORKSPACE", "INDEX"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    results = []
    kinds = ("with", "without") if args.index == "both" else (args.index,)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in args.sizes:
            data, spec = generate(n, folder, args.format)
            by_kind = {}
            for kind in kinds:
                # Small imports take well under a second: the median of a few runs steadies them.
                repeat = args.repeat if n < 1_000_000 else 1
                runs = [_run(n, data, spec, folder, kind) for _ in range(repeat)]
                r = by_kind[kind] = sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]
                print(
                    f"{n:>9,} responses ({r['rows']:,} rows, {data.stat().st_size / 1e6:,.1f} MB "
                    f"{args.format}, {kind} search index): {r['seconds']:6.2f} s, "
                    f"{r['responses'] / r['seconds']:>9,.0f} responses/s, CPU {r['cpu']:6.2f} s, "
                    f"peak {r['peak_mb']:,.0f} MB, workspace {r['size_mb']:,.0f} MB"
                    + (f" (median of {len(runs)})" if len(runs) > 1 else ""),
                    flush=True,
                )
            results.append((n, by_kind[kinds[0]]))
            if len(kinds) == 2:
                w, wo = by_kind["with"], by_kind["without"]
                print(
                    f"{'':>9}  keeping the index: {w['seconds'] / wo['seconds']:.2f}x the time, "
                    f"{w['cpu'] / wo['cpu']:.2f}x the CPU, "
                    f"{w['size_mb'] / wo['size_mb']:.2f}x the file",
                    flush=True,
                )
            data.unlink()
    if len(results) > 1:
        (n0, r0), (n1, r1) = results[0], results[-1]
        ratio = (r1["seconds"] / n1) / (r0["seconds"] / n0)
        cpu_ratio = (r1["cpu"] / n1) / (r0["cpu"] / n0)
        print(
            f"time per row at {n1:,} / at {n0:,}: {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target < 1.5)"
        )


def _run(n: int, data: Path, spec: Path, folder: Path, index: str = "with") -> dict:
    """One import into a fresh workspace, in a child process (its own peak memory)."""
    ws = folder / f"bench_{n}.changeover"
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(data), str(spec), str(ws), index],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"import of {n:,} responses failed:\n{out.stderr}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    got["size_mb"] = ws.stat().st_size / 1e6  # the store checkpoints the WAL when it closes
    for extra in (ws, Path(f"{ws}-wal"), Path(f"{ws}-shm")):
        extra.unlink(missing_ok=True)
    return got


if __name__ == "__main__":
    main()
