"""`changeover fit` and `changeover report`: thin layers over the workspace.

Exit status: 0 done; 1 a data error (no such workspace, eval set, metric or fit; no fit yet);
2 a usage error (several eval sets and no --eval-set); 3 `fit` kept a fit that failed its
diagnostics, or `report --strict` reports a fit that failed them or is stale; 130 a fit
cancelled with Ctrl-C (nothing is stored then).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from dataclasses import replace

from changeover.core.results import FlagKind, Results, failure_kind, probability_text, refit_hint
from changeover.core.settings import Settings
from changeover.core.text import inert
from changeover.core.types import EvalSet, FitRecord, ModelsReady
from changeover.core.workspace import Workspace

# The fitter fits use (None: the calibration model). Tests swap in a canned one.
FITTER = None

FAILED = 3


def _plain(text: object) -> str:
    return inert(text, ascii=True)


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.quick() if getattr(args, "quick", False) else Settings()
    if getattr(args, "target_accept", None) is not None:
        settings = replace(settings, target_accept=args.target_accept)
    return settings


def cmd_fit(args: argparse.Namespace) -> int:
    with Workspace.open(args.workspace, fitter=FITTER) as ws:
        es = ws.choose_eval_set(args.eval_set, "changeover fit")
        done = _fit(ws, es, args)
        if done is None:
            print("changeover fit: cancelled; nothing was stored", file=sys.stderr)
            return 130
        fit, ready = done
        print(fit_summary_text(fit, ws.results(es, fit_id=fit.id), es, args.workspace, ready))
    return 0 if fit.diagnostics.ok else FAILED


def _fit(
    ws: Workspace, es: EvalSet, args: argparse.Namespace
) -> tuple[FitRecord, ModelsReady] | None:
    """Ready the compiled models, then fit, in a worker thread with a progress bar on stderr;
    None when Ctrl-C cancelled it."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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
                task,
                completed=min(max(fraction, 0.0), 1.0),
                what=_plain(f"{es.name}: {message}"),
            )

        def work() -> None:
            excluded = tuple(getattr(args, "exclude_rater", None) or ())
            try:
                outcome["ready"] = ws.prepare_models(
                    es,
                    _settings(args),
                    exclude_raters=excluded,
                    cancel=cancel,
                    on_progress=on_progress,
                )
                outcome["fit"] = ws.fit(
                    es,
                    _settings(args),
                    seed=getattr(args, "seed", None),
                    exclude_raters=excluded,
                    on_progress=on_progress,
                    cancel=cancel,
                )
            except BaseException as exc:  # handed to the main thread
                outcome["error"] = exc
            finally:
                finished.set()

        # Ctrl-C lands in this (the main) thread, wherever it is, and the worker stops cleanly.
        # The wait is on an event, not on Thread.join: a join interrupted by Ctrl-C marks a
        # running thread as stopped (CPython's fix for bpo-45274 releases the lock the thread
        # still holds), so the second join returned at once, the process exited with nutpie
        # still sampling, and every Ctrl-C during sampling ended in a segfault.
        finished = threading.Event()
        worker = threading.Thread(target=work, name="changeover-fit", daemon=True)
        try:
            worker.start()
            while not finished.wait(0.1):
                pass
        except KeyboardInterrupt:
            cancel.set()
            progress.update(task, what="cancelling...")
            if worker.ident is not None:
                finished.wait()
    if cancel.is_set() and "fit" not in outcome:
        outcome.clear()  # the cancelled fit's frames and nutpie's sampler go now, not at exit
        return None
    if "error" in outcome:
        raise outcome["error"]
    return outcome["fit"], outcome["ready"]


def fit_summary_text(
    fit: FitRecord, results: Results, es: EvalSet, workspace: str, ready: ModelsReady | None = None
) -> str:
    """What `changeover fit` prints: the fit, how its compiled model came, its diagnostics and
    each candidate's verdict."""
    st, d = fit.settings, fit.diagnostics
    took = f" in {fit.seconds:.1f} s" if fit.seconds is not None else ""
    lines = [
        f"fit #{fit.id} of {es.name}{took} ({st.chains} chains x {st.draws} draws, seed "
        f"{st.seed}, sampler {d.sampler or '?'})"
    ]
    if ready is not None and ready.text():
        lines.append(f"  {ready.text()}")
    if fit.exclude_raters:
        lines.append("  left out raters: " + ", ".join(fit.exclude_raters))
    status = "ok" if d.ok else "FAILED (do not trust the verdicts)"
    lines.append(f"diagnostics {status}: {d.numbers()}")
    lines += [f"  {r}" for r in d.failures()[:5]]
    if not d.ok:
        lines.append(f"  {refit_hint(d, st.is_quick)}")
    if results.candidates:
        width = max(len(c.candidate) for c in results.candidates)
        lines.append(f"verdicts against {es.incumbent} (threshold {results.threshold:g}):")
        for c in results.candidates:
            p = probability_text(c.joint_probability, results.threshold)
            lines.append(f"  {c.candidate.ljust(width)}  {c.verdict:<9}  P(all hold) = {p}")
    if st.is_quick and failure_kind(d, True) == "quick":
        lines.append("(a quick fit: a first look, not a verdict; fit without --quick to decide)")
    lines.append(f"details: changeover report {workspace} --eval-set {shlex.quote(es.name)}")
    return _plain("\n".join(lines))


def cmd_report(args: argparse.Namespace) -> int:
    from changeover.core.render.report import render

    with Workspace.open(args.workspace, read_only=True) as ws:
        es = ws.choose_eval_set(args.eval_set, "changeover report")
        fit_id = getattr(args, "fit", None)
        rule = ws.decision_rule(
            es,
            fit_id,
            threshold=getattr(args, "threshold", None),
            min_labels=getattr(args, "min_labels", None),
        )
        results = ws.results(
            es, fit_id=fit_id, rule=rule, metric=getattr(args, "metric", None), require_fit=True
        )
    assert results.fit is not None
    for flag in results.flags:
        if flag.kind in (FlagKind.STALE_FIT, FlagKind.DIAGNOSTICS):
            print(f"changeover report: warning: {_plain(flag.message)}", file=sys.stderr)
    out = render(results, args.format)
    if args.format == "csv" and sys.stdout.isatty():
        out = _plain(out)  # names are data: no terminal escapes reach a terminal
    sys.stdout.write(out)
    if getattr(args, "strict", False) and (results.failed or results.stale):
        why = "failed its diagnostics" if results.failed else "is stale"
        print(f"changeover report --strict: fit #{results.fit.id} {why}", file=sys.stderr)
        return FAILED
    return 0
