"""What the results screen shows, copied out of core's report (no statistics here).

`load_results` picks the posterior to show (the latest full fit, or the instant posterior while
there is no fit or the fit is stale), asks core.report for the table and flattens it into small
view values the screen lays out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from changeover.core.types import EvalSet, FitRecord


@dataclass(frozen=True)
class CellView:
    mean: float
    lo: float
    hi: float
    delta: float | None = None  # None for the incumbent
    delta_lo: float | None = None
    delta_hi: float | None = None
    p: float | None = None  # P(non-inferiority), or P(match) for "match" metrics
    verdict: str | None = None
    reason: str = ""
    labels: int | None = None
    pass_share: tuple[float, float, float] | None = None  # scales: (mean, lo, hi) at/above pass


@dataclass(frozen=True)
class MetricView:
    metric: str
    quantity: str  # shown above the axis: "rate of yes" / "mean level 1-5"
    incumbent: str
    models: tuple[str, ...]
    rows: tuple[str, ...]  # regions, then "overall"
    cells: dict[tuple[str, str], CellView] = field(default_factory=dict)  # (row, model) -> cell
    pass_label: str | None = None  # scales with a pass level: e.g. ">=4"


@dataclass(frozen=True)
class CandidateLine:
    candidate: str
    verdict: str
    joint: float | None
    reason: str
    needed: tuple[str, ...] = ()  # labels-needed forecasts, one per undecided cell


@dataclass(frozen=True)
class ResultsData:
    source: str  # "full" or "instant"
    fit: FitRecord | None
    stale: bool
    diagnostics_ok: bool | None
    tables: tuple[MetricView, ...]
    candidates: tuple[CandidateLine, ...]
    flags: tuple[str, ...] = ()
    report: object = None  # the core.report.Report behind it all

    def table(self, metric: str) -> MetricView | None:
        return next((t for t in self.tables if t.metric == metric), None)

    def cell(self, metric: str, row: str, model: str) -> CellView | None:
        table = self.table(metric)
        return None if table is None else table.cells.get((row, model))


def latest_fit(store, eval_set: EvalSet, counts=None):
    """(fit or None, its posteriors, stale) through core.fitting."""
    from changeover.core.fitting import is_stale, latest_posteriors

    fit, posteriors = latest_posteriors(store, eval_set)
    return fit, posteriors, bool(fit is not None and is_stale(store, eval_set, fit, counts))


def choose_posteriors(store, eval_set: EvalSet, prefer: str = "auto"):
    """(source, fit, stale, posteriors, counts): the full fit unless it is missing or stale
    (prefer="auto"), or what `prefer` ("full" / "instant") asks for when it exists."""
    from changeover.core.counts import counts_for
    from changeover.core.instant import instant_posterior

    counts = counts_for(store, eval_set)
    fit, posteriors, stale = latest_fit(store, eval_set, counts)
    use_full = bool(posteriors) and (prefer == "full" or (prefer == "auto" and not stale))
    if use_full:
        return "full", fit, stale, posteriors, counts
    weights = eval_set.traffic_weights
    instant = [
        instant_posterior(counts[m.name], weights, pass_level=m.pass_level)
        for m in eval_set.metrics
        if m.name in counts
    ]
    return "instant", fit, stale, instant, counts


def load_results(
    store, eval_set: EvalSet, prefer: str = "auto", threshold: float = 0.95, min_labels: int = 30
) -> ResultsData:
    """The screen's data through core: posteriors -> core.report.build_report -> views."""
    from changeover.core.report import build_report

    source, fit, stale, posteriors, counts = choose_posteriors(store, eval_set, prefer)
    if not posteriors:
        return ResultsData(source, fit, stale, None, (), (), ("nothing to show yet",))
    report = build_report(
        eval_set,
        posteriors,
        fit=fit if source == "full" else None,
        counts=counts,
        threshold=threshold,
        min_labels=min_labels,
        stale=stale,
    )
    ok = None if fit is None else fit.diagnostics.get("ok")
    return ResultsData(
        source,
        fit,
        stale,
        ok,
        tuple(_metric_view(t, report.incumbent) for t in report.metrics),
        tuple(_candidate_line(c) for c in report.candidates),
        tuple(f.message for f in report.flags),
        report,
    )


def _quantity(table) -> str:
    if table.quantity == "rate":
        return f"rate of {table.levels[-1]}"
    return f"mean level 1-{len(table.levels)}"


def _metric_view(table, incumbent: str) -> MetricView:
    cells: dict[tuple[str, str], CellView] = {}
    models: list[str] = []
    for row in table.rows:
        for c in row.cells:
            if c.model not in models:
                models.append(c.model)
            d, dec = c.delta, c.decision
            cells[row.region, c.model] = CellView(
                mean=c.value.mean,
                lo=c.value.lower,
                hi=c.value.upper,
                delta=None if d is None else d.mean,
                delta_lo=None if d is None else d.lower,
                delta_hi=None if d is None else d.upper,
                p=None if dec is None else dec.probability,
                verdict=None if dec is None else dec.verdict,
                reason="" if dec is None else dec.reason,
                labels=c.labels,
                pass_share=None
                if c.pass_share is None
                else (c.pass_share.mean, c.pass_share.lower, c.pass_share.upper),
            )
    pass_label = None
    if table.pass_level is not None and table.quantity != "rate":
        pass_label = f">={table.levels[table.pass_level]}"
    return MetricView(
        table.name,
        _quantity(table),
        incumbent,
        tuple(models),
        tuple(r.region for r in table.rows),
        cells,
        pass_label,
    )


def _candidate_line(decision) -> CandidateLine:
    needed = tuple(c.forecast.text for c in decision.cells if c.forecast is not None)
    joint = decision.joint_probability
    return CandidateLine(decision.candidate, decision.verdict, joint, decision.summary, needed)
