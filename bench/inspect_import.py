"""Inspect AI log import: how long N samples take, against the same rows from a CSV.

For each size N it runs Inspect itself (`inspect_ai.eval`, the built-in mock model, a `match`
scorer) on an N-sample task for two models, writing `.eval` logs (or `.json` with --json), then
imports both logs into a fresh workspace and prints, measured in this run (medians of
--repeat runs each):
- Inspect's own reading of the two logs (`read_eval_log`, as the import calls it);
- the whole import (reading, the checks, the write), and samples per second;
- the same rows written as a CSV and imported into another fresh workspace, and the ratio
  Inspect import / CSV import (what going through Inspect's log API costs).
Writing the logs (Inspect running the task on the mock model) is timed too, but not compared.

    .venv/bin/python bench/inspect_import.py [--sizes 1000 4000] [--json] [--repeat 3]

Needs the inspect extra (pip install 'changeover[inspect]').
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from changeover.core.importing.inspect_logs import import_logs  # noqa: E402
from changeover.core.importing.responses import import_file  # noqa: E402
from changeover.core.store import Store  # noqa: E402

REGIONS = ("Europe", "Americas", "Asia")
SPEC = """name = "bench"
incumbent = "m-1"
regions = { Europe = 3, Americas = 2, Asia = 1 }
metrics = [{ name = "correct", levels = ["no", "yes"], direction = "higher", margin = 0.05, judge_map = { C = "yes", I = "no" } }]
[inspect]
region = "metadata.region"
scorers = { correct = "match" }
models = { "mockllm/m-1" = "m-1", "mockllm/m-2" = "m-2" }
"""


EXCLUDED = {"messages", "events", "store", "attachments"}  # as core/importing/inspect_logs.py reads


def median_time(step, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_inspect(n: int, model: str, log_dir: Path, fmt: str) -> Path:
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    samples = [
        Sample(
            id=i,
            input=f"Question {i}: what is {i} plus {i}?",
            target=str(2 * i),
            metadata={"region": REGIONS[i % len(REGIONS)]},
        )
        for i in range(n)
    ]
    off = 1 if model.endswith("2") else 0

    def answer(messages, tools, tool_choice, config):
        i = int(messages[-1].text.split()[1].rstrip(":"))
        out = ModelOutput.from_content(
            model="mockllm", content=f"It is {2 * i + (off if i % 4 == 0 else 0)}"
        )
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    logs = eval(
        Task(dataset=samples, solver=generate(), scorer=match(location="end")),
        model=model,
        model_args={"custom_outputs": answer},
        log_dir=str(log_dir),
        log_format=fmt,
        display="none",
        max_connections=64,
    )
    return Path(logs[0].location)


def as_csv(paths: list[Path], out: Path) -> None:
    """The rows the Inspect import makes, as a responses CSV (for the side-by-side figure)."""
    from inspect_ai.log import read_eval_log

    names = {"mockllm/m-1": "m-1", "mockllm/m-2": "m-2"}
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["item_id", "region", "question", "reference", "model", "response", "judge_correct"]
        )
        for p in paths:
            log = read_eval_log(str(p))
            for s in log.samples or []:
                w.writerow(
                    [
                        s.id,
                        s.metadata["region"],
                        s.input,
                        s.target,
                        names[log.eval.model],
                        s.output.completion,
                        s.scores["match"].value,
                    ]
                )


def measure(n: int, logs: list[Path], tmp: Path, spec: Path, repeat: int) -> list[float]:
    """Median seconds of: Inspect's read of the logs, the whole import, the CSV import."""
    from inspect_ai.log import read_eval_log

    read_eval_log(str(logs[0]), header_only=True)  # Inspect's lazy imports, once

    def read() -> None:
        for p in logs:
            read_eval_log(str(p), exclude_fields=EXCLUDED)

    def into(target: Path, load) -> None:
        target.unlink(missing_ok=True)
        with Store.open(target, create=True) as store:
            assert load(store).responses == 2 * n

    rows = tmp / f"rows{n}.csv"
    as_csv(logs, rows)
    return [
        median_time(step, repeat)
        for step in (
            read,
            lambda: into(tmp / f"inspect{n}.changeover", lambda s: import_logs(s, logs, spec)),
            lambda: into(tmp / f"csv{n}.changeover", lambda s: import_file(s, rows, spec)),
        )
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    ap.add_argument("--json", action="store_true", help="Inspect's .json logs instead of .eval")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each step (median)")
    args = ap.parse_args()
    fmt = "json" if args.json else "eval"
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ["XDG_DATA_HOME"] = str(tmp / "data")  # Inspect's traces stay in here
        spec = tmp / "spec.toml"
        spec.write_text(SPEC)
        for n in args.sizes:
            t = time.perf_counter()
            logs = [run_inspect(n, f"mockllm/m-{k}", tmp / f"logs{n}", fmt) for k in (1, 2)]
            made = time.perf_counter() - t
            size = sum(p.stat().st_size for p in logs) / 1e6
            read, whole, flat = measure(n, logs, tmp, spec, args.repeat)
            print(
                f"N = {n:,} samples x 2 models ({fmt} logs, {size:.1f} MB, written by Inspect in "
                f"{made:.0f} s): Inspect's read {read:.2f} s, whole import {whole:.2f} s "
                f"({2 * n / whole:,.0f} samples/s); the same rows from CSV {flat:.2f} s, "
                f"ratio {whole / flat:.1f}; medians of {args.repeat}, "
                f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
                flush=True,
            )


if __name__ == "__main__":
    main()
