"""One response as Rich text: question, reference, response, and (when not blind) the judge's
verdicts with rationales and the human labels with their raters. Everything from the
workspace goes through `safe_text`, so nothing in it is read as markup or escapes."""

from __future__ import annotations

from rich.text import Text

from changeover.core.types import EvalSet, Rating, ResponseView
from changeover.tui.widgets.safe_text import clean, clip


def _section(out: Text, title: str, body: object) -> None:
    if out:
        out.append("\n\n")
    out.append(f"{title}\n", style="bold")
    out.append(clean(body))


def level_label(es: EvalSet, metric: str, value: int | None) -> str:
    if value is None:
        return "missing"
    try:
        levels = es.metric(metric).levels
    except KeyError:
        return str(value)
    return levels[value] if 0 <= value < len(levels) else str(value)


def context_line(label: str, text: object, region: str | None = None) -> Text:
    """`Q  North America · How do I ...` on one line, cut with an ellipsis where it does not fit
    (the rate screen's `e` shows it whole)."""
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    out.append(f"{label:<4}", style="bold")
    if region is not None:
        out.append(f"{clean(region, False)} · ", style="dim")
    out.append(clean(text, newlines=False))
    return out


def response_text(
    view: ResponseView, es: EvalSet, blind: bool = True, context: bool = True
) -> Text:
    """The response pane's content. Blind: nothing that names the model or what others said.
    Without `context` no item line, question or reference (the rate screen shows them above)."""
    out = Text()
    item = view.item
    if context or not blind:
        header = [f"item {clean(item.external_id, False)}", f"region {clean(item.region, False)}"]
        if not blind:
            header.append(f"model {clean(view.response.model, False)}")
        out.append(" · ".join(header if context else header[2:]), style="dim")
    if context:
        _section(out, "Question", item.question)
        if item.reference:
            _section(out, "Reference answer", item.reference)
        _section(out, "Response", clip(view.response.text))
    else:
        out.append("\n\n" if out else "")
        out.append(clean(clip(view.response.text)))
    if blind:
        return out
    if view.judgments:
        out.append("\n\nJudge verdicts\n", style="bold")
        for j in view.judgments:
            out.append(
                f"  {clean(j.metric, False)}: {clean(level_label(es, j.metric, j.value), False)}"
            )
            if j.value is None and j.raw is not None:
                out.append(f" (raw {clean(j.raw, False)})", style="dim")
            if j.rationale:
                out.append(f" · {clean(j.rationale)}", style="dim")
            out.append("\n")
    out.append("\nHuman labels\n" if view.judgments else "\n\nHuman labels\n", style="bold")
    if not view.ratings:
        out.append("  none yet\n", style="dim")
    for r in view.ratings:
        out.append(
            f"  {clean(r.metric, False)}: {clean(level_label(es, r.metric, r.value), False)}"
            f" by {clean(r.rater, False)}{provenance(r)}\n"
        )
    return out


def provenance(r: Rating) -> str:
    """How a label came to be, beside its rater: " (open)" only for a label left out of the fit
    because a person chose its response (browse triage, or imported with --open), the word the
    fit's warnings and the README use; " (imported)" for one from a file."""
    words = [w for w, yes in (("imported", r.imported), ("open", r.open)) if yes]
    return f" ({', '.join(words)})" if words else ""
