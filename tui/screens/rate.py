"""Rate: the labelling session. Blind by default, one key per metric, every label on disk
before the next response appears; `u` walks labels back (retraction events), `s` skips.

The response gets most of the screen: the question and the reference answer take one line
each (`e` shows them in full above the response), and the guidelines are on `?`."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from changeover.core.types import ChangeoverError, EvalSet, Rating, ResponseView
from changeover.core.workspace import LabellingQueue, Workspace
from changeover.tui.widgets.metric_prompt import key_legend, metric_keys, prompt_text
from changeover.tui.widgets.response_pane import context_line, response_text
from changeover.tui.widgets.safe_text import clean


class RateScreen(Screen):
    """Label responses handed out by a queue (blind), or a fixed list of them (open triage)."""

    BINDINGS = [
        Binding("u", "undo", "Undo label"),
        Binding("s", "skip", "Skip"),
        Binding("e", "expand", "Full question"),
    ]
    HELP_KEYS = (("up down pgup pgdn home end", "Scroll the response"),)

    @dataclass
    class LabelSaved(Message):
        """A label reached the workspace."""

        rating: Rating

    def __init__(
        self,
        workspace: Workspace,
        eval_set: EvalSet,
        rater: str,
        queue: LabellingQueue | None = None,
        response_ids: list[int] | None = None,
        blind: bool = True,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.eval_set = eval_set
        self.rater = rater
        self.queue = queue
        self.fixed = list(response_ids or [])
        self.blind = blind
        self.metrics = eval_set.metrics
        self.view: ResponseView | None = None
        self.answers: dict[str, int] = {}
        self.current: int | None = None
        self.history: list[tuple[int, str, int]] = []  # (response, metric, rating id) this session
        self.completed: list[int] = []  # responses answered in full this session
        self.returning: list[int] = []  # responses put aside by an undo, shown again first
        self.total: int | None = None
        self.newly = True
        self.expanded = False  # question and reference in full (e), or one line each

    def compose(self) -> ComposeResult:
        yield Static(id="rate-progress")
        yield Static(id="rate-question", classes="rate-context")
        yield Static(id="rate-reference", classes="rate-context")
        with VerticalScroll(id="rate-body"):
            yield Static(id="rate-response")
        yield Static(id="rate-prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#rate-body").focus()
        self.advance()
        if self.queue is not None:
            self.call_after_refresh(self.load_total)  # the response first, then the full count

    @work(thread=True, exclusive=True, group="total")
    def load_total(self) -> None:
        """The eval set's size (a full count: on its own connection, off the rater's path)."""
        with self.workspace.reading() as reader:
            total = reader.response_total(self.eval_set.id)
        self.app.call_from_thread(self._set_total, total)

    def _set_total(self, total: int) -> None:
        self.total = total
        self.query_one("#rate-progress", Static).update(self.progress_text())

    # ---- moving between responses --------------------------------------------------------

    def advance(self) -> None:
        """Show the next response: one put aside by undo, else the list's or the queue's next."""
        if self.returning:
            self.show(self.returning.pop())
        elif self.fixed:
            self.show(self.fixed.pop(0))
        elif self.queue is not None and (pick := self.queue.next()) is not None:
            self.show(pick.response_id)
        elif self.queue is None and self.view is not None:
            self.dismiss(len(self.completed))
        else:
            self.view = None
            self.current = None
            self.refresh_panes()
        for notice in self.queue.take_notices() if self.queue is not None else ():
            self.notify(notice, severity="warning", timeout=15, markup=False)  # a sample ran out

    def show(self, response_id: int) -> None:
        self.view = self.workspace.response_view(response_id)
        self.answers = {
            r.metric: r.value
            for r in self.view.ratings
            if r.rater == self.rater and r.value is not None
        }
        self.newly = not any(r.value is not None for r in self.view.ratings)
        if self.queue is not None:  # left half-labelled before: its labels can be undone here
            held = {rating_id for _, _, rating_id in self.history}
            self.history += [
                (response_id, r.metric, r.id)
                for r in self.view.ratings
                if r.rater == self.rater and r.value is not None and r.id not in held
            ]
        self.current = self._first_open()
        self.refresh_panes()
        self.query_one("#rate-body").scroll_home(animate=False)

    def _first_open(self) -> int | None:
        return next((k for k, m in enumerate(self.metrics) if m.name not in self.answers), None)

    # ---- drawing -------------------------------------------------------------------------

    def refresh_panes(self) -> None:
        self.query_one("#rate-progress", Static).update(self.progress_text())
        question = self.query_one("#rate-question", Static)
        reference = self.query_one("#rate-reference", Static)
        body = self.query_one("#rate-body", VerticalScroll)
        if self.view is None:
            done = Text("Nothing left to label for you in this eval set. ", style="bold")
            done.append("q goes back.", style="")
            for line in (question, reference):
                line.display = False
            body.border_title = None
            self.query_one("#rate-response", Static).update(done)
            self.query_one("#rate-prompt", Static).update("")
            return
        item = self.view.item
        question.display = not self.expanded
        reference.display = not self.expanded and bool(item.reference)
        question.update(context_line("Q", item.question, item.region))
        reference.update(context_line("Ref", item.reference))
        body.border_title = None if self.expanded else "Response"
        self.query_one("#rate-response", Static).update(
            response_text(self.view, self.eval_set, blind=self.blind, context=self.expanded)
        )
        self.query_one("#rate-prompt", Static).update(
            prompt_text(self.metrics, self.answers, self.current)
        )

    @property
    def loading(self) -> bool:  # type: ignore[override]  # a state, not Textual's indicator
        """The eval set's size is still being counted."""
        return self.queue is not None and self.total is None

    def progress_text(self) -> Text:
        n = len(self.completed)
        sep = " · "
        out = Text(f"{clean(self.rater, False)}{sep}this session: {n} response{'s' * (n != 1)}")
        if not self.blind:
            out.append(f"{sep}open rating (not blind)", style="bold")
        if self.queue is not None:
            labelled = self.queue.labelled_total()
            total = f"/{self.total:,}" if self.total else ""
            out.append(f"{sep}{labelled:,}{total} labelled")
            if self.view is not None:
                have, need = self.queue.cell_progress(
                    self.view.response.model, self.view.item.region
                )
                out.append(sep + cell_text(have, need))
        return out

    # ---- keys ----------------------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        """A level key of the current metric stores that label at once."""
        if self.view is None or self.current is None:
            return
        metric = self.metrics[self.current]
        keys = metric_keys(metric)
        pressed = event.character if event.character in keys else event.key
        if pressed not in keys:
            return
        event.stop()
        event.prevent_default()
        self.answer(keys.index(pressed))

    def answer(self, level: int) -> None:
        """Store `level` for the current metric; move on, to the next response after the last."""
        assert self.view is not None and self.current is not None
        metric = self.metrics[self.current]
        response_id = self.view.response.id
        try:
            rating = self.workspace.add_rating(
                response_id, metric.name, self.rater, level, blind=self.blind
            )
        except ChangeoverError as exc:  # e.g. another writer held the workspace for minutes
            self.notify(f"Label not stored: {exc}. Press the key again.", severity="error")
            return
        self.history.append((response_id, metric.name, rating.id))
        self.answers[metric.name] = level
        self.post_message(self.LabelSaved(rating))
        self.current = self._first_open()
        if self.current is None:
            self.completed.append(response_id)
            if self.queue is not None:
                self.queue.done(response_id, newly_labelled=self.newly)
            self.advance()
        else:
            self.refresh_panes()

    def action_undo(self) -> None:
        if not self.history:
            self.notify("Nothing to undo in this session.")
            return
        response_id, metric, rating_id = self.history.pop()
        try:
            self.workspace.retract(rating_id, self.rater)
        except ChangeoverError as exc:
            self.notify(str(exc), severity="error")
            return
        if self.view is None or response_id != self.view.response.id:
            if self.view is not None:
                self.returning.append(self.view.response.id)
            if response_id in self.completed:
                self.completed.remove(response_id)
            if self.queue is not None:
                self.queue.refresh()  # that response may count as labelled no more
            self.show(response_id)
        else:
            self.answers.pop(metric, None)
            self.current = self._first_open()
            self.refresh_panes()
        self.notify(f"Undid {clean(metric, False)}.", timeout=2)

    def action_expand(self) -> None:
        """The question and reference answer in full above the response, or one line each."""
        self.expanded = not self.expanded
        self.refresh_panes()

    def action_skip(self) -> None:
        if self.view is None:
            return
        if self.queue is not None:
            self.queue.skip(self.view.response.id)
        self.advance()

    def help_extra(self) -> Text:
        """What `?` adds to the key list: each metric's keys and guideline, and the header."""
        out = Text()
        for m in self.metrics:
            out.append(f"{clean(m.name, False)}  ", style="bold")
            out.append_text(key_legend(m))
            out.append("\n")
            if m.guideline:
                out.append(f"  {clean(m.guideline)}\n", style="italic")
        out.append(
            "\nEach key stores its label at once; after the last metric the next response "
            "appears.\nBlind: no model name, no judge verdict, no other rater's label.\n"
            if self.blind
            else "\nOpen rating: labels are marked as not blind.\n"
        )
        need = self.queue.min_per_cell if self.queue is not None else None
        if need is not None:
            out.append(
                f"\nThe header: responses you answered in full this session; responses of the "
                f"set with a human label; and the cell, the labelled responses of this "
                f"response's model and region (not named while blind). The queue brings "
                f"every cell to {need} first: 'cell 4/{need} min' is on its way there, "
                f"'cell 12, min {need} met' is past it.\n",
                style="dim",
            )
        return out


def cell_text(have: int, need: int) -> str:
    """How full the response's cell is, in words that do not read as an error past the target."""
    return f"cell {have}/{need} min" if have < need else f"cell {have}, min {need} met"
