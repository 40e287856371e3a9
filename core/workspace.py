"""The one path from a workspace file to every face (the app, the command line, export).

A `Workspace` opens the file (for review or for writing), chooses the eval set by one rule for
every command, hands out responses and takes labels, fits with one default fitter and one seed
policy, and builds the one `Results` value every face formats (core/results.py), choosing the
draws by one rule:

- a kept fit (the latest, or the one asked for) on the counts it saw: source "full";
- when labels came since (the fit is stale), the fit's draws reweighted by the likelihood of
  those labels (core/model/reweight.py): source "updated", with the Pareto k; when the weights cannot
  be trusted the fit is shown as it was, marked stale, and the warning says to fit again. A
  verdict on screen never changes estimator silently;
- no fit yet (or asked for): the instant posterior, conjugate and unpooled: source "instant".

The faces (cli/, tui/) reach the store and the model only through here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from changeover.core.decide.rule import DecisionRule
from changeover.core.labelling.queue import LabellingQueue
from changeover.core.model.cell_draws import CellDraws
from changeover.core.settings import Settings
from changeover.core.store import Store, is_workspace
from changeover.core.store.files import user_error
from changeover.core.store.rows import EvalSetSource
from changeover.core.summary import EvalSetSummary, responses_text
from changeover.core.types import (
    BrowseFilter,
    BrowseRow,
    ChangeoverError,
    EvalSet,
    EvalSetChoice,
    FitRecord,
    ModelsReady,
    Rating,
    ResponseView,
    UsageError,
)

__all__ = [
    "DecisionRule",
    "EvalSetSource",
    "EvalSetSummary",
    "LabellingQueue",
    "Workspace",
    "responses_text",
    "user_error",
]

if TYPE_CHECKING:  # the statistics (and numpy) load when first asked for, not at start-up
    from changeover.core.importing.lake import LakeReport
    from changeover.core.importing.report import ImportReport
    from changeover.core.judge.agreement import RaterAgreement
    from changeover.core.model.counts import Counts
    from changeover.core.model.kept_fits import Fitter, Progress
    from changeover.core.render.export_draws import DrawsWritten
    from changeover.core.results import Results


class Workspace:
    """A workspace file and what every face does with it."""

    def __init__(self, store: Store, fitter: Fitter | None = None) -> None:
        self.store = store
        self._fitter = fitter
        self._results: dict[tuple, Results] = {}  # by what they depend on, the rule included
        self._cells = CellDraws()  # the instant posterior's draws, cell by cell
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        read_only: bool = False,
        create: bool = False,
        fitter: Fitter | None = None,
    ) -> Workspace:
        """Open a workspace file (refusing foreign or newer files); `create` makes a new one."""
        return cls(Store.open(path, create=create, read_only=read_only), fitter)

    @staticmethod
    def is_workspace(path: str | os.PathLike) -> bool:
        """Whether `path` is a workspace file this version opens; nothing is written to it."""
        return is_workspace(path)

    @classmethod
    def memory(cls, fitter: Fitter | None = None) -> Workspace:
        """A fresh in-memory workspace (tests)."""
        return cls(Store.memory(), fitter)

    @property
    def path(self) -> Path | None:
        return self.store.path

    @property
    def read_only(self) -> bool:
        return self.store.read_only

    @property
    def name(self) -> str:
        return self.path.name if self.path else "in-memory workspace"

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def reading(self) -> Iterator[Workspace]:
        """A second, read-only connection for a long read in a worker thread (a count over a
        million rows) that must not hold up this one."""
        with self.store.reading() as other:
            yield self if other is self.store else Workspace(other, self._fitter)

    def schema_version(self) -> int:
        return self.store.schema_version()

    # ---- eval sets ---------------------------------------------------------------------------

    def eval_sets(self) -> list[EvalSet]:
        return self.store.eval_sets()

    def eval_set(self, key: int | str) -> EvalSet:
        return self.store.eval_set(key)

    def choose_eval_set(self, name: str | None, command: str = "changeover") -> EvalSet:
        """The eval set named; or, named none, the only one. Several and none named is an
        `EvalSetChoice` (exit 2) that names them; none at all is a data error."""
        if name is not None:
            return self.store.eval_set(name)
        sets = self.store.eval_sets()
        if not sets:
            raise ChangeoverError(
                f"{self.path}: no eval sets yet (changeover import WORKSPACE FILE --spec SPEC)"
            )
        if len(sets) > 1:
            names = ", ".join(repr(s.name) for s in sets)
            raise EvalSetChoice(
                f"{command}: {self.path} holds several eval sets ({names}); choose one with "
                "--eval-set NAME"
            )
        return sets[0]

    def models(self, eval_set_id: int) -> list[str]:
        """Models of an eval set in import order."""
        return self.store.models(eval_set_id)

    def summary(self, es: EvalSet, with_results: bool = True) -> EvalSetSummary:
        """Size, labels, fits and (with `with_results`) the latest fit's results."""
        fits = self.store.fits(es.id)
        latest = fits[0] if fits else None
        results = self.results(es) if (with_results and latest is not None) else None
        return EvalSetSummary(
            es,
            self.store.stats(es.id),
            tuple(self.store.models(es.id)),
            len(fits),
            latest,
            results,
            self.store.eval_set_source(es.id),
        )

    def source(self, es: EvalSet) -> EvalSetSource | None:
        """Where the eval set's judged responses live when the workspace keeps only a sample."""
        return self.store.eval_set_source(es.id)

    # ---- responses and labels ------------------------------------------------------------------

    def response_view(self, response_id: int) -> ResponseView:
        return self.store.response_view(response_id)

    def add_rating(
        self, response_id: int, metric: str, rater: str, value: int, blind: bool = True
    ) -> Rating:
        """Store one label at once, in its own transaction."""
        return self.store.add_rating(response_id, metric, rater, value, blind=blind)

    def retract(self, rating_id: int, rater: str) -> Rating:
        return self.store.retract(rating_id, rater)

    def browse_page(
        self,
        eval_set_id: int,
        f: BrowseFilter = BrowseFilter(),
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[BrowseRow]:
        return self.store.browse_page(
            eval_set_id, f, after_id=after_id, before_id=before_id, limit=limit
        )

    def browse_count(self, eval_set_id: int, f: BrowseFilter = BrowseFilter()) -> int:
        return self.store.browse_count(eval_set_id, f)

    def response_total(self, eval_set_id: int) -> int:
        return self.store.response_total(eval_set_id)

    def size(self, es: EvalSet) -> tuple[int, int, int]:
        """(items, responses, labelled responses): the start screen's counts, without the
        judgment counts of `summary` (seconds on a million responses)."""
        store, sid = self.store, es.id
        return (store.item_count(sid), store.response_total(sid), store.labelled_total(sid))

    def queue(self, es: EvalSet, rater: str, seed: int = 0, overlap: float = 0.1) -> LabellingQueue:
        """The labelling queue: cells filled to a minimum, then (after a fit) the cells whose
        labels settle the most open decisions, with a share of blind second labels; on a
        sampled eval set it also says when a cell's sample runs out (`take_notices`)."""
        from changeover.core.labelling.active import make_scorer
        from changeover.core.labelling.session import session_queue
        from changeover.core.model.kept_fits import kept_fit

        fit, posteriors = kept_fit(self.store, es)
        scorer = None
        if fit is not None and posteriors:
            rule = DecisionRule.of_fit(fit.settings)
            scorer = make_scorer(posteriors, es, rule, cache=self._cells)
        where = str(self.path or "WORKSPACE")
        return session_queue(
            self.store, es, rater, seed=seed, overlap=overlap, scorer=scorer, workspace=where
        )

    def agreement(self, es: EvalSet) -> dict[str, RaterAgreement]:
        from changeover.core.judge.agreement import rater_agreement

        return rater_agreement(self.store, es)

    # ---- the statistics ------------------------------------------------------------------------

    def counts(self, es: EvalSet, exclude_raters: tuple[str, ...] = ()) -> dict[str, Counts]:
        from changeover.core.model.counts import counts_for

        return counts_for(self.store, es, exclude_raters)

    def latest_fit(self, es: EvalSet) -> FitRecord | None:
        fits = self.store.fits(es.id)
        return fits[0] if fits else None

    def decision_rule(
        self,
        es: EvalSet,
        fit_id: int | None = None,
        *,
        threshold: float | None = None,
        min_labels: int | None = None,
    ) -> DecisionRule:
        """The rule for the results of a fit (default: the latest): the threshold and minimum
        asked for, the fit's where none is (`DecisionRule.of_fit`)."""
        fit = self.store.fit(fit_id) if fit_id is not None else self.latest_fit(es)
        return DecisionRule.of_fit(fit.settings if fit else None, threshold, min_labels)

    def fit(
        self,
        es: EvalSet,
        settings: Settings | None = None,
        *,
        seed: int | None = None,
        exclude_raters: tuple[str, ...] = (),
        on_progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> FitRecord:
        """Fit the calibration model and keep the fit (see core/model/kept_fits.py for the seed rule:
        `seed` is used as given; without it a refit after a failed fit moves to the next seed).
        Raises `FitCancelled` when `cancel` is set, and stores nothing then."""
        unknown = sorted(set(exclude_raters) - set(self.store.raters(es.id)))
        if unknown:
            raters = ", ".join(self.store.raters(es.id)) or "none: nobody has labelled it yet"
            raise UsageError(
                f"changeover fit: --exclude-rater {', '.join(unknown)}: no such rater in eval set "
                f"{es.name!r} (its raters: {raters})"
            )
        settings = settings or Settings()
        if seed is not None:
            settings = Settings.from_dict({**settings.to_dict(), "seed": seed})
        from changeover.core.model.kept_fits import default_fitter, run_fit

        return run_fit(
            self.store,
            es,
            settings,
            self._fitter or default_fitter(),
            seed_given=seed is not None,
            exclude_raters=exclude_raters,
            on_progress=on_progress,
            cancel=cancel,
        )

    def prepare_models(
        self,
        es: EvalSet,
        settings: Settings | None = None,
        *,
        exclude_raters: tuple[str, ...] = (),
        cancel: threading.Event | None = None,
        on_progress: Progress | None = None,
        background: bool = False,
    ) -> ModelsReady:
        """Have the eval set's compiled models ready for a fit: loaded from the disk cache, or
        compiled (in child processes, kept for next time; `background`: at a lower priority).
        The app starts this when a workspace opens; `changeover fit` says how it went. Raises
        `FitCancelled` when cancelled. A canned fitter (tests) has nothing to prepare."""
        if self._fitter is not None:
            return ModelsReady()
        from changeover.core.model.fit import models_ready, prepare_models

        counts = self.counts(es, tuple(sorted(set(exclude_raters))))
        settings = settings or Settings()
        return models_ready(prepare_models(counts, settings, cancel, on_progress, background))

    def current_fit(self, es: EvalSet, settings: Settings | None = None) -> FitRecord | None:
        """The latest fit when fitting `settings` now (no rater left out) would only repeat it:
        the same counts, the same settings but the seed, and it passed its diagnostics (after
        a failed fit the seed rule moves on by itself). None when a fit would be new."""
        fit = self.latest_fit(es)
        want = (settings or Settings()).to_dict()
        if fit is None or fit.exclude_raters or not fit.diagnostics.ok:
            return None
        if {**fit.settings.to_dict(), "seed": 0} != {**want, "seed": 0}:
            return None
        from changeover.core.model.counts import data_hash

        return fit if data_hash(self.counts(es)) == fit.data_hash else None

    def results(
        self,
        es: EvalSet,
        *,
        fit_id: int | None = None,
        instant: bool = False,
        rule: DecisionRule | None = None,
        metric: str | None = None,
        require_fit: bool = False,
    ) -> Results:
        """The one results value (see the module docstring for which draws it shows).

        `rule` defaults to the fit's (`DecisionRule.of_fit`); `metric` keeps one metric;
        `require_fit` refuses the instant posterior (the command line's report and export)."""
        from changeover.core.model.counts import data_hash
        from changeover.core.model.kept_fits import kept_fit

        fit, posteriors = kept_fit(self.store, es, fit_id)
        if fit is None and require_fit:
            raise ChangeoverError(
                f"eval set {es.name!r} has no fit yet: run `changeover fit` first"
            )
        excluded = fit.exclude_raters if fit is not None else ()
        counts = self.counts(es, excluded)
        events = self.store.labels_since(es.id, "")  # agreement changes with every label
        rule = rule or DecisionRule.of_fit(fit.settings if fit is not None else None)
        key = (es.id, fit.id if fit else None, data_hash(counts), events, instant, rule, metric)
        with self._lock:
            hit = self._results.get(key)
        if hit is not None:
            return hit
        results = self._build(es, fit, posteriors, counts, instant, rule, metric)
        with self._lock:
            if len(self._results) > 32:
                self._results.clear()
            self._results[key] = results
        return results

    def _build(
        self,
        es: EvalSet,
        fit: FitRecord | None,
        posteriors: list,
        counts: dict[str, Counts],
        instant: bool,
        rule: DecisionRule,
        metric: str | None,
    ) -> Results:
        from changeover.core.model.kept_fits import current_draws
        from changeover.core.results import build_results

        if metric is not None and metric not in {m.name for m in es.metrics}:
            raise ChangeoverError(
                f"eval set {es.name!r} has no metric {metric!r} "
                f"(it has {', '.join(m.name for m in es.metrics)})"
            )
        drawn = current_draws(self.store, es, fit, posteriors, counts, instant, self._cells)
        posteriors = drawn.posteriors
        if metric is not None:
            posteriors = [p for p in posteriors if p.metric == metric]
            if not posteriors:
                raise ChangeoverError(f"fit #{fit.id if fit else '?'} has no metric {metric!r}")
        return build_results(
            es,
            posteriors,
            source=drawn.source,
            counts=counts,
            fit=fit,
            stale=drawn.stale,
            labels_since=drawn.labels_since,
            khat=drawn.khat,
            agreement=self.agreement(es),
            rule=rule,
            cache=self._cells,
        )

    # ---- files ---------------------------------------------------------------------------------

    def import_file(
        self,
        path: str | Path | Sequence[str | Path],
        spec: str | Path | EvalSet,
        fmt: str | None = None,
    ) -> ImportReport:
        """Import responses, judge verdicts and labels (all or nothing); an `ImportReport`.
        Inspect AI logs (fmt "inspect", or told by the files) import together, one per model."""
        from changeover.core.importing.inspect_logs import import_logs, is_inspect_log
        from changeover.core.importing.responses import import_file

        paths = [Path(path)] if isinstance(path, str | Path) else [Path(p) for p in path]
        if fmt == "inspect" or (fmt is None and all(map(is_inspect_log, paths))):
            return import_logs(self.store, paths, spec)
        if len(paths) != 1:
            raise UsageError(
                "changeover import: several files import together only as Inspect logs"
            )
        return import_file(self.store, paths[0], spec=spec, fmt=fmt)

    def import_dataset(
        self,
        location: str | Path | Sequence[str | Path],
        spec: str | Path,
        *,
        sample_per_cell: int,
        period: str | None = None,
        seed: int | None = None,
        stratify: str | None = None,
    ) -> LakeReport:
        """Counts and a stratified sample from a Parquet/CSV dataset (core/importing/lake.py)."""
        from changeover.core.importing.lake import import_dataset

        return import_dataset(
            self.store,
            location,
            spec,
            sample_per_cell=sample_per_cell,
            period=period,
            seed=seed,
            stratify=stratify,
        )

    def import_counts(
        self,
        counts: str | Path,
        spec: str | Path,
        *,
        sample: str | Path,
        period: str | None = None,
        fmt: str | None = None,
    ) -> LakeReport:
        """Counts made elsewhere and a sample file (core/importing/counts.py)."""
        from changeover.core.importing.counts import import_counts

        return import_counts(self.store, counts, spec, sample=sample, period=period, fmt=fmt)

    def import_labels(
        self, path: str | Path, es: EvalSet, fmt: str | None = None, open_labels: bool = False
    ) -> ImportReport:
        """Import human labels for responses of `es` (all or nothing); an `ImportReport`.
        `open_labels`: the file's labels were chosen by a person (rows with a `selection` of
        their own keep it), stored as open and left out of the fit."""
        from changeover.core.importing.responses import import_labels
        from changeover.core.types import OPEN, RANDOM

        selection = OPEN if open_labels else RANDOM
        return import_labels(self.store, path, eval_set=es.name, fmt=fmt, selection=selection)

    def export(
        self, es: EvalSet, what: str, fmt: str, output: str | os.PathLike | IO[str] | None
    ) -> int:
        """Write ratings, responses or results (see core/render/export.py); returns the rows written."""
        from changeover.core.render.export import export

        results = self.results(es, require_fit=True) if what == "results" else None
        return export(self.store, es, what, fmt, output, results=results)

    def export_draws(
        self, es: EvalSet, output: str | os.PathLike, fit_id: int | None = None
    ) -> DrawsWritten:
        """Write a kept fit's draws as an ArviZ DataTree in netCDF (core/render/export_draws.py)."""
        from changeover.core.render.export_draws import export_draws

        return export_draws(self.store, es, output, fit_id=fit_id)
