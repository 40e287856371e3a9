"""Compiling a calibration model into functions that outlive the process (the cold path of
core/model/cache.py, run in a child process: `python -m changeover.core.model.compiling REQUEST`).

nutpie samples a model through two C callbacks, the log-density with its gradient and the
"expand" function that gives the kept quantities of a draw. Its own wrappers (nutpie 0.16's
`compile_pymc_model`) close over the inner PyTensor function and the data arrays and carry fresh
uuids, so numba cannot cache them and every process compiled them again: most of a fit's cost
in a new process (nutpie PR 334 explains the same). Here the wrappers are generated as source
that names nothing but their argument layout, call the inner PyTensor function as a global, and
find the data through pointers in a `user_data` array; numba then caches each wrapper with the
inner function linked in, under a key we choose (core/model/cache.py), as PyTensor does for its
own generated functions.

Shapes are data: the graph takes the number of models, regions and levels from the counts'
shapes, and the flat parameter vector is cut up symbolically, so one compiled model serves every
workspace of the same structure (the job's key, core/model/fit.py, says which shapes still matter). A
third function, "layout", gives a data set's parameter shapes and the model's starting point.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

# The wrapper sources below are what numba caches (their C signatures: model_bundle.SIGNATURES);
# a change here changes every cache key (the key hashes this file's source).


def _data_lines(shared: list[str], ndims: dict[str, int], positions: dict[str, int]) -> list[str]:
    """Source lines that view each data array of `shared` from its pointer and shape in ud."""
    lines = []
    for k, name in enumerate(shared):
        pos, nd = positions[name], ndims[name]
        if nd == 0:
            lines.append(f"    s{k} = carray(as_voidptr(ud[{pos}]), (1,), np.float64).reshape(())")
        else:
            dims = ", ".join(f"ud[{pos + 1 + i}]" for i in range(nd))
            lines.append(f"    s{k} = carray(as_voidptr(ud[{pos}]), ({dims},), np.float64)")
    return lines


def wrapper_sources(
    stem: str, functions: dict[str, list[str]], ndims: dict[str, int]
) -> tuple[dict[str, str], int]:
    """The three wrappers' sources (named `<kind>_<stem>`) and the length of their user_data:
    [n_dim, n_expanded, then per data array by name: its address and shape]."""
    positions, pos = {}, 2
    for name in sorted(ndims):
        positions[name] = pos
        pos += 1 + ndims[name]
    head = [f"    ud = carray(ud_, ({pos},), np.int64)"]

    def args(kind: str, first: str = "") -> str:
        names = [f"s{k}" for k in range(len(functions[kind]))]
        return ", ".join(([first] if first else []) + names)

    logp = [
        f"def logp_{stem}(dim, x_, out_, logp_, ud_):",
        *head,
        "    if dim != ud[0]:",
        "        return -1",
        *_data_lines(functions["logp"], ndims, positions),
        "    x = carray(x_, (dim,))",
        "    out = carray(out_, (dim,))",
        "    try:",
        f"        value, grad = INNER({args('logp', 'x')})",
        "        out[:] = grad",
        "        carray(logp_, (1,))[0] = value",
        "        if not np.all(np.isfinite(out)):",
        "            return 3",
        "        if not np.isfinite(value):",
        "            return 4",
        "    except Exception:",
        "        return 1",
        "    return 0",
    ]
    expand = [
        f"def expand_{stem}(dim, expanded, x_, out_, ud_):",
        *head,
        "    if dim != ud[0] or expanded != ud[1]:",
        "        return -1",
        *_data_lines(functions["expand"], ndims, positions),
        "    x = carray(x_, (dim,))",
        "    out = carray(out_, (expanded,))",
        "    try:",
        f"        (values,) = INNER({args('expand', 'x')})",
        "        out[:] = values",
        "    except Exception:",
        "        return -2",
        "    return 0",
    ]
    layout = [
        f"def layout_{stem}(ud_, out_, capacity):",
        *head,
        *_data_lines(functions["layout"], ndims, positions),
        "    try:",
        f"        (values,) = INNER({args('layout')})",
        "        n = values.shape[0]",
        "        if n <= capacity:",
        "            carray(out_, (capacity,))[:n] = values",
        "    except Exception:",
        "        return -1",
        "    return n",
    ]
    sources = {
        kind: "\n".join(lines) + "\n"
        for kind, lines in (("logp", logp), ("expand", expand), ("layout", layout))
    }
    return sources, pos


def _random_outputs(graph) -> list:
    """The draws of random variables in a graph (not their generator outputs)."""
    from pymc.distributions.distribution import SymbolicRandomVariable
    from pytensor.graph.traversal import ancestors
    from pytensor.tensor.random.op import RandomVariable

    return [
        v
        for v in ancestors(graph)
        if v.owner is not None
        and isinstance(v.owner.op, RandomVariable | SymbolicRandomVariable)
        and str(getattr(v.type, "dtype", "")).startswith("float")
    ]


def _rv_shape(rv):
    from pytensor.graph import rewrite_graph

    return rewrite_graph(rv.shape, include=("canonicalize", "ShapeOpt"))


def _value_shape(model, rv):
    """The symbolic shape of a free variable's unconstrained value, from the data alone."""
    from pytensor.graph import rewrite_graph

    transform = model.rvs_to_transforms.get(rv)
    value = transform.forward(rv, *rv.owner.inputs) if transform is not None else rv
    return rewrite_graph(value.shape, include=("canonicalize", "ShapeOpt"))


def _is_loose(v) -> bool:
    """An input of the layout that is not one of the model's data arrays or a constant."""
    if hasattr(v, "get_value"):
        return not isinstance(v.get_value(), np.ndarray)
    return not hasattr(v, "data")  # constants carry .data


def graphs(model, var_names: tuple[str, ...]) -> dict[str, Any]:
    """The three PyTensor functions of a model, in numba mode: logp (x -> value, gradient),
    expand (x -> the kept quantities, flat) and layout (() -> every shape, then the start).

    The flat parameter vector x is cut by symbolic sizes, so nothing depends on the shapes of
    the data the model was built with."""
    import pytensor.tensor as pt
    from pymc.initial_point import make_initial_point_expression
    from pymc.pytensorf import compile as compile_pymc
    from pytensor.graph import clone_replace, rewrite_graph
    from pytensor.graph.traversal import graph_inputs

    free = list(model.free_RVs)
    values = [model.rvs_to_values[rv] for rv in free]
    logp: Any = rewrite_graph(model.logp(), include=["canonicalize", "stabilize"])
    grads: Any = pt.grad(logp, values)
    grad = pt.concatenate([g.ravel() for g in grads])
    x = pt.dvector("x")
    offset, replace, shapes = pt.constant(0, dtype="int64"), {}, []
    for rv, value in zip(free, values):
        shape = _value_shape(model, rv)
        shapes.append(shape)
        if value.ndim == 0:  # reshaping a slice of unknown length to () fails in numba
            replace[value], offset = x[offset], offset + 1
        else:
            size = pt.prod(shape)
            replace[value], offset = (
                x[offset : offset + size].reshape(shape, ndim=value.ndim),
                (offset + size),
            )
    logp, grad = clone_replace([logp, grad], replace)
    kept = [model[name] for name in var_names]
    by_values = model.replace_rvs_by_values(kept)  # the kept quantities of the free values
    expanded = clone_replace([pt.concatenate([v.ravel() for v in by_values])], replace)[0]
    start = make_initial_point_expression(
        free_rvs=free,
        rvs_to_transforms=model.rvs_to_transforms,
        initval_strategies={},
        jitter_rvs=set(),
        return_transformed=True,
    )
    # Shapes and support points from the data alone: no random variable left in the graph
    # (each piece rewritten on its own: in one graph the fill of a support point kept its RV).
    # A support point reads its variable only for the shape to fill (PyMC's `Second(rv, 0)`),
    # which the rewrites below do not always see through: give it zeros of that shape.
    # compile_bundle checks the result against PyMC's own initial point.
    zeros = {rv: pt.zeros(_rv_shape(rv), dtype=rv.dtype) for rv in _random_outputs(start)}
    start = clone_replace(start, zeros)
    rewrites = ("canonicalize", "ShapeOpt", "local_fill_to_alloc")
    pieces = [
        rewrite_graph(v, include=rewrites) for v in [*shapes, *[v.shape for v in kept], *start]
    ]
    layout = pt.concatenate([pt.as_tensor(v).ravel().astype("float64") for v in pieces])
    loose = [str(v) for v in graph_inputs([layout]) if _is_loose(v)]
    if loose:
        raise ValueError(f"the model's layout depends on more than its data: {loose}")
    with model:
        return {
            "logp": compile_pymc([x], [logp, grad], mode="NUMBA"),
            "expand": compile_pymc([x], [expanded], mode="NUMBA"),
            "layout": compile_pymc([], [layout], mode="NUMBA"),
            "free": [(v.name, v.ndim) for v in values],
            "kept": [(name, model[name].ndim) for name in var_names],
        }


def compile_bundle(job, key: str, folder: Path) -> None:
    """Compile the job's model into `folder` (numba's cache files, then bundle.json last, so a
    folder without bundle.json is never read)."""
    import pytensor

    from changeover.core.model import bundle as model_bundle

    with pytensor.config.change_flags(numba__fastmath=False):
        model = job.build()
        built = graphs(model, job.var_names)
        functions = {
            kind: [v.name for v in built[kind].get_shared()]
            for kind in ("logp", "expand", "layout")
        }
        arrays = {v.name: v.get_value() for kind in functions for v in built[kind].get_shared()}
        ndims = {name: int(np.ndim(a)) for name, a in arrays.items()}
        stem = key[:24]
        sources, ud_len = wrapper_sources(stem, functions, ndims)
        cfuncs = {
            kind: model_bundle.make_cfunc(
                folder, key, kind, sources[kind], stem, built[kind].vm.jit_fn
            )
            for kind in sources
        }
    meta = {
        "key": key,
        "structure": repr(job.key),
        "stem": stem,
        "sources": sources,
        "functions": functions,
        "ndims": ndims,
        "ud_len": ud_len,
        "free": built["free"],
        "kept": built["kept"],
    }
    bundle = model_bundle.Bundle(meta, cfuncs)
    check = {name: np.array(a, dtype=float, order="C") for name, a in arrays.items()}
    point = model.initial_point()  # PyMC's own start: the layout must give the same
    pymc_start = np.concatenate([np.ravel(point[name]) for name, _ in built["free"]])
    if not np.allclose(bundle.layout(check)[2], pymc_start, rtol=1e-12, atol=1e-12):
        raise ValueError("the compiled start point differs from PyMC's initial point")
    model_bundle.write_check(folder, bundle, check)
    tmp = folder / f"bundle.json.{os.getpid()}"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / "bundle.json")


def _die_with_parent(parent: int) -> None:
    """End this process when the one that asked for it ends (Linux): a compile nobody waits
    for, after a quit or a crash, would hold a core for a minute."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it ended before the line above
        os._exit(1)


def main(argv: list[str]) -> int:
    """Child process: compile the job pickled in argv[1] (see model_cache.compile_in_children)."""
    from changeover.core.model import cache as model_cache

    with open(argv[1], "rb") as f:
        request = pickle.load(f)
    _die_with_parent(request["parent"])
    if request.get("nice"):
        os.nice(request["nice"])
    job = request["make"](*request["args"])
    folder = model_cache.bundle_folder(request["key"])
    with model_cache.compile_lock(request["key"]):
        if model_cache.load(request["key"]) is not None:  # another process did, while we waited
            return model_cache.FOUND
        compile_bundle(job, request["key"], folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
