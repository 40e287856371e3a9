"""`changeover fit` and `changeover report`: thin layers over core.fitting and core.report.

Exit status: 0 done; 1 a data error (no such workspace, eval set, metric or fit; no fit yet);
2 a usage error (several eval sets and no --eval-set); 130 a fit cancelled with Ctrl-C
(nothing is stored then).
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import replace

from changeover.core.types import ChangeoverError

# The fitter run_fit uses (None: core.model.fit_counts). Tests swap in a canned one.
FITTER = None


class UsageError(Exception):
    """The command line is incomplete (exit 2)."""


def choose_eval_set(store, name: str | None, command: str):
    """The eval set named, or the only one; several and none named is a usage error."""
    if name is not None:
        return store.eval_set(name)
    sets = store.eval_sets()
    if not sets:
        raise ChangeoverError(
            f"{store.path}: no eval sets yet (changeover import WORKSPACE FILE --spec SPEC)"
        )
    if len(sets) > 1:
        names = ", ".join(repr(s.name) for s in sets)
        raise UsageError(
            f"changeover {command}: {store.path} holds several eval sets ({names}); "
            "choose one with --eval-set NAME"
        )
    return sets[0]


def _plain(text: object) -> str:
    from changeover.core.report_text import plain_text as plain

    return plain(text)


def cmd_fit(args: argparse.Namespace) -> int:
    from changeover.core.store import Store

    with Store.open(args.workspace) as store:
        try:
            es = choose_eval_set(store, args.eval_set, "fit")
        except UsageError as exc:
            print(exc, file=sys.stderr)
            return 2
        return _fit(store, es, args)


def _settings(args):
    from changeover.core.model import Settings

    settings = Settings.quick() if getattr(args, "quick", False) else Settings()
    if getattr(args, "seed", None) is not None:
        settings = replace(settings, seed=args.seed)
    if getattr(args, "target_accept", None) is not None:
        settings = replace(settings, target_accept=args.target_accept)
    return settings


def _fit(store, es, args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from changeover.core.fitting import run_fit

    settings = _settings(args)
    cancel = threading.Event()
    outcome: dict = {}
    console = Console(stderr=True, highlight=False)
    with Progress(
        TextColumn("fitting {task.fields[what]}", markup=False),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("fit", total=1.0, what=_plain(es.name))

        def on_progress(fraction: float, message: str) -> None:
            progress.update(
                task, completed=min(max(fraction, 0.0), 1.0), what=_plain(f"{es.name}: {message}")
            )

        def work() -> None:
            try:
                outcome["fit"] = run_fit(
                    store,
                    es,
                    settings,
                    on_progress,
                    cancel,
                    getattr(args, "exclude_rater", None) or (),
                    fitter=FITTER,
                    vary_seed=getattr(args, "seed", None) is None,
                )
            except BaseException as exc:  # handed to the main thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="changeover-fit", daemon=True)
        try:  # Ctrl-C lands in this (the main) thread, wherever it is: the worker stops cleanly
            worker.start()
            while worker.is_alive():
                worker.join(0.1)
        except KeyboardInterrupt:
            cancel.set()
            progress.update(task, what="cancelling...")
            if worker.ident is not None:
                worker.join()
    if cancel.is_set() and "fit" not in outcome:
        print("changeover fit: cancelled; nothing was stored", file=sys.stderr)
        return 130
    if "error" in outcome:
        raise outcome["error"]
    print(fit_summary_text(outcome["fit"], es, args.workspace))
    return 0


def fit_summary_text(fit, es, workspace: str = "WORKSPACE") -> str:
    """Headline verdicts and diagnostics of a kept fit, as plain text."""
    from changeover.core.report import refit_hint

    s, d = fit.summary or {}, fit.diagnostics or {}
    secs = s.get("seconds")
    took = f" in {secs:.1f} s" if isinstance(secs, (int, float)) else ""
    st = fit.settings
    lines = [
        f"fit #{fit.id} of {es.name}{took} ({st.get('chains')} chains x {st.get('draws')} "
        f"draws, seed {st.get('seed')}, sampler {d.get('sampler', '?')})"
    ]
    if st.get("exclude_raters"):
        lines.append("  left out raters: " + ", ".join(st["exclude_raters"]))
    status = "ok" if d.get("ok") else "FAILED (do not trust the verdicts)"
    lines.append(
        f"diagnostics {status}: max R-hat {_n(d.get('max_rhat'))}, min ESS bulk "
        f"{_n(d.get('min_ess_bulk'), 0)}, tail {_n(d.get('min_ess_tail'), 0)}, "
        f"{d.get('divergences', '?')} divergences"
    )
    lines += [f"  {r}" for r in d.get("reasons", [])[:5]]
    if d.get("ok") is False:
        lines.append(f"  {refit_hint(d, st.get('draws'))}")
    verdicts = s.get("verdicts", {})
    if verdicts:
        width = max(len(c) for c in verdicts)
        lines.append(f"verdicts against {es.incumbent} (threshold {s.get('threshold')}):")
        for cand, v in verdicts.items():
            lines.append(
                f"  {cand.ljust(width)}  {v['verdict']:<9}  P(all hold) = "
                f"{v['joint_probability']:.2f}"
            )
    if st.get("draws", 1000) < 1000:
        lines.append("(a quick fit: a first look, not a verdict; fit without --quick to decide)")
    lines.append(f"details: changeover report {workspace} --eval-set {_quote(es.name)}")
    return _plain("\n".join(lines))


def _quote(name: str) -> str:
    import shlex

    return shlex.quote(name)


def _n(x, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) else "?"


def cmd_report(args: argparse.Namespace) -> int:
    from changeover.core.fitting import counts_of_fit, latest_posteriors
    from changeover.core.report import build_report, render
    from changeover.core.store import Store

    with Store.open(args.workspace, read_only=True) as store:
        try:
            es = choose_eval_set(store, args.eval_set, "report")
        except UsageError as exc:
            print(exc, file=sys.stderr)
            return 2
        fit, posteriors = latest_posteriors(store, es, getattr(args, "fit", None))
        if fit is None:
            raise ChangeoverError(
                f"eval set {es.name!r} has no fit yet: run "
                f"`changeover fit {args.workspace} --eval-set {es.name}` first"
            )
        metric = getattr(args, "metric", None)
        if metric is not None:
            known = [p.metric for p in posteriors]
            if metric not in known:
                raise ChangeoverError(
                    f"fit #{fit.id} has no metric {metric!r} (it has {', '.join(known)})"
                )
            posteriors = [p for p in posteriors if p.metric == metric]
        counts = counts_of_fit(store, es, fit)
        from changeover.core.counts import data_hash

        stale = data_hash(counts) != fit.data_hash
        if stale:
            print(
                f"changeover report: warning: fit #{fit.id} is stale (labels changed since it "
                "ran); run `changeover fit` for current results",
                file=sys.stderr,
            )
        if metric is not None:
            counts = {k: v for k, v in counts.items() if k == metric}
        min_labels = getattr(args, "min_labels", None)
        if min_labels is None:
            min_labels = int(fit.settings.get("min_labels", 30))
        report = build_report(
            es,
            posteriors,
            fit=fit,
            counts=counts,
            min_labels=min_labels,
            threshold=getattr(args, "threshold", 0.95),
            stale=stale,
        )
    out = render(report, args.format)
    if args.format == "csv" and sys.stdout.isatty():
        out = _plain(out)  # names are data: no terminal escapes reach a terminal
    sys.stdout.write(out)
    return 0
