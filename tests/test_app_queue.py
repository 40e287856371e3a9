"""The app's labelling queue: active after a fit (issue 5), with blind second labels."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_tui_results import GOOD, INCUMBENT, MAYBE, build_workspace, save_canned_fit

from changeover.core.active import ActiveScorer
from changeover.core.overlap import OverlapQueue
from changeover.tui.app import ChangeoverApp


def test_queue_is_plain_before_the_first_fit_and_active_after_it():
    store, es = build_workspace()
    app = ChangeoverApp(store, rater="cat", seed=3)
    before = app.make_queue(es)
    assert isinstance(before, OverlapQueue) and before.queue.scorer is None
    save_canned_fit(store, es)
    after = app.make_queue(es)
    assert isinstance(after.queue.scorer, ActiveScorer)


def test_after_a_fit_labels_go_where_decisions_are_open():
    """In the canned fit only maybe-model is undecided: once every cell holds its minimum,
    the active queue hands out maybe-model's responses (or the incumbent's, compared with it)."""
    store, es = build_workspace()
    save_canned_fit(store, es)
    app = ChangeoverApp(store, rater="cat", seed=3, overlap=0)
    queue = app.make_queue(es)
    queue.min_per_cell = 1  # every cell already holds 6 labels
    picked = []
    for _ in range(6):
        pick = queue.next()
        picked.append(pick.model)
        queue.done(pick.response_id)
    assert set(picked) <= {MAYBE, INCUMBENT}
    assert MAYBE in picked and GOOD not in picked
