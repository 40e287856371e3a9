"""The rows that leave the store: small named tuples, read by attribute (`row.level`), never
by position. The column order of each query is the field order here (`Row._make(cursor row)`)."""

from __future__ import annotations

from typing import NamedTuple


class EvalSetStats(NamedTuple):
    """How much an eval set holds (ratings and labelled responses count active labels)."""

    items: int
    responses: int
    judgments: int
    judgments_missing: int
    ratings: int
    labelled_responses: int
    open_ratings: int = 0  # of `ratings`: open ones (core.types.label_selection), not fitted


class ItemKey(NamedTuple):
    external_id: str
    region: str
    question: str


class JudgmentKey(NamedTuple):
    """A stored judge verdict, by the names an import file uses (level None: missing)."""

    item_id: str
    model: str
    metric: str
    level: int | None


class RatingKey(NamedTuple):
    """A label event that is not itself a retraction, by the names an import file uses."""

    item_id: str
    model: str
    metric: str
    rater: str
    value: int | None
    active: bool
    open: bool  # chosen by a person (core.types.label_selection), not drawn at random


class JudgeLevelCount(NamedTuple):
    """Judged responses of one cell at one judge level (level None: no usable verdict)."""

    metric: str
    model: str
    region: str
    level: int | None
    n: int


class LabelVote(NamedTuple):
    """Active human labels of one response and metric at one level, with the judge's level."""

    response_id: int
    metric: str
    model: str
    region: str
    judge: int | None
    human: int
    votes: int


class RaterLabel(NamedTuple):
    """One rater's active label of one response and metric (for agreement)."""

    response_id: int
    metric: str
    model: str
    region: str
    rater: str
    level: int


class CellLabelCount(NamedTuple):
    """Labelled responses of a (model, region) cell at one judge level of a metric."""

    model: str
    region: str
    judge_level: int | None
    n: int


class Vote(NamedTuple):
    """Active votes for one level of one response and metric."""

    response_id: int
    metric: str
    level: int
    n: int


class RatingEvent(NamedTuple):
    """A rating event with its response's item, region and model, and the event (if any)
    that retracted it."""

    id: int
    response_id: int
    item_id: str
    region: str
    model: str
    metric: str
    rater: str
    value: int | None
    created_at: str
    blind: bool
    source: str
    retracts: int | None
    retracted_by: int | None
    retracted_by_rater: str | None
    retracted_at: str | None


class ResponseRow(NamedTuple):
    """A response with its item, for export."""

    response_id: int
    item_id: str
    region: str
    question: str
    reference: str | None
    model: str
    text: str


class EvalSetSource(NamedTuple):
    """Where an eval set's judged responses live when the workspace keeps only a sample of them:
    kind "dataset" (`changeover import ... --sample-per-cell`) or "counts" (`import-counts`)."""

    kind: str
    period: str | None
    location: str  # the dataset (directory, glob or file) or the counts file, as given
    files: tuple[str, ...]  # the files read, relative to the dataset's folder
    rows: int  # judged responses the counts cover
    fingerprint: str  # sha256 of the files' names and sizes and of the counts
    sample_per_cell: int | None  # responses kept per (model, region), as asked
    stratify: str | None  # the metric whose judge levels stratify the sample
    seed: int | None
    engine: str  # what computed the counts ("polars 2.1.0", or the counts file)
    spec: str  # the spec file it was imported with (for the command that draws more)
    created_at: str
    updated_at: str


class ChosenVote(NamedTuple):
    """Active labels of one response, metric and level that were not given blind in the app:
    kind "open" (the rater chose the response: browse triage, or imported with --open) or
    "import" (imported as random)."""

    response_id: int
    metric: str
    human: int
    votes: int
    kind: str


class ReplacedVote(NamedTuple):
    """A rater's blind label of one response and metric that they later replaced openly."""

    response_id: int
    metric: str
    human: int
    votes: int
