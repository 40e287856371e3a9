"""How long a label waits while a big import writes into the same workspace.

A workspace holds a small eval set that a rater labels; `changeover import` of a file of N
responses (a new eval set, 4 models, 3 metrics, `bench/import_scale.py`'s generator) runs in a
child process. Beside it:

- a prober (this process) tries `BEGIN IMMEDIATE` with no busy timeout every millisecond and
  records the longest stretch in which the write lock was held by someone else (the longest
  lock hold: the import's, the rater's own commits are a few ms);
- a rater (another child) stores a label every 50 ms through `Store.add_rating`, the call the
  rate screen makes on a key press, and records how long each took.

`--roots A B` runs the import and the rater from two checkouts (e.g. main's and a branch's)
one after the other, `--repeat` times, so the figures are measured side by side under the same
load (the load average is printed).

    .venv/bin/python bench/label_wait.py [--rows 100000] [--roots ROOT ...] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_scale import generate  # noqa: E402

BUILD = """
import json, sys
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region

es = EvalSet(
    id=0,
    name="rated",
    incumbent="old",
    regions=(Region("EU", 1.0),),
    metrics=(Metric("correct", ("no", "yes"), "higher", 0.03, "Right?", ("n", "y")),),
)
with Store.open(sys.argv[1], create=True) as store:
    es = store.save_eval_set(es)
    with store.importing(es.id) as batch:
        batch.add_responses(
            (f"r{i // 2}", "EU", f"Q {i // 2}?", None, ("old", "new")[i % 2], f"A {i}.")
            for i in range(400)
        )
    print(json.dumps([row.response_id for row in store.browse(es.id, limit=400)]))
"""


def labelled_workspace(path: Path, env: dict) -> list[int]:
    """A workspace with one small eval set to label, made by the checkout in `env`; returns
    its response ids."""
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(path)],
        env=env,
        cwd=env["PYTHONPATH"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(out.stderr)
    return json.loads(out.stdout)


def probe(path: Path, stop: threading.Event, holds: list[float]) -> None:
    """The longest stretches during which BEGIN IMMEDIATE failed at once (the lock was held)."""
    con = sqlite3.connect(path, isolation_level=None, timeout=0)
    con.execute("PRAGMA busy_timeout = 0")
    since = None
    while not stop.is_set():
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
            if since is not None:
                holds.append(time.perf_counter() - since)
                since = None
        except sqlite3.OperationalError:
            if since is None:
                since = time.perf_counter()
        time.sleep(0.001)
    con.close()


RATER = """
import sys, time, json
from changeover.core.store import Store
path, ids, stop = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
import os
waits = []
with Store.open(path) as store:
    k = 0
    while not os.path.exists(stop):
        began = time.perf_counter()
        store.add_rating(ids[k % len(ids)], "correct", "ann", k % 2)
        waits.append((time.time(), time.perf_counter() - began))
        k += 1
        time.sleep(0.05)
print(json.dumps(waits))
"""


def one_run(root: Path, folder: Path, data: Path, spec: Path) -> dict:
    """The import from `root`, with the rater from `root` and the prober beside it."""
    ws = folder / "wait.changeover"
    for leftover in (ws, Path(f"{ws}-wal"), Path(f"{ws}-shm"), folder / "stop"):
        leftover.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(root)}
    ids = labelled_workspace(ws, env)
    stop_probe = threading.Event()
    holds: list[float] = []
    prober = threading.Thread(target=probe, args=(ws, stop_probe, holds))
    prober.start()
    rater = subprocess.Popen(
        [sys.executable, "-c", RATER, str(ws), json.dumps(ids), str(folder / "stop")],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    load = os.getloadavg()[0]
    t0 = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "changeover.cli",
            "import",
            str(ws),
            str(data),
            "--spec",
            str(spec),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    t1 = time.time()
    (folder / "stop").touch()
    waits = json.loads(rater.communicate()[0])
    stop_probe.set()
    prober.join()
    if done.returncode != 0:
        sys.exit(done.stderr)
    during = [w for began, w in waits if t0 <= began <= t1]
    return {
        "load": load,
        "import_s": t1 - t0,
        "hold_ms": max(holds, default=0.0) * 1000,
        "labels": len(during),
        "median_ms": statistics.median(during) * 1000 if during else float("nan"),
        "longest_ms": max(during, default=0.0) * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--roots", type=Path, nargs="+", default=[ROOT])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="label-wait-"))
    folder.mkdir(parents=True, exist_ok=True)
    data, spec = generate(args.rows, folder, "parquet")
    print(f"{args.rows:,} rows imported into a workspace a rater labels (a label every 50 ms)")
    for _ in range(args.repeat):
        for root in args.roots:
            r = one_run(root.resolve(), folder, data, spec)
            print(
                f"{str(root):<28} load {r['load']:5.2f}  import {r['import_s']:5.1f} s  longest "
                f"lock hold {r['hold_ms']:6.0f} ms  labels during it {r['labels']:3d}: median "
                f"wait {r['median_ms']:6.1f} ms, longest {r['longest_ms']:6.0f} ms"
            )


if __name__ == "__main__":
    main()
