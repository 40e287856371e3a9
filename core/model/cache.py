"""Compiled models kept on disk, so that a fit in a new process starts warm.

A bundle is one compiled model structure: three numba C callbacks (log-density with gradient,
the kept quantities of a draw, and the layout of a data set: its parameter shapes and starting
point; core/model/bundle.py), each cached by numba under a key of ours, and `bundle.json`,
written last, that names them. The cold path (core/model/compiling.py) runs in a child process,
so Ctrl-C or a closed terminal during compilation kills a process that owns nothing (LLVM
aborted in ours before) and the user's process only ever loads finished bundles.

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
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from changeover.core.model.bundle import Bundle, make_cfunc
from changeover.core.types import ChangeoverError, FitCancelled

FORMAT = 1  # the bundle layout; part of every key
FOUND = 10  # a compiling process's exit status when another process had compiled it meanwhile
KEEP_DAYS = 30  # a bundle unused this long is removed when another one is written
_SOURCES = (  # what writes the graph and the wrappers: a change to one compiles again
    "fit.py",
    "scale.py",
    "parts.py",
    "likelihood.py",
    "compiling.py",
    "bundle.py",
)
_LIBRARIES = ("pymc", "pytensor", "nutpie", "numba", "llvmlite", "numpy")


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
    """Run core/model/compiling.py for each request, each in its own process and session (a
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
            [sys.executable, "-m", "changeover.core.model.compiling", str(request)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=_child_env(),
            start_new_session=True,
        )
    return child, log
