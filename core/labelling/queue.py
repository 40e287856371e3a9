"""Which response to label next.

First every (model, region) cell is filled to a minimum number of labelled responses (the
emptiest cell first); after that cells are drawn at random, or in proportion to a pluggable
`scorer` (the value of a label once a fit exists). Inside a cell the pick is random and
balances the judge's levels: the level with the fewest labels so far is tried first. So which
response gets a human label depends only on its cell and its judge level, the promise the
calibration model rests on. Deterministic given the seed and the workspace's contents. A
response the rater left half-labelled (a session that was killed) comes back to them first.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from changeover.core.decide.rule import MIN_LABELS_PER_CELL
from changeover.core.types import EvalSet

Cell = tuple[str, str]  # (model, region)


@dataclass
class CellState:
    """Labelled responses of one cell, in total and per judge level of the balance metric."""

    model: str
    region: str
    labelled: int = 0
    by_level: dict[int | None, int] = field(default_factory=dict)

    @property
    def cell(self) -> Cell:
        return (self.model, self.region)


# A scorer weighs the cells once they all hold the minimum: higher weight, more labels.
Scorer = Callable[[Sequence[CellState]], Mapping[Cell, float]]


@dataclass(frozen=True)
class Pick:
    """A response handed out by the queue, with the cell and judge level it came from."""

    response_id: int
    model: str
    region: str
    judge_level: int | None


class LabelQueue:
    """Hands out responses for one rater on one eval set."""

    REFRESH_EVERY = 25  # re-read the cell counts now and then: other raters label too

    def __init__(
        self,
        store,
        eval_set: EvalSet,
        rater: str,
        seed: int = 0,
        min_per_cell: int = MIN_LABELS_PER_CELL,
        scorer: Scorer | None = None,
        balance_metric: str | None = None,
    ):
        self.store = store
        self.eval_set = eval_set
        self.rater = rater
        self.min_per_cell = min_per_cell
        self.scorer = scorer
        self.rng = random.Random(seed)
        metric = balance_metric or (eval_set.metrics[0].name if eval_set.metrics else None)
        self.metric = metric
        self.levels: tuple[int, ...] = (
            tuple(range(eval_set.metric(metric).n_levels)) if metric else ()
        )
        self.models = tuple(store.models(eval_set.id))
        self.item_lo, self.item_hi = store.item_id_range(eval_set.id)
        self.skipped: set[int] = set()
        self.handed: dict[int, Pick] = {}
        self.exhausted: set[tuple[Cell, bool]] = set()  # (cell, "any rater") with nothing left
        self._since_refresh = 0
        self.cells: dict[Cell, CellState] = {}
        self.refresh()
        # responses this rater left half-labelled (a session that was killed): first, in order
        self.unfinished = store.unfinished(eval_set.id, rater, [m.name for m in eval_set.metrics])

    # ---- state ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read labelled counts per cell and judge level from the workspace."""
        cells = {(m, r): CellState(m, r) for m in self.models for r in self.eval_set.region_names}
        for model, region, level, n in self.store.cell_label_counts(self.eval_set.id, self.metric):
            state = cells.get((model, region))
            if state is not None:
                state.labelled += n
                state.by_level[level] = state.by_level.get(level, 0) + n
        self.cells = cells
        self._since_refresh = 0

    def cell_progress(self, model: str, region: str) -> tuple[int, int]:
        """(labelled responses, minimum) of a cell."""
        state = self.cells.get((model, region))
        return (state.labelled if state else 0, self.min_per_cell)

    def labelled_total(self) -> int:
        return sum(c.labelled for c in self.cells.values())

    def skip(self, response_id: int) -> None:
        """Do not hand this response out again in this session."""
        self.skipped.add(response_id)
        self.handed.pop(response_id, None)

    def done(self, response_id: int, newly_labelled: bool = True) -> None:
        """The rater answered every metric of a response the queue handed out."""
        pick = self.handed.pop(response_id, None)
        if not newly_labelled:
            return
        if pick is None:  # handed out and answered before (an undo walked back into it)
            self.refresh()  # its cell's counts, read again from the workspace
            return
        state = self.cells.get((pick.model, pick.region))
        if state is not None:
            state.labelled += 1
            state.by_level[pick.judge_level] = state.by_level.get(pick.judge_level, 0) + 1

    # ---- choosing ------------------------------------------------------------------------

    def resume(self) -> Pick | None:
        """A response this rater left half-labelled in an earlier session, or None."""
        while self.unfinished:
            rid = self.unfinished.pop(0)
            if rid in self.skipped or rid in self.handed:
                continue
            view = self.store.response_view(rid)
            level = next((j.value for j in view.judgments if j.metric == self.metric), None)
            pick = Pick(rid, view.response.model, view.item.region, level)
            self.handed[rid] = pick
            return pick
        return None

    def next(self) -> Pick | None:
        """The next response to label, or None when nothing is left for this rater: a response
        left half-labelled first, then the queue's pick."""
        if (resumed := self.resume()) is not None:
            return resumed
        self._since_refresh += 1
        if self._since_refresh >= self.REFRESH_EVERY:
            self.refresh()
        for any_rater in (False, True):  # prefer responses nobody has labelled yet
            for cell in self._cell_order(any_rater):
                pick = self._pick_in_cell(cell, any_rater)
                if pick is not None:
                    self.handed[pick.response_id] = pick
                    return pick
                self.exhausted.add((cell, any_rater))
        return None

    def _cell_order(self, any_rater: bool):
        """Cells to try, best first: the emptiest below the minimum, else a weighted draw."""
        open_cells = [c for c in self.cells.values() if (c.cell, any_rater) not in self.exhausted]
        short = [c for c in open_cells if c.labelled < self.min_per_cell]
        if short:
            keyed = sorted(((c.labelled, self.rng.random()), c.cell) for c in short)
            yield from (cell for _, cell in keyed)
        weights = dict(self.scorer(open_cells)) if self.scorer else {}
        rest = [c.cell for c in open_cells if c.labelled >= self.min_per_cell]
        while rest:
            w = [max(float(weights.get(cell, 1.0)), 0.0) for cell in rest]
            if sum(w) <= 0:
                w = [1.0] * len(rest)
            cell = self.rng.choices(rest, weights=w)[0]
            rest.remove(cell)
            yield cell

    def _pick_in_cell(self, cell: Cell, any_rater: bool) -> Pick | None:
        state = self.cells[cell]
        levels = sorted(self.levels, key=lambda lv: (state.by_level.get(lv, 0), self.rng.random()))
        for level in [*levels, None]:  # None: any level (missing judgments, exhausted levels)
            found = self._random_in(cell, level, any_rater)
            if found is not None:
                return Pick(
                    found, cell[0], cell[1], level if level is not None else self._level_of(found)
                )
        return None

    def _random_in(self, cell: Cell, level: int | None, any_rater: bool) -> int | None:
        if self.item_hi < self.item_lo:
            return None
        pivot = self.rng.randint(self.item_lo, self.item_hi)
        metric = self.metric if level is not None else None
        rater = self.rater if any_rater else None
        # enough candidates to step over the ones skipped or on screen, and no more
        limit = 3 + len(self.skipped) + len(self.handed)
        for start in (pivot, self.item_lo):  # from a random point on, then wrap around
            ids = self.store.pick_responses(
                self.eval_set.id, cell[0], cell[1], start, metric, level, rater, limit=limit
            )
            for rid in ids:
                if rid not in self.skipped and rid not in self.handed:
                    return rid
        return None

    def _level_of(self, response_id: int) -> int | None:
        if self.metric is None:
            return None
        view = self.store.response_view(response_id)
        return next((j.value for j in view.judgments if j.metric == self.metric), None)
