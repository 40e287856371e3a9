"""The changeover terminal app: a router. It is handed its world (a workspace, which holds the
fitter, and a rater), builds each screen with what that screen needs, and moves between screens
on their messages. `run_app` is the only place that opens a real workspace."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.markup import escape
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import get_current_worker

from changeover.core.paths import private_folder, write_private
from changeover.core.settings import Settings
from changeover.core.text import inert
from changeover.core.types import ChangeoverError, EvalSet, FitCancelled, ModelsReady, UsageError
from changeover.core.workspace import Workspace
from changeover.tui.routes import Route
from changeover.tui.screens.browse import BrowseScreen
from changeover.tui.screens.calibration import CalibrationScreen
from changeover.tui.screens.eval_sets import EvalSetsScreen
from changeover.tui.screens.help import HelpScreen
from changeover.tui.screens.rate import RateScreen
from changeover.tui.screens.results import ResultsScreen
from changeover.tui.widgets.ascii import ascii_driver, prefers_ascii

WARM_UP_AFTER_S = 1.0  # the compiled models are made ready this long after the app starts
HANG_UP_GRACE_S = 5.0  # how long a hung-up app may take to shut down before it is ended


class ChangeoverApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "changeover"
    BINDINGS = [
        Binding("q", "back", "Back / quit"),
        Binding("escape", "back", "Back", show=False),
        Binding("question_mark", "help", "Keys", key_display="?"),
    ]

    # What the background warm-up of the compiled models is doing ("" when it is not running):
    # the results screens show it as "preparing the model".
    preparing: reactive[str] = reactive("")

    def __init__(
        self,
        workspace: Workspace,
        rater: str = "rater",
        read_only: bool = False,
        start_rating: str | None = None,
        seed: int | None = None,
        overlap: float = 0.1,
        fit_settings: Settings | None = None,
    ):
        super().__init__()
        self.overlap = overlap
        self.fit_settings = fit_settings  # how `f` fits (None: the full default settings)
        self.workspace = workspace
        self.rater = rater
        self.read_only = read_only or workspace.read_only
        self.start_rating = start_rating
        self.seed = seed if seed is not None else random.randrange(2**31)
        self.exit_on_hangup = False  # run_app turns it on: a dropped SSH session ends cleanly
        self.models_ready: dict[int, ModelsReady] = {}  # by eval set id, once warmed up

    def on_mount(self) -> None:
        if self.exit_on_hangup and hasattr(signal, "SIGHUP"):
            # Python's default SIGHUP action kills the process mid-frame, leaving the terminal
            # on the alternate screen with the cursor hidden; exiting restores it. Labels are
            # already on disk (one transaction per key), so nothing else needs saving.
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self.hang_up, signal.SIGHUP)
            # `kill`: restore the terminal too
            loop.add_signal_handler(signal.SIGTERM, self.hang_up, signal.SIGTERM)
        self.push_screen(EvalSetsScreen(self.workspace, self.workspace.name))
        if self.start_rating is not None:
            self.open(Route.RATE, self.workspace.eval_set(self.start_rating))
        if not self.read_only:  # a read-only session cannot keep a fit: nothing to prepare
            # once the start screen is up: the warm-up loads numba (and with it PyTensor)
            self.set_timer(WARM_UP_AFTER_S, self.prepare_models)

    # ---- the compiled models, warmed up in the background ---------------------------------

    @work(thread=True, exclusive=True, group="prepare", exit_on_error=False)
    def prepare_models(self) -> None:
        """Load every eval set's compiled models from the disk cache, or compile them (in child
        processes: no key waits), so that `f` starts sampling at once. Stops when the app does."""
        # Textual sets this when the app shuts down, however it ends (q, a hang-up, a test's
        # run_test): the compiling processes are stopped then, not waited for.
        stop = get_current_worker().cancelled_event
        with self.workspace.reading() as reader:
            for es in reader.eval_sets():
                if stop.is_set():
                    return
                self.call_from_thread(self._preparing, "preparing the model")

                def heard(fraction: float, message: str) -> None:
                    compiling = message.startswith("compiling")
                    what = " (compiling, once per machine)" if compiling else ""
                    self.call_from_thread(self._preparing, f"preparing the model{what}")

                try:
                    ready = reader.prepare_models(
                        es,
                        self.fit_settings,
                        cancel=stop,
                        on_progress=heard,
                        background=True,
                    )
                except FitCancelled:
                    return
                except ChangeoverError as exc:  # a fit compiles again and reports it there
                    self.call_from_thread(self._preparing, "")
                    self.call_from_thread(
                        self.notify, f"Model not prepared: {exc}", severity="warning"
                    )
                    return
                self.models_ready[es.id] = ready
        self.call_from_thread(self._preparing, "")

    def _preparing(self, text: str) -> None:
        self.preparing = text

    def watch_preparing(self, text: str) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ResultsScreen):
                screen.preparing = text

    def hang_up(self, signum: int = signal.SIGHUP) -> None:
        """The terminal went away (SIGHUP) or we were asked to stop (SIGTERM): exit with the
        shell's status for that signal (129, 143), and if Textual's shutdown then blocks
        writing to the dead terminal (seen: its output queue never drains), end the process
        anyway after a few seconds. Every label is already committed, and SQLite's journal
        makes the file whole on the next open."""
        code = 128 + int(signum)
        self.exit(return_code=code)
        watchdog = threading.Timer(HANG_UP_GRACE_S, os._exit, args=(code,))
        watchdog.daemon = True
        watchdog.start()

    # ---- screen factories ----------------------------------------------------------------

    def make_screen(self, where: Route, es: EvalSet) -> Screen:
        ws = self.workspace
        if where == Route.BROWSE:
            return BrowseScreen(ws, es, read_only=self.read_only)
        if where == Route.RATE:
            queue = ws.queue(es, self.rater, seed=self.seed, overlap=self.overlap)
            return RateScreen(ws, es, self.rater, queue=queue)
        if where == Route.RESULTS:
            screen = ResultsScreen(ws, es, settings=self.fit_settings)
            screen.preparing = self.preparing
            return screen
        if where == Route.CALIBRATION:
            return CalibrationScreen(ws, es)
        raise ValueError(where)

    def open(self, where: Route, es: EvalSet) -> Screen | None:
        """Push the screen `where` for an eval set (refusing rating when read-only)."""
        if where == Route.RATE and self.read_only:
            self.notify("The workspace is open read-only: rating is off.", severity="warning")
            return None
        screen = self.make_screen(where, es)
        self.push_screen(screen)
        return screen

    # ---- messages from screens -----------------------------------------------------------

    def on_eval_sets_screen_chosen(self, message: EvalSetsScreen.Chosen) -> None:
        self.open(message.where, message.eval_set)

    def on_browse_screen_rate_openly(self, message: BrowseScreen.RateOpenly) -> None:
        browse = self.screen
        assert isinstance(browse, BrowseScreen)
        screen = RateScreen(
            self.workspace,
            message.eval_set,
            self.rater,
            response_ids=[message.response_id],
            blind=False,
        )
        self.push_screen(screen, lambda _: browse.refresh_page())

    def on_browse_screen_back(self, message: BrowseScreen.Back) -> None:
        self.action_back()

    # ---- actions -------------------------------------------------------------------------

    def action_back(self) -> None:  # type: ignore[override]  # Textual's is a coroutine; screens call this one
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
        es: EvalSet | None = getattr(self.screen, "eval_set", None)
        if es is None and (sets := self.workspace.eval_sets()):
            es = sets[0]
        return es

    # ---- command palette -----------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Keys":  # Textual's widget help panel: ours is `?`
                yield SystemCommand("Keys", "The keys of this screen (?)", self.action_help)
            else:
                yield command
        for other in self.workspace.eval_sets():
            yield SystemCommand(
                f"Switch eval set: {shown_name(other)}",
                "Browse this eval set",
                lambda other=other: self.switch_to(other),
            )
        current = self.current_eval_set()
        if current is None:
            return
        es = current
        for title, help, callback in (
            ("Rate", "A blind labelling session", lambda: self.open(Route.RATE, es)),
            ("Fit", "Fit the calibration model (results screen)", lambda: self.start_fit(es)),
            ("Results", "Candidates against the incumbent", lambda: self.open(Route.RESULTS, es)),
            ("Calibration", "Judge against humans", lambda: self.open(Route.CALIBRATION, es)),
            ("Export report", "Write the results as Markdown", lambda: self.export_report(es)),
        ):
            yield SystemCommand(f"{title} {shown_name(es)}", help, callback)

    def switch_to(self, es: EvalSet) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.open(Route.BROWSE, es)

    def start_fit(self, es: EvalSet) -> None:
        screen = self.open(Route.RESULTS, es)
        if screen is not None and hasattr(screen, "action_fit"):
            self.call_after_refresh(screen.action_fit)

    def export_report(self, es: EvalSet) -> None:
        """Write the report next to the workspace (not in read-only mode: no byte written)."""
        if self.read_only:
            self.notify(
                "The workspace is open read-only: no report is written "
                "(changeover report WORKSPACE --format markdown prints it).",
                severity="warning",
            )
            return
        self._write_report(es)

    @work(thread=True, exclusive=True, group="report")
    def _write_report(self, es: EvalSet) -> None:
        try:
            path = write_report(self.workspace, es)
        except ChangeoverError as exc:
            self._notice(f"No report: {exc}", severity="error")
            return
        except OSError as exc:  # a read-only mount, a full disk: say so, keep the session
            where = exc.filename or "next to the workspace"
            self._notice(f"No report written ({where}): {exc.strerror or exc}", severity="error")
            return
        self._notice(f"Report written to {path}")

    def _notice(self, text: str, severity: str = "information") -> None:
        """A notice from a worker thread; names and paths in it are text, never markup."""
        self.call_from_thread(
            self.notify, inert(text, newlines=False), severity=severity, markup=False
        )


def write_report(ws: Workspace, es: EvalSet, directory: Path | None = None) -> Path:
    """Render the results of `es` (as `changeover report` shows them) as Markdown next to the
    workspace; returns the file."""
    from changeover.core.render.report import render

    if ws.latest_fit(es) is None:
        raise ChangeoverError(f"eval set {es.name!r} has no fit yet: fit it first (f on Results)")
    text = render(ws.results(es, require_fit=True), "markdown")
    folder = directory or (ws.path.parent if ws.path else Path.cwd())
    stem = ws.path.stem if ws.path else "workspace"
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
        private_folder(folder)
        write_private(folder / "last_workspace", str(path.resolve()) + "\n")
    except OSError:
        pass  # a read-only home must not stop the app


def shown_name(es: EvalSet) -> str:
    """An eval set's name for the command palette, which reads its titles as markup."""
    return escape(inert(es.name, newlines=False))


class NoTerminal(UsageError):
    """The full-screen app was asked for where there is no terminal (a script, a CI step)."""


def has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


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
    ws = Workspace.open(path, read_only=read_only)
    try:
        start = None
        if rate:
            start = ws.choose_eval_set(eval_set, "changeover rate").name
        if not has_terminal():  # instead of a full-screen app waiting forever on no one
            raise NoTerminal(
                "changeover: the app needs a terminal (standard input and output are not one); "
                "in a script use changeover info, fit, report or export"
            )
        _remember(path)
        app = ChangeoverApp(
            ws,
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
        ws.close()
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
