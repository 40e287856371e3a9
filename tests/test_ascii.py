"""ASCII mode: decided from CHANGEOVER_ASCII and the locale (Python says UTF-8 under LANG=C),
and every glyph Textual draws (borders, tab underline, scrollbars, toast bars, the palette's
icon) becomes ASCII of the same width."""

import sys
from pathlib import Path

import pytest
from helpers_tmux import Tmux, build_rate_workspace, tmux_missing
from rich.cells import cell_len

from changeover.tui.widgets.ascii import (
    ASCII_TABLE,
    locale_is_utf8,
    prefers_ascii,
    to_ascii,
    user_locale,
)
from changeover.tui.widgets.intervals import prefers_ascii as from_intervals

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ("LC_ALL", "LC_CTYPE", "LANG", "CHANGEOVER_ASCII")


@pytest.fixture
def clean_env(monkeypatch):
    for name in LOCALE:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_lang_c_means_ascii_although_python_reports_utf8(clean_env):
    clean_env.setenv("LANG", "C")
    clean_env.setenv("LC_ALL", "C")
    assert prefers_ascii(encoding="utf-8")
    assert from_intervals()  # what the results screen asks


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"LANG": "en_US.UTF-8"}, False),
        ({"LANG": "C.utf8"}, False),
        ({"LANG": "de_DE.ISO-8859-1"}, True),
        ({"LANG": "POSIX"}, True),
        ({"LC_ALL": "C.UTF-8", "LANG": "C"}, False),  # LC_ALL wins
        ({"LC_CTYPE": "C", "LANG": "en_GB.UTF-8"}, True),  # LC_CTYPE before LANG
        ({}, False),  # nothing set: stdout's encoding decides
        ({"CHANGEOVER_ASCII": "1", "LANG": "en_US.UTF-8"}, True),
        ({"CHANGEOVER_ASCII": "0", "LANG": "C"}, False),  # asked for Unicode
    ],
)
def test_who_decides(env, expected):
    assert prefers_ascii(env, encoding="utf-8") is expected
    if not env:
        assert locale_is_utf8(env) is None
        assert prefers_ascii(env, encoding="ascii") is True


def textual_glyphs() -> str:
    """What Textual draws by itself: every border style, the tab underline's bar, the
    scrollbar's eighths, the palette's magnifier and the loading indicator's dots."""
    from textual._border import BORDER_CHARS
    from textual.command import SearchIcon
    from textual.renderables.bar import Bar
    from textual.scrollbar import ScrollBarRender

    chars = {c for rows in BORDER_CHARS.values() for row in rows for c in row}
    chars |= {Bar.BAR, Bar.HALF_BAR_LEFT, Bar.HALF_BAR_RIGHT}
    chars |= set(ScrollBarRender.VERTICAL_BARS) | set(ScrollBarRender.HORIZONTAL_BARS)
    chars.add(SearchIcon.icon._default)  # type: ignore[attr-defined]
    return "".join(sorted(chars)) + "●·…✔✘✓▶␛␇"


def test_every_textual_glyph_becomes_ascii_of_the_same_width():
    glyphs = textual_glyphs()
    assert "━" in glyphs and "▁" in glyphs and "🔎" in glyphs  # the table is not empty
    for ch in glyphs:
        out = to_ascii(ch)
        assert out.isascii(), (ch, out)
        assert cell_len(out) == cell_len(ch), (ch, out)


def test_text_from_the_workspace_keeps_its_letters():
    assert to_ascii("Grüße, £5 · €4 … done ✔") == "Grüße, £5 . €4 ~ done +"
    assert all(len(v) == 1 or k > 0xFFFF for k, v in ASCII_TABLE.items())


def test_python_coercing_lang_c_is_not_taken_for_the_users_choice():
    """Python sets LC_CTYPE=C.UTF-8 itself under LANG=C (PEP 538): what the process started
    with decides; an LC_CTYPE the user gave stays theirs."""
    coerced = {"LANG": "C", "LC_CTYPE": "C.UTF-8"}
    assert user_locale(coerced, original={"LANG": "C"}) == {"LANG": "C"}
    assert prefers_ascii(user_locale(coerced, original={"LANG": "C"}), encoding="utf-8")
    assert user_locale(coerced, original=coerced) == coerced  # the user's own LC_CTYPE
    assert user_locale({"LC_CTYPE": "C.UTF-8"}, original={"LC_CTYPE": "C"}) == {"LC_CTYPE": "C"}


@pytest.mark.skipif(tmux_missing() is not None, reason=str(tmux_missing()))
def test_only_lang_c_in_a_real_terminal_draws_ascii(tmp_path):
    """The README's own example: a terminal with LANG=C and no other locale variable."""
    workspace = tmp_path / "rate.changeover"
    build_rate_workspace(workspace)
    term = Tmux(tmp_path, width=80, height=24)
    try:
        term.run(
            f"cd {ROOT} && env -u LC_ALL -u LC_CTYPE -u CHANGEOVER_ASCII LANG=C "
            f"{sys.executable} -m changeover.cli open {workspace}"
        )
        screen = term.wait_for("enter browse", timeout=60)
        assert "rate . 2 models . incumbent old" in screen, screen
        assert screen.isascii(), [ch for ch in screen if not ch.isascii()]
    finally:
        term.close()
