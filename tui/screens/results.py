"""Results: per metric, regions (and the traffic-weighted overall) x models side by side.

Every number comes from the workspace's one results value (core/results.py): the latest fit,
updated by the labels given since, or the instant posterior while there is no fit. This screen
only lays it out. `f` runs the full fit in a thread worker with a progress bar; escape cancels
it.
"""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, ProgressBar, Static, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from changeover.core.results import Results
from changeover.core.settings import Settings
from changeover.core.types import EvalSet, FitCancelled, FitRecord, Verdict
from changeover.core.workspace import DecisionRule, Workspace
from changeover.tui.screens.help import HelpScreen
from changeover.tui.screens.results_layout import (
    Layout,
    choose_layout,
    legend,
    metric_rows,
    overall_rows,
)
from changeover.tui.screens.results_status import StatusLine
from changeover.tui.screens.results_tables import (
    candidate_lines,
    cell_details,
    details_text,
    fill_all,
    fill_metric,
    kept_cursor,
    wrapped_lines,
)
from changeover.tui.screens.results_view import RESULTS_BINDINGS, ResultsView
from changeover.tui.widgets.intervals import prefers_ascii, verdict_label
from changeover.tui.widgets.safe_text import one_line

PROGRESS_INTERVAL = 0.1  # seconds between progress messages from the worker
TABLE_OVERHEAD = 8  # title, status, tab bar (2), legend, footer, progress, a spare line


class ResultsScreen(ResultsView):
    """Posterior means, intervals, deltas and verdicts; the fit runs from here."""

    BINDINGS = [
        Binding("f", "fit", "Fit model"),
        Binding("escape", "cancel_or_back", "Cancel fit / back"),
        Binding("q", "back", "Back"),
        Binding("i", "toggle_source", "Instant/full"),
        Binding("c", "calibration", "Calibration"),
        Binding("d", "details", "Details"),
        *RESULTS_BINDINGS,
    ]

    class FitProgressed(Message):
        def __init__(self, fraction: float, message: str) -> None:
            super().__init__()
            self.fraction = fraction
            self.message = message

    class FitFinished(Message):
        def __init__(self, fit: FitRecord | None) -> None:
            super().__init__()
            self.fit = fit

    class FitCurrent(Message):
        """The latest fit has these labels and settings: fitting again would repeat it."""

        def __init__(self, fit: FitRecord) -> None:
            super().__init__()
            self.fit = fit

    class FitStopped(Message):
        """The fit was cancelled; nothing was saved."""

    class FitFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    # Layout only (no colours): the table takes the room the candidate lines leave; they may
    # grow past 6 lines where the table needs less (redraw).
    DEFAULT_CSS = """
    ResultsScreen { layout: vertical; }
    ResultsScreen #results-title { height: auto; max-height: 2; }
    ResultsScreen #results-progress { height: 1; }
    ResultsScreen #results-progress-bar { width: auto; margin-right: 1; }
    ResultsScreen #results-progress-bar Bar { width: 16; }
    ResultsScreen #results-progress-message { text-wrap: nowrap; text-overflow: ellipsis; }
    ResultsScreen #results-tabs { height: 1fr; }
    ResultsScreen #results-tabs ContentSwitcher { height: 1fr; }
    ResultsScreen #results-tabs TabPane { height: 1fr; padding: 0; }
    ResultsScreen #results-tabs DataTable { height: 1fr; }
    ResultsScreen #results-legend { height: 1; }
    ResultsScreen #results-candidates-box { height: auto; max-height: 6; }
    """

    fitting: reactive[bool] = reactive(False)
    instant: reactive[bool] = reactive(False)  # show the instant posterior although a fit exists
    # The app's background warm-up of the compiled models ("" when it is not running).
    preparing: reactive[str] = reactive("", init=False)

    def __init__(
        self,
        workspace: Workspace,
        eval_set: EvalSet,
        *,
        settings: Settings | None = None,
        rule: DecisionRule | None = None,
        ascii: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(workspace, eval_set, name=name, id=id)
        self.settings = settings  # how to fit; None: the defaults
        self.rule = rule  # what the verdicts are decided by; None: the fit's own
        self.ascii = prefers_ascii() if ascii is None else ascii
        self.status = ""
        self._cancel: threading.Event | None = None
        self._worker: Worker | None = None
        self.progress_message = ""
        self.layouts: dict[str, Layout] = {}  # per tab pane id
        self.refit_seed: int | None = None  # f was told the fit is current: f again uses this
        self._drawn_at = Size(0, 0)  # the screen's size at the last redraw

    # ---- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        title = Text("Results · ", style="bold")
        title.append_text(one_line(self.eval_set.name, 60))
        yield Static(title, id="results-title")
        yield StatusLine(id="results-status")
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
        yield Static("", id="results-legend")
        yield VerticalScroll(Static("", id="results-candidates"), id="results-candidates-box")
        yield Footer()

    def on_mount(self) -> None:
        # ← → scroll the table sideways: the metric tabs change with ] and [ only.
        self.query_one(Tabs).can_focus = False
        self.query_one("#results-progress").display = False
        if self.preparing:  # the app's warm-up was under way when this screen was made
            self.set_activity("prepare", self.preparing)
        self.reload()
        self.query_one(
            "#results-table-0" if self.eval_set.metrics else "#results-table-all", DataTable
        ).focus()

    def on_screen_resume(self) -> None:
        if not self.fitting:
            super().on_screen_resume()

    def results_options(self) -> dict:
        return {"instant": self.instant, "rule": self.rule}

    @property
    def threshold(self) -> float:
        """The threshold the probabilities on screen are shown beside."""
        return self.data.threshold if self.data is not None else DecisionRule.threshold

    def show(self, data: Results | None, error: str) -> None:
        self.data = data
        self.refit_seed = None  # the labels may have changed: ask again
        if error:
            self.status = error
        self.redraw()
        # Textual measures the active tab for its underline once, after a refresh, and about
        # one time in two before the tab has a width: the underline then stays empty. Place it
        # again once the loaded tables are laid out.
        tabs = self.query_one(Tabs)
        tabs.call_after_refresh(tabs._highlight_active, False)

    def redraw(self) -> None:
        self._draw_status()
        data = self.data
        self.layouts = self._layouts(data)
        self._drawn_at = self.size
        for k, metric in enumerate(self.eval_set.metrics):
            table = self.query_one(f"#results-table-{k}", DataTable)
            view = data.table(metric.name) if data else None
            layout = self.layouts.get(f"results-metric-{k}")
            with kept_cursor(table):
                fill_metric(table, view, data, self.threshold, self.ascii, layout)
            table.fixed_columns = 2 if view is not None else 1  # names and the incumbent stay
        table = self.query_one("#results-table-all", DataTable)
        with kept_cursor(table):
            fill_all(
                table, data, self.threshold, self.ascii, self.layouts.get("results-metric-all")
            )
        table.fixed_columns = 2 if data is not None else 1
        self._draw_legend()
        # The candidate lines take the room the tallest table does not need (every candidate
        # of a 12-model, one-region eval set at 80x24), at least a line each up to 6; one line
        # per candidate below 120 columns, cut short of the box's scrollbar when they overflow.
        tallest = max((x.height for x in self.layouts.values()), default=0)
        least = min(len(data.candidates), 6) if data is not None else 6
        room = max(least, self.size.height - TABLE_OVERHEAD - tallest)
        self.query_one("#results-candidates-box").styles.max_height = room
        scrollbar = 2 if data is not None and len(data.candidates) > room else 0
        width = self.size.width - 1 - scrollbar
        text = candidate_lines(data, self.threshold, self.ascii)
        if self.size.width < 120 or self.compact or wrapped_lines(text, width) > room:
            text = candidate_lines(data, self.threshold, self.ascii, width)  # one line each
        self.query_one("#results-candidates", Static).update(text)

    def _layouts(self, data: Results | None) -> dict[str, Layout]:
        """Per tab, the richest cells whose columns fit the width and, with bars, whose rows
        fit the height the candidate lines leave (see results_layout.py)."""
        if data is None:
            return {}
        room = self.size.height - TABLE_OVERHEAD - min(len(data.candidates), 6)
        width = self.size.width

        def layout(rows, quantities) -> Layout:
            return choose_layout(
                rows, data.models, width, room, self.threshold, self.ascii, quantities
            )

        out = {}
        for k, metric in enumerate(self.eval_set.metrics):
            view = data.table(metric.name)
            if view is not None:
                rows = metric_rows(view, data.models)
                out[f"results-metric-{k}"] = layout(rows, [view.quantity_label])
        quantities = [view.quantity_label for view in data.metrics]
        out["results-metric-all"] = layout(overall_rows(data), quantities)
        return out

    @property
    def compact(self) -> bool:
        """The first tab shows one line per region (its full cells do not fit)."""
        first = self.layouts.get("results-metric-0")
        return first is not None and first.compact

    def _draw_legend(self) -> None:
        active = self.query_one(TabbedContent).active
        layout = self.layouts.get(active)
        text = legend(layout.kind, self.ascii) if layout else ""  # nothing yet: no legend
        self.query_one("#results-legend", Static).update(Text(text, style="dim"))

    @on(TabbedContent.TabActivated)
    def _on_tab(self, event: TabbedContent.TabActivated) -> None:
        self._draw_legend()  # each tab has its own layout

    def on_resize(self) -> None:
        if self.data is not None and self.size != self._drawn_at:
            self.redraw()

    def _draw_status(self) -> None:
        self.query_one(StatusLine).show(self.data, self.status)

    def set_activity(self, key: str, text: str | None) -> None:
        """Show on the status line that something is under way (`text`), or no longer (None):
        reading the results, preparing the model..."""
        self.query_one(StatusLine).working(key, text)

    def watch_reading(self, reading: bool) -> None:
        if not self.query(StatusLine):  # not composed yet
            return
        if not reading:
            self.set_activity("load", None)
        elif self.data is None:  # the first read: the screen is empty until it is in
            self.set_activity("load", "loading the results...")
        else:  # a reread (after a label, a fit): say so only if it takes a while
            self.set_timer(0.5, self._still_reading)

    def _still_reading(self) -> None:
        if self.reading:
            self.set_activity("load", "reloading the results...")

    def watch_preparing(self, text: str) -> None:
        if self.query(StatusLine):  # composed: else on_mount shows it
            self.set_activity("prepare", text or None)

    # ---- the fit ---------------------------------------------------------------------------

    def action_fit(self) -> None:
        if self.fitting:
            return
        if self.workspace.read_only:
            self.notify("workspace is open read-only: cannot keep a fit", severity="warning")
            return
        self._cancel = threading.Event()
        self.fitting = True
        self.status = "fitting..."
        self._draw_status()
        cancel, seed, self.refit_seed = self._cancel, self.refit_seed, None
        self._worker = self.run_worker(
            lambda: self._fit_in_thread(cancel, seed),
            name="fit",
            group="fit",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )

    def _fit_in_thread(self, cancel: threading.Event, seed: int | None) -> None:
        """Fit with `seed` (None: the settings' seed rule); without one, only when the latest
        fit would not simply be repeated (FitCurrent says so instead)."""
        last = [0.0]

        def on_progress(fraction: float, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL or fraction >= 1.0:
                last[0] = now
                self.post_message(self.FitProgressed(float(fraction), str(message)))

        try:
            current = (
                None
                if seed is not None
                else self.workspace.current_fit(self.eval_set, self.settings)
            )
            if current is not None:
                self.post_message(self.FitCurrent(current))
                return
            fit = self.workspace.fit(
                self.eval_set, self.settings, seed=seed, on_progress=on_progress, cancel=cancel
            )
        except FitCancelled:
            self.post_message(self.FitStopped())
            return
        except Exception as exc:
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
        self.progress_message = event.message
        self.query_one("#results-progress-message", Static).update(Text(event.message))

    @on(FitFinished)
    def _on_finished(self, event: FitFinished) -> None:
        self.fitting = False
        fit_id = getattr(event.fit, "id", None)
        self.status = f"fit #{fit_id} finished" if fit_id is not None else "fit finished"
        self.instant = False
        self.reload()

    @on(FitCurrent)
    def _on_current(self, event: FitCurrent) -> None:
        self.fitting = False
        self.refit_seed = event.fit.settings.seed + 1
        self.status = (
            f"fit #{event.fit.id} is current (no labels since): f again refits with seed "
            f"{self.refit_seed}"
        )
        self._draw_status()

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
            if "compil" in self.progress_message:
                self.status += (
                    " (the model is compiling, which cannot be interrupted: the fit stops as "
                    "soon as it is done, up to half a minute the first time)"
                )
            self._draw_status()
            return
        self.action_back()

    def action_back(self) -> None:
        if self.fitting:
            self.notify("a fit is running: escape cancels it first", severity="warning")
            return
        super().action_back()

    def action_toggle_source(self) -> None:
        """Between the fit (updated by the labels since) and the instant posterior."""
        if self.data is not None and self.data.fit is None:
            self.status = "no full fit yet: press f"
            self._draw_status()
            return
        self.instant = not self.instant
        self.status = ""
        self.reload()

    def action_reload(self) -> None:
        self.status = ""
        super().action_reload()

    def action_details(self) -> None:
        """Each candidate's full reason and every labels-needed forecast."""
        if self.data is not None:
            text = details_text(self.data, self.threshold, self.ascii)
            self.app.push_screen(HelpScreen("Details: the candidates", [], text))

    @on(DataTable.CellSelected)
    def _on_cell_selected(self, event: DataTable.CellSelected) -> None:
        """enter on a cell: that cell in full (its interval, P(holds), the verdict's reason)."""
        region, model = str(event.cell_key.row_key.value), str(event.cell_key.column_key.value)
        table = event.data_table.id or ""  # the table the key went to, whatever tab is showing
        if self.data is None or model in ("__row__", "none") or region == "__axis__":
            return
        if table != "results-table-all":
            metric = self.eval_set.metrics[int(table.rsplit("-", 1)[1])].name
        else:  # "all metrics": rows are the metrics, each its overall row
            view = self.data.table(region)
            if view is None or not view.rows:
                return
            metric, region = view.name, view.rows[-1].region
        text = cell_details(self.data, metric, region, model, self.threshold)
        self.app.push_screen(HelpScreen("Details: one cell", [], text))

    def action_calibration(self) -> None:
        from changeover.tui.screens.calibration import CalibrationScreen

        self.app.push_screen(CalibrationScreen(self.workspace, self.eval_set))

    def verdict_plain(self, verdict: Verdict | None) -> str:
        return verdict_label(verdict, self.ascii)
