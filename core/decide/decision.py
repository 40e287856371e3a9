"""One cell's decision: a pure function over draws of delta = candidate - incumbent.

For candidate c against incumbent i in region r, delta = q[c, r] - q[i, r] draw by draw, with
margin d and threshold g (README, "Decisions"):

- ``higher``: ready if P(delta > -d) >= g, not ready if P(delta < -d) >= g, else undecided;
- ``lower``:  ready if P(delta < d) >= g,  not ready if P(delta > d) >= g,  else undecided;
- ``match``:  ready if P(|delta| <= d) >= g, not ready if P(|delta| > d) >= g, else undecided.

What a cell must pass besides, and a candidate's verdict over its cells: core/decide/verdicts.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from changeover.core.decide.rule import DecisionRule
from changeover.core.shown import probability_text
from changeover.core.types import Direction, Verdict

_EPS = 1e-9  # probabilities are means of booleans; compare with a hair of slack at the threshold


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    probability: float  # P(holds): the cell's ready condition, e.g. P(delta > -d)
    reason: str


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def bar(x: float) -> str:
    """A bar with as few decimals as show it, at most four (0.95, 0.975, 0.9833): the
    probabilities beside it are shown with up to four (core/shown.py)."""
    return f"{round(x, 4):g}"


def condition(
    delta_draws: np.ndarray, direction: Direction, margin: float
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Per draw: (ready condition, not-ready condition) as booleans, and their texts."""
    delta = np.asarray(delta_draws, dtype=float)
    d = float(margin)
    if direction == Direction.HIGHER:
        return delta > -d, delta < -d, f"delta > {_fmt(-d)}", f"delta < {_fmt(-d)}"
    if direction == Direction.LOWER:
        return delta < d, delta > d, f"delta < {_fmt(d)}", f"delta > {_fmt(d)}"
    if direction == Direction.MATCH:
        a = np.abs(delta)
        return a <= d, a > d, f"|delta| <= {_fmt(d)}", f"|delta| > {_fmt(d)}"
    raise ValueError(f"unknown direction {direction!r} (higher, lower or match)")


def decide(
    delta_draws: np.ndarray,
    direction: Direction,
    margin: float,
    threshold: float = DecisionRule.threshold,
    ready_threshold: float | None = None,
    labels: tuple[int | None, int | None] | tuple[()] = (),
) -> Decision:
    """Verdict on one cell from draws of delta = candidate - incumbent. `ready_threshold`
    (default: `threshold`) is what "ready" must reach, higher after repeated looks
    (core/decide/cell_checks.threshold_at, with the two cells' `labels` for the reason)."""
    ok, bad, ok_text, bad_text = condition(delta_draws, direction, margin)
    if ok.size == 0:
        return Decision(Verdict.UNDECIDED, float("nan"), "no draws")
    p_ok, p_bad = float(ok.mean()), float(bad.mean())
    g = float(threshold)
    g_ready = g if ready_threshold is None else max(float(ready_threshold), g)
    if p_ok >= g_ready - _EPS:
        shown = probability_text(p_ok, g_ready)
        return Decision(Verdict.READY, p_ok, f"P({ok_text}) = {shown} >= {bar(g_ready)}")
    if p_ok >= g - _EPS:
        looks = f" with {labels[0]} and {labels[1]} labels" if len(labels) == 2 else ""
        shown = probability_text(p_ok, g_ready)
        why = f"P({ok_text}) = {shown}, but ready needs {bar(g_ready)}{looks}"
        return Decision(
            Verdict.UNDECIDED, p_ok, f"{why} (the bar rises with the labels: repeated looks)"
        )
    if p_bad >= g - _EPS:
        return Decision(
            Verdict.NOT_READY, p_ok, f"P({bad_text}) = {probability_text(p_bad, g)} >= {g:g}"
        )
    return Decision(
        Verdict.UNDECIDED,
        p_ok,
        f"P({ok_text}) = {probability_text(p_ok, g)}, P({bad_text}) = "
        f"{probability_text(p_bad, g)}, neither >= {g:g}",
    )
