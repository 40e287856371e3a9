"""Reading import files: CSV, JSONL and Parquet in chunks of text columns, and the problems found.

Each chunk is a polars DataFrame of text columns plus LINE: for CSV the physical line where
the record starts (quoted fields may span lines; the header is line 1), for JSONL the
physical line, for Parquet the 1-based row. Nothing here raises on bad data: problems go to
a Sink, which keeps the first few and counts the rest.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl

from changeover.core.types import ChangeoverError

MAX_SHOWN = 50
CHUNK_ROWS = 100_000  # rows read at a time, so memory stays bounded however large the file
FORMATS = ("csv", "jsonl", "parquet")
LINE = "__line"
BAD = (
    "\x00<wrong type>"  # stands in for a nested value already reported, so it is not reported twice
)
NESTED = "a list or object where a single value was expected"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file; str() is "file:line: column: message"."""

    file: str
    line: int  # 0 = the file as a whole
    column: str
    message: str
    unit: str = "line"  # "line", or "row" for Parquet

    def __str__(self) -> str:
        if self.line <= 0:
            where = f"{self.file}:"
        elif self.unit == "line":
            where = f"{self.file}:{self.line}:"
        else:
            where = f"{self.file}: {self.unit} {self.line}:"
        return (
            f"{where} {self.column}: {self.message}" if self.column else f"{where} {self.message}"
        )


class ImportFailed(ChangeoverError):
    """The file has problems; nothing was written. `problems` holds the first MAX_SHOWN."""

    def __init__(self, problems: list[Problem], total: int | None = None):
        self.problems = problems[:MAX_SHOWN]
        self.total = len(problems) if total is None else total
        super().__init__(self._text())

    def _text(self) -> str:
        files = sorted({p.file for p in self.problems})
        head = f"{', '.join(files)}: " if files else ""
        noun = "problem" if self.total == 1 else "problems"
        lines = [f"{head}{self.total:,} {noun}, nothing imported:"]
        lines += [f"  {p}" for p in self.problems]
        if self.total > len(self.problems):
            lines.append(f"  ... and {self.total - len(self.problems):,} more")
        return "\n".join(lines)


class Sink:
    """Collects problems: counts all of them, keeps the first few per check and chunk."""

    def __init__(self, file: str, unit: str = "line"):
        self.file, self.unit = file, unit
        self.kept: list[Problem] = []
        self.total = 0

    def add(self, line: int, column: str, message: str, file: str | None = None) -> None:
        self.total += 1
        if len(self.kept) < 20 * MAX_SHOWN:
            unit = self.unit if file is None else "line"
            self.kept.append(Problem(file or self.file, line, column, message, unit))

    def rows(self, bad: pl.DataFrame, column: str, message: Callable[..., str]) -> None:
        """One problem per row of `bad` (which has LINE); builds objects only for the first few."""
        if bad.height == 0:
            return
        self.total += bad.height
        for row in bad.head(MAX_SHOWN).iter_rows(named=True):
            self.kept.append(Problem(self.file, row[LINE], column, message(row), self.unit))

    def raise_if_any(self) -> None:
        if self.total:
            shown = sorted(self.kept, key=lambda p: (p.file, p.line))[:MAX_SHOWN]
            raise ImportFailed(shown, self.total)


def all_rows(parts: list[pl.DataFrame], sink: Sink) -> pl.DataFrame:
    """The checked chunks as one frame. With no rows it raises, with the problems found so far
    or else "no rows"."""
    if not parts or sum(p.height for p in parts) == 0:
        if not sink.total:
            sink.add(0, "", "no rows")
        sink.raise_if_any()
    return pl.concat(parts)


def show(value: object, width: int = 40) -> str:
    """A value quoted for a message: repr() escapes control characters, long text is cut."""
    if not isinstance(value, str):
        return str(value)[:width]
    text = value
    if len(text) > width:
        text = text[: width - 1] + "…"
    return repr(text)


def listing(names: list[str] | tuple[str, ...], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# ---- reading: chunks of text columns plus LINE -------------------------------------------


def format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ImportFailed(
                [Problem(str(path), 0, "", f"unknown format {fmt!r} (use {', '.join(FORMATS)})")]
            )
        return fmt
    ext = path.suffix.lower()
    by_ext = {
        ".csv": "csv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "jsonl",
        ".parquet": "parquet",
        ".pq": "parquet",
    }
    if ext not in by_ext:
        raise ImportFailed(
            [
                Problem(
                    str(path),
                    0,
                    "",
                    f"cannot tell the format from {ext or 'no extension'!r}: "
                    f"use --format {'|'.join(FORMATS)}",
                )
            ]
        )
    return by_ext[ext]


def scan_bytes(path: Path, sink: Sink) -> None:
    """Report invalid UTF-8 and NUL bytes with the physical line they are on."""
    line, carry = 1, b""
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 24)
            data = carry + block
            cut = len(data) if not block else data.rfind(b"\n") + 1
            seg, carry = data[:cut], data[cut:]
            if seg:
                _scan_segment(seg, line, sink)
                line += seg.count(b"\n")
            if not block:
                return


def _scan_segment(seg: bytes, first_line: int, sink: Sink) -> None:
    try:
        seg.decode("utf-8")
        if b"\x00" not in seg:
            return
    except UnicodeDecodeError:
        pass
    for k, raw in enumerate(seg.split(b"\n")):
        if b"\x00" in raw:
            sink.add(
                first_line + k, "encoding", f"NUL byte at byte {raw.index(b'\x00') + 1} of the line"
            )
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            sink.add(
                first_line + k,
                "encoding",
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)",
            )


class Source(Protocol):
    """Where an import's rows come from: `open` gives (header or None, chunks with LINE)."""

    name: str
    header_line: int

    def sink(self) -> Sink: ...

    def open(
        self, sink: Sink, chunk_rows: int, checking: bool = True
    ) -> tuple[list[str] | None, Iterator[pl.DataFrame]]: ...


class FileSource:
    """A responses file as the source of an import's rows (core/importing/inspect_logs.py has another)."""

    def __init__(self, path: Path, fmt: str | None):
        self.path, self.fmt, self.name = path, format_of(path, fmt), path.name
        self.header_line = 1 if self.fmt == "csv" else 0  # where header problems are reported

    def sink(self) -> Sink:
        return Sink(str(self.path), "row" if self.fmt == "parquet" else "line")

    def open(
        self, sink: Sink, chunk_rows: int, checking: bool = True
    ) -> tuple[list[str] | None, Iterator[pl.DataFrame]]:
        """(header, chunks) as `open_chunks`; the checking pass also scans the bytes."""
        if checking:
            if not self.path.is_file():
                raise ImportFailed([Problem(str(self.path), 0, "", "no such file")])
            if self.fmt != "parquet":
                scan_bytes(self.path, sink)
        return open_chunks(self.path, self.fmt, sink, chunk_rows, checking)


def open_chunks(
    path: Path, fmt: str, sink: Sink, chunk_rows: int, checking: bool = True
) -> tuple[list[str] | None, Iterator[pl.DataFrame]]:
    """(header columns, or None for JSONL; chunks with LINE). Read errors go to the sink.

    `checking` adds the checks polars cannot make (JSONL: duplicate keys, nested values);
    the second, writing pass of an import skips them."""
    try:
        if fmt == "csv":
            lf = pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy", raise_if_empty=False)
            return lf.collect_schema().names(), _csv_chunks(lf, sink, chunk_rows)
        if fmt == "parquet":
            lf = pl.scan_parquet(path)
            return lf.collect_schema().names(), _parquet_chunks(lf, sink, chunk_rows)
        return None, _jsonl_chunks(path, sink, chunk_rows, checking)
    except Exception as exc:  # polars/pyarrow raise many kinds; the user needs the message
        sink.add(0, "", f"cannot read as {fmt.upper()}: {_first_line(exc)}")
        return [], iter(())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def record_span(cols: list[str]) -> pl.Expr:
    """The physical lines each CSV record spans: 1 + the newlines inside its quoted fields."""
    newlines = [pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in cols]
    return (pl.sum_horizontal(newlines) + 1).cast(pl.Int64)


def _csv_chunks(lf: pl.LazyFrame, sink: Sink, chunk_rows: int) -> Iterator[pl.DataFrame]:
    next_line = 2  # the header is line 1
    try:
        for df in lf.collect_batches(chunk_size=chunk_rows):
            cols = df.columns
            df = df.with_columns(record_span(cols).alias("__span"))
            df = df.with_columns(
                (pl.col("__span").cum_sum() - pl.col("__span") + next_line).alias(LINE)
            )
            next_line += int(df["__span"].sum())
            # A file saved on Windows ends every line with \r\n, also inside quoted fields:
            # those become \n like the record ends (a lone \r stays, and shows as ␍).
            df = df.drop("__span").with_columns(
                pl.col(cols).str.replace_all("\r\n", "\n", literal=True)
            )
            yield df.filter(~pl.all_horizontal(pl.col(cols).is_null()))  # blank lines
    except Exception as exc:
        sink.add(0, "", f"cannot read as CSV: {_first_line(exc)}")


def _parquet_chunks(lf: pl.LazyFrame, sink: Sink, chunk_rows: int) -> Iterator[pl.DataFrame]:
    row = 1
    try:
        for df in lf.collect_batches(chunk_size=chunk_rows):
            yield df.with_columns(pl.int_range(row, row + df.height, dtype=pl.Int64).alias(LINE))
            row += df.height
    except Exception as exc:
        sink.add(0, "", f"cannot read as Parquet: {_first_line(exc)}")


def _jsonl_chunks(
    path: Path, sink: Sink, chunk_rows: int, checking: bool
) -> Iterator[pl.DataFrame]:
    lineno = 0
    with open(path, "rb") as f:
        while True:
            raw_lines = f.readlines(chunk_rows * 256)
            if not raw_lines:
                return
            nums, keep = [], []
            for k, raw in enumerate(raw_lines, start=lineno + 1):
                if raw.strip():
                    nums.append(k)
                    keep.append(raw if raw.endswith(b"\n") else raw + b"\n")
            lineno += len(raw_lines)
            if keep:
                yield _jsonl_frame(keep, nums, sink, checking)


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


MAX_DEPTH = 64  # no import row or spec needs more; deeper is an attack or a mistake


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether lists/dicts nest deeper than `limit` (iterative: safe on any depth). Parsers
    stop at Python's recursion limit, which other code may have raised: this check does not
    depend on it."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((x, depth + 1) for x in item)
    return False


def _parse_line(raw: bytes, no: int, sink: Sink) -> dict | None:
    """One JSONL line with Python's json (stricter than polars: duplicate keys are refused)."""
    try:
        obj = json.loads(raw.decode("utf-8", "replace"), object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        sink.add(no, str(exc), "appears twice in this JSON object")
        return None
    except json.JSONDecodeError as exc:
        sink.add(no, "", f"malformed JSON at column {exc.colno}: {exc.msg}")
        return None
    except RecursionError:
        sink.add(no, "", "JSON nested too deeply")
        return None
    except ValueError:  # an integer past Python's 4,300-digit limit for text conversion
        sink.add(no, "", "a number of more than 4,300 digits")
        return None
    if too_deep(obj):
        sink.add(no, "", "JSON nested too deeply")
        return None
    if not isinstance(obj, dict):
        sink.add(no, "", f"not a JSON object but {type(obj).__name__}")
        return None
    if _SURROGATE_ESCAPE.search(raw) and (where := _lone_surrogate(obj)) is not None:
        sink.add(no, where, "a lone surrogate escape (\\ud800-\\udfff) is not text")
        return None
    return obj


# a \uD800-\uDFFF escape: a pair of them is one character, one alone is no text at all
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(obj: dict) -> str | None:
    """The key under which a JSON object holds a lone surrogate ("" for a key itself)."""
    for k, v in obj.items():
        if not _is_text(k):
            return ""
        if isinstance(v, str) and not _is_text(v):
            return k
    return None


def _is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _jsonl_frame(keep: list[bytes], nums: list[int], sink: Sink, checking: bool) -> pl.DataFrame:
    try:
        df = pl.read_ndjson(io.BytesIO(b"".join(keep)), infer_schema_length=None)
    except Exception:  # a malformed line, or types polars cannot reconcile: line by line
        return _jsonl_slow(keep, nums, sink)
    if not checking:
        return df.with_columns(pl.Series(LINE, nums, dtype=pl.Int64))
    # polars keeps the first of duplicate keys and turns a nested value in a text column into
    # its JSON text: Python's json finds both.
    objs = [_parse_line(raw, no, sink) for raw, no in zip(keep, nums)]
    for c, dtype in df.schema.items():
        if dtype != pl.String:
            continue
        cand = df.select(pl.arg_where(pl.col(c).str.contains(r"^\s*[\[{]"))).to_series().to_list()
        nested = [
            i for i in cand if objs[i] is not None and isinstance(objs[i].get(c), dict | list)
        ]
        for i in nested:
            sink.add(nums[i], c, NESTED)
        if nested:
            df = df.with_columns(
                pl.when(pl.int_range(pl.len()).is_in(nested))
                .then(pl.lit(BAD))
                .otherwise(pl.col(c))
                .alias(c)
            )
    return df.with_columns(pl.Series(LINE, nums, dtype=pl.Int64))


def _jsonl_slow(keep: list[bytes], nums: list[int], sink: Sink) -> pl.DataFrame:
    records, lines = [], []
    for no, raw in zip(nums, keep):
        obj = _parse_line(raw, no, sink)
        if obj is None:
            continue
        rec = {}
        for k, v in obj.items():
            if isinstance(v, dict | list):
                sink.add(no, k, NESTED)
                v = BAD
            elif isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, float) and v.is_integer():
                v = str(int(v))
            elif v is not None:
                v = str(v)
            rec[k] = v
        records.append(rec)
        lines.append(no)
    cols = list(dict.fromkeys(k for r in records for k in r))
    data = {c: pl.Series(c, [r.get(c) for r in records], dtype=pl.String) for c in cols}
    return pl.DataFrame(data).with_columns(pl.Series(LINE, lines, dtype=pl.Int64))
