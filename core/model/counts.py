"""Sufficient statistics of an eval set: per metric, the human x judge count tables per cell.

`n[m, r, h, j]` counts responses of model m in region r whose (consensus) human label is h and
whose judge level is j; `u[m, r, j]` counts judged responses without a usable human label.
Everything the calibration model and the instant posterior need is in these arrays, so their
cost does not grow with the number of responses.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from changeover.core.types import EvalSet

if TYPE_CHECKING:
    from changeover.core.store import Store
    from changeover.core.store.rows import JudgeLevelCount


@dataclass(frozen=True)
class Counts:
    """Count tables of one metric. Models: incumbent first; regions: eval-set order."""

    metric: str
    levels: tuple[str, ...]
    models: tuple[str, ...]
    regions: tuple[str, ...]
    n: np.ndarray  # [M, R, L(h), L(j)] int64: labelled responses by human and judge level
    u: np.ndarray  # [M, R, L(j)] int64: judged responses without a (consensus) human label
    ties: int = 0  # labelled responses left out of n because their raters tied
    missing_judgments: int = 0  # responses without a usable judge level (left out entirely)
    left_out: int = 0  # labelled responses left out of n: every label chosen, not drawn at random
    open_counted: int = 0  # responses in n whose labels include open ones (include_open=True)
    ties_per_cell: np.ndarray | None = None  # [M, R] ties per cell (None: not counted)
    left_out_per_cell: np.ndarray | None = None  # [M, R] of `left_out` per cell

    @property
    def labels_per_cell(self) -> np.ndarray:
        """[M, R] labelled responses per cell."""
        return self.n.sum(axis=(2, 3))

    @property
    def judged_per_cell(self) -> np.ndarray:
        """[M, R] judged responses per cell (labelled or not)."""
        return self.n.sum(axis=(2, 3)) + self.u.sum(axis=2)


def _model_order(store: Store, eval_set: EvalSet, seen: Iterable[str]) -> tuple[str, ...]:
    names = [eval_set.incumbent]
    for name in [*store.models(eval_set.id), *sorted(set(seen))]:
        if name not in names:
            names.append(name)
    return tuple(names)


# Judge-level counts do not change when labels are added, only on import: cache them per store
# and eval set, checked against the store's cheap judgments fingerprint.
_JUDGED: weakref.WeakKeyDictionary = (
    weakref.WeakKeyDictionary()
)  # store -> {eval set: (mark, rows)}


def _judge_level_counts(store: Store, eval_set_id: int) -> list[JudgeLevelCount]:
    # An eval set whose responses live in a lake or warehouse keeps their judge-level counts;
    # its responses table holds only a sample, so the unlabelled counts are aggregate - labelled.
    rows = store.aggregate_counts(eval_set_id)
    if rows is not None:
        return rows
    mark = store.judgments_fingerprint()
    cached = _JUDGED.setdefault(store, {})
    hit = cached.get(eval_set_id)
    if hit is not None and hit[0] == mark:
        return hit[1]
    rows = store.judge_level_counts(eval_set_id)
    cached[eval_set_id] = (mark, rows)
    return rows


def _chosen_votes(
    store: Store, eval_set_id: int, exclude_raters: Iterable[str]
) -> dict[tuple[int, str, int], dict[str, int]]:
    """(response, metric, human level) -> {kind: votes} of the labels not given blind."""
    out: dict[tuple[int, str, int], dict[str, int]] = defaultdict(dict)
    for row in store.chosen_label_votes(eval_set_id, exclude_raters):
        out[(row.response_id, row.metric, row.human)][row.kind] = row.votes
    return out


def counts_for(
    store: Store,
    eval_set: EvalSet,
    exclude_raters: Iterable[str] = (),
    include_open: bool = False,
    imported_random: bool = True,
) -> dict[str, Counts]:
    """Counts of every metric of the eval set (metric name -> Counts), from grouped queries.

    Several raters on one response: their `consensus` (the median level; the majority on
    yes/no); a tie is counted in `ties` (and per cell in `ties_per_cell`) and the response
    stays unlabelled (in `u`). Responses whose
    judgment is missing are left out and counted in `missing_judgments`. Ratings of
    `exclude_raters` are ignored.

    Only labels whose response was drawn at random given its cell and judge level enter `n`,
    the assumption the calibration model rests on: blind labels from the rate screen, and
    labels imported as random (`import-labels` without --open) unless `imported_random` is
    False. Open labels (browse triage, or imported with --open) were chosen by a person who
    saw the response, often because the judge's verdict looked wrong: they are left out
    (`left_out` counts the responses that fall back to unlabelled, per cell in
    `left_out_per_cell`) unless `include_open`, which counts them and sets `open_counted` so
    the faces can warn that the intervals may be too narrow.
    """
    judged = _judge_level_counts(store, eval_set.id)
    votes = store.label_votes(eval_set.id, exclude_raters)
    chosen = _chosen_votes(store, eval_set.id, exclude_raters)
    skip = {"open": not include_open, "import": not imported_random}
    models = _model_order(store, eval_set, [row.model for row in judged])
    regions = list(eval_set.region_names)
    for row in judged:  # a region present in the data but not declared still gets a column
        if row.region not in regions:
            regions.append(row.region)
    m_ix = {m: i for i, m in enumerate(models)}
    r_ix = {r: i for i, r in enumerate(regions)}
    M, R = len(models), len(regions)

    out: dict[str, Counts] = {}
    metrics = {m.name: m for m in eval_set.metrics}
    total = {name: np.zeros((M, R, m.n_levels), np.int64) for name, m in metrics.items()}
    missing = dict.fromkeys(metrics, 0)
    for metric, model, region, level, count in judged:
        if metric not in metrics:
            continue
        if level is None or not 0 <= level < metrics[metric].n_levels:
            missing[metric] += count
        else:
            total[metric][m_ix[model], r_ix[region], level] += count

    # (response, metric) -> judge level, model, region, {human level: counted votes}
    tallies: dict[tuple[int, str], tuple] = {}
    chosen_only: dict[str, set[int]] = {name: set() for name in metrics}
    for response_id, metric, model, region, judge, human, n_votes in votes:
        if metric not in metrics or human is None:
            continue
        key = (response_id, metric)
        if key not in tallies:
            tallies[key] = (judge, model, region, defaultdict(int))
        kinds = chosen.get((response_id, metric, human), {})
        counted = n_votes - sum(v for kind, v in kinds.items() if skip[kind])
        if counted > 0:
            tallies[key][3][human] += counted
            if include_open and kinds.get("open"):
                chosen_only[metric].add(response_id)  # counted although chosen openly
    any_open = any("open" in kinds for kinds in chosen.values())  # else nothing was replaced
    if not include_open and any_open:
        # A rater who re-rates openly a response the queue gave them (typically because the
        # judge disagreed) replaces their blind label; the blind one still counts, else the
        # re-rated disagreements would drop out of the fit and the judge would look better.
        for vote in store.replaced_blind_votes(eval_set.id, exclude_raters):
            if (vote.response_id, vote.metric) in tallies:
                tallies[(vote.response_id, vote.metric)][3][vote.human] += vote.votes

    n = {name: np.zeros((M, R, m.n_levels, m.n_levels), np.int64) for name, m in metrics.items()}
    ties = dict.fromkeys(metrics, 0)
    tie_cells = {name: np.zeros((M, R), np.int64) for name in metrics}
    left_out = dict.fromkeys(metrics, 0)
    out_cells = {name: np.zeros((M, R), np.int64) for name in metrics}
    for (_, metric), (judge, model, region, tally) in tallies.items():
        L = metrics[metric].n_levels
        if judge is None or not 0 <= judge < L:
            continue  # already counted as a missing judgment
        if not tally:
            left_out[metric] += 1  # every label of it was chosen, not drawn: unlabelled here
            out_cells[metric][m_ix[model], r_ix[region]] += 1
            continue
        h = consensus(tally)
        if h is None:
            ties[metric] += 1
            tie_cells[metric][m_ix[model], r_ix[region]] += 1
            continue
        if 0 <= h < L:
            n[metric][m_ix[model], r_ix[region], h, judge] += 1

    for name, spec in metrics.items():
        u = total[name] - n[name].sum(axis=2)
        out[name] = Counts(
            metric=name,
            levels=spec.levels,
            models=models,
            regions=tuple(regions),
            n=n[name],
            u=np.maximum(u, 0),
            ties=ties[name],
            missing_judgments=missing[name],
            left_out=left_out[name],
            open_counted=len(chosen_only[name]),
            ties_per_cell=tie_cells[name],
            left_out_per_cell=out_cells[name],
        )
    return out


def consensus(votes: Mapping[int, int]) -> int | None:
    """A response's human label from its raters' votes (level -> votes): the median level when
    the two middle ratings agree, as they always do with an odd number of raters; None on an
    even split whose middle ratings differ, or without votes (the model leaves those out: a
    response whose raters tie counts as unlabelled).

    On yes/no this is the majority vote. On a scale the median keeps the responses whose raters
    all differ (three raters at 2, 3 and 4: 3), which a majority vote would drop, and dropping
    them is not random: they are the ones the raters found hard."""
    total = sum(n for n in votes.values() if n > 0)
    if total == 0:
        return None
    middle = {(total - 1) // 2, total // 2}  # positions of the middle rating(s), 0-based
    seen, found = 0, set()
    for level in sorted(votes):
        count = votes[level]
        if count <= 0:
            continue
        found |= {level for k in middle if seen <= k < seen + count}
        seen += count
    return found.pop() if len(found) == 1 else None


def data_hash(counts: dict[str, Counts]) -> str:
    """A stable sha256 of the count arrays and their labels (detects stale fits)."""
    h = hashlib.sha256()
    for name in sorted(counts):
        c = counts[name]
        h.update(repr((c.metric, c.levels, c.models, c.regions, c.n.shape)).encode())
        h.update(np.ascontiguousarray(c.n, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(c.u, dtype="<i8").tobytes())
    return h.hexdigest()
