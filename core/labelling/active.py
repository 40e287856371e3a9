"""The active labelling rule: after a fit, label where a label settles the most open decisions.

The rule, in words (for the README):

    Until every (model, region) cell holds the minimum number of labelled responses, the
    queue fills the emptiest cell first. After a fit, each cell is scored by the value of one
    more label for the decisions still open. A decision is open while a candidate's verdict
    is "undecided"; a candidate that is already "ready" or "not ready" needs no more labels.
    For every undecided (metric, region) comparison of an open candidate, a forecast says
    how many more labels (N) make it even odds that the comparison is settled, and how to
    split them between the candidate's cell (a) and the incumbent's cell (b). The forecast
    is core/decide/forecast.py's labels-needed forecast with one change: the posterior mean is allowed
    to move as labels arrive (a preposterior forecast, `settle_forecast`), so a cell whose
    mean sits on the margin is not written off as hopeless. Each label in the
    candidate's cell is worth (a / N) / N and each label in the incumbent's cell (b / N) / N:
    the share of the work that cell does, times the progress one label makes on that
    decision. A cell's score sums this over the metrics and, for an incumbent cell, over every
    candidate compared with it; so the cheapest open decisions come first, and a candidate
    whose worst cell can be shown "not ready" quickly is settled without labelling the rest.
    While any open cell of a candidate leans "not ready" (probability of its ready condition
    below one half), only such cells count for that candidate: one "not ready" cell settles it.
    A comparison the forecast cannot settle within its cap (2000 labels) counts as needing
    twice the cap (nearly worthless until nothing better is left). A candidate whose cells
    are all ready but that lacks the minimum of human labels on a metric gets the shortfall
    spread over its regions. As labels arrive, a forecast's labels are counted off, so a batch moves on to
    the next decision instead of piling onto one cell; the next fit recomputes everything.
    Inside a cell the response is drawn at random with the judge's levels balanced (the
    queue's own rule), so which responses get human labels still depends only on the cell
    and the judge's level, the assumption the calibration model rests on.

Plugging it into core/labelling/queue.py: ``LabelQueue(..., scorer=make_scorer(posteriors, eval_set))``,
from a kept fit (core/workspace.py builds it for the queue; none before the first fit).
``cell_scores`` gives the static scores (e.g. to show them); ``make_scorer`` wraps them in the
queue's Scorer signature (a callable over the queue's CellStates returning weights per cell),
with ``greedy=True`` (default) giving all weight to the best cell(s), so the queue's weighted
draw becomes "the cell whose label is worth most".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from changeover.core.decide.cell_checks import threshold_at
from changeover.core.decide.forecast import Comparison, smallest_total
from changeover.core.decide.rule import DecisionRule
from changeover.core.decide.verdicts import decide_all, specs_of
from changeover.core.model.cell_draws import CellDraws
from changeover.core.types import Direction, EvalSet, Verdict

Cell = tuple[str, str]  # (model, region)


@dataclass(frozen=True)
class Need:
    """Labels one open decision wants in one cell, and what each of them is worth."""

    cell: Cell
    labels: int  # forecast labels for this cell (at least 1)
    value: float  # value of one label here for this decision
    why: str  # e.g. "correct/EU: cand-a vs old"


def settle_forecast(
    comparison: Comparison, max_labels: int = DecisionRule.max_labels
) -> tuple[int, int] | None:
    """Labels (candidate cell, incumbent cell) after which the comparison is settled with
    probability one half, or None beyond max_labels; a preposterior forecast.

    Normal approximation: delta's posterior variance shrinks like core/decide/forecast.py's
    (n / (n + a) per model, best of 21 splits), and, unlike that forecast, the posterior mean
    moves: after the labels it is distributed around today's mean with the variance they
    remove (law of total variance). Settled means the new mean lies z * new sd beyond the
    boundary (-margin for "higher", +margin for "lower", the nearer of the two for "match"),
    z the normal quantile of the threshold the cell must reach with those labels (it rises with
    the labels: core/decide/cell_checks.threshold_at). A cell whose mean sits on the boundary is
    therefore not hopeless: a few multiples of its labels will usually push it to one side.
    """
    projection = comparison.projection()
    direction, margin, threshold = comparison.direction, comparison.margin, comparison.threshold
    mu, v0 = projection.mean, projection.variance
    if v0 <= 1e-18:
        return (0, 0)
    bound = {Direction.HIGHER: -margin, Direction.LOWER: margin}.get(
        direction, margin if mu >= 0 else -margin
    )

    def best(total: int) -> tuple[float, int, int]:
        a, b, v = projection.after(total)
        z = ndtri(threshold_at(threshold, *comparison.labels_after(a, b)))
        v = np.maximum(v, 1e-18)
        tau = np.sqrt(np.maximum(v0 - v, 1e-18))
        sd = np.sqrt(v)
        p = ndtr((mu - bound - z * sd) / tau) + ndtr((bound - mu - z * sd) / tau)
        k = int(np.argmax(p))
        return float(p[k]), int(a[k]), int(b[k])

    if best(max_labels)[0] < 0.5:
        return None
    # the chance grows with the total
    _, a, b = best(smallest_total(lambda t: best(t)[0] >= 0.5, max_labels))
    return a, b


def needs(
    posteriors: Sequence,
    eval_set: EvalSet,
    rule: DecisionRule = DecisionRule(),
    forecast: str = "preposterior",
    cache: CellDraws | None = None,
) -> list[Need]:
    """Every open decision's forecast labels per cell (see the module docstring).
    `forecast`: "preposterior" (settle_forecast) or "decide" (core/decide/forecast.py's);
    `cache`: the instant cells' draws (the workspace's)."""
    incumbent = eval_set.incumbent
    specs = {k: v for k, v in specs_of(eval_set).items() if k in {p.metric for p in posteriors}}
    if not posteriors or not specs:
        return []
    regions = tuple(posteriors[0].regions)
    by_metric = {p.metric: p for p in posteriors}
    quantity = {p.metric: p.quantity() for p in posteriors}
    out: list[Need] = []
    max_labels, min_labels = rule.max_labels, rule.min_labels
    for cand in decide_all(posteriors, specs, incumbent, rule, cache):
        if cand.verdict != Verdict.UNDECIDED:
            continue
        open_cells = [c for c in cand.cells if c.decision.verdict == Verdict.UNDECIDED]
        # One "not ready" cell settles the candidate: while some open cell leans that way
        # (P(ready condition) < 0.5), labels for its other cells would be wasted.
        leaning = [c for c in open_cells if c.decision.probability < 0.5]
        for c in leaning or open_cells:
            why = f"{c.metric}/{c.region}: {cand.candidate} vs {incumbent}"
            if forecast == "decide" or c.blocked:  # blocked: labels for its own check
                fc = c.forecast
                split = (
                    None if fc is None or fc.capped else (fc.candidate_labels, fc.incumbent_labels)
                )
            else:
                post, q = by_metric[c.metric], quantity[c.metric]
                r = post.regions.index(c.region)
                direction, margin = specs[c.metric]
                comparison = Comparison(
                    q[:, post.model_index(cand.candidate), r],
                    q[:, post.model_index(incumbent), r],
                    direction,
                    margin,
                    rule.threshold,
                    c.candidate_labels,
                    c.incumbent_labels,
                )
                split = settle_forecast(comparison, max_labels)
            if split is None:
                n_total, a, b = 2 * max_labels, max_labels, max_labels
            else:
                a, b = split
                n_total = max(a + b, 1)
                if a == 0 and b == 0:
                    a = 1
            for model, k in ((cand.candidate, a), (incumbent, b)):
                if k > 0:
                    out.append(Need((model, c.region), k, (k / n_total) / n_total, why))
        if not open_cells:  # every cell ready, but too few labels on some metric
            for metric, count in cand.labels.items():
                if count is not None and count < min_labels:
                    short = min_labels - count
                    per = -(-short // max(len(regions), 1))
                    for region in regions:
                        out.append(
                            Need(
                                (cand.candidate, region),
                                per,
                                1.0 / short,
                                f"{metric}: {cand.candidate} below {min_labels} labels",
                            )
                        )
    return out


def _all_cells(posteriors: Sequence) -> list[Cell]:
    cells: list[Cell] = []
    for p in posteriors:
        cells += [(m, r) for m in p.models for r in p.regions if (m, r) not in cells]
    return cells


def cell_scores(
    posteriors: Sequence,
    eval_set: EvalSet,
    counts: Mapping | None = None,
    rule: DecisionRule = DecisionRule(),
    forecast: str = "preposterior",
) -> dict[Cell, float]:
    """Value of one more label in each (model, region) cell for the decisions still open;
    0 for cells no open decision needs. `counts` is accepted for symmetry and unused: the
    labels per cell come from the posteriors' flags."""
    scores = dict.fromkeys(_all_cells(posteriors), 0.0)
    for need in needs(posteriors, eval_set, rule, forecast):
        scores[need.cell] = scores.get(need.cell, 0.0) + need.value
    return scores


class ActiveScorer:
    """The queue's Scorer: weights per cell from the open decisions, counting off labels as
    they arrive (CellState.labelled grows) until the next fit replaces the scorer."""

    def __init__(self, need_list: Sequence[Need], cells: Sequence[Cell], greedy: bool = True):
        self.need_list = list(need_list)
        self.cells = list(cells)
        self.greedy = greedy
        self.baseline: dict[Cell, int] | None = None

    def scores(self, labelled: Mapping[Cell, int]) -> dict[Cell, float]:
        """Value per cell given labelled responses per cell now."""
        if self.baseline is None:
            self.baseline = dict(labelled)
        out = dict.fromkeys(self.cells, 0.0)
        static = dict.fromkeys(self.cells, 0.0)
        for need in self.need_list:
            static[need.cell] = static.get(need.cell, 0.0) + need.value
            added = labelled.get(need.cell, 0) - self.baseline.get(need.cell, 0)
            if added < need.labels:
                out[need.cell] = out.get(need.cell, 0.0) + need.value
        if not any(v > 0 for v in out.values()):
            out = static  # every forecast met before the refit: keep to the open decisions
        return out

    def __call__(self, states: Sequence) -> dict[Cell, float]:
        scores = self.scores({s.cell: s.labelled for s in states})
        if not self.greedy:
            return scores
        open_ = {s.cell for s in states}
        best = max((v for c, v in scores.items() if c in open_), default=0.0)
        if best <= 0:
            return dict.fromkeys(scores, 0.0)
        return {
            c: (1.0 if c in open_ and v >= best * (1 - 1e-9) else 0.0) for c, v in scores.items()
        }


def make_scorer(
    posteriors: Sequence,
    eval_set: EvalSet,
    rule: DecisionRule = DecisionRule(),
    greedy: bool = True,
    forecast: str = "preposterior",
    cache: CellDraws | None = None,
) -> ActiveScorer:
    """A scorer for core.labelling.queue.LabelQueue built from a fit's posteriors (see the docstring)."""
    return ActiveScorer(
        needs(posteriors, eval_set, rule, forecast, cache),
        _all_cells(posteriors),
        greedy=greedy,
    )
