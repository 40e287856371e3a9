"""Benchmark of a fit's start-up cost: compiling once per machine, not once per process.

    .venv/bin/python bench/cold_start.py [--runs 2]

Prints, measured side by side in one run on the sample workspace (4 chains x 1000 draws, 3
metrics, the default fit), wall and CPU seconds (compiling processes included) of:
1. a first-ever `changeover fit` in a new process, with an empty cache (a fresh
   CHANGEOVER_CACHE_DIR, which also holds PyTensor's compile directory): it compiles;
2. `changeover fit` in a new process with that cache warm: it loads the models;
3. in one process: the models made ready from the warm cache, a fit, and a refit (each with
   its sampling time alone, as the fit reports it);
and the ratios against the issue's targets: new process warm / same-process refit <= 1.5,
first-ever fit <= 30 s wall, warm full fit <= 10 s. The load average is printed with them.
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

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "changeover.cli"]

IN_PROCESS = """
import json, sys, time
from changeover.core.workspace import Workspace
ws = Workspace.open(sys.argv[1]); es = ws.eval_sets()[0]
out = {}
t, c = time.perf_counter(), time.process_time()
out["ready"] = ws.prepare_models(es).text()
out["prepare"] = (time.perf_counter() - t, time.process_time() - c)
for name in ("fit", "refit"):
    t, c = time.perf_counter(), time.process_time()
    fit = ws.fit(es, seed=11)
    out[name] = (time.perf_counter() - t, time.process_time() - c)
    out[name + "_seconds"] = fit.seconds
print(json.dumps(out))
"""


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of a command (its own children included), and its output."""
    cpu, start = children_cpu(), time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, children_cpu() - cpu, out.stdout


def sample_workspace(folder: Path) -> Path:
    ws = folder / "sample.changeover"
    data = ROOT / "sample_data"
    subprocess.run(
        [*CLI, "import", str(ws), str(data / "support.csv"), "--spec", str(data / "support.toml")],
        check=True,
        capture_output=True,
    )
    return ws


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def one_run(folder: Path) -> dict[str, float]:
    ws = sample_workspace(folder)
    env = {**os.environ, "CHANGEOVER_CACHE_DIR": str(folder / "cache")}
    print(f"  load average {load()}")
    wall, cpu, out = timed([*CLI, "fit", str(ws)], env)
    said = next((ln.strip() for ln in out.splitlines() if "model" in ln and "kept" in ln), "?")
    print(
        f"  1. first-ever fit, new process, empty cache   {wall:6.1f} s wall {cpu:6.1f} CPU-s  ({said})"
    )
    first = wall
    wall, cpu, out = timed([*CLI, "fit", str(ws)], env)
    said = next((ln.strip() for ln in out.splitlines() if "model from cache" in ln), "?")
    print(
        f"  2. fit in a new process, cache warm            {wall:6.1f} s wall {cpu:6.1f} CPU-s  ({said})"
    )
    warm_wall, warm_cpu = wall, cpu
    wall, cpu, out = timed([sys.executable, "-c", IN_PROCESS, str(ws)], env)
    got = json.loads(out.strip().splitlines()[-1])
    p, f, r = got["prepare"], got["fit"], got["refit"]
    print(
        f"  3. in one process ({got['ready']}): models ready {p[0]:5.1f} s wall {p[1]:5.1f} CPU-s"
    )
    print(
        f"     fit                                        {f[0]:6.1f} s wall {f[1]:6.1f} CPU-s"
        f"  (sampling alone {got['fit_seconds']:.1f} s)"
    )
    print(
        f"     refit                                      {r[0]:6.1f} s wall {r[1]:6.1f} CPU-s"
        f"  (sampling alone {got['refit_seconds']:.1f} s)"
    )
    print(f"     the whole process                          {wall:6.1f} s wall {cpu:6.1f} CPU-s")
    print(f"  load average {load()}")
    return {
        "first_wall": first,
        "warm_wall": warm_wall,
        "warm_cpu": warm_cpu,
        "refit_wall": r[0],
        "refit_cpu": r[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="repeat with a fresh cache each time")
    args = ap.parse_args()
    print(f"cold start on the sample workspace ({os.cpu_count()} cores)")
    for k in range(args.runs):
        print(f"run {k + 1}")
        with tempfile.TemporaryDirectory(prefix="changeover-cold-") as tmp:
            got = one_run(Path(tmp))
        ratio = got["warm_wall"] / got["refit_wall"]
        print(
            f"  new process warm / same-process refit: {ratio:.2f} wall, "
            f"{got['warm_cpu'] / got['refit_cpu']:.2f} CPU (target <= 1.5)"
        )
        print(f"  first-ever fit {got['first_wall']:.1f} s wall (target <= 30 s at load ~1)")
        print(f"  warm full fit {got['warm_wall']:.1f} s wall (target <= 10 s)")


if __name__ == "__main__":
    main()
