"""A compiled model's callbacks, as numba caches them under our key (core/model/cache.py keeps
the bundles on disk and decides when to compile; core/model/compiling.py makes them).

A bundle is one model structure's three C callbacks: the log-density with its gradient and the
kept quantities of a draw (nutpie calls those) and the layout of a data set (its parameter
shapes and starting point). Each is generated source that names only its argument layout; the
data arrive as pointers and shapes in one `user_data` array (`Bundle.user_data`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from changeover.core.model.nutpie_run import NutpieModel
from changeover.core.types import ChangeoverError

if TYPE_CHECKING:  # numba loads when a model is compiled or loaded
    from llvmlite import ir
    from numba.core import types as nb_types
    from numba.core.base import BaseContext
    from numba.core.typing import Signature
    from numba.core.typing.context import BaseContext as TypingContext

SOURCE_STAMP = 1  # numba's per-file freshness stamp: the key names the code, files never go stale

SIGNATURES = {  # the C callbacks nutpie calls (logp, expand) and ours (layout)
    "logp": "int64(uint64, CPointer(double), CPointer(double), CPointer(double), voidptr)",
    "expand": "int64(uint64, uint64, CPointer(double), CPointer(double), voidptr)",
    "layout": "int64(voidptr, CPointer(double), int64)",
}


# ---- numba's cache, under our key --------------------------------------------------------

_FOLDERS: weakref.WeakKeyDictionary[Any, tuple[Path, str]] = weakref.WeakKeyDictionary()


def _register_locator() -> None:
    """Direct numba's cache of our generated wrappers to their bundle's folder."""
    from numba.core.caching import CacheImpl, _CacheLocator

    class BundleLocator(_CacheLocator):
        def __init__(self, folder: Path, key: str):
            self._folder, self._key = folder, key

        def ensure_cache_path(self) -> None:
            self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)

        def get_cache_path(self) -> str:
            return str(self._folder)

        def get_source_stamp(self) -> int:
            return SOURCE_STAMP

        def get_disambiguator(self) -> str:
            return self._key[:24]

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> BundleLocator | None:
            found = _FOLDERS.get(py_func)
            return None if found is None else cls(*found)

    if not any(c.__name__ == "BundleLocator" for c in CacheImpl._locator_classes):
        CacheImpl._locator_classes.insert(0, BundleLocator)


def _as_voidptr() -> Callable[..., Any]:
    """numba intrinsic: an integer address as a `void*`. It is callable only from jitted code
    (the generated wrappers), where it gives a pointer, hence no sharper type."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def as_voidptr(
        typingctx: TypingContext, src: nb_types.Type
    ) -> tuple[Signature, Callable[..., ir.Value]]:
        def codegen(
            context: BaseContext,
            builder: ir.IRBuilder,
            signature: Signature,
            args: Sequence[ir.Value],
        ) -> ir.Value:
            return builder.inttoptr(args[0], cgutils.voidptr_t)

        return types.voidptr(src), codegen

    return as_voidptr


_INTRINSICS: dict[str, Any] = {}


def make_cfunc(folder: Path, key: str, kind: str, source: str, stem: str, inner: Any) -> Any:
    """numba's C callback of a generated wrapper, from the cache when it is there. `inner` is
    the PyTensor function it calls, or None when loading (a miss then fails to compile)."""
    import numba

    _register_locator()
    if "as_voidptr" not in _INTRINSICS:
        _INTRINSICS["as_voidptr"] = _as_voidptr()
    env = {
        "__name__": __name__,  # numba re-imports this module when it loads the function
        "np": np,
        "carray": numba.carray,
        "as_voidptr": _INTRINSICS["as_voidptr"],
        "INNER": inner,
    }
    exec(compile(source, f"<changeover {kind} {stem}>", "exec"), env)
    function = env[f"{kind}_{stem}"]
    _FOLDERS[function] = (folder, key)
    return numba.cfunc(SIGNATURES[kind], cache=True)(function)


# ---- a bundle ------------------------------------------------------------------------------


def _ptr(a: np.ndarray) -> Any:
    """A float64 array as the callbacks' `double*` (ctypes checks the type)."""
    import ctypes

    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _void(a: np.ndarray) -> Any:
    import ctypes

    return a.ctypes.data_as(ctypes.c_void_p)


@dataclass
class Bundle:
    """A compiled model structure: its callbacks and what they expect."""

    meta: dict[str, Any]
    cfuncs: dict[str, Any]

    @property
    def names(self) -> list[str]:
        """The data arrays the model reads (pm.Data names)."""
        return sorted(self.meta["ndims"])

    def user_data(self, data: dict[str, np.ndarray], n_dim: int, n_expanded: int) -> np.ndarray:
        ud = np.zeros(self.meta["ud_len"], dtype=np.int64)
        ud[0], ud[1], pos = n_dim, n_expanded, 2
        for name in self.names:
            a = data[name]
            if a.ndim != self.meta["ndims"][name]:
                raise ValueError(
                    f"{name}: {a.ndim} dimensions, the model reads {self.meta['ndims'][name]}"
                )
            ud[pos] = a.ctypes.data
            ud[pos + 1 : pos + 1 + a.ndim] = a.shape
            pos += 1 + a.ndim
        return ud

    def layout(
        self, data: dict[str, np.ndarray]
    ) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]], np.ndarray]:
        """(free shapes, kept shapes, start) for this data set."""
        ud = self.user_data(data, 0, 0)
        out = np.zeros(256)
        n = int(self.cfuncs["layout"].ctypes(_void(ud), _ptr(out), out.size))
        if n < 0:
            raise ChangeoverError("the compiled model could not lay out this data set")
        if n > out.size:
            out = np.zeros(n)
            self.cfuncs["layout"].ctypes(_void(ud), _ptr(out), out.size)
        values, pos, shapes = out[:n], 0, []
        for _, nd in [*self.meta["free"], *self.meta["kept"]]:
            shapes.append(tuple(int(v) for v in values[pos : pos + nd]))
            pos += nd
        n_free = len(self.meta["free"])
        return shapes[:n_free], shapes[n_free:], values[pos:].copy()

    def evaluate(
        self, data: dict[str, np.ndarray], x: np.ndarray | None = None
    ) -> tuple[int, int, float, np.ndarray, np.ndarray, np.ndarray]:
        """(logp, gradient, kept quantities) at x (the start when None): the self-check."""
        free, kept, start = self.layout(data)
        x = start if x is None else np.ascontiguousarray(x, dtype=float)
        n_expanded = sum(int(np.prod(s)) for s in kept)
        ud = self.user_data(data, x.size, n_expanded)
        grad, logp, values = np.zeros(x.size), np.zeros(1), np.zeros(n_expanded)
        rc = self.cfuncs["logp"].ctypes(x.size, _ptr(x), _ptr(grad), _ptr(logp), _void(ud))
        rc2 = self.cfuncs["expand"].ctypes(x.size, n_expanded, _ptr(x), _ptr(values), _void(ud))
        return rc, rc2, logp[0], grad, values, start

    def nutpie_model(self, data: Mapping[str, np.ndarray]) -> NutpieModel:
        """The callbacks bound to this data set, ready for nutpie (core/model/nutpie_run.py)."""
        arrays = {name: np.array(data[name], dtype=float, order="C") for name in self.names}
        for a in arrays.values():
            a.flags.writeable = False
        free, kept, start = self.layout(arrays)
        n_dim = int(sum(int(np.prod(s)) for s in free))
        n_expanded = int(sum(int(np.prod(s)) for s in kept))
        user_data = self.user_data(arrays, n_dim, n_expanded)

        def initial_point(seed: Any = None) -> np.ndarray:
            # PyMC's start for nutpie: the support point, jittered by U(-1, 1) per entry
            rng = np.random.default_rng(seed)
            return start + rng.uniform(-1.0, 1.0, size=start.size)

        return NutpieModel(
            logp=self.cfuncs["logp"].address,
            expand=self.cfuncs["expand"].address,
            user_data=user_data,
            n_dim=n_dim,
            n_expanded=n_expanded,
            names=[name for name, _ in self.meta["kept"]],
            shapes=[tuple(int(n) for n in shape) for shape in kept],
            initial_point=initial_point,
            keep=(arrays, user_data, self.cfuncs),
        )


def write_check(folder: Path, bundle: Bundle, data: dict[str, np.ndarray]) -> None:
    """Store what the bundle computes on its own data, for the check on every first load."""
    rc, rc2, logp, grad, values, start = bundle.evaluate(data)
    if rc != 0 or rc2 != 0:
        raise ChangeoverError(f"the compiled model failed at its start point ({rc}, {rc2})")
    arrays: dict[str, Any] = {f"data_{k}": v for k, v in data.items()}
    np.savez(
        folder / "check.npz", **arrays, logp=np.array(logp), grad=grad, values=values, start=start
    )
