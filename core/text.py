"""Text from models and files is data: the one place that makes it inert for a terminal, a
spreadsheet or a table cell. Every face (the app, the report, export) goes through these.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO

# Bidirectional overrides and isolates can make text read differently from what it is.
BIDI = (0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069)
# Everything a terminal may act on: C0 controls but tab and newline, DEL, C1 controls (0x9b is
# an 8-bit CSI), and the bidi marks.
DANGEROUS = tuple(c for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), *BIDI) if c not in (9, 10))


def _picture(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": ␀ ... ␟ (␛ for ESC)
    if code == 0x7F:
        return "␡"
    return f"<U+{code:04X}>"  # C1 controls and bidi marks have no picture of their own


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_PICTURES = {c: _picture(c) for c in DANGEROUS}
_ESCAPES = {c: _escape(c) for c in DANGEROUS}


def inert(text: object, *, newlines: bool = True, ascii: bool = False) -> str:
    """`text` with every character a terminal could act on made visible: as a control picture
    (`␛`, `<U+202E>`) on screen, or with `ascii` as an escape (`\\x1b`, `\\u202e`) for command
    line output. A carriage return before a newline is dropped (Windows line ends); with
    `newlines=False` (table cells, one-line previews) newlines and tabs become spaces."""
    s = "" if text is None else str(text)
    s = s.replace("\r\n", "\n").translate(_ESCAPES if ascii else _PICTURES)
    if not newlines:
        s = s.replace("\n", " ").replace("\t", " ")
    return s


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (it starts with = + - @, a tab or a
    carriage return), prefixed with a single quote (OWASP's CSV injection guidance); anything
    else, numbers included, unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_cell(value: object, kind: str, tty: bool = False) -> object:
    """One CSV cell of a typed column ("str", "int", "float", "bool"): empty for None,
    true/false, text neutralised (and made inert for a terminal); numbers as they are."""
    if value is None:
        return ""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "str":
        text = str(neutralise(str(value)))
        return inert(text, ascii=True) if tty else text
    return value


def write_csv(
    rows: Iterable[dict], columns: dict[str, str], out: IO[str], tty: bool = False
) -> int:
    """`rows` as CSV with a header, typed by `columns` (name -> kind); returns how many."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(columns))
    n = 0
    for row in rows:
        writer.writerow([csv_cell(row.get(c), k, tty) for c, k in columns.items()])
        n += 1
    return n
