"""Fast checks of the calibration model and the instant posterior on tiny tables."""

import threading

import numpy as np
import pytest
from helpers import random_counts
from scipy import stats
from scipy.special import expit

from changeover.core.model.counts import Counts
from changeover.core.model.fit import CELL_SD, FitCancelled, Settings, build_model, fit_counts
from changeover.core.model.instant import instant_posterior


def tiny(L=2, M=1, R=2, seed=0) -> Counts:
    return random_counts(M, R, L, seed)


def multinomial_loglik(counts: Counts, p: np.ndarray, conf: np.ndarray) -> float:
    """Hand likelihood: labelled tables ~ Multinomial(pi_h C_hj), unlabelled ~ Multinomial(q_j)."""
    total = 0.0
    M, R, L = counts.u.shape
    for m in range(M):
        for r in range(R):
            joint = p[m, r][:, None] * conf[m, r]
            total += stats.multinomial.logpmf(
                counts.n[m, r].ravel(), counts.n[m, r].sum(), joint.ravel()
            )
            total += stats.multinomial.logpmf(
                counts.u[m, r], counts.u[m, r].sum(), joint.sum(axis=0)
            )
    return total


def evaluate(model, names, point):
    """Values of named model variables at a point of the value (unconstrained) variables."""
    import pytensor

    outs = model.replace_rvs_by_values([model[k] for k in names])
    # Python's linker: the values, with no C or numba compilation in the fast tier
    fn = pytensor.function(model.value_vars, outs, on_unused_input="ignore", mode="FAST_COMPILE")
    return dict(zip(names, fn(*[point[v.name] for v in model.value_vars])))


def ordered_logistic(loc, cut):
    gt = expit(loc[..., None] - cut)  # P(Y > k)
    upper = np.concatenate([np.ones_like(gt[..., :1]), gt], axis=-1)
    lower = np.concatenate([gt, np.zeros_like(gt[..., :1])], axis=-1)
    return upper - lower


def test_logp_at_a_point_equals_hand_computation():
    counts = tiny(L=2, R=2)
    model = build_model(counts, Settings(pooling="shared"))
    point = {
        "cut": np.array([[-0.7]]),
        "s_log__": np.log([[0.6]]),
        "z_zerosum__": np.array([[0.75]]),
        "beta0": 3.1,
        "cut_judge": np.array([1.4]),
    }
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")(point)
    z = evaluate(model, ["z"], point)["z"][0]
    np.testing.assert_allclose(z, [0.75 / np.sqrt(2), -0.75 / np.sqrt(2)])  # regions sum to zero
    s, cut, beta, cj = 0.6, -0.7, 3.1, 1.4
    # z: a standard normal restricted to the zero-sum line (R - 1 = 1 degree of freedom)
    zero_sum_normal = -0.5 * np.sum(z**2) - 0.5 * np.log(2 * np.pi)
    prior = (
        stats.norm.logpdf(cut, 0, 2)
        + stats.halfnorm.logpdf(s, scale=1.0)
        + zero_sum_normal
        + stats.norm.logpdf(beta, 3.0, 2.0)
        + stats.norm.logpdf(cj, 1.5, 2.0)
    )
    # sensitivity/specificity form of the L = 2 model
    theta = expit(s * z - cut)
    se, fpr = expit(beta - cj), expit(-cj)
    p = np.stack([1 - theta, theta], axis=-1)[None]
    conf = np.broadcast_to(np.array([[1 - fpr, fpr], [1 - se, se]]), (1, 2, 2, 2))
    assert logp == pytest.approx(prior + multinomial_loglik(counts, p, conf), rel=1e-9)


def test_partial_model_pieces_match_numpy():
    L = 2
    counts = tiny(L=L, M=2, R=3, seed=L)
    model = build_model(counts, Settings(geometry="forward"))
    rng = np.random.default_rng(1)
    point = {
        v.name: rng.normal(0, 0.5, size=model.initial_point()[v.name].shape)
        for v in model.value_vars
    }
    names = [
        "cut",
        "s",
        "z",
        "beta0",
        "cut_judge",
        "sd_beta",
        "z_beta",
        "sd_bm",
        "z_bm",
        "sd_br",
        "z_br",
        "z_e",
        "p",
        "confusion",
        "likelihood",
    ]
    got = evaluate(model, names, point)
    pi = ordered_logistic(got["s"] * got["z"], got["cut"][:, None, :])
    beta = got["beta0"] + got["sd_beta"] * got["z_beta"]
    b = (
        (got["sd_bm"] * got["z_bm"])[:, None]
        + (got["sd_br"] * got["z_br"])[None]
        + CELL_SD * got["z_e"]
    )
    loc = beta[:, None, None] * np.arange(L) + b[:, :, None]
    conf = ordered_logistic(loc, got["cut_judge"])
    np.testing.assert_allclose(got["p"], pi, rtol=1e-9)
    np.testing.assert_allclose(got["confusion"], conf, rtol=1e-9)
    assert float(got["likelihood"]) == pytest.approx(multinomial_loglik(counts, pi, conf), rel=1e-9)
    np.testing.assert_array_equal(np.abs(got["z"].sum(axis=1)) < 1e-12, True)  # per model


def test_scales_are_not_built_by_the_yes_no_model():
    with pytest.raises(ValueError, match="core/model/scale.py"):
        build_model(tiny(L=3, M=2, R=2, seed=3), Settings())


def test_two_levels_is_the_sensitivity_specificity_model():
    counts = tiny(L=2, M=2, R=3, seed=5)
    model = build_model(
        counts, Settings(geometry="aligned")
    )  # tau = logit P(J = yes) is a parameter
    rng = np.random.default_rng(2)
    point = {
        v.name: rng.normal(0, 0.7, size=model.initial_point()[v.name].shape)
        for v in model.value_vars
    }
    names = ["p", "confusion", "likelihood", "tau", "z_beta", "beta0", "sd_beta"]
    got = evaluate(model, names, point)
    theta = got["p"][..., 1]
    se, sp = got["confusion"][..., 1, 1], got["confusion"][..., 0, 0]
    # the derived cell offset reproduces the judge-positive rate the parameter says
    np.testing.assert_allclose(theta * se + (1 - theta) * (1 - sp), expit(got["tau"]), rtol=1e-9)
    # discrimination is beta per model: logit se - logit(1 - sp) = beta[m] in every region
    beta = got["beta0"] + got["sd_beta"] * got["z_beta"]
    logit = lambda x: np.log(x) - np.log1p(-x)  # noqa: E731
    np.testing.assert_allclose(
        logit(se) - logit(1 - sp), np.broadcast_to(beta[:, None], se.shape), rtol=1e-7
    )
    ll = 0.0
    for m in range(2):
        for r in range(3):
            n, u = counts.n[m, r], counts.u[m, r]
            t = theta[m, r] * se[m, r] + (1 - theta[m, r]) * (1 - sp[m, r])
            cells = [
                (1 - theta[m, r]) * sp[m, r],
                (1 - theta[m, r]) * (1 - sp[m, r]),
                theta[m, r] * (1 - se[m, r]),
                theta[m, r] * se[m, r],
            ]
            ll += stats.multinomial.logpmf(n.ravel(), n.sum(), cells)
            ll += stats.binom.logpmf(u[1], u.sum(), t)
    assert float(got["likelihood"]) == pytest.approx(ll, rel=1e-9)


def test_instant_posterior_matches_dirichlet_means():
    from changeover.core.model.instant import PRIOR_LABELS, label_prior

    counts = tiny(L=3, M=2, R=2, seed=3)
    post = instant_posterior(counts, [0.5, 0.5], draws=40000, seed=1)
    prior = label_prior(counts.n).T  # [h, j]: two pseudo-labels per judge level
    np.testing.assert_allclose(prior.sum(axis=0), PRIOR_LABELS)
    for m in range(2):
        for r in range(2):
            n, u = counts.n[m, r], counts.u[m, r]
            q = (1 + n.sum(axis=0) + u) / (3 + n.sum() + u.sum())
            h_given_j = (prior + n) / (PRIOR_LABELS + n.sum(axis=0))[None, :]  # [h, j]
            expected = h_given_j @ q  # independence of q and P(H|J) in the posterior
            np.testing.assert_allclose(post.p[:, m, r].mean(axis=0), expected, atol=4e-3)
    assert post.source == "instant"
    np.testing.assert_allclose(post.confusion.sum(axis=-1), 1.0, rtol=1e-12)
    assert post.flags.to_dict()["cell_labels"] == counts.labels_per_cell.tolist()


def test_instant_flags_unlabelled_cells():
    counts = tiny(L=2, M=2, R=2)
    n = counts.n.copy()
    n[1, 0] = 0
    c = Counts(**{**counts.__dict__, "n": n})
    post = instant_posterior(c, [0.5, 0.5], draws=100)
    assert post.flags.to_dict()["unlabelled_cells"] == [["mod1", "reg0"]]
    assert post.flags.cell_labels[1][0] == 0


@pytest.mark.slow  # real sampling
def test_same_seed_same_numbers_and_progress():
    counts = {"m": tiny(L=2, M=2, R=2, seed=7)}
    seen: list[tuple[float, str]] = []
    first = fit_counts(
        counts,
        [0.5, 0.5],
        Settings.quick(seed=11),
        on_progress=lambda f, msg: seen.append((f, msg)),
    )
    second = fit_counts(counts, [0.5, 0.5], Settings.quick(seed=11))
    np.testing.assert_array_equal(first.posteriors[0].p, second.posteriors[0].p)
    assert seen and seen[-1][0] == 1.0 and all(0.0 <= f <= 1.0 for f, _ in seen)
    assert first.posteriors[0].p.shape == (600, 2, 2, 2)
    for key in (
        "max_rhat",
        "min_ess_bulk",
        "min_ess_tail",
        "divergences",
        "ok",
        "sampler",
        "per_metric",
    ):
        assert key in first.diagnostics.to_dict()
    other = fit_counts(counts, [0.5, 0.5], Settings.quick(seed=12))
    assert not np.array_equal(first.posteriors[0].p, other.posteriors[0].p)


@pytest.mark.slow  # compiles a model, then samples
@pytest.mark.parametrize("geometry", ["aligned", "forward"])
def test_a_refit_swaps_the_counts_into_the_compiled_model(geometry, monkeypatch):
    """New counts, of the same shape or another, reuse the compiled model (no recompiling), and
    fed another shape's counts it computes exactly the log-density and gradient that PyMC's own
    graph, built on those counts, computes."""
    from pytensor.compile.mode import FAST_COMPILE

    from changeover.core.model import cache as model_cache
    from changeover.core.model import fit as model_mod

    monkeypatch.setattr(model_cache, "_LOADED", {})  # the machine's cache: compiled once, any test
    settings = Settings.quick(seed=5, geometry=geometry)
    before, after = tiny(L=2, M=2, R=2, seed=7), tiny(L=2, M=2, R=2, seed=8)
    other = tiny(L=2, M=3, R=4, seed=9)
    assert model_mod.sample(before, settings)[2]["model"] in ("compiled", "disk")
    swapped, reshaped = model_mod.sample(after, settings), model_mod.sample(other, settings)
    assert swapped[2]["model"] == reshaped[2]["model"] == "memory"  # one compiled model
    assert reshaped[0].shape[2:4] == (3, 4)
    assert not np.array_equal(swapped[0], model_mod.sample(before, settings)[0])

    (bundle,) = model_cache._LOADED.values()
    job = model_mod.job_for(other, settings)
    data = {k: np.asarray(v, dtype=float) for k, v in job.data.items()}
    shapes, _, start = bundle.layout(data)
    x = start + np.random.default_rng(3).normal(0, 0.3, start.size)
    rc, _, logp, grad, _, _ = bundle.evaluate(data, x)
    assert rc == 0
    pymc_model = job.build()  # PyMC's graph on the other shape, evaluated without numba
    point, pos = {}, 0
    for (name, _), shape in zip(bundle.meta["free"], shapes):
        size = int(np.prod(shape))
        point[name], pos = x[pos : pos + size].reshape(shape), pos + size
    expected = pymc_model.compile_logp(mode=FAST_COMPILE)(point)
    expected_grad = pymc_model.compile_dlogp(mode=FAST_COMPILE)(point)
    np.testing.assert_allclose(logp, expected, rtol=1e-10)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-10)


@pytest.mark.slow  # real sampling
def test_cancel_stops_promptly():
    """Cancelling a fit of 200,000 draws stops it early (what load cannot change: how far it
    got, not how long it took)."""
    counts = {"m": tiny(L=2, M=2, R=2, seed=7)}
    fit_counts(counts, [0.5, 0.5], Settings.quick(draws=20, tune=20))  # compile outside
    cancel, seen = threading.Event(), []

    def heard(fraction: float, message: str) -> None:
        seen.append(fraction)
        if "sampling" in message and not cancel.is_set():
            threading.Timer(0.5, cancel.set).start()

    with pytest.raises(FitCancelled):
        settings = Settings.quick(draws=200_000, tune=1000)
        fit_counts(counts, [0.5, 0.5], settings, on_progress=heard, cancel=cancel)
    assert cancel.is_set() and max(seen) < 0.5, max(seen)


def test_instant_posterior_draws_metrics_of_a_cell_independently():
    """Two metrics with identical counts must not share a random stream (that would couple
    them in the joint probability that all of a candidate's cells hold)."""
    n = np.array([[[[5, 1], [2, 12]]]])
    u = np.array([[[40, 60]]])
    a = instant_posterior(
        Counts("correct", ("no", "yes"), ("m",), ("r",), n, u), [1.0], 4000, seed=3
    )
    b = instant_posterior(
        Counts("refused", ("no", "yes"), ("m",), ("r",), n, u), [1.0], 4000, seed=3
    )
    x, y = a.p[:, 0, 0, 1], b.p[:, 0, 0, 1]
    assert abs(x.mean() - y.mean()) < 0.01  # same posterior...
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.1  # ...drawn independently


def test_ordered_logistic_keeps_precision_in_the_tails():
    """The product form loses nothing where a difference of two sigmoids near 1 would."""
    from decimal import Decimal, getcontext

    import pytensor.tensor as pt

    from changeover.core.model.parts import ordered_logistic as _ordered_logistic

    getcontext().prec = 60
    cut = [-1.0, 0.5, 2.0]
    locs = [-45.0, -3.0, 0.0, 2.5, 38.0]
    got = _ordered_logistic(
        pt.as_tensor(np.array(locs))[:, None], pt.as_tensor(np.array(cut))
    ).eval()

    def sig(x: Decimal) -> Decimal:
        return 1 / (1 + (-x).exp())

    for row, loc in zip(got, locs):
        gt = [sig(Decimal(loc) - Decimal(c)) for c in cut]  # P(Y > k), exact to 60 digits
        exact = [1 - gt[0], gt[0] - gt[1], gt[1] - gt[2], gt[2]]
        for value, want in zip(row, exact):
            assert value == pytest.approx(float(want), rel=1e-12, abs=1e-300)
    # a naive difference of sigmoids would give exactly 0 for the middle levels at loc = 38
    assert got[-1, 1] > 0 and got[0, 2] > 0


def test_auto_geometry_follows_the_information_on_the_judge_positive_rate():
    from changeover.core.model.fit import adaptation_for, geometry_for

    def counts(per_cell: int, yes_share: float, L: int = 2) -> Counts:
        u = np.zeros((2, 3, L), np.int64)
        u[..., -1] = round(per_cell * yes_share)
        u[..., 0] = per_cell - u[..., -1]
        return Counts(
            "m",
            tuple(str(k) for k in range(L)),
            ("a", "b"),
            ("x", "y", "z"),
            np.zeros((2, 3, L, L), np.int64),
            u,
        )

    auto = Settings()
    assert geometry_for(counts(190, 0.75), auto) == "aligned"  # N t (1 - t) ~ 36
    assert geometry_for(counts(190, 0.03), auto) == "forward"  # ~ 5.5: one-sided, little to pin
    assert geometry_for(counts(40, 0.5), auto) == "forward"  # ~ 10: small cells
    assert geometry_for(counts(1_000_000, 0.03), auto) == "aligned"
    assert geometry_for(counts(10_000, 0.5), Settings(pooling="shared")) == "forward"
    assert geometry_for(counts(190, 0.75), Settings(geometry="forward")) == "forward"
    assert adaptation_for(counts(190, 0.5), auto) == "diag"
    assert adaptation_for(counts(190, 0.5), Settings(adaptation="low_rank")) == "low_rank"
