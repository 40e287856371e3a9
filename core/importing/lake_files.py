"""A dataset of judged responses: Parquet or CSV files in a folder or a glob, hive-partitioned
(`month=2026-11/region=DACH/part-0.parquet`) or not, read lazily as text columns by polars.

Files whose columns differ in type are scanned in groups of one schema and stacked as text,
so a column written as integers one month and as text the next reads the same. A value a path
gives (`region=DACH`) fills the column of that name where the file has none. Problems name
the file relative to the dataset's folder and its row (CSV: its line), as a file import does.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import polars as pl

from changeover.core.importing.read import (
    BAD,
    NESTED,
    ImportFailed,
    Problem,
    Sink,
    listing,
    record_span,
)
from changeover.core.importing.values import NOT_UTF8, utf8_or_bad

FILE = "__file"
ROW = "__row"
DATA_EXTS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class DataFile:
    path: str  # as polars opens it
    name: str  # relative to the dataset's folder: what problems and provenance show
    size: int
    keys: tuple[tuple[str, str | None], ...] = ()  # key=value folders on its path

    def key(self, name: str) -> str | None:
        return dict(self.keys).get(name)


@dataclass
class Dataset:
    """The files of a dataset, one format, and the period chosen from it (if any)."""

    location: str
    fmt: str
    files: list[DataFile]
    schemas: dict[str, dict[str, pl.DataType]] = field(default_factory=dict)  # path -> schema

    def sink(self) -> Sink:
        return Sink(self.location, "row" if self.fmt == "parquet" else "line")

    def columns(self) -> set[str]:
        """Every column some file has, or some path gives."""
        names = {c for s in self.schemas.values() for c in s}
        return names | {k for f in self.files for k, _ in f.keys}

    def fingerprint(self) -> str:
        """sha256 over the files' names and sizes (the counts are added by the caller)."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.name):
            h.update(f"{f.name}\0{f.size}\n".encode())
        return h.hexdigest()


def _fail(location: str, message: str) -> ImportFailed:
    return ImportFailed([Problem(location, 0, "", message)])


def _hive_keys(rel: Path) -> tuple[tuple[str, str | None], ...]:
    keys = []
    for part in rel.parent.parts:
        if "=" in part:
            k, v = part.split("=", 1)
            value = unquote(v)
            keys.append((unquote(k), None if value == HIVE_NULL else value))
    return tuple(keys)


def _is_data(path: Path) -> bool:
    return path.suffix.lower() in DATA_EXTS and not path.name.startswith((".", "_"))


def find_dataset(location: str | Path | Sequence[str | Path]) -> Dataset:
    """The data files of a folder (recursively), a glob, a file, or a list of files (a glob the
    shell expanded). One format per dataset; hidden files and `_SUCCESS`-style markers are
    skipped."""
    if isinstance(location, str | Path):
        text = str(location)
        if any(ch in text for ch in "*?["):
            paths = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
            root = Path(_magic_free_prefix(text))
        elif Path(text).is_dir():
            root = Path(text)
            paths = sorted(p for p in root.rglob("*") if p.is_file())
        elif Path(text).is_file():
            root, paths = Path(text).parent, [Path(text)]
        else:
            raise _fail(text, "no such file or folder")
    else:
        paths = [Path(p) for p in location]
        text = " ".join(str(p) for p in location)
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise _fail(missing[0], "no such file")
        root = (
            Path(os.path.commonpath([str(p.resolve().parent) for p in paths])) if paths else Path()
        )
        paths = [p.resolve() for p in paths]
    data = [p for p in paths if p.is_file() and _is_data(p)]
    if not data:
        raise _fail(text, "no Parquet or CSV files here (*.parquet, *.pq, *.csv)")
    formats = sorted({DATA_EXTS[p.suffix.lower()] for p in data})
    if len(formats) > 1:
        raise _fail(text, f"holds both {' and '.join(formats)} files: one format per dataset")
    files = []
    for p in data:
        try:
            rel = p.resolve().relative_to(root.resolve())
        except ValueError:
            rel = Path(p.name)
        files.append(DataFile(str(p), rel.as_posix(), p.stat().st_size, _hive_keys(rel)))
    return Dataset(text, formats[0], files)


def _magic_free_prefix(pattern: str) -> str:
    """The folder part of a glob before its first wildcard (where hive keys start)."""
    parts = Path(pattern).parts
    keep = []
    for part in parts:
        if any(ch in part for ch in "*?["):
            break
        keep.append(part)
    return str(Path(*keep)) if keep else "."


def read_schemas(ds: Dataset, sink: Sink) -> None:
    """Each file's columns and types (Parquet: from its footer; CSV: its header, all text)."""
    for f in ds.files:
        try:
            if ds.fmt == "parquet":
                schema = dict(pl.read_parquet_schema(f.path))
            else:
                lf = pl.scan_csv(f.path, infer_schema=False, encoding="utf8-lossy")
                schema = dict(lf.collect_schema())
        except Exception as exc:  # polars raises many kinds; the user needs the message
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            sink.add(0, "", f"cannot read as {ds.fmt.upper()}: {first}", file=f.name)
            continue
        ds.schemas[f.path] = schema


def choose_period(ds: Dataset, key: str, period: str | None) -> str | None:
    """Keep the files of one period when the path says it (`month=2026-11/...`).

    Without `period`, a dataset whose paths hold several values of `key` is refused with
    the values; a dataset whose files hold `key` as a column is filtered row by row later."""
    values = {f.key(key) for f in ds.files if any(k == key for k, _ in f.keys)}
    if not values:
        return period
    if period is None:
        if len(values) > 1:
            shown = listing(sorted(str(v) for v in values))
            raise _fail(
                ds.location, f"holds several periods ({key}: {shown}): import one with --period"
            )
        return next(iter(values))
    kept = [f for f in ds.files if f.key(key) == period]
    if not kept:
        shown = listing(sorted(str(v) for v in values))
        raise _fail(ds.location, f"has no period {period!r} ({key}: {shown})")
    ds.files = kept
    return period


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.String:
        return col
    if dtype.is_float():  # 3.0 is the level "3", as in a file import
        whole = col.is_finite() & (col == col.round()) & (col.abs() < 1e15)
        return (
            pl.when(whole)
            .then(col.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(col.cast(pl.String))
            .alias(name)
        )
    return col.cast(pl.String, strict=False).alias(name)


def _report_not_utf8(f: DataFile, column: str, sink: Sink) -> None:
    """Each row of a Parquet file whose bytes in `column` are not UTF-8 text."""
    values = pl.read_parquet(f.path, columns=[column])[column]
    for row, v in enumerate(utf8_or_bad(values).to_list(), start=1):
        if v == BAD:
            sink.total += 1
            sink.kept.append(Problem(f.name, row, column, NOT_UTF8, sink.unit))


def _groups(ds: Dataset) -> list[tuple[dict[str, pl.DataType], list[DataFile]]]:
    """The readable files in groups of one schema, each in dataset order."""
    groups: dict[tuple, list[DataFile]] = {}
    for f in ds.files:
        schema = ds.schemas.get(f.path)
        if schema is not None:
            groups.setdefault(tuple(schema.items()), []).append(f)
    return [(dict(items), files) for items, files in groups.items()]


def frame(ds: Dataset, wanted: Sequence[str], sink: Sink) -> pl.LazyFrame | None:
    """The dataset as one lazy frame of text columns `wanted` (absent ones null), plus FILE
    (the path as opened) and ROW (0-based within its group of files; see `locate`)."""
    parts = []
    for schema, files in _groups(ds):
        paths = [f.path for f in files]
        keys = {k for f in files for k, _ in f.keys}
        native = {tuple(k for k, _ in f.keys) for f in files}
        hive = ds.fmt == "parquet" and len(native) == 1 and bool(keys)  # polars reads the path
        if ds.fmt == "parquet":
            lf = pl.scan_parquet(
                paths,
                include_file_paths=FILE,
                row_index_name=ROW,
                hive_partitioning=hive,
                hive_schema={k: pl.String() for k in keys} if hive else None,
                try_parse_hive_dates=False,
            )
            if hive:
                schema = {**{k: pl.String() for k in keys}, **schema}
        else:
            lf = pl.scan_csv(
                paths,
                infer_schema=False,
                encoding="utf8-lossy",
                include_file_paths=FILE,
                row_index_name=ROW,
                raise_if_empty=False,
            )
        exprs = []
        for c in wanted:
            dtype = schema.get(c)
            if dtype is not None and dtype.is_nested():
                for f in files:
                    sink.add(0, c, f"{NESTED} (the column holds lists or structs)", file=f.name)
                exprs.append(pl.lit(None, dtype=pl.String).alias(c))
            elif dtype == pl.Binary:  # polars' cast stops at the first byte that is not UTF-8
                for f in files:
                    _report_not_utf8(f, c, sink)
                exprs.append(pl.col(c).map_batches(utf8_or_bad, return_dtype=pl.String).alias(c))
            elif dtype is not None:
                exprs.append(_as_text(c, dtype))
            elif any(f.key(c) is not None for f in files):  # from the path, file by file
                by_file = {f.path: f.key(c) for f in files}
                exprs.append(
                    pl.col(FILE)
                    .replace_strict(by_file, default=None, return_dtype=pl.String)
                    .alias(c)
                )
            else:
                exprs.append(pl.lit(None, dtype=pl.String).alias(c))
        parts.append(lf.select(pl.col(FILE), pl.col(ROW).cast(pl.Int64), *exprs))
    if not parts:
        return None
    return pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]


def locate(ds: Dataset, hits: pl.DataFrame) -> list[tuple[str, int]]:
    """(file name, row or line) of rows given by FILE and ROW: the 1-based row of a Parquet
    file, or the physical line where a CSV record starts (quoted fields may span lines)."""
    by_path = {f.path: f for f in ds.files}
    start: dict[str, int] = {}  # first ROW of each file within its group
    needed = set(hits[FILE].to_list())
    for _, files in _groups(ds):
        offset = 0
        for f in files:
            if not needed - start.keys():
                break
            start[f.path] = offset
            offset += _row_count(f, ds.fmt)
    lines: dict[str, list[int]] = {}
    out = []
    for path, row in hits.select(FILE, ROW).iter_rows():
        f = by_path[path]
        r = row - start.get(path, 0)
        if ds.fmt == "csv":
            if path not in lines:
                lines[path] = _csv_lines(f.path)
            out.append((f.name, lines[path][r] if r < len(lines[path]) else r + 2))
        else:
            out.append((f.name, r + 1))
    return out


def _row_count(f: DataFile, fmt: str) -> int:
    lf = (
        pl.scan_parquet(f.path)
        if fmt == "parquet"
        else pl.scan_csv(f.path, infer_schema=False, encoding="utf8-lossy", raise_if_empty=False)
    )
    return int(lf.select(pl.len()).collect().item())


def _csv_lines(path: str) -> list[int]:
    """The physical line where each record of a CSV file starts (the header is line 1)."""
    lf = pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy", raise_if_empty=False)
    spans = lf.select(record_span(lf.collect_schema().names()).alias("s")).collect()["s"]
    return (spans.cum_sum() - spans + 2).to_list()
