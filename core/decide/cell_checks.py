"""What a cell's verdict must pass besides the pooled posterior (README, "Decisions").

The calibration model pools across models and regions, which narrows every interval but can
also decide a cell its own data do not: on simulated workspaces (bench/decision_errors.py) a
candidate exactly at the margin in one region and well above it in five others was pulled up
by about 0.06 there and called ready there in about 15% of fits at threshold 0.95. So a cell is
ready only if

- it holds at least `min_cell_labels` labelled responses in the candidate's cell and in the
  incumbent's, the queue's minimum (a cell is never decided on pooling alone, and an
  unlabelled cell's posterior rests on how the judge behaves elsewhere);
- its own labels agree: the instant posterior (core/model/instant.py: each cell read on its own, the
  judge's level distribution from every judged response and P(H | J) from the cell's labels
  with a prior worth two labels) also gives P(condition) >= the bar. That posterior is
  calibrated cell by cell, so a cell at the margin passes it about 1 - threshold of the time
  whatever the other cells do, and the rule inherits that bound;
- it reaches the bar for its labels: "ready" needs a probability that rises with the labels
  beyond the minimum (`threshold_at`), because a rater looks again after every few labels and
  each look is another chance to cross a fixed threshold;
- the candidate's and the incumbent's judge levels are all labelled: a judge level holding at
  least UNIDENTIFIED_SHARE of a model's judged responses without one label in any of its cells
  leaves P(H | J) there to the pooling and the priors (with labels only where the judge said
  "no", every fit failed its diagnostics): no verdict, but a request to label those responses.

The checks read the count tables the posterior was computed from (`Posterior.counts`, kept
with every fit); a posterior without them is decided on the minimum of labels alone, and its
decisions say so (`CandidateDecision.unchecked`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from changeover.core.decide.rule import MIN_LABELS_PER_CELL
from changeover.core.model.cell_draws import CellDraws
from changeover.core.model.counts import Counts
from changeover.core.model.instant import instant_posterior
from changeover.core.model.posterior import Posterior
from changeover.core.types import Source

# A cell is decided once the candidate's and the incumbent's cell each hold the labels the queue
# brings every cell to first (core/labelling/queue.py); a response whose raters tied counts, it was
# labelled. Why not fewer: README, "Decisions" (verdicts on 5-9 labels, looked at while the
# queue fills the cells, were the first false "ready"s of a labelling session).
MIN_CELL_LABELS = MIN_LABELS_PER_CELL
UNIDENTIFIED_SHARE = 0.05  # a judge level this common with no labels leaves a model unidentified
OWN_DRAWS = 2000


@dataclass(frozen=True)
class LabelRequest:
    """Responses to label before a metric can be decided: a judge level of a model without
    labels (see the module docstring)."""

    metric: str
    model: str
    level: str  # the judge's level, as its label
    judged: int  # responses of the model the judge put at that level

    @property
    def text(self) -> str:
        return (
            f"{self.metric}: label responses of {self.model} the judge rated {self.level!r} "
            f"({self.judged} judged, none labelled)"
        )


# Repeated looks. A rater looks at the verdicts every few labels until they settle, and every
# look is another chance for a cell at the margin to cross a fixed threshold (a random walk
# crosses any level sooner or later). So "ready" must reach a bar that rises with the labels the
# comparison holds beyond the queue's minimum, as the boundaries of a group-sequential design
# do: with g the threshold asked for, n the harmonic mean of the two cells' labels (the labels
# the variance of delta falls with) and rho = n / MIN_CELL_LABELS, between 1 and MAX_RHO,
#     own data (the instant posterior):   1 - (1 - g) / rho
#     the pooled posterior:               1 - (1 - g) * POOLED_SHARE / rho
# On the normal scale the bar grows like sqrt(2 log rho), the growth of the normal-mixture
# boundary of always-valid inference (Robbins 1970). The pooled posterior is asked for more than
# the cell's own data at every look: it borrows from the other cells, which pulls a cell unlike
# them toward them (by +0.056 at the margin on simulated workspaces). Both constants are
# calibrated by simulation, as Bayesian sequential designs calibrate their thresholds
# (bench/decision_errors.py, "until-ready"); "not ready" keeps g, the side a cell exactly at
# the margin lies on. The bar stops rising at MAX_RHO (40 labels a cell: 0.9875 and 0.99375 at
# g = 0.95): rising without end, it roughly doubled the labels the active queue needed to settle
# every decision and left some unsettled at 8,000 (tests/test_label_efficiency_slow.py).
# README, "Decisions".
POOLED_SHARE = 0.5
MAX_RHO = 4.0


Labels = float | None  # labelled responses in a cell (a mean over regions may be fractional)


@overload
def threshold_at(
    threshold: float, candidate_labels: Labels, incumbent_labels: Labels, pooled: bool = True
) -> float: ...
@overload
def threshold_at(
    threshold: float,
    candidate_labels: np.ndarray | Labels,
    incumbent_labels: np.ndarray | Labels,
    pooled: bool = True,
) -> float | np.ndarray: ...
def threshold_at(
    threshold: float,
    candidate_labels: np.ndarray | Labels,
    incumbent_labels: np.ndarray | Labels,
    pooled: bool = True,
) -> float | np.ndarray:
    """The probability "ready" must reach with these labels in the candidate's and the
    incumbent's cell (numbers or arrays of them; see above), for the pooled posterior or for a
    cell's own data; `threshold` itself when the labels are unknown (None)."""
    if candidate_labels is None or incumbent_labels is None:
        return threshold
    nc, ni = np.maximum(candidate_labels, 1), np.maximum(incumbent_labels, 1)
    rho = np.clip(2.0 / (1.0 / nc + 1.0 / ni) / MIN_CELL_LABELS, 1.0, MAX_RHO)
    return 1.0 - (1.0 - threshold) * (POOLED_SHARE if pooled else 1.0) / rho


def bars(
    threshold: float, candidate_labels: Labels, incumbent_labels: Labels, source: Source
) -> tuple[float, float]:
    """(what "ready" needs from a posterior of `source`, what it needs from the cell's own
    data): the pooled bar for a fit, the own bar for an instant posterior, which is unpooled."""
    own = threshold_at(threshold, candidate_labels, incumbent_labels, pooled=False)
    if source == Source.INSTANT:
        return own, own
    return threshold_at(threshold, candidate_labels, incumbent_labels), own


def tables(post: Posterior) -> tuple[np.ndarray, np.ndarray] | None:
    """(n [M, R, L, L], u [M, R, L]) the posterior was computed from, in its model and region
    order, or None when it does not keep its counts."""
    counts = post.counts
    if counts is None:
        return None
    m = [counts.models.index(x) for x in post.models]
    r = [counts.regions.index(x) for x in post.regions]
    return counts.n[np.ix_(m, r)], counts.u[np.ix_(m, r)]


def own_quantity(post: Posterior, cache: CellDraws | None = None) -> np.ndarray | None:
    """[S, M, R] the instant posterior's decision quantity on the same counts, or None (an
    instant posterior already is its own check; a fit without kept counts cannot have one)."""
    kept = tables(post)
    if kept is None or post.source == Source.INSTANT:
        return None
    counts = Counts(post.metric, post.levels, post.models, post.regions, kept[0], kept[1])
    return instant_posterior(counts, post.weights, draws=OWN_DRAWS, cache=cache).quantity()


@dataclass(frozen=True)
class Evidence:
    """What the decisions on one metric read from its posterior, the same for every candidate
    and so computed once per metric (`evidence`): the decision quantity, and the instant
    posterior's on the same counts (its cells' own data; None: no check, see own_quantity)."""

    quantity: np.ndarray  # [S, M, R]
    own: np.ndarray | None  # [S, M, R]


def evidence(post: Posterior, cache: CellDraws | None = None) -> Evidence:
    """The posterior's evidence for every candidate's decision (`cache`: the instant cells'
    draws, kept by the workspace)."""
    return Evidence(post.quantity(), own_quantity(post, cache))


def unidentified(post: Posterior, models: tuple[str, ...]) -> list[LabelRequest]:
    """Judge levels of `models` holding >= UNIDENTIFIED_SHARE of the model's judged responses on
    this metric, without a single label in any of the model's cells."""
    kept = tables(post)
    if kept is None:
        return []
    n, u = kept
    labelled = n.sum(axis=(1, 2))  # [M, L(j)]
    judged = labelled + u.sum(axis=1)
    out = []
    for model in models:
        m = post.model_index(model)
        total = judged[m].sum()
        for j, level in enumerate(post.levels):
            if labelled[m, j] == 0 and total and judged[m, j] >= UNIDENTIFIED_SHARE * total:
                out.append(LabelRequest(post.metric, model, level, int(judged[m, j])))
    return out


# How far (sd, logit scale) the judge may lean in a cell nobody labelled, beyond what pooling
# says: on XSTest one judge's sensitivity ranged 0.21-0.87 across five generating models, about
# 3.2 logits, so an sd of 1 is not generous. Measured effect: README, "What it recovers".
UNLABELLED_JUDGE_SD = 1.0


def widen_unlabelled(
    post: Posterior, sd: float = UNLABELLED_JUDGE_SD, seed: int | Sequence[int] = 0
) -> Posterior:
    """The posterior with every unlabelled cell's interval carrying the judge's unknown lean.

    In a cell without labels only the judge's level distribution t = sum_h p_h P(J | H = h) is
    observed; how the judge behaves there is borrowed from other cells. Per draw the judge's
    cumulative log-odds in such a cell are shifted by one N(0, sd) lean (a harsher or more
    lenient judge), and the true level distribution re-solved so the judge's levels stay as
    observed (clipped to the simplex). Cells with labels are untouched. For the full model's
    posterior; an instant posterior's unlabelled cells already carry its prior's width. Every
    face shows the widened posterior (core/results.py, `build_results`).
    """
    from dataclasses import replace

    labels = np.asarray(post.flags.cell_labels or [])
    if post.source != Source.FULL or labels.size == 0 or not (labels == 0).any():
        return post
    rng = np.random.default_rng(seed)
    p, confusion = post.p.copy(), post.confusion.copy()
    for m, r in zip(*np.nonzero(labels == 0)):
        p[:, m, r], confusion[:, m, r] = _lean(p[:, m, r], confusion[:, m, r], rng, sd)
    widened = tuple((post.models[m], post.regions[r]) for m, r in zip(*np.nonzero(labels == 0)))
    return replace(post, p=p, confusion=confusion, flags=replace(post.flags, widened_cells=widened))


def _lean(
    p: np.ndarray, confusion: np.ndarray, rng: np.random.Generator, sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """(p [S, L], confusion [S, L, L]) of one cell after a random lean of its judge."""
    S, L = p.shape
    t = np.einsum("sh,shj->sj", p, confusion)  # the judge's level distribution, kept
    above = np.clip(1 - np.cumsum(confusion, axis=-1)[..., :-1], 1e-9, 1 - 1e-9)  # P(J > k | h)
    shifted = 1 / (1 + np.exp(-(np.log(above / (1 - above)) + rng.normal(0, sd, (S, 1, 1)))))
    cum = np.concatenate([np.ones((S, L, 1)), shifted, np.zeros((S, L, 1))], axis=-1)
    leaned = np.clip(cum[..., :-1] - cum[..., 1:], 0.0, 1.0)  # [S, h, j]
    solved = np.linalg.solve(np.swapaxes(leaned, 1, 2) + 1e-9 * np.eye(L), t[..., None])[..., 0]
    solved = np.clip(solved, 0.0, None)
    total = solved.sum(axis=1, keepdims=True)
    solved = np.where(total > 0, solved / np.where(total > 0, total, 1.0), p)  # degenerate: keep
    return solved, leaned
