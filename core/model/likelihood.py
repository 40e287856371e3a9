"""The data term of the calibration model: one compiled kernel for the value and its gradient.

For one metric with L levels, model m and region r (core/model/fit.py):

    pi[m, r]         = OrderedLogistic(eta[m, r], cut[m])              the true levels
    C[m, r, h, :]    = OrderedLogistic(beta[m] h + b[m, r], cut_judge)  the judge, given level h
    loglik = sum n[m, r, h, j] log(pi[h] C[h, j])                       labelled responses
           + sum u[m, r, j] log(sum_h pi[h] C[h, j])                    judged only (marginal=True)

Why a kernel: as a PyTensor graph this term was most of the cost of a gradient, spent in the
small intermediate arrays of some 150 graph nodes, and NUTS evaluates the gradient hundreds of
thousands of times per fit. Here it is one loop over the cells, with the gradient written out;
the priors and transforms stay in the PyMC model. Used for yes/no metrics (scales:
core/model/scale.py); the kernel itself is written for any number of levels.

The probabilities are the same products as `core.model.parts.ordered_logistic`,
P(Y = k) = sigmoid(a[k-1]) sigmoid(-a[k]) (1 - exp(cut[k-1] - cut[k])) with a[k] = loc - cut[k],
so tails keep their relative precision; a labelled entry is floored at 1e-300 before its log.
The gradient uses d log P(Y = k) / d a[k-1] = sigmoid(-a[k-1]), d log P(Y = k) / d a[k] =
-sigmoid(a[k]) and d log(1 - exp(-d)) / dd = 1 / expm1(d), weighted by
W[h, j] = n[h, j] + u[j] pi[h] C[h, j] / q[j] (q[j] = P(J = j)): no division by a small
probability. tests/test_likelihood.py checks the values against independent formulas and the
gradients against finite differences, also through the whole PyMC model.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numba
import numpy as np

FLOOR = 1e-300  # a labelled entry far in a tail keeps a finite log


@numba.njit(cache=True, inline="always", error_model="numpy")
def _sigmoids(x):
    """(sigmoid(x), sigmoid(-x)) with one exp and no cancellation."""
    if x >= 0.0:
        e = math.exp(-x)
        return 1.0 / (1.0 + e), e / (1.0 + e)
    e = math.exp(x)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _exp_neg(product, a):
    """exp(-a), given as a product of exponentials computed once per model or cell (see
    table_loglik), unless that product over- or underflowed where exp(-a) itself need not."""
    if 0.0 < product < math.inf:
        return product
    return math.exp(-a)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _gaps(cut, gap, inv):
    """For 0 < k < L-1: gap[k] = 1 - exp(cut[k-1] - cut[k]), inv[k] = 1 / expm1(cut[k] - cut[k-1])."""
    for k in range(1, cut.size):
        gap[k] = -math.expm1(cut[k - 1] - cut[k])
        inv[k] = 1.0 / math.expm1(cut[k] - cut[k - 1])


@numba.njit(cache=True, inline="always", error_model="numpy")
def _levels(e_loc, loc, e_cut, cut, gap, p, s, sn, off, poff):
    """P(Y = k) of OrderedLogistic(loc, cut) into p[poff:poff + L], and sigmoid(+-a[k]) with
    a[k] = loc - cut[k] into s, sn[off:off + L - 1]. e_loc = exp(-loc), e_cut = exp(cut): the
    exponentials of a[k] are their products, so a cell costs two exps, not one per threshold."""
    K = cut.size
    for k in range(K):
        e = _exp_neg(e_loc * e_cut[k], loc - cut[k])
        r = 1.0 / (1.0 + e)
        s[off + k] = r
        sn[off + k] = e * r if e < math.inf else 1.0
    p[poff] = sn[off]
    for k in range(1, K):
        p[poff + k] = s[off + k - 1] * sn[off + k] * gap[k]
    p[poff + K] = s[off + K - 1]


@numba.njit(cache=True, inline="always", error_model="numpy")
def _levels_grad(w, woff, s, sn, off, inv, gcut):
    """Adds sum_k w[woff + k] d log P(Y = k) / d cut to gcut; returns the same by loc."""
    K = gcut.size
    gloc = 0.0
    for k in range(K):
        ga = w[woff + k + 1] * sn[off + k] - w[woff + k] * s[off + k]  # a[k] in P(k), P(k + 1)
        gloc += ga
        gcut[k] -= ga
    for k in range(1, K):
        g = w[woff + k] * inv[k]
        gcut[k] += g
        gcut[k - 1] -= g
    return gloc


@numba.njit(cache=True, error_model="numpy")  # no exceptions: inf and nan, as NumPy
def table_loglik(eta, cut, beta, b, cut_judge, n, u, marginal):
    """(loglik, d/d eta, d/d cut, d/d beta, d/d b, d/d cut_judge); shapes as in the docstring:
    eta, b [M, R]; cut [M, L-1]; beta [M]; cut_judge [L-1]; n [M, R, L, L]; u [M, R, L]."""
    M, R, L = u.shape
    K = L - 1
    g_eta = np.zeros((M, R))
    g_cut = np.zeros((M, K))
    g_beta = np.zeros(M)
    g_b = np.zeros((M, R))
    g_cj = np.zeros(K)
    gap_j, inv_j = np.ones(L), np.zeros(L)
    gap_m, inv_m = np.ones(L), np.zeros(L)
    _gaps(cut_judge, gap_j, inv_j)
    e_cj = np.exp(cut_judge)
    pi, s_pi, sn_pi = np.empty(L), np.empty(K), np.empty(K)
    conf, s_c, sn_c = np.empty(L * L), np.empty(L * K), np.empty(L * K)
    w, w_pi = np.empty(L * L), np.empty(L)
    total = 0.0
    for m in range(M):
        cut_m = cut[m]
        _gaps(cut_m, gap_m, inv_m)
        e_cut = np.exp(cut_m)
        e_beta = math.exp(-beta[m])
        for r in range(R):
            _levels(math.exp(-eta[m, r]), eta[m, r], e_cut, cut_m, gap_m, pi, s_pi, sn_pi, 0, 0)
            e_loc = math.exp(-b[m, r])  # exp(-(beta h + b)) for h = 0, 1, ...
            for h in range(L):
                loc = beta[m] * h + b[m, r]
                e_loc = _exp_neg(e_loc, loc)
                _levels(e_loc, loc, e_cj, cut_judge, gap_j, conf, s_c, sn_c, h * K, h * L)
                e_loc *= e_beta
            for h in range(L):
                for j in range(L):
                    c = n[m, r, h, j]
                    w[h * L + j] = c
                    if c != 0.0:
                        total += c * math.log(max(pi[h] * conf[h * L + j], FLOOR))
            if marginal:
                for j in range(L):
                    c = u[m, r, j]
                    if c == 0.0:
                        continue
                    q = 0.0
                    for h in range(L):
                        q += pi[h] * conf[h * L + j]
                    if not q > 0.0:  # judged responses at a level with no probability left
                        total = -math.inf
                        continue
                    total += c * math.log(q)
                    cq = c / q
                    for h in range(L):
                        w[h * L + j] += cq * pi[h] * conf[h * L + j]
            for h in range(L):
                acc = 0.0
                for j in range(L):
                    acc += w[h * L + j]
                w_pi[h] = acc
            g_eta[m, r] = _levels_grad(w_pi, 0, s_pi, sn_pi, 0, inv_m, g_cut[m])
            for h in range(L):
                gl = _levels_grad(w, h * L, s_c, sn_c, h * K, inv_j, g_cj)
                g_b[m, r] += gl
                g_beta[m] += h * gl
    return total, g_eta, g_cut, g_beta, g_b, g_cj


@numba.njit(cache=True, inline="always", error_model="numpy")
def _softplus(x):
    return x + math.log1p(math.exp(-x)) if x > 0.0 else math.log1p(math.exp(x))


@numba.njit(cache=True, error_model="numpy")  # no exceptions: inf and nan, as NumPy
def aligned_loglik(eta, cut, beta, b, cut_judge, n, u, tau, cell_sd):
    """The yes/no model in the aligned geometry (core.model.fit._aligned_cell_offset says why).

    tau[m, r] = logit P(J = yes) is the parameter; the cell's judge offset e[m, r] is the root
    of F(e) = theta sigmoid(a + e) + (1 - theta) sigmoid(c + e) - t = 0, with
    t = sigmoid(tau), theta = sigmoid(eta - cut), a = beta + b - cut_judge and c = b - cut_judge.
    Returns (loglik, offset_prior, gradients of loglik, gradients of offset_prior), each set of
    gradients by (eta, cut, beta, b, cut_judge, tau):
    - loglik: the labelled tables with the judge offset b + e, and u ~ Binomial(t);
    - offset_prior: e ~ N(0, cell_sd) and the log-Jacobian -log|d tau / d e| = -log(D / t(1 - t)),
      D = dF/de = theta g(a + e) + (1 - theta) g(c + e) with g = sigmoid (1 - sigmoid).
    Implicit differentiation of F: de/dtheta = -(sigmoid(a + e) - sigmoid(c + e)) / D,
    de/da = -theta g(a + e) / D, de/dc = -(1 - theta) g(c + e) / D, de/dt = 1 / D.
    """
    M, R = eta.shape
    theta = np.empty((M, R))
    e = np.empty((M, R))
    for m in range(M):
        for r in range(R):
            theta[m, r], _ = _sigmoids(eta[m, r] - cut[m, 0])
            t, _ = _sigmoids(tau[m, r])
            big_a = math.exp(beta[m] + b[m, r] - cut_judge[0])
            big_c = math.exp(b[m, r] - cut_judge[0])
            th = theta[m, r]
            # the positive root of A C (1 - t) x^2 - (t (A + C) - theta A - (1 - theta) C) x - t
            half_b = 0.5 * (t * (big_a + big_c) - th * big_a - (1.0 - th) * big_c)
            quad = big_a * big_c * (1.0 - t)
            root = math.sqrt(half_b * half_b + quad * t)
            x = (half_b + root) / quad if half_b >= 0.0 else t / (root - half_b)
            e[m, r] = math.log(x)
    lik, g_eta, g_cut, g_beta, g_b, g_cj = table_loglik(
        eta, cut, beta, b + e, cut_judge, n, u, False
    )
    g_tau = np.zeros((M, R))
    p_eta, p_cut, p_beta = np.zeros((M, R)), np.zeros(cut.shape), np.zeros(M)
    p_b, p_cj, p_tau = np.zeros((M, R)), np.zeros(cut_judge.shape), np.zeros((M, R))
    prior = 0.0
    log_norm = math.log(cell_sd) + 0.5 * math.log(2.0 * math.pi)
    for m in range(M):
        for r in range(R):
            th, em = theta[m, r], e[m, r]
            t, t_not = _sigmoids(tau[m, r])
            u0, u1 = u[m, r, 0], u[m, r, 1]
            lik -= u0 * _softplus(tau[m, r]) + u1 * _softplus(-tau[m, r])
            a = beta[m] + b[m, r] - cut_judge[0]
            c = b[m, r] - cut_judge[0]
            s_a, sn_a = _sigmoids(a + em)
            s_c, sn_c = _sigmoids(c + em)
            g_a, g_c = s_a * sn_a, s_c * sn_c
            d = th * g_a + (1.0 - th) * g_c
            tt = t * t_not
            prior += -0.5 * (em / cell_sd) ** 2 - log_norm - math.log(d) + math.log(tt)
            de_th, de_a = -(s_a - s_c) / d, -th * g_a / d  # de/dtheta, de/da
            de_c, de_t = -(1.0 - th) * g_c / d, 1.0 / d  # de/dc, de/dt
            dd_a, dd_c = th * g_a * (sn_a - s_a), (1.0 - th) * g_c * (sn_c - s_c)
            dd_th = g_a - g_c
            dth_deta = th * (1.0 - th)
            # two sets: the likelihood (through e, and u ~ Binomial(t)); the offset prior
            for part in range(2):
                if part == 0:
                    force = g_b[m, r]  # d loglik / d e: e enters the tables as b + e
                    x_th, x_a, x_c, x_t = 0.0, 0.0, 0.0, (u1 - (u0 + u1) * t) / tt
                    ge, gc, gbt, gbb, gcj, gtau = g_eta, g_cut, g_beta, g_b, g_cj, g_tau
                else:
                    force = -em / cell_sd**2 - (dd_a + dd_c) / d
                    x_th, x_a, x_c, x_t = -dd_th / d, -dd_a / d, -dd_c / d, (t_not - t) / tt
                    ge, gc, gbt, gbb, gcj, gtau = p_eta, p_cut, p_beta, p_b, p_cj, p_tau
                d_th = force * de_th + x_th
                d_a = force * de_a + x_a
                d_c = force * de_c + x_c
                gtau[m, r] += (force * de_t + x_t) * tt
                ge[m, r] += d_th * dth_deta
                gc[m, 0] -= d_th * dth_deta
                gbt[m] += d_a
                gbb[m, r] += d_a + d_c
                gcj[0] -= d_a + d_c
    return (
        lik,
        prior,
        (g_eta, g_cut, g_beta, g_b, g_cj, g_tau),
        (p_eta, p_cut, p_beta, p_b, p_cj, p_tau),
    )


# ---- as a PyTensor Op ----------------------------------------------------------------------

# PyTensor caches compiled numba code by this key: it changes whenever this file does.
_SOURCE_KEY = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _make_ops():
    import pytensor.tensor as pt
    from pytensor.gradient import DisconnectedType, grad_undefined
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key

    DATA = (5, 6)  # n and u: counts, never differentiated

    class _KernelOp(Op):
        """Outputs: the values, then for each value its gradient by every parameter input.
        One kernel call gives values and gradients; the pullback only scales and adds them."""

        n_values = 1

        def kernel(self, *args: Any) -> Any:  # the numba kernel, called from Python
            raise NotImplementedError

        @staticmethod
        def flat(result: Any) -> tuple:
            """The kernel's result as one flat tuple of outputs."""
            return tuple(result)

        def make_node(self, *args):
            inputs = [pt.as_tensor_variable(x).astype("float64") for x in args]
            params = [x for k, x in enumerate(inputs) if k not in DATA]
            outputs = [pt.dscalar() for _ in range(self.n_values)]
            outputs += [x.type() for _ in range(self.n_values) for x in params]
            return Apply(self, inputs, outputs)

        def perform(self, node, inputs, output_storage):
            result = self.flat(self.kernel(*[np.asarray(x, dtype=np.float64) for x in inputs]))
            for store, value in zip(output_storage, result):
                store[0] = np.asarray(value)

        def infer_shape(self, node, shapes):
            params = [shape for k, shape in enumerate(shapes) if k not in DATA]
            return [()] * self.n_values + params * self.n_values

        def pullback(self, inputs, outputs, cotangents):
            k = self.n_values
            if any(not isinstance(g.type, DisconnectedType) for g in cotangents[k:]):
                raise NotImplementedError("second derivatives of the table likelihood")
            n_params = len(inputs) - len(DATA)
            grads = [None] * n_params
            for v in range(k):
                if isinstance(cotangents[v].type, DisconnectedType):
                    continue
                for i in range(n_params):
                    term = cotangents[v] * outputs[k + v * n_params + i]
                    grads[i] = term if grads[i] is None else grads[i] + term
            grads = [
                g if g is not None else pt.zeros_like(x)
                for g, x in zip(grads, [x for j, x in enumerate(inputs) if j not in DATA])
            ]
            result, params = [], iter(grads)
            for j, x in enumerate(inputs):
                result.append(grad_undefined(self, j, x) if j in DATA else next(params))
            return result

    class TableLogLik(_KernelOp):
        """table_loglik: (eta, cut, beta, b, cut_judge, n, u) -> loglik."""

        __props__ = ("marginal",)

        def __init__(self, marginal: bool):
            self.marginal = bool(marginal)

        def kernel(self, *args: Any) -> Any:
            run: Any = table_loglik  # a numba Dispatcher: mypy cannot see its signature
            return run(*args, self.marginal)

    class AlignedLogLik(_KernelOp):
        """aligned_loglik: (eta, cut, beta, b, cut_judge, n, u, tau) -> (loglik, offset prior)."""

        __props__ = ("cell_sd",)
        n_values = 2

        def __init__(self, cell_sd: float):
            self.cell_sd = float(cell_sd)

        def kernel(self, *args: Any) -> Any:
            run: Any = aligned_loglik  # a numba Dispatcher
            return run(*args, self.cell_sd)

        @staticmethod
        def flat(result: Any) -> tuple:
            return (result[0], result[1], *result[2], *result[3])

    @register_funcify_and_cache_key(TableLogLik)
    def _numba_table(op, node=None, **kwargs):
        marginal = op.marginal

        @numba_njit
        def kernel(eta, cut, beta, b, cut_judge, n, u):
            total, g_eta, g_cut, g_beta, g_b, g_cj = table_loglik(
                eta, cut, beta, b, cut_judge, n, u, marginal
            )
            return np.asarray(total), g_eta, g_cut, g_beta, g_b, g_cj

        return kernel, f"changeover.TableLogLik.{marginal}.{_SOURCE_KEY}"

    @register_funcify_and_cache_key(AlignedLogLik)
    def _numba_aligned(op, node=None, **kwargs):
        cell_sd = op.cell_sd

        @numba_njit
        def kernel(eta, cut, beta, b, cut_judge, n, u, tau):
            lik, prior, g, p = aligned_loglik(eta, cut, beta, b, cut_judge, n, u, tau, cell_sd)
            return (
                np.asarray(lik),
                np.asarray(prior),
                g[0],
                g[1],
                g[2],
                g[3],
                g[4],
                g[5],
                p[0],
                p[1],
                p[2],
                p[3],
                p[4],
                p[5],
            )

        return kernel, f"changeover.AlignedLogLik.{cell_sd!r}.{_SOURCE_KEY}"

    return TableLogLik, AlignedLogLik


_OPS = None


def _ops():
    """The PyTensor Ops (created on first use, so importing this module needs no PyTensor)."""
    global _OPS
    if _OPS is None:
        _OPS = _make_ops()
    return _OPS


def loglik(eta, cut, beta, b, cut_judge, n, u, marginal: bool = True):
    """The table log-likelihood as a PyTensor scalar (see the module docstring); with
    marginal=False only the labelled tables."""
    return _ops()[0](marginal)(eta, cut, beta, b, cut_judge, n, u)[0]


def aligned(eta, cut, beta, b, cut_judge, n, u, tau, cell_sd: float):
    """(log-likelihood, cell-offset prior with its log-Jacobian) of the aligned yes/no model,
    as PyTensor scalars (see aligned_loglik)."""
    outputs = _ops()[1](cell_sd)(eta, cut, beta, b, cut_judge, n, u, tau)
    return outputs[0], outputs[1]
