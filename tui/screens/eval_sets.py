"""Eval sets (the start screen): each set with its size, labelled share, last fit and verdicts."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from changeover.core.results import probability_text
from changeover.core.types import EvalSet
from changeover.core.workspace import EvalSetSummary, Workspace
from changeover.tui.widgets.safe_text import clean, one_line

COLUMNS = ("Eval set", "Items", "Models", "Responses", "Labelled", "Last fit", "Verdicts")


def verdict_summary(summary: EvalSetSummary) -> str:
    """Each candidate's verdict and P(all hold) from the latest fit's results."""
    results = summary.results
    if summary.latest_fit is None or results is None:
        return "no fit yet"
    parts = [
        f"{c.candidate}: {c.verdict} (P={probability_text(c.joint_probability, results.threshold)})"
        for c in results.candidates
    ]
    text = "; ".join(parts) or "no verdicts"
    if results.failed:
        text += " · diagnostics failed"
    if results.stale:
        text += " · stale"
    return text


class EvalSetsScreen(Screen):
    """The eval sets of the workspace; pick one to browse, rate, or see results."""

    BINDINGS = [
        Binding("enter", "open('browse')", "Browse"),
        Binding("r", "open('rate')", "Rate"),
        Binding("v", "open('results')", "Results"),
        Binding("c", "open('calibration')", "Calibration"),
    ]

    @dataclass
    class Chosen(Message):
        """The user picked an eval set and where to go with it."""

        eval_set: EvalSet
        where: str  # "browse" | "rate" | "results" | "calibration"

    def __init__(self, workspace: Workspace, workspace_name: str = ""):
        super().__init__()
        self.workspace = workspace
        self.workspace_name = workspace_name
        self.sets: list[EvalSet] = []
        self.counting = True  # counts still on their way (not `loading`: that would cover the
        # screen with a loading indicator that Textual keeps until the next key press)

    def compose(self) -> ComposeResult:
        yield Static(id="sets-title")
        yield DataTable(id="sets-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="sets-hint")
        yield Footer()

    def on_mount(self) -> None:
        title = Text("changeover", style="bold")
        if self.workspace_name:
            title.append(f" · {clean(self.workspace_name, False)}")
        self.query_one("#sets-title", Static).update(title)
        table = self.query_one(DataTable)
        self.reload()
        table.focus()

    def reload(self) -> None:
        """Names at once; the counts (a full scan on big sets) arrive from a worker."""
        self.sets = self.workspace.eval_sets()
        self.counting = True
        self.cells: dict[int, tuple[str, ...]] = {}
        self._show_rows()
        hint = (
            "No eval sets yet: changeover import WORKSPACE FILE --spec SPEC"
            if not self.sets
            else "enter browse · r rate · v results · c calibration · ctrl+p commands · ? keys"
        )
        self.query_one("#sets-hint", Static).update(Text(hint, style="dim"))
        self.call_after_refresh(self.load_counts)  # first paint first, then the full scans

    def _show_rows(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)  # the columns widen to what the counts bring
        table.add_columns(*COLUMNS)
        for es in self.sets:
            cells = self.cells.get(es.id, ("…",) * (len(COLUMNS) - 1))
            table.add_row(one_line(es.name, 30), *(one_line(c, 60) for c in cells), key=str(es.id))
        if self.sets:
            table.move_cursor(row=min(cursor or 0, len(self.sets) - 1))

    @work(thread=True, exclusive=True, group="counts")
    def load_counts(self) -> None:
        # The counts scan every row: on their own connection, not the app's.
        with self.workspace.reading() as reader:
            for es in list(self.sets):
                self._count(reader, es)
        self.app.call_from_thread(setattr, self, "counting", False)

    def _count(self, reader: Workspace, es: EvalSet) -> None:
        summary = reader.summary(es)
        s, fit = summary.stats, summary.latest_fit
        responses, labelled = s.responses, s.labelled_responses
        share = f"{labelled:,} ({labelled / responses:.1%})" if responses else "0"
        cells = (
            f"{s.items:,}",
            str(len(summary.models)),
            f"{responses:,}",
            share,
            f"#{fit.id} {fit.created_at[:16].replace('T', ' ')}" if fit else "none",
            verdict_summary(summary),
        )
        self.app.call_from_thread(self._fill_row, es.id, cells)

    def _fill_row(self, set_id: int, cells: tuple[str, ...]) -> None:
        self.cells[set_id] = cells
        self._show_rows()

    def selected(self) -> EvalSet | None:
        table = self.query_one(DataTable)
        if not self.sets or table.cursor_row is None:
            return None
        return self.sets[min(table.cursor_row, len(self.sets) - 1)]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open("browse")

    def action_open(self, where: str) -> None:
        es = self.selected()
        if es is None:
            self.notify("No eval set here yet.", severity="warning")
            return
        self.post_message(self.Chosen(es, where))
