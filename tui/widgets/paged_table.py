"""A DataTable that holds one page of rows and asks for the next page past its edges."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.widgets import DataTable


class PagedTable(DataTable):
    """Moving down from the last row (or up from the first) asks the screen for another page."""

    @dataclass
    class PageWanted(Message):
        """The cursor ran off an edge: +1 for the next page, -1 for the previous one."""

        table: PagedTable
        step: int

    def _at_bottom(self) -> bool:
        return self.row_count == 0 or self.cursor_row >= self.row_count - 1

    def action_cursor_down(self) -> None:
        if self._at_bottom():
            self.post_message(self.PageWanted(self, +1))
        else:
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0:
            self.post_message(self.PageWanted(self, -1))
        else:
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if self._at_bottom():
            self.post_message(self.PageWanted(self, +1))
        else:
            super().action_page_down()

    def action_page_up(self) -> None:
        if self.cursor_row <= 0:
            self.post_message(self.PageWanted(self, -1))
        else:
            super().action_page_up()
