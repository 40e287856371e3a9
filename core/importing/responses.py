"""Import: parse, check, write. Responses, judge verdicts and human labels from CSV, JSONL or Parquet.

Every row is checked before anything is written; all problems are collected with their line
(CSV: the physical line where the record starts, JSONL: the physical line, Parquet: the row)
and nothing is stored when there is any. Files are read in chunks, twice (check, then write),
so memory stays bounded; the write is all or nothing (`Store.importing_eval_set`: written in
chunks nobody sees, published in one transaction, core/store/publish.py): the eval set and its
rows are saved together or not at all. Reading is in core/importing/read.py (values as text in
core/importing/values.py), the spec in core/importing/spec.py, the checks in core/importing/check.py,
labels for responses already there in core/importing/labels.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl

from changeover.core.importing.check import Columns, check_chunk, check_file, header_problems
from changeover.core.importing.held import held_labels, held_responses
from changeover.core.importing.labels import import_labels
from changeover.core.importing.read import (
    CHUNK_ROWS,
    FORMATS,
    LINE,
    MAX_SHOWN,
    FileSource,
    ImportFailed,
    Problem,
    Source,
    all_rows,
    listing,
)
from changeover.core.importing.report import ImportReport
from changeover.core.importing.spec import load_spec
from changeover.core.store import Store, now
from changeover.core.types import EvalSet

__all__ = [
    "CHUNK_ROWS",
    "FORMATS",
    "MAX_SHOWN",
    "ImportFailed",
    "ImportReport",
    "Problem",
    "import_file",
    "import_labels",
    "import_rows",
    "load_spec",
]


def resolve_spec(spec: str | Path | EvalSet) -> tuple[EvalSet, str]:
    """(the eval set, the name errors give its spec) of a spec file or an EvalSet."""
    if isinstance(spec, EvalSet):
        return spec, "spec"
    return load_spec(spec), str(spec)


def held_eval_set(store: Store, name: str) -> EvalSet | None:
    """The workspace's eval set of that name, or None."""
    return next((e for e in store.eval_sets() if e.name == name), None)


def import_file(
    store: Store,
    path: str | Path,
    spec: str | Path | EvalSet,
    fmt: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Check every row of a responses file, then write it all or nothing."""
    resolved = resolve_spec(spec)
    return import_rows(store, FileSource(Path(path), fmt), resolved, chunk_rows)


def import_rows(
    store: Store, source: Source, spec: tuple[EvalSet, str], chunk_rows: int = CHUNK_ROWS
) -> ImportReport:
    """Check every row of a source (a file, or Inspect logs), then write it all or nothing."""
    es, spec_file = spec
    sink = source.sink()
    held = held_eval_set(store, es.name)
    if held is not None:
        for m in es.metrics:
            old = next((x for x in held.metrics if x.name == m.name), None)
            if old is not None and old.levels != m.levels:
                sink.add(
                    0,
                    f"metrics.{m.name}.levels",
                    f"the workspace holds {m.name} with levels "
                    f"{', '.join(old.levels)}, not {', '.join(m.levels)}",
                    file=spec_file,
                )
    cols = Columns(es)
    header, chunks = source.open(sink, chunk_rows)
    skip = set() if header is None else header_problems(cols, header, sink, source.header_line)
    seen: set[str] = set(header or ())
    parts = []
    for df in chunks:
        seen.update(df.columns)
        parts.append(check_chunk(cols.prepare(df, sink), cols, sink, skip, held is not None))
    if header is None:
        for c in cols.unknown(sorted(seen - {LINE})):
            sink.add(0, c, f"no metric {c.split('_', 1)[1]!r} in the spec")
    keys = all_rows(parts, sink)
    held_items = None
    if held is not None:
        rows = store.item_index(held.id)
        if rows:
            held_items = pl.DataFrame(
                rows,
                schema={"item_id": pl.String, "region_held": pl.String, "question": pl.String},
                orient="row",
            ).select("item_id", "region_held", pl.col("question").hash().alias("qh_held"))
    check_file(keys, cols, sink, held_items)
    stored = held_responses(store, held, keys, sink)
    models = keys["model"].drop_nulls().unique(maintain_order=True).to_list()
    known_models = models + (store.models(held.id) if held is not None else [])
    if es.incumbent not in known_models:
        sink.add(
            0,
            "model",
            f"the incumbent {es.incumbent!r} ({spec_file}) has no responses "
            f"(models: {listing(models)})",
        )
    sink.raise_if_any()

    first = keys.filter(pl.struct("item_id", "model").is_first_distinct())
    # unmappable verdicts stored by this import: responses held already keep theirs
    new = first.join(stored, on=["item_id", "model"], how="anti")
    missing = {m.name: int(new[f"__miss_{m.name}"].sum()) for m in es.metrics}
    items, responses = keys["item_id"].n_unique(), first.height
    n_rows = keys.height
    del keys, parts, first
    added, labels, kept = _write(store, source, es, cols, held, chunk_rows)
    saved = store.eval_set(es.name)
    return ImportReport(
        eval_set=saved,
        rows=n_rows,
        added=added,
        missing_judgments=missing,
        file=source.name,
        items=items,
        responses=responses,
        models=tuple(models),
        labels=labels,
        kept_labels=kept,
    )


def _write(
    store: Store,
    source: Source,
    es: EvalSet,
    cols: Columns,
    held: EvalSet | None,
    chunk_rows: int,
) -> tuple[dict[str, int], int, int]:
    """Second pass: stage every chunk, then write it and publish it with the eval set."""
    quiet = source.sink()
    given = same = None
    if held is not None:
        ev = held_labels(store, held.id)
        if ev.height:
            given = ev.select("item_id", "model", "metric", "rater").unique()
            same = ev.filter("active").drop("active").unique()
    stamp = now()
    labels = kept = 0
    with store.importing_eval_set(es) as batch:
        _, chunks = source.open(quiet, chunk_rows, checking=False)
        for raw in chunks:
            df = cols.prepare(raw, quiet)
            first = df.filter(pl.struct("item_id", "model").is_first_distinct())
            batch.add_responses(
                zip(
                    *(
                        first[c].to_list()
                        for c in ("item_id", "region", "question", "reference", "model", "response")
                    )
                )
            )
            ids, models = first["item_id"].to_list(), first["model"].to_list()
            for m in es.metrics:
                jc = cols.judge[m.name]
                level = cols.levels(first[jc], m).to_list()
                score = first[cols.score[m.name]].cast(pl.Float64, strict=False).to_list()
                batch.add_judgments(
                    zip(
                        ids,
                        models,
                        itertools.repeat(m.name),
                        itertools.repeat(es.judge),
                        level,
                        first[jc].to_list(),
                        score,
                        first[cols.rationale[m.name]].to_list(),
                    )
                )
            for m in es.metrics:
                hc = cols.human[m.name]
                lab = df.filter(pl.col("rater").is_not_null() & pl.col(hc).is_not_null())
                if lab.height == 0:
                    continue
                lab = lab.select(
                    "item_id",
                    "model",
                    pl.lit(m.name).alias("metric"),
                    "rater",
                    cols.levels(lab[hc], m).alias("level"),
                )
                labels += lab.height
                if given is not None and same is not None:  # never add to or revive a label
                    held_same = lab.join(same, on=lab.columns, how="semi").height
                    before = lab.height
                    lab = lab.join(given, on=["item_id", "model", "metric", "rater"], how="anti")
                    kept += before - lab.height - held_same
                batch.add_ratings(
                    zip(*(lab[c].to_list() for c in lab.columns), itertools.repeat(stamp))
                )
        quiet.raise_if_any()  # the file changed between the passes: roll back, write nothing
    return dict(batch.added), labels, kept
