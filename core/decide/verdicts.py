"""Migration decisions: pure functions over posterior draws.

For candidate c against incumbent i in region r, delta = q[c, r] - q[i, r] draw by draw, with
margin d and threshold g (README, "Decisions"):

- ``higher``: ready if P(delta > -d) >= g, not ready if P(delta < -d) >= g, else undecided;
- ``lower``:  ready if P(delta < d) >= g,  not ready if P(delta > d) >= g,  else undecided;
- ``match``:  ready if P(|delta| <= d) >= g, not ready if P(|delta| > d) >= g, else undecided.

A cell is ready only if it passes the checks of core/decide/cell_checks.py: at least
``min_cell_labels`` labelled responses in the candidate's and the incumbent's cell, the pooled
posterior and its own labels (the instant posterior) both reaching their bars for its labels
(rising with them: repeated looks), and every common judge level of both models labelled. A cell that fails one is undecided, says
why (`CellDecision.blocked`), and its forecast is the labels that would get it past the check.
A candidate is ready only if every (metric, region) cell is ready; P(all hold), the probability
that every cell's condition holds at once, is computed from the same draws. A candidate with
fewer than ``min_labels`` human labels on any metric is never ready.

Labels-needed forecast (an approximation, stated here once): the posterior variance of each
model's quantity in a cell is taken to shrink like 1 / (effective labels), with effective
labels n = max(labels in the cell, 1), so a labels adds to a cell scales that model's
variance by n / (n + a); the covariance between candidate and incumbent scales by the
geometric mean of the two factors. The projected posterior of delta keeps the same mean and
shape: every draw's deviation from the mean shrinks by sd_new / sd_now. The forecast is the
smallest total of extra labels, split between the candidate's and the incumbent's cell in the
best of 21 proportions, at which the projected decision (against the bar at the projected
labels) is no longer undecided. It assumes the new labels agree with what the posterior already
believes (the mean stays put); it is a guide for where to label, not a promise. Beyond
``max_labels`` it says "more than N".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from changeover.core.decide import cell_checks
from changeover.core.decide.cell_checks import MIN_CELL_LABELS, LabelRequest
from changeover.core.shown import probability_text

READY, NOT_READY, UNDECIDED = "ready", "not ready", "undecided"
_EPS = 1e-9  # probabilities are means of booleans; compare with a hair of slack at the threshold


@dataclass(frozen=True)
class Decision:
    verdict: str  # "ready" | "not ready" | "undecided"
    probability: float  # P(holds): the cell's ready condition, e.g. P(delta > -d)
    reason: str


@dataclass(frozen=True)
class Forecast:
    """Extra labels that would settle one undecided cell (see the module docstring)."""

    metric: str
    region: str
    candidate_labels: int  # extra labels in the candidate's cell
    incumbent_labels: int  # extra labels in the incumbent's cell
    capped: bool  # True: not settled even with max_labels extra ("more than N")
    max_labels: int

    @property
    def total(self) -> int:
        return self.candidate_labels + self.incumbent_labels

    @property
    def text(self) -> str:
        if self.capped:
            return f"{self.metric}/{self.region}: more than {self.max_labels} labels"
        return (
            f"{self.metric}/{self.region}: about {self.total} label{'s' * (self.total != 1)} "
            f"({self.candidate_labels} candidate, {self.incumbent_labels} incumbent)"
        )


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
    verdict: str
    joint_probability: float  # P(every cell condition holds at once)
    summary: str  # the reason without the joint probability (for faces that show it apart)
    cells: tuple[CellDecision, ...]
    labels: dict  # metric -> human-labelled responses of the candidate (None: unknown)
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


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _bar(x: float) -> str:
    """A bar with as few decimals as show it, at most four (0.95, 0.975, 0.9833): the
    probabilities beside it are shown with up to four (core/shown.py)."""
    return f"{round(x, 4):g}"


def condition(
    delta_draws: np.ndarray, direction: str, margin: float
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Per draw: (ready condition, not-ready condition) as booleans, and their texts."""
    delta = np.asarray(delta_draws, dtype=float)
    d = float(margin)
    if direction == "higher":
        return delta > -d, delta < -d, f"delta > {_fmt(-d)}", f"delta < {_fmt(-d)}"
    if direction == "lower":
        return delta < d, delta > d, f"delta < {_fmt(d)}", f"delta > {_fmt(d)}"
    if direction == "match":
        a = np.abs(delta)
        return a <= d, a > d, f"|delta| <= {_fmt(d)}", f"|delta| > {_fmt(d)}"
    raise ValueError(f"unknown direction {direction!r} (higher, lower or match)")


def decide(
    delta_draws,
    direction: str,
    margin: float,
    threshold: float = 0.95,
    ready_threshold: float | None = None,
    labels: tuple = (),
) -> Decision:
    """Verdict on one cell from draws of delta = candidate - incumbent. `ready_threshold`
    (default: `threshold`) is what "ready" must reach, higher after repeated looks
    (core/decide/cell_checks.threshold_at, with the two cells' `labels` for the reason)."""
    ok, bad, ok_text, bad_text = condition(delta_draws, direction, margin)
    if ok.size == 0:
        return Decision(UNDECIDED, float("nan"), "no draws")
    p_ok, p_bad = float(ok.mean()), float(bad.mean())
    g = float(threshold)
    g_ready = g if ready_threshold is None else max(float(ready_threshold), g)
    if p_ok >= g_ready - _EPS:
        shown = probability_text(p_ok, g_ready)
        return Decision(READY, p_ok, f"P({ok_text}) = {shown} >= {_bar(g_ready)}")
    if p_ok >= g - _EPS:
        looks = f" with {labels[0]} and {labels[1]} labels" if len(labels) == 2 else ""
        shown = probability_text(p_ok, g_ready)
        why = f"P({ok_text}) = {shown}, but ready needs {_bar(g_ready)}{looks}"
        return Decision(UNDECIDED, p_ok, f"{why} (the bar rises with the labels: repeated looks)")
    if p_bad >= g - _EPS:
        return Decision(NOT_READY, p_ok, f"P({bad_text}) = {probability_text(p_bad, g)} >= {g:g}")
    return Decision(
        UNDECIDED,
        p_ok,
        f"P({ok_text}) = {probability_text(p_ok, g)}, P({bad_text}) = "
        f"{probability_text(p_bad, g)}, neither >= {g:g}",
    )


class DeltaProjection:
    """How the posterior variance of delta = candidate - incumbent shrinks with more labels.

    From the draws: delta's mean and variance, each model's variance and their covariance.
    `after(total)` splits `total` extra labels 21 ways between the candidate's cell (a) and the
    incumbent's (b); each model's variance shrinks like n / (n + extra labels), n its labels
    today (at least 1). Shared by this module's forecast and core/labelling/active's preposterior one.
    """

    _SPLITS = np.linspace(0.0, 1.0, 21)

    def __init__(
        self, q_candidate, q_incumbent, candidate_labels: int | None, incumbent_labels: int | None
    ) -> None:
        qc, qi = np.asarray(q_candidate, float), np.asarray(q_incumbent, float)
        self.delta = qc - qi
        self.mean = float(self.delta.mean())
        self.vc, self.vi = float(qc.var()), float(qi.var())
        self.cov = float(np.mean((qc - qc.mean()) * (qi - qi.mean())))
        self.variance = self.vc + self.vi - 2 * self.cov
        self.nc, self.ni = max(candidate_labels or 0, 1), max(incumbent_labels or 0, 1)

    def after(self, total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, projected variance of delta) for each of the 21 splits of `total`."""
        a = np.rint(self._SPLITS * total)
        b = total - a
        rc, ri = self.nc / (self.nc + a), self.ni / (self.ni + b)
        return a, b, self.vc * rc + self.vi * ri - 2 * self.cov * np.sqrt(rc * ri)


def smallest_total(holds: Callable[[int], bool], max_labels: int) -> int:
    """The smallest total in 1..max_labels for which `holds` is true, by bisection: `holds`
    must grow with the total, hold at max_labels, and is assumed false at 0 (not tried)."""
    lo, hi = 0, max_labels
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class Comparison:
    """One candidate-vs-incumbent comparison to forecast: draws of each cell's decision
    quantity, the metric's rule and threshold, and the labels each cell holds today."""

    q_candidate: np.ndarray
    q_incumbent: np.ndarray
    direction: str
    margin: float
    threshold: float
    candidate_labels: int | None
    incumbent_labels: int | None

    def projection(self) -> DeltaProjection:
        return DeltaProjection(
            self.q_candidate, self.q_incumbent, self.candidate_labels, self.incumbent_labels
        )

    def labels_after(self, a, b) -> tuple[Any, Any]:
        """The two cells' labels after a and b more (None stays None: unknown)."""
        nc, ni = self.candidate_labels, self.incumbent_labels
        return (None if nc is None else nc + a), (None if ni is None else ni + b)


def forecast_labels(
    comparison: Comparison, max_labels=2000, metric="", region="", pooled=True
) -> Forecast:
    """Smallest extra labels that would settle an undecided cell (see the module docstring);
    `pooled`: the draws are the pooled posterior's (else a cell's own data: its lower bar)."""
    projection = comparison.projection()
    direction, margin, threshold = comparison.direction, comparison.margin, comparison.threshold
    mu, v0 = projection.mean, projection.variance
    dev = projection.delta - mu

    def best(total: int) -> tuple[float, int, int]:
        a, b, v = projection.after(total)
        k = int(np.argmin(v))
        return float(max(v[k], 0.0)), int(a[k]), int(b[k])

    def settled(total: int) -> tuple[bool, int, int]:
        v, a, b = best(total)
        shrink = np.sqrt(v / v0) if v0 > 0 else 0.0
        after_c, after_i = comparison.labels_after(a, b)
        g = cell_checks.threshold_at(threshold, after_c, after_i, pooled)
        dec = decide(mu + dev * shrink, direction, margin, threshold, g)
        return dec.verdict != UNDECIDED, a, b

    ok, a, b = settled(max_labels)
    if not ok:
        return Forecast(metric, region, 0, 0, True, max_labels)
    if settled(0)[0]:
        return Forecast(metric, region, 0, 0, False, max_labels)
    # the projected variance falls with the total, so being settled grows with it
    _, a, b = settled(smallest_total(lambda t: settled(t)[0], max_labels))
    return Forecast(metric, region, a, b, False, max_labels)


def _cell_labels(post, model: str, key: str = "cell_labels") -> list[int] | None:
    table = (post.flags or {}).get(key)
    if table is None:
        return None
    return [int(x) for x in table[post.model_index(model)]]


def _shortfall(metric: str, region: str, rated: list, rule: dict) -> Forecast:
    """The labels that bring both cells of a comparison to the minimum."""
    a, b = (max(rule["min_cell_labels"] - (x or 0), 0) for x in rated)
    return Forecast(metric, region, a, b, False, rule["max_labels"])


def _checked(
    dec: Decision, own_dec: Decision | None, requests: list, short: str, g: float
) -> tuple[Decision, str]:
    """The pooled decision after the checks (core/decide/cell_checks.py), and what holds it back:
    judge levels without labels (`requests`), too few labels (`short`: why, or ""), or its own
    labels disagreeing with a pooled "ready"."""
    blocked = ""
    if requests:
        blocked = "; ".join(x.text for x in requests)
    elif short:
        blocked = short
    elif dec.verdict == READY and own_dec is not None and own_dec.verdict != READY:
        own = probability_text(own_dec.probability, g)
        blocked = f"its own labels give P = {own} < {_bar(g)} (instant posterior)"
    if blocked:
        dec = Decision(UNDECIDED, dec.probability, f"{dec.reason}; but {blocked}")
    return dec, blocked


def _cell(
    post, q, own, c: int, i: int, r: int, spec: tuple[str, float], rule: dict, requests: list
) -> CellDecision:
    """One (metric, region) comparison: the pooled verdict (q: the posterior's quantity), then
    the checks it must pass (own: the instant posterior's quantity, or None)."""
    direction, margin = spec
    metric, region, g = post.metric, post.regions[r], rule["threshold"]
    lab_c, lab_i = _cell_labels(post, post.models[c]), _cell_labels(post, post.models[i])
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
    tied = [(_cell_labels(post, post.models[x], "cell_ties") or {r: 0})[r] for x in (c, i)]
    # labelled responses: a response whose raters tied was labelled, though it is not fitted
    rated = [None if x is None else x + t for x, t in zip((nc, ni), tied)]
    short = ""
    if min((x for x in rated if x is not None), default=1 << 30) < rule["min_cell_labels"]:
        ties = f"; {sum(tied)} more rated, but their raters tied" if sum(tied) else ""
        short = (
            f"fewer than {rule['min_cell_labels']} labels in the cell "
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
    elif dec.verdict == UNDECIDED:
        draws = q
    if draws is not None:
        comparison = Comparison(draws[:, c, r], draws[:, i, r], direction, margin, g, nc, ni)
        pooled = draws is q and post.source != "instant"
        fc = forecast_labels(comparison, rule["max_labels"], metric, region, pooled)
    return CellDecision(metric, region, dec, nc, ni, fc, own_p, blocked)


def _overall(
    post, q, own, c: int, i: int, spec: tuple[str, float], rule: dict, requests: list, minimum: int
) -> CellDecision:
    """The traffic-weighted overall of one metric, shown beside the regions (the candidate's
    verdict rests on the regions alone). It passes the checks a verdict would: the judge levels
    labelled, the candidate's minimum of labels on the metric, its own labels agreeing; so it
    never says "ready" where the candidate's checks hold the metric back (with one region it is
    that region)."""
    direction, margin = spec
    g, w = rule["threshold"], post.weights
    lab_c, lab_i = _cell_labels(post, post.models[c]), _cell_labels(post, post.models[i])
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
    posteriors: Sequence,
    specs: Mapping[str, tuple[str, float]],
    candidate: str,
    incumbent: str,
    threshold: float = 0.95,
    min_labels: int = 30,
    max_labels: int = 2000,
    min_cell_labels: int = MIN_CELL_LABELS,
) -> CandidateDecision:
    """Verdict on one candidate over every (metric, region) cell of the posteriors.

    `specs` maps a metric name to (direction, margin); metrics not in it are skipped.
    """
    rule = {"threshold": threshold, "min_cell_labels": min_cell_labels, "max_labels": max_labels}
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
        q = post.quantity()
        c, i = post.model_index(candidate), post.model_index(incumbent)
        lab_c = _cell_labels(post, candidate)
        labels[post.metric] = None if lab_c is None else sum(lab_c)
        requests = cell_checks.unidentified(post, (candidate, incumbent))
        to_label += requests
        own = cell_checks.own_quantity(post)
        unchecked |= own is None and post.source != "instant"
        for r in range(len(post.regions)):
            held.append(condition(q[:, c, r] - q[:, i, r], direction, margin)[0])
            cells.append(_cell(post, q, own, c, i, r, specs[post.metric], rule, requests))
        overall.append(_overall(post, q, own, c, i, specs[post.metric], rule, requests, min_labels))
    if not cells:
        return CandidateDecision(
            candidate, UNDECIDED, float("nan"), "no metrics to decide on", (), labels
        )
    n = min(h.size for h in held)
    joint = float(np.logical_and.reduce([h[:n] for h in held]).mean())
    for metric, count in labels.items():
        if count is None:
            problems.append(f"human label counts unknown for {metric}")
        elif count < min_labels:
            problems.append(f"only {count} human labels on {metric} (minimum {min_labels})")
    bad = [c for c in cells if c.decision.verdict == NOT_READY]
    open_ = [c for c in cells if c.decision.verdict == UNDECIDED]

    def where(cs: list[CellDecision]) -> str:
        return ", ".join(f"{c.metric}/{c.region}" for c in cs[:4]) + (" ..." if len(cs) > 4 else "")

    if bad:
        verdict, reason = NOT_READY, f"not ready in {len(bad)} cell(s): {where(bad)}"
    elif open_:
        verdict, reason = UNDECIDED, f"undecided in {len(open_)} cell(s): {where(open_)}"
    elif problems:
        verdict, reason = UNDECIDED, "every cell ready, but " + "; ".join(problems)
    else:
        verdict, reason = READY, f"ready in all {len(cells)} cells"
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
    posteriors: Sequence,
    specs: Mapping[str, tuple[str, float]],
    incumbent: str,
    threshold: float = 0.95,
    min_labels: int = 30,
    max_labels: int = 2000,
    min_cell_labels: int = MIN_CELL_LABELS,
) -> list[CandidateDecision]:
    """`decide_candidate` for every model of the posteriors except the incumbent, in order."""
    models: list[str] = []
    for post in posteriors:
        models += [m for m in post.models if m not in models]
    return [
        decide_candidate(
            posteriors, specs, m, incumbent, threshold, min_labels, max_labels, min_cell_labels
        )
        for m in models
        if m != incumbent
    ]


def specs_of(eval_set) -> dict[str, tuple[str, float]]:
    """(direction, margin) per metric of an eval set, the `specs` argument above."""
    return {m.name: (m.direction, float(m.margin)) for m in eval_set.metrics}


def labels_to_minimum(decision: CandidateDecision, min_labels: int) -> dict[str, int]:
    """Per metric, how many more candidate labels reach the minimum (only where short)."""
    return {
        m: min_labels - n for m, n in decision.labels.items() if n is not None and n < min_labels
    }
