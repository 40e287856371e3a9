"""Migration decisions: a candidate's verdict over every cell, pure functions over draws.

Each cell is decided by core/decide/decision.py. A cell is ready only if it passes the checks
of core/decide/cell_checks.py: at least ``rule.min_cell_labels`` labelled responses in the
candidate's and the incumbent's cell, the pooled posterior and its own labels (the instant
posterior) both reaching their bars for its labels (rising with them: repeated looks), and
every common judge level of both models labelled. A cell that fails one is undecided, says why
(`CellDecision.blocked`), and its forecast (core/decide/forecast.py) is the labels that would
get it past the check. A candidate is ready only if every (metric, region) cell is ready;
P(all hold), the probability that every cell's condition holds at once, is computed from the
same draws. A candidate with fewer than ``rule.min_labels`` human labels on any metric is never
ready.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from changeover.core.decide import cell_checks
from changeover.core.decide.cell_checks import Evidence, LabelRequest
from changeover.core.decide.decision import Decision, bar, condition, decide
from changeover.core.decide.forecast import Comparison, Forecast, forecast_labels
from changeover.core.decide.rule import DecisionRule
from changeover.core.model.cell_draws import CellDraws
from changeover.core.model.posterior import Posterior
from changeover.core.shown import probability_text
from changeover.core.types import Direction, EvalSet, Source, Verdict

__all__ = ["Comparison", "Decision", "Forecast", "condition", "decide", "forecast_labels"]


@dataclass(frozen=True)
class CellDecision:
    metric: str
    region: str
    decision: Decision
    candidate_labels: int | None  # human-labelled responses in the cell (None: unknown)
    incumbent_labels: int | None
    forecast: Forecast | None = None
    own_probability: float | None = None  # P(condition) from the cell's own labels (instant)
    blocked: str = ""  # why the cell is undecided whatever the pooled posterior says

    @property
    def unlabelled(self) -> bool:
        return self.candidate_labels == 0 or self.incumbent_labels == 0


@dataclass(frozen=True)
class CandidateDecision:
    candidate: str
    verdict: Verdict
    joint_probability: float  # P(every cell condition holds at once)
    summary: str  # the reason without the joint probability (for faces that show it apart)
    cells: tuple[CellDecision, ...]
    labels: dict[
        str, int | None
    ]  # metric -> human-labelled responses of the candidate (None: unknown)
    to_label: tuple[LabelRequest, ...] = ()  # judge levels to label before deciding a metric
    unchecked: bool = False  # some cell had no own-data check (a posterior without its counts)
    overall: tuple[CellDecision, ...] = ()  # per metric, the traffic-weighted overall (shown only)

    @property
    def reason(self) -> str:
        """The summary, then "; P(all hold) = 0.93" (when there is one)."""
        if math.isnan(self.joint_probability):
            return self.summary
        return f"{self.summary}; P(all hold) = {self.joint_probability:.2f}"

    @property
    def forecasts(self) -> tuple[Forecast, ...]:
        return tuple(c.forecast for c in self.cells if c.forecast is not None)


def _shortfall(metric: str, region: str, rated: list[int | None], rule: DecisionRule) -> Forecast:
    """The labels that bring both cells of a comparison to the minimum."""
    a, b = (max(rule.min_cell_labels - (x or 0), 0) for x in rated)
    return Forecast(metric, region, a, b, False, rule.max_labels)


def _checked(
    dec: Decision, own_dec: Decision | None, requests: list[LabelRequest], short: str, g: float
) -> tuple[Decision, str]:
    """The pooled decision after the checks (core/decide/cell_checks.py), and what holds it back:
    judge levels without labels (`requests`), too few labels (`short`: why, or ""), or its own
    labels disagreeing with a pooled "ready"."""
    blocked = ""
    if requests:
        blocked = "; ".join(x.text for x in requests)
    elif short:
        blocked = short
    elif dec.verdict == Verdict.READY and own_dec is not None and own_dec.verdict != Verdict.READY:
        own = probability_text(own_dec.probability, g)
        blocked = f"its own labels give P = {own} < {bar(g)} (instant posterior)"
    if blocked:
        dec = Decision(Verdict.UNDECIDED, dec.probability, f"{dec.reason}; but {blocked}")
    return dec, blocked


def _cell(
    post: Posterior,
    q: np.ndarray,
    own: np.ndarray | None,
    c: int,
    i: int,
    r: int,
    spec: tuple[Direction, float],
    rule: DecisionRule,
    requests: list[LabelRequest],
) -> CellDecision:
    """One (metric, region) comparison: the pooled verdict (q: the posterior's quantity), then
    the checks it must pass (own: the instant posterior's quantity, or None)."""
    direction, margin = spec
    metric, region, g = post.metric, post.regions[r], rule.threshold
    lab_c, lab_i = post.flags.labels_of(c), post.flags.labels_of(i)
    nc = None if lab_c is None else lab_c[r]
    ni = None if lab_i is None else lab_i[r]
    # "ready" must reach a threshold that rises with the labels (repeated looks); "not ready"
    # is the side a cell at the margin lies on, and keeps the threshold asked for
    g_ready, g_own = cell_checks.bars(g, nc, ni, post.source)
    dec = decide(q[:, c, r] - q[:, i, r], direction, margin, g, g_ready, (nc, ni))
    own_dec = None
    if own is not None:
        own_dec = decide(own[:, c, r] - own[:, i, r], direction, margin, g_own)
    own_p = None if own_dec is None else own_dec.probability
    tied = [0 if (t := post.flags.ties_of(x)) is None else t[r] for x in (c, i)]
    # labelled responses: a response whose raters tied was labelled, though it is not fitted
    rated = [None if x is None else x + t for x, t in zip((nc, ni), tied)]
    short = ""
    if min((x for x in rated if x is not None), default=1 << 30) < rule.min_cell_labels:
        ties = f"; {sum(tied)} more rated, but their raters tied" if sum(tied) else ""
        short = (
            f"fewer than {rule.min_cell_labels} labels in the cell "
            f"(candidate {nc}, incumbent {ni}{ties})"
        )
    dec, blocked = _checked(dec, own_dec, requests, short, g_own)
    fc, draws = None, None  # draws: the posterior a forecast is made on
    if requests:
        pass  # what to label is in the requests
    elif short:
        fc = _shortfall(metric, region, rated, rule)
    elif blocked:
        draws = own  # its own labels disagree: the labels that would settle them
    elif dec.verdict == Verdict.UNDECIDED:
        draws = q
    if draws is not None:
        comparison = Comparison(draws[:, c, r], draws[:, i, r], direction, margin, g, nc, ni)
        pooled = draws is q and post.source != Source.INSTANT
        fc = forecast_labels(comparison, rule.max_labels, metric, region, pooled)
    return CellDecision(metric, region, dec, nc, ni, fc, own_p, blocked)


def _overall(
    post: Posterior,
    q: np.ndarray,
    own: np.ndarray | None,
    c: int,
    i: int,
    spec: tuple[Direction, float],
    rule: DecisionRule,
    requests: list[LabelRequest],
) -> CellDecision:
    """The traffic-weighted overall of one metric, shown beside the regions (the candidate's
    verdict rests on the regions alone). It passes the checks a verdict would: the judge levels
    labelled, the candidate's minimum of labels on the metric, its own labels agreeing; so it
    never says "ready" where the candidate's checks hold the metric back (with one region it is
    that region)."""
    direction, margin = spec
    g, w, minimum = rule.threshold, post.weights, rule.min_labels
    lab_c, lab_i = post.flags.labels_of(c), post.flags.labels_of(i)
    nc = None if lab_c is None else sum(lab_c)
    ni = None if lab_i is None else sum(lab_i)
    # the bar after repeated looks, on the labels per region (with one region: the region's)
    regions = len(post.regions)
    per_c, per_i = (None if x is None else x / regions for x in (nc, ni))
    g_ready, g_own = cell_checks.bars(g, per_c, per_i, post.source)
    dec = decide((q[:, c] - q[:, i]) @ w, direction, margin, g, g_ready, (nc, ni))
    own_dec = None
    if own is not None:
        own_dec = decide((own[:, c] - own[:, i]) @ w, direction, margin, g_own)
    own_p = None if own_dec is None else own_dec.probability
    few = nc is not None and nc < minimum
    short = f"only {nc} human labels on {post.metric} (minimum {minimum})" if few else ""
    dec, blocked = _checked(dec, own_dec, requests, short, g_own)
    return CellDecision(post.metric, "overall", dec, nc, ni, None, own_p, blocked)


def decide_candidate(
    posteriors: Sequence[Posterior],
    specs: Mapping[str, tuple[Direction, float]],
    candidate: str,
    incumbent: str,
    rule: DecisionRule = DecisionRule(),
    evidence: Mapping[str, Evidence] | None = None,
) -> CandidateDecision:
    """Verdict on one candidate over every (metric, region) cell of the posteriors.

    `specs` maps a metric name to (direction, margin); metrics not in it are skipped.
    `evidence` (metric -> what its posterior gives every candidate) is computed when not given.
    """
    cells: list[CellDecision] = []
    held: list[np.ndarray] = []
    labels: dict[str, int | None] = {}
    problems: list[str] = []
    to_label: list[LabelRequest] = []
    overall: list[CellDecision] = []
    unchecked = False
    for post in posteriors:
        if post.metric not in specs:
            continue
        direction, margin = specs[post.metric]
        ev = (evidence or {}).get(post.metric) or cell_checks.evidence(post)
        q, own = ev.quantity, ev.own
        c, i = post.model_index(candidate), post.model_index(incumbent)
        lab_c = post.flags.labels_of(c)
        labels[post.metric] = None if lab_c is None else sum(lab_c)
        requests = cell_checks.unidentified(post, (candidate, incumbent))
        to_label += requests
        unchecked |= own is None and post.source != Source.INSTANT
        for r in range(len(post.regions)):
            held.append(condition(q[:, c, r] - q[:, i, r], direction, margin)[0])
            cells.append(_cell(post, q, own, c, i, r, specs[post.metric], rule, requests))
        overall.append(_overall(post, q, own, c, i, specs[post.metric], rule, requests))
    if not cells:
        return CandidateDecision(
            candidate, Verdict.UNDECIDED, float("nan"), "no metrics to decide on", (), labels
        )
    n = min(h.size for h in held)
    joint = float(np.logical_and.reduce([h[:n] for h in held]).mean())
    for metric, count in labels.items():
        if count is None:
            problems.append(f"human label counts unknown for {metric}")
        elif count < rule.min_labels:
            problems.append(f"only {count} human labels on {metric} (minimum {rule.min_labels})")
    bad = [c for c in cells if c.decision.verdict == Verdict.NOT_READY]
    open_ = [c for c in cells if c.decision.verdict == Verdict.UNDECIDED]

    def where(cs: list[CellDecision]) -> str:
        return ", ".join(f"{c.metric}/{c.region}" for c in cs[:4]) + (" ..." if len(cs) > 4 else "")

    if bad:
        verdict, reason = Verdict.NOT_READY, f"not ready in {len(bad)} cell(s): {where(bad)}"
    elif open_:
        verdict, reason = Verdict.UNDECIDED, f"undecided in {len(open_)} cell(s): {where(open_)}"
    elif problems:
        verdict, reason = Verdict.UNDECIDED, "every cell ready, but " + "; ".join(problems)
    else:
        verdict, reason = Verdict.READY, f"ready in all {len(cells)} cells"
    if problems and (bad or open_):
        reason += "; " + "; ".join(problems)
    if to_label:
        reason += "; not identified: " + "; ".join(x.text for x in to_label)
    return CandidateDecision(
        candidate,
        verdict,
        joint,
        reason,
        tuple(cells),
        labels,
        tuple(to_label),
        unchecked,
        tuple(overall),
    )


def decide_all(
    posteriors: Sequence[Posterior],
    specs: Mapping[str, tuple[Direction, float]],
    incumbent: str,
    rule: DecisionRule = DecisionRule(),
    cache: CellDraws | None = None,
) -> list[CandidateDecision]:
    """`decide_candidate` for every model of the posteriors except the incumbent, in order, on
    each metric's evidence computed once (`cache`: the instant cells' draws, the workspace's)."""
    models: list[str] = []
    for post in posteriors:
        models += [m for m in post.models if m not in models]
    given = {p.metric: cell_checks.evidence(p, cache) for p in posteriors if p.metric in specs}
    return [
        decide_candidate(posteriors, specs, m, incumbent, rule, given)
        for m in models
        if m != incumbent
    ]


def specs_of(eval_set: EvalSet) -> dict[str, tuple[Direction, float]]:
    """(direction, margin) per metric of an eval set, the `specs` argument above."""
    return {m.name: (m.direction, float(m.margin)) for m in eval_set.metrics}


def labels_to_minimum(decision: CandidateDecision, min_labels: int) -> dict[str, int]:
    """Per metric, how many more candidate labels reach the minimum (only where short)."""
    return {
        m: min_labels - n for m, n in decision.labels.items() if n is not None and n < min_labels
    }
