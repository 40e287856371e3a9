"""Inspect AI log import: how long N samples take, against the same rows from a CSV.

For each size N it runs Inspect itself (`inspect_ai.eval`, the built-in mock model, a `match`
scorer) on an N-sample task for two models, writing `.eval` logs (or `.json` with --json), then
imports both logs into a fresh workspace and prints, measured in this run:
- Inspect's own reading of the two logs (`read_eval_log`, as the import calls it);
- the whole import (reading, the checks, the write), and samples per second;
- the same rows written as a CSV and imported into another fresh workspace, and the ratio
  Inspect import / CSV import (what going through Inspect's log API costs).

    .venv/bin/python bench/inspect_import.py [--sizes 1000 10000] [--json]

Needs the inspect extra (pip install 'changeover[inspect]').
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from changeover.core.import_inspect import import_logs  # noqa: E402
from changeover.core.importer import import_file  # noqa: E402
from changeover.core.store import Store  # noqa: E402

REGIONS = ("Europe", "Americas", "Asia")
SPEC = """name = "bench"
incumbent = "m-1"
[regions]
Europe = 3
Americas = 2
Asia = 1
[[metrics]]
name = "correct"
levels = ["no", "yes"]
direction = "higher"
margin = 0.05
[metrics.judge_map]
C = "yes"
I = "no"
[inspect]
region = "metadata.region"
[inspect.scorers]
correct = "match"
[inspect.models]
"mockllm/m-1" = "m-1"
"mockllm/m-2" = "m-2"
"""


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--json", action="store_true", help="Inspect's .json logs instead of .eval")
    args = ap.parse_args()
    fmt = "json" if args.json else "eval"
    from inspect_ai.log import read_eval_log

    print(f"load: {os.getloadavg()[0]:.1f} (1 min average, {os.cpu_count()} cores)")
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
            t = time.perf_counter()
            for p in logs:
                read_eval_log(str(p), exclude_fields={"messages", "events", "store", "attachments"})
            read = time.perf_counter() - t
            t = time.perf_counter()
            with Store.open(tmp / f"inspect{n}.changeover", create=True) as store:
                report = import_logs(store, logs, spec)
            whole = time.perf_counter() - t
            assert report.responses == 2 * n
            rows = tmp / f"rows{n}.csv"
            as_csv(logs, rows)
            t = time.perf_counter()
            with Store.open(tmp / f"csv{n}.changeover", create=True) as store:
                import_file(store, rows, spec)
            flat = time.perf_counter() - t
            print(
                f"N = {n:>6,} samples x 2 models ({fmt}, {size:.1f} MB, made by Inspect in "
                f"{made:.1f} s): Inspect's read {read:.2f} s, whole import {whole:.2f} s "
                f"({2 * n / whole:,.0f} samples/s); the same rows from CSV {flat:.2f} s; "
                f"ratio {whole / flat:.1f}"
            )


if __name__ == "__main__":
    main()
