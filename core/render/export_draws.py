"""A kept fit's posterior draws as an ArviZ DataTree, written to netCDF for notebooks.

`draws_tree(posteriors, incumbent, provenance, chains)` lays the draws out the ArviZ way: one
`posterior` group whose variables all lead with (chain, draw). Per metric `k`:

- yes/no: `k_rate` (model, region) the rate of the positive level, `k_rate_overall` (model)
  traffic-weighted over the regions, `k_sensitivity` and `k_specificity` (model, region) of the
  judge;
- scales: `k_mean_level` (model, region) on 1..L and `k_mean_level_overall` (model),
  `k_pass_share` and `k_pass_share_overall` when the metric has a pass level, `k_p` (model,
  region, level) the level distribution, `k_confusion` (model, region, human_level,
  judge_level) the judge's P(J = j | H = h);
- both: `k_delta` (candidate, region) and `k_delta_overall` (candidate): candidate minus
  incumbent of the rate or mean level, draw by draw.

Those are the numbers of the report: its mean and 90% interval are the mean and the 5% and 95%
quantiles of these draws. Coordinates: `model` (incumbent first), `candidate`, `region`, and
for scales `level`, `human_level`, `judge_level` (a second scale with other levels gets its
own, `k_level` ...). Attributes carry the settings and the provenance (workspace, eval set, fit
id and time, data hash, changeover version). Stored draws are the chains one after another,
each thinned alike (core/model/fit.py `summarise`), and a kept fit records how many chains, so
they split back into chains; the instant posterior has no chains and is one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from changeover.core.model.posterior import Posterior
from changeover.core.store import Store
from changeover.core.types import ChangeoverError, EvalSet, Source

if TYPE_CHECKING:  # xarray loads with the export, not with the module
    import xarray as xr

ENGINE: Final = "h5netcdf"  # netCDF4 (HDF5) groups; scipy's netCDF3 cannot hold a DataTree's groups


def changeover_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("changeover")
    except PackageNotFoundError:
        return "unknown"


def chains_of(posteriors: Sequence[Posterior], fallback: int = 1) -> int:
    """How many chains the stored draws split into: the count kept with them (for fits kept
    before it was, the fit's setting `fallback`), when every metric's draws came from the
    sampler and divide evenly; else 1."""
    kept = {p.chains for p in posteriors}
    chains = kept.pop() if len(kept) == 1 else 1
    if chains == 1:
        chains = fallback
    draws = {p.n_draws for p in posteriors}
    if (
        chains > 1
        and len(draws) == 1
        and all(p.source == Source.FULL for p in posteriors)
        and next(iter(draws)) % chains == 0
    ):
        return chains
    return 1


def _attr(value: Any) -> Any:
    """netCDF attributes are text or numbers: anything else goes in as JSON."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    return json.dumps(value, sort_keys=True, default=str)


class _Layout:
    """Dimension names: shared where every metric agrees, a metric's own where it does not."""

    def __init__(self, posteriors: Sequence[Posterior], incumbent: str):
        self.incumbent = incumbent
        self.shared_models = len({p.models for p in posteriors}) == 1
        self.shared_regions = len({p.regions for p in posteriors}) == 1
        self.levels: dict[tuple[str, ...], str] = {}  # a scale's levels -> dim prefix
        self.coords: dict[str, list] = {}

    def dim(self, post: Posterior, name: str, values: Sequence[str]) -> str:
        shared = {"model": self.shared_models, "candidate": self.shared_models}.get(
            name, self.shared_regions
        )
        dim = name if shared else f"{post.metric}_{name}"
        self.coords[dim] = list(values)
        return dim

    def level_dims(self, post: Posterior) -> tuple[str, str, str]:
        prefix = self.levels.setdefault(post.levels, "" if not self.levels else f"{post.metric}_")
        dims = (f"{prefix}level", f"{prefix}human_level", f"{prefix}judge_level")
        for d in dims:
            self.coords[d] = list(post.levels)
        return dims


def _metric_vars(
    post: Posterior, layout: _Layout, split: Callable[[np.ndarray], np.ndarray]
) -> dict[str, tuple[tuple, np.ndarray]]:
    """name -> (dims after chain and draw, draws) for one metric."""
    k = post.metric
    if layout.incumbent not in post.models:
        raise ChangeoverError(f"{k}: the incumbent {layout.incumbent!r} is not in the fit")
    i = post.model_index(layout.incumbent)
    cands = [m for m in range(len(post.models)) if m != i]
    model = layout.dim(post, "model", post.models)
    region = layout.dim(post, "region", post.regions)
    cand = layout.dim(post, "candidate", [post.models[m] for m in cands])
    q = post.quantity()  # [S, M, R]
    name = "rate" if post.is_binary else "mean_level"
    out = {
        f"{k}_{name}": ((model, region), q),
        f"{k}_{name}_overall": ((model,), post.overall(q)),
        f"{k}_delta": ((cand, region), q[:, cands] - q[:, [i]]),
        f"{k}_delta_overall": ((cand,), post.overall(q)[:, cands] - post.overall(q)[:, [i]]),
    }
    if post.is_binary:
        out[f"{k}_sensitivity"] = ((model, region), post.confusion[..., 1, 1])
        out[f"{k}_specificity"] = ((model, region), post.confusion[..., 0, 0])
    else:
        share = post.pass_share()
        if share is not None:
            out[f"{k}_pass_share"] = ((model, region), share)
            out[f"{k}_pass_share_overall"] = ((model,), post.overall(share))
        level, human, judge = layout.level_dims(post)
        out[f"{k}_p"] = ((model, region, level), post.p)
        out[f"{k}_confusion"] = ((model, region, human, judge), post.confusion)
    return {n: (dims, split(draws)) for n, (dims, draws) in out.items()}


_DESCRIBE = {
    "rate": "rate of the positive level {top!r}",
    "rate_overall": "rate of {top!r}, traffic-weighted over the regions",
    "mean_level": "mean level on 1..{n}",
    "mean_level_overall": "mean level on 1..{n}, traffic-weighted over the regions",
    "pass_share": "share at or above the pass level {passing!r}",
    "pass_share_overall": "share at or above {passing!r}, traffic-weighted over the regions",
    "delta": "candidate minus incumbent ({quantity}), draw by draw",
    "delta_overall": "candidate minus incumbent ({quantity}) over the regions, draw by draw",
    "sensitivity": "the judge's P(judge {top!r} | human {top!r})",
    "specificity": "the judge's P(judge {bottom!r} | human {bottom!r})",
    "p": "distribution of the true level",
    "confusion": "the judge's P(judge level | human level)",
}


def draws_tree(
    posteriors: Sequence[Posterior], incumbent: str, provenance: dict, chains: int = 1
) -> xr.DataTree:
    """The posteriors as an ArviZ DataTree (a `posterior` group; attributes: provenance).
    `chains` is the fit's setting, for draws kept before their chain count was."""
    import xarray as xr

    if not posteriors:
        raise ChangeoverError("no posterior draws to export")
    C = chains_of(posteriors, chains)
    layout = _Layout(posteriors, incumbent)
    variables: dict[str, Any] = {}
    for post in posteriors:
        D = post.n_draws // C

        def split(a: np.ndarray, D: int = D) -> np.ndarray:
            return a.reshape(C, D, *a.shape[1:])  # stored chain after chain (model.summarise)

        quantity = "rate" if post.is_binary else "mean level"
        facts = {
            "metric": post.metric,
            "levels": _attr(list(post.levels)),
            "top": post.levels[-1],
            "bottom": post.levels[0],
            "n": len(post.levels),
            "passing": post.levels[post.pass_level] if post.pass_level is not None else "",
            "quantity": quantity,
            "source": post.source.value,
        }
        for name, (dims, draws) in _metric_vars(post, layout, split).items():
            kind = name[len(post.metric) + 1 :]
            attrs = {
                "metric": post.metric,
                "levels": facts["levels"],
                "description": _DESCRIBE[kind].format(**facts),
                "source": post.source.value,
            }
            variables[name] = xr.Variable(("chain", "draw", *dims), draws, attrs=attrs)
    coords = {"chain": np.arange(C), "draw": np.arange(posteriors[0].n_draws // C)}
    coords.update({d: np.asarray(v, dtype=object) for d, v in layout.coords.items()})
    attrs = {
        "created_at": provenance.get("fit_created_at", ""),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "creation_library": "changeover",
        "creation_library_version": changeover_version(),
        "inference_library": provenance.get("sampler", ""),
        "incumbent": incumbent,
        "chains_note": (
            f"{C} chains, as sampled"
            if C > 1
            else "1 chain: the draws are not split by chain (instant posterior, or unknown split)"
        ),
        "interval": "the report's 90% intervals are the 5% and 95% quantiles of these draws",
        **{k: _attr(v) for k, v in provenance.items()},
    }
    posterior = xr.Dataset(variables, coords=coords, attrs=attrs)
    tree = xr.DataTree.from_dict({"posterior": posterior}, name="changeover")
    tree.attrs.update(attrs)
    return tree


def write_netcdf(tree: xr.DataTree, path: str | os.PathLike) -> None:
    """Write a DataTree to netCDF, atomically (core/render/export.py `atomic_path`)."""
    from changeover.core.render.export import atomic_path

    with atomic_path(Path(path)) as tmp:
        tree.to_netcdf(tmp, engine=ENGINE)


@dataclass(frozen=True)
class DrawsWritten:
    """What `export_draws` wrote: which fit, its chains, draws per chain and variables."""

    fit_id: int
    chains: int
    draws: int
    variables: int


def export_draws(
    store: Store, es: EvalSet, output: str | os.PathLike, fit_id: int | None = None
) -> DrawsWritten:
    """Write the kept fit (the latest, or `fit_id`) of an eval set to a netCDF file; returns
    what was written."""
    from changeover.core.model.counts import counts_for, data_hash
    from changeover.core.model.kept_fits import kept_fit
    from changeover.core.results import shown_posteriors

    fit, posteriors = kept_fit(store, es, fit_id)
    if fit is None or not posteriors:
        raise ChangeoverError(f"eval set {es.name!r} has no fit yet: run `changeover fit` first")
    posteriors = shown_posteriors(posteriors, fit)  # the report's draws, unlabelled cells widened
    provenance = {
        "workspace": str(store.path or ""),
        "eval_set": es.name,
        "fit_id": fit.id,
        "fit_created_at": fit.created_at,
        "data_hash": fit.data_hash,
        "stale": data_hash(counts_for(store, es, fit.exclude_raters)) != fit.data_hash,
        "exclude_raters": list(fit.exclude_raters),
        "settings": fit.settings.to_dict(),
        "diagnostics": fit.diagnostics.to_dict(),
        "sampler": fit.diagnostics.sampler,
        "regions": {r.name: r.traffic for r in es.regions},
    }
    tree = draws_tree(posteriors, es.incumbent, provenance, fit.settings.chains)
    write_netcdf(tree, output)
    post = tree["posterior"]
    return DrawsWritten(fit.id, post.sizes["chain"], post.sizes["draw"], len(post.data_vars))
