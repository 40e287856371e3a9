"""ASCII mode, for terminals (or fonts) that cannot draw Unicode glyphs.

Whether to use it: `CHANGEOVER_ASCII=1` (or `0` to refuse it), else the locale environment as
the user set it. Python 3.12 reports UTF-8 under `LANG=C` (PEP 538/540 coerce the C locale,
writing LC_CTYPE=C.UTF-8 into the process's environment), so neither the encoding of stdout nor
the environment Python shows would ever say no; the environment the process was started with
(/proc/self/environ) still tells what the terminal expects.

What it changes: every frame the app writes goes through `to_ascii`, which swaps the glyphs an
interface draws -- box and block characters (borders, Textual's tab underline, scrollbars and
toast bars), shapes, arrows, ticks, `·`, `…`, the palette's magnifier, the pictures standing
in for control characters -- for ASCII of the same width, so the layout Textual computed still
holds. Letters and currency signs in the workspace's texts are left as they are.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path

# What Python 3.7+ writes into LC_CTYPE when it coerces the C locale at start-up (PEP 538).
COERCION_TARGETS = frozenset({"C.UTF-8", "C.utf8", "UTF-8"})


def started_with(path: str = "/proc/self/environ") -> dict[str, str] | None:
    """The environment this process was started with (Linux keeps it apart from the one
    Python edits), or None where the system does not say."""
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return None
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def user_locale(
    environ: Mapping[str, str] | None = None, original: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The locale variables as the user set them. Under LANG=C (or no locale at all) Python
    3.12 sets LC_CTYPE=C.UTF-8 in its own environment before any of our code runs (PEP 538),
    so an LC_CTYPE that names a coercion target and that the process was not started with is
    Python's, not the user's: it is taken back. `original` defaults to /proc/self/environ; where
    there is none the environment is taken as it is."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items()}
    if original is None and environ is None:
        original = started_with()
    ctype = env.get("LC_CTYPE")
    if original is not None and ctype in COERCION_TARGETS and original.get("LC_CTYPE") != ctype:
        if "LC_CTYPE" in original:
            env["LC_CTYPE"] = original["LC_CTYPE"]
        else:
            del env["LC_CTYPE"]
    return env


def locale_is_utf8(environ: Mapping[str, str] | None = None) -> bool | None:
    """What the locale environment says about UTF-8: the first of LC_ALL, LC_CTYPE and LANG
    that is set decides (POSIX precedence); None when none is set. Without `environ`, the
    variables as the user set them (`user_locale`)."""
    env = user_locale() if environ is None else environ
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(name, "")
        if value:
            folded = value.casefold().replace("-", "").replace("_", "")
            return "utf8" in folded
    return None


def prefers_ascii(environ: Mapping[str, str] | None = None, encoding: str | None = None) -> bool:
    """ASCII when asked (CHANGEOVER_ASCII=1), when the locale is not UTF-8 (LANG=C, a Latin-1
    locale), or when stdout is not UTF-8. CHANGEOVER_ASCII=0 keeps Unicode whatever the rest."""
    env = user_locale() if environ is None else environ
    asked = env.get("CHANGEOVER_ASCII", "")
    if asked:
        return asked != "0"
    if locale_is_utf8(env) is False:
        return True
    if encoding is None:
        encoding = getattr(sys.__stdout__, "encoding", None) or "utf-8"
    return not encoding.lower().replace("-", "").startswith("utf")


# ---- the glyph table ----------------------------------------------------------------------

_NAMED = {
    "·": ".",  # middle dot, the separators
    "•": "*",
    "…": "~",  # a cut text: one cell, like the ellipsis it replaces
    "✔": "+",
    "✓": "+",
    "✘": "x",
    "✗": "x",
    "●": "o",
    "○": "o",
    "◉": "o",
    "■": "#",
    "□": "#",
    "◆": "*",
    "▶": ">",
    "►": ">",
    "▸": ">",
    "◀": "<",
    "◂": "<",
    "▲": "^",
    "▴": "^",
    "▼": "v",
    "▾": "v",
    "←": "<",
    "→": ">",
    "↑": "^",
    "↓": "v",
    "⏎": "<",  # the return key as Textual displays it
    "╸": " ",  # the half bars at the ends of Textual's tab underline: gaps mark the active tab
    "╺": " ",
    "⇧": "^",
    "≠": "#",
    "≥": ">",
    "≤": "<",
    "×": "x",
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "—": "-",
    "–": "-",
    "‾": "-",
    "▔": "-",
    "▁": "_",
    "░": ".",
    "▒": ":",
    "▓": "#",
    "█": "#",
    "🔎": "> ",  # the command palette's icon: two cells
    "🔍": "> ",
}


def _box(name: str) -> str:
    """An ASCII line for a box-drawing character, from the directions its name gives."""
    words = set(name.split())
    horizontal = bool(words & {"HORIZONTAL", "LEFT", "RIGHT"})
    vertical = bool(words & {"VERTICAL", "UP", "DOWN"})
    if horizontal and vertical:
        return "+"
    if horizontal:
        return "-"
    if vertical:
        return "|"
    return {"RISING": "/", "FALLING": "\\", "CROSS": "X"}.get(name.split()[-1], "+")


def _build() -> dict[int, str]:
    table = {ord(k): v for k, v in _NAMED.items()}
    for code in range(0x2500, 0x2580):  # box drawing: borders, tab underline, rulers
        table.setdefault(code, _box(unicodedata.name(chr(code), "")))
    for code in range(0x2580, 0x25A0):  # block elements: scrollbars, toast and footer bars
        ch = chr(code)
        name = unicodedata.name(ch, "")
        if code in table:
            continue
        if "QUADRANT" in name:
            table[code] = "#"
        elif "LEFT" in name or "RIGHT" in name:
            table[code] = "|"
        else:
            table[code] = "#" if "BLOCK" in name else "_"
    for code in range(0x2400, 0x2427):  # control pictures (␛ for ESC), from safe_text.clean
        table[code] = "^"
    return table


ASCII_TABLE = _build()


def to_ascii(text: str) -> str:
    """`text` with every interface glyph swapped for ASCII of the same width."""
    return text.translate(ASCII_TABLE)


def ascii_driver(base: type) -> type:
    """A Textual driver class that writes every frame through `to_ascii`."""

    class AsciiDriver(base):
        def write(self, data: str) -> None:
            super().write(to_ascii(data))

    AsciiDriver.__name__ = f"Ascii{base.__name__}"
    return AsciiDriver
