"""The labels-needed forecast: how many more labels would settle an undecided cell.

An approximation, stated here once: the posterior variance of each model's quantity in a cell
is taken to shrink like 1 / (effective labels), with effective labels n = max(labels in the
cell, 1), so a labels adds to a cell scales that model's variance by n / (n + a); the
covariance between candidate and incumbent scales by the geometric mean of the two factors.
The projected posterior of delta keeps the same mean and shape: every draw's deviation from the
mean shrinks by sd_new / sd_now. The forecast is the smallest total of extra labels, split
between the candidate's and the incumbent's cell in the best of 21 proportions, at which the
projected decision (against the bar at the projected labels) is no longer undecided. It assumes
the new labels agree with what the posterior already believes (the mean stays put); it is a
guide for where to label, not a promise. Beyond ``max_labels`` it says "more than N".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from changeover.core.decide import cell_checks
from changeover.core.decide.decision import decide
from changeover.core.decide.rule import DecisionRule
from changeover.core.types import Direction, Verdict

N = TypeVar("N", int, np.ndarray)  # labels added: one number, or one per split


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


class DeltaProjection:
    """How the posterior variance of delta = candidate - incumbent shrinks with more labels.

    From the draws: delta's mean and variance, each model's variance and their covariance.
    `after(total)` splits `total` extra labels 21 ways between the candidate's cell (a) and the
    incumbent's (b); each model's variance shrinks like n / (n + extra labels), n its labels
    today (at least 1). Shared by this module's forecast and core/labelling/active's preposterior one.
    """

    _SPLITS = np.linspace(0.0, 1.0, 21)

    def __init__(
        self,
        q_candidate: np.ndarray,
        q_incumbent: np.ndarray,
        candidate_labels: int | None,
        incumbent_labels: int | None,
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
    direction: Direction
    margin: float
    threshold: float
    candidate_labels: int | None
    incumbent_labels: int | None

    def projection(self) -> DeltaProjection:
        return DeltaProjection(
            self.q_candidate, self.q_incumbent, self.candidate_labels, self.incumbent_labels
        )

    def labels_after(self, a: N, b: N) -> tuple[N | None, N | None]:
        """The two cells' labels after a and b more (None stays None: unknown)."""
        nc, ni = self.candidate_labels, self.incumbent_labels
        return (None if nc is None else nc + a), (None if ni is None else ni + b)


def forecast_labels(
    comparison: Comparison,
    max_labels: int = DecisionRule.max_labels,
    metric: str = "",
    region: str = "",
    pooled: bool = True,
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
        return dec.verdict != Verdict.UNDECIDED, a, b

    ok, a, b = settled(max_labels)
    if not ok:
        return Forecast(metric, region, 0, 0, True, max_labels)
    if settled(0)[0]:
        return Forecast(metric, region, 0, 0, False, max_labels)
    # the projected variance falls with the total, so being settled grows with it
    _, a, b = settled(smallest_total(lambda t: settled(t)[0], max_labels))
    return Forecast(metric, region, a, b, False, max_labels)
