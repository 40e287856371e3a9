"""`?`: every key of the screen underneath, and whatever that screen wants to add."""

from __future__ import annotations

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
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", key_display="?"),
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

    def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)


def keys_of(screen) -> list[tuple[str, str]]:
    """(key, description) for every key of a screen: its own first, then the app's, then the
    focused widget's (a screen's description wins where a widget binds the same key)."""
    app = screen.app
    declared = {
        k.strip()
        for b in getattr(type(screen), "BINDINGS", [])
        for k in (b.key if isinstance(b, Binding) else b[0]).split(",")
    }
    own = sorted(
        (b for bs in screen._bindings.key_to_bindings.values() for b in bs),
        key=lambda b: b.key not in declared,
    )  # the screen's own keys before inherited
    app_level = [b for bs in app._bindings.key_to_bindings.values() for b in bs]
    rest = [a.binding for a in screen.active_bindings.values()]
    rows, seen_keys = [], set()
    for b in [*own, *app_level, *rest]:
        if b.key in seen_keys or b.system:
            continue
        seen_keys.add(b.key)
        rows.append((b.key_display or app.get_key_display(b), b.description or b.action))
    return rows
