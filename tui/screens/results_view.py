"""What the results and calibration screens share: both show the workspace's one results value
of an eval set, read in a worker thread so the screen stays live, reread when the screen comes
back (labels may have been given meanwhile), with ] and [ between the metrics' tabs."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen

from changeover.core.results import Results
from changeover.core.types import EvalSet
from changeover.core.workspace import Workspace
from changeover.tui.widgets.tabs import switch_tab

# The keys every results view has (each screen lists them after its own, for the footer).
RESULTS_BINDINGS = [
    Binding("r", "reload", "Reload"),
    Binding("right_square_bracket", "next_tab", "Next metric", key_display="]"),
    Binding("left_square_bracket", "previous_tab", "Prev metric", key_display="["),
]


class ResultsView(Screen):
    """A screen of one eval set's results; subclasses lay them out in `show`."""

    # results on their way (not `loading`: Textual's loading indicator would cover the screen)
    reading: reactive[bool] = reactive(False)

    class Loaded(Message):
        """The results read in the loading thread (None and an error when that failed)."""

        def __init__(self, seq: int, data: Results | None, error: str) -> None:
            super().__init__()
            self.seq = seq
            self.data = data
            self.error = error

    def __init__(
        self,
        workspace: Workspace,
        eval_set: EvalSet,
        *,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.workspace = workspace
        self.eval_set = eval_set
        self.data: Results | None = None
        self._load_seq = 0

    def results_options(self) -> dict[str, Any]:
        """What to ask `Workspace.results` for besides the eval set (threshold, instant...)."""
        return {}

    def show(self, data: Results | None, error: str) -> None:
        """Lay out freshly read results (or say why there are none)."""
        raise NotImplementedError

    def reload(self) -> None:
        """Read the results through the workspace in a thread, then `show` them."""
        self._load_seq += 1
        seq, options = self._load_seq, self.results_options()
        self.reading = True
        self.run_worker(
            lambda: self._load_in_thread(seq, options),
            name="load",
            group="load",
            thread=True,
            exit_on_error=False,
        )

    def _load_in_thread(self, seq: int, options: dict[str, Any]) -> None:
        try:
            data = self.workspace.results(self.eval_set, **options)
        except Exception as exc:  # a broken fit must not take the screen down
            error = f"cannot show results: {type(exc).__name__}: {exc}"
            self.post_message(self.Loaded(seq, None, error))
            return
        self.post_message(self.Loaded(seq, data, ""))

    @on(Loaded)
    def _on_loaded(self, event: Loaded) -> None:
        if event.seq != self._load_seq:
            return  # a newer reload is on its way
        self.reading = False
        self.show(event.data, event.error)

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.reload()

    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        back = getattr(self.app, "action_back", None)  # the router's: it reloads what is under
        if back is not None:
            back()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_next_tab(self) -> None:
        switch_tab(self, 1)

    def action_previous_tab(self) -> None:
        switch_tab(self, -1)
