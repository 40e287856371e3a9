"""Calibration: how far the judge can be trusted, per metric, model and region.

Per cell: the judge-versus-human count table, Cohen's kappa, the judge's estimated sensitivity
and specificity (or, for scales, P(judge = human level)) with 90% intervals, and warnings where
the judge looks near random or a cell has few labels. Above the table: agreement between
human raters and the fit's diagnostics. Everything comes from the workspace's results value.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from changeover.core.judge.calibration import CELL_MINIMUM, CalibrationCell
from changeover.core.model.posterior import Interval
from changeover.core.results import Results, failure_kind
from changeover.core.types import Diagnostics, Metric, Source
from changeover.tui.screens.results_view import RESULTS_BINDINGS, ResultsView
from changeover.tui.widgets.safe_text import one_line

COUNT_WIDTH = 18
IV_WIDTH = 19
WARN_WIDTH = 32


def _num(x, fmt: str = ".2f") -> str:
    if x is None or x != x:
        return "-"
    return format(x, fmt)


def interval_text(iv: Interval | None) -> str:
    return "-" if iv is None else f"{iv.mean:.2f} [{iv.lower:.2f},{iv.upper:.2f}]"


def count_table(table: tuple[tuple[int, ...], ...] | None, levels: tuple[str, ...]) -> Text:
    """Human levels as rows, judge levels as columns (labelled responses)."""
    if table is None:
        return Text("-")
    width = max(3, *(len(str(int(x))) for row in table for x in row))
    short = [lv[:width] for lv in levels]
    lines = ["h\\j " + " ".join(s.rjust(width) for s in short)]
    for h, row in enumerate(table):
        lines.append(short[h][:3].ljust(3) + " " + " ".join(str(int(x)).rjust(width) for x in row))
    return Text("\n".join(lines))


TUI_HINTS = {  # what to do about a failed fit, by core.results.failure_kind
    "quick": "a quick fit is too short to pass them: f on Results runs a full fit",
    "divergences": (
        "f on Results refits with the next seed; changeover fit --target-accept 0.98 "
        "takes smaller steps (slower, fewer divergences)"
    ),
    "mixing": "f on Results refits with the next seed",
}


def diagnostics_text(diagnostics: Diagnostics | None, quick: bool = False) -> Text:
    """R-hat, ESS and divergences as stored with the fit (not recomputed here); for a failed
    fit also what to do in the app (core.results.refit_hint says it for the command line)."""
    text = Text()
    if diagnostics is None:
        text.append(
            "no sampler diagnostics (instant posterior: exact, nothing to check)", style="dim"
        )
        return text
    text.append(
        f"R-hat max {_num(diagnostics.max_rhat, '.3f')} · ESS bulk min "
        f"{_num(diagnostics.min_ess_bulk, '.0f')} · tail min "
        f"{_num(diagnostics.min_ess_tail, '.0f')} · divergences {diagnostics.divergences}"
    )
    if diagnostics.ok:
        text.append(" · ✔ ok", style="bold")
    else:
        text.append(" · ✘ FAILED (R-hat <= 1.01, ESS >= 400, no divergences)", style="bold reverse")
        text.append("\n" + TUI_HINTS[failure_kind(diagnostics, quick)])
    return text


def agreement_text(agreement) -> Text:
    """Krippendorff's alpha and pairwise kappas between human raters of one metric."""
    text = Text("raters: ")
    if agreement is None or not agreement.raters:
        text.append("no human labels yet", style="dim")
        return text
    text.append_text(one_line(", ".join(agreement.raters), 60))
    if len(agreement.raters) < 2 or agreement.units == 0:
        text.append(" · no response rated by two raters: agreement unknown", style="dim")
        return text
    kind = "nominal" if agreement.weights == "none" else "ordinal"
    text.append(
        f" · Krippendorff's alpha {_num(agreement.alpha)} ({kind}, {agreement.units} responses)"
    )
    for pair in agreement.pairs:
        text.append("\n  kappa ")
        text.append_text(one_line(pair.rater_a, 20))
        text.append(" / ")
        text.append_text(one_line(pair.rater_b, 20))
        weighted = "" if agreement.weights == "none" else f" ({agreement.weights})"
        text.append(f": {_num(pair.kappa)}{weighted} on {pair.shared} shared")
    return text


class CalibrationScreen(ResultsView):
    """The judge against the humans, cell by cell, with the fit's diagnostics."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back"),
        *RESULTS_BINDINGS,
    ]

    DEFAULT_CSS = """
    CalibrationScreen { layout: vertical; }
    CalibrationScreen #calibration-title, CalibrationScreen #calibration-status { height: auto; }
    CalibrationScreen #calibration-tabs { height: 1fr; }
    CalibrationScreen #calibration-tabs ContentSwitcher { height: 1fr; }
    CalibrationScreen #calibration-tabs TabPane { height: 1fr; padding: 0; layout: vertical; }
    CalibrationScreen .calibration-head { height: auto; max-height: 6; }
    CalibrationScreen #calibration-tabs DataTable { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        title = Text("Calibration · ", style="bold")
        title.append_text(one_line(self.eval_set.name, 60))
        yield Static(title, id="calibration-title")
        yield Static(Text("loading...", style="dim"), id="calibration-status")
        with TabbedContent(id="calibration-tabs"):
            for k, metric in enumerate(self.eval_set.metrics):
                with TabPane(Content(metric.name), id=f"calibration-metric-{k}"):
                    yield Static("", id=f"calibration-head-{k}", classes="calibration-head")
                    yield DataTable(
                        id=f"calibration-table-{k}",
                        fixed_columns=2,
                        cursor_type="row",
                        show_row_labels=False,
                    )
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        if self.eval_set.metrics:
            self.query_one("#calibration-table-0", DataTable).focus()

    def show(self, data: Results | None, error: str) -> None:
        self.data = data
        if data is None:
            self.query_one("#calibration-status", Static).update(Text(error, style="bold"))
            return
        fit = data.fit
        status = Text()
        if data.source != Source.INSTANT and fit is not None:
            status.append(f"fit #{fit.id} of {fit.created_at[:16].replace('T', ' ')}")
            if data.stale:
                status.append(" · ")
                status.append(
                    f"stale: {data.labels_since} label(s) since; counts below are today's",
                    style="bold reverse",
                )
        else:
            status.append("instant posterior (unpooled, conjugate): no full fit yet", style="bold")
        status.append(
            f" · warn at kappa < 0.2, se+sp-1 reaching 0, < {CELL_MINIMUM} labels", style="dim"
        )
        self.query_one("#calibration-status", Static).update(status)
        quick = fit is not None and fit.settings.is_quick
        for k, metric in enumerate(self.eval_set.metrics):
            d = data.diagnostics
            head = diagnostics_text(None if d is None else d.for_metric(metric.name), quick)
            head.append("\n")
            head.append_text(agreement_text(data.agreement.get(metric.name)))
            self.query_one(f"#calibration-head-{k}", Static).update(head)
            self._fill(
                self.query_one(f"#calibration-table-{k}", DataTable),
                metric,
                data.calibration_of(metric.name),
            )

    def _fill(self, table: DataTable, metric: Metric, cells: tuple[CalibrationCell, ...]) -> None:
        table.clear(columns=True)
        binary = metric.is_binary
        table.add_column(Text("model"), key="model", width=14)
        table.add_column(Text("region"), key="region", width=8)
        table.add_column(Text("labels"), key="labels", width=6)
        table.add_column(
            Text("human x judge"), key="counts", width=max(COUNT_WIDTH, 4 + 5 * metric.n_levels)
        )
        weights = "" if binary else " (quad.)"
        table.add_column(Text("kappa" + weights), key="kappa", width=8 if binary else 13)
        table.add_column(Text("warnings"), key="warnings", width=WARN_WIDTH)
        if binary:
            table.add_column(Text("sensitivity"), key="se", width=IV_WIDTH)
            table.add_column(Text("specificity"), key="sp", width=IV_WIDTH)
            table.add_column(Text("se+sp-1"), key="youden", width=IV_WIDTH)
        else:
            table.add_column(Text("P(judge = human level)"), key="exact", width=IV_WIDTH + 4)
        if not cells:
            return
        for cell in cells:
            counts = count_table(cell.counts, metric.levels)
            warn = (
                Text("\n".join(f"! {w}" for w in cell.warnings), style="bold")
                if cell.warnings
                else Text("-", style="dim")
            )
            row = [
                one_line(cell.model, 14),
                one_line(cell.region, 8),
                Text(str(cell.labels)),
                counts,
                Text(_num(cell.kappa)),
                warn,
            ]
            if binary:
                row += [
                    Text(interval_text(cell.sensitivity)),
                    Text(interval_text(cell.specificity)),
                    Text(interval_text(cell.youden)),
                ]
            else:
                lines = [
                    f"{metric.levels[h][:4]:>4} {interval_text(iv)}"
                    for h, iv in enumerate(cell.exact)
                ]
                row.append(Text("\n".join(lines) or "-"))
            height = max(metric.n_levels + 1, len(cell.warnings), 1)
            table.add_row(*row, height=height, key=f"{cell.model}\x00{cell.region}")
