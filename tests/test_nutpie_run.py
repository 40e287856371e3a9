"""nutpie's sampler driven through its Rust core alone (core/model/nutpie_run.py): it loads
without nutpie's Python layer (ArviZ, pandas, xarray: seconds of every new process's first
fit), and it draws exactly what `nutpie.sample` draws for the same model and seed."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import random_counts

from changeover.core.model import fit as model_mod
from changeover.core.model import nuts
from changeover.core.settings import Settings

LOADED = (
    "from changeover.core.model.nutpie_run import nutpie_lib\n"
    "import sys\n"
    "lib = nutpie_lib()\n"
    "print(sorted(m for m in ('nutpie', 'nutpie.sample', 'arviz', 'pandas', 'xarray')"
    " if m in sys.modules))\n"
    "import nutpie\n"
    "print(nutpie._lib is lib, hasattr(nutpie, 'sample'))\n"
)


def test_nutpies_core_loads_without_its_python_layer_and_is_shared_with_it():
    out = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "True True"]


def _public_nutpie(prepared, model, settings: Settings, seed: int, adaptation: str):
    """The same bundle sampled through nutpie's public `sample`, as changeover did before."""
    import nutpie
    from nutpie.compile_pymc import CompiledPyMCModel

    slices, pos = [], 0
    for shape in model.shapes:
        size = int(np.prod(shape))
        slices.append(slice(pos, pos + size))
        pos += size
    compiled = CompiledPyMCModel(
        dims={},
        compiled_logp_func=prepared.bundle.cfuncs["logp"],
        compiled_expand_func=prepared.bundle.cfuncs["expand"],
        initial_point_func=model.initial_point,
        shared_data={},
        shared_var_keys={},
        user_data=model.user_data,
        n_expanded=model.n_expanded,
        shape_info=(model.names, slices, model.shapes),
        logp_func=None,
        expand_func=None,
        _n_dim=model.n_dim,
        _shapes=dict(zip(model.names, model.shapes)),
        _coords={},
        reparameterized_names=[],
    )
    return nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        cores=settings.chains,
        seed=seed,
        target_accept=settings.target_accept,
        adaptation=adaptation,
        progress_bar=False,
        save_warmup=False,
    )


@pytest.mark.slow  # loads (or compiles, once per machine) a model and samples it twice
@pytest.mark.parametrize("adaptation", ["diag", "low_rank"])
def test_the_draws_are_nutpies_own_bit_for_bit(adaptation):
    from changeover.core.model.nutpie_run import Run

    settings = Settings(draws=300, tune=300)
    job = model_mod.job_for(random_counts(2, 3, 2, seed=4), settings)
    (prepared,) = nuts.prepare([job])
    model = prepared.bundle.nutpie_model(job.data)
    seen: list[int] = []
    run = Run(
        model,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=17,
        target_accept=settings.target_accept,
        adaptation=adaptation,
        on_progress=lambda chains: seen.append(sum(c.finished_draws for c in chains)),
        rate_ms=10,
    )
    while not run.finished:
        time.sleep(0.01)
    draws, stats = run.result(job.var_names)

    trace = _public_nutpie(prepared, model, settings, 17, adaptation)
    for name in job.var_names:
        theirs = np.asarray(trace.posterior[name].values)
        assert (
            draws[name].shape
            == theirs.shape
            == (settings.chains, settings.draws, *theirs.shape[2:])
        )
        np.testing.assert_array_equal(draws[name], theirs)
    for name in ("n_steps", "depth", "diverging"):
        np.testing.assert_array_equal(stats[name], np.asarray(trace.sample_stats[name].values))
    assert seen and seen[-1] <= settings.chains * (settings.draws + settings.tune)
