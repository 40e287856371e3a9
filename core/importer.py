"""Import: parse, check, write. Responses, judge verdicts and human labels from CSV, JSONL or Parquet.

Every row is checked before anything is written; all problems are collected with their line
(CSV: the physical line where the record starts, JSONL: the physical line, Parquet: the row)
and nothing is stored when there is any. Files are read in chunks, twice (check, then write),
so memory stays bounded; the write is one transaction through `Store.importing`.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from core.store import Store, now
from core.types import DIRECTIONS, ChangeoverError, EvalSet, Metric, Region

MAX_SHOWN = 50
CHUNK_ROWS = 200_000
FORMATS = ("csv", "jsonl", "parquet")
RESERVED_KEYS = frozenset("usq?")  # the rate screen's own keys
LINE = "__line"
BAD = "\x00<wrong type>"  # stands in for a nested value already reported, so it is not reported twice


# ---- problems and reports ----------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
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
        return f"{where} {self.column}: {self.message}" if self.column else f"{where} {self.message}"


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


@dataclass
class ImportReport:
    eval_set: EvalSet
    rows: int
    added: dict[str, int]
    missing_judgments: dict[str, int]  # metric -> unmappable (or empty) judge values stored as missing
    file: str = ""
    items: int = 0
    models: tuple[str, ...] = ()
    labels: int = 0  # human labels in the file
    kept_labels: int = 0  # file labels not added: the workspace already holds that rater's own label
    kind: str = "responses"  # or "labels" (import_labels)

    def summary(self) -> str:
        """A short human text: what was added, what was already there, what became missing."""
        a = self.added
        if self.kind == "responses":
            text = (f"imported {a.get('responses', 0):,} responses "
                    f"({a.get('items', 0):,} items, {a.get('models', 0)} models), "
                    f"{a.get('judgments', 0):,} judgments, {a.get('ratings', 0):,} labels "
                    f"from {self.rows:,} rows of {self.file or 'the file'} into "
                    f"{self.eval_set.name!r}")
            if self.rows and not any(a.get(k, 0) for k in ("responses", "judgments", "ratings")):
                text = (f"nothing new: the {self.rows:,} rows of {self.file or 'the file'} are "
                        f"already in {self.eval_set.name!r}")
        else:
            text = (f"imported {a.get('ratings', 0):,} labels from {self.rows:,} rows of "
                    f"{self.file or 'the file'} into {self.eval_set.name!r}")
            already = self.labels - a.get("ratings", 0)
            if already > 0:
                text += f" ({already:,} already in the workspace)"
        if self.kept_labels:
            text += (f"; {self.kept_labels:,} labels already given by the same rater in the "
                     "workspace were left as they are")
        missing = {k: v for k, v in self.missing_judgments.items() if v}
        if missing:
            total = sum(missing.values())
            per = ", ".join(f"{k}: {v:,}" for k, v in missing.items())
            text += f"; {total:,} judge values unmappable -> missing ({per})"
        return text


class _Sink:
    """Collects problems: counts all of them, keeps the first few per check and chunk."""

    def __init__(self, file: str, unit: str = "line"):
        self.file, self.unit = file, unit
        self.kept: list[Problem] = []
        self.total = 0

    def add(self, line: int, column: str, message: str) -> None:
        self.total += 1
        if len(self.kept) < 20 * MAX_SHOWN:
            self.kept.append(Problem(self.file, line, column, message, self.unit))

    def rows(self, bad: pl.DataFrame, column: str, message: Callable[[dict], str]) -> None:
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


def _show(value: object, width: int = 40) -> str:
    if not isinstance(value, str):
        return str(value)[:width]
    text = value
    if len(text) > width:
        text = text[: width - 1] + "…"
    return repr(text)


def _listing(names: list[str] | tuple[str, ...], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# ---- the spec ----------------------------------------------------------------------------

_KEY_RE = re.compile(r'^\s*(?:"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*=')
_TOP_KEYS = {"name", "description", "incumbent", "judge", "regions", "metrics"}
_METRIC_KEYS = {"name", "levels", "direction", "margin", "keys", "guideline", "unmapped",
                "judge_map", "pass_level"}
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _key_lines(text: str) -> dict[str, int]:
    """Where each key of a TOML spec sits (first line), as dotted paths like metrics[1].margin."""
    lines: dict[str, int] = {}
    table, metric = "", -1
    for no, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if s.startswith("[[") and s[2:].split("]")[0].strip() == "metrics":
            metric += 1
            table = f"metrics[{metric}]"
            lines.setdefault(table, no)
            continue
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", s)
        if header:
            name = header.group(1).strip('"')
            table = f"metrics[{metric}].{name.split('.', 1)[1]}" if name.startswith("metrics.") else name
            lines.setdefault(table, no)
            continue
        m = _KEY_RE.match(raw)
        if m:
            key = next(g for g in m.groups() if g is not None)
            lines.setdefault(f"{table}.{key}" if table else key, no)
    return lines


def _line_of(lines: dict[str, int], path: str) -> int:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return 0


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def load_spec(path: str | Path) -> EvalSet:
    """Read and validate an eval-set spec (TOML); the EvalSet has id 0 until saved."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ImportFailed([Problem(str(path), 0, "", f"cannot read the spec: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ImportFailed([Problem(str(path), line, "", "not valid UTF-8")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        if m:
            msg = f"column {m.group(2)}: {msg}"
        raise ImportFailed([Problem(str(path), int(m.group(1)) if m else 0, "", f"invalid TOML: {msg}")]) from None
    return _spec_from_dict(data, str(path), _key_lines(text))


def _spec_from_dict(data: dict, file: str, lines: dict[str, int]) -> EvalSet:
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(file, _line_of(lines, key), key, message))

    def text_of(d: dict, key: str, where: str, required: bool = False, default: str = "") -> str:
        v = d.get(key)
        if v is None:
            if required:
                bad(where, "required")
            return default
        if not isinstance(v, str) or (required and not v.strip()):
            bad(where, f"{_show(v)} is not a non-empty text" if required else f"{_show(v)} is not a text")
            return default
        return v.strip() if required else v

    for key in data:
        if key not in _TOP_KEYS:
            bad(key, f"unknown key (expected {', '.join(sorted(_TOP_KEYS))})")
    name = text_of(data, "name", "name", required=True)
    incumbent = text_of(data, "incumbent", "incumbent", required=True)
    description = text_of(data, "description", "description")
    judge = text_of(data, "judge", "judge", default="judge") or "judge"

    regions: list[Region] = []
    raw_regions = data.get("regions")
    if raw_regions is None:
        bad("regions", "required: a [regions] table of region = monthly traffic")
    elif not isinstance(raw_regions, dict) or not raw_regions:
        bad("regions", "must be a non-empty table of region = monthly traffic")
    else:
        for rname, traffic in raw_regions.items():
            if not rname.strip():
                bad(f"regions.{rname}", "empty region name")
            elif not _is_number(traffic) or traffic <= 0:
                bad(f"regions.{rname}", f"traffic {_show(traffic)} is not a positive number")
            else:
                regions.append(Region(rname, float(traffic)))

    metrics: list[Metric] = []
    raw_metrics = data.get("metrics")
    if raw_metrics is None:
        bad("metrics", "required: at least one [[metrics]] table")
    elif not isinstance(raw_metrics, list) or not raw_metrics or not all(isinstance(m, dict) for m in raw_metrics):
        bad("metrics", "must be one or more [[metrics]] tables")
    else:
        seen: set[str] = set()
        for i, m in enumerate(raw_metrics):
            metric = _metric_from_dict(m, f"metrics[{i}]", bad, text_of)
            if metric is None:
                continue
            if metric.name in seen:
                bad(f"metrics[{i}].name", f"metric {metric.name!r} appears twice")
                continue
            seen.add(metric.name)
            metrics.append(metric)
    if problems:
        raise ImportFailed(problems)
    return EvalSet(id=0, name=name, incumbent=incumbent, regions=tuple(regions),
                   metrics=tuple(metrics), description=description, judge=judge)


def _metric_from_dict(m: dict, where: str, bad, text_of) -> Metric | None:
    errors: list[str] = []

    def fail(key: str, message: str) -> None:
        errors.append(key)
        bad(f"{where}.{key}" if key else where, message)

    for key in m:
        if key not in _METRIC_KEYS:
            fail(key, f"unknown key (expected {', '.join(sorted(_METRIC_KEYS))})")
    name = text_of(m, "name", f"{where}.name", required=True)
    if name and not _NAME_RE.match(name):
        fail("name", f"{_show(name)}: use letters, digits and _ (it names the columns judge_{name}, human_{name})")
    levels = m.get("levels")
    if levels is None:
        fail("levels", 'required, e.g. levels = ["no", "yes"] (lowest first)')
        levels = []
    elif (not isinstance(levels, list) or len(levels) < 2
          or not all(isinstance(x, str) and x.strip() for x in levels)):
        fail("levels", "must be a list of at least two non-empty texts, lowest first")
        levels = []
    elif len({x.strip().casefold() for x in levels}) != len(levels):
        fail("levels", "levels must differ (case-insensitively)")
        levels = []
    levels = tuple(x.strip() for x in levels)
    direction = m.get("direction", "higher")
    if direction not in DIRECTIONS:
        fail("direction", f"{_show(direction)} is not one of {', '.join(DIRECTIONS)}")
    margin = m.get("margin", 0.0)
    if not _is_number(margin) or margin < 0:
        fail("margin", f"{_show(margin)} is not a number >= 0")
        margin = 0.0
    guideline = text_of(m, "guideline", f"{where}.guideline")
    unmapped = m.get("unmapped", "error")
    if unmapped not in ("error", "missing"):
        fail("unmapped", f"{_show(unmapped)} is not one of error, missing")
    keys: tuple[str, ...] = ()
    if "keys" in m:
        raw = m["keys"]
        if not isinstance(raw, list) or not all(isinstance(k, str) and len(k) == 1 for k in raw):
            fail("keys", "must be a list of single characters, one per level")
        elif levels and len(raw) != len(levels):
            fail("keys", f"{len(raw)} keys for {len(levels)} levels")
        elif len(set(raw)) != len(raw):
            fail("keys", "keys must differ")
        elif RESERVED_KEYS & set(raw):
            fail("keys", f"{', '.join(sorted(RESERVED_KEYS & set(raw)))} are the rate screen's own "
                         "keys (u undo, s skip, q quit, ? help)")
        else:
            keys = tuple(raw)
    elif levels:
        if tuple(x.casefold() for x in levels) == ("no", "yes"):
            keys = ("n", "y")
        elif len(levels) <= 9:
            keys = tuple(str(i) for i in range(1, len(levels) + 1))
        else:
            fail("keys", f"{len(levels)} levels: give one key per level (keys = [...])")
    judge_map: list[tuple[str, str]] = []
    raw_map = m.get("judge_map", {})
    if not isinstance(raw_map, dict):
        fail("judge_map", "must be a table of raw judge value = level")
    else:
        folded = {x.casefold(): x for x in levels}
        for raw_value, label in raw_map.items():
            if not isinstance(label, str) or label.strip().casefold() not in folded:
                if levels:
                    fail(f"judge_map.{raw_value}", f"{_show(label)} is not one of the levels {', '.join(levels)}")
                continue
            judge_map.append((raw_value.strip(), folded[label.strip().casefold()]))
    pass_level = None
    if "pass_level" in m:
        raw = m["pass_level"]
        folded = [x.casefold() for x in levels]
        if len(levels) <= 2 and levels:
            fail("pass_level", "only for scales with more than two levels")
        elif str(raw).strip().casefold() in folded:
            pass_level = folded.index(str(raw).strip().casefold())
        elif levels:
            fail("pass_level", f"{_show(raw)} is not one of the levels {', '.join(levels)}")
    if errors or not name or not levels:
        return None
    return Metric(name=name, levels=levels, direction=direction, margin=float(margin),
                  guideline=guideline, keys=keys, judge_map=tuple(judge_map), unmapped=unmapped,
                  pass_level=pass_level)


# ---- reading: chunks of text columns plus LINE -------------------------------------------


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ImportFailed([Problem(str(path), 0, "", f"unknown format {fmt!r} (use {', '.join(FORMATS)})")])
        return fmt
    ext = path.suffix.lower()
    by_ext = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}
    if ext not in by_ext:
        raise ImportFailed([Problem(str(path), 0, "", f"cannot tell the format from {ext or 'no extension'!r}: "
                                                      f"use --format {'|'.join(FORMATS)}")])
    return by_ext[ext]


def _scan_bytes(path: Path, sink: _Sink) -> None:
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


def _scan_segment(seg: bytes, first_line: int, sink: _Sink) -> None:
    try:
        seg.decode("utf-8")
        if b"\x00" not in seg:
            return
    except UnicodeDecodeError:
        pass
    for k, raw in enumerate(seg.split(b"\n")):
        if b"\x00" in raw:
            sink.add(first_line + k, "encoding", f"NUL byte at byte {raw.index(b'\x00') + 1} of the line")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            sink.add(first_line + k, "encoding",
                     f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)")


def _open_chunks(path: Path, fmt: str, sink: _Sink, chunk_rows: int
                 ) -> tuple[list[str] | None, Iterator[pl.DataFrame]]:
    """(header columns, or None for JSONL; chunks with LINE). Read errors go to the sink."""
    try:
        if fmt == "csv":
            lf = pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy", raise_if_empty=False)
            return lf.collect_schema().names(), _csv_chunks(lf, sink, chunk_rows)
        if fmt == "parquet":
            lf = pl.scan_parquet(path)
            return lf.collect_schema().names(), _parquet_chunks(lf, sink, chunk_rows)
        return None, _jsonl_chunks(path, sink, chunk_rows)
    except Exception as exc:  # polars/pyarrow raise many kinds; the user needs the message
        sink.add(0, "", f"cannot read as {fmt.upper()}: {_first_line(exc)}")
        return [], iter(())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _csv_chunks(lf: pl.LazyFrame, sink: _Sink, chunk_rows: int) -> Iterator[pl.DataFrame]:
    next_line = 2  # the header is line 1
    try:
        for df in lf.collect_batches(chunk_size=chunk_rows):
            cols = df.columns
            # A record spans 1 + (newlines inside its quoted fields) physical lines.
            span = pl.sum_horizontal(
                [pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in cols]) + 1
            df = df.with_columns(span.cast(pl.Int64).alias("__span"))
            df = df.with_columns((pl.col("__span").cum_sum() - pl.col("__span") + next_line).alias(LINE))
            next_line += int(df["__span"].sum())
            df = df.drop("__span")
            yield df.filter(~pl.all_horizontal(pl.col(cols).is_null()))  # blank lines
    except Exception as exc:
        sink.add(0, "", f"cannot read as CSV: {_first_line(exc)}")


def _parquet_chunks(lf: pl.LazyFrame, sink: _Sink, chunk_rows: int) -> Iterator[pl.DataFrame]:
    row = 1
    try:
        for df in lf.collect_batches(chunk_size=chunk_rows):
            yield df.with_columns(pl.int_range(row, row + df.height, dtype=pl.Int64).alias(LINE))
            row += df.height
    except Exception as exc:
        sink.add(0, "", f"cannot read as Parquet: {_first_line(exc)}")


def _jsonl_chunks(path: Path, sink: _Sink, chunk_rows: int) -> Iterator[pl.DataFrame]:
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
                yield _jsonl_frame(keep, nums, sink)


def _jsonl_frame(keep: list[bytes], nums: list[int], sink: _Sink) -> pl.DataFrame:
    try:
        df = pl.read_ndjson(io.BytesIO(b"".join(keep)), infer_schema_length=None)
    except Exception:  # a malformed line, or types polars cannot reconcile: line by line
        return _jsonl_slow(keep, nums, sink)
    # polars turns a nested value in a text column into its JSON text: find those honestly.
    for c, dtype in df.schema.items():
        if dtype != pl.String:
            continue
        cand = df.select(pl.arg_where(pl.col(c).str.contains(r"^\s*[\[{]"))).to_series().to_list()
        nested = [i for i in cand if isinstance(json.loads(keep[i]).get(c), dict | list)]
        for i in nested:
            sink.add(nums[i], c, "a list or object where a single value was expected")
        if nested:
            df = df.with_columns(pl.when(pl.int_range(pl.len()).is_in(nested)).then(pl.lit(BAD))
                                 .otherwise(pl.col(c)).alias(c))
    return df.with_columns(pl.Series(LINE, nums, dtype=pl.Int64))


def _jsonl_slow(keep: list[bytes], nums: list[int], sink: _Sink) -> pl.DataFrame:
    records, lines = [], []
    for no, raw in zip(nums, keep):
        try:
            obj = json.loads(raw.decode("utf-8", "replace"))
        except json.JSONDecodeError as exc:
            sink.add(no, "", f"malformed JSON at column {exc.colno}: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            sink.add(no, "", f"not a JSON object but {type(obj).__name__}")
            continue
        rec = {}
        for k, v in obj.items():
            if isinstance(v, dict | list):
                sink.add(no, k, "a list or object where a single value was expected")
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


def _as_text(df: pl.DataFrame, sink: _Sink) -> pl.DataFrame:
    """Every column as text (3.0 -> "3"); nested values are reported and replaced by BAD."""
    exprs = []
    for c, dtype in df.schema.items():
        if c == LINE or dtype == pl.String:
            continue
        col = pl.col(c)
        if dtype.is_nested():
            bad = df.filter(col.is_not_null()).select(LINE)
            sink.rows(bad, c, lambda r: "a list or object where a single value was expected")
            exprs.append(pl.when(col.is_not_null()).then(pl.lit(BAD)).otherwise(None).cast(pl.String).alias(c))
        elif dtype.is_float():
            whole = col.is_finite() & (col == col.round()) & (col.abs() < 1e15)
            exprs.append(pl.when(whole).then(col.cast(pl.Int64, strict=False).cast(pl.String))
                         .otherwise(col.cast(pl.String)).alias(c))
        else:
            exprs.append(col.cast(pl.String, strict=False).alias(c))
    return df.with_columns(exprs) if exprs else df


def _strip(cols: list[str]) -> list[pl.Expr]:
    """Key columns compared as trimmed text; blank is missing."""
    out = []
    for c in cols:
        s = pl.col(c).str.strip_chars()
        out.append(pl.when(s == "").then(None).otherwise(s).alias(c))
    return out


# ---- import_file -------------------------------------------------------------------------

TEXT_COLS = ("item_id", "region", "question", "model", "response")
NESTED = "a list or object where a single value was expected"


class _Columns:
    """The columns a responses file may have under a spec, and how their values map to levels."""

    def __init__(self, es: EvalSet):
        self.es = es
        self.judge = {m.name: f"judge_{m.name}" for m in es.metrics}
        self.score = {m.name: f"judge_{m.name}_score" for m in es.metrics}
        self.rationale = {m.name: f"judge_{m.name}_rationale" for m in es.metrics}
        self.human = {m.name: f"human_{m.name}" for m in es.metrics}
        self.required = [*TEXT_COLS, *self.judge.values()]
        self.known = {*self.required, "reference", "rater", *self.score.values(),
                      *self.rationale.values(), *self.human.values()}
        self._cache: dict[str, dict[str, int | None]] = {m.name: {} for m in es.metrics}

    def unknown(self, names: list[str]) -> list[str]:
        return [c for c in names if c.startswith(("judge_", "human_")) and c not in self.known]

    def levels(self, s: pl.Series, metric: Metric) -> pl.Series:
        """Level index per value (null where empty or unmappable); mapping cached per value."""
        cache = self._cache[metric.name]
        for v in s.drop_nulls().unique().to_list():
            if v not in cache:
                cache[v] = None if v == BAD else _level_of(metric, v)
        return s.replace_strict(cache, default=None, return_dtype=pl.Int64) if cache else \
            pl.Series(s.name, [None] * len(s), dtype=pl.Int64)

    def prepare(self, df: pl.DataFrame, sink: _Sink) -> pl.DataFrame:
        """Text columns, absent ones as null, key columns trimmed."""
        df = _as_text(df, sink)
        absent = [c for c in self.known if c not in df.columns]
        if absent:
            df = df.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in absent])
        return df.with_columns(_strip(["item_id", "region", "model", "rater"]))


def _level_of(metric: Metric, value: str) -> int | None:
    level = metric.level_of(value)
    if level is None and re.fullmatch(r"\s*-?\d+\.0*\s*", value):  # "3.0" in a CSV means 3
        level = metric.level_of(value.strip().split(".")[0])
    if level is None and len(value.strip()) == 1:  # a key typed in the other case: "Y" for "y"
        folded = [k.casefold() for k in metric.keys]
        if folded.count(value.strip().casefold()) == 1:
            level = folded.index(value.strip().casefold())
    return level


def _header_problems(cols: _Columns, names: list[str], sink: _Sink, line: int) -> set[str]:
    """Missing and unknown columns; returns the required columns that are missing."""
    missing = [c for c in cols.required if c not in names]
    for c in missing:
        sink.add(line, c, "missing column")
    for c in cols.unknown(names):
        sink.add(line, c, f"no metric {c.split('_', 1)[1]!r} in the spec "
                          f"(metrics: {', '.join(m.name for m in cols.es.metrics)})")
    if "rater" not in names and any(c in names for c in cols.human.values()):
        sink.add(line, "rater", "missing column: human_ labels need the rater who gave them")
    return set(missing)


def _hash_of(col: str) -> pl.Expr:
    """Hash of a text column for comparisons; null where the value is empty or already reported."""
    c = pl.col(col)
    return pl.when(c.is_null() | (c == BAD)).then(None).otherwise(c.hash())


def _check_chunk(df: pl.DataFrame, cols: _Columns, sink: _Sink, skip: set[str]) -> pl.DataFrame:
    """Row checks of one chunk; returns the keys the whole-file checks need."""
    es, unit = cols.es, sink.unit
    for c in TEXT_COLS:
        if c in skip:
            continue
        empty = pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")
        sink.rows(df.filter(empty).select(LINE), c, lambda r, c=c: f"empty {c}" if c == "response" else "empty")
    regions = list(es.region_names)
    sink.rows(df.filter(pl.col("region").is_not_null() & (pl.col("region") != BAD)
                        & ~pl.col("region").is_in(regions)).select(LINE, "region"), "region",
              lambda r: f"{_show(r['region'])} is not a region of the spec ({_listing(regions)})")
    keys = [pl.col(LINE), pl.col("item_id"), pl.col("model"), pl.col("rater"), pl.col("region"),
            _hash_of("question").alias("qh"), _hash_of("response").alias("rh")]
    judged = []
    for m in es.metrics:
        jc, sc = cols.judge[m.name], cols.score[m.name]
        judged += [jc, sc, cols.rationale[m.name]]
        level = cols.levels(df[jc], m)
        raw = pl.col(jc)
        unknown = raw.is_not_null() & (raw != BAD) & level.is_null()
        names = ", ".join(m.levels)
        if m.unmapped == "error" and jc not in skip:
            sink.rows(df.filter(unknown).select(LINE, jc), jc, lambda r, jc=jc, m=m, names=names: (
                f"{_show(r[jc])} is not a level of {m.name} ({names}); map it in [metrics.judge_map] "
                'or set unmapped = "missing"'))
            sink.rows(df.filter(raw.is_null()).select(LINE), jc, lambda r: (
                'empty judge value (set unmapped = "missing" to store it as missing)'))
        keys.append((level.is_null() & (raw != BAD).fill_null(True)).alias(f"__miss_{m.name}"))
        score = pl.col(sc)
        sink.rows(df.filter(score.is_not_null() & (score != BAD)
                            & score.cast(pl.Float64, strict=False).is_null()).select(LINE, sc), sc,
                  lambda r, sc=sc: f"{_show(r[sc])} is not a number")
        hc = cols.human[m.name]
        hlevel = cols.levels(df[hc], m)
        sink.rows(df.filter(pl.col(hc).is_not_null() & (pl.col(hc) != BAD) & hlevel.is_null())
                  .select(LINE, hc), hc,
                  lambda r, hc=hc, m=m, names=names: f"{_show(r[hc])} is not a level of {m.name} ({names})")
    labelled = pl.any_horizontal([pl.col(h).is_not_null() for h in cols.human.values()])
    if "rater" not in skip:
        sink.rows(df.filter(labelled & pl.col("rater").is_null()).select(LINE), "rater",
                  lambda r: "empty, but the row has human_ labels")
    keys.append(pl.struct(judged).hash().alias("jh"))
    del unit
    return df.select(keys)


def _check_file(keys: pl.DataFrame, cols: _Columns, sink: _Sink, held: pl.DataFrame | None) -> None:
    """Checks across rows: duplicates, rows of one response that disagree, items that disagree.

    Window functions run only on the rows concerned (responses with several rows, items whose
    rows differ), so a clean million-row file costs two hash passes.
    """
    u = sink.unit
    im, imr = ["item_id", "model"], ["item_id", "model", "rater"]
    k = keys.filter(pl.col("item_id").is_not_null() & pl.col("model").is_not_null())
    multi = k.filter(pl.struct(im).is_duplicated())
    if multi.height:
        m = multi.with_columns(
            pl.int_range(pl.len()).over(imr).alias("_pk"), pl.col(LINE).first().over(imr).alias("_fk"),
            pl.int_range(pl.len()).over(im).alias("_pim"), pl.col(LINE).first().over(im).alias("_fim"),
            pl.col("rater").first().over(im).is_null().alias("_frnull"),
            (pl.col("rh") != pl.col("rh").first().over(im)).alias("_rdiff"),
            (pl.col("jh") != pl.col("jh").first().over(im)).alias("_jdiff"))
        dup_key = pl.col("_pk") > 0
        dup_im = ~dup_key & (pl.col("_pim") > 0) & (pl.col("rater").is_null() | pl.col("_frnull"))
        who = lambda r: f"item {r['item_id']}, model {r['model']}" + (  # noqa: E731
            f", rater {r['rater']}" if r["rater"] else "")
        sink.rows(m.filter(dup_key), "item_id", lambda r: f"duplicate of {u} {r['_fk']} ({who(r)})")
        sink.rows(m.filter(dup_im), "item_id", lambda r: (
            f"duplicate of {u} {r['_fim']} (item {r['item_id']}, model {r['model']}; rows of one "
            "response with several raters need a rater on each)"))
        same = ~dup_key & ~dup_im & (pl.col("_pim") > 0)
        sink.rows(m.filter(same & pl.col("_rdiff")), "response", lambda r: (
            f"differs from {u} {r['_fim']}, another row of this response (rows of one response may "
            "differ only in rater and human_ labels)"))
        sink.rows(m.filter(same & pl.col("_jdiff")), "judge_*", lambda r: (
            f"judge values differ from {u} {r['_fim']}, another row of this response"))
    k = k.with_columns(pl.when(pl.col("region") == BAD).then(None).otherwise(pl.col("region")).alias("region"))
    odd = (k.group_by("item_id").agg(pl.col("qh").drop_nulls().n_unique().alias("nq"),
                                     pl.col("region").drop_nulls().n_unique().alias("nr"))
           .filter((pl.col("nq") > 1) | (pl.col("nr") > 1)).select("item_id"))
    if odd.height:
        it = k.join(odd, on="item_id", how="semi").sort(LINE).with_columns(
            pl.col(LINE).first().over("item_id").alias("_fil"),
            (pl.col("qh") != pl.col("qh").drop_nulls().first().over("item_id")).alias("_qdiff"),
            pl.col("region").drop_nulls().first().over("item_id").alias("_freg"))
        sink.rows(it.filter(pl.col("_qdiff")), "question",
                  lambda r: f"item {r['item_id']} has a different question on {u} {r['_fil']}")
        sink.rows(it.filter(pl.col("region").is_in(list(cols.es.region_names)) & pl.col("_freg").is_not_null()
                            & (pl.col("region") != pl.col("_freg"))), "region",
                  lambda r: f"item {r['item_id']} is in {_show(r['_freg'])} on {u} {r['_fil']}")
    if held is not None and held.height:
        first = (k.unique("item_id", keep="first", maintain_order=True)
                 .join(held, on="item_id", how="inner").sort(LINE))
        sink.rows(first.filter(pl.col("qh") != pl.col("qh_held")), "question",
                  lambda r: f"item {r['item_id']} has a different question in the workspace")
        sink.rows(first.filter(pl.col("region").is_not_null() & (pl.col("region") != pl.col("region_held"))),
                  "region", lambda r: f"item {r['item_id']} is in {_show(r['region_held'])} in the workspace")


def _resolve_spec(spec: str | Path | EvalSet) -> tuple[EvalSet, str]:
    if isinstance(spec, EvalSet):
        return spec, "spec"
    return load_spec(spec), str(spec)


def _held_eval_set(store: Store, name: str) -> EvalSet | None:
    return next((e for e in store.eval_sets() if e.name == name), None)


def import_file(store: Store, path: str | Path, spec: str | Path | EvalSet, fmt: str | None = None,
                chunk_rows: int = CHUNK_ROWS) -> ImportReport:
    """Check every row of a responses file, then write it all in one transaction (or nothing)."""
    path = Path(path)
    es, spec_file = _resolve_spec(spec)
    fmt = _format_of(path, fmt)
    sink = _Sink(str(path), "row" if fmt == "parquet" else "line")
    if not path.is_file():
        raise ImportFailed([Problem(str(path), 0, "", "no such file")])
    held = _held_eval_set(store, es.name)
    if held is not None:
        for m in es.metrics:
            old = next((x for x in held.metrics if x.name == m.name), None)
            if old is not None and old.levels != m.levels:
                sink.add(0, f"metrics.{m.name}.levels", f"the workspace holds {m.name} with levels "
                         f"{', '.join(old.levels)}, not {', '.join(m.levels)} ({spec_file})")
    cols = _Columns(es)
    if fmt != "parquet":
        _scan_bytes(path, sink)
    header, chunks = _open_chunks(path, fmt, sink, chunk_rows)
    skip = set() if header is None else _header_problems(cols, header, sink, 1 if fmt == "csv" else 0)
    seen: set[str] = set(header or ())
    parts = []
    for df in chunks:
        seen.update(df.columns)
        parts.append(_check_chunk(cols.prepare(df, sink), cols, sink, skip))
    if header is None:
        for c in cols.unknown(sorted(seen - {LINE})):
            sink.add(0, c, f"no metric {c.split('_', 1)[1]!r} in the spec")
    keys = pl.concat(parts) if parts else None
    if keys is None or keys.height == 0:
        if not sink.total:
            sink.add(0, "", "no rows")
        sink.raise_if_any()
    held_items = None
    if held is not None:
        rows = store.item_index(held.id)
        if rows:
            held_items = pl.DataFrame(rows, schema={"item_id": pl.String, "region_held": pl.String,
                                                    "question": pl.String}, orient="row").select(
                "item_id", "region_held", pl.col("question").hash().alias("qh_held"))
    _check_file(keys, cols, sink, held_items)
    models = keys["model"].drop_nulls().unique(maintain_order=True).to_list()
    known_models = models + (store.models(held.id) if held is not None else [])
    if es.incumbent not in known_models:
        sink.add(0, "model", f"the incumbent {es.incumbent!r} ({spec_file}) has no responses "
                             f"(models: {_listing(models)})")
    sink.raise_if_any()

    first = keys.filter(pl.struct("item_id", "model").is_first_distinct())
    missing = {m.name: int(first[f"__miss_{m.name}"].sum()) for m in es.metrics}
    items = keys["item_id"].n_unique()
    n_rows = keys.height
    del keys, parts, first
    added, labels, kept = _write(store, path, fmt, es, cols, held, chunk_rows)
    saved = store.eval_set(es.name)
    return ImportReport(eval_set=saved, rows=n_rows, added=added, missing_judgments=missing,
                        file=path.name, items=items, models=tuple(models), labels=labels,
                        kept_labels=kept)


def _write(store: Store, path: Path, fmt: str, es: EvalSet, cols: _Columns, held: EvalSet | None,
           chunk_rows: int) -> tuple[dict[str, int], int, int]:
    """Second pass: stage every chunk, then save the eval set and merge in one transaction."""
    quiet = _Sink(str(path))
    given = same = None
    if held is not None:
        events = store.rating_keys(held.id)
        if events:
            ev = pl.DataFrame(events, orient="row", schema={
                "item_id": pl.String, "model": pl.String, "metric": pl.String, "rater": pl.String,
                "level": pl.Int64, "active": pl.Boolean})
            given = ev.select("item_id", "model", "metric", "rater").unique()
            same = ev.filter("active").drop("active").unique()
    stamp = now()
    labels = kept = 0
    with store.importing_eval_set(es) as batch:
        _, chunks = _open_chunks(path, fmt, quiet, chunk_rows)
        for raw in chunks:
            df = cols.prepare(raw, quiet)
            first = df.filter(pl.struct("item_id", "model").is_first_distinct())
            batch.add_responses(zip(*(first[c].to_list() for c in
                                      ("item_id", "region", "question", "reference", "model", "response"))))
            ids, models = first["item_id"].to_list(), first["model"].to_list()
            for m in es.metrics:
                jc = cols.judge[m.name]
                level = cols.levels(first[jc], m).to_list()
                score = first[cols.score[m.name]].cast(pl.Float64, strict=False).to_list()
                batch.add_judgments(zip(ids, models, _repeat(m.name), _repeat(es.judge), level,
                                        first[jc].to_list(), score, first[cols.rationale[m.name]].to_list()))
            for m in es.metrics:
                hc = cols.human[m.name]
                lab = df.filter(pl.col("rater").is_not_null() & pl.col(hc).is_not_null())
                if lab.height == 0:
                    continue
                lab = lab.select("item_id", "model", pl.lit(m.name).alias("metric"), "rater",
                                 cols.levels(lab[hc], m).alias("level"))
                labels += lab.height
                if given is not None:  # never add to, or revive, what a rater already said
                    held_same = lab.join(same, on=lab.columns, how="semi").height
                    before = lab.height
                    lab = lab.join(given, on=["item_id", "model", "metric", "rater"], how="anti")
                    kept += before - lab.height - held_same
                batch.add_ratings(zip(*(lab[c].to_list() for c in lab.columns), _repeat(stamp)))
        quiet.raise_if_any()  # the file changed between the passes: roll back, write nothing
    return dict(batch.added), labels, kept


def _repeat(value):
    import itertools

    return itertools.repeat(value)


# ---- import_labels -----------------------------------------------------------------------

LABEL_COLS = ("item_id", "model", "metric", "rater", "value")


def _pick_eval_set(store: Store, name: str | None) -> EvalSet:
    if name is not None:
        return store.eval_set(name)
    sets = store.eval_sets()
    if not sets:
        raise ChangeoverError(f"{store.path or 'workspace'}: no eval sets yet; import responses first")
    return sets[0]


def _iso(value: str) -> str | None:
    """An ISO 8601 time as a UTC timestamp like the store's own, or None if it is not one."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _label_chunk(df: pl.DataFrame, cols: _Columns, sink: _Sink, skip: set[str],
                 times: dict[str, str | None]) -> pl.DataFrame:
    es = cols.es
    df = _as_text(df, sink)
    absent = [c for c in (*LABEL_COLS, "created_at") if c not in df.columns]
    df = df.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in absent])
    df = df.with_columns(_strip([*LABEL_COLS, "created_at"]))
    for c in LABEL_COLS:
        if c not in skip:
            sink.rows(df.filter(pl.col(c).is_null()).select(LINE), c, lambda r: "empty")
    names = [m.name for m in es.metrics]
    metric = pl.col("metric")
    sink.rows(df.filter(metric.is_not_null() & (metric != BAD) & ~metric.is_in(names)).select(LINE, "metric"),
              "metric", lambda r: f"{_show(r['metric'])} is not a metric of {es.name!r} ({', '.join(names)})")
    level = pl.Series("level", [None] * df.height, dtype=pl.Int64)
    for m in es.metrics:
        level = df.select(pl.when(metric == m.name).then(cols.levels(df["value"], m))
                          .otherwise(level).alias("level")).to_series()
    df = df.with_columns(level)
    sink.rows(df.filter(metric.is_in(names) & pl.col("value").is_not_null() & (pl.col("value") != BAD)
                        & pl.col("level").is_null()).select(LINE, "metric", "value"), "value",
              lambda r: (f"{_show(r['value'])} is not a level of {r['metric']} "
                         f"({', '.join(es.metric(r['metric']).levels)})"))
    for v in df["created_at"].drop_nulls().unique().to_list():
        if v not in times:
            times[v] = _iso(v)
    df = df.with_columns(pl.col("created_at").replace_strict(times, default=None, return_dtype=pl.String)
                         .alias("stamp") if times else pl.lit(None, dtype=pl.String).alias("stamp"))
    sink.rows(df.filter(pl.col("created_at").is_not_null() & pl.col("stamp").is_null())
              .select(LINE, "created_at"), "created_at",
              lambda r: f"{_show(r['created_at'])} is not an ISO 8601 time (e.g. 2026-11-02T14:05:00Z)")
    return df.select(LINE, "item_id", "model", "metric", "rater", "level", "stamp")


def import_labels(store: Store, path: str | Path, eval_set: str | None = None, fmt: str | None = None,
                  chunk_rows: int = CHUNK_ROWS) -> ImportReport:
    """Human labels (item_id, model, metric, rater, value [, created_at]) for responses already
    in the workspace; all or nothing, and a file imported twice adds nothing."""
    path = Path(path)
    fmt = _format_of(path, fmt)
    es = _pick_eval_set(store, eval_set)
    sink = _Sink(str(path), "row" if fmt == "parquet" else "line")
    if not path.is_file():
        raise ImportFailed([Problem(str(path), 0, "", "no such file")])
    if fmt != "parquet":
        _scan_bytes(path, sink)
    header, chunks = _open_chunks(path, fmt, sink, chunk_rows)
    skip: set[str] = set()
    for c in LABEL_COLS:
        if header is not None and c not in header:
            sink.add(1 if fmt == "csv" else 0, c, "missing column")
            skip.add(c)
    cols, times = _Columns(es), {}
    parts = [_label_chunk(df, cols, sink, skip, times) for df in chunks]
    k = pl.concat(parts) if parts else None
    if k is None or k.height == 0:
        if not sink.total:
            sink.add(0, "", "no rows")
        sink.raise_if_any()
    k = k.filter(pl.all_horizontal(pl.col("item_id", "model", "metric", "rater", "level").is_not_null()))
    _check_labels(store, es, k, sink)
    sink.raise_if_any()
    k = k.unique(["item_id", "model", "metric", "rater"], keep="first", maintain_order=True)
    stamp = now()
    with store.importing(es.id) as batch:
        batch.add_ratings(zip(*(k[c].to_list() for c in ("item_id", "model", "metric", "rater", "level")),
                              k["stamp"].fill_null(stamp).to_list()))
    return ImportReport(eval_set=es, rows=sum(p.height for p in parts), added=dict(batch.added),
                        missing_judgments={}, file=path.name, labels=k.height, kind="labels")


def _check_labels(store: Store, es: EvalSet, k: pl.DataFrame, sink: _Sink) -> None:
    u, key = sink.unit, ["item_id", "model", "metric", "rater"]
    k = k.with_columns(pl.col(LINE).first().over(key).alias("_first"),
                       pl.col("level").first().over(key).alias("_flevel"))
    label = lambda r, c: es.metric(r["metric"]).levels[r[c]]  # noqa: E731
    sink.rows(k.filter(pl.col("level") != pl.col("_flevel")), "value", lambda r: (
        f"{label(r, 'level')} here but {label(r, '_flevel')} on {u} {r['_first']} "
        f"(item {r['item_id']}, model {r['model']}, {r['metric']}, rater {r['rater']})"))
    found = store.response_keys(es.id, k["item_id"].unique().to_list())
    have = pl.DataFrame(list(found), orient="row", schema={"item_id": pl.String, "model": pl.String})
    sink.rows(k.join(have, on=["item_id", "model"], how="anti").sort(LINE), "item_id", lambda r: (
        f"no response of model {r['model']!r} to item {r['item_id']!r} in eval set {es.name!r}"))
    events = [e for e in store.rating_keys(es.id) if e[5]]
    if events:
        held = pl.DataFrame([e[:5] for e in events], orient="row", schema={
            "item_id": pl.String, "model": pl.String, "metric": pl.String, "rater": pl.String,
            "held": pl.Int64})
        clash = k.join(held, on=key, how="inner").filter(pl.col("held") != pl.col("level"))
        sink.rows(clash.sort(LINE), "value", lambda r: (
            f"rater {r['rater']} already has the label {label(r, 'held')} for this response's "
            f"{r['metric']} in the workspace, not {label(r, 'level')}; retract it in the app first"))
