"""nutpie's sampler run on a compiled bundle through nutpie's Rust core (`nutpie._lib`) alone.

`import nutpie` loads nutpie's Python layer, which imports ArviZ, pandas and xarray at module
level to build its result (an ArviZ DataTree): about 3 s of every new process's first fit on
2 cores (`python -X importtime`; the sample's warm fit 11.6 s, its refit 6.4 s), for a value
we read six arrays from. So the extension module is loaded on its own (it needs nothing of
nutpie's Python code) and driven the way `nutpie.sample` drives it for a PyMC model (nutpie
0.16: `sample`, `_BackgroundSampler`, `CompiledPyMCModel._make_model`): the same settings,
the same seed, the same draws (tests/test_model_cache.py compares the two, bit for bit, so a
nutpie release that changes its core fails a test instead of a fit). The draws after tuning
are read from nutpie's Arrow trace as `_arrow_to_arviz` reads them.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from changeover.core.types import ChangeoverError

if TYPE_CHECKING:
    from nutpie import ChainProgress


@dataclass(frozen=True)
class NutpieModel:
    """A bundle's callbacks bound to one data set: what nutpie's core needs to sample it."""

    logp: int  # addresses of the numba C callbacks
    expand: int
    user_data: np.ndarray  # the record the callbacks read the data through (by pointer)
    n_dim: int
    n_expanded: int
    names: list[str]  # the kept quantities, and their shapes
    shapes: list[tuple[int, ...]]
    initial_point: Callable[[Any], np.ndarray]
    keep: object  # what the pointers point into: kept alive while nutpie samples


def nutpie_lib() -> ModuleType:
    """nutpie's extension module, loaded without running nutpie/__init__.py (a later
    `import nutpie` finds it in sys.modules and uses the same one)."""
    loaded = sys.modules.get("nutpie._lib")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("nutpie")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ChangeoverError("nutpie is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = next(
        (p for p in folder.iterdir() if p.name.startswith("_lib.") and p.suffix in (".so", ".pyd")),
        None,
    )
    if path is None:
        raise ChangeoverError(f"nutpie's compiled core was not found in {folder}")
    loader = importlib.machinery.ExtensionFileLoader("nutpie._lib", str(path))
    lib_spec = importlib.util.spec_from_file_location("nutpie._lib", path, loader=loader)
    assert lib_spec is not None
    lib = importlib.util.module_from_spec(lib_spec)
    loader.exec_module(lib)
    sys.modules["nutpie._lib"] = lib
    return lib


class Run:
    """One sampling run in nutpie's threads: poll `finished`, then `result`; `cancel` stops it."""

    def __init__(
        self,
        model: NutpieModel,
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float,
        adaptation: str,
        on_progress: Callable[[list[ChainProgress]], None],
        rate_ms: int = 100,
    ) -> None:
        lib = nutpie_lib()
        if adaptation == "low_rank":
            settings = lib.PyNutsSettings.LowRank(seed)
        elif adaptation in ("diag", "draw_diag"):
            settings = lib.PyNutsSettings.Diag(seed)
            if adaptation == "draw_diag":
                settings.use_grad_based_mass_matrix = False
        else:
            raise ChangeoverError(f"unknown nutpie adaptation {adaptation!r}")
        # the order nutpie.sample updates them in
        settings.update(
            {
                "target_accept": target_accept,
                "num_tune": tune,
                "num_draws": draws,
                "num_chains": chains,
            }
        )
        self.model = model  # the callbacks read its arrays through pointers while it runs
        self.sampler = lib.PySampler.from_pymc(
            settings,
            chains,  # one core per chain, as `changeover` has always asked nutpie for
            self._core_model(lib, model),
            lib.ProgressType.none(),
            on_progress,
            rate_ms,
            lib.PyStorage.arrow(),
        )

    @staticmethod
    def _core_model(lib: ModuleType, m: NutpieModel) -> Any:
        address = m.user_data.ctypes.data
        expand = lib.ExpandFunc(m.n_dim, m.n_expanded, m.expand, address, m.keep)
        logp = lib.LogpFunc(m.logp, address, m.keep)
        # nutpie names each array's dimensions (p_dim_0...) into dim_sizes, which the model
        # then reads: one dict for both, as nutpie's own _make_model passes it
        dim_sizes: dict[str, int] = {}
        variables = lib.PyVariable.new_variables(
            m.names, ["float64"] * len(m.names), m.shapes, dim_sizes, {}
        )

        def no_flow(*args: object, **kwargs: object) -> object:  # only "flow" adaptation asks
            raise ChangeoverError("nutpie's flow adaptation is not used by changeover")

        return lib.PyMcModel(
            logp, expand, variables, m.n_dim, dim_sizes, {}, m.initial_point, no_flow
        )

    @property
    def finished(self) -> bool:
        try:
            return bool(self.sampler.is_finished())
        except TimeoutError:  # nutpie 0.16 reports a still-running sampler this way
            return False

    def cancel(self) -> None:
        self.sampler.abort()

    def result(self, names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The draws after tuning, [chain, draw, *shape] per kept quantity in `names`, and the
        sampler statistics n_steps, depth and diverging, [chain, draw]."""
        self.sampler.wait(None)
        draw_batches, stat_batches = self.sampler.take_results().get_arrow_trace()
        shapes = dict(zip(self.model.names, self.model.shapes))
        draws: dict[str, list[np.ndarray]] = {name: [] for name in names}
        stats: dict[str, list[np.ndarray]] = {n: [] for n in ("n_steps", "depth", "diverging")}
        for draw, stat in zip(draw_batches, stat_batches):
            tuning = int(stat.column("tuning").to_numpy().sum())
            kept = draw.num_rows - tuning
            for name in names:
                draws[name].append(_column(draw.slice(tuning, kept), name, shapes[name]))
            for name in stats:
                stats[name].append(_column(stat.slice(tuning, kept), name, ()))
        return (
            {name: np.stack(chains) for name, chains in draws.items()},
            {name: np.stack(chains) for name, chains in stats.items()},
        )


def _column(batch: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One column of an Arrow batch as [rows, *shape] (a fixed-size list per row for arrays)."""
    import pyarrow

    column = pyarrow.array(batch.column(name))
    if column.null_count:
        raise ChangeoverError(f"nutpie returned missing values in {name!r}")
    if hasattr(column, "flatten"):
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False).reshape((batch.num_rows, *shape))
