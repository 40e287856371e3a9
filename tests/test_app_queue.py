"""The labelling queue the workspace hands the app: active after a fit, with blind second
labels."""

from helpers import GOOD, INCUMBENT, MAYBE, build_workspace, save_canned_fit

from changeover.core.labelling.active import ActiveScorer
from changeover.core.labelling.overlap import OverlapQueue
from changeover.core.workspace import Workspace


def test_queue_is_plain_before_the_first_fit_and_active_after_it():
    store, es = build_workspace()
    ws = Workspace(store)
    before = ws.queue(es, "cat", seed=3)
    assert isinstance(before, OverlapQueue) and before.queue.scorer is None
    save_canned_fit(store, es)
    after = ws.queue(es, "cat", seed=3)
    assert isinstance(after.queue.scorer, ActiveScorer)


def test_after_a_fit_labels_go_where_decisions_are_open():
    """In the canned fit only maybe-model is undecided: once every cell holds its minimum,
    the active queue hands out maybe-model's responses (or the incumbent's, compared with it)."""
    store, es = build_workspace()
    save_canned_fit(store, es)
    queue = Workspace(store).queue(es, "cat", seed=3, overlap=0)
    queue.min_per_cell = 1  # every cell already holds 6 labels
    picked = []
    for _ in range(6):
        pick = queue.next()
        picked.append(pick.model)
        queue.done(pick.response_id)
    assert set(picked) <= {MAYBE, INCUMBENT}
    assert MAYBE in picked and GOOD not in picked
