"""core.model.diagnostics gives ArviZ's R-hat, bulk ESS and tail ESS column by column, only faster."""

import warnings

import arviz as az
import numpy as np
import pytest
from arviz_stats.base import array_stats

from changeover.core.model import diagnostics


def ar1(rng: np.random.Generator, chains: int, draws: int, k: int, rho: float) -> np.ndarray:
    """Stationary AR(1) chains [chains, draws, k] with unit variance and lag-1 correlation rho."""
    x = np.empty((chains, draws, k))
    x[:, 0] = rng.normal(size=(chains, k))
    noise = rng.normal(size=(chains, draws, k)) * np.sqrt(1 - rho**2)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x


def shifted_means(rng: np.random.Generator) -> np.ndarray:
    """Chain c is shifted by c * s, with s from 0 (converged) to 1 (far apart) across columns."""
    return rng.normal(size=(4, 500, 8)) + np.arange(4)[:, None, None] * np.linspace(0, 1, 8)


def awkward_columns(rng: np.random.Generator) -> np.ndarray:
    """Columns ArviZ treats specially: constant, NaN, infinities, constant within each chain,
    and +-1 in equal numbers (folded around the median 0 it is constant: no tail R-hat)."""
    x = rng.normal(size=(4, 100, 8))
    x[..., 0] = 3.0
    x[1, 5, 1] = np.nan
    x[0, 3, 2] = np.inf
    x[2, 7, 3], x[3, 8, 3] = np.inf, -np.inf
    x[..., 4] = np.arange(4)[:, None]
    x[..., 5] = 0.0
    x[2, 50, 5] = 1.0
    x[..., 7] = rng.permutation(np.repeat([-1.0, 1.0], 200)).reshape(4, 100)
    return x


def antithetic(rng: np.random.Generator) -> np.ndarray:
    """Draws alternating in sign: negative lag-1 autocorrelation, ESS above the draw count."""
    signs = np.tile([1.0, -1.0], 50)[None, :, None]
    return signs + 0.05 * rng.normal(size=(2, 100, 6))


CASES = {
    "normal, 4 chains": lambda rng: rng.normal(size=(4, 1000, 10)),
    "AR(1) 0.5": lambda rng: ar1(rng, 4, 1000, 8, 0.5),
    "AR(1) 0.95": lambda rng: ar1(rng, 4, 1000, 8, 0.95),
    "AR(1) 0.95, 2 chains, 999 draws": lambda rng: ar1(rng, 2, 999, 8, 0.95),
    "shifted chain means": shifted_means,
    "student-t df 2, 999 draws": lambda rng: rng.standard_t(2, size=(4, 999, 8)),
    "cauchy, 2 chains": lambda rng: rng.standard_t(1, size=(2, 1000, 8)),
    "5 levels, many ties, 999 draws": lambda rng: rng.integers(0, 5, size=(4, 999, 8)) * 1.0,
    "2 levels, 2 chains": lambda rng: rng.integers(0, 2, size=(2, 1000, 8)) * 1.0,
    "rare events": lambda rng: (rng.random(size=(4, 400, 8)) < 0.01) * 1.0,
    "integer dtype, 3 chains": lambda rng: rng.integers(-3, 4, size=(3, 201, 6)),
    "float32": lambda rng: rng.normal(size=(4, 1000, 8)).astype(np.float32),
    "3 chains, 5 draws": lambda rng: rng.normal(size=(3, 5, 8)),
    "2 chains, 7 draws": lambda rng: ar1(rng, 2, 7, 8, 0.9),
    "4 chains, 4 draws": lambda rng: rng.normal(size=(4, 4, 6)),
    "antithetic": antithetic,
    "awkward columns": awkward_columns,
}


def case(name: str) -> np.ndarray:
    return CASES[name](np.random.default_rng(sorted(CASES).index(name)))


def arviz_rhat(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(az.rhat(x, chain_axis=0, draw_axis=1), dtype=float)


def arviz_ess_bulk(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(az.ess(x, chain_axis=0, draw_axis=1, method="bulk"), dtype=float)


def arviz_ess_tail(x: np.ndarray, prob=(0.05, 0.95)) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(
            az.ess(x, chain_axis=0, draw_axis=1, method="tail", prob=prob), dtype=float
        )


PAIRS = {
    "rhat": (diagnostics.rhat, arviz_rhat),
    "ess_bulk": (diagnostics.ess_bulk, arviz_ess_bulk),
    "ess_tail": (diagnostics.ess_tail, arviz_ess_tail),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("function", PAIRS)
def test_matches_arviz_column_by_column(name, function):
    ours, theirs = PAIRS[function]
    x = case(name)
    expected = theirs(x)
    got = ours(x)
    assert got.shape == (x.shape[2],)
    np.testing.assert_allclose(got, expected, rtol=1e-6)  # NaN exactly where ArviZ has NaN


def test_the_cases_exercise_what_they_claim():
    draws = 4 * 1000
    assert np.all(diagnostics.rhat(case("normal, 4 chains")) < 1.01)
    assert np.all(diagnostics.ess_bulk(case("AR(1) 0.5")) < 0.5 * draws)
    assert np.all(diagnostics.ess_bulk(case("AR(1) 0.95")) < 0.1 * draws)
    assert np.all(diagnostics.ess_tail(case("AR(1) 0.95")) < 0.1 * draws)
    r_hat = diagnostics.rhat(shifted_means(np.random.default_rng(0)))
    assert r_hat[0] < 1.01 and np.all(r_hat[2:] > 1.01)
    assert np.all(diagnostics.ess_bulk(case("antithetic")) > 2 * 100)
    awkward = diagnostics.rhat(case("awkward columns"))
    assert np.isnan(awkward[[0, 1]]).all() and awkward[4] > 10 and np.isfinite(awkward[7])


@pytest.mark.parametrize("prob", [0.1, 0.9, (0.1, 0.8), (0.25, 0.75)])
def test_tail_ess_takes_probabilities_as_arviz_does(prob):
    x = ar1(np.random.default_rng(5), 4, 500, 6, 0.7)
    np.testing.assert_allclose(diagnostics.ess_tail(x, prob), arviz_ess_tail(x, prob), rtol=1e-6)


@pytest.mark.parametrize(
    "name",
    [
        "AR(1) 0.95, 2 chains, 999 draws",
        "normal, 4 chains",
        "5 levels, many ties, 999 draws",
        "awkward columns",
        "float32",
    ],
)
def test_all_three_at_once_equal_the_separate_functions(name):
    x = case(name)
    r_hat, bulk, tail = diagnostics.rhat_ess(x)
    np.testing.assert_array_equal(r_hat, diagnostics.rhat(x))
    np.testing.assert_array_equal(bulk, diagnostics.ess_bulk(x))
    np.testing.assert_array_equal(tail, diagnostics.ess_tail(x))


def test_blocks_of_columns_do_not_change_the_result(monkeypatch):
    x = ar1(np.random.default_rng(8), 4, 200, 23, 0.8)
    whole = [diagnostics.rhat(x), diagnostics.ess_bulk(x), diagnostics.ess_tail(x)]
    monkeypatch.setattr(diagnostics, "_BLOCK_VALUES", 5 * 4 * 200)  # blocks of 5 columns
    blocked = [diagnostics.rhat(x), diagnostics.ess_bulk(x), diagnostics.ess_tail(x)]
    for a, b in zip(whole, blocked):
        np.testing.assert_array_equal(a, b)


def test_one_chain_gives_no_rhat_but_does_give_ess():
    x = np.random.default_rng(2).normal(size=(1, 200, 5))
    assert np.isnan(diagnostics.rhat(x)).all() and np.isnan(arviz_rhat(x)).all()
    assert np.isnan(diagnostics.rhat_ess(x)[0]).all()
    np.testing.assert_allclose(diagnostics.ess_bulk(x), arviz_ess_bulk(x), rtol=1e-6)
    np.testing.assert_allclose(diagnostics.ess_tail(x), arviz_ess_tail(x), rtol=1e-6)
    np.testing.assert_allclose(diagnostics.rhat_ess(x)[2], arviz_ess_tail(x), rtol=1e-6)


def test_fewer_than_four_draws_or_no_columns_give_nan_or_nothing():
    x = np.random.default_rng(3).normal(size=(4, 3, 5))
    for function, reference in PAIRS.values():
        assert np.isnan(function(x)).all() and np.isnan(reference(x)).all()
    assert all(out.shape == (0,) for out in diagnostics.rhat_ess(np.zeros((4, 100, 0))))
    assert diagnostics.rhat(np.zeros((4, 100, 0))).shape == (0,)


def test_rejects_arrays_that_are_not_chains_by_draws_by_columns():
    with pytest.raises(ValueError, match="chains, draws, K"):
        diagnostics.rhat(np.zeros((4, 100)))


@pytest.mark.parametrize("k", [1, 3])
def test_input_is_left_untouched(k):
    x = np.random.default_rng(4).normal(size=(2, 51, k))
    before = x.copy()
    diagnostics.rhat(x)
    diagnostics.ess_bulk(x)
    diagnostics.ess_tail(x)
    diagnostics.rhat_ess(x)
    np.testing.assert_array_equal(x, before)


def _exact_zero_pair(
    rho_of, mean_var: float, var_plus: float, rho_even: float
) -> tuple[float, float]:
    """Autocovariances (a_even, a_odd) whose autocorrelations sum to exactly 0.0.

    Start from a_even giving about rho_even, and a_odd giving about -rho_even, then step a_odd
    (and if need be a_even) one float at a time until the sum is exactly zero.
    """
    a_even = mean_var - (1.0 - rho_even) * var_plus
    for _ in range(50):
        a_odd = mean_var - (1.0 + rho_of(a_even)) * var_plus
        for _ in range(50):
            total = rho_of(a_even) + rho_of(a_odd)
            if total == 0.0:
                return a_even, a_odd
            a_odd = np.nextafter(a_odd, -np.inf if total > 0 else np.inf)
        a_even = np.nextafter(a_even, np.inf)
    raise AssertionError("no exact zero pair found")


def test_geyer_truncation_matches_arviz_loop_on_given_autocovariances(monkeypatch):
    """Give ArviZ's own `_ess` and ours the same autocovariances and compare the ESS.

    Random data hardly ever produce a pair of autocorrelations summing to exactly 0, a branch
    of ArviZ's loop; here we build such pairs, and other truncation patterns, on purpose.
    """
    n_chain, n_draw = 4, 40
    rng = np.random.default_rng(9)
    chains = rng.normal(size=(n_chain, n_draw))
    mean_var = 1.0 * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw + np.var(chains.mean(axis=1), ddof=1)

    def rho_of(a: float) -> float:
        return 1.0 - (mean_var - a) / var_plus

    def acov_for(rho: np.ndarray) -> np.ndarray:
        acov = mean_var - (1.0 - rho) * var_plus
        acov[0] = 1.0
        return acov

    lags = np.arange(n_draw)
    patterns = [
        0.7**lags,
        0.99**lags,  # stays positive: the loop runs to its limit
        0.9**lags + 0.3 * (lags == 6),  # a bump the monotone sequence must flatten
        np.where(lags % 2 == 1, -1.2, 0.1),  # 1 + rho[1] < 0: nothing kept
        0.6**lags - 0.2 * (lags >= 5),  # even lag after the stop is negative
        rng.uniform(-0.3, 0.6, size=n_draw),
    ]
    acovs = [acov_for(p.astype(float)) for p in patterns]
    for even_rho in (0.3, -0.3):  # pair (4, 5) sums to exactly 0, with either sign of lag 4
        acov = acov_for(0.8**lags)
        acov[4], acov[5] = _exact_zero_pair(rho_of, mean_var, var_plus, even_rho)
        assert rho_of(acov[4]) + rho_of(acov[5]) == 0.0
        acovs.append(acov)

    for acov in acovs:
        monkeypatch.setattr(
            array_stats, "autocov", lambda ary, axis=-1, acov=acov: np.tile(acov, (n_chain, 1))
        )
        monkeypatch.setattr(diagnostics, "_mean_autocov", lambda c, acov=acov: acov[None, :])
        expected = array_stats._ess(chains)
        np.testing.assert_allclose(diagnostics._ess(chains[None]), [expected], rtol=1e-12)
