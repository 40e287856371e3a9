"""Vectorised MCMC convergence diagnostics: rank-normalised split R-hat, bulk ESS and tail ESS.

These give the same numbers as ArviZ's `az.rhat(x, chain_axis=0, draw_axis=1)` and
`az.ess(x, chain_axis=0, draw_axis=1, method="bulk" | "tail")` (Vehtari et al. 2021) for every
column of a [chains, draws, K] array. ArviZ loops over the K columns in Python, seconds for
the hundreds of quantities of one fit; here each step (ranking,
FFT autocovariance, Geyer's truncation) is one numpy operation over many columns at once.
Columns go through in blocks of a few dozen only so that the temporaries stay in cache.

The conventions follow arviz_stats' `_DiagnosticsBase`: split chains drop the middle draw when
the draw count is odd; ties get average ranks; ranks are back-transformed with Blom's
(rank - 3/8) / (size - 3/4 + 1) before the normal quantile; the ESS uses Geyer's initial
positive then initial monotone sequence, with tau capped below at 1 / log10(size). A column
holding a NaN gives NaN, as does every column when there are fewer than 4 draws (or, for
R-hat, fewer than 2 chains). A constant column gives NaN for R-hat but, as in ArviZ, the
split-chain draw count for both ESS.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import ndtri

_BLOM_OFFSET = 3 / 8
_MIN_DRAWS = 4
_BLOCK_VALUES = 1 << 18  # values per block of columns: keeps each temporary at a few MB

Prob = float | tuple[float, float]


def rhat(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat of every column of x [chains, draws, K], shape [K].

    The larger of the R-hat of the rank-normalised split chains (bulk) and of the same chains
    folded around their median (tail). Same as az.rhat(x, chain_axis=0, draw_axis=1).
    """
    return _by_blocks(x, 2, 1, lambda block: (_rank_rhat(*_bulk(block)),))[0]


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk effective sample size of every column of x [chains, draws, K], shape [K].

    The ESS of the rank-normalised split chains, i.e. of the centre of the distribution.
    Same as az.ess(x, chain_axis=0, draw_axis=1, method="bulk").
    """
    return _by_blocks(x, 1, 1, lambda block: (_ess(_bulk(block)[1]),))[0]


def ess_tail(x: np.ndarray, prob: Prob = (0.05, 0.95)) -> np.ndarray:
    """Tail effective sample size of every column of x [chains, draws, K], shape [K].

    The smaller of the split-chain ESS of the indicators x <= q_low and x <= q_high, with the
    quantiles taken over all draws of the column (middle draw included). A single prob p means
    (min(p, 1-p), max(p, 1-p)). Same as az.ess(..., method="tail", prob=prob).
    """

    def tail_block(block: np.ndarray) -> tuple[np.ndarray]:
        return (_tail_ess(_split_chains(block), _sorted_draws(block), prob),)

    return _by_blocks(x, 1, 1, tail_block)[0]


def rhat_ess(x: np.ndarray, prob: Prob = (0.05, 0.95)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rhat(x), ess_bulk(x), ess_tail(x, prob)), computed together for callers that want all
    three, as `core.model.fit.diagnose` does: sharing the split chains, ranks and sorted draws
    makes it about a third faster than the three calls.
    """

    def all_block(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        split, bulk_z, ordered = _bulk(block)
        # With an even draw count the split chains hold every draw, already sorted in `ordered`.
        pooled = ordered if block.shape[1] % 2 == 0 else _sorted_draws(block)
        return _rank_rhat(split, bulk_z, ordered), _ess(bulk_z), _tail_ess(split, pooled, prob)

    r_hat, bulk, tail = _by_blocks(x, 1, 3, all_block)
    if np.shape(x)[0] < 2:
        r_hat[:] = np.nan  # R-hat needs 2 chains; the ESS do not
    return r_hat, bulk, tail


def _by_blocks(
    x: np.ndarray,
    min_chains: int,
    n_outputs: int,
    compute: Callable[[np.ndarray], tuple[np.ndarray, ...]],
) -> tuple[np.ndarray, ...]:
    """Apply compute to blocks of columns of x [C, D, K], joining its n_outputs [block] arrays.

    Outputs are NaN where ArviZ gives NaN without computing: columns holding a NaN, and all
    columns when there are fewer than min_chains chains or fewer than 4 draws.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):  # float32 stays: ArviZ folds and compares in it
        x = x.astype(np.float64)
    if x.ndim != 3:
        raise ValueError(f"expected an array [chains, draws, K], got shape {x.shape}")
    chains, draws, k = x.shape
    if chains < min_chains or draws < _MIN_DRAWS or k == 0:
        return tuple(np.full(k, np.nan) for _ in range(n_outputs))
    step = max(1, _BLOCK_VALUES // (chains * draws))
    with np.errstate(divide="ignore", invalid="ignore"):
        blocks = [compute(x[:, :, start : start + step]) for start in range(0, k, step)]
    outputs = tuple(np.concatenate(parts) for parts in zip(*blocks))
    has_nan = np.isnan(x).any(axis=(0, 1))
    for out in outputs:
        out[has_nan] = np.nan
    return outputs


def _split_chains(x: np.ndarray) -> np.ndarray:
    """[C, D, K] -> [K, 2C, D // 2]: first halves of all chains, then their second halves.

    With an odd number of draws the middle draw is dropped. Columns come first so that every
    later step works along contiguous memory.
    """
    chains, draws, k = x.shape
    half = draws // 2
    out = np.empty((k, 2 * chains, half), dtype=x.dtype)
    out[:, :chains] = x[:, :half].transpose(2, 0, 1)
    out[:, chains:] = x[:, draws - half :].transpose(2, 0, 1)
    return out


def _sorted_draws(x: np.ndarray) -> np.ndarray:
    """All draws of each column of x [C, D, K], sorted: [K, C*D] (a new array)."""
    # Always a copy: the in-place sort must not reach the caller's array (with K = 1 the
    # transpose is already contiguous), and sorting a contiguous copy is much faster.
    pooled = x.reshape(-1, x.shape[-1]).T.copy()
    pooled.sort(axis=-1)
    return pooled


def _bulk(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x [C, D, K] as split chains [K, 2C, D//2], those rank-normalised, their values sorted."""
    split = _split_chains(x)
    z, ordered = _z_scale(split)
    return split, z, ordered


def _z_scale(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalise [K, M, N]: each value replaced by the normal score of its pooled rank.

    Ties share their average rank. Also returns each column's pooled values sorted, [K, M*N].
    """
    flat = chains.reshape(chains.shape[0], -1)
    order = np.argsort(flat, axis=-1)
    ordered = np.take_along_axis(flat, order, axis=-1)
    scores = _normal_scores(flat.shape[-1])
    doubled = _doubled_average_ranks(ordered)
    z = np.empty(flat.shape)
    np.put_along_axis(z, order, scores[None, ::2] if doubled is None else scores[doubled], axis=-1)
    return z.reshape(chains.shape), ordered


def _normal_scores(n: int) -> np.ndarray:
    """Normal score of every possible average rank 1, 1.5, 2, ..., n among n values.

    Element j is for rank j / 2 + 1, back-transformed with Blom's offset as ArviZ does.
    """
    ranks = np.arange(2 * n - 1) / 2 + 1
    return ndtri((ranks - _BLOM_OFFSET) / (n - 2 * _BLOM_OFFSET + 1))


def _doubled_average_ranks(ordered: np.ndarray) -> np.ndarray | None:
    """2 * (average rank - 1) of the values of rows sorted along the last axis, [K, n] ints.

    None when no row has ties (it would be 2 * position). A run of equal values at positions
    first..last gets first + last, which is scipy.stats.rankdata(method="average") doubled,
    minus 2. The runs are found on the flattened rows, so their cost grows with the number of
    tied values only.
    """
    k, n = ordered.shape
    # tied[r, j] for 1 <= j < n: position j equals position j - 1. Always False at j = 0 and
    # j = n, so that in the flattened array no run crosses from one row into the next.
    tied = np.zeros((k, n + 1), dtype=bool)
    np.equal(ordered[:, 1:], ordered[:, :-1], out=tied[:, 1:n])
    edges = np.diff(tied.ravel().view(np.int8))
    run_starts = np.flatnonzero(edges == 1) + 1  # first True of each run
    if run_starts.size == 0:
        return None
    run_stops = np.flatnonzero(edges == -1) + 1  # first False after each run
    row, first = np.divmod(run_starts, n + 1)
    first -= 1  # the tied values begin one position before the first True
    last = run_stops % (n + 1) - 1
    lengths = last - first + 1
    offsets = np.cumsum(lengths) - lengths
    positions = np.arange(lengths.sum()) + np.repeat(row * n + first - offsets, lengths)
    doubled = np.empty((k, n), dtype=np.intp)
    doubled[:] = 2 * np.arange(n)
    doubled.ravel()[positions] = np.repeat(first + last, lengths)
    return doubled


def _rank_rhat(split: np.ndarray, bulk_z: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat from the split chains, their z-scores and sorted values."""
    middle = ordered.shape[-1] // 2  # split chains always hold an even number of draws
    median = (ordered[:, middle - 1] + ordered[:, middle]) / 2  # as np.median computes it
    tail_z, _ = _z_scale(np.abs(split - median[:, None, None]))
    bulk, tail = _plain_rhat(bulk_z), _plain_rhat(tail_z)
    return np.where(tail > bulk, tail, bulk)  # Python's max(bulk, tail), as in ArviZ


def _plain_rhat(chains: np.ndarray) -> np.ndarray:
    """Gelman-Rubin R-hat of [K, M, N] from between- and within-chain variances, shape [K]."""
    n = chains.shape[-1]
    between = n * chains.mean(axis=-1).var(axis=-1, ddof=1)
    within = chains.var(axis=-1, ddof=1).mean(axis=-1)
    return np.sqrt((between / within + n - 1) / n)


def _tail_ess(split: np.ndarray, pooled_sorted: np.ndarray, prob: Prob) -> np.ndarray:
    """Tail ESS from the split chains [K, M, N] and all draws sorted [K, C*D]."""
    # isinstance rather than np.ndim: it is what narrows the Prob union for the type checker
    low, high = prob if isinstance(prob, tuple) else sorted((prob, 1 - prob))
    # The same np.quantile as ArviZ's; on sorted rows its selection step is cheap.
    quantiles = np.quantile(pooled_sorted, [low, high], axis=-1)  # [2, K]
    ess_low, ess_high = (_ess(split <= q[:, None, None]) for q in quantiles)
    return np.where(ess_high < ess_low, ess_high, ess_low)  # Python's min(low, high)


def _ess(chains: np.ndarray) -> np.ndarray:
    """Effective sample size of each column of split chains [K, M, N], shape [K]."""
    chains = np.asarray(chains, dtype=float)
    _, n_chain, n_draw = chains.shape
    size = n_chain * n_draw
    constant = np.ptp(chains, axis=(1, 2)) < np.finfo(float).resolution
    acov = _mean_autocov(chains)
    mean_var = acov[:, 0] * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + chains.mean(axis=-1).var(axis=-1, ddof=1)
    rho = 1.0 - (mean_var[:, None] - acov) / var_plus[:, None]  # autocorrelation [K, lags]
    tau = _geyer_tau(rho)
    floor = 1 / np.log10(size)
    ess = size / np.where(floor > tau, floor, tau)  # Python's max(tau, floor), as in ArviZ
    ess[np.isnan(rho[:, 1])] = np.nan
    ess[constant] = size
    return ess


def _mean_autocov(chains: np.ndarray) -> np.ndarray:
    """Autocovariance at every lag along the last axis of [K, M, N], averaged over chains.

    Zero-padded FFT as in ArviZ. Averaging the power spectra before the inverse transform is
    the same as averaging the chains' autocovariances, with M times fewer inverse transforms.
    """
    n = chains.shape[-1]
    m = _next_fast_len(2 * n)
    spectrum = np.fft.rfft(chains - chains.mean(axis=-1, keepdims=True), n=m, axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).mean(axis=1)
    return np.fft.irfft(power, n=m, axis=-1)[:, :n] / n


def _next_fast_len(target: int) -> int:
    """Smallest 2^a 3^b 5^c >= target: the FFT length scipy.fftpack.next_fast_len gives ArviZ."""
    best = 1 << max(target - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35
            while candidate < target:
                candidate *= 2
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def _geyer_tau(rho: np.ndarray) -> np.ndarray:
    """Integrated autocorrelation time of each row of rho [K, lags], shape [K].

    Vectorised form of ArviZ's two while loops. Lags are taken in pairs (0, 1), (2, 3), ...
    with rho[0] counted as exactly 1. Pairs are kept while every earlier pair sum is positive
    (Geyer's initial positive sequence, with ArviZ's limit on how far it looks); the kept pair
    sums are made non-increasing by a running minimum (initial monotone sequence). Then
    tau = -1 + 2 * (sum of kept pair sums) + the even lag of the first pair not kept, which
    ArviZ adds when it is positive or when that pair's sum is exactly 0.
    """
    n_rows, n_lags = rho.shape
    n_pairs = max(0, (n_lags - 3) // 2)  # pairs after the first that ArviZ's loop can reach
    pair_sums = np.empty((n_rows, n_pairs + 1))
    pair_sums[:, 0] = 1.0 + rho[:, 1]
    pair_sums[:, 1:] = rho[:, 2 : 2 * n_pairs + 1 : 2] + rho[:, 3 : 2 * n_pairs + 2 : 2]
    stops = ~(pair_sums > 0)  # NaN stops too
    first_stop = np.where(stops.any(axis=1), stops.argmax(axis=1), n_pairs)
    kept = np.zeros((n_rows, n_pairs + 2))
    kept[:, 1:] = np.cumsum(np.minimum.accumulate(pair_sums, axis=1), axis=1)
    rows = np.arange(n_rows)
    even = rho[rows, 2 * first_stop]
    added = (pair_sums[rows, first_stop] >= 0) | (even > 0)
    last = np.where(first_stop == 0, 1.0, np.where(added, even, 0.0))
    return -1.0 + 2.0 * kept[rows, first_stop] + last
