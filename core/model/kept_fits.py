"""Fit an eval set and keep the fit; read a kept fit back and bring it up to date (the draws
results show, `current_draws`). Used by core/workspace.py only.

A fitter takes the counts of every metric and returns posteriors and diagnostics
(`core.model.fit.fit_counts` is the one default; tests pass a canned one with the same signature).
The seed policy is one rule for every face: a seed asked for is used as it is; otherwise the
settings' seed, unless the latest fit saw the same counts and raters with that seed and failed
its diagnostics, in which case the next seed (the same seed would give the same draws, and
fail again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from changeover.core.model.counts import Counts, counts_for, data_hash
from changeover.core.model.posterior import Posterior, from_bytes, to_bytes
from changeover.core.settings import Settings
from changeover.core.store import Store
from changeover.core.types import ChangeoverError, EvalSet, FitRecord, Source

if TYPE_CHECKING:  # PyMC and friends load when a fit starts (default_fitter), not before
    from changeover.core.model.cell_draws import CellDraws
    from changeover.core.model.fit import FitResult

Progress = Callable[[float, str], None]


class Fitter(Protocol):
    """What fits the counts: `core.model.fit.fit_counts` or a canned stand-in in tests."""

    def __call__(
        self,
        counts: dict[str, Counts],
        weights: list[float],
        settings: Settings,
        on_progress: Progress | None = None,
        cancel: threading.Event | None = None,
        pass_levels: dict[str, int | None] | None = None,
    ) -> FitResult: ...


def default_fitter() -> Fitter:
    """The calibration model (PyMC and friends load only now, when a fit starts)."""
    from changeover.core.model.fit import fit_counts

    return fit_counts


def region_weights(eval_set: EvalSet, regions: Iterable[str]) -> list[float]:
    """Traffic weights in the order of `regions` (a region the spec does not declare weighs 0)."""
    weights = dict(zip(eval_set.region_names, eval_set.traffic_weights))
    return [weights.get(r, 0.0) for r in regions]


def choose_seed(
    store: Store, eval_set: EvalSet, settings: Settings, counts_hash: str, excluded: tuple[str, ...]
) -> Settings:
    """The settings' seed, or the next one after a failed fit of the same counts and seed."""
    fits = store.fits(eval_set.id)
    if not fits:
        return settings
    last = fits[0]
    same = (
        last.data_hash == counts_hash
        and last.settings.seed == settings.seed
        and tuple(sorted(last.exclude_raters)) == excluded
    )
    if same and not last.diagnostics.ok:
        return replace(settings, seed=settings.seed + 1)
    return settings


def run_fit(
    store: Store,
    eval_set: EvalSet,
    settings: Settings,
    fitter: Fitter,
    *,
    seed_given: bool = False,
    exclude_raters: Iterable[str] = (),
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> FitRecord:
    """Count, fit and keep a fit; returns its record. Raises `FitCancelled` on cancel, and
    stores nothing then."""
    excluded = tuple(sorted(set(exclude_raters)))
    counts = counts_for(store, eval_set, excluded)
    if not counts:
        raise ChangeoverError(f"eval set {eval_set.name!r} has no metrics to fit")
    if not seed_given:
        settings = choose_seed(store, eval_set, settings, data_hash(counts), excluded)
    regions = next(iter(counts.values())).regions
    pass_levels = {m.name: m.pass_level for m in eval_set.metrics}
    result = fitter(
        counts,
        region_weights(eval_set, regions),
        settings,
        on_progress=on_progress,
        cancel=cancel,
        pass_levels=pass_levels,
    )
    kept = [replace(p, counts=counts[p.metric], chains=settings.chains) for p in result.posteriors]
    return store.save_fit(
        eval_set.id,
        settings,
        data_hash(counts),
        result.diagnostics,
        to_bytes(kept),
        exclude_raters=excluded,
        seconds=result.seconds,
    )


def kept_fit(
    store: Store, eval_set: EvalSet, fit_id: int | None = None
) -> tuple[FitRecord | None, list[Posterior]]:
    """The latest kept fit of the eval set (or fit `fit_id`) and its posteriors; (None, []) if
    there is none."""
    if fit_id is None:
        fits = store.fits(eval_set.id)
        if not fits:
            return None, []
        fit = fits[0]
    else:
        fit = store.fit(fit_id)
        if fit.eval_set_id != eval_set.id:
            raise ChangeoverError(
                f"fit {fit_id} belongs to another eval set, not {eval_set.name!r}"
            )
    return fit, from_bytes(store.fit_draws(fit.id))


@dataclass(frozen=True)
class Drawn:
    """The draws an eval set's results show and where they come from (the rule: the module
    docstring of core/workspace.py)."""

    posteriors: list[Posterior]
    source: Source
    stale: bool = False  # labels (or judgments) changed since the fit
    labels_since: int = 0  # label events given since the fit (when stale)
    khat: float | None = None  # Pareto k of the update by them (when stale)


def current_draws(
    store: Store,
    eval_set: EvalSet,
    fit: FitRecord | None,
    posteriors: list[Posterior],
    counts: dict[str, Counts],
    instant: bool = False,
    cache: CellDraws | None = None,
) -> Drawn:
    """A kept fit's draws on today's `counts`: as fitted, or reweighted by the labels since when
    the weights can be trusted; the instant posterior with no fit or when asked (`instant`),
    its cells' draws kept in `cache`."""
    from changeover.core.model.instant import instant_posterior
    from changeover.core.model.reweight import reweight

    if fit is None or instant:
        return Drawn(
            [
                instant_posterior(
                    counts[m.name], eval_set.traffic_weights, pass_level=m.pass_level, cache=cache
                )
                for m in eval_set.metrics
                if m.name in counts
            ],
            Source.INSTANT,
        )
    if data_hash(counts) == fit.data_hash:
        return Drawn(posteriors, Source.FULL)
    since = store.labels_since(eval_set.id, fit.created_at)
    updates = [
        reweight(p, counts[p.metric], fit.settings.seed) for p in posteriors if p.metric in counts
    ]
    khat = max(u.khat for u in updates) if updates else None
    if updates and all(u.usable for u in updates):
        return Drawn([u.posterior for u in updates], Source.UPDATED, True, since, khat)
    return Drawn(posteriors, Source.FULL, True, since, khat)
