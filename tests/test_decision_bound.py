"""The arithmetic of bench/decision_bound.py (issue 22's bound on what any rule could decide in
the margin world): no sampling, a few simulated workspaces."""

import sys
from pathlib import Path

import numpy as np
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import decision_bound as bound
import decision_errors as sim


def test_the_likelihood_is_the_product_over_the_responses():
    # 200 judged responses, 4 labelled: (h, j) = (1, 1), (0, 1), (1, 0), (1, 0)
    theta, fpr, se = 0.7, 0.1, 0.85
    labelled = [(1, 1), (0, 1), (1, 0), (1, 0)]
    n = np.zeros((2, 2))
    for h, j in labelled:
        n[h, j] += 1
    yes = 120  # judged "yes", the two labelled ones among them
    p_yes = theta * se + (1 - theta) * fpr
    joint = {(1, 1): theta * se, (0, 1): (1 - theta) * fpr, (1, 0): theta * (1 - se)}
    direct = sum(np.log(joint[c]) for c in labelled)  # P(h, j) of the labelled
    direct += (yes - 2) * np.log(p_yes) + (200 - yes - 2) * np.log(1 - p_yes)
    assert np.isclose(bound.loglik(theta, fpr, se, yes, n), direct)


def test_the_posterior_rule_is_the_sum_over_the_grid():
    d = bound.draw(2, 10)
    got = bound.posterior_rule(d, 0.5, 0.15)
    ll = bound.cell_loglik(d, bound.GRID, float(np.hypot(0.5, 0.15)))
    post = np.exp(ll - ll.max(axis=-1, keepdims=True))
    post /= post.sum(axis=-1, keepdims=True)
    held = (bound.GRID[:, None] - bound.GRID[None, :]) > -sim.MARGIN  # [cand, inc]
    naive = np.einsum("wrc,wri,ci->wr", post[:, 1], post[:, 0], held)
    assert np.allclose(got, naive, atol=1e-9)
    # and it tells the +0.12 cells from the one at the margin on average
    assert got[:, :-1].mean() > got[:, -1].mean()


def test_the_worlds_judge_is_its_effects_plus_the_cells_own():
    world = sim.make_world(np.random.default_rng([2026, 0, 3]), "margin", 10)
    own = np.log(world.fpr / (1 - world.fpr)) - world.judge_base  # the cell's own judge effect
    assert 0 < own.std() < 0.5  # drawn N(0, 0.2)
    assert np.allclose(expit(np.log(world.fpr / (1 - world.fpr)) + world.beta), world.se)


def test_the_best_bar_holds_the_margin_cell_to_the_rate():
    rng = np.random.default_rng(0)
    p = np.zeros((200, 2, 6))
    p[:, :, -1] = rng.uniform(0.5, 1.0, (200, 2))  # the margin cell
    p[:, :, :-1] = rng.uniform(0.8, 1.0, (200, 2, 5))
    bars = sim.best_bars(p)
    assert set(bars) == {"pooled", "own"}
    for j, (bar, margin, good) in enumerate(bars.values()):
        assert margin == (p[:, j, -1] >= bar).mean() and 0.04 < margin <= 0.05
        assert 0.9 < bar < 1 and good == (p[:, j, :-1] >= bar).mean()
