"""The instant posterior's draws, kept cell by cell (core/model/instant.py draws them). Apart
from instant.py so that a `Workspace` can own one from the moment it opens without loading
numpy."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class CellDraws:
    """Draws of single cells kept by what they depend on (seed, metric, cell, its counts, the
    number of draws, the prior), so a refresh after one new label redraws one cell instead of
    all of them. A `Workspace` owns one and it goes with it; a cell whose counts changed has a
    new key, so old draws are never served for new data."""

    LIMIT = 4096  # cells kept at most; then the store starts again

    def __init__(self) -> None:
        self._kept: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, key: tuple) -> tuple[np.ndarray, np.ndarray] | None:
        return self._kept.get(key)

    def __len__(self) -> int:
        return len(self._kept)

    def put(self, key: tuple, drawn: tuple[np.ndarray, np.ndarray]) -> None:
        if len(self._kept) >= self.LIMIT:
            self._kept.clear()
        self._kept[key] = drawn
