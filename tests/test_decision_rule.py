"""One decision rule passed whole (and the key results are kept by), each metric's evidence
computed once for every candidate, and the instant draws kept by the workspace, not a module."""

from dataclasses import replace

import numpy as np
from helpers import build_workspace, random_counts, save_canned_fit

from changeover.core.decide import cell_checks
from changeover.core.decide.rule import DecisionRule
from changeover.core.decide.verdicts import decide_all
from changeover.core.model.instant import CellDraws, instant_posterior
from changeover.core.settings import Settings
from changeover.core.types import Direction, Source
from changeover.core.workspace import Workspace


def test_the_rule_is_what_results_are_kept_by():
    store, es = build_workspace()
    save_canned_fit(store, es)
    ws = Workspace(store)
    default = ws.results(es)
    assert default.rule == DecisionRule.of_fit(Settings()) == DecisionRule()
    assert ws.results(es) is default
    strict = ws.results(es, rule=DecisionRule(threshold=0.99))
    assert strict is not default and (strict.threshold, strict.min_labels) == (0.99, 30)
    assert ws.results(es, rule=DecisionRule(threshold=0.99)) is strict
    asked = ws.decision_rule(es, threshold=0.9, min_labels=5)
    assert asked == DecisionRule(threshold=0.9, min_labels=5)
    assert ws.decision_rule(es) == DecisionRule(min_labels=Settings().min_labels)


def test_a_fit_keeps_its_own_minimum_of_labels():
    assert DecisionRule.of_fit(Settings(min_labels=12)).min_labels == 12
    assert DecisionRule.of_fit(Settings(min_labels=12), min_labels=40).min_labels == 40
    assert DecisionRule.of_fit(None, threshold=0.9) == DecisionRule(threshold=0.9)


def test_each_metric_is_checked_on_its_own_data_once_for_every_candidate(monkeypatch):
    counts = random_counts(4, 3)
    post = replace(instant_posterior(counts, [1 / 3] * 3), source=Source.FULL)
    real, calls = cell_checks.own_quantity, []

    def counted(p, cache=None):
        calls.append(p.metric)
        return real(p, cache)

    monkeypatch.setattr(cell_checks, "own_quantity", counted)
    decided = decide_all([post], {"m": (Direction.HIGHER, 0.03)}, "mod0")
    assert [d.candidate for d in decided] == ["mod1", "mod2", "mod3"]
    assert calls == ["m"]


def test_kept_cell_draws_change_no_number_and_a_changed_cell_is_drawn_again():
    counts, weights, cells = random_counts(3, 2, L=3), [0.5, 0.5], CellDraws()
    kept = instant_posterior(counts, weights, cache=cells)
    assert len(cells) == 6
    np.testing.assert_array_equal(kept.p, instant_posterior(counts, weights).p)
    u = counts.u.copy()
    u[1, 0, 2] += 1  # one more judged response in one cell (the labels' prior stays)
    changed = replace(counts, u=u)
    again = instant_posterior(changed, weights, cache=cells)
    assert len(cells) == 7  # that cell alone was drawn again
    np.testing.assert_array_equal(again.p, instant_posterior(changed, weights).p)
    assert not np.array_equal(again.p[:, 1, 0], kept.p[:, 1, 0])
    np.testing.assert_array_equal(again.p[:, 0, 1], kept.p[:, 0, 1])
