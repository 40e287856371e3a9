"""Browse: the responses of one eval set, a page at a time from SQLite, with filters, `/`
search and a detail pane (question, reference, response, judge verdicts, human labels)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from changeover.core.types import BrowseFilter, BrowseRow, EvalSet
from changeover.core.workspace import Workspace
from changeover.tui.widgets.paged_table import PagedTable, fill_table
from changeover.tui.widgets.response_pane import level_label, response_text
from changeover.tui.widgets.safe_text import clean, one_line

PAGE = 50
COLUMNS = ("id", "item", "region", "model", "labels", "question", "response")


def _cycle(options: list, current):
    """The option after `current` (None means "any" and comes first)."""
    seq = [None, *options]
    return seq[(seq.index(current) + 1) % len(seq)] if current in seq else None


class BrowseScreen(Screen):
    """Responses of one eval set; the filter is a reactive, the table holds one page."""

    BINDINGS = [
        Binding("enter", "rate_openly", "Rate openly"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("g", "cycle('region')", "Region"),
        Binding("m", "cycle('model')", "Model"),
        Binding("k", "cycle('metric')", "Metric"),
        Binding("j", "cycle('judge_level')", "Judge level"),
        Binding("h", "cycle('human_level')", "Human level"),
        Binding("d", "toggle_filter('disagree')", "Judge vs human"),
        Binding("a", "toggle_filter('raters_disagree')", "Raters disagree"),
        Binding("u", "toggle_filter('unrated')", "Unrated"),
        Binding("x", "clear", "Clear filters"),
        Binding("right_square_bracket", "page(1)", "Next page", key_display="]"),
        Binding("left_square_bracket", "page(-1)", "Previous page", key_display="["),
        Binding("escape", "escape", "Close search / back", show=False),
    ]
    HELP_KEYS = (
        ("up down pgup pgdn", "Move; past the first or last row turns the page"),
        ("tab", "Between the table and the detail pane (up down scroll it)"),
    )

    filter: reactive[BrowseFilter] = reactive(BrowseFilter, always_update=True, init=False)

    @dataclass
    class RateOpenly(Message):
        """The user wants to label this response with everything on screen (not blind)."""

        eval_set: EvalSet
        response_id: int

    @dataclass
    class Back(Message):
        """The user left the screen."""

    def __init__(self, workspace: Workspace, eval_set: EvalSet, read_only: bool = False) -> None:
        super().__init__()
        self.workspace = workspace
        self.eval_set = eval_set
        self.read_only = read_only
        self.models = workspace.models(eval_set.id)
        self.rows: list[BrowseRow] = []
        self.total: int | None = None
        self.first_row = 0  # row number of the page's first row, for "rows 51-100 of N"
        self._token = 0  # the page request whose answer is wanted
        self._answered = -1  # the last request whose page is on screen
        self._steps = 0  # pages asked for (+ forward, - back) beyond the page on screen
        self._detail_of: int | None = None  # the response in the detail pane

    def compose(self) -> ComposeResult:
        yield Static(id="browse-filters")
        yield Input(
            placeholder="search question and response text; enter applies, escape cancels",
            id="browse-search",
            classes="hidden",
        )
        yield PagedTable(id="browse-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="browse-detail"):
            yield Static(id="browse-detail-text")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(PagedTable)
        table.add_columns(*COLUMNS)
        table.focus()
        self.filter = BrowseFilter()

    # ---- loading -------------------------------------------------------------------------

    def watch_filter(self) -> None:
        self.total = None
        self.request_page(0)
        self.load_count(self.filter)
        self.show_filters()

    def request_page(
        self, offset: int, after: int | None = None, before: int | None = None, cursor: int = 0
    ) -> None:
        """Ask for the page starting at row `offset` (keyset: after/before a response id)."""
        self._token += 1
        self._steps = 0
        self.load_page(self._token, self.filter, offset, after, before, cursor)

    @work(thread=True, exclusive=True, group="page")
    def load_page(
        self,
        token: int,
        f: BrowseFilter,
        offset: int,
        after: int | None,
        before: int | None,
        cursor: int,
    ) -> None:
        # a rare filter can walk far: on its own connection, so the detail pane never waits
        with self.workspace.reading() as reader:
            rows = reader.browse_page(
                self.eval_set.id, f, after_id=after, before_id=before, limit=PAGE
            )
        self.app.call_from_thread(self._fill, token, offset, rows, cursor)

    @work(thread=True, exclusive=True, group="page")
    def walk_pages(
        self, token: int, f: BrowseFilter, rows: list[BrowseRow], first: int, steps: int
    ) -> None:
        """The page `steps` pages away from `rows` (which starts at row `first`), or as far as
        the filter's rows go; each step is one keyset page, so a far page costs a near one."""
        start = first
        with self.workspace.reading() as reader:
            for _ in range(abs(steps)):
                if token != self._token:
                    return  # a later press asked for another page: that walk answers
                if steps > 0 and len(rows) == PAGE:
                    page = reader.browse_page(
                        self.eval_set.id, f, after_id=rows[-1].response_id, limit=PAGE
                    )
                    step = PAGE
                elif steps < 0 and rows and first > 0:
                    page = reader.browse_page(
                        self.eval_set.id, f, before_id=rows[0].response_id, limit=PAGE
                    )
                    step = -PAGE
                else:
                    break
                if not page:
                    break
                rows, first = page, max(0, first + step)
        moved = rows if first != start else None  # None: at the edge already, stay put
        self.app.call_from_thread(self._fill, token, first, moved, 0 if steps > 0 else -1)

    @work(thread=True, exclusive=True, group="count")
    def load_count(self, f: BrowseFilter) -> None:
        with self.workspace.reading() as reader:  # a long scan must not hold up the pages
            total = reader.browse_count(self.eval_set.id, f)
        self.app.call_from_thread(self._set_total, f, total)

    def _set_total(self, f: BrowseFilter, total: int) -> None:
        if f == self.filter:
            self.total = total
            self.show_filters()

    def _fill(self, token: int, offset: int, rows: list[BrowseRow] | None, cursor: int) -> None:
        if token != self._token:
            return  # an answer to a question nobody is asking any more
        self._answered = token
        self._steps = 0
        if rows is None or (not rows and offset > 0):
            return  # nothing past the edge: stay on this page
        self.first_row = offset
        self.rows = rows
        table = self.query_one(PagedTable)
        fill_table(  # columns as wide as this page's cells: ids 1201.. after 1..50 fit
            table,
            COLUMNS,
            [
                (
                    str(r.response_id),
                    (
                        str(r.response_id),
                        one_line(r.external_id, 10),
                        one_line(r.region, 8),
                        one_line(r.model, 16),
                        str(r.n_ratings),
                        one_line(r.question, 24),
                        one_line(r.text_preview, 48),
                    ),
                )
                for r in rows
            ],
        )
        if rows:
            table.move_cursor(row=min(cursor if cursor >= 0 else len(rows) - 1, len(rows) - 1))
        self.show_filters()
        self.show_detail()

    @property
    def loading(self) -> bool:  # type: ignore[override]  # a state, not Textual's indicator
        """A page or the row count is still on its way."""
        return self._answered != self._token or self.total is None

    def show_filters(self) -> None:
        f = self.filter
        parts = [("region", f.region), ("model", f.model), ("metric", f.metric)]
        if f.metric:
            parts += [
                (
                    "judge",
                    None
                    if f.judge_level is None
                    else level_label(self.eval_set, f.metric, f.judge_level),
                ),
                (
                    "human",
                    None
                    if f.human_level is None
                    else level_label(self.eval_set, f.metric, f.human_level),
                ),
            ]
        out = Text()
        for name, value in parts:
            out.append(f"{name} ", style="dim")
            out.append(clean(value, False) if value is not None else "any")
            out.append("  ")
        if f.disagree:
            out.append("judge vs human differ  ", style="bold")
        if f.raters_disagree:
            out.append("raters disagree  ", style="bold")
        if f.unrated:
            out.append("unrated  ", style="bold")
        if f.search:
            out.append("search ", style="dim")
            out.append(f"“{clean(f.search, False)}”  ")
        first = self.first_row + 1 if self.rows else 0
        last = self.first_row + len(self.rows)
        total = "…" if self.total is None else f"{self.total:,}"
        out.append(f"rows {first:,}-{last:,} of {total}", style="bold")
        self.query_one("#browse-filters", Static).update(out)

    def highlighted(self) -> BrowseRow | None:
        table = self.query_one(PagedTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def show_detail(self) -> None:
        row = self.highlighted()
        pane = self.query_one("#browse-detail-text", Static)
        if row is None:
            pane.update(Text("No responses match these filters.", style="dim"))
            return
        view = self.workspace.response_view(row.response_id)
        pane.update(response_text(view, self.eval_set, blind=False))
        if row.response_id != self._detail_of:  # a new row starts at its top
            self._detail_of = row.response_id
            self.query_one("#browse-detail", VerticalScroll).scroll_home(animate=False)

    def on_data_table_row_highlighted(self, event: PagedTable.RowHighlighted) -> None:
        self.show_detail()

    def on_data_table_row_selected(self, event: PagedTable.RowSelected) -> None:
        event.stop()
        self.action_rate_openly()

    def on_paged_table_page_wanted(self, event: PagedTable.PageWanted) -> None:
        self.turn_page(event.step)

    def turn_page(self, step: int) -> None:
        """One page on (or back). Presses made while a page is on its way add up: a burst of
        15 `]` lands 15 pages on, counted from the page on screen."""
        if not self.rows:
            return
        self._steps += step
        self._token += 1
        self.walk_pages(self._token, self.filter, list(self.rows), self.first_row, self._steps)

    def refresh_page(self) -> None:
        """Re-read the current page (after a label was added from here)."""
        table = self.query_one(PagedTable)
        first = self.rows[0].response_id - 1 if self.rows else None
        self.request_page(self.first_row, after=first, cursor=table.cursor_row or 0)
        self.load_count(self.filter)

    # ---- actions -------------------------------------------------------------------------

    def action_page(self, step: int) -> None:
        self.turn_page(step)

    def action_cycle(self, what: str) -> None:
        f = self.filter
        metrics = [m.name for m in self.eval_set.metrics]
        if what == "region":
            self.filter = replace(f, region=_cycle(list(self.eval_set.region_names), f.region))
        elif what == "model":
            self.filter = replace(f, model=_cycle(self.models, f.model))
        elif what == "metric":
            self.filter = replace(
                f, metric=_cycle(metrics, f.metric), judge_level=None, human_level=None
            )
        elif metrics:  # a level filter needs a metric: the first one unless one is chosen
            metric = f.metric or metrics[0]
            levels = list(range(self.eval_set.metric(metric).n_levels))
            current = getattr(f, what) if f.metric else None
            self.filter = replace(f, metric=metric, **{what: _cycle(levels, current)})

    def action_toggle_filter(self, what: str) -> None:
        flags: dict[str, Any] = {what: not getattr(self.filter, what)}
        self.filter = replace(self.filter, **flags)

    def action_clear(self) -> None:
        self.filter = BrowseFilter()

    def action_search(self) -> None:
        box = self.query_one("#browse-search", Input)
        box.value = self.filter.search or ""
        box.remove_class("hidden")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_search()
        self.filter = replace(self.filter, search=event.value.strip() or None)

    def _close_search(self) -> None:
        self.query_one("#browse-search", Input).add_class("hidden")
        self.query_one(PagedTable).focus()

    def action_escape(self) -> None:
        if not self.query_one("#browse-search", Input).has_class("hidden"):
            self._close_search()
        else:
            self.post_message(self.Back())

    def action_rate_openly(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        if self.read_only:
            self.notify("The workspace is open read-only: no rating.", severity="warning")
            return
        self.post_message(self.RateOpenly(self.eval_set, row.response_id))
