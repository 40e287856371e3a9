"""Text from models, shown as text: never Rich markup, never a terminal escape sequence.

Every string that came from an imported file (questions, responses, rationales, rater and
model names) goes through `safe_text` (a `rich.text.Text`, so `[bold]` stays literal) and
`clean`, which swaps control characters for visible stand-ins ("\\x1b" -> "␛").
"""

from __future__ import annotations

from rich.text import Text

# Bidirectional overrides and isolates can make text read differently from what it is.
_BIDI = {0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}


def _visible(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures" block: ␀ ... ␟ (␛ for ESC)
    if code == 0x7F:
        return "␡"
    return f"<U+{code:04X}>"  # C1 controls and bidi marks have no picture of their own


_TABLE = {
    c: _visible(c)
    for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), *_BIDI]
    if c not in (0x09, 0x0A)
}


def clean(text: object, newlines: bool = True) -> str:
    """`text` with every control character except newline and tab made visible.

    With `newlines=False` (table cells, one-line previews) newlines and tabs become spaces.
    """
    s = "" if text is None else str(text)
    s = s.replace("\r\n", "\n").translate(_TABLE)
    if not newlines:
        s = s.replace("\n", " ").replace("\t", " ")
    return s


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
