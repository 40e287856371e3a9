"""Production-scale benchmark: a hive-partitioned Parquet lake imported with a labelling sample.

Writes a lake of judged responses chunk by chunk (sample_data/lake.py: 6 regions x 5 models x 3
metrics, short synthetic texts) for each size, imports it with `--sample-per-cell 200` in a
child process of its own (wall time, CPU, peak resident memory), measures the workspace file,
gives every workspace the same number of labels per cell, then fits both in one process (a
warm-up fit first, so neither figure includes compiling) and prints them side by side.
Targets: 20M rows imported in under 3 minutes, peak memory under 2 GB, a workspace under
100 MB; the fit's time at 20M within 1.2x of its time at 1M.

    .venv/bin/python bench/lake_scale.py [--sizes 1000000 20000000] [--sample-per-cell 200]
                                         [--labels-per-cell 20] [--dir DIR] [--no-fit]

Lakes are kept in DIR (default: a folder in the temp directory) and reused when present.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from import_scale import _peak_kb

ROOT = Path(__file__).resolve().parents[1]


def lake_for(rows: int, folder: Path) -> tuple[Path, Path]:
    """The lake of `rows` rows under folder (written once, chunk by chunk) and its spec."""
    from changeover.sample_data.lake import write_lake

    lake = folder / f"lake-{rows}"
    spec, done = lake / "spec.toml", lake / ".complete"
    if not done.exists():
        start = time.perf_counter()
        write_lake(lake, rows, chunk_rows=1_000_000, name="bench")
        done.write_text("")
        size = sum(p.stat().st_size for p in lake.rglob("*.parquet"))
        files = len(list(lake.rglob("*.parquet")))
        print(
            f"wrote {rows:,} rows in {files} files ({size / 1e6:,.0f} MB) in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    return lake, spec


def child_import(lake: str, spec: str, workspace: str, per_cell: str) -> None:
    from changeover.core.workspace import Workspace

    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    with Workspace.open(workspace, create=True) as ws:
        report = ws.import_dataset(lake, spec, sample_per_cell=int(per_cell))
    cost = _cost(start, before)
    print(json.dumps({**cost, "rows": report.source.rows, "stored": report.stored}))


def _cost(start: float, before: resource.struct_rusage) -> dict:
    """Wall time, CPU time and peak memory of this process since `start`."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": time.perf_counter() - start,
        "cpu": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime,
        "peak_mb": _peak_kb(usage) / 1024,
    }


def label(workspace: Path, per_cell: int) -> int:
    """`per_cell` labels per (model, region) on every metric, one rater, the judge's level with
    one in ten moved (a judge that is right 90% of the time); the same for every size."""
    import random

    from changeover.core.workspace import Workspace

    rng = random.Random(7)
    given = 0
    with Workspace.open(workspace) as ws:
        es = ws.eval_sets()[0]
        for model in ws.models(es.id):
            for region in es.region_names:
                ids = ws.store.pick_responses(es.id, model, region, 0, scan=10**9, limit=per_cell)
                for rid in ids:
                    view = ws.response_view(rid)
                    for j in view.judgments:
                        if j.value is None:
                            continue
                        levels = es.metric(j.metric).n_levels
                        value = j.value if rng.random() > 0.1 else rng.randrange(levels)
                        ws.add_rating(rid, j.metric, "bench", value)
                    given += 1
    return given


def child_fit(*workspaces: str) -> None:
    """The full fit of each workspace (default settings), through the default fitter with the
    workspace's counts (what `changeover fit` runs, without keeping the draws); the first is a
    warm-up that compiles. Per metric: seconds (from the progress marks) and NUTS steps per draw."""
    from changeover.core.model.kept_fits import default_fitter
    from changeover.core.settings import Settings
    from changeover.core.workspace import Workspace

    out = []
    for path in workspaces:
        with Workspace.open(path) as ws:
            es = ws.eval_sets()[0]
            counts = ws.counts(es)
        names = list(counts)
        marks: dict[int, float] = {}

        def progress(fraction: float, message: str, names=names, marks=marks) -> None:
            marks.setdefault(min(int(fraction * len(names)), len(names)), time.perf_counter())

        start = time.perf_counter()
        result = default_fitter()(
            counts,
            es.traffic_weights,
            Settings(),
            on_progress=progress,
            pass_levels={m.name: m.pass_level for m in es.metrics},
        )
        end = time.perf_counter()
        bounds = [start, *(marks.get(k, end) for k in range(1, len(names))), end]
        out.append(
            {
                "workspace": path,
                "seconds": end - start,
                "ok": bool(result.diagnostics["ok"]),
                "metrics": {
                    name: {
                        "seconds": bounds[k + 1] - bounds[k],
                        "steps": result.extra.get(name, {}).get("mean_steps"),
                    }
                    for k, name in enumerate(names)
                },
            }
        )
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 20_000_000])
    ap.add_argument("--sample-per-cell", type=int, default=200)
    ap.add_argument("--labels-per-cell", type=int, default=20)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "changeover-lakes")
    ap.add_argument("--no-fit", action="store_true")
    ap.add_argument("--child-import", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--child-fit", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_import:
        return child_import(*args.child_import)
    if args.child_fit:
        return child_fit(*args.child_fit)
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            lake, spec = lake_for(n, args.dir)
            ws = Path(tmp) / f"lake-{n}.changeover"
            r = _child(["--child-import", str(lake), str(spec), str(ws), str(args.sample_per_cell)])
            r["workspace_mb"] = sum(p.stat().st_size for p in ws.parent.glob(ws.name + "*")) / 1e6
            r["labels"] = label(ws, args.labels_per_cell)
            r["workspace_mb_labelled"] = (
                sum(p.stat().st_size for p in ws.parent.glob(ws.name + "*")) / 1e6
            )
            r["path"] = str(ws)
            rows.append((n, r))
            print(
                f"{n:>11,} rows: import {r['seconds']:6.1f} s (CPU {r['cpu']:.1f} s), peak "
                f"{r['peak_mb']:,.0f} MB, workspace {r['workspace_mb']:.1f} MB "
                f"({r['stored']:,} responses kept; {r['workspace_mb_labelled']:.1f} MB with "
                f"{r['labels']:,} labelled) · load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        if not args.no_fit and len(rows) > 1:
            print("fitting (a warm-up fit first, then each size)...", flush=True)
            paths = [r["path"] for _, r in rows]
            fits = _child(["--child-fit", paths[0], *paths])
            times = {f["workspace"]: f for f in fits[1:]}
            for n, r in rows:
                f = times[r["path"]]
                r["fit"] = f["seconds"]
                per = ", ".join(
                    f"{k} {v['seconds']:.1f} s ({v['steps'] or 0:.0f} steps/draw)"
                    for k, v in f["metrics"].items()
                )
                print(
                    f"{n:>11,} rows: full fit {f['seconds']:6.1f} s (4 chains x 1000 draws, "
                    f"compiled; diagnostics {'passed' if f['ok'] else 'FAILED'}): {per}",
                    flush=True,
                )
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    (n0, r0), (n1, r1) = rows[0], rows[-1]
    print(f"\nside by side: {n0:,} rows | {n1:,} rows | target at {n1:,}")
    print(f"  import time     {r0['seconds']:8.1f} s | {r1['seconds']:8.1f} s | < 180 s")
    print(f"  peak memory     {r0['peak_mb']:8.0f} MB | {r1['peak_mb']:8.0f} MB | < 2,048 MB")
    print(
        f"  workspace       {r0['workspace_mb']:8.1f} MB | {r1['workspace_mb']:8.1f} MB | < 100 MB"
    )
    if "fit" in r0 and "fit" in r1:
        print(
            f"  full fit        {r0['fit']:8.1f} s | {r1['fit']:8.1f} s | ratio "
            f"{r1['fit'] / r0['fit']:.2f} (target <= 1.2)"
        )


def _child(argv: list[str]):
    out = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, cwd=ROOT
    )
    if out.returncode:
        sys.exit(f"{argv[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
