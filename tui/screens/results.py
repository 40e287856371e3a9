"""Results: per metric, regions (and the traffic-weighted overall) x models side by side.

Every number comes from core (core.report over the latest fit, or over the instant posterior
while the fit is stale); this screen only lays them out. `f` runs the full fit in a thread
worker with a progress bar; escape cancels it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, ProgressBar, Static, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from changeover.core.types import EvalSet, FitRecord
from changeover.tui.screens.results_data import MetricView, ResultsData, load_results
from changeover.tui.widgets.intervals import (
    Axis,
    axis_cell,
    model_cell,
    num,
    prefers_ascii,
    summary_cell,
    verdict_label,
    verdict_text,
)
from changeover.tui.widgets.safe_text import clean, one_line, safe_text

BAR_WIDTH = 23
COLUMN_WIDTH = BAR_WIDTH
ROW_WIDTH = 14  # the first (region / metric) column, fixed while scrolling sideways
PROGRESS_INTERVAL = 0.1  # seconds between progress messages from the worker
LEGEND = "cells: mean [90% interval] / bar (shared axis) / delta, P(ok), verdict"
INSTANT_NOTE = "instant posterior (unpooled, conjugate) - press f for the full model"

Fitter = Callable[..., FitRecord]


def default_fitter(store, eval_set: EvalSet, settings, on_progress=None, cancel=None) -> FitRecord:
    """The real fit (imports PyMC only now, in the worker thread)."""
    from changeover.core.fitting import run_fit

    return run_fit(
        store, eval_set, settings, on_progress=on_progress, cancel=cancel, vary_seed=True
    )  # `f` again after a failed fit of the same labels: a new seed


def default_settings():
    from changeover.core.model import Settings

    return Settings()


def table_axis(table: MetricView, width: int = BAR_WIDTH) -> Axis:
    """One axis for every interval in the table."""
    return Axis.spanning(((c.lo, c.hi) for c in table.cells.values()), width=width)


class ResultsScreen(Screen):
    """Posterior means, intervals, deltas and verdicts; the fit runs from here."""

    BINDINGS = [
        Binding("f", "fit", "Fit model"),
        Binding("escape", "cancel_or_back", "Cancel fit / back"),
        Binding("q", "back", "Back"),
        Binding("i", "toggle_source", "Instant/full"),
        Binding("c", "calibration", "Calibration"),
        Binding("r", "reload", "Reload"),
        Binding("right_square_bracket", "next_tab", "Next metric", key_display="]"),
        Binding("left_square_bracket", "previous_tab", "Prev metric", key_display="["),
    ]

    class Loaded(Message):
        """Results read in the loading thread (data None and an error when that failed)."""

        def __init__(self, seq: int, data: ResultsData | None, error: str) -> None:
            super().__init__()
            self.seq = seq
            self.data = data
            self.error = error

    class FitProgressed(Message):
        def __init__(self, fraction: float, message: str) -> None:
            super().__init__()
            self.fraction = fraction
            self.message = message

    class FitFinished(Message):
        def __init__(self, fit: FitRecord | None) -> None:
            super().__init__()
            self.fit = fit

    class FitStopped(Message):
        """The fit was cancelled; nothing was saved."""

    class FitFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    # Layout only (no colours): the table takes the room the candidate lines leave.
    DEFAULT_CSS = """
    ResultsScreen { layout: vertical; }
    ResultsScreen #results-title, ResultsScreen #results-status { height: auto; max-height: 2; }
    ResultsScreen #results-progress { height: 1; }
    ResultsScreen #results-progress-bar { width: auto; margin-right: 1; }
    ResultsScreen #results-tabs { height: 1fr; }
    ResultsScreen #results-tabs ContentSwitcher { height: 1fr; }
    ResultsScreen #results-tabs TabPane { height: 1fr; padding: 0; }
    ResultsScreen #results-tabs DataTable { height: 1fr; }
    ResultsScreen #results-legend { height: 1; }
    ResultsScreen #results-candidates-box { height: auto; max-height: 6; }
    """

    fitting: reactive[bool] = reactive(False)
    loading: reactive[bool] = reactive(False)
    source: reactive[str] = reactive("auto")  # "auto" | "instant" | "full"

    def __init__(
        self,
        store,
        eval_set: EvalSet,
        fitter: Fitter | None = None,
        *,
        settings=None,
        threshold: float = 0.95,
        min_labels: int = 30,
        ascii: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.store = store
        self.eval_set = eval_set
        self.fitter = fitter or default_fitter
        self.settings = settings  # core.model.Settings for the fit; None: its defaults
        self.threshold = threshold
        self.min_labels = min_labels
        self.ascii = prefers_ascii() if ascii is None else ascii
        self.data: ResultsData | None = None
        self.status = ""
        self._cancel: threading.Event | None = None
        self._worker: Worker | None = None
        self._compiling = False  # the fit's last progress message said it was compiling
        self._load_seq = 0
        self._after_load: Callable[[ResultsData | None], str] | None = None

    # ---- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        title = Text("Results · ", style="bold")
        title.append_text(one_line(self.eval_set.name, 60))
        yield Static(title, id="results-title")
        yield Static("", id="results-status")
        with Horizontal(id="results-progress"):
            yield ProgressBar(total=1.0, show_eta=False, id="results-progress-bar")
            yield Static("", id="results-progress-message")
        with TabbedContent(id="results-tabs"):
            for k, metric in enumerate(self.eval_set.metrics):
                with TabPane(Content(metric.name), id=f"results-metric-{k}"):
                    yield DataTable(
                        id=f"results-table-{k}",
                        fixed_columns=1,
                        cursor_type="cell",
                        show_row_labels=False,
                    )
            with TabPane(Content("all metrics"), id="results-metric-all"):
                yield DataTable(
                    id="results-table-all",
                    fixed_columns=1,
                    cursor_type="cell",
                    show_row_labels=False,
                )
        yield Static(Text(LEGEND, style="dim"), id="results-legend")
        yield VerticalScroll(Static("", id="results-candidates"), id="results-candidates-box")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#results-progress").display = False
        self.reload()
        self.query_one(
            "#results-table-0" if self.eval_set.metrics else "#results-table-all", DataTable
        ).focus()

    def on_screen_resume(self) -> None:
        if self.is_mounted and not self.fitting:
            self.reload()

    # ---- data ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the latest fit (or the instant posterior) through core in a thread, then redraw.

        The report takes a few hundred milliseconds on a real eval set: the screen stays live.
        """
        self._load_seq += 1
        seq, prefer = self._load_seq, self.source
        self.loading = True
        self.run_worker(
            lambda: self._load_in_thread(seq, prefer),
            name="load",
            group="load",
            thread=True,
            exit_on_error=False,
        )

    def _load_in_thread(self, seq: int, prefer: str) -> None:
        try:
            data = load_results(
                self.store,
                self.eval_set,
                prefer=prefer,
                threshold=self.threshold,
                min_labels=self.min_labels,
            )
        except Exception as exc:  # a broken fit must not take the screen down
            self.post_message(
                self.Loaded(seq, None, f"cannot show results: {type(exc).__name__}: {exc}")
            )
            return
        self.post_message(self.Loaded(seq, data, ""))

    @on(Loaded)
    def _on_loaded(self, event: Loaded) -> None:
        if event.seq != self._load_seq:
            return  # a newer reload is on its way
        self.loading = False
        self.data = event.data
        if event.error:
            self.status = event.error
        elif self._after_load:
            self.status, self._after_load = self._after_load(event.data), None
        self.redraw()
        # Textual measures the active tab for its underline once, after a refresh, and about
        # one time in two before the tab has a width: the underline then stays empty. Place it
        # again once the loaded tables are laid out.
        tabs = self.query_one(Tabs)
        tabs.call_after_refresh(tabs._highlight_active, False)

    def redraw(self) -> None:
        self._draw_status()
        data = self.data
        for k, metric in enumerate(self.eval_set.metrics):
            table = self.query_one(f"#results-table-{k}", DataTable)
            view = data.table(metric.name) if data else None
            self._fill_metric(table, view)
        self._fill_all(self.query_one("#results-table-all", DataTable))
        self._draw_candidates()

    def _draw_status(self) -> None:
        data = self.data
        text = Text()
        if data is None:
            text.append(
                self.status or ("loading..." if self.loading else "no results"), style="bold"
            )
        else:
            if data.source == "instant":
                text.append(INSTANT_NOTE, style="bold")
            elif data.fit is not None:
                text.append(f"full model, fit #{data.fit.id} of {data.fit.created_at[:19]}")
            if data.stale:
                text.append(" · ")
                text.append("fit is stale: labels changed since", style="bold reverse")
                if data.source == "full":
                    text.append(" (i: instant posterior)")
            if data.fit is not None and data.diagnostics_ok is False:
                text.append(" · ")
                text.append("fit diagnostics failed (see calibration)", style="bold reverse")
            if data.fit is None:
                text.append(" · no full fit yet")
            if self.status:
                text.append(" · " + self.status)
        self.query_one("#results-status", Static).update(text)

    def _fill_metric(self, table: DataTable, view: MetricView | None) -> None:
        table.fixed_rows = 0  # an empty table with a fixed row fails to render
        table.clear(columns=True)
        if view is None:
            table.add_column(Text("results"), key="none")
            table.add_row(Text("no results for this metric"))
            return
        axis = table_axis(view)
        table.add_column(
            Text("region"),
            key="__row__",
            width=min(ROW_WIDTH, max(len(view.quantity), *(len(r) for r in view.rows))),
        )
        for model in view.models:
            table.add_column(one_line(model, COLUMN_WIDTH), width=COLUMN_WIDTH, key=model)
        table.add_row(
            Text(view.quantity, style="dim"),
            *[axis_cell(axis, self.ascii) for _ in view.models],
            height=2,
            key="__axis__",
        )
        for row in view.rows:
            cells = [
                model_cell(
                    view.cells.get((row, m)), axis, m == view.incumbent, self.ascii, view.pass_label
                )
                for m in view.models
            ]
            table.add_row(safe_text(row), *cells, height=4 if view.pass_label else 3, key=row)
        table.fixed_rows = 1  # the axis stays in view while scrolling down

    def _fill_all(self, table: DataTable) -> None:
        table.clear(columns=True)
        data = self.data
        if data is None or not data.tables:
            table.add_column(Text("results"), key="none")
            table.add_row(Text("no results"))
            return
        models: list[str] = []
        for view in data.tables:
            models += [m for m in view.models if m not in models]
        table.add_column(
            Text("overall"),
            key="__row__",
            width=min(ROW_WIDTH, max(max(len(v.metric), len(v.quantity)) for v in data.tables)),
        )
        for model in models:
            table.add_column(one_line(model, COLUMN_WIDTH), width=COLUMN_WIDTH, key=model)
        for view in data.tables:
            overall = view.rows[-1]
            cells = [
                summary_cell(view.cells.get((overall, m)), m == view.incumbent, self.ascii)
                for m in models
            ]
            name = safe_text(view.metric)
            name.append("\n" + view.quantity, style="dim")
            table.add_row(name, *cells, height=2, key=view.metric)

    def _draw_candidates(self) -> None:
        text = Text()
        data = self.data
        if data is None:
            self.query_one("#results-candidates", Static).update(text)
            return
        for line in data.candidates:
            text.append_text(verdict_text(line.verdict, self.ascii))
            text.append(" ")
            text.append_text(one_line(line.candidate, 30))
            text.append(f"  P(all hold) {num(line.joint, '.2f')}")
            reason = line.reason  # without the joint probability, which is shown already
            if reason:  # reasons name regions and metrics from the user's files: data, not markup
                text.append(f" · {clean(reason, False)}", style="dim")
            if line.verdict == "undecided" and line.needed:
                text.append(
                    "\n    labels needed: " + "; ".join(clean(n, False) for n in line.needed)
                )
            text.append("\n")
        text.rstrip()
        self.query_one("#results-candidates", Static).update(text)

    # ---- the fit ---------------------------------------------------------------------------

    def action_fit(self) -> None:
        if self.fitting:
            return
        if getattr(self.store, "read_only", False):
            self.notify("workspace is open read-only: cannot keep a fit", severity="warning")
            return
        self._cancel = threading.Event()
        self.fitting = True
        self.status = "fitting..."
        self._draw_status()
        cancel = self._cancel
        self._worker = self.run_worker(
            lambda: self._fit_in_thread(cancel),
            name="fit",
            group="fit",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )

    def _fit_in_thread(self, cancel: threading.Event) -> None:
        last = [0.0]

        def on_progress(fraction: float, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL or fraction >= 1.0:
                last[0] = now
                self.post_message(self.FitProgressed(float(fraction), str(message)))

        try:
            settings = self.settings if self.settings is not None else default_settings()
            fit = self.fitter(
                self.store, self.eval_set, settings, on_progress=on_progress, cancel=cancel
            )
        except Exception as exc:
            if cancel.is_set() or type(exc).__name__.endswith("Cancelled"):
                self.post_message(self.FitStopped())
            else:
                self.post_message(self.FitFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.FitFinished(fit))

    def watch_fitting(self, fitting: bool) -> None:
        if self.is_mounted:
            self.query_one("#results-progress").display = fitting
            if fitting:
                self.query_one("#results-progress-bar", ProgressBar).update(progress=0.0)
                self.query_one("#results-progress-message", Static).update("starting the fit")

    @on(FitProgressed)
    def _on_progress(self, event: FitProgressed) -> None:
        if not self.fitting:
            return
        self.query_one("#results-progress-bar", ProgressBar).update(
            progress=min(max(event.fraction, 0.0), 1.0)
        )
        self.query_one("#results-progress-message", Static).update(Text(event.message))
        self._compiling = "compiling" in event.message

    @on(FitFinished)
    def _on_finished(self, event: FitFinished) -> None:
        self.fitting = False
        fit_id = getattr(event.fit, "id", None)
        self.status = f"fit #{fit_id} finished" if fit_id is not None else "fit finished"
        self.source = "auto"
        self.reload()

    @on(FitStopped)
    def _on_stopped(self, event: FitStopped) -> None:
        self.fitting = False
        self.status = "fit cancelled: nothing saved"
        self._draw_status()

    @on(FitFailed)
    def _on_failed(self, event: FitFailed) -> None:
        self.fitting = False
        self.status = "fit failed"
        self._draw_status()
        self.notify(Text(event.error).plain, title="fit failed", severity="error", markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # An error inside the fitter is reported by _fit_in_thread; this catches the rest.
        if event.worker is self._worker and event.state == WorkerState.ERROR and self.fitting:
            self.fitting = False
            self.status = f"fit failed: {event.worker.error}"
            self._draw_status()

    # ---- actions ---------------------------------------------------------------------------

    def action_cancel_or_back(self) -> None:
        if self.fitting and self._cancel is not None:
            self._cancel.set()
            if self._worker is not None:
                self._worker.cancel()
            self.status = "cancelling the fit..."
            if self._compiling:  # a compile cannot be interrupted: say why nothing happens yet
                self.status = "cancelling once the model has compiled (a compile cannot stop)..."
            self._draw_status()
            return
        self.action_back()

    def action_back(self) -> None:
        if self.fitting:
            self.notify("a fit is running: escape cancels it first", severity="warning")
            return
        back = getattr(
            self.app, "action_back", None
        )  # the router's back (it reloads what is under)
        if back is not None:
            back()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_toggle_source(self) -> None:
        current = self.data.source if self.data else "instant"
        self.source = "full" if current == "instant" else "instant"
        self.status = ""
        wanted = self.source
        self._after_load = lambda data: (
            "no full fit yet: press f" if data is not None and data.source != wanted else ""
        )
        self.reload()

    def action_reload(self) -> None:
        self.status = ""
        self.reload()

    def action_calibration(self) -> None:
        from changeover.tui.screens.calibration import CalibrationScreen

        self.app.push_screen(CalibrationScreen(self.store, self.eval_set))

    def _switch_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        ids = [pane.id for pane in self.query(TabPane)]
        if not ids:
            return
        k = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(k + step) % len(ids)]
        table = self.query_one(f"#{tabs.active} DataTable", DataTable)
        table.focus()

    def action_next_tab(self) -> None:
        self._switch_tab(1)

    def action_previous_tab(self) -> None:
        self._switch_tab(-1)

    def verdict_plain(self, verdict: str | None) -> str:
        return verdict_label(verdict, self.ascii)
