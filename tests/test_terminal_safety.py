"""Text from models is data: escape sequences (OSC 52 clipboard writes, cursor movement, title
changes), Rich markup, right-to-left text, combining characters and a 1 MB response are shown
as inert text, in the app's own rendering and in a real terminal."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from helpers import canned_fitter
from helpers_tmux import Tmux, tmux_missing

from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region
from changeover.core.workspace import Workspace
from changeover.tui.app import ChangeoverApp
from changeover.tui.screens.browse import BrowseScreen
from changeover.tui.screens.rate import RateScreen
from changeover.tui.widgets.safe_text import clean, one_line, safe_text

ROOT = Path(__file__).resolve().parents[1]

OSC52 = "\x1b]52;c;cm0gLXJmIH4vKg==\x07"  # base64 of "rm -rf ~/*" into the clipboard
TITLE = "\x1b]0;PWNED-TITLE\x07\x1b]2;PWNED-TITLE\x1b\\"
CLEAR = "\x1b[2J\x1b[H\x1b[31;1m"
C1_CSI = "\x9b31m"  # the 8-bit CSI some terminals still obey
MARKUP = "[bold red]not markup[/bold red] [link=http://evil.example]click[/link] [/]"
RTL = "\u202eevil.exe\u202c \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627"
COMBINING = "Z\u0351\u0352\u0353a\u0300\u0301\u0302l\u0303\u0304g\u0305o"
PAYLOAD = f"Before {OSC52}{TITLE}{CLEAR}{C1_CSI} {MARKUP} {RTL} {COMBINING} after\x7f\x00 end."
RAW = ("\x1b", "\x07", "\x9b", "\x00", "\x7f", "\u202e")  # must never reach the screen as such


# ---- the sanitiser ------------------------------------------------------------------------


def test_clean_makes_every_control_character_visible():
    out = clean(PAYLOAD)
    for raw in RAW:
        assert raw not in out
    assert "␛]52;c;cm0gLXJmIH4vKg==␇" in out and "␛[2J␛[H" in out and "␀" in out and "␡" in out
    assert "<U+009B>31m" in out and "<U+202E>evil.exe" in out
    assert MARKUP in out and COMBINING in out  # printable text is left alone
    assert clean("a\nb\tc") == "a\nb\tc" and clean("a\nb\tc", newlines=False) == "a b c"


def test_safe_text_is_never_markup():
    text = safe_text(MARKUP)
    assert text.plain == MARKUP and not text.spans
    assert one_line("x" * 50 + "\x1b[2J", 20).plain == "x" * 19 + "…"
    assert "\x1b" not in one_line("\x1b]0;t\x07", 20).plain


# ---- the app's own rendering ---------------------------------------------------------------

HUGE = ("1 MB of response text. " * 50_000)[:1_000_000]


def hostile_workspace(store: Store, huge: bool = False) -> EvalSet:
    es = store.save_eval_set(
        EvalSet(
            id=0,
            name="[bold]set[/bold]",
            incumbent="old",
            regions=(Region("EU\x1b[2J", 3.0), Region("[red]US[/red]", 1.0)),
            metrics=(
                Metric("correct", ("no", "yes"), "higher", 0.03, f"Guideline {MARKUP}", ("n", "y")),
            ),
        )
    )
    rows = [
        ("i1", "EU\x1b[2J", f"Question {RTL}?", None, "old", PAYLOAD),
        ("i1", "EU\x1b[2J", f"Question {RTL}?", None, "[b]new[/b]", f"Plain {COMBINING}"),
    ]
    if huge:
        rows = [("big", "[red]US[/red]", "Long?", None, "old", HUGE)]
    with store.importing(es.id) as batch:
        batch.add_responses(rows)
        batch.add_judgments(
            [(r[0], r[4], "correct", "judge", 1, "yes", None, OSC52 + MARKUP) for r in rows]
        )
    return store.eval_set(es.id)


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def flat(text: str) -> str:
    """The screen's words with line breaks and padding as single spaces (a text may wrap)."""
    return " ".join(text.split())


def assert_inert(text: str) -> None:
    for raw in RAW:
        assert raw not in text, f"{raw!r} reached the screen"


def test_rate_screen_shows_escapes_and_markup_as_text():
    async def run() -> str:
        store = Store.memory()
        es = hostile_workspace(store)
        app = ChangeoverApp(
            Workspace(store, canned_fitter()), rater="[b]ann[/b]", start_rating=es.name, seed=1
        )
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, RateScreen)
            while app.screen.view is not None and app.screen.view.response.model != "old":
                await pilot.press("s")
                await settle(pilot)
            return screen_text(app)

    text = asyncio.run(run())
    assert_inert(text)
    assert "␛]52;c;cm0gLXJmIH4vKg==␇" in text  # the clipboard write, visible and harmless
    assert "␛]0;PWNED-TITLE␇" in text and "␛[2J␛[H" in text
    assert "[bold red]not markup[/bold red]" in flat(text)  # markup shown literally
    assert "[b]ann[/b]" in text  # in the rater's name too
    assert "<U+202E>evil.exe" in text
    # The layout holds: the prompt and footer are still on screen below the response.
    assert "[n] no" in text and "Undo label" in text


def test_browse_detail_shows_escapes_and_markup_as_text():
    async def run() -> str:
        store = Store.memory()
        hostile_workspace(store)
        app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, BrowseScreen)
            return screen_text(app)

    text = asyncio.run(run())
    assert_inert(text)
    assert "[bold red]not markup[/bold red]" in text  # the response in the detail pane
    assert "␛]52;c;" in text  # in the judge's rationale (detail pane is not blind)
    assert "[b]new[/b]" in text or "[red]US[/red]" in text or "EU␛[2J" in text  # table cells


def test_a_megabyte_response_is_shown_clipped_scrolls_and_labels():
    """A 1 MB response: its first characters and the prompt are on screen, the end of the
    clipped text scrolls into view, and the label lands. (How fast: bench/tui_latency.py.)"""

    async def run() -> None:
        store = Store.memory()
        es = hostile_workspace(store, huge=True)
        app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
        app.animation_level = "none"  # as over SSH: a smooth scroll is not drawing time
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press("r")
            await settle(pilot)
            assert isinstance(app.screen, RateScreen)
            text = screen_text(app)
            assert "1 MB of response text." in text and "[n] no" in text and "Undo label" in text
            assert "more characters not shown" not in text  # the top of the response
            await pilot.press("end")  # scroll to the bottom of the megabyte
            await settle(pilot)
            text = screen_text(app)
            assert "more characters not shown" in flat(text) and "[n] no" in text
            await pilot.press("y")  # the label lands and the screen moves on
            await settle(pilot)
        assert len(store.ratings(es.id)) == 1

    asyncio.run(run())


# ---- a real terminal -----------------------------------------------------------------------


@pytest.mark.skipif(tmux_missing() is not None, reason=str(tmux_missing()))
def test_real_terminal_title_clipboard_and_screen_untouched(tmp_path):
    """In tmux (which obeys OSC 0/2 titles and, with set-clipboard on, OSC 52), the hostile
    response changes neither the title nor the clipboard, and clears nothing."""
    workspace = tmp_path / "hostile.changeover"
    with Store.open(workspace, create=True) as store:
        hostile_workspace(store)
    term = Tmux(tmp_path, width=120, height=40)
    try:
        term._tmux("set-option", "-g", "set-clipboard", "on")
        term._tmux("set-option", "-g", "allow-rename", "on")
        title_before = term.display("#{pane_title}")
        term.run(f"cd {ROOT} && {sys.executable} -m changeover.cli rate {workspace} --rater ann")
        term.wait_for("this session: 0 responses", timeout=60)
        shown = term.screen()
        for _ in range(3):  # the queue's order is random: skip until the hostile one shows
            if "PWNED" in shown:
                break
            term.keys("s")
            time.sleep(0.5)
            shown = term.screen()
        assert "␛]0;PWNED-TITLE␇" in shown
        assert "[bold red]not markup[/bold red]" in flat(shown)
        assert "Undo label" in shown  # the footer is still drawn: nothing cleared the screen
        assert "PWNED" not in term.display("#{pane_title}")
        assert term.display("#{pane_title}") == title_before
        buffers = term._tmux("list-buffers", check=False)
        assert "rm -rf" not in buffers and "cm0gLXJm" not in buffers and buffers.strip() == ""
        term.keys("C-q")
    finally:
        term.close()


@pytest.mark.parametrize("screen", ["eval sets", "results", "calibration"])
def test_names_from_the_file_are_inert_on_every_screen(screen):
    """Eval set, region, model and rater names come from the user's files too: every screen
    shows them as inert text."""
    from changeover.core.settings import Settings

    async def run() -> str:
        store = Store.memory()
        es = hostile_workspace(store)
        for row in store.browse(es.id, limit=10):
            store.add_rating(row.response_id, "correct", "[i]rater[/i]\x1b[2J", 1)
        Workspace(store, canned_fitter()).fit(es, Settings.quick())
        app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
        async with app.run_test(size=(140, 45)) as pilot:
            await settle(pilot)
            if screen != "eval sets":
                await pilot.press({"results": "v", "calibration": "c"}[screen])
                await settle(pilot)
            return screen_text(app)

    text = asyncio.run(run())
    assert_inert(text)
    assert "[bold]set[/bold]" in text
    if screen != "eval sets":
        assert "[red]US[/red]" in text or "[b]new[/b]" in text, text


def test_crlf_is_a_newline_and_huge_texts_are_clipped_with_a_marker():
    from changeover.tui.widgets.safe_text import DISPLAY_LIMIT, clean, clip

    assert clean("one\r\ntwo\rthree") == "one\ntwo␍three"  # a lone CR could rewrite the line
    short = "x" * DISPLAY_LIMIT
    assert clip(short) == short
    long = "y" * (DISPLAY_LIMIT + 12_345)
    shown = clip(long)
    assert shown.startswith("y" * DISPLAY_LIMIT)
    assert "12,345 more characters not shown" in shown and shown.count("y") == DISPLAY_LIMIT
