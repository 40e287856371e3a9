"""Import Inspect AI eval logs (`.eval`, and Inspect's `.json`) through Inspect's own log API.

One log is one model's run of a task. Each sample becomes a response: the sample id is the
item, its input the question, its target the reference, the log's model the model, the output's
completion the response; each metric's scorer value is the judge's verdict (mapped to a level
through the metric's `judge_map`, like any file), a numeric value also its score, the scorer's
explanation its rationale; a sample metadata field is the region. The spec's `[inspect]` table
says which scorer feeds which metric and where the region is (README, "Inspect AI logs").

The rows then take the path every import takes (core/importing/responses.py `import_rows`): the same
checks, and one transaction or nothing. Problems name the log and the sample:
`run-a.eval: sample q7: judge_correct: ...`. Several logs (one per model) import together.
Inspect is an optional extra: without it the import says how to install it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from changeover.core.importing.read import (
    BAD,
    LINE,
    ImportFailed,
    Problem,
    Sink,
    listing,
    show,
)
from changeover.core.importing.responses import CHUNK_ROWS, ImportReport, import_rows, resolve_spec
from changeover.core.importing.spec import _key_lines, _line_of
from changeover.core.store import Store
from changeover.core.types import ChangeoverError, EvalSet

INSTALL = "reading Inspect AI logs needs the inspect extra: pip install 'changeover[inspect]'"
_OPTION_KEYS = {"region", "epoch", "scorers", "models"}
# Inspect's JSON log is one indented object that starts with its schema version; a JSONL
# file's first line is a whole object, so it never starts with a lone "{" line like this.
_JSON_LOG = re.compile(rb'^\s*\{[ \t]*\r?\n\s*"version"\s*:\s*\d+\s*,\s*"status"\s*:')
# The row checks name other rows as "<unit> <LINE>"; this unit is rewritten to "log sample id".
_REF_UNIT = "@sample"
_REF = re.compile(re.escape(_REF_UNIT) + r" (\d+)")


class InspectMissing(ChangeoverError):
    """inspect-ai is not installed."""


@dataclass(frozen=True)
class SampleProblem(Problem):
    """A problem with one sample of a log: "LOG: sample ID: column: message"."""

    sample: str = ""

    def __str__(self) -> str:
        column = f" {self.column}:" if self.column else ""
        return f"{self.file}: {self.sample}:{column} {self.message}"


@dataclass(frozen=True)
class InspectOptions:
    """The spec's [inspect] table: where each metric's verdict and each sample's region are."""

    region: tuple[str, ...] | None = None  # a path into the sample, e.g. ("metadata", "region")
    epoch: int | None = None  # which epoch to import when a log has several
    scorers: dict[str, str] = field(default_factory=dict)  # metric -> "scorer" or "scorer.key"
    models: dict[str, str] = field(default_factory=dict)  # the log's model -> the name here


def is_inspect_log(path: Path) -> bool:
    """`.eval`, or a `.json` that starts like Inspect's JSON log (JSONL never does)."""
    ext = path.suffix.lower()
    if ext == ".eval":
        return True
    if ext != ".json" or not path.is_file():
        return False
    with open(path, "rb") as f:
        return bool(_JSON_LOG.match(f.read(512)))


def _inspect_api() -> Any:
    try:
        import inspect_ai.log as api
    except ImportError:
        raise InspectMissing(INSTALL) from None
    return api


# ---- the spec's [inspect] table ----------------------------------------------------------


def load_options(path: str | Path, es: EvalSet) -> InspectOptions:
    """The [inspect] table of a spec file (all defaults when there is none), checked against
    the spec's metrics and regions; problems name the spec's line, as every spec problem does."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")  # load_spec has read and checked this file already
    table = tomllib.loads(text).get("inspect", {})
    lines = _key_lines(text)
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(str(path), _line_of(lines, key), key, message))

    if not isinstance(table, dict):
        bad("inspect", "must be a table: [inspect]")
        raise ImportFailed(problems)
    for key in table:
        if key not in _OPTION_KEYS:
            bad(f"inspect.{key}", f"unknown key (expected {', '.join(sorted(_OPTION_KEYS))})")
    region = table.get("region")
    if region is not None and (
        not isinstance(region, str) or not re.fullmatch(r"metadata(\.[^.\s]+)+", region)
    ):
        bad("inspect.region", f"{show(region)} is not a sample metadata field like metadata.region")
    epoch = table.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1):
        bad("inspect.epoch", f"{show(epoch)} is not an epoch number (1, 2, ...)")
    maps = {}
    for key in ("scorers", "models"):
        value = table.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            bad(f"inspect.{key}", "must be a table of names: [inspect." + key + "]")
            value = {}
        maps[key] = dict(value)
    options = InspectOptions(
        region=tuple(region.split(".")) if isinstance(region, str) else None,
        epoch=epoch,
        scorers=maps["scorers"],
        models=maps["models"],
    )
    _check_options(es, options, str(path), lines, problems)
    return options


def _check_options(
    es: EvalSet,
    options: InspectOptions,
    spec_file: str,
    lines: dict[str, int] | None = None,
    problems: list[Problem] | None = None,
) -> None:
    """Scorers named for metrics the spec has, and a region field when there are several."""
    problems = [] if problems is None else problems

    def bad(key: str, message: str) -> None:
        problems.append(Problem(spec_file, _line_of(lines or {}, key), key, message))

    metrics = [m.name for m in es.metrics]
    for name in options.scorers:
        if name not in metrics:
            bad(f"inspect.scorers.{name}", f"not a metric of the spec ({', '.join(metrics)})")
    if options.region is None and len(es.regions) > 1:
        bad(
            "inspect.region",
            f"required: the spec has {len(es.regions)} regions; name the sample metadata "
            'field that holds each sample\'s region, e.g. region = "metadata.region"',
        )
    if problems:
        raise ImportFailed(problems)


# ---- reading logs into rows --------------------------------------------------------------


class _SampleSink(Sink):
    """Problems located as "LOG: sample ID" instead of a line: LINE numbers the samples of all
    logs in order, and `where[LINE - 1]` says which log and sample each one is."""

    def __init__(self, name: str, where: list[tuple[str, str]]):
        super().__init__(name, _REF_UNIT)
        self.where = where

    def add(self, line: int, column: str, message: str, file: str | None = None) -> None:
        start = len(self.kept)
        super().add(line, column, message, file)
        self._locate(start)

    def rows(self, bad: pl.DataFrame, column: str, message) -> None:
        start = len(self.kept)
        super().rows(bad, column, message)
        self._locate(start)

    def _ref(self, match: re.Match) -> str:
        log, sample = self.where[int(match.group(1)) - 1]
        return f"{log} {sample}"

    def _locate(self, start: int) -> None:
        for k in range(start, len(self.kept)):
            p = self.kept[k]
            message = _REF.sub(self._ref, p.message)
            if p.line > 0 and p.file == self.file:
                log, sample = self.where[p.line - 1]
                self.kept[k] = SampleProblem(log, p.line, p.column, message, "sample", sample)
            elif message != p.message:
                self.kept[k] = Problem(p.file, p.line, p.column, message, p.unit)


class InspectSource:
    """Inspect logs as the source of an import's rows (core/importing/read.py `Source`)."""

    def __init__(self, paths: Sequence[str | Path], es: EvalSet, options: InspectOptions):
        self.paths = [Path(p) for p in paths]
        self.es, self.options = es, options
        self.name = listing([p.name for p in self.paths], limit=3)
        self.header_line = 0
        self.where: list[tuple[str, str]] = []
        self.frames: list[pl.DataFrame] | None = None
        self.columns = ["item_id", "region", "question", "reference", "model", "response"]
        for m in es.metrics:
            self.columns += [f"judge_{m.name}", f"judge_{m.name}_score"]
            self.columns += [f"judge_{m.name}_rationale"]

    def sink(self) -> Sink:
        return _SampleSink(self.name, self.where)

    def open(
        self, sink: Sink, chunk_rows: int, checking: bool = True
    ) -> tuple[list[str] | None, Iterator[pl.DataFrame]]:
        """The logs are read once, on the checking pass; the writing pass reuses the rows."""
        if self.frames is None:
            api = _inspect_api()
            self.frames = [self._read(api, path, sink) for path in self.paths]
        return list(self.columns), iter(f for f in self.frames if f.height)

    def _read(self, api: Any, path: Path, sink: Sink) -> pl.DataFrame:
        empty = pl.DataFrame(schema={c: pl.String for c in self.columns} | {LINE: pl.Int64})

        def whole(message: str, column: str = "") -> pl.DataFrame:
            sink.add(0, column, message, file=str(path))
            return empty

        if not path.is_file():
            return whole("no such file")
        try:
            log = api.read_eval_log(
                str(path), exclude_fields={"messages", "events", "store", "attachments"}
            )
        except Exception as exc:  # Inspect raises many kinds; the user needs the message
            text = str(exc).strip().splitlines()
            return whole(
                f"cannot read as an Inspect log: {text[0] if text else type(exc).__name__}"
            )
        if log.status != "success":
            return whole(
                f"the log's status is {log.status!r}, not 'success': Inspect did not finish "
                "this run, so samples may be missing"
            )
        if not log.samples:
            return whole("the log holds no samples (was it written with log_samples=False?)")
        epochs = log.eval.config.epochs or 1
        epoch = self.options.epoch
        if epoch is None and epochs > 1:
            return whole(
                f"the log has {epochs} epochs; changeover keeps one response per item and "
                "model: set epoch = N under [inspect]",
                "epoch",
            )
        if epochs == 1:
            epoch = 1  # `epoch` picks among several; a log of one epoch has only that one
        elif epoch is not None and epoch > epochs:
            return whole(f"the log has {epochs} epochs, not {epoch}", "epoch")
        model = self.options.models.get(log.eval.model, log.eval.model)
        scorers = self._scorers(log, path, sink)
        region = self.options.region
        if region and not any(_lookup(s.metadata, region)[0] for s in log.samples):
            keys = sorted({k for s in log.samples for k in (s.metadata or {})})
            sink.add(
                0,
                "region",
                f"no sample has {'.'.join(region)} (metadata fields: {listing(keys) or 'none'})",
                file=str(path),
            )
            region = None  # reported once for the log, not once per sample
        rows: dict[str, list] = {c: [] for c in [*self.columns, LINE]}
        order = {sid: k for k, sid in enumerate(log.eval.dataset.sample_ids or ())}
        # a log keeps samples in the order they finished; problems read best in dataset order
        for sample in sorted(log.samples, key=lambda s: order.get(s.id, len(order))):
            if sample.epoch != epoch:
                continue
            label = f"sample {_id_text(sample.id)}" + (f" (epoch {epoch})" if epochs > 1 else "")
            self.where.append((str(path), label))
            line = len(self.where)
            row = self._row(sample, model, scorers, sink, line)
            row["region"] = self._region(sample, sink, line) if region else BAD
            for c in self.columns:
                rows[c].append(row.get(c))
            rows[LINE].append(line)
        return pl.DataFrame(rows, schema=empty.schema)

    def _scorers(self, log: Any, path: Path, sink: Sink) -> dict[str, tuple[str, str | None]]:
        """metric -> (scorer, key in a dict value or None); a scorer the log lacks is reported
        once for the log, and its metric's values are left out of the row checks."""
        names = sorted({k for s in log.samples for k in (s.scores or {})})
        out: dict[str, tuple[str, str | None]] = {}
        for m in self.es.metrics:
            wanted = self.options.scorers.get(m.name, m.name)
            scorer, _, key = wanted.partition(".")
            if scorer not in names:
                sink.add(
                    0,
                    f"judge_{m.name}",
                    f"no scorer {scorer!r} in this log (scorers: {listing(names)}); "
                    f'name it under [inspect.scorers]: {m.name} = "SCORER"',
                    file=str(path),
                )
            out[m.name] = (scorer, key or None) if scorer in names else ("", None)
        return out

    def _row(
        self, sample: Any, model: str, scorers: dict, sink: Sink, line: int
    ) -> dict[str, str | None]:
        row: dict[str, str | None] = {
            "item_id": str(sample.id),
            "question": _text_of(sample.input),
            "reference": _target_text(sample.target),
            "model": model,
            "response": sample.output.completion if sample.output else None,
        }
        if sample.error is not None:
            first = (sample.error.message or "").strip().splitlines()
            why = show(first[0], 120) if first else "no message"
            sink.add(line, "response", f"the sample failed in Inspect: {why}")
            # its missing output and scores follow from the failure: not reported again
            return row | {"response": BAD} | {f"judge_{m}": BAD for m in scorers}
        for metric, (scorer, key) in scorers.items():
            if not scorer:
                row[f"judge_{metric}"] = BAD
                continue
            score = (sample.scores or {}).get(scorer)
            if score is None:
                continue  # left empty: the row checks report it, or store it as missing
            value = score.value
            if key is not None:
                if not isinstance(value, dict) or key not in value:
                    sink.add(
                        line,
                        f"judge_{metric}",
                        f"scorer {scorer!r} gave {show(value)}, which has no key {key!r}",
                    )
                    row[f"judge_{metric}"] = BAD
                    continue
                value = value[key]
            if isinstance(value, dict | list):
                sink.add(
                    line,
                    f"judge_{metric}",
                    f"scorer {scorer!r} gave {show(value)}: name one of its values under "
                    f'[inspect.scorers], e.g. {metric} = "{scorer}.KEY"',
                )
                row[f"judge_{metric}"] = BAD
                continue
            row[f"judge_{metric}"] = _value_text(value)
            if isinstance(value, int | float) and not isinstance(value, bool):
                row[f"judge_{metric}_score"] = _value_text(value)
            row[f"judge_{metric}_rationale"] = score.explanation
        return row

    def _region(self, sample: Any, sink: Sink, line: int) -> str | None:
        if self.options.region is None:
            return self.es.regions[0].name  # a spec with one region (checked up front)
        found, value = _lookup(sample.metadata, self.options.region)
        if not found:
            sink.add(line, "region", f"the sample has no {'.'.join(self.options.region)}")
            return BAD
        if isinstance(value, dict | list) or value is None:
            sink.add(line, "region", f"{show(value)} is not a region name")
            return BAD
        return _value_text(value)


def _id_text(sample_id: object) -> str:
    """A sample id for a message: as it is, or quoted with escapes when it is not plain text."""
    text = str(sample_id)
    return text if text.isprintable() and " " not in text and len(text) <= 60 else show(text, 60)


def _lookup(metadata: dict | None, path: tuple[str, ...]) -> tuple[bool, Any]:
    """(found, value) of a path like ("metadata", "a", "b") in a sample's metadata."""
    value: Any = metadata or {}
    for part in path[1:]:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _value_text(value: object) -> str:
    """A scalar as the text the row checks read: 3.0 -> "3", True -> "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _text_of(value: Any) -> str:
    """A sample's input: its text, or the text of its user messages one after another."""
    if isinstance(value, str):
        return value
    parts = [m.text for m in value if getattr(m, "role", "") == "user" and m.text]
    return "\n\n".join(parts)


def _target_text(value: Any) -> str | None:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value) or None
    return value or None


# ---- entry point -------------------------------------------------------------------------


def import_logs(
    store: Store,
    paths: Sequence[str | Path],
    spec: str | Path | EvalSet,
    options: InspectOptions | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Check the samples of every log, then write them all in one transaction (or nothing).
    `options` default to the spec file's [inspect] table (or to defaults for an EvalSet)."""
    es, spec_file = resolve_spec(spec)
    if options is None and not isinstance(spec, EvalSet):
        options = load_options(spec, es)
    else:
        options = options or InspectOptions()
        _check_options(es, options, spec_file)
    if not paths:
        raise ChangeoverError("no Inspect logs given")
    _inspect_api()
    return import_rows(store, InspectSource(paths, es, options), (es, spec_file), chunk_rows)
