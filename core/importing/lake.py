"""Import at production scale: judged counts and a labelling sample from where the judged
responses live.

`import_dataset` reads a folder or glob of Parquet or CSV files lazily (core/importing/lake_files.py),
checks them and counts them with polars' streaming engine (core/importing/lake_scan.py), and stores the
counts per (metric, model, region, judge level) with their provenance plus a stratified sample
of `sample_per_cell` responses per (model, region) (core/importing/keep_sample.py): the only texts kept.
`import_counts` takes counts made by another engine (a warehouse's GROUP BY) and a sample file
in the responses-file format. Either way the eval set, its counts and its sample are written in
one transaction, or nothing is. The calibration model then reads the unlabelled counts as
"aggregate minus labelled" (core/model/counts.py).

A period (a month) is an eval set of its own, named `NAME@PERIOD`: labels of one period never
mix into another's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from changeover.core.importing.check import Columns
from changeover.core.importing.lake_files import (
    Dataset,
    choose_period,
    find_dataset,
    frame,
    read_schemas,
)
from changeover.core.importing.lake_scan import (
    Checker,
    check_items,
    check_rows,
    draw_sample,
    grouped,
    judged_counts,
    prepared,
)
from changeover.core.importing.read import LINE, ImportFailed, Problem, Sink, Source, listing
from changeover.core.importing.responses import ImportReport, held_eval_set, import_rows
from changeover.core.importing.spec import load_spec
from changeover.core.store import Store, now
from changeover.core.store.rows import EvalSetSource, JudgeLevelCount
from changeover.core.types import ChangeoverError, EvalSet

PERIOD_KEY = "month"


@dataclass
class LakeReport:
    """What a dataset or counts import did."""

    eval_set: EvalSet
    source: EvalSetSource
    sample: ImportReport
    stored: int  # responses the workspace keeps for the eval set now
    drawn_before: int = 0  # responses it kept before this import

    def summary(self) -> str:
        s, added = self.source, self.sample.added.get("responses", 0)
        what = (
            f"{s.rows:,} judged responses from {len(s.files):,} files of {s.location}"
            if s.kind == "dataset"
            else f"counts of {s.rows:,} judged responses from {s.location}"
        )
        period = f" (period {s.period})" if s.period else ""
        text = f"{what}{period} into {self.eval_set.name!r}: "
        if self.drawn_before and not added:
            return text + f"nothing new: its sample of {self.stored:,} responses is already there"
        text += f"kept {added:,} responses as the labelling sample"
        if s.kind == "dataset":
            text += f" ({s.sample_per_cell} per model and region, stratified by {s.stratify}'s judge level)"
        if self.drawn_before:
            text += f", {self.stored:,} in all"
        missing = {k: v for k, v in self.sample.missing_judgments.items() if v}
        if missing:
            text += "; judge values unmappable -> missing: " + ", ".join(
                f"{k}: {v:,}" for k, v in missing.items()
            )
        return text


class FrameSource:
    """A sample already in memory as the source of `importer.import_rows` (the same checks and
    the same all-or-nothing write as a file)."""

    header_line = 0

    def __init__(self, df: pl.DataFrame, name: str):
        self.df = df.with_columns(pl.int_range(1, df.height + 1, dtype=pl.Int64).alias(LINE))
        self.name = name

    def sink(self) -> Sink:
        return Sink(self.name, "row")

    def open(
        self, sink: Sink, chunk_rows: int, checking: bool = True
    ) -> tuple[list[str] | None, Iterator[pl.DataFrame]]:
        return [c for c in self.df.columns if c != LINE], iter([self.df])


def period_named(es: EvalSet, period: str | None) -> EvalSet:
    return dataclasses.replace(es, name=f"{es.name}@{period}") if period else es


def held_source(store: Store, es: EvalSet, fingerprint: str) -> EvalSetSource | None:
    """The source of the eval set of that name, if it exists: only the same data may add to it."""
    held = held_eval_set(store, es.name)
    if held is None:
        return None
    source = store.eval_set_source(held.id)
    if source is None:
        raise ChangeoverError(
            f"eval set {es.name!r} holds every response of a file import: import the dataset "
            "as another eval set (another name in the spec, or --period)"
        )
    if source.fingerprint != fingerprint:
        raise ChangeoverError(
            f"eval set {es.name!r} holds counts of other data ({source.rows:,} judged responses "
            f"from {source.location}, imported {source.created_at[:16]}): the data changed "
            "since. Import it as a new period (--period) or into another workspace"
        )
    return source


def write_sampled(
    store: Store,
    es: EvalSet,
    spec_file: str,
    sample: Source,
    source: EvalSetSource,
    counts: list[JudgeLevelCount],
    drawn_before: int,
) -> LakeReport:
    """The sample through the file import's checks and write, and the counts beside it: one
    transaction. Refused when the sample holds more responses of a stratum than the counts."""
    with store.write():
        report = import_rows(store, sample, (es, spec_file))
        saved = store.eval_set(es.name)
        store.save_aggregate(saved.id, source, counts)
        _check_sample_within(store, saved, counts, source.location)
        stored = store.stats(saved.id).responses
    return LakeReport(store.eval_set(saved.id), source, report, stored, drawn_before)


def _check_sample_within(
    store: Store, es: EvalSet, counts: list[JudgeLevelCount], location: str
) -> None:
    total = {(c.metric, c.model, c.region, c.level): c.n for c in counts}
    problems = []
    for row in store.judge_level_counts(es.id):  # what the responses table holds: the sample
        have = total.get((row.metric, row.model, row.region, row.level), 0)
        if row.n > have:
            level = "missing" if row.level is None else es.metric(row.metric).levels[row.level]
            problems.append(
                Problem(
                    location,
                    0,
                    row.metric,
                    f"the sample holds {row.n:,} responses of {row.model} in {row.region} judged "
                    f"{level}, the counts only {have:,}",
                )
            )
    if problems:
        raise ImportFailed(problems)


def counts_fingerprint(base: str, counts: list[JudgeLevelCount]) -> str:
    h = hashlib.sha256(base.encode())
    for c in sorted(
        counts, key=lambda c: (c.metric, c.model, c.region, c.level is None, c.level or 0)
    ):
        h.update(repr(tuple(c)).encode())
    return h.hexdigest()


# ---- a dataset -------------------------------------------------------------------------------


def import_dataset(
    store: Store,
    location: str | Path | Sequence[str | Path],
    spec: str | Path,
    *,
    sample_per_cell: int,
    period: str | None = None,
    period_key: str = PERIOD_KEY,
    seed: int | None = None,
    stratify: str | None = None,
) -> LakeReport:
    """Check and count a dataset of judged responses and keep a stratified sample of it (see
    the module docstring); all or nothing. Importing the same data again with a larger
    `sample_per_cell` draws more (a superset of what was kept)."""
    if sample_per_cell < 1:
        raise ChangeoverError(f"--sample-per-cell must be at least 1, not {sample_per_cell}")
    es = load_spec(spec)
    ds = find_dataset(location)
    period = choose_period(ds, period_key, period)
    sink = ds.sink()
    read_schemas(ds, sink)
    sink.raise_if_any()
    cols = Columns(es)
    _check_columns(ds, cols, sink)
    sink.raise_if_any()
    wanted = sorted(c for c in cols.known if c not in ("rater", *cols.human.values()))
    lf = frame(ds, [*wanted, *([period_key] if _period_column(ds, period_key) else [])], sink)
    sink.raise_if_any()
    assert lf is not None
    lf = prepared(lf)
    if _period_column(ds, period_key):
        lf, period = _rows_of_period(lf, ds, period_key, period)
    es = period_named(es, period)
    scored = {m.name for m in es.metrics if cols.score[m.name] in ds.columns()}
    table = grouped(lf, es, scored)
    check = Checker(ds, lf, sink)
    check_rows(check, table, es, cols.levels)
    models = table["model"].drop_nulls().unique().sort().to_list()
    if es.incumbent not in models:
        sink.add(
            0,
            "model",
            f"the incumbent {es.incumbent!r} has no responses (models: {listing(models)})",
        )
    base_seed = 0 if seed is None else seed
    check_items(check, base_seed)
    sink.raise_if_any()

    counts = judged_counts(table, es, cols.levels)
    rows = int(table["n"].sum())
    fingerprint = counts_fingerprint(ds.fingerprint(), counts)
    held = held_source(store, es, fingerprint)
    if held is not None:  # drawing more from the same data: the same seed and strata
        seed = held.seed if seed is None else seed
        if seed != held.seed or (stratify or held.stratify) != held.stratify:
            raise ChangeoverError(
                f"eval set {es.name!r} was sampled with seed {held.seed} by {held.stratify}: "
                "draw more with the same (leave out --seed and --stratify)"
            )
        sample_per_cell = max(sample_per_cell, held.sample_per_cell or 0)
    seed = base_seed if seed is None else seed
    metric = es.metric(stratify) if stratify else es.metrics[0]
    sample = draw_sample(lf, table, metric, sample_per_cell, seed, cols.levels, wanted)
    # Stored in a stable order (the incumbent first, as the faces show models) rather than
    # in key order, so the models and items read as in a file import.
    sample = sample.sort(pl.col("model") != es.incumbent, "model", "region", "item_id")
    stamp = now()
    source = EvalSetSource(
        kind="dataset",
        period=period,
        location=_absolute(location),
        files=tuple(f.name for f in ds.files),
        rows=rows,
        fingerprint=fingerprint,
        sample_per_cell=sample_per_cell,
        stratify=metric.name,
        seed=seed,
        engine=f"polars {pl.__version__}",
        spec=str(Path(spec).resolve()),
        created_at=held.created_at if held else stamp,
        updated_at=stamp,
    )
    before = store.stats(store.eval_set(es.name).id).responses if held else 0
    return write_sampled(
        store, es, str(spec), FrameSource(sample, ds.location), source, counts, before
    )


def _absolute(location: str | Path | Sequence[str | Path]) -> str:
    """The dataset as a command run from anywhere finds it (a folder, a glob or files)."""
    if isinstance(location, str | Path):
        return os.path.abspath(location)
    return " ".join(os.path.abspath(p) for p in location)


def _check_columns(ds: Dataset, cols: Columns, sink: Sink) -> None:
    """Per file: the required columns (from the file or its path), no unknown metric columns,
    and no human labels (a dataset's labels would not be a random sample: they come through
    `changeover import-labels` for the responses kept)."""
    line = 1 if ds.fmt == "csv" else 0
    for f in ds.files:
        schema = ds.schemas.get(f.path)
        if schema is None:
            continue
        names = set(schema) | {k for k, _ in f.keys}
        for c in cols.required:
            if c not in names:
                sink.add(line, c, "missing column", file=f.name)
        for c in cols.unknown(sorted(names)):
            sink.add(line, c, f"no metric {c.split('_', 1)[1]!r} in the spec", file=f.name)
        for c in sorted(names & {"rater", *cols.human.values()}):
            sink.add(
                line,
                c,
                "a dataset import keeps judge verdicts only: import labels of the kept "
                "responses with changeover import-labels",
                file=f.name,
            )


def _period_column(ds: Dataset, key: str) -> bool:
    return any(key in s for s in ds.schemas.values())


def _rows_of_period(
    lf: pl.LazyFrame, ds: Dataset, key: str, period: str | None
) -> tuple[pl.LazyFrame, str | None]:
    """A period held as a column: keep its rows (one period per import)."""
    values = lf.select(pl.col(key).unique()).collect(engine="streaming")[key].drop_nulls()
    found = sorted(values.to_list())
    if period is None:
        if len(found) > 1:
            raise ImportFailed(
                [
                    Problem(
                        ds.location,
                        0,
                        key,
                        f"several periods ({listing(found)}): import one with --period",
                    )
                ]
            )
        period = found[0] if found else None
    elif period not in found:
        raise ImportFailed(
            [Problem(ds.location, 0, key, f"no period {period!r} ({listing(found) or 'none'})")]
        )
    return (lf.filter(pl.col(key) == period) if period is not None else lf), period
