"""The data term's kernels (core/model/likelihood.py) as PyTensor Ops, so the PyMC model
(core/model/fit.py) calls them: one call gives the values and their gradients, which the Ops'
pullback only scales and adds. Created on first use, so importing this module needs no
PyTensor."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from changeover.core.model import likelihood
from changeover.core.model.likelihood import F64, aligned_loglik, table_loglik

if TYPE_CHECKING:  # PyTensor loads when a model is built (`_ops`)
    from pytensor.graph.basic import Apply, Variable
    from pytensor.graph.op import Op, OutputStorageType
    from pytensor.tensor import TensorLike, TensorVariable

    _Ops = tuple[Callable[[bool], Op], Callable[[float], Op]]  # TableLogLik, AlignedLogLik
    Funcified = tuple[Callable[..., tuple], str]  # a numba kernel for an Op, its cache key

# PyTensor caches compiled numba code by this key: it changes whenever the kernels or the Ops do.
_SOURCE_KEY = hashlib.sha256(
    Path(likelihood.__file__).read_bytes() + Path(__file__).read_bytes()
).hexdigest()[:16]


def _make_ops() -> _Ops:
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

        def make_node(self, *args: TensorLike) -> Apply:
            inputs = [pt.as_tensor_variable(x).astype("float64") for x in args]
            params = [x for k, x in enumerate(inputs) if k not in DATA]
            outputs = [pt.dscalar() for _ in range(self.n_values)]
            outputs += [x.type() for _ in range(self.n_values) for x in params]
            return Apply(self, inputs, outputs)

        def perform(
            self, node: Apply, inputs: Sequence[Any], output_storage: OutputStorageType
        ) -> None:
            result = self.flat(self.kernel(*[np.asarray(x, dtype=np.float64) for x in inputs]))
            for store, value in zip(output_storage, result):
                store[0] = np.asarray(value)

        def infer_shape(self, node: Apply, shapes: Sequence[tuple]) -> list[tuple]:
            params = [shape for k, shape in enumerate(shapes) if k not in DATA]
            return [()] * self.n_values + params * self.n_values

        def pullback(
            self,
            inputs: Sequence[Variable],
            outputs: Sequence[Variable],
            cotangents: Sequence[Variable],
        ) -> list[Variable]:
            k = self.n_values
            if any(not isinstance(g.type, DisconnectedType) for g in cotangents[k:]):
                raise NotImplementedError("second derivatives of the table likelihood")
            n_params = len(inputs) - len(DATA)
            grads: list[TensorVariable | None] = [None] * n_params
            for v in range(k):
                if isinstance(cotangents[v].type, DisconnectedType):
                    continue
                # PyTensor annotates them as Variables; a connected cotangent of a tensor output
                # (make_node makes only those) is a tensor
                cotangent = cast("TensorVariable", cotangents[v])
                for i in range(n_params):
                    term = cotangent * outputs[k + v * n_params + i]
                    prev = grads[i]
                    grads[i] = term if prev is None else prev + term
            filled = [
                g if g is not None else pt.zeros_like(x)
                for g, x in zip(grads, [x for j, x in enumerate(inputs) if j not in DATA])
            ]
            result: list[Variable] = []
            params = iter(filled)
            for j, x in enumerate(inputs):
                result.append(grad_undefined(self, j, x) if j in DATA else next(params))
            return result

    class TableLogLik(_KernelOp):
        """table_loglik: (eta, cut, beta, b, cut_judge, n, u) -> loglik."""

        __props__ = ("marginal",)

        def __init__(self, marginal: bool) -> None:
            self.marginal = bool(marginal)

        def kernel(self, *args: Any) -> Any:
            run: Any = table_loglik  # a numba Dispatcher: mypy cannot see its signature
            return run(*args, self.marginal)

    class AlignedLogLik(_KernelOp):
        """aligned_loglik: (eta, cut, beta, b, cut_judge, n, u, tau) -> (loglik, offset prior)."""

        __props__ = ("cell_sd",)
        n_values = 2

        def __init__(self, cell_sd: float) -> None:
            self.cell_sd = float(cell_sd)

        def kernel(self, *args: Any) -> Any:
            run: Any = aligned_loglik  # a numba Dispatcher
            return run(*args, self.cell_sd)

        @staticmethod
        def flat(result: Any) -> tuple:
            return (result[0], result[1], *result[2], *result[3])

    @register_funcify_and_cache_key(TableLogLik)
    def _numba_table(op: TableLogLik, node: Apply | None = None, **kwargs: Any) -> Funcified:
        marginal = op.marginal

        @numba_njit
        def kernel(
            eta: F64, cut: F64, beta: F64, b: F64, cut_judge: F64, n: F64, u: F64
        ) -> tuple[F64, ...]:
            total, g_eta, g_cut, g_beta, g_b, g_cj = table_loglik(
                eta, cut, beta, b, cut_judge, n, u, marginal
            )
            return np.asarray(total), g_eta, g_cut, g_beta, g_b, g_cj

        return kernel, f"changeover.TableLogLik.{marginal}.{_SOURCE_KEY}"

    @register_funcify_and_cache_key(AlignedLogLik)
    def _numba_aligned(op: AlignedLogLik, node: Apply | None = None, **kwargs: Any) -> Funcified:
        cell_sd = op.cell_sd

        @numba_njit
        def kernel(
            eta: F64, cut: F64, beta: F64, b: F64, cut_judge: F64, n: F64, u: F64, tau: F64
        ) -> tuple[F64, ...]:
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


_OPS: _Ops | None = None


def _ops() -> _Ops:
    """The PyTensor Ops (created on first use, so importing this module needs no PyTensor)."""
    global _OPS
    if _OPS is None:
        _OPS = _make_ops()
    return _OPS


def loglik(
    eta: TensorLike,
    cut: TensorLike,
    beta: TensorLike,
    b: TensorLike,
    cut_judge: TensorLike,
    n: TensorLike,
    u: TensorLike,
    marginal: bool = True,
) -> Variable:
    """The table log-likelihood as a PyTensor scalar (see the module docstring); with
    marginal=False only the labelled tables."""
    return _outputs(_ops()[0](marginal)(eta, cut, beta, b, cut_judge, n, u))[0]


def aligned(
    eta: TensorLike,
    cut: TensorLike,
    beta: TensorLike,
    b: TensorLike,
    cut_judge: TensorLike,
    n: TensorLike,
    u: TensorLike,
    tau: TensorLike,
    cell_sd: float,
) -> tuple[Variable, Variable]:
    """(log-likelihood, cell-offset prior with its log-Jacobian) of the aligned yes/no model,
    as PyTensor scalars (see aligned_loglik)."""
    outputs = _outputs(_ops()[1](cell_sd)(eta, cut, beta, b, cut_judge, n, u, tau))
    return outputs[0], outputs[1]


def _outputs(applied: Variable | list[Variable]) -> list[Variable]:
    """An Op's outputs: a kernel Op has several (values and gradients), which PyTensor gives
    as a list (one alone would come bare)."""
    assert isinstance(applied, list)
    return applied
