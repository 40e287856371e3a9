"""Text from models, shown as text: never Rich markup, never a terminal escape sequence.

Every string that came from an imported file (questions, responses, rationales, rater and
model names) goes through `safe_text` (a `rich.text.Text`, so `[bold]` stays literal) and
`clean`, which swaps control characters for visible stand-ins ("\\x1b" -> "␛").
"""

from __future__ import annotations

from rich.text import Text

from changeover.core.text import inert


def clean(text: object, newlines: bool = True) -> str:
    """`text` with every control character except newline and tab made visible (core.text.inert:
    the one rule every face uses). With `newlines=False` (table cells, one-line previews)
    newlines and tabs become spaces."""
    return inert(text, newlines=newlines)


DISPLAY_LIMIT = 20_000  # characters of one text laid out on screen (a 1 MB response stays usable)


def clip(text: object, limit: int = DISPLAY_LIMIT) -> str:
    """`text` cut to `limit` characters for display, with a marker saying how much is hidden
    (`changeover export --what responses` has the whole text)."""
    s = "" if text is None else str(text)
    if len(s) <= limit:
        return s
    return (
        s[:limit] + f"\n\n[… {len(s) - limit:,} more characters not shown "
        f"({len(s):,} in all); export the responses to read them]"
    )


def safe_text(text: object, style: str = "", newlines: bool = True) -> Text:
    """A Rich `Text` holding `text` literally (markup and escapes do nothing)."""
    return Text(clean(text, newlines=newlines), style=style)


def one_line(text: object, width: int) -> Text:
    """A single-line preview of at most `width` cells, for table cells."""
    s = clean(text, newlines=False)
    if len(s) > width:
        s = s[: max(0, width - 1)] + "…"
    return Text(s)
