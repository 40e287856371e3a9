"""A DataTable that holds one page of rows and asks for the next page past its edges, and
`fill_table`, which lays a table out for the rows it is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable


def fill_table(
    table: DataTable, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[str | Text]]]
) -> None:
    """Replace the table's columns and rows by `rows` ((key, cells) pairs), each column as wide
    as its widest cell. Textual sizes auto-width columns only when the table is next idle, and
    a frame drawn before that (or nothing redrawing after it) showed ids 201.. as "20" and
    "none" as "non": the widths are given here instead."""

    def width(cell: str | Text) -> int:
        return cell.cell_len if isinstance(cell, Text) else cell_len(cell)

    table.clear(columns=True)
    for k, label in enumerate(columns):
        table.add_column(label, width=max([cell_len(label), *(width(r[1][k]) for r in rows)]))
    for key, cells in rows:
        table.add_row(*cells, key=key)


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
