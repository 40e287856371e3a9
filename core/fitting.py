"""Glue between the store, the counts, the calibration model and the decisions (CLI and TUI).

`run_fit` computes the counts, fits them, and keeps the fit (settings with the excluded raters,
the counts hash, diagnostics, a small summary of the headline verdicts, compressed draws).
`latest_posteriors` reopens a kept fit without refitting; `is_stale` says whether the labels
changed since (the counts hash differs, computed with the fit's excluded raters).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace

from changeover.core.counts import Counts, counts_for, data_hash
from changeover.core.decide import decide_all, specs_of
from changeover.core.posterior import Posterior, from_bytes, to_bytes
from changeover.core.types import ChangeoverError, EvalSet, FitRecord

Progress = Callable[[float, str], None]


def region_weights(eval_set: EvalSet, regions: Iterable[str]) -> list[float]:
    """Traffic weights in the order of `regions` (a region the spec does not declare weighs 0)."""
    weights = dict(zip(eval_set.region_names, eval_set.traffic_weights))
    return [weights.get(r, 0.0) for r in regions]


def summarise_fit(
    eval_set: EvalSet,
    posteriors: list[Posterior],
    diagnostics: dict,
    seconds: float | None = None,
    threshold: float = 0.95,
    min_labels: int = 30,
) -> dict:
    """The small JSON kept with a fit: headline verdict per candidate (for lists of fits)."""
    decisions = decide_all(
        posteriors, specs_of(eval_set), eval_set.incumbent, threshold, min_labels
    )
    return {
        "threshold": threshold,
        "min_labels": min_labels,
        "ok": bool(diagnostics.get("ok", False)),
        "seconds": seconds,
        "verdicts": {
            d.candidate: {
                "verdict": d.verdict,
                "joint_probability": round(d.joint_probability, 4),
                "reason": d.reason,
            }
            for d in decisions
        },
    }


def run_fit(
    store,
    eval_set: EvalSet,
    settings,
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
    exclude_raters: Iterable[str] = (),
    fitter: Callable | None = None,
    vary_seed: bool = False,
) -> FitRecord:
    """Count, fit and keep a fit; returns its record. Raises core.model.FitCancelled on cancel,
    and stores nothing then. `fitter` defaults to core.model.fit_counts (tests pass a canned one).
    vary_seed: when the latest fit had the same data and seed and failed its diagnostics, use
    the next seed (the same seed would give the same draws, and fail again)."""
    if fitter is None:
        from changeover.core.model import fit_counts as fitter
    excluded = sorted(set(exclude_raters))
    counts = counts_for(store, eval_set, excluded)
    if not counts:
        raise ChangeoverError(f"eval set {eval_set.name!r} has no metrics to fit")
    if vary_seed:
        settings = _seed_after_a_failed_fit(store, eval_set, settings, data_hash(counts), excluded)
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
    settings_d = {**settings.to_dict(), "exclude_raters": excluded}
    summary = summarise_fit(
        eval_set,
        result.posteriors,
        result.diagnostics,
        result.seconds,
        min_labels=getattr(settings, "min_labels", 30),
    )
    return store.save_fit(
        eval_set.id,
        settings_d,
        data_hash(counts),
        result.diagnostics,
        summary,
        to_bytes(result.posteriors),
    )


def _seed_after_a_failed_fit(
    store, eval_set: EvalSet, settings, counts_hash: str, excluded: list[str]
):
    fits = store.fits(eval_set.id)
    if not fits:
        return settings
    last = fits[0]
    same = (
        last.data_hash == counts_hash
        and last.settings.get("seed") == settings.seed
        and sorted(last.settings.get("exclude_raters") or []) == excluded
    )
    if same and (last.diagnostics or {}).get("ok") is False:
        return replace(settings, seed=settings.seed + 1)
    return settings


def latest_posteriors(
    store, eval_set: EvalSet, fit_id: int | None = None
) -> tuple[FitRecord | None, list[Posterior]]:
    """The latest kept fit of the eval set (or fit `fit_id`) and its posteriors; (None, []) if none."""
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


def counts_of_fit(store, eval_set: EvalSet, fit: FitRecord) -> dict[str, Counts]:
    """The counts now, with the raters the fit left out left out again."""
    return counts_for(store, eval_set, fit.settings.get("exclude_raters", ()))


def is_stale(
    store, eval_set: EvalSet, fit: FitRecord, counts: dict[str, Counts] | None = None
) -> bool:
    """True when the labels (or judgments) changed since the fit ran. `counts`, counted with
    every rater, are reused when the fit left nobody out (saves counting twice)."""
    if counts is None or fit.settings.get("exclude_raters"):
        counts = counts_of_fit(store, eval_set, fit)
    return data_hash(counts) != fit.data_hash
