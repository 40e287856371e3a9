"""How the results screen lays out the results value: the per-metric tables (full, with interval
bars, or compact, one line per region, when the models do not fit the width), the all-metrics
table, the candidates' lines and a cell's details. Formatting only: every number comes from
core/results.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

from changeover.core.results import MetricTable, Results, probability_text
from changeover.core.types import Verdict
from changeover.tui.screens.results_layout import (
    MIN_FULL_WIDTH,
    Layout,
    compact_cell,
    header,
    metric_rows,
    overall_rows,
)
from changeover.tui.widgets.intervals import (
    Axis,
    axis_cell,
    model_cell,
    num,
    summary_cell,
    verdict_text,
)
from changeover.tui.widgets.safe_text import clean, one_line, safe_text

BAR_WIDTH = MIN_FULL_WIDTH


def table_axis(table: MetricTable, width: int = BAR_WIDTH) -> Axis:
    """One axis for every interval in the table."""
    return Axis.spanning(
        ((c.value.lower, c.value.upper) for row in table.rows for c in row.cells), width=width
    )


@contextmanager
def kept_cursor(table: DataTable) -> Iterator[None]:
    """Refill a table with the cursor where it was (a reload after a label must not send it
    back to the first cell)."""
    where = table.cursor_coordinate
    yield
    if where.row < table.row_count and where.column < len(table.columns):
        table.cursor_coordinate = where


def _columns(table: DataTable, models: tuple[str, ...], layout: Layout, first: str) -> None:
    table.header_height = layout.header_lines
    table.add_column(Text(first), key="__row__", width=layout.row_width)
    for model, width in zip(models, layout.widths):
        table.add_column(header(model, width, layout.header_lines), width=width, key=model)


def _empty(table: DataTable, what: str) -> None:
    table.header_height = 1
    table.add_column(Text("results"), key="none")
    table.add_row(Text(what))


def fill_metric(
    table: DataTable,
    view: MetricTable | None,
    data: Results | None,
    threshold: float,
    ascii: bool,
    layout: Layout | None,
) -> None:
    """One metric: regions and overall as rows, models (incumbent first) as columns."""
    table.fixed_rows = 0  # an empty table with a fixed row fails to render
    table.clear(columns=True)
    if view is None or data is None or layout is None:
        _empty(table, "no results for this metric")
        return
    _columns(table, data.models, layout, "region")
    rows = metric_rows(view, data.models)
    if layout.compact:
        for row in rows:
            cells = [compact_cell(c, layout.kind, row.fmt, ascii) for c in row.cells]
            table.add_row(safe_text(row.label), *cells, height=1, key=row.key)
        return
    axis = table_axis(view)
    table.add_row(
        Text(view.quantity_label, style="dim"),
        *[axis_cell(axis, ascii) for _ in data.models],
        height=2,
        key="__axis__",
    )
    for row in rows:
        cells = [model_cell(c, axis, threshold, ascii, view.pass_label) for c in row.cells]
        table.add_row(safe_text(row.label), *cells, height=row.lines, key=row.key)
    table.fixed_rows = 1  # the axis stays in view while scrolling down


def fill_all(
    table: DataTable, data: Results | None, threshold: float, ascii: bool, layout: Layout | None
) -> None:
    """Every metric's overall row, models side by side."""
    table.clear(columns=True)
    if data is None or not data.metrics or layout is None:
        _empty(table, "no results")
        return
    _columns(table, data.models, layout, "overall")
    for row, view in zip(overall_rows(data), data.metrics):
        if layout.compact:
            cells = [compact_cell(c, layout.kind, row.fmt, ascii) for c in row.cells]
            table.add_row(safe_text(row.label), *cells, height=1, key=row.key)
            continue
        cells = [summary_cell(c, threshold, ascii) for c in row.cells]
        name = safe_text(view.name)
        name.append("\n" + view.quantity_label, style="dim")
        table.add_row(name, *cells, height=2, key=row.key)


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
            if c.verdict == Verdict.UNDECIDED and forecasts:
                text.append(f" · {_needed_gist(forecasts)} · d: details", style="dim")
            elif c.summary:
                text.append(f" · {clean(c.summary, False)}", style="dim")
        else:
            if c.summary:  # names regions and metrics from the user's files: data, not markup
                text.append(f" · {clean(c.summary, False)}", style="dim")
            if c.verdict == Verdict.UNDECIDED and forecasts:
                needed = "; ".join(clean(f.text, False) for f in forecasts)
                text.append("\n    labels needed: " + needed)
        if width is not None:
            text.truncate(width, overflow="ellipsis")
        lines.append(text)
    return Text("\n").join(lines)


def wrapped_lines(text: Text, width: int) -> int:
    """How many lines `text` takes wrapped at `width` cells."""
    return sum(max(1, -(-cell_len(line) // max(width, 1))) for line in text.plain.split("\n"))


def _needed_gist(forecasts: list) -> str:
    settle = [f for f in forecasts if not f.capped]
    if not settle:
        return f"{len(forecasts)} cell(s) open, none settled by {forecasts[0].max_labels} labels"
    n = min(f.total for f in settle)
    return (
        f"{len(forecasts)} cell(s) open; the nearest settles with about {n} label{'s' * (n != 1)}"
    )


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
