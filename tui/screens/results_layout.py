"""How much of each cell the results tables can show at the terminal's size.

A table is a grid: rows (the regions and the overall row of one metric, or every metric's
overall row on "all metrics"), models as columns, incumbent first. Four kinds of cell, richest
first:

- FULL: mean and 90% interval, a bar on the table's axis, delta, P(holds) and the verdict
  (three lines a row, four with a pass level);
- MEAN: one line, `0.925 +0.184 ✔` (the incumbent's `0.741 inc`);
- DELTA: one line, `+0.184 ✔`;
- VERDICT: the glyph alone.

The screen shows each table with the richest kind whose columns fit the width (and, for FULL,
whose rows fit the height), so every candidate's verdict for every row is on screen at 80x24
with up to five candidates; `enter` shows a cell in full. Column widths follow what the cells
hold; room left over goes to model names that would otherwise be cut, and a name still longer
than its column wraps onto a second header line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

from changeover.core.results import Cell, MetricTable, Results, probability_text
from changeover.tui.widgets.intervals import ASCII_GLYPHS, GLYPHS, VERDICT_STYLE, num
from changeover.tui.widgets.safe_text import clean

FULL, MEAN, DELTA, VERDICT = "full", "mean", "delta", "verdict"
KINDS = (FULL, MEAN, DELTA, VERDICT)
ROW_WIDTH = 14  # the widest first (region / metric) column
CELL_PADDING = 2  # DataTable pads each cell by one on either side
MIN_FULL_WIDTH = 23  # a full cell's bar


@dataclass(frozen=True)
class GridRow:
    """One row of a table: its key, its label and one cell per model (None: no data)."""

    key: str
    label: str
    cells: tuple[Cell | None, ...]
    fmt: str  # ".3f" for rates, ".2f" for mean levels
    lines: int = 3  # a FULL row's height (4 with a pass level)


@dataclass(frozen=True)
class Layout:
    """The kind of cell a table shows, its columns' widths and its header's height."""

    kind: str
    row_width: int
    widths: tuple[int, ...]  # one per model, incumbent first
    header_lines: int = 1
    height: int = 0  # header and rows

    @property
    def compact(self) -> bool:
        return self.kind != FULL


def metric_rows(view: MetricTable, models: Sequence[str]) -> list[GridRow]:
    """A metric's table: its regions, then the traffic-weighted overall."""
    fmt = ".3f" if view.quantity == "rate" else ".2f"
    lines = 4 if view.pass_label else 3
    return [
        GridRow(row.region, row.region, tuple(row.cell(m) for m in models), fmt, lines)
        for row in view.rows
    ]


def overall_rows(data: Results) -> list[GridRow]:
    """The "all metrics" table: every metric's overall row (FULL rows are two lines there)."""
    return [
        GridRow(
            view.name,
            view.name,
            tuple(view.rows[-1].cell(m) for m in data.models),
            ".3f" if view.quantity == "rate" else ".2f",
            2,
        )
        for view in data.metrics
        if view.rows
    ]


def compact_cell(cell: Cell | None, kind: str, fmt: str, ascii: bool) -> Text:
    """One line of a MEAN, DELTA or VERDICT table (the incumbent's cell: its mean and "inc")."""
    if cell is None:
        return Text("-", style="dim")
    if cell.decision is None or cell.delta is None:
        text = Text(num(cell.value.mean, fmt))
        text.append(" inc", style="italic")
        return text
    text = Text()
    if kind == MEAN:
        text.append(num(cell.value.mean, fmt) + " ")
    if kind in (MEAN, DELTA):
        text.append(num(cell.delta.mean, fmt, signed=True) + " ")
    verdict = cell.decision.verdict
    text.append((ASCII_GLYPHS if ascii else GLYPHS).get(verdict, "?"), VERDICT_STYLE[verdict])
    return text


def _full_line_width(cell: Cell | None, fmt: str, threshold: float) -> int:
    """The widest line of a FULL cell (its verdict line grows with P(holds)'s digits)."""
    if cell is None or cell.decision is None or cell.delta is None:
        return MIN_FULL_WIDTH
    p = probability_text(cell.decision.probability, threshold)
    verdict = f"{num(cell.delta.mean, fmt, signed=True)} {p} ? {cell.decision.verdict}"
    return max(MIN_FULL_WIDTH, cell_len(verdict))


def content_widths(
    rows: Sequence[GridRow], kind: str, n_models: int, threshold: float, ascii: bool
) -> list[int]:
    """The width each model's column needs for its cells."""
    widths = [1] * n_models
    for row in rows:
        for j, cell in enumerate(row.cells):
            if kind == FULL:
                need = _full_line_width(cell, row.fmt, threshold)
            else:
                need = compact_cell(cell, kind, row.fmt, ascii).cell_len
            widths[j] = max(widths[j], need)
    return widths


def choose_layout(
    rows: Sequence[GridRow],
    models: Sequence[str],
    width: int,
    height: int,
    threshold: float,
    ascii: bool,
    quantities: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
) -> Layout:
    """The richest kind whose columns fit `width` (and whose rows fit `height` for FULL); the
    poorest kind when none does (the table then scrolls sideways, names and incumbent fixed).
    `quantities` ('rate of yes') share the first column of a FULL table."""
    chosen = None
    for kind in kinds:
        labels = [r.label for r in rows] + list(quantities if kind == FULL else ())
        row_width = min(ROW_WIDTH, max([6, *(cell_len(clean(x, False)) for x in labels)]))
        widths = content_widths(rows, kind, len(models), threshold, ascii)
        used = row_width + sum(widths) + CELL_PADDING * (len(models) + 1)
        tall = 1 + _rows_height(rows, kind)
        chosen = (kind, row_width, widths, used)
        if used <= width and (kind != FULL or tall <= height):
            break
    assert chosen is not None
    kind, row_width, widths, used = chosen
    widths = _share_spare(widths, [cell_len(clean(m, False)) for m in models], width - used)
    wrapped = any(cell_len(clean(m, False)) > w for m, w in zip(models, widths))
    header_lines = 2 if wrapped else 1
    return Layout(
        kind, row_width, tuple(widths), header_lines, header_lines + _rows_height(rows, kind)
    )


def _rows_height(rows: Sequence[GridRow], kind: str) -> int:
    """The lines a table's rows take (a FULL metric table adds its two-line axis)."""
    if kind != FULL:
        return len(rows)
    lines = sum(r.lines for r in rows)
    return lines if all(r.lines == 2 for r in rows) else 2 + lines


def _share_spare(widths: list[int], names: list[int], spare: int) -> list[int]:
    """Columns widened one cell at a time, in turn, toward their model's name."""
    widths = list(widths)
    while spare > 0:
        short = [j for j, w in enumerate(widths) if w < names[j]]
        if not short:
            break
        for j in short:
            if spare == 0:
                break
            widths[j] += 1
            spare -= 1
    return widths


def header(name: str, width: int, lines: int) -> Text:
    """A model's column header: its name on up to `lines` lines of `width` (broken after a
    `-`, `_`, `/`, `.` or space where one falls in the line), cut with an ellipsis only when
    longer still."""
    rest, parts = clean(name, False), list[str]()
    while rest and len(parts) < lines:
        if len(rest) <= width or len(parts) == lines - 1:
            parts.append(rest)
            break
        cut = max((k + 1 for k, ch in enumerate(rest[:width]) if ch in "-_/. "), default=width)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if parts and len(parts[-1]) > width:
        parts[-1] = parts[-1][: max(0, width - 1)] + "…"
    return Text("\n".join(parts or [""]))


def legend(kind: str, ascii: bool) -> str:
    """What a table's cells hold, in one line of at most 80 cells."""
    verdicts = "✔ ready ✘ not ready ? undecided"
    text = {
        FULL: "cells: mean [90% interval] / bar (shared axis) / delta, P(holds), verdict",
        MEAN: f"cells: mean, delta, verdict ({verdicts}) · enter: the cell",
        DELTA: f"cells: delta, verdict ({verdicts}) · enter: the cell",
        VERDICT: f"cells: verdict ({verdicts}) · enter: the cell in full",
    }[kind]
    return text.replace("✔", "+").replace("✘", "x") if ascii else text
