"""What a decision asks of the labels and the draws: one frozen rule, passed whole from the faces
through the workspace and the results to every verdict and to the active queue."""

from __future__ import annotations

from dataclasses import dataclass

from changeover.core.settings import Settings

# The labelled responses every (model, region) cell gets first. The calibration view warns
# below the same number, so "too few labels" means "the queue has not got there yet".
MIN_LABELS_PER_CELL = 10


@dataclass(frozen=True)
class DecisionRule:
    """The bars a verdict is decided by (README, "Decisions"); also the key results are kept by."""

    threshold: float = 0.95  # the posterior probability a verdict needs
    # human labels a candidate needs on each metric to be ready; a fit keeps its own (Settings)
    min_labels: int = Settings.min_labels
    min_cell_labels: int = MIN_LABELS_PER_CELL  # labelled responses in a cell before its verdict
    max_labels: int = 2000  # the labels-needed forecast looks this far ("more than N")

    @classmethod
    def of_fit(
        cls,
        settings: Settings | None,
        threshold: float | None = None,
        min_labels: int | None = None,
    ) -> DecisionRule:
        """The rule for a fit's results: the threshold and minimum asked for, the minimum
        defaulting to the fit's setting (no fit: the default settings')."""
        return cls(
            threshold=cls.threshold if threshold is None else threshold,
            min_labels=(settings or Settings()).min_labels if min_labels is None else min_labels,
        )
