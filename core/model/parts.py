"""Pieces of the PyMC graph both calibration models use (core/model/fit.py, yes/no, and
core/model/scale.py, scales): the ordered logistic and zero-sum effects."""

from __future__ import annotations


def ordered_logistic(loc, cut):
    """P(Y = k) of an ordered logistic, k = 0..L-1 on the last axis.

    Written as products, never as differences of probabilities, so the tails keep their
    precision: with x = loc - cut[k-1] > y = loc - cut[k],
    P(Y = k) = sigmoid(x) - sigmoid(y) = sigmoid(x) sigmoid(-y) (1 - exp(cut[k-1] - cut[k])),
    and the last factor depends on the cutpoints only. `loc` broadcasts against `cut[..., :1]`;
    `cut` holds the L-1 increasing cutpoints. (Probabilities rather than log-probabilities: the
    likelihood takes one log per table entry, which made the gradient of the 5-level style
    model about a quarter cheaper.)
    """
    import pytensor.tensor as pt

    a = loc - cut  # log-odds of Y > k
    ones = pt.ones_like(a[..., :1])
    probs = pt.concatenate([ones, pt.sigmoid(a)], axis=-1) * pt.concatenate(
        [pt.sigmoid(-a), ones], axis=-1
    )
    if cut.type.shape[-1] == 1:
        return probs
    gap = -pt.expm1(cut[..., :-1] - cut[..., 1:])
    edge = pt.ones_like(cut[..., :1])
    return probs * pt.concatenate([edge, gap, edge], axis=-1)


def zero_sum(name: str, sizes: tuple[int, ...], shape: tuple = (), axes: int = 1):
    """Standard-normal effects of `shape` (symbolic sizes, read from the data; default `sizes`)
    that sum to zero over the last `axes` axes; zeros when one of those axes has a single entry
    in `sizes`: there is nothing to deviate from (a different graph, so part of the compiled
    model's key)."""
    import pymc as pm
    import pytensor.tensor as pt

    shape = shape or sizes
    if min(sizes[-axes:]) < 2:
        return pt.zeros(shape)
    return pm.ZeroSumNormal(name, 1.0, shape=shape, n_zerosum_axes=axes)
