"""The shared vocabulary is StrEnums whose values are the strings the outputs always carried:
the JSON, CSV and text reports read the same, and a renamed value would change them."""

import json

from helpers import make_eval_set

from changeover.core.results import FlagKind
from changeover.core.store import Store
from changeover.core.types import Direction, Source, Verdict
from changeover.tui.routes import Route


def test_the_values_are_the_strings_of_the_outputs():
    assert [v.value for v in Verdict] == ["ready", "not ready", "undecided"]
    assert [s.value for s in Source] == ["full", "updated", "instant"]
    assert [d.value for d in Direction] == ["higher", "lower", "match"]
    assert [r.value for r in Route] == ["browse", "rate", "results", "calibration"]
    assert {k.value for k in FlagKind} == {
        "stale_fit",
        "instant_posterior",
        "diagnostics",
        "unlabelled_cell",
        "ties",
        "open_labels",
        "open_labels_counted",
        "missing_judgments",
    }


def test_a_member_serialises_as_its_string():
    value = {"verdict": Verdict.NOT_READY, Source.FULL: [Direction.MATCH]}
    assert json.dumps(value) == '{"verdict": "not ready", "full": ["match"]}'
    assert f"{Verdict.UNDECIDED:<10}|{Verdict.READY}" == "undecided |ready"


def test_a_stored_metric_reads_back_as_a_direction():
    store = Store.memory()
    es = store.eval_set(make_eval_set(store).id)
    assert [type(m.direction) for m in es.metrics] == [Direction, Direction]
    assert es.metrics[0].direction is Direction.HIGHER
