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

from changeover.core.types import EvalSet, FitRecord
from changeover.tui.widgets.safe_text import clean, one_line

# The verdicts do not fit a table cell at 80 columns: the table says how many candidates are
# in each state, and the panel under it names every candidate of the highlighted set.
COLUMNS = ("Eval set", "Items", "Responses", "Labelled", "Fit", "Verdicts")
GLYPHS = {"ready": "✔", "not ready": "✘", "undecided": "?"}


@dataclass(frozen=True)
class CandidateLine:
    """One candidate's headline verdict in a kept fit, with P(all hold) when the fit kept it."""

    model: str
    verdict: str
    p_all_hold: float | None = None


def fit_verdicts(fit: FitRecord | None) -> list[CandidateLine]:
    """The candidates' headline verdicts from a fit's summary, whatever shape it has."""
    s = (fit.summary if fit is not None else None) or {}
    verdicts = s.get("verdicts") or s.get("candidates") or s.get("overall")
    if isinstance(verdicts, dict):
        verdicts = [
            {"model": name, **v} if isinstance(v, dict) else {"model": name, "verdict": v}
            for name, v in verdicts.items()
        ]
    out = []
    for v in verdicts if isinstance(verdicts, list) else []:
        if not isinstance(v, dict):
            continue
        p = v.get("joint_probability")
        out.append(
            CandidateLine(
                str(v.get("model", v.get("name", "?"))),
                str(v.get("verdict", "?")),
                float(p) if isinstance(p, (int, float)) else None,
            )
        )
    return out


def verdict_summary(fit: FitRecord | None) -> str:
    """The table's cell: how many candidates are ready, not ready and undecided."""
    if fit is None:
        return "no fit yet"
    lines = fit_verdicts(fit)
    if not lines:
        return "no verdicts"
    counts = {
        v: sum(c.verdict == v for c in lines) for v in dict.fromkeys(c.verdict for c in lines)
    }
    text = ", ".join(f"{n} {v}" for v, n in counts.items())
    return text + (" (diagnostics failed)" if fit.summary.get("ok") is False else "")


def verdict_panel(es: EvalSet, fit: FitRecord | None, models: int | None) -> Text:
    """Under the table, for the highlighted set: the incumbent, the last fit and one line per
    candidate with its verdict (glyph and word) and P(all hold)."""
    out = Text()
    out.append(clean(es.name, False), style="bold")
    if models is not None:
        out.append(f" · {models} models")
    out.append(f" · incumbent {clean(es.incumbent, False)}")
    if fit is None:
        out.append(" · no fit yet: v opens the results, f there fits the model", style="dim")
        return out
    out.append(f" · last fit #{fit.id} {fit.created_at[:16].replace('T', ' ')}")
    if fit.summary.get("ok") is False:
        out.append(" · diagnostics FAILED", style="bold reverse")
    lines = fit_verdicts(fit)
    width = max((len(clean(c.model, False)) for c in lines), default=0)
    for c in lines:
        out.append("\n  ")
        out.append(f"{clean(c.model, False):<{width}}  ")
        label = f"{GLYPHS.get(c.verdict, '·')} {clean(c.verdict, False)}"
        out.append(f"{label:<12}", style="bold" if c.verdict == "ready" else "")
        if c.p_all_hold is not None:
            out.append(f"  P(all hold) {c.p_all_hold:.2f}", style="dim")
    if not lines:
        out.append("\n  no verdicts kept with this fit", style="dim")
    return out


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

    def __init__(self, store, workspace_name: str = ""):
        super().__init__()
        self.store = store
        self.workspace_name = workspace_name
        self.sets: list[EvalSet] = []
        # Not Textual's `loading`: that covers the screen with an indicator, and a screen that
        # covers itself before it is mounted stays covered until a key forces a repaint. The
        # rows show "…" while their counts are on the way.
        self.counting = True
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
        table.add_columns(*COLUMNS)
        self.reload()
        table.focus()

    def reload(self) -> None:
        """Names at once; the counts (a full scan on big sets) arrive from a worker."""
        self.sets = self.store.eval_sets()
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
        table.clear()
        for es in self.sets:
            cells = self.cells.get(es.id, ("…",) * (len(COLUMNS) - 1))
            table.add_row(one_line(es.name, 30), *(one_line(c, 60) for c in cells), key=str(es.id))
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
        with self.store.reading() as reader:  # counts scan every row: not on the app's connection
            for es in list(self.sets):
                self._count(reader, es)
        self.app.call_from_thread(setattr, self, "counting", False)

    @property
    def loading(self) -> bool:  # type: ignore[override]  # a state, not Textual's indicator
        """The counts are still on their way (what tests and benchmarks wait for)."""
        return self.counting

    def _count(self, reader, es: EvalSet) -> None:
        responses = reader.response_total(es.id)
        labelled = reader.labelled_total(es.id)
        items = reader.item_count(es.id)
        models = len(reader.models(es.id))
        fits = reader.fits(es.id)
        fit = fits[0] if fits else None
        share = f"{labelled:,} ({labelled / responses:.1%})" if responses else "0"
        cells = (
            f"{items:,}",
            f"{responses:,}",
            share,
            f"#{fit.id}" if fit else "none",
            verdict_summary(fit),
        )
        self.app.call_from_thread(self._fill_row, es.id, cells, verdict_panel(es, fit, models))

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
        self.action_open("browse")

    def action_open(self, where: str) -> None:
        es = self.selected()
        if es is None:
            self.notify("No eval set here yet.", severity="warning")
            return
        self.post_message(self.Chosen(es, where))
