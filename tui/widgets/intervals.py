"""Interval bars on one axis shared by a whole table, and verdict glyphs that do not need colour.

Pure text: a bar is a string like ``   ├──●───┤      `` (or ``   [--o---]      `` in ASCII), so
it reads the same with NO_COLOR. The axis is built once per table from every interval in it,
so bars in different cells can be compared by eye.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text

from changeover.core.results import Cell, probability_text
from changeover.core.types import Verdict

# the screens import prefers_ascii from here
from changeover.tui.widgets.ascii import prefers_ascii as prefers_ascii

GLYPHS = {Verdict.READY: "✔", Verdict.NOT_READY: "✘", Verdict.UNDECIDED: "?"}
ASCII_GLYPHS = {Verdict.READY: "+", Verdict.NOT_READY: "x", Verdict.UNDECIDED: "?"}
# Styles are theme-independent attributes only; colour comes from app.tcss where classes apply.
VERDICT_STYLE = {
    Verdict.READY: "bold",
    Verdict.NOT_READY: "bold reverse",
    Verdict.UNDECIDED: "italic",
}


def verdict_label(verdict: Verdict | None, ascii: bool = False) -> str:
    """'✔ ready', '✘ not ready', '? undecided' (glyph plus word: never colour alone)."""
    if verdict is None:
        return ""
    glyph = (ASCII_GLYPHS if ascii else GLYPHS).get(verdict, "·")
    return f"{glyph} {verdict}"


def verdict_text(verdict: Verdict | None, ascii: bool = False) -> Text:
    """The verdict label as Rich Text with a non-colour emphasis (bold / reverse / italic)."""
    return Text(
        verdict_label(verdict, ascii),
        style="" if verdict is None else VERDICT_STYLE.get(verdict, ""),
    )


def _nice_step(span: float, max_ticks: int) -> float:
    raw = span / max(max_ticks - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if mult * mag >= raw:
            return mult * mag
    return 10 * mag


@dataclass(frozen=True)
class Axis:
    """A linear axis from lo to hi drawn in `width` character cells."""

    lo: float
    hi: float
    width: int = 20
    step: float | None = None  # distance between ticks (None: chosen from the span)

    @classmethod
    def spanning(
        cls, intervals: Iterable[tuple[float, float]], width: int = 20, max_ticks: int = 5
    ) -> Axis:
        """The smallest 'nice' axis (ends on tick values) holding every (lo, hi) interval."""
        los, his = [], []
        for lo, hi in intervals:
            if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
                continue
            los.append(min(lo, hi))
            his.append(max(lo, hi))
        if not los:
            return cls(0.0, 1.0, width, 0.5)
        lo, hi = min(los), max(his)
        if hi - lo < 1e-3:  # below what the table prints: widen to a readable span
            mid = (lo + hi) / 2
            lo, hi = mid - 0.005, mid + 0.005
        step = _nice_step(hi - lo, max_ticks)
        lo = round(math.floor(lo / step + 1e-9) * step, 12)
        hi = round(math.ceil(hi / step - 1e-9) * step, 12)
        return cls(lo, hi, width, step)

    def pos(self, x: float) -> int:
        """Character cell of value x (clamped to the axis)."""
        frac = (x - self.lo) / (self.hi - self.lo)
        return min(self.width - 1, max(0, round(frac * (self.width - 1))))

    def _step(self) -> float:
        return self.step or _nice_step(self.hi - self.lo, 5)

    def ticks(self) -> list[float]:
        step = self._step()
        n = int(math.floor((self.hi - self.lo) / step + 1e-9))
        return [round(self.lo + k * step, 12) for k in range(n + 1)]

    def bar(self, lo: float, mean: float, hi: float, ascii: bool = False) -> str:
        """The interval lo..hi with the mean marked, on this axis, exactly `width` cells wide."""
        cells = [" "] * self.width
        if any(v is None or not math.isfinite(v) for v in (lo, mean, hi)):
            return "".join(cells)
        a, m, b = self.pos(lo), self.pos(mean), self.pos(hi)
        line, left, right, dot = ("-", "[", "]", "o") if ascii else ("─", "├", "┤", "●")
        for k in range(a, b + 1):
            cells[k] = line
        if b > a:
            cells[a], cells[b] = left, right
        cells[m] = dot
        return "".join(cells)

    def ruler(self, ascii: bool = False) -> str:
        """The axis line with a mark at each tick."""
        line, mark = ("-", "+") if ascii else ("─", "┼")
        cells = [line] * self.width
        for t in self.ticks():
            cells[self.pos(t)] = mark
        return "".join(cells)

    def labels(self, fmt: str | None = None) -> str:
        """Tick values under their marks (ends flush with the axis); when they do not all fit,
        every 2nd (3rd, ...) tick, keeping both ends."""
        fmt = fmt or self.tick_format()
        ticks = self.ticks()
        last = len(ticks) - 1
        for stride in range(1, max(last, 1) + 1):
            if last % stride:
                continue
            line = self._place([(k, ticks[k]) for k in range(0, last + 1, stride)], last, fmt)
            if line is not None:
                return line
        return self._place([(0, ticks[0])], last, fmt) or " " * self.width

    def _place(self, picked: list[tuple[int, float]], last: int, fmt: str) -> str | None:
        cells = [" "] * self.width
        for k, t in picked:
            label = format(t, fmt)
            if len(label) > self.width:
                return None
            start = (
                0
                if k == 0
                else (self.width - len(label) if k == last else self.pos(t) - len(label) // 2)
            )
            start = max(0, min(start, self.width - len(label)))
            if any(c != " " for c in cells[max(0, start - 1) : start + len(label) + 1]):
                return None  # labels would touch
            cells[start : start + len(label)] = label
        return "".join(cells)

    def tick_format(self) -> str:
        step = self._step()
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        if step * 10**decimals % 1 > 1e-9:  # e.g. 0.25
            decimals += 1
        return f".{decimals}f"


# ---- table cells (pure text, so they read the same with NO_COLOR) -----------------------


def num(x: float | None, fmt: str = ".3f", signed: bool = False) -> str:
    """A number for a table cell; "-" for None or NaN."""
    if x is None or x != x:  # None or NaN
        return "-"
    return format(x, ("+" if signed else "") + fmt)


def model_cell(
    cell: Cell | None,
    axis: Axis,
    threshold: float,
    ascii: bool = False,
    pass_label: str | None = None,
) -> Text:
    """Three lines: mean and 90% interval; the bar on the shared axis; delta, P(holds) and the
    verdict (or "incumbent"). Scales with a pass level get a fourth: the share at or above it."""
    if cell is None:
        return Text("no data", style="dim")
    fmt = ".3f" if axis.hi <= 1.0 else ".2f"
    v = cell.value
    text = Text(f"{num(v.mean, fmt)} [{num(v.lower, fmt)},{num(v.upper, fmt)}]\n")
    text.append(axis.bar(v.lower, v.mean, v.upper, ascii=ascii) + "\n")
    _verdict_line(text, cell, threshold, fmt, ascii)
    if pass_label and cell.pass_share is not None:
        ps = cell.pass_share
        text.append(f"\n{pass_label} {num(ps.mean)} [{num(ps.lower)},{num(ps.upper)}]", style="dim")
    return text


def _verdict_line(text: Text, cell: Cell, threshold: float, fmt: str, ascii: bool) -> None:
    if cell.decision is None or cell.delta is None:
        text.append("incumbent", style="italic")
        return
    p = probability_text(cell.decision.probability, threshold)
    text.append(f"{num(cell.delta.mean, fmt, signed=True)} {p} ")
    text.append_text(verdict_text(cell.decision.verdict, ascii))


def axis_cell(axis: Axis, ascii: bool = False) -> Text:
    return Text(axis.ruler(ascii) + "\n" + axis.labels(), style="dim")


def summary_cell(cell: Cell | None, threshold: float, ascii: bool = False) -> Text:
    """The all-metrics view: overall mean and interval; delta, P(holds) and verdict."""
    if cell is None:
        return Text("no data", style="dim")
    v = cell.value
    text = Text(f"{num(v.mean)} [{num(v.lower)},{num(v.upper)}]\n")
    _verdict_line(text, cell, threshold, ".3f", ascii)
    return text
