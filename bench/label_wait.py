"""How long a label waits while a big import writes into the same workspace.

A workspace holds a small eval set that a rater labels; `changeover import` of a file of N
responses (a new eval set, 4 models, 3 metrics, `bench/import_scale.py`'s generator) runs in a
child process. Beside it, in this process:

- a prober tries `BEGIN IMMEDIATE` with no busy timeout every millisecond and records the
  longest stretch in which the write lock was held by someone else (the longest lock hold);
- a rater stores a label every 50 ms through `Store.add_rating`, the call the rate screen
  makes on a key press, and records how long each took.

Prints the import's wall time, the longest lock hold, the labels given during the import and
their median and longest wait. Run it on two checkouts to compare (the figures depend on the
load: the load average is printed before and after).

    .venv/bin/python bench/label_wait.py [--rows 100000] [--dir DIR]
"""

from __future__ import annotations

import argparse
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

from changeover.core.store import Store  # noqa: E402
from changeover.core.types import EvalSet, Metric, Region  # noqa: E402


def labelled_workspace(path: Path, responses: int = 400) -> tuple[EvalSet, list[int]]:
    """A workspace with one small eval set to label; returns it and its response ids."""
    es = EvalSet(
        id=0,
        name="rated",
        incumbent="old",
        regions=(Region("EU", 1.0),),
        metrics=(Metric("correct", ("no", "yes"), "higher", 0.03, "Right?", ("n", "y")),),
    )
    with Store.open(path, create=True) as store:
        es = store.save_eval_set(es)
        with store.importing(es.id) as batch:
            batch.add_responses(
                (f"r{i // 2}", "EU", f"Q {i // 2}?", None, ("old", "new")[i % 2], f"A {i}.")
                for i in range(responses)
            )
        ids = [row.response_id for row in store.browse(es.id, limit=responses)]
    return es, ids


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


def rate(path: Path, ids: list[int], stop: threading.Event, waits: list[tuple[float, float]]):
    with Store.open(path) as store:
        k = 0
        while not stop.is_set():
            began = time.perf_counter()
            store.add_rating(ids[k % len(ids)], "correct", "ann", k % 2)
            waits.append((began, time.perf_counter() - began))
            k += 1
            time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="label-wait-"))
    folder.mkdir(parents=True, exist_ok=True)
    data, spec = generate(args.rows, folder, "parquet")
    ws = folder / "wait.changeover"
    for leftover in (ws, Path(f"{ws}-wal"), Path(f"{ws}-shm")):
        leftover.unlink(missing_ok=True)
    _, ids = labelled_workspace(ws)
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    stop = threading.Event()
    holds: list[float] = []
    waits: list[tuple[float, float]] = []
    threads = [
        threading.Thread(target=probe, args=(ws, stop, holds)),
        threading.Thread(target=rate, args=(ws, ids, stop, waits)),
    ]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "changeover.tui.cli",
            "import",
            str(ws),
            str(data),
            "--spec",
            str(spec),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    t1 = time.perf_counter()
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    if done.returncode != 0:
        sys.exit(done.stderr)
    during = [w for began, w in waits if t0 <= began <= t1]
    print(done.stdout.strip())
    print(f"import: {t1 - t0:.1f} s for {args.rows:,} rows")
    print(f"longest lock hold: {max(holds, default=0.0) * 1000:.0f} ms ({len(holds)} holds seen)")
    if during:
        print(
            f"labels during the import: {len(during)}, median wait "
            f"{statistics.median(during) * 1000:.1f} ms, longest {max(during) * 1000:.0f} ms"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
