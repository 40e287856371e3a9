"""How the results screen lays out the results value: the per-metric tables (full, with interval
bars, or compact, one line per region, when the models do not fit the width), the all-metrics
table, the candidates' lines and a cell's details. Formatting only: every number comes from
core/results.py."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from changeover.core.results import Cell, MetricTable, Results, probability_text
from changeover.tui.widgets.intervals import (
    ASCII_GLYPHS,
    GLYPHS,
    VERDICT_STYLE,
    Axis,
    axis_cell,
    model_cell,
    num,
    summary_cell,
    verdict_text,
)
from changeover.tui.widgets.safe_text import clean, one_line, safe_text

BAR_WIDTH = 23
COLUMN_WIDTH = BAR_WIDTH  # a full cell: interval, bar, delta and verdict
COMPACT_WIDTH = 15  # a compact cell: mean, delta and the verdict's glyph
ROW_WIDTH = 14  # the first (region / metric) column, fixed while scrolling sideways
CELL_PADDING = 2  # DataTable pads each cell by one on either side


def table_axis(table: MetricTable, width: int = BAR_WIDTH) -> Axis:
    """One axis for every interval in the table."""
    return Axis.spanning(
        ((c.value.lower, c.value.upper) for row in table.rows for c in row.cells), width=width
    )


def fits_full(width: int, models: int) -> bool:
    """Whether every model's full column (with its bar) fits the screen's width."""
    return ROW_WIDTH + CELL_PADDING + models * (COLUMN_WIDTH + CELL_PADDING) <= width


def _row_column(table: DataTable, view: MetricTable) -> None:
    quantity = view.quantity_label
    width = min(ROW_WIDTH, max(len(quantity), *(len(r.region) for r in view.rows)))
    table.add_column(Text("region"), key="__row__", width=width)


def fill_metric(
    table: DataTable,
    view: MetricTable | None,
    data: Results | None,
    threshold: float,
    ascii: bool,
    compact: bool,
) -> None:
    """One metric: regions and overall as rows, models (incumbent first) as columns."""
    table.fixed_rows = 0  # an empty table with a fixed row fails to render
    table.clear(columns=True)
    if view is None or data is None:
        table.add_column(Text("results"), key="none")
        table.add_row(Text("no results for this metric"))
        return
    _row_column(table, view)
    if compact:
        for model in data.models:
            table.add_column(one_line(model, COMPACT_WIDTH), width=COMPACT_WIDTH, key=model)
        fmt = ".3f" if view.quantity == "rate" else ".2f"
        for row in view.rows:
            cells = [compact_cell(row.cell(m), threshold, ascii, fmt) for m in data.models]
            table.add_row(safe_text(row.region), *cells, height=1, key=row.region)
        return
    axis = table_axis(view)
    for model in data.models:
        table.add_column(one_line(model, COLUMN_WIDTH), width=COLUMN_WIDTH, key=model)
    table.add_row(
        Text(view.quantity_label, style="dim"),
        *[axis_cell(axis, ascii) for _ in data.models],
        height=2,
        key="__axis__",
    )
    for row in view.rows:
        cells = [
            model_cell(row.cell(m), axis, threshold, ascii, view.pass_label) for m in data.models
        ]
        height = 4 if view.pass_label else 3
        table.add_row(safe_text(row.region), *cells, height=height, key=row.region)
    table.fixed_rows = 1  # the axis stays in view while scrolling down


def compact_cell(cell: Cell | None, threshold: float, ascii: bool, fmt: str) -> Text:
    """One line: the mean, then the difference to the incumbent and the verdict's glyph (the
    incumbent's cell says "inc"); the interval and P(holds) are in the cell's details."""
    if cell is None:
        return Text("-", style="dim")
    text = Text(num(cell.value.mean, fmt))
    if cell.decision is None or cell.delta is None:
        text.append(" inc", style="italic")
        return text
    text.append(f" {num(cell.delta.mean, fmt, signed=True)} ")
    verdict = cell.decision.verdict
    text.append((ASCII_GLYPHS if ascii else GLYPHS).get(verdict, "?"), VERDICT_STYLE[verdict])
    return text


def fill_all(table: DataTable, data: Results | None, threshold: float, ascii: bool) -> None:
    """Every metric's overall row, models side by side."""
    table.clear(columns=True)
    if data is None or not data.metrics:
        table.add_column(Text("results"), key="none")
        table.add_row(Text("no results"))
        return
    width = max(max(len(t.name), len(t.quantity_label)) for t in data.metrics)
    table.add_column(Text("overall"), key="__row__", width=min(ROW_WIDTH, width))
    for model in data.models:
        table.add_column(one_line(model, COLUMN_WIDTH), width=COLUMN_WIDTH, key=model)
    for view in data.metrics:
        overall = view.rows[-1]
        cells = [summary_cell(overall.cell(m), threshold, ascii) for m in data.models]
        name = safe_text(view.name)
        name.append("\n" + view.quantity_label, style="dim")
        table.add_row(name, *cells, height=2, key=view.name)


def candidate_lines(
    data: Results | None, threshold: float, ascii: bool, width: int | None = None
) -> Text:
    """With a `width`, one line per candidate, cut at that width: verdict, name, P(all hold)
    and the gist (`d` shows the rest); without, the whole reason and every labels-needed
    forecast."""
    folded = width is not None
    lines = []
    for c in data.candidates if data is not None else ():
        text = Text()
        text.append_text(verdict_text(c.verdict, ascii))
        text.append(" ")
        text.append_text(one_line(c.candidate, 30))
        text.append(f"  P(all hold) {probability_text(c.joint_probability, threshold)}")
        forecasts = list(c.forecasts)
        if folded:
            if c.verdict == "undecided" and forecasts:
                text.append(f" · {_needed_gist(forecasts)} · d: details", style="dim")
            elif c.summary:
                text.append(f" · {clean(c.summary, False)}", style="dim")
        else:
            if c.summary:  # names regions and metrics from the user's files: data, not markup
                text.append(f" · {clean(c.summary, False)}", style="dim")
            if c.verdict == "undecided" and forecasts:
                needed = "; ".join(clean(f.text, False) for f in forecasts)
                text.append("\n    labels needed: " + needed)
        if width is not None:
            text.truncate(width, overflow="ellipsis")
        lines.append(text)
    return Text("\n").join(lines)


def _needed_gist(forecasts: list) -> str:
    settle = [f for f in forecasts if not f.capped]
    if not settle:
        return f"{len(forecasts)} cell(s) open, none settled by {forecasts[0].max_labels} labels"
    return f"{len(forecasts)} cell(s) open; the nearest settles with about {min(f.total for f in settle)} labels"


def details_text(data: Results, threshold: float, ascii: bool) -> Text:
    """Everything the folded lines leave out: each candidate's reason and labels needed."""
    text = Text()
    for c in data.candidates:
        text.append_text(verdict_text(c.verdict, ascii))
        text.append(" ")
        text.append_text(safe_text(c.candidate, style="bold"))
        text.append(f"  P(all hold) {probability_text(c.joint_probability, threshold)}\n")
        text.append(f"  {clean(c.summary, False)}\n")
        for f in c.forecasts:
            text.append(f"  labels needed, {clean(f.text, False)}\n")
        text.append("\n")
    text.rstrip()
    return text


def cell_details(data: Results, metric: str, region: str, model: str, threshold: float) -> Text:
    """One cell in full: the mean with its interval, the difference to the incumbent, P(holds),
    the verdict with its reason, and the labels in the cell."""
    cell = data.cell(metric, region, model)
    text = Text()
    text.append_text(safe_text(f"{model} · {metric} · {region}", style="bold"))
    if cell is None:
        text.append("\nno data")
        return text
    v = cell.value
    text.append(f"\nmean {num(v.mean)} [{num(v.lower)}, {num(v.upper)}] (90% interval)")
    if cell.pass_share is not None:
        ps = cell.pass_share
        text.append(
            f"\nshare at or above the pass level {num(ps.mean)} [{num(ps.lower)}, {num(ps.upper)}]"
        )
    if cell.delta is not None and cell.decision is not None:
        d = cell.delta
        text.append(
            f"\ndifference to {data.incumbent} {num(d.mean, signed=True)} "
            f"[{num(d.lower, signed=True)}, {num(d.upper, signed=True)}]"
        )
        text.append(f"\nP(holds) {probability_text(cell.decision.probability, threshold)} · ")
        text.append(f"{cell.decision.verdict}: {clean(cell.decision.reason, False)}")
    else:
        text.append("\nthe incumbent")
    labels = "?" if cell.labels is None else str(cell.labels)
    text.append(f"\nhuman-labelled responses in the cell: {labels}")
    if cell.ties:
        text.append(f" (and {cell.ties} whose raters tied: unlabelled until a rating breaks it)")
    if cell.open:
        text.append(
            f"\nopen-labelled responses left out of the fit: {cell.open} (chosen by a person, "
            "not drawn at random)"
        )
    return text
