"""Eval sets (the start screen): each set with its size, labelled share, last fit and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from changeover.core.results import Results, probability_text
from changeover.core.summary import responses_text
from changeover.core.types import EvalSet, FitRecord, Verdict
from changeover.core.workspace import EvalSetSource, Workspace
from changeover.tui.routes import Route
from changeover.tui.widgets.intervals import verdict_label
from changeover.tui.widgets.paged_table import fill_table
from changeover.tui.widgets.safe_text import clean, one_line

# Every candidate's verdict does not fit a table cell at 80 columns: the table counts the
# verdicts, and the panel under it names every candidate of the highlighted set.
COLUMNS = ("Eval set", "Items", "Responses", "Labelled", "Fit", "Verdicts")


@dataclass(frozen=True)
class SetRow:
    """What the start screen shows of one eval set (the results once they are worked out)."""

    eval_set: EvalSet
    items: int
    responses: int
    labelled: int
    models: tuple[str, ...]
    latest_fit: FitRecord | None
    source: EvalSetSource | None = None  # a sample of a dataset: where the rest lives
    results: Results | None = None


def verdict_summary(row: SetRow) -> str:
    """The table's cell: how many candidates the latest fit found ready, not ready, undecided."""
    results = row.results
    if row.latest_fit is None:
        return "no fit yet"
    if results is None:
        return "…"  # on their way
    verdicts = [c.verdict for c in results.candidates]
    text = ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts)) or "no verdicts"
    if results.failed:
        text += " (diagnostics failed)"
    elif results.stale:
        text += " (stale)"
    return text


def verdict_panel(row: SetRow) -> Text:
    """Under the table, for the highlighted set: its models, incumbent and last fit, and one
    line per candidate with its verdict (glyph and word) and P(all hold)."""
    es, fit, results = row.eval_set, row.latest_fit, row.results
    out = Text()
    out.append(clean(es.name, False), style="bold")
    out.append(f" · {len(row.models)} models · incumbent {clean(es.incumbent, False)}")
    if fit is None:
        out.append(" · no fit yet: v opens the results, f there fits the model", style="dim")
        return out
    out.append(f" · last fit #{fit.id} {fit.created_at[:16].replace('T', ' ')}")
    if results is None:
        out.append("\n  verdicts on their way…", style="dim")
        return out
    if results.failed:
        out.append(" · diagnostics FAILED", style="bold reverse")
    elif results.stale:
        out.append(f" · stale: {results.labels_since:,} labels since", style="bold")
    width = max((len(clean(c.candidate, False)) for c in results.candidates), default=0)
    for c in results.candidates:
        out.append(f"\n  {clean(c.candidate, False):<{width}}  ")
        label = verdict_label(c.verdict)
        out.append(f"{label:<12}", style="bold" if c.verdict == Verdict.READY else "")
        p = probability_text(c.joint_probability, results.threshold)
        out.append(f"  P(all hold) {p}", style="dim")
    if not results.candidates:
        out.append("\n  no candidates", style="dim")
    return out


class EvalSetsScreen(Screen):
    """The eval sets of the workspace; pick one to browse, rate, or see results."""

    BINDINGS = [
        Binding("enter", f"open('{Route.BROWSE}')", "Browse"),
        Binding("r", f"open('{Route.RATE}')", "Rate"),
        Binding("v", f"open('{Route.RESULTS}')", "Results"),
        Binding("c", f"open('{Route.CALIBRATION}')", "Calibration"),
    ]

    @dataclass
    class Chosen(Message):
        """The user picked an eval set and where to go with it."""

        eval_set: EvalSet
        where: Route

    def __init__(self, workspace: Workspace, workspace_name: str = ""):
        super().__init__()
        self.workspace = workspace
        self.workspace_name = workspace_name
        self.sets: list[EvalSet] = []
        self.counting = True  # counts still on their way (not `loading`: that would cover the
        # screen with a loading indicator that Textual keeps until the next key press)
        self.cells: dict[int, tuple[str, ...]] = {}
        self.panels: dict[int, Text] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="sets-title")
        yield DataTable(id="sets-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="sets-verdicts")
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
        self.counting = True  # the rows keep their last counts until the new ones are in
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
        placeholder = ("…",) * (len(COLUMNS) - 1)
        rows: list[tuple[str, tuple[str | Text, ...]]] = [
            (str(es.id), (one_line(es.name, 30), *self.cells.get(es.id, placeholder)))
            for es in self.sets
        ]
        fill_table(table, COLUMNS, rows)  # the columns widen to what the counts bring
        if self.sets:
            table.move_cursor(row=min(cursor or 0, len(self.sets) - 1))
        self._show_panel()

    def _show_panel(self) -> None:
        es = self.selected()
        panel = self.panels.get(es.id) if es is not None else None
        if es is not None and panel is None:
            panel = Text(clean(es.name, False) + " · counting…", style="dim")
        self.query_one("#sets-verdicts", Static).update(panel or "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_panel()

    @work(thread=True, exclusive=True, group="counts")
    def load_counts(self) -> None:
        # The counts scan every row: on their own connection, not the app's. They show first;
        # the verdicts (the latest fit's results: seconds on a big set) follow.
        with self.workspace.reading() as reader:
            rows = []
            for es in list(self.sets):  # each set's counts as soon as they are read
                models = tuple(reader.models(es.id))
                row = SetRow(es, *reader.size(es), models, reader.latest_fit(es), reader.source(es))
                self._show_set(row)
                rows.append(row)
            for row in rows:
                if row.latest_fit is not None:
                    self._show_set(replace(row, results=reader.results(row.eval_set)))
        self.app.call_from_thread(setattr, self, "counting", False)

    def _show_set(self, row: SetRow) -> None:
        fit, responses, labelled = row.latest_fit, row.responses, row.labelled
        share = f"{labelled:,} ({labelled / responses:.1%})" if responses else "0"
        cells = (
            f"{row.items:,}",
            responses_text(responses, row.source),  # "6,000 of 20,000,000 · sampled · 2026-11"
            share,
            f"#{fit.id}" if fit else "none",
            verdict_summary(row),
        )
        self.app.call_from_thread(self._fill_row, row.eval_set.id, cells, verdict_panel(row))

    def _fill_row(self, set_id: int, cells: tuple[str, ...], panel: Text) -> None:
        self.cells[set_id] = cells
        self.panels[set_id] = panel
        self._show_rows()

    def selected(self) -> EvalSet | None:
        table = self.query_one(DataTable)
        if not self.sets or table.cursor_row is None:
            return None
        return self.sets[min(table.cursor_row, len(self.sets) - 1)]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open(Route.BROWSE)

    def action_open(self, where: str) -> None:
        """Open `where` (a Route's value: the bindings name it in their action strings)."""
        es = self.selected()
        if es is None:
            self.notify("No eval set here yet.", severity="warning")
            return
        self.post_message(self.Chosen(es, Route(where)))
