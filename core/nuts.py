"""Running NUTS on a PyMC model: nutpie when installed (compiled once per structure, counts
swapped in as data), PyMC's own sampler otherwise; progress, cancellation and the sampler's
statistics, the same for every calibration model (core/model.py, core/model_scale.py).

Same seed, same counts, same numbers: PyTensor's numba backend compiles with fastmath by
default, which lets LLVM reorder floating-point sums; the order it picks can depend on how an
array happens to be aligned in memory, so two processes of one seed drew different numbers.
Models are compiled here with fastmath off (tests/test_model_scale.py compares two processes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from changeover.core.settings import Settings
from changeover.core.types import FitCancelled

Progress = Callable[[float, str], None]

_COMPILED: dict[Hashable, Any] = {}  # nutpie models keyed by structure; data swapped in


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
    keys), `key` names its structure (nutpie compiles once per key and swaps `data` in),
    `var_names` are the draws kept, and `finish(draws, seed)` turns them into
    (p [C, D, M, R, L], confusion [C, D, M, R, L, L])."""

    build: Callable[[], Any]
    key: Hashable
    data: Mapping[str, np.ndarray]
    var_names: tuple[str, ...]
    finish: Callable[[dict[str, np.ndarray], int], tuple[np.ndarray, np.ndarray]]


def nutpie_available() -> bool:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return True


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
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Draws of the job's `var_names` ({name: [chains, draws, ...]}) and the sampler's
    statistics."""
    throttle = Throttle(on_progress)
    if sampler_name(settings) == "nutpie":
        return _run_nutpie(job, settings, seed, adaptation, throttle, cancel, label)
    return _run_pymc(job, settings, seed, throttle, cancel, label)


def _compiled(job: Job, throttle: Throttle, label: str):
    import nutpie
    import pytensor

    compiled = _COMPILED.get(job.key)
    if compiled is None:
        throttle(0.0, f"compiling the model for {label} (once per shape)", force=True)
        with pytensor.config.change_flags(numba__fastmath=False):
            compiled = nutpie.compile_pymc_model(
                job.build(), freeze_model=False, var_names=list(job.var_names)
            )
        _COMPILED[job.key] = compiled
    return compiled.with_data(**{k: np.asarray(v, dtype=float) for k, v in job.data.items()})


def _run_nutpie(job, settings, seed, adaptation, throttle, cancel, label):
    import nutpie

    compiled = _compiled(job, throttle, label)
    if cancel is not None and cancel.is_set():
        raise FitCancelled("fit cancelled")
    state = {"done": 0, "total": 1}

    def progress(chains) -> None:  # runs on nutpie's thread: only store numbers
        state["done"] = sum(c.finished_draws for c in chains)
        state["total"] = max(1, sum(c.total_draws for c in chains))

    sampling = nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        cores=settings.chains,
        seed=seed,
        target_accept=settings.target_accept,
        adaptation=adaptation,
        progress_bar=False,
        blocking=False,
        progress_callback=progress,
        progress_rate=100,
        save_warmup=False,
    )
    while not _finished(sampling):
        if cancel is not None and cancel.is_set():
            sampling.cancel()
            raise FitCancelled("fit cancelled")
        throttle(state["done"] / state["total"], f"sampling {label}".strip())
        time.sleep(0.05)
    trace = sampling.wait()
    stats = trace.sample_stats
    extra = {
        "mean_steps": float(np.asarray(stats["n_steps"].values, dtype=float).mean()),
        "max_depth": int(np.asarray(stats["depth"]).max()),
        "divergences": int(np.asarray(stats["diverging"].values).sum()),
    }
    return {name: np.asarray(trace.posterior[name].values) for name in job.var_names}, extra


def _finished(sampling) -> bool:
    try:
        return bool(sampling.is_finished)
    except TimeoutError:  # nutpie 0.16 reports a still-running sampler this way
        return False


def _run_pymc(job, settings, seed, throttle, cancel, label):
    import pymc as pm

    model = job.build()
    total = settings.chains * (settings.draws + settings.tune)
    state = {"done": 0}

    def callback(trace, draw) -> None:
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
    extra = {
        "mean_steps": float(np.asarray(stats["n_steps"].values).mean()),
        "max_depth": int(np.asarray(stats["tree_depth"].values).max()),
        "divergences": int(np.asarray(stats["diverging"].values).sum()),
    }
    return {name: np.asarray(trace.posterior[name].values) for name in job.var_names}, extra
