"""The compiled likelihood kernels (core/model/likelihood.py): values against independent formulas,
gradients against finite differences, and the whole model's gradient through the PyTensor Ops."""

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit, log_expit

from changeover.core.model.counts import Counts
from changeover.core.model.fit import CELL_SD, Settings, build_model
from changeover.core.model.likelihood import aligned_loglik, table_loglik


def ordered_logistic(loc, cut):
    """P(Y = k) as differences of sigmoids (fine away from the far tails)."""
    gt = expit(loc[..., None] - cut)
    return np.concatenate([np.ones_like(gt[..., :1]), gt], axis=-1) - np.concatenate(
        [gt, np.zeros_like(gt[..., :1])], axis=-1
    )


def inputs(L, M=3, R=4, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    eta = rng.normal(0, spread, (M, R))
    cut = np.sort(rng.normal(0, 1.5, (M, L - 1)), axis=1) + 0.2 * np.arange(L - 1)
    beta = rng.normal(3, 0.5, M)
    b = rng.normal(0, spread, (M, R))
    cut_judge = np.sort(rng.normal(3, 2, L - 1)) + 0.3 * np.arange(L - 1)
    n = rng.integers(0, 4, (M, R, L, L)).astype(float)
    n[rng.random(n.shape) < 0.4] = 0.0  # labelled tables are sparse
    u = rng.integers(0, 60, (M, R, L)).astype(float)
    return eta, cut, beta, b, cut_judge, n, u


def reference_loglik(eta, cut, beta, b, cut_judge, n, u, marginal=True):
    pi = ordered_logistic(eta, cut[:, None, :])
    loc = beta[:, None, None] * np.arange(n.shape[-1]) + b[:, :, None]
    joint = pi[..., :, None] * ordered_logistic(loc, cut_judge)
    total = np.sum(n * np.log(joint))
    return total + (np.sum(u * np.log(joint.sum(axis=2))) if marginal else 0.0)


def finite_difference(f, args, index, step=1e-6):
    """Central differences of f(*args) by every entry of args[index]."""
    x = args[index]
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        up, down = [a.copy() for a in args], [a.copy() for a in args]
        up[index][k] += step
        down[index][k] -= step
        grad[k] = (f(*up) - f(*down)) / (2 * step)
    return grad


@pytest.mark.parametrize("L", [2, 3, 5])
@pytest.mark.parametrize("marginal", [True, False])
def test_table_value_and_gradient(L, marginal):
    args = list(inputs(L, seed=L))
    total, *grads = table_loglik(*args, marginal)
    assert total == pytest.approx(reference_loglik(*args, marginal=marginal), rel=1e-11)

    def value(*a):
        return table_loglik(*a, marginal)[0]

    for index, grad in enumerate(grads):  # eta, cut, beta, b, cut_judge
        np.testing.assert_allclose(
            grad, finite_difference(value, args, index), rtol=1e-6, atol=1e-5
        )


def test_table_keeps_precision_in_the_tails():
    """At 30 logits out a difference of sigmoids has lost every digit; the kernel has not."""
    eta, cut, beta, b, cut_judge, n, u = inputs(3, M=1, R=1, seed=1)
    eta[:] = -30.0
    cut[:] = [[-1.0, 1.0]]
    n[:] = 0.0
    n[0, 0, 2, 2] = 1.0  # one response labelled at the top level, far in the tail
    total, *_ = table_loglik(eta, cut, beta, b, cut_judge, n, u, False)
    loc = beta[0] * 2 + b[0, 0]
    want = log_expit(-30.0 - 1.0) + log_expit(loc - cut_judge[1])  # log P(H = 2) + log P(J = 2 | 2)
    assert total == pytest.approx(want, rel=1e-12)


def aligned_inputs(seed=0):
    eta, cut, beta, b, cut_judge, n, u = inputs(2, seed=seed)
    rng = np.random.default_rng(seed + 10)
    tau = rng.normal(0.8, 1.0, eta.shape)
    return [eta, cut, beta, b, cut_judge, n, u, tau]


def test_aligned_values_match_a_root_found_numerically():
    args = aligned_inputs(seed=3)
    eta, cut, beta, b, cut_judge, n, u, tau = args
    lik, prior, _, _ = aligned_loglik(*args, CELL_SD)
    theta = expit(eta - cut[:, :1])
    t = expit(tau)
    want_lik, want_prior = 0.0, 0.0
    for m, r in np.ndindex(eta.shape):
        a, c = beta[m] + b[m, r] - cut_judge[0], b[m, r] - cut_judge[0]

        def rate(e, th=theta[m, r], a=a, c=c, target=t[m, r]):
            return th * expit(a + e) + (1 - th) * expit(c + e) - target

        e = brentq(rate, -60, 60, xtol=1e-14)
        se, fpr = expit(a + e), expit(c + e)
        cells = [
            (1 - theta[m, r]) * (1 - fpr),
            (1 - theta[m, r]) * fpr,
            theta[m, r] * (1 - se),
            theta[m, r] * se,
        ]
        want_lik += np.sum(n[m, r].ravel() * np.log(cells))
        want_lik += u[m, r, 1] * np.log(t[m, r]) + u[m, r, 0] * np.log1p(-t[m, r])
        slope = (theta[m, r] * se * (1 - se) + (1 - theta[m, r]) * fpr * (1 - fpr)) / (
            t[m, r] * (1 - t[m, r])
        )
        want_prior += (
            -0.5 * (e / CELL_SD) ** 2 - np.log(CELL_SD) - 0.5 * np.log(2 * np.pi) - np.log(slope)
        )
    assert lik == pytest.approx(want_lik, rel=1e-9)
    assert prior == pytest.approx(want_prior, rel=1e-9)


@pytest.mark.parametrize("part", [0, 1])
def test_aligned_gradients(part):
    args = aligned_inputs(seed=4)
    grads = aligned_loglik(*args, CELL_SD)[2 + part]

    def value(*a):
        return aligned_loglik(*a, CELL_SD)[part]

    for index, grad in zip([0, 1, 2, 3, 4, 7], grads):  # eta, cut, beta, b, cut_judge, tau
        np.testing.assert_allclose(
            grad, finite_difference(value, args, index), rtol=1e-6, atol=1e-5
        )


def tiny(L, seed):
    rng = np.random.default_rng(seed)
    n = rng.integers(0, 6, size=(2, 3, L, L))
    u = rng.integers(20, 400, size=(2, 3, L))
    return Counts("m", tuple(str(k) for k in range(L)), ("a", "b"), ("x", "y", "z"), n, u)


@pytest.mark.parametrize(
    "L, geometry, pooling",
    [
        (2, "aligned", "partial"),
        (2, "forward", "partial"),
        (2, "forward", "shared"),
    ],
)
@pytest.mark.parametrize(
    "mode",
    [
        "FAST_COMPILE",  # the kernels called from Python: no compilation of the graph
        pytest.param("FAST_RUN", marks=pytest.mark.slow),  # C: compiles the graph
        pytest.param("NUMBA", marks=pytest.mark.slow),  # numba, as the sampler runs it
    ],
)
def test_model_gradient_through_the_ops(L, geometry, pooling, mode):
    """The model's log-density gradient (the kernels' pullbacks wired into PyMC's transforms and
    priors) against finite differences of its log-density, through Python, C and numba."""
    model = build_model(tiny(L, seed=L), Settings(geometry=geometry, pooling=pooling))
    f = model.logp_dlogp_function(mode=mode, ravel_inputs=True)
    f.set_extra_values({})
    rng = np.random.default_rng(7)
    size = sum(np.size(v) for v in model.initial_point().values())
    x = rng.normal(0, 0.5, size)
    logp, grad = f(x)
    assert np.isfinite(logp)

    def value(y):
        return f(y)[0]

    numeric = finite_difference(value, [x], 0)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("scale", [30.0, 400.0, 800.0])
def test_far_from_the_data_the_kernels_stay_finite(scale):
    """Early warm-up visits absurd points: exponentials there overflow unless the kernels fall
    back to computing them directly. Values and gradients must stay finite (or the value -inf
    where a labelled entry has no probability left, never NaN)."""
    for L in (2, 5):
        eta, cut, beta, b, cut_judge, n, u = inputs(L, seed=9)
        for sign in (1.0, -1.0):
            args = [
                sign * scale * np.sign(eta),
                cut,
                beta * (scale / 10.0),
                -sign * scale * np.sign(b),
                cut_judge,
                n,
                u,
            ]
            total, *grads = table_loglik(*args, True)
            assert not np.isnan(total) and total < 0
            assert all(np.all(np.isfinite(g)) for g in grads)
    args = aligned_inputs(seed=2)
    args[0] = scale / 20.0 * np.sign(args[0])
    args[7] = np.clip(args[7] * scale / 20.0, -30, 30)
    lik, prior, grads, pgrads = aligned_loglik(*args, CELL_SD)
    assert np.isfinite(lik) and np.isfinite(prior)
    assert all(np.all(np.isfinite(g)) for g in (*grads, *pgrads))
