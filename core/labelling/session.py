"""The queue a rating session labels from: the eval set's queue, with a share of blind second
labels (`overlap`) and, on an eval set that keeps a sample, a notice when a cell's sample runs
out (`sample_queue`)."""

from __future__ import annotations

from changeover.core.labelling.overlap import OverlapQueue
from changeover.core.labelling.queue import LabellingQueue, LabelQueue, Scorer
from changeover.core.labelling.sample_queue import SampledQueue
from changeover.core.store import Store
from changeover.core.types import EvalSet


def session_queue(
    store: Store,
    es: EvalSet,
    rater: str,
    *,
    seed: int,
    overlap: float,
    scorer: Scorer | None,
    workspace: str,
) -> LabellingQueue:
    """`rater`'s queue on `es`; `workspace` names the file in the command that draws more."""
    queue = LabelQueue(store, es, rater, seed=seed, scorer=scorer)
    queued = OverlapQueue(queue, share=overlap, seed=seed) if overlap else queue
    source = store.eval_set_source(es.id)
    return queued if source is None else SampledQueue(queued, source, workspace)
