"""The judge against the humans, cell by cell: counts, kappa, the judge's estimated accuracy
with 90% intervals, and warnings where the judge looks near random or a cell is thin.

One `CalibrationCell` per (metric, model, region) carries everything the calibration screen,
the report (text, Markdown, JSON, CSV) and export show about the judge in that cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from changeover.core.decide.rule import MIN_LABELS_PER_CELL
from changeover.core.judge.agreement import kappa_from_table, kappa_weights_for
from changeover.core.model.counts import Counts
from changeover.core.model.posterior import Interval, Posterior, interval

KAPPA_FLOOR = 0.2  # below this the judge agrees with humans little better than chance
# Labels a cell needs before its judge accuracy means much: the number the labelling queue
# brings every cell to first, so "few labels" means "the queue has not got there yet".
CELL_MINIMUM = MIN_LABELS_PER_CELL

Matrix = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class CalibrationCell:
    """The judge in one (metric, model, region) cell."""

    metric: str
    model: str
    region: str
    labels: int
    kappa: float  # judge vs (majority) human; quadratic-weighted for scales; NaN if undefined
    sensitivity: Interval | None  # yes/no: P(J = yes | H = yes)
    specificity: Interval | None  # yes/no: P(J = no | H = no)
    youden: Interval | None  # yes/no: se + sp - 1 (0: a judge no better than a coin)
    exact: tuple[Interval, ...]  # scales: P(J = h | H = h) per level h
    confusion_mean: Matrix  # P(J = j | H = h): rows human level h, columns judge level j
    confusion_lower: Matrix
    confusion_upper: Matrix
    counts: tuple[tuple[int, ...], ...] | None  # labelled responses, human h x judge j
    judge_only: tuple[int, ...] | None  # judged, unlabelled responses by judge level
    warnings: tuple[str, ...] = ()


def _matrix(a: np.ndarray) -> Matrix:
    return tuple(tuple(float(x) for x in row) for row in a)


def calibration_cells(
    posterior: Posterior,
    counts: Counts | None,
    cell_minimum: int = CELL_MINIMUM,
    kappa_floor: float = KAPPA_FLOOR,
) -> list[CalibrationCell]:
    """Every (model, region) cell of one metric. `counts` are today's (they may be newer than
    the posterior's when a fit is stale); without them the posterior's own counts are used."""
    counts = counts if counts is not None else posterior.counts
    weights = kappa_weights_for(len(posterior.levels))
    binary = len(posterior.levels) == 2
    conf_all = posterior.confusion  # [S, M, R, L(h), L(j)]
    # every cell's quantiles in one pass (per cell, numpy's quantile cost most of the time)
    lo_all, hi_all = np.quantile(conf_all, [0.05, 0.95], axis=0)
    mean_all = conf_all.mean(axis=0)
    youden_all = conf_all[..., 1, 1] + conf_all[..., 0, 0] - 1.0 if binary else None
    cells = []
    for m, model in enumerate(posterior.models):
        for r, region in enumerate(posterior.regions):
            table = judge_only = None
            if counts is not None and model in counts.models and region in counts.regions:
                cm, cr = counts.models.index(model), counts.regions.index(region)
                table, judge_only = counts.n[cm, cr], counts.u[cm, cr]
            labels = int(table.sum()) if table is not None else _posterior_labels(posterior, m, r)
            kappa = kappa_from_table(table, weights) if table is not None else float("nan")
            lo, hi, mean = lo_all[m, r], hi_all[m, r], mean_all[m, r]
            se = sp = youden = None
            exact: tuple[Interval, ...] = ()
            if youden_all is not None:
                se = Interval(float(mean[1, 1]), float(lo[1, 1]), float(hi[1, 1]))
                sp = Interval(float(mean[0, 0]), float(lo[0, 0]), float(hi[0, 0]))
                youden = interval(youden_all[:, m, r])
            else:
                exact = tuple(
                    Interval(float(mean[h, h]), float(lo[h, h]), float(hi[h, h]))
                    for h in range(len(mean))
                )
            cells.append(
                CalibrationCell(
                    metric=posterior.metric,
                    model=model,
                    region=region,
                    labels=labels,
                    kappa=kappa,
                    sensitivity=se,
                    specificity=sp,
                    youden=youden,
                    exact=exact,
                    confusion_mean=_matrix(mean),
                    confusion_lower=_matrix(lo),
                    confusion_upper=_matrix(hi),
                    counts=None
                    if table is None
                    else tuple(tuple(int(x) for x in row) for row in table),
                    judge_only=None if judge_only is None else tuple(int(x) for x in judge_only),
                    warnings=_warnings(labels, kappa, youden, cell_minimum, kappa_floor),
                )
            )
    return cells


def _warnings(
    labels: int, kappa: float, youden: Interval | None, cell_minimum: int, kappa_floor: float
) -> tuple[str, ...]:
    out = []
    if labels == 0:
        out.append("no labels: judge accuracy unknown")
    elif labels < cell_minimum:
        out.append(f"few labels ({labels} < {cell_minimum})")
    if np.isfinite(kappa) and kappa < kappa_floor:
        out.append(f"near random: kappa {kappa:.2f} < {kappa_floor:g}")
    if youden is not None and youden.includes(0.0) and labels > 0:
        out.append("near random: se+sp-1 reaches 0")
    return tuple(out)


def _posterior_labels(posterior: Posterior, m: int, r: int) -> int:
    table = posterior.flags.cell_labels
    return 0 if table is None else table[m][r]
