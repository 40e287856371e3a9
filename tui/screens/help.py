"""`?`: every key of the screen underneath, and whatever that screen wants to add."""

from __future__ import annotations

import re

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """A modal list of keys: (key, what it does) rows, plus optional extra text."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close"),
        Binding("question_mark", "close", "Close", key_display="?"),
    ]

    def __init__(self, title: str, keys: list[tuple[str, str]], extra: Text | None = None):
        super().__init__()
        self.title_text = title
        self.keys = keys
        self.extra = extra

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in self.keys:
            table.add_row(Text(key), Text(what))
        with VerticalScroll(id="help-body"):
            yield Static(Text(self.title_text, style="bold"), classes="help-title")
            if self.extra is not None:
                yield Static(self.extra, id="help-extra")
            yield Static(table, id="help-keys")
            yield Static(Text("escape or ? closes this", style="dim"))

    @classmethod
    def of(cls, screen) -> HelpScreen:
        """The help for `screen`: its keys, and whatever its help_extra() adds."""
        extra = screen.help_extra() if hasattr(screen, "help_extra") else None
        return cls(f"Keys: {screen_title(screen)}", keys_of(screen), extra)

    def action_close(self) -> None:
        self.dismiss(None)


# Keys that work on every screen, from Textual itself: the only ones of its own bindings
# (focus, copy, maximise, cursor keys of a widget...) worth a line here.
GLOBAL_KEYS = (("ctrl+p", "Command palette"), ("ctrl+q", "Quit at once"))


def key_name(binding: Binding) -> str:
    """How the help and the README name a key: its key_display, else the key ("enter", "escape")."""
    return binding.key_display or binding.key.split(",")[0].strip()


def _declared(obj) -> list[Binding]:
    """The bindings changeover's own classes declare on `obj` (a screen or the app), most
    derived first; Textual's built-in ones (tab, ctrl+c, super+c...) are left out."""
    found = []
    for cls in type(obj).__mro__:
        if cls.__module__.startswith("changeover.") and "BINDINGS" in vars(cls):
            found += [b if isinstance(b, Binding) else Binding(*b) for b in vars(cls)["BINDINGS"]]
    return found


def keys_of(screen) -> list[tuple[str, str]]:
    """(key, description) for every key of a screen: its own first, then the app's, then the
    palette and quit, then what the screen lists in HELP_KEYS (movement keys its widgets
    handle). A key the screen binds hides the app's meaning of it."""
    rows, seen = [], set()
    for b in [*_declared(screen), *_declared(screen.app)]:
        keys = [k.strip() for k in b.key.split(",")]
        if any(k in seen for k in keys):
            continue
        seen.update(keys)
        rows.append((key_name(b), b.description or b.action))
    rows += [row for row in GLOBAL_KEYS if row[0] not in seen]
    rows += list(getattr(screen, "HELP_KEYS", ()))
    return rows


def screen_title(screen) -> str:
    """'Eval sets' for EvalSetsScreen: the class name in words."""
    name = type(screen).__name__.removesuffix("Screen")
    words = re.findall(r"[A-Z][a-z]*|[a-z]+|\d+", name) or [name]
    return " ".join([words[0], *(w.lower() for w in words[1:])])
