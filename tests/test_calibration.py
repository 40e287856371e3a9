"""The judge against the humans per cell: counts, kappa, accuracy intervals and warnings."""

from __future__ import annotations

import numpy as np
import pytest

from changeover.core.judge.calibration import calibration_cells
from changeover.core.model.counts import Counts


def _posterior(
    se: float, sp: float, models=("a",), regions=("eu",), draws: int = 201, spread: float = 0.05
):
    from changeover.core.model.posterior import CellFlags, Posterior

    off = np.linspace(-1.0, 1.0, draws)[:, None, None]
    M, R = len(models), len(regions)
    conf = np.zeros((draws, M, R, 2, 2))
    conf[..., 1, 1] = se + spread * off
    conf[..., 1, 0] = 1 - conf[..., 1, 1]
    conf[..., 0, 0] = sp + spread * off
    conf[..., 0, 1] = 1 - conf[..., 0, 0]
    p = np.full((draws, M, R, 2), 0.5)
    return Posterior(
        "correct",
        ("no", "yes"),
        models,
        regions,
        np.ones(R) / R,
        p,
        conf,
        flags=CellFlags.from_dict({"cell_labels": [[0] * R for _ in models]}),
    )


def test_calibration_intervals_and_warnings():
    n = np.zeros((2, 1, 2, 2), dtype=np.int64)
    n[0, 0] = [[20, 5], [10, 15]]  # kappa 0.4, 50 labels
    n[1, 0] = [[3, 2], [2, 1]]  # only 8 labels
    u = np.zeros((2, 1, 2), np.int64)
    u[0, 0] = [100, 40]
    counts = Counts("correct", ("no", "yes"), ("a", "b"), ("eu",), n, u)
    good = _posterior(0.9, 0.8, models=("a", "b"))
    a, b = calibration_cells(good, counts, cell_minimum=10)
    assert (a.model, a.region, a.labels) == ("a", "eu", 50)
    assert a.counts == ((20, 5), (10, 15)) and a.judge_only == (100, 40)
    assert a.kappa == pytest.approx(0.4) and a.warnings == ()
    assert a.sensitivity.mean == pytest.approx(0.9) and a.specificity.mean == pytest.approx(0.8)
    assert a.sensitivity.lower < 0.9 < a.sensitivity.upper and a.youden.mean == pytest.approx(0.7)
    assert a.confusion_mean[1][1] == pytest.approx(0.9) and a.confusion_mean[0][0] == pytest.approx(
        0.8
    )
    assert a.confusion_lower[1][1] < 0.9 < a.confusion_upper[1][1]
    assert "few labels (8 < 10)" in b.warnings
    # a coin-flip judge: se + sp - 1 around 0, and kappa below the floor
    n[1, 0] = [[10, 10], [10, 10]]
    coin = _posterior(0.5, 0.5, models=("a", "b"))
    b = calibration_cells(coin, counts, cell_minimum=10)[1]
    assert b.youden.includes(0.0) and b.kappa == pytest.approx(0.0)
    assert any("kappa 0.00 < 0.2" in w for w in b.warnings)
    assert any("se+sp-1 reaches 0" in w for w in b.warnings)
    assert not any("few labels" in w for w in b.warnings)  # 40 labels: enough
    # no counts at all: labels from the posterior's flags, and the cell says it has none
    only_post = calibration_cells(coin, None)
    assert only_post[0].counts is None and only_post[0].labels == 0
    assert any("no labels" in w for w in only_post[0].warnings)


def test_scale_cells_show_the_diagonal_per_level():
    draws, L = 101, 3
    conf = np.zeros((draws, 1, 1, L, L))
    for h in range(L):
        conf[:, 0, 0, h, :] = 0.1
        conf[:, 0, 0, h, h] = 0.8
    from changeover.core.model.posterior import Posterior

    post = Posterior(
        "style",
        ("1", "2", "3"),
        ("a",),
        ("eu",),
        np.ones(1),
        np.full((draws, 1, 1, L), 1 / L),
        conf,
    )
    n = np.zeros((1, 1, L, L), np.int64)
    n[0, 0] = np.eye(L, dtype=np.int64) * 5
    (cell,) = calibration_cells(
        post, Counts("style", post.levels, ("a",), ("eu",), n, np.zeros((1, 1, L), np.int64))
    )
    assert cell.sensitivity is None and len(cell.exact) == L
    assert all(iv.mean == pytest.approx(0.8) for iv in cell.exact)
    assert cell.kappa == pytest.approx(1.0)


def test_few_labels_means_below_the_queue_cell_target():
    """One threshold: a cell warns about few labels exactly while the labelling queue is still
    filling it (it warned below 30 while the queue stops filling at 10, so every cell warned)."""
    import inspect

    from changeover.core.decide.rule import MIN_LABELS_PER_CELL
    from changeover.core.judge.calibration import CELL_MINIMUM
    from changeover.core.labelling.queue import LabelQueue

    default = inspect.signature(calibration_cells).parameters["cell_minimum"].default
    queue_target = inspect.signature(LabelQueue).parameters["min_per_cell"].default
    assert default == queue_target == CELL_MINIMUM == MIN_LABELS_PER_CELL == 10
