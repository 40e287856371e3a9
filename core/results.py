"""The results of an eval set as one typed value, built once and formatted by every face.

`Results` holds everything the results and calibration screens, the eval-sets summary, the
report (text, Markdown, JSON, CSV) and export show: per metric the cells (mean and 90%
interval, share at the pass level, difference to the incumbent, verdict with its reason), each
candidate's verdict with the joint probability and the labels needed, the judge's calibration
per cell, agreement between raters, the baselines, the fit's diagnostics, where the numbers
came from (a kept fit, brought up to date with the labels since, or the instant posterior) and
the warnings. `build_results` makes it from posterior draws; core/workspace.py decides which
draws. Faces format it and compute nothing.

Quantities: a yes/no metric's rate of its positive (last) level; an L-point scale's mean level
on 1..L, plus the share at or above the pass level. "overall" is the traffic-weighted sum over
regions; delta = candidate - incumbent, draw by draw.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from changeover.core.decide.cell_checks import widen_unlabelled
from changeover.core.decide.rule import DecisionRule
from changeover.core.decide.verdicts import (
    CandidateDecision,
    Decision,
    decide,
    decide_all,
    specs_of,
)
from changeover.core.judge.agreement import RaterAgreement
from changeover.core.judge.calibration import CELL_MINIMUM, CalibrationCell, calibration_cells
from changeover.core.model.cell_draws import CellDraws
from changeover.core.model.counts import Counts
from changeover.core.model.posterior import Interval, Posterior, interval
from changeover.core.shown import probability_text as probability_text
from changeover.core.types import (
    ChangeoverError,
    Diagnostics,
    Direction,
    EvalSet,
    FitRecord,
    Source,
)

if TYPE_CHECKING:
    from changeover.core.model.baselines import BaselineCell


@dataclass(frozen=True)
class Cell:
    model: str
    labels: int | None
    value: Interval
    pass_share: Interval | None = None
    delta: Interval | None = None  # None for the incumbent
    decision: Decision | None = None
    ties: int = 0  # responses of the cell rated but left out: their raters tied (unlabelled)
    open: int = 0  # responses of the cell with open labels only (chosen): left out of the fit


@dataclass(frozen=True)
class Row:
    region: str  # a region or "overall"
    weight: float
    cells: tuple[Cell, ...]

    def cell(self, model: str) -> Cell | None:
        return next((c for c in self.cells if c.model == model), None)


@dataclass(frozen=True)
class MetricTable:
    name: str
    levels: tuple[str, ...]
    direction: Direction
    margin: float
    quantity: str  # "rate" or "mean_level"
    pass_level: int | None
    source: Source
    rows: tuple[Row, ...]

    @property
    def quantity_label(self) -> str:
        """What the numbers are: 'rate of yes', 'mean level 1-5'."""
        if self.quantity == "rate":
            return f"rate of {self.levels[-1]}"
        return f"mean level 1-{len(self.levels)}"

    @property
    def pass_label(self) -> str | None:
        """'>=4' for a scale with a pass level, else None."""
        if self.pass_level is None or self.quantity == "rate":
            return None
        return f">={self.levels[self.pass_level]}"

    def row(self, region: str) -> Row | None:
        return next((r for r in self.rows if r.region == region), None)


class FlagKind(StrEnum):
    """What a warning of the results is about."""

    STALE_FIT = "stale_fit"
    INSTANT_POSTERIOR = "instant_posterior"
    DIAGNOSTICS = "diagnostics"
    UNLABELLED_CELL = "unlabelled_cell"
    TIES = "ties"
    OPEN_LABELS = "open_labels"
    OPEN_LABELS_COUNTED = "open_labels_counted"
    MISSING_JUDGMENTS = "missing_judgments"


@dataclass(frozen=True)
class Flag:
    kind: FlagKind
    message: str


@dataclass(frozen=True)
class Results:
    eval_set: str
    incumbent: str
    models: tuple[str, ...]  # incumbent first
    regions: tuple[tuple[str, float], ...]  # (name, traffic weight)
    rule: DecisionRule  # what the verdicts were decided by
    source: Source
    metrics: tuple[MetricTable, ...]
    candidates: tuple[CandidateDecision, ...]
    calibration: tuple[CalibrationCell, ...]
    baselines: tuple[BaselineCell, ...] = ()
    agreement: Mapping[str, RaterAgreement] = field(default_factory=dict)
    fit: FitRecord | None = None
    stale: bool = False  # labels (or judgments) changed since the fit
    labels_since: int = 0  # label events given since the fit
    khat: float | None = None  # Pareto k of the update by the labels since (UPDATED, or refused)
    diagnostics: Diagnostics | None = None
    flags: tuple[Flag, ...] = ()

    @property
    def threshold(self) -> float:
        return self.rule.threshold

    @property
    def min_labels(self) -> int:
        return self.rule.min_labels

    def table(self, metric: str) -> MetricTable | None:
        return next((t for t in self.metrics if t.name == metric), None)

    def candidate(self, model: str) -> CandidateDecision | None:
        return next((c for c in self.candidates if c.candidate == model), None)

    def cell(self, metric: str, region: str, model: str) -> Cell | None:
        table = self.table(metric)
        row = None if table is None else table.row(region)
        return None if row is None else row.cell(model)

    def calibration_of(self, metric: str) -> tuple[CalibrationCell, ...]:
        return tuple(c for c in self.calibration if c.metric == metric)

    @property
    def failed(self) -> bool:
        """The fit behind these results failed its diagnostics."""
        return self.diagnostics is not None and not self.diagnostics.ok


# ---- building -----------------------------------------------------------------------------


def shown_posteriors(posteriors: Sequence[Posterior], fit: FitRecord | None) -> list[Posterior]:
    """The posteriors every face is shown (and the draws export writes): a cell without labels
    carries the judge's unknown lean there (core/decide/cell_checks.py, `widen_unlabelled`). Seeded by
    the fit's seed and the metric's name, so the same fit shows the same numbers and metrics
    lean independently."""
    seed = fit.settings.seed if fit is not None else 0
    return [widen_unlabelled(p, seed=[seed, zlib.crc32(p.metric.encode())]) for p in posteriors]


def _metric_table(
    post: Posterior,
    eval_set: EvalSet,
    models: tuple[str, ...],
    threshold: float,
    checked: Mapping[tuple[str, str, str], Decision],
    counts: Counts | None = None,
) -> MetricTable:
    """One metric's rows; a cell's verdict, the overall's included, is its candidate's checked
    one (`checked`: (candidate, metric, region or "overall") -> the decision after
    core/decide/cell_checks.py), so no face shows "ready" where the candidate's verdict holds it back."""
    metric = eval_set.metric(post.metric)
    incumbent = eval_set.incumbent
    q, share = post.quantity(), post.pass_share()
    labels, tied = post.flags.cell_labels, post.flags.cell_ties
    chosen = _open_cells(counts)
    i = post.model_index(incumbent)
    rows = []
    for r, region in enumerate([*post.regions, "overall"]):
        overall = region == "overall"

        def pick(a: np.ndarray, r: int = r, overall: bool = overall) -> np.ndarray:
            return a @ post.weights if overall else a[:, :, r]

        qq, ss = pick(q), None if share is None else pick(share)
        cells = []
        for model in models:
            m = post.model_index(model)
            n = None if labels is None else (sum(labels[m]) if overall else labels[m][r])
            ties = 0 if tied is None else (sum(tied[m]) if overall else tied[m][r])
            left = sum(n for (x, y), n in chosen.items() if x == model and (overall or y == region))
            delta = dec = None
            if model != incumbent:
                d = qq[:, m] - qq[:, i]
                delta = interval(d)
                dec = checked.get((model, post.metric, region)) or decide(
                    d, metric.direction, metric.margin, threshold
                )
            pass_share = None if ss is None else interval(ss[:, m])
            cells.append(Cell(model, n, interval(qq[:, m]), pass_share, delta, dec, ties, left))
        weight = 1.0 if overall else float(post.weights[r])
        rows.append(Row(region, weight, tuple(cells)))
    return MetricTable(
        post.metric,
        tuple(post.levels),
        metric.direction,
        float(metric.margin),
        "rate" if post.is_binary else "mean_level",
        post.pass_level,
        post.source,
        tuple(rows),
    )


def _open_cells(c: Counts | None) -> dict[tuple[str, str], int]:
    """(model, region) -> responses left out of the fit because their labels are all open,
    from today's counts (open labels leave the fit's data as it was, so it is not stale)."""
    if c is None or c.left_out_per_cell is None:
        return {}
    cells = c.left_out_per_cell
    return {(c.models[m], c.regions[r]): int(cells[m, r]) for m, r in zip(*np.nonzero(cells))}


def _models(eval_set: EvalSet, posteriors: Sequence[Posterior]) -> tuple[str, ...]:
    incumbent = eval_set.incumbent
    models = [incumbent]
    known = {m.name for m in eval_set.metrics}
    for post in posteriors:
        if post.metric not in known:
            raise ChangeoverError(
                f"the fit has metric {post.metric!r}, which eval set {eval_set.name!r} no "
                "longer defines: fit again"
            )
        if incumbent not in post.models:
            raise ChangeoverError(
                f"metric {post.metric!r}: the incumbent {incumbent!r} is not among the fitted "
                f"models {list(post.models)}"
            )
        models += [m for m in post.models if m not in models]
    return tuple(models)


def build_results(
    eval_set: EvalSet,
    posteriors: Sequence[Posterior],
    *,
    source: Source,
    counts: Mapping[str, Counts] | None = None,
    fit: FitRecord | None = None,
    stale: bool = False,
    labels_since: int = 0,
    khat: float | None = None,
    agreement: Mapping[str, RaterAgreement] | None = None,
    rule: DecisionRule = DecisionRule(),
    cell_minimum: int = CELL_MINIMUM,
    cache: CellDraws | None = None,
) -> Results:
    """The results value from posterior draws of some or all metrics of `eval_set`.

    `counts` (today's, metric -> Counts) add the count tables and the baselines; `fit`, `stale`,
    `labels_since` and `khat` say where the draws came from; `cache` keeps the instant cells'
    draws the decisions' own-data checks are made of (the workspace's)."""
    from changeover.core.model.baselines import baselines_all  # scipy: only when results are built

    if not posteriors:
        raise ChangeoverError(f"eval set {eval_set.name!r}: nothing to show (no posterior)")
    models = _models(eval_set, posteriors)
    names = {p.metric for p in posteriors}
    specs = {k: v for k, v in specs_of(eval_set).items() if k in names}
    counts = {k: v for k, v in (counts or {}).items() if k in names}
    weights = dict(zip(eval_set.region_names, eval_set.traffic_weights))
    diagnostics = fit.diagnostics if (fit is not None and source != Source.INSTANT) else None
    posteriors = shown_posteriors(posteriors, fit)
    candidates = decide_all(posteriors, specs, eval_set.incumbent, rule, cache)
    checked = {
        (c.candidate, x.metric, x.region): x.decision
        for c in candidates
        for x in (*c.cells, *c.overall)
    }
    results = Results(
        eval_set=eval_set.name,
        incumbent=eval_set.incumbent,
        models=models,
        regions=tuple(zip(posteriors[0].regions, (float(w) for w in posteriors[0].weights))),
        rule=rule,
        source=source,
        metrics=tuple(
            _metric_table(p, eval_set, models, rule.threshold, checked, counts.get(p.metric))
            for p in posteriors
        ),
        candidates=tuple(candidates),
        calibration=tuple(
            c for p in posteriors for c in calibration_cells(p, counts.get(p.metric), cell_minimum)
        ),
        baselines=tuple(baselines_all(counts, weights)) if counts else (),
        agreement={k: v for k, v in (agreement or {}).items() if k in names},
        fit=fit,
        stale=stale,
        labels_since=labels_since,
        khat=khat,
        diagnostics=diagnostics,
    )
    flags = _flags(results, posteriors, counts)
    return replace(results, flags=tuple(flags))


# ---- what to do about a failed fit, and the warnings -----------------------------------------


def failure_kind(diagnostics: Diagnostics, quick: bool = False) -> str:
    """Why a fit failed its diagnostics, as far as what to do goes: "quick" (a quick fit is
    simply too short to pass), "divergences" or "mixing" (R-hat or ESS)."""
    if quick:
        return "quick"
    return "divergences" if diagnostics.divergences else "mixing"


def refit_hint(diagnostics: Diagnostics, quick: bool = False) -> str:
    """What to do about a failed fit, for the command line.

    Another seed is worth one try; a second failure means these labels do not pin the model
    (with labels on one judge level only, every yes/no fit failed, whatever the seed or step
    size), which only more labels fix: the report names the judge levels that need them."""
    again = (
        "; if it fails again, these labels do not pin the model: label where the report asks "
        "(changeover rate, or the app's queue), then fit again"
    )
    return {
        "quick": "a quick fit is too short to pass them: fit without --quick",
        "divergences": (
            "refit with another seed (changeover fit --seed N), or with smaller steps "
            "(changeover fit --target-accept 0.98: slower, fewer divergences)" + again
        ),
        "mixing": "refit with another seed (changeover fit --seed N)" + again,
    }[failure_kind(diagnostics, quick)]


def _flags(
    results: Results, posteriors: Sequence[Posterior], counts: Mapping[str, Counts]
) -> list[Flag]:
    flags = []
    fit = results.fit
    if fit is not None and results.stale:
        since = f"{results.labels_since} label(s) given since" if results.labels_since else ""
        since = since or "labels or judgments changed since"
        if results.source == Source.UPDATED:
            how = (
                f"{since}; shown updated by them (importance weights, Pareto k "
                f"{results.khat:.2f}); fit again for the full model"
            )
        else:
            why = (
                f"the update by them is unreliable (Pareto k {results.khat:.2f} > 0.7)"
                if results.khat is not None and np.isfinite(results.khat)
                else "the fit cannot be updated (it kept no counts, or models or regions changed)"
            )
            how = f"{since}; {why}: shown as fitted; fit again"
        flags.append(Flag(FlagKind.STALE_FIT, f"fit #{fit.id} is stale: {how}"))
    if results.source == Source.INSTANT:
        flags.append(
            Flag(
                FlagKind.INSTANT_POSTERIOR,
                "instant posterior (conjugate, unpooled, no sampling): a quick look, not the "
                "full model",
            )
        )
    d = results.diagnostics
    if d is not None and not d.ok:
        parts = d.failures() or (f"max R-hat {d.max_rhat:.3f}", f"{d.divergences} divergences")
        quick = fit is not None and fit.settings.is_quick
        flags.append(
            Flag(
                FlagKind.DIAGNOSTICS,
                "the fit failed its diagnostics (R-hat <= 1.01, ESS >= 400, no divergences): "
                + "; ".join(parts)
                + "; "
                + refit_hint(d, quick),
            )
        )
    for post in posteriors:
        widened, tied = set(post.flags.widened_cells), post.flags.cell_ties
        for model, region in post.flags.unlabelled_cells:
            how = (
                "its interval carries the judge's unknown lean there"
                if (model, region) in widened
                else "its estimate leans on the pooling"
            )
            ties = 0 if tied is None else tied[post.model_index(model)][post.regions.index(region)]
            rated = f" ({ties} rated, but their raters tied)" if ties else ""
            flags.append(
                Flag(
                    FlagKind.UNLABELLED_CELL,
                    f"{post.metric}: no human labels for {model} in {region}{rated}; {how}, "
                    "and no verdict there is ready without its own labels",
                )
            )
    for c in counts.values():
        if c.ties:
            flags.append(Flag(FlagKind.TIES, _ties_text(c)))
        if c.left_out:  # counts_for: open labels stay out of the fit
            flags.append(
                Flag(
                    FlagKind.OPEN_LABELS,
                    f"{c.metric}: {c.left_out} labelled response(s) left out of the fit: their "
                    "labels are open (the response chosen by a person, in browse or imported "
                    "with --open), not drawn at random",
                )
            )
        if c.open_counted:
            flags.append(
                Flag(
                    FlagKind.OPEN_LABELS_COUNTED,
                    f"{c.metric}: {c.open_counted} response(s) with open labels count as if "
                    "drawn at random: the intervals may be too narrow",
                )
            )
        if c.missing_judgments:
            flags.append(
                Flag(
                    FlagKind.MISSING_JUDGMENTS,
                    f"{c.metric}: {c.missing_judgments} response(s) without a usable judge verdict",
                )
            )
    return flags


def _ties_text(c: Counts) -> str:
    """A metric's ties between raters, and the cells they fell in (the labels shown per cell
    leave them out, so a cell rated twice can show 0)."""
    where = ""
    if c.ties_per_cell is not None:
        cells = [
            f"{c.models[m]} in {c.regions[r]}: {int(c.ties_per_cell[m, r])}"
            for m, r in zip(*np.nonzero(c.ties_per_cell))
        ]
        where = " (" + ", ".join(cells[:6]) + (", ..." if len(cells) > 6 else "") + ")"
    return (
        f"{c.metric}: {c.ties} labelled response(s) left out of the fit because their raters "
        f"tied{where}; each counts as unlabelled until another rating breaks the tie"
    )
