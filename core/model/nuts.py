"""Running NUTS on a PyMC model: nutpie when installed (compiled once per machine and structure,
core/model/cache.py; counts swapped in as data), PyMC's own sampler otherwise; progress,
cancellation and the sampler's statistics, the same for every calibration model
(core/model/fit.py, core/model/scale.py).

Same seed, same counts, same numbers: PyTensor's numba backend compiles with fastmath by
default, which lets LLVM reorder floating-point sums; the order it picks can depend on how an
array happens to be aligned in memory, so two processes of one seed drew different numbers.
Models are compiled with fastmath off (core/model/compiling.py; tests/test_model_scale.py
compares two processes).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import numpy as np

from changeover.core.settings import Settings
from changeover.core.types import FitCancelled

if TYPE_CHECKING:  # the samplers load when a fit starts
    from nutpie import ChainProgress
    from pymc.backends.base import IBaseTrace
    from pymc.sampling.parallel import Draw

    from changeover.core.model.cache import Prepared

Progress = Callable[[float, str], None]


class SamplerStats(TypedDict):
    """The sampler's statistics of one metric's fit (kept in `FitResult.extra`, for the benches):
    mean tree steps per draw, deepest tree, divergent transitions; with nutpie also how its
    compiled model came ("compiled", "disk", "memory") and how long that took."""

    mean_steps: float
    max_depth: int
    divergences: int
    model: NotRequired[str]
    compile_seconds: NotRequired[float]


class Throttle:
    """Calls on_progress at most every `every` seconds (and always when forced)."""

    def __init__(self, on_progress: Progress | None, every: float = 0.2):
        self.on_progress, self.every, self.last = on_progress, every, -1.0

    def __call__(self, fraction: float, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is not None and (force or now - self.last >= self.every):
            self.last = now
            self.on_progress(min(max(fraction, 0.0), 1.0), message)


@dataclass(frozen=True)
class Job:
    """What one metric's fit samples: `build()` makes the PyMC model (pm.Data named as `data`'s
    keys, shapes read from the data), `key` names its structure (compiled once per machine and
    key, `data` swapped in; `make(*args)` gives this job again in the compiling process),
    `var_names` are the draws kept, and `finish(draws, seed)` turns them into
    (p [C, D, M, R, L], confusion [C, D, M, R, L, L])."""

    build: Callable[[], Any]
    key: Hashable
    data: Mapping[str, np.ndarray]
    var_names: tuple[str, ...]
    finish: Callable[[dict[str, np.ndarray], int], tuple[np.ndarray, np.ndarray]]
    make: Callable[..., Job]
    args: tuple


def nutpie_available() -> bool:
    """Whether nutpie is installed (found, not imported: it loads PyTensor and ArviZ, and the
    app asks this at start-up)."""
    from importlib.util import find_spec

    return find_spec("nutpie") is not None


def sampler_name(settings: Settings) -> str:
    if settings.sampler == "auto":
        return "nutpie" if nutpie_available() else "pymc"
    return settings.sampler


def run(
    job: Job,
    settings: Settings,
    seed: int,
    adaptation: str = "diag",
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
    label: str = "",
    prepared: Prepared | None = None,
) -> tuple[dict[str, np.ndarray], SamplerStats]:
    """Draws of the job's `var_names` ({name: [chains, draws, ...]}) and the sampler's
    statistics (`prepared`: its compiled model from `prepare`, if at hand)."""
    throttle = Throttle(on_progress)
    if sampler_name(settings) == "nutpie":
        return _run_nutpie(job, settings, seed, adaptation, throttle, cancel, label, prepared)
    return _run_pymc(job, settings, seed, throttle, cancel, label)


def prepare(
    jobs: Sequence[Job],
    cancel: threading.Event | None = None,
    on_progress: Progress | None = None,
    labels: Sequence[str] = (),
    background: bool = False,
) -> list[Prepared]:
    """Each job's compiled model (model_cache.Prepared: from this process, from the disk cache,
    or compiled by child processes, several at once; `background`: at a lower priority).
    Raises FitCancelled when cancelled."""
    from changeover.core.model import cache as model_cache

    names = list(labels) or [""] * len(jobs)
    requests = [
        model_cache.Request(model_cache.bundle_key(job.key), job.make, job.args, label, job.key)
        for job, label in zip(jobs, names)
    ]

    def compiling(which: list[str]) -> None:
        if on_progress is not None:
            what = ", ".join(w for w in which if w) or "the model"
            on_progress(0.0, f"compiling {what} (once per machine)")

    return model_cache.prepare(requests, cancel, compiling, background)


def _run_nutpie(
    job: Job,
    settings: Settings,
    seed: int,
    adaptation: str,
    throttle: Throttle,
    cancel: threading.Event | None,
    label: str,
    prepared: Prepared | None,
) -> tuple[dict[str, np.ndarray], SamplerStats]:
    from changeover.core.model.nutpie_run import Run

    if prepared is None:
        (prepared,) = prepare([job], cancel, throttle.on_progress, [label])
    if cancel is not None and cancel.is_set():
        raise FitCancelled("fit cancelled")
    state = {"done": 0, "total": 1}

    def progress(chains: list[ChainProgress]) -> None:  # on nutpie's thread: only store numbers
        state["done"] = sum(c.finished_draws for c in chains)
        state["total"] = max(1, sum(c.total_draws for c in chains))

    sampling = Run(
        prepared.bundle.nutpie_model(job.data),
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=seed,
        target_accept=settings.target_accept,
        adaptation=adaptation,
        on_progress=progress,
    )
    try:
        while not sampling.finished:
            if cancel is not None and cancel.is_set():
                raise FitCancelled("fit cancelled")
            throttle(state["done"] / state["total"], f"sampling {label}".strip())
            time.sleep(0.05)
        draws, stats = sampling.result(job.var_names)
    except BaseException:
        sampling.cancel()
        del sampling
        _wait_for_nutpie_threads()
        raise
    extra: SamplerStats = {
        "mean_steps": float(stats["n_steps"].astype(float).mean()),
        "max_depth": int(stats["depth"].max()),
        "divergences": int(stats["diverging"].sum()),
        "model": prepared.source,
        "compile_seconds": prepared.seconds,
    }
    return draws, extra


def _wait_for_nutpie_threads(timeout: float = 10.0) -> None:
    """Wait until nutpie's chain threads have ended. Its cancel returns before they finish the
    draw at hand (within ~0.1 s); a process that exits meanwhile has them take the GIL during
    interpreter shutdown, which ended every Ctrl-C of `changeover fit` in a segfault."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():  # not Linux: give them the time they take
        time.sleep(0.5)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = []
        for task in tasks.iterdir():
            with contextlib.suppress(OSError):
                names.append((task / "comm").read_text())
        if not any(name.startswith("nutpie-worker") for name in names):
            return
        time.sleep(0.02)


def _run_pymc(
    job: Job,
    settings: Settings,
    seed: int,
    throttle: Throttle,
    cancel: threading.Event | None,
    label: str,
) -> tuple[dict[str, np.ndarray], SamplerStats]:
    import pymc as pm

    model = job.build()
    total = settings.chains * (settings.draws + settings.tune)
    state = {"done": 0}

    def callback(trace: IBaseTrace, draw: Draw) -> None:
        state["done"] += 1
        if cancel is not None and cancel.is_set():
            raise FitCancelled("fit cancelled")
        throttle(state["done"] / total, f"sampling {label}".strip())

    with model:
        trace = pm.sample(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=1,
            random_seed=seed,
            target_accept=settings.target_accept,
            progressbar=False,
            compute_convergence_checks=False,
            callback=callback,
            var_names=list(job.var_names),
        )
    if cancel is not None and cancel.is_set():
        raise FitCancelled("fit cancelled")
    stats = trace.sample_stats
    extra: SamplerStats = {
        "mean_steps": float(np.asarray(stats["n_steps"].values).mean()),
        "max_depth": int(np.asarray(stats["tree_depth"].values).max()),
        "divergences": int(np.asarray(stats["diverging"].values).sum()),
    }
    return {name: np.asarray(trace.posterior[name].values) for name in job.var_names}, extra
