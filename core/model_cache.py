"""Compiled models kept on disk, so that a fit in a new process starts warm.

A bundle is one compiled model structure: three numba C callbacks (log-density with gradient,
the kept quantities of a draw, and the layout of a data set: its parameter shapes and starting
point), each cached by numba under a key of ours, and `bundle.json`, written last, that names
them. The cold path (core/model_compile.py) runs in a child process, so Ctrl-C or a closed
terminal during compilation kills a process that owns nothing (LLVM aborted in ours before) and
the user's process only ever loads finished bundles.

The key hashes the model's structure (the job's key: which model, its pooling and geometry, and
the shapes that change the graph), the source of every module that writes the graph or the
wrappers, and the versions of the libraries that generate the code; numba adds the CPU and its
own version. A loaded bundle must reproduce, bit for bit, the log-density, gradient, kept
quantities and layout it gave when it was compiled, on the data it was compiled with; anything
else (another structure, a damaged file) is a miss and compiles again. Two processes may
compile at once: a lock per key makes the second wait and load the first one's bundle.

Where: `CHANGEOVER_CACHE_DIR`, else the user's cache directory (platformdirs), `models/`.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from changeover.core.types import ChangeoverError, FitCancelled

FORMAT = 1  # the bundle layout; part of every key
FOUND = 10  # a compiling process's exit status when another process had compiled it meanwhile
KEEP_DAYS = 30  # a bundle unused this long is removed when another one is written
_SOURCES = ("model.py", "model_scale.py", "model_parts.py", "likelihood.py", "model_compile.py")
_LIBRARIES = ("pymc", "pytensor", "nutpie", "numba", "llvmlite", "numpy")
SIGNATURES = {  # the C callbacks nutpie calls (logp, expand) and ours (layout)
    "logp": "int64(uint64, CPointer(double), CPointer(double), CPointer(double), voidptr)",
    "expand": "int64(uint64, uint64, CPointer(double), CPointer(double), voidptr)",
    "layout": "int64(voidptr, CPointer(double), int64)",
}


_FALLBACK: list[Path] = []  # this process's private folder, when the cache cannot be written


def cache_root() -> Path:
    """Where bundles live: CHANGEOVER_CACHE_DIR, or the user's cache directory."""
    if _FALLBACK:
        return _FALLBACK[0]
    given = os.environ.get("CHANGEOVER_CACHE_DIR")
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("changeover")) / "models"


def bundle_key(structure: Hashable) -> str:
    """A hash of the structure, the code that writes the graph and the libraries' versions."""
    h = hashlib.sha256(repr((FORMAT, structure, sys.version)).encode())
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    for library in _LIBRARIES:
        h.update(f"{library}={metadata.version(library)};".encode())
    return h.hexdigest()[:40]


def bundle_folder(key: str) -> Path:
    return cache_root() / key


def writable_root() -> Path:
    """The cache folder, made if need be; when it cannot be written (a read-only home), a
    private temporary folder for this process instead, removed at exit: the models then
    compile once per process, as they did before there was a cache, and a fit still works."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tempfile.TemporaryFile(dir=root).close()
        return root
    except OSError:
        fallback = Path(tempfile.mkdtemp(prefix="changeover-models-"))
        atexit.register(shutil.rmtree, fallback, True)
        _FALLBACK.append(fallback)
        return fallback


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
            return FORMAT  # the key already names the code; files never go stale by time

        def get_disambiguator(self) -> str:
            return self._key[:24]

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> BundleLocator | None:
            found = _FOLDERS.get(py_func)
            return None if found is None else cls(*found)

    if not any(c.__name__ == "BundleLocator" for c in CacheImpl._locator_classes):
        CacheImpl._locator_classes.insert(0, BundleLocator)


def _as_voidptr():
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def as_voidptr(typingctx, src):
        def codegen(context, builder, signature, args):
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

    def layout(self, data: dict[str, np.ndarray]):
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

    def evaluate(self, data: dict[str, np.ndarray], x: np.ndarray | None = None):
        """(logp, gradient, kept quantities) at x (the start when None): the self-check."""
        free, kept, start = self.layout(data)
        x = start if x is None else np.ascontiguousarray(x, dtype=float)
        n_expanded = sum(int(np.prod(s)) for s in kept)
        ud = self.user_data(data, x.size, n_expanded)
        grad, logp, values = np.zeros(x.size), np.zeros(1), np.zeros(n_expanded)
        rc = self.cfuncs["logp"].ctypes(x.size, _ptr(x), _ptr(grad), _ptr(logp), _void(ud))
        rc2 = self.cfuncs["expand"].ctypes(x.size, n_expanded, _ptr(x), _ptr(values), _void(ud))
        return rc, rc2, logp[0], grad, values, start

    def nutpie_model(self, data: dict[str, Any]) -> Any:
        """nutpie's compiled-model value for this data set, ready for nutpie.sample."""
        from nutpie.compile_pymc import CompiledPyMCModel

        arrays = {name: np.array(data[name], dtype=float, order="C") for name in self.names}
        for a in arrays.values():
            a.flags.writeable = False
        free, kept, start = self.layout(arrays)
        n_dim = int(sum(int(np.prod(s)) for s in free))
        names = [name for name, _ in self.meta["kept"]]
        slices, pos = [], 0
        for shape in kept:
            size = int(np.prod(shape))
            slices.append(slice(pos, pos + size))
            pos += size
        user_data = self.user_data(arrays, n_dim, pos)

        def initial_point(seed: Any = None) -> np.ndarray:
            # PyMC's start for nutpie: the support point, jittered by U(-1, 1) per entry
            rng = np.random.default_rng(seed)
            return start + rng.uniform(-1.0, 1.0, size=start.size)

        return CompiledPyMCModel(
            dims={},
            compiled_logp_func=self.cfuncs["logp"],
            compiled_expand_func=self.cfuncs["expand"],
            initial_point_func=initial_point,
            shared_data=arrays,
            shared_var_keys={},
            user_data=user_data,
            n_expanded=pos,
            shape_info=(names, slices, kept),
            logp_func=None,
            expand_func=None,
            _n_dim=n_dim,
            _shapes=dict(zip(names, kept)),
            _coords={},
            reparameterized_names=[],
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


def load(key: str, structure: Hashable = None) -> Bundle | None:
    """The bundle of `key` from disk, checked; None when it is missing, was compiled for another
    structure (`structure`: the job's key, when given), or does not compute what it did when it
    was compiled."""
    folder = bundle_folder(key)
    try:
        meta = json.loads((folder / "bundle.json").read_text())
        if meta.get("key") != key or (
            structure is not None and meta.get("structure") != repr(structure)
        ):
            return None
        cfuncs = {
            kind: make_cfunc(folder, key, kind, meta["sources"][kind], meta["stem"], None)
            for kind in ("logp", "expand", "layout")
        }
        bundle = Bundle(meta, cfuncs)
        with np.load(folder / "check.npz", allow_pickle=False) as check:
            data = {k[5:]: check[k] for k in check.files if k.startswith("data_")}
            expected = {k: check[k] for k in ("logp", "grad", "values", "start")}
        rc, rc2, logp, grad, values, start = bundle.evaluate(data)
    except Exception:  # missing, partly written or foreign: compile again
        return None
    same = (
        rc == 0
        and rc2 == 0
        and np.array_equal(np.array(logp), expected["logp"])
        and np.array_equal(grad, expected["grad"])
        and np.array_equal(values, expected["values"])
        and np.array_equal(start, expected["start"])
    )
    if not same:
        return None
    with contextlib.suppress(OSError):
        os.utime(folder / "bundle.json")  # last used: the pruning keeps it
    return bundle


@contextlib.contextmanager
def compile_lock(key: str) -> Iterator[None]:
    """One compiler per key at a time, across processes (the second then finds the bundle)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(root / f"{key}.lock", "a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: both compile, and the last write wins (both are whole)
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prune(keep: set[str]) -> None:
    """Remove bundles unused for KEEP_DAYS (their code or libraries have moved on)."""
    root, now = cache_root(), time.time()
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.name in keep or folder.name == "pytensor" or not folder.is_dir():
            continue
        marker = folder / "bundle.json"
        try:
            age = now - (marker if marker.exists() else folder).stat().st_mtime
        except OSError:
            continue
        if age > KEEP_DAYS * 86400:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                (root / f"{folder.name}.lock").unlink()


# ---- getting a bundle ---------------------------------------------------------------------

_LOADED: dict[str, Bundle] = {}


@dataclass(frozen=True)
class Request:
    """A model to have ready: its key, and how the compiling process rebuilds its job
    (`make(*args)`, picklable)."""

    key: str
    make: Callable[..., Any]
    args: tuple
    label: str = ""
    structure: Hashable = None  # the job's key, which bundle.json must name


@dataclass(frozen=True)
class Prepared:
    """A bundle ready to sample and how it came: "memory", "disk" or "compiled", in seconds."""

    bundle: Bundle
    source: str
    seconds: float


def prepare(
    requests: list[Request],
    cancel: threading.Event | None = None,
    on_compile: Callable[[list[str]], None] | None = None,
    background: bool = False,
) -> list[Prepared]:
    """Each request's bundle: from this process, from disk, or compiled by child processes (as
    many at once as there are cores; `on_compile` hears the labels first; `background`: at a
    lower priority, so a warm-up never slows what the user does). Raises FitCancelled when
    cancelled (the children are stopped)."""
    start = time.perf_counter()
    found: dict[str, Prepared] = {}
    missing: list[Request] = []
    for r in requests:
        if r.key in found or any(m.key == r.key for m in missing):
            continue
        if r.key in _LOADED:
            found[r.key] = Prepared(_LOADED[r.key], "memory", 0.0)
            continue
        t = time.perf_counter()
        bundle = load(r.key, r.structure)
        if bundle is None:
            missing.append(r)
        else:
            _LOADED[r.key] = bundle
            found[r.key] = Prepared(bundle, "disk", time.perf_counter() - t)
    if missing:
        writable_root()
        if on_compile is not None:
            on_compile([r.label for r in missing])
        others = compile_in_children(missing, cancel, background)
        seconds = time.perf_counter() - start
        for r in missing:
            bundle = load(r.key, r.structure)
            if bundle is None:
                raise ChangeoverError(
                    f"the compiled model could not be read back from {bundle_folder(r.key)}"
                )
            _LOADED[r.key] = bundle
            found[r.key] = Prepared(bundle, "disk" if r.key in others else "compiled", seconds)
        with contextlib.suppress(OSError):
            prune(keep={r.key for r in requests})
    return [found[r.key] for r in requests]


def _child_env() -> dict[str, str]:
    env = {**os.environ, "CHANGEOVER_CACHE_DIR": str(cache_root())}
    flags = env.get("PYTENSOR_FLAGS", "")
    if "compiledir" not in flags:  # PyTensor's own compiled pieces live beside our bundles
        compiledir = cache_root() / "pytensor"
        env["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={compiledir}"]))
    return env


def compile_in_children(
    requests: list[Request], cancel: threading.Event | None, background: bool = False
) -> set[str]:
    """Run core/model_compile.py for each request, each in its own process and session (a
    Ctrl-C in the terminal reaches only us, and we stop them), as many at once as there are
    cores; the keys another process compiled while ours waited for it. Raises FitCancelled on
    cancel; KeyboardInterrupt passes through, children killed."""
    others: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="changeover-compile-") as tmp:
        waiting = list(enumerate(requests))
        running: list[tuple[subprocess.Popen, Path, str]] = []
        failed: list[str] = []
        try:
            while waiting or running:
                if cancel is not None and cancel.is_set():
                    raise FitCancelled("fit cancelled")
                while waiting and len(running) < max(1, os.cpu_count() or 1):
                    k, r = waiting.pop(0)
                    running.append((*_start_child(Path(tmp), k, r, 10 if background else 0), r.key))
                for child, log, key in list(running):
                    if child.poll() is not None:
                        running.remove((child, log, key))
                        if child.returncode == FOUND:
                            others.add(key)
                        elif child.returncode != 0:
                            lines = log.read_text(errors="replace").strip().splitlines()
                            failed.append(lines[-1] if lines else f"exit {child.returncode}")
                time.sleep(0.05)
        except BaseException:
            for child, _, _ in running:
                child.kill()
                child.wait()
            raise
    if failed:
        raise ChangeoverError(f"compiling the model failed: {failed[0]}")
    return others


def _start_child(tmp: Path, k: int, r: Request, nice: int) -> tuple[subprocess.Popen, Path]:
    request, log = tmp / f"request-{k}.pickle", tmp / f"compile-{k}.log"
    asked = {"key": r.key, "make": r.make, "args": r.args, "parent": os.getpid(), "nice": nice}
    request.write_bytes(pickle.dumps(asked))
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "changeover.core.model_compile", str(request)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=_child_env(),
            start_new_session=True,
        )
    return child, log
