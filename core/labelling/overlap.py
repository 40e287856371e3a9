"""Overlap between raters: a share of responses gets a second, blind label from another rater.

The setting ``share`` (default 0.1) is the share of labelled responses that carry labels of two
raters, the material of the agreement figures (Cohen's kappa, Krippendorff's alpha).

Rule, for rater B asking for the next response: if fewer than ``share`` of the labelled
responses have two raters (``doubled < share * labelled``), B gets one of the responses labelled
by exactly one other rater A, chosen at random (seeded by the seed, B's name and the current
counts, so the same workspace state gives the same pick); otherwise B gets a fresh response
from the queue. Never a response B has labelled, and never a third rater: only responses with
exactly one rater are eligible. It is blind: the rate screen shows B no other rater's label, and
nothing here tells B that the response is an overlap. The rule is self-correcting (it looks at
the workspace's counts, not at a coin), so the realised share converges to the setting whatever
the mix of raters; with a single rater there is nothing to overlap and the share stays 0.

In the app: ``OverlapQueue(LabelQueue(store, eval_set, rater), share=0.1)`` behaves like the
queue (next, done, skip, ...) and slips the second labels in; a second label does not count as
a newly labelled response of its cell.

Two raters asking at the same moment in two processes could, rarely, both be handed the same
singly-labelled response (three raters on it); the picks are seeded by rater name, which keeps
that unlikely, and counts.py's majority label handles three votes anyway.
"""

from __future__ import annotations

import random
from collections.abc import Collection

from changeover.core.types import EvalSet

DEFAULT_SHARE = 0.1


def overlap_due(labelled: int, doubled: int, share: float = DEFAULT_SHARE) -> bool:
    """True when the next response should be a second label: doubled < share * labelled."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"overlap share must be between 0 and 1, not {share}")
    return share > 0 and doubled < share * labelled


def pick_overlap(
    store,
    eval_set: EvalSet,
    rater: str,
    share: float = DEFAULT_SHARE,
    seed: int = 0,
    exclude: Collection[int] = (),
) -> int | None:
    """A response for `rater` to label blind as the second rater, or None: take a fresh one.

    Candidates are responses of the eval set labelled by exactly one rater who is not `rater`;
    `exclude` holds response ids the caller must not get (skipped or already handed out).
    """
    labelled, doubled = store.rater_overlap_counts(eval_set.id)
    if not overlap_due(labelled, doubled, share):
        return None
    candidates = [r for r in store.single_rater_responses(eval_set.id, rater) if r not in exclude]
    if not candidates:
        return None
    rng = random.Random(f"{seed}:{rater}:{labelled}:{doubled}")
    return rng.choice(candidates)


def realised_share(store, eval_set: EvalSet) -> float:
    """Share of labelled responses that carry labels of two or more raters (0 when none)."""
    labelled, doubled = store.rater_overlap_counts(eval_set.id)
    return doubled / labelled if labelled else 0.0


class OverlapQueue:
    """Wraps a core.labelling.queue.LabelQueue: hands out second, blind labels at the overlap share and
    otherwise whatever the queue picks. Same methods as the queue (next, done, skip, ...), so
    the rate screen can use either: ``OverlapQueue(LabelQueue(store, es, rater), share=0.1)``."""

    def __init__(self, queue, share: float = DEFAULT_SHARE, seed: int = 0):
        overlap_due(0, 0, share)  # validates the share
        self.queue = queue
        self.share = share
        self.seed = seed
        self.overlaps: dict[int, object] = {}  # response id -> Pick handed out as an overlap

    def next(self):
        """A second label when one is due (see `pick_overlap`), else the queue's next pick."""
        q = self.queue
        if (resumed := q.resume()) is not None:  # a response left half-labelled comes first
            return resumed
        exclude = set(q.skipped) | set(q.handed) | set(self.overlaps)
        rid = pick_overlap(q.store, q.eval_set, q.rater, self.share, self.seed, exclude)
        if rid is None:
            return q.next()
        from changeover.core.labelling.queue import Pick

        view = q.store.response_view(rid)
        level = next((j.value for j in view.judgments if j.metric == q.metric), None)
        pick = Pick(rid, view.response.model, view.item.region, level)
        self.overlaps[rid] = pick
        return pick

    def done(self, response_id: int, newly_labelled: bool = True) -> None:
        """A second label adds no labelled response to its cell; others go to the queue."""
        if self.overlaps.pop(response_id, None) is None:
            self.queue.done(response_id, newly_labelled)

    def skip(self, response_id: int) -> None:
        self.overlaps.pop(response_id, None)
        self.queue.skip(response_id)

    def __getattr__(self, name: str):
        return getattr(self.queue, name)
