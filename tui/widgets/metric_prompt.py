"""The rater's side of a response: every metric, its keys with level labels, its guideline."""

from __future__ import annotations

from rich.text import Text

from changeover.core.types import Metric
from changeover.tui.widgets.safe_text import clean


def metric_keys(metric: Metric) -> tuple[str, ...]:
    """The spec's keys for a metric, or the defaults: n/y for yes/no, 1..L for a scale."""
    if len(metric.keys) == metric.n_levels:
        return tuple(metric.keys)
    if metric.is_binary and metric.levels[0].casefold() == "no":
        return ("n", "y")
    return tuple(str(i + 1) for i in range(metric.n_levels))


def key_legend(metric: Metric) -> Text:
    """`[n] no  [y] yes`: each key beside the level it gives."""
    out = Text()
    for key, label in zip(metric_keys(metric), metric.levels):
        out.append(f"[{key}]", style="bold")
        out.append(f" {clean(label, False)}  ")
    return out


def prompt_text(metrics: tuple[Metric, ...], answers: dict[str, int], current: int | None) -> Text:
    """One line per metric (answered, current or to come); the guideline is on `?`, so the
    response keeps the room."""
    out = Text()
    for k, m in enumerate(metrics):
        if m.name in answers:
            out.append("✓ ", style="bold")
            out.append(f"{clean(m.name, False)}: {clean(m.levels[answers[m.name]], False)}\n")
        elif k == current:
            out.append("▶ ", style="bold")
            out.append(f"{clean(m.name, False)}  ", style="bold")
            out.append_text(key_legend(m))
            if m.guideline:
                out.append("? guideline", style="dim")
            out.append("\n")
        else:
            out.append(f"  {clean(m.name, False)}\n", style="dim")
    out.rstrip()
    return out
