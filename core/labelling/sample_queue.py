"""The labelling queue on an eval set that keeps only a sample of its judged responses.

The queue picks among the stored sample as on any eval set. When a (model, region) cell has no
unlabelled response left in its sample, the queue moves on to other cells, and this wrapper
says so once, with the command that draws more (a larger sample of the same data keeps every
response already kept, so labels are never lost). The notice does not name the cell: a blind
session shows no model name.
"""

from __future__ import annotations

import shlex

from changeover.core.store.rows import EvalSetSource


def draw_more_command(workspace: str, source: EvalSetSource) -> str:
    """The command that draws a larger sample of the same data (or, for counts made elsewhere,
    imports another sample file)."""
    ws, spec = shlex.quote(workspace), shlex.quote(source.spec)
    period = f" --period {shlex.quote(source.period)}" if source.period else ""
    if source.kind == "dataset":
        more = 2 * (source.sample_per_cell or 100)
        return (
            f"changeover import {ws} {shlex.quote(source.location)} --spec {spec}"
            f"{period} --sample-per-cell {more}"
        )
    return (
        f"changeover import-counts {ws} {shlex.quote(source.location)} --spec {spec}{period} "
        "--sample MORE.csv"
    )


class SampledQueue:
    """Wraps a queue (core.labelling.queue.LabelQueue, or core.labelling.overlap.OverlapQueue around one); behaves
    like it and collects notices for the rate screen (`take_notices`)."""

    def __init__(self, queue, source: EvalSetSource, workspace: str):
        self.queue = queue
        self.source = source
        self.workspace = workspace
        self._told: set[tuple[str, str]] = set()
        self._notices: list[str] = []

    def next(self):
        pick = self.queue.next()
        base = self.queue  # an OverlapQueue hands its queue's attributes through
        for cell, any_rater in sorted(base.exhausted):
            if any_rater or cell in self._told:
                continue
            span = max(base.item_hi - base.item_lo + 1, 1)
            left = base.store.pick_responses(
                base.eval_set.id, cell[0], cell[1], base.item_lo, scan=span, limit=1
            )
            if left:  # only responses skipped or on screen in this session remain
                continue
            self._told.add(cell)
            self._notices.append(
                "A cell's sample has no unlabelled response left; the queue goes on with "
                "the other cells. To label more there, draw more: "
                + draw_more_command(self.workspace, self.source)
            )
        return pick

    def take_notices(self) -> list[str]:
        """Notices since the last call (each said once)."""
        out, self._notices = self._notices, []
        return out

    def __getattr__(self, name: str):
        return getattr(self.queue, name)
