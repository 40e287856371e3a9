"""The changeover terminal app: a router. It is handed its world (a store, a fitter, a rater),
builds each screen with what that screen needs, and moves between screens on their messages.
`run_app` is the only place that opens a real workspace."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from changeover.core.queue import LabelQueue
from changeover.core.store import Store
from changeover.core.types import ChangeoverError, EvalSet
from changeover.tui.screens.browse import BrowseScreen
from changeover.tui.screens.eval_sets import EvalSetsScreen
from changeover.tui.screens.help import HelpScreen
from changeover.tui.screens.rate import RateScreen
from changeover.tui.widgets.ascii import ascii_driver, prefers_ascii


def _default_fitter(store, eval_set, settings, on_progress=None, cancel=None):
    from changeover.core.fitting import run_fit  # pymc and friends load only when a fit starts

    return run_fit(store, eval_set, settings, on_progress=on_progress, cancel=cancel)


class ChangeoverApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "changeover"
    BINDINGS = [
        Binding("q", "back", "Back / quit"),
        Binding("escape", "back", "Back", show=False),
        Binding("question_mark", "help", "Keys", key_display="?"),
    ]

    def __init__(
        self,
        store: Store,
        fitter=None,
        rater: str = "rater",
        read_only: bool = False,
        start_rating: str | None = None,
        seed: int | None = None,
        overlap: float = 0.1,
    ):
        super().__init__()
        self.overlap = overlap
        self.store = store
        self.fitter = fitter or _default_fitter
        self.rater = rater
        self.read_only = read_only or store.read_only
        self.start_rating = start_rating
        self.seed = seed if seed is not None else random.randrange(2**31)
        self.exit_on_hangup = False  # run_app turns it on: a dropped SSH session ends cleanly

    def on_mount(self) -> None:
        if self.exit_on_hangup and hasattr(signal, "SIGHUP"):
            # Python's default SIGHUP action kills the process mid-frame, leaving the terminal
            # on the alternate screen with the cursor hidden; exiting restores it. Labels are
            # already on disk (one transaction per key), so nothing else needs saving.
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self.exit)
            loop.add_signal_handler(signal.SIGTERM, self.exit)  # `kill`: restore the terminal too
        name = self.store.path.name if self.store.path else "in-memory workspace"
        self.push_screen(EvalSetsScreen(self.store, name))
        if self.start_rating is not None:
            self.open("rate", self.store.eval_set(self.start_rating))

    # ---- screen factories ----------------------------------------------------------------

    def make_screen(self, where: str, es: EvalSet) -> Screen | None:
        if where == "browse":
            return BrowseScreen(self.store, es, read_only=self.read_only)
        if where == "rate":
            return RateScreen(self.store, es, self.rater, queue=self.make_queue(es))
        if where == "results":
            from changeover.tui.screens.results import ResultsScreen

            return ResultsScreen(self.store, es, self.fitter)
        if where == "calibration":
            from changeover.tui.screens.calibration import CalibrationScreen

            return CalibrationScreen(self.store, es)
        raise ValueError(where)

    def make_queue(self, es: EvalSet):
        """The labelling queue: cells filled to a minimum, then (after a fit) the cells whose
        labels settle the most open decisions, with a share of blind second labels."""
        from changeover.core.active import scorer_for_latest_fit
        from changeover.core.overlap import OverlapQueue

        scorer = scorer_for_latest_fit(self.store, es)  # None before the first fit
        queue = LabelQueue(self.store, es, self.rater, seed=self.seed, scorer=scorer)
        return OverlapQueue(queue, share=self.overlap, seed=self.seed) if self.overlap else queue

    def open(self, where: str, es: EvalSet) -> Screen | None:
        """Push the screen `where` for an eval set (refusing rating when read-only)."""
        if where == "rate" and self.read_only:
            self.notify("The workspace is open read-only: rating is off.", severity="warning")
            return None
        screen = self.make_screen(where, es)
        if screen is None:
            self.notify(f"The {where} screen is not available in this build.", severity="warning")
            return None
        self.push_screen(screen)
        return screen

    # ---- messages from screens -----------------------------------------------------------

    def on_eval_sets_screen_chosen(self, message: EvalSetsScreen.Chosen) -> None:
        self.open(message.where, message.eval_set)

    def on_browse_screen_rate_openly(self, message: BrowseScreen.RateOpenly) -> None:
        browse = self.screen
        screen = RateScreen(
            self.store,
            message.eval_set,
            self.rater,
            response_ids=[message.response_id],
            blind=False,
        )
        self.push_screen(screen, lambda _: browse.refresh_page())

    def on_browse_screen_back(self, message: BrowseScreen.Back) -> None:
        self.action_back()

    # ---- actions -------------------------------------------------------------------------

    def action_back(self) -> None:
        """Back to the previous screen; quit from the start screen."""
        if len(self.screen_stack) > 2:
            self.pop_screen()
            if isinstance(self.screen, EvalSetsScreen):
                self.screen.reload()
        else:
            self.exit(0)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen.of(self.screen))

    def current_eval_set(self) -> EvalSet | None:
        es = getattr(self.screen, "eval_set", None)
        if es is None and (sets := self.store.eval_sets()):
            es = sets[0]
        return es

    # ---- command palette -----------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for es in self.store.eval_sets():
            yield SystemCommand(
                f"Switch eval set: {es.name}",
                "Browse this eval set",
                lambda es=es: self.switch_to(es),
            )
        es = self.current_eval_set()
        if es is None:
            return
        yield SystemCommand(
            f"Rate {es.name}", "A blind labelling session", lambda: self.open("rate", es)
        )
        yield SystemCommand(
            f"Fit {es.name}",
            "Fit the calibration model (results screen)",
            lambda: self.start_fit(es),
        )
        yield SystemCommand(
            f"Results {es.name}",
            "Candidates against the incumbent",
            lambda: self.open("results", es),
        )
        yield SystemCommand(
            f"Calibration {es.name}", "Judge against humans", lambda: self.open("calibration", es)
        )
        yield SystemCommand(
            f"Export report {es.name}",
            "Write the latest fit's report as Markdown",
            lambda: self.export_report(es),
        )

    def switch_to(self, es: EvalSet) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.open("browse", es)

    def start_fit(self, es: EvalSet) -> None:
        screen = self.open("results", es)
        if screen is not None and hasattr(screen, "action_fit"):
            self.call_after_refresh(screen.action_fit)

    @work(thread=True, exclusive=True, group="report")
    def export_report(self, es: EvalSet) -> None:
        try:
            path = write_report(self.store, es)
        except (ChangeoverError, ImportError) as exc:
            self.call_from_thread(self.notify, f"No report: {exc}", severity="error")
            return
        except OSError as exc:  # a read-only mount, a full disk: say so, keep the session
            where = exc.filename or "next to the workspace"
            self.call_from_thread(
                self.notify, f"No report written ({where}): {exc.strerror or exc}", severity="error"
            )
            return
        self.call_from_thread(self.notify, f"Report written to {path}")


def write_report(store: Store, es: EvalSet, directory: Path | None = None) -> Path:
    """Render the latest fit of `es` as Markdown next to the workspace; returns the file."""
    from changeover.core.fitting import latest_posteriors
    from changeover.core.report import build_report, render

    fit, posteriors = latest_posteriors(store, es)
    if fit is None:
        raise ChangeoverError(f"eval set {es.name!r} has no fit yet: fit it first (f on Results)")
    text = render(build_report(es, posteriors, fit=fit), "markdown")
    folder = directory or (store.path.parent if store.path else Path.cwd())
    stem = store.path.stem if store.path else "workspace"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in es.name)
    path = folder / f"{stem}-{safe}-report.md"
    path.write_text(text, encoding="utf-8")
    return path


# ---- the command line's entry ------------------------------------------------------------


def _config_dir() -> Path:
    override = os.environ.get("CHANGEOVER_CONFIG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("changeover", appauthor=False))


def last_workspace() -> Path | None:
    """The workspace opened last, or None."""
    try:
        text = (_config_dir() / "last_workspace").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(text) if text else None


def _remember(path: Path) -> None:
    try:
        folder = _config_dir()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "last_workspace").write_text(str(path.resolve()) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only home must not stop the app


def run_app(
    path,
    read_only: bool = False,
    mouse: bool = False,
    rate: bool = False,
    eval_set: str | None = None,
    rater: str = "rater",
    overlap: float = 0.1,
) -> int:
    """Open the workspace at `path` and run the app (straight into rating with `rate`)."""
    path = Path(path)
    if rate and read_only:
        raise ChangeoverError(
            f"{path}: --read-only opens a workspace for review; rating writes "
            "labels, so it is refused. Drop --read-only to rate."
        )
    store = Store.open(path, read_only=read_only)
    try:
        start = None
        if rate or eval_set:
            sets = store.eval_sets()
            if eval_set is not None:
                start = store.eval_set(eval_set).name
            elif sets:
                start = sets[0].name
            else:
                raise ChangeoverError(f"{path}: no eval sets to rate yet (import one first)")
        _remember(path)
        app = ChangeoverApp(
            store,
            rater=rater,
            read_only=read_only,
            start_rating=start if rate else None,
            overlap=overlap,
        )
        app.exit_on_hangup = True
        over_ssh = bool(os.environ.get("SSH_CONNECTION"))
        if over_ssh and "TEXTUAL_ANIMATIONS" not in os.environ:
            app.animation_level = "none"  # every animated frame crosses the network
        if prefers_ascii():  # every frame through an ASCII table, Textual's own glyphs too
            app.driver_class = ascii_driver(app.driver_class)
        use_mouse = mouse or not over_ssh
        app.run(mouse=use_mouse)
        code = app.return_code or 0
    finally:
        store.close()
    _exit_if_stuck(code)
    return code


def _exit_if_stuck(code: int) -> None:
    """A hang-up in the instant the app quits can leave Textual's input thread spinning on a
    dead terminal, and Python then waits for it forever at 100% CPU. Every label is already on
    disk and the store is closed, so a thread still alive after two seconds is not worth a
    process that never ends."""
    stuck = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    for t in stuck:
        t.join(2.0)
    if any(t.is_alive() for t in stuck):
        os._exit(code)
