"""Export ratings, responses or results of an eval set as CSV, JSONL or Parquet, with provenance.

Rows are streamed page by page from the store (a page of a few thousand rows at a time), so a
large eval set is never loaded whole. Three tables:

- ``ratings``: every rating event, retractions included: who (rater), when (created_at),
  blind or not, where it came from (source "app" or "import"), how its response was chosen
  (``selection``: "random", as the fit assumes, or "open": chosen by a person, browse triage or
  ``import-labels --open``; empty on a retraction), whether this event retracts an
  earlier one (``retracts``), and, for a label that was undone or replaced, which event
  retracted it, by whom and when (``retracted_by``, ``retracted_by_rater``, ``retracted_at``).
  ``active`` is true for the labels in force.
- ``responses``: one row per response: item, region, question, model, text, and per metric
  the judge's verdict (``judge_<metric>_label``, ``_level``, ``_raw``, ``_score``,
  ``_rationale``) and the raters' consensus label over active ratings (the median level, the
  majority on yes/no: ``human_<metric>_label``, ``_level``, ``_votes``; a tie leaves the label
  empty, as the model leaves ties out).
- ``results``: the latest fit's table (the results value of core/results.py, flattened by
  core.render.report.report_rows, exactly as `changeover report --format csv`): per metric, region
  (and "overall") and model the mean, 90% interval, difference to the incumbent,
  P(holds) (column ``p_noninferior``, named so since the first version), verdict and reason, judge sensitivity/specificity and the baselines, with
  the fit's id and time.

CSV injection: a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is neutralised by prefixing a single quote ``'`` (OWASP "CSV Injection" guidance), so a
spreadsheet shows it as text instead of running it as a formula. Only text cells are touched
(numbers stay numbers) and only in CSV; JSONL and Parquet keep the text exactly. Written to a
terminal, a CSV shows control characters as visible escapes (``\\x1b``) and JSONL writes DEL
and C1 controls as ``\\u`` escapes (JSON escapes the rest itself), because model text is data,
never terminal commands; to a file or pipe the text goes out as it is.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from changeover.core.model.counts import consensus
from changeover.core.results import Results
from changeover.core.store import Store
from changeover.core.text import DANGEROUS, write_csv
from changeover.core.types import IMPORT, IMPORT_OPEN, ChangeoverError, EvalSet, label_selection

WHATS = ("ratings", "responses", "results")
FORMATS = ("csv", "jsonl", "parquet")
PAGE = 5000
# JSON escapes C0 controls itself; DEL, C1 controls and bidi marks it leaves raw.
_RAW_IN_JSON = re.compile("[" + "".join(re.escape(chr(c)) for c in DANGEROUS if c >= 0x7F) + "]")

# Column name -> type ("int", "float", "str", "bool"): fixes the Parquet schema even when a
# page holds only nulls, and tells the CSV writer which cells are text.
RATING_COLUMNS: dict[str, str] = {
    "event_id": "int",
    "response_id": "int",
    "item_id": "str",
    "region": "str",
    "model": "str",
    "metric": "str",
    "rater": "str",
    "level": "int",
    "label": "str",
    "created_at": "str",
    "blind": "bool",
    "source": "str",
    "retracts": "int",
    "retracted": "bool",
    "retracted_by": "int",
    "retracted_by_rater": "str",
    "retracted_at": "str",
    "active": "bool",
    "selection": "str",  # added later: new columns go last
}


class NoResults(ChangeoverError):
    """There is no fit to export results from."""


def response_columns(es: EvalSet) -> dict[str, str]:
    """Columns of the responses table: fixed ones, then judge and human columns per metric."""
    cols = {
        "response_id": "int",
        "item_id": "str",
        "region": "str",
        "question": "str",
        "reference": "str",
        "model": "str",
        "text": "str",
    }
    for m in es.metrics:
        p = f"judge_{m.name}_"
        cols.update(
            {
                p + "label": "str",
                p + "level": "int",
                p + "raw": "str",
                p + "score": "float",
                p + "rationale": "str",
            }
        )
        h = f"human_{m.name}_"
        cols.update({h + "label": "str", h + "level": "int", h + "votes": "int"})
    return cols


# ---- rows -------------------------------------------------------------------------------------


def rating_rows(store, es: EvalSet, page: int = PAGE) -> Iterator[dict]:
    """Every rating event of the eval set, oldest first, with its provenance."""
    levels = {m.name: m.levels for m in es.metrics}
    after = 0
    while True:
        rows = store.rating_events_page(es.id, after, page)
        if not rows:
            return
        for r in rows:
            value = r.value
            names = levels.get(r.metric, ())
            yield {
                "event_id": r.id,
                "response_id": r.response_id,
                "item_id": r.item_id,
                "region": r.region,
                "model": r.model,
                "metric": r.metric,
                "rater": r.rater,
                "level": value,
                "label": names[value] if value is not None and 0 <= value < len(names) else None,
                "created_at": r.created_at,
                "blind": r.blind,
                "source": IMPORT if r.source == IMPORT_OPEN else r.source,
                "retracts": r.retracts,
                "retracted": r.retracted_by is not None,
                "retracted_by": r.retracted_by,
                "retracted_by_rater": r.retracted_by_rater,
                "retracted_at": r.retracted_at,
                "active": r.retracts is None and r.retracted_by is None,
                "selection": None if value is None else label_selection(r.blind, r.source),
            }
        after = rows[-1].id


def response_rows(store, es: EvalSet, page: int = 2000) -> Iterator[dict]:
    """One row per response with the judge's verdicts and the consensus human label per metric."""
    metrics = {m.name: m for m in es.metrics}
    after = 0
    while True:
        rows = store.responses_page(es.id, after, page)
        if not rows:
            return
        first, last = rows[0].response_id, rows[-1].response_id
        judged: dict[tuple[int, str], Any] = {
            (j.response_id, j.metric): j for j in store.judgments_between(first, last)
        }
        votes: dict[tuple[int, str], dict[int, int]] = {}
        for rid, metric, level, n in store.votes_between(first, last):
            votes.setdefault((rid, metric), {})[level] = n
        for r in rows:
            out: dict[str, Any] = r._asdict()
            rid = r.response_id
            for name, m in metrics.items():
                j = judged.get((rid, name))
                p = f"judge_{name}_"
                jl = j.value if j is not None else None
                out[p + "label"] = m.levels[jl] if jl is not None and 0 <= jl < m.n_levels else None
                out[p + "level"] = jl
                out[p + "raw"] = j.raw if j is not None else None
                out[p + "score"] = j.score if j is not None else None
                out[p + "rationale"] = j.rationale if j is not None else None
                tally = votes.get((rid, name), {})
                level, total = consensus(tally), sum(tally.values())
                h = f"human_{name}_"
                out[h + "label"] = (
                    m.levels[level] if level is not None and level < m.n_levels else None
                )
                out[h + "level"] = level
                out[h + "votes"] = total
            yield out
        after = last


def result_columns() -> dict[str, str]:
    """Columns of the results table: the report's CSV columns plus when the fit was made."""
    from changeover.core.render.report import CSV_KINDS

    return {**CSV_KINDS, "fit_created_at": "str"}


def result_rows(results: Results) -> Iterator[dict]:
    """The results table, one row per (metric, region or overall, model) cell."""
    from changeover.core.render.report import report_rows

    created = results.fit.created_at if results.fit is not None else None
    for row in report_rows(results):
        row["fit_created_at"] = created
        yield row


# ---- writers ----------------------------------------------------------------------------------


def write_jsonl(
    rows: Iterable[dict], columns: dict[str, str], out: IO[str], tty: bool = False
) -> int:
    n = 0
    for row in rows:
        line = json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False)
        if tty:
            line = _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", line)
        out.write(line + "\n")
        n += 1
    return n


def write_parquet(
    rows: Iterable[dict], columns: dict[str, str], path: Path, batch: int = PAGE
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}
    schema = pa.schema([(c, types[k]) for c, k in columns.items()])
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        buf: list[dict] = []
        for row in rows:
            buf.append({c: row.get(c) for c in columns})
            if len(buf) >= batch:
                writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                n += len(buf)
                buf = []
        if buf or n == 0:
            writer.write_table(pa.Table.from_pylist(buf, schema=schema))
            n += len(buf)
    return n


# ---- entry point ------------------------------------------------------------------------------


def table(
    store: Store, es: EvalSet, what: str, results: Results | None = None
) -> tuple[Iterator[dict], dict[str, str]]:
    """(row iterator, columns) of one export table (`results` for the results table)."""
    if what == "ratings":
        return rating_rows(store, es), RATING_COLUMNS
    if what == "responses":
        return response_rows(store, es), response_columns(es)
    if what == "results":
        if results is None:
            raise NoResults(f"eval set {es.name!r} has no fit yet: run `changeover fit` first")
        return result_rows(results), result_columns()
    raise ChangeoverError(f"cannot export {what!r}: choose one of {', '.join(WHATS)}")


def export(
    store: Store,
    es: EvalSet,
    what: str,
    fmt: str,
    output: str | os.PathLike | IO[str] | None,
    results: Results | None = None,
) -> int:
    """Write one table to a file path (atomically: a temporary file renamed at the end) or to a
    text stream; returns the number of rows. Parquet needs a path."""
    if fmt not in FORMATS:
        raise ChangeoverError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    rows, columns = table(store, es, what, results)
    if output is None or not isinstance(output, (str, os.PathLike)):
        if fmt == "parquet":
            raise ChangeoverError("Parquet is binary: give an output file (-o FILE)")
        stream = output if output is not None else io.StringIO()
        return _write_stream(rows, columns, fmt, stream)
    return _write_file(rows, columns, fmt, Path(output))


def _write_stream(rows, columns, fmt: str, stream: IO[str]) -> int:
    tty = bool(getattr(stream, "isatty", lambda: False)())
    if fmt == "csv":
        return write_csv(rows, columns, stream, tty=tty)
    return write_jsonl(rows, columns, stream, tty=tty)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside `path`, renamed to it when the block ends without an error
    (removed otherwise): an export never leaves a half-written file."""
    if path.is_dir():
        raise ChangeoverError(f"{path}: is a directory")
    if not path.parent.is_dir():
        raise ChangeoverError(f"{path}: no such directory {str(path.parent)!r}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise ChangeoverError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise ChangeoverError(
            f"{path}: export failed ({exc.strerror or exc}); nothing written"
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_file(rows, columns, fmt: str, path: Path) -> int:
    first = next(rows, None)  # fail before touching the disk if the table cannot be built
    rows = _chain(first, rows)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            return write_parquet(rows, columns, tmp)
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            return _write_stream(rows, columns, fmt, f)


def _chain(first: dict | None, rest: Iterator[dict]) -> Iterator[dict]:
    if first is not None:
        yield first
        yield from rest
