"""Moving between the tabs of a screen's TabbedContent with ] and [ (the arrows stay with the
table inside)."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import DataTable, TabbedContent, TabPane


def switch_tab(screen: Screen, step: int) -> None:
    """The next (step 1) or previous (-1) tab, wrapping around; its table takes the focus."""
    tabs = screen.query_one(TabbedContent)
    ids = [pane.id for pane in screen.query(TabPane) if pane.id is not None]
    if not ids:
        return
    k = ids.index(tabs.active) if tabs.active in ids else 0
    tabs.active = ids[(k + step) % len(ids)]
    screen.query_one(f"#{tabs.active} DataTable", DataTable).focus()
