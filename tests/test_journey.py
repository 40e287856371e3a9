"""The app as a new user meets it: the README's first command typed into a shell in a real
terminal (tmux, 80x24), and nothing pressed before looking. Every screen one key away from the
start screen shows its content without a second key, and one walk goes through eval sets,
browse, rate (5 responses), results, calibration and the palette to quit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers_tmux import PROMPT, Tmux, tmux_missing

from changeover.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RATER = "journey"  # the login name the app takes as the rater


def readme_launch() -> str:
    """The part of the README's first command that starts the app (what follows the install)."""
    first = re.search(r"```sh\n(.*?)```", README, re.S).group(1).strip().splitlines()[0]
    return first.split("&&")[-1].strip()


LAUNCH = readme_launch()


def _cannot_run() -> str | None:
    if tmux_missing():
        return tmux_missing()
    program = LAUNCH.split()[0]
    if not (ROOT / program).exists():
        return f"{program} is not installed (the README's commands make it)"
    return None


pytestmark = pytest.mark.skipif(_cannot_run() is not None, reason=str(_cannot_run()))

# The eval set's name and its counts: items, models, responses, labelled share.
COUNTS = ("kestrel-support", "1,200", "4,800", "240 (5.0%)")
NUMBER = re.compile(r"\d\.\d{2,3}")  # a rate, a kappa or a probability


def start_screen_shown(screen: str) -> bool:
    return all(text in screen for text in COUNTS)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """One demo workspace for the one-key tests (the first launch builds it)."""
    return tmp_path_factory.mktemp("journey-data")


def launch(
    directory: Path, data: Path, width: int = 80, height: int = 24, prefix: str = ""
) -> Tmux:
    """A shell in tmux with the README's command typed in (after `prefix`, e.g. variables); the
    start screen is on when it returns, and no key has been sent."""
    term = Tmux(
        directory,
        width=width,
        height=height,
        env={"CHANGEOVER_DATA_DIR": str(data), "LOGNAME": RATER, "USER": RATER},
    )
    try:
        term.run(f"cd {ROOT} && {prefix}{LAUNCH}")
        screen = term.wait_for(start_screen_shown, timeout=60)
        assert "● ● ●" not in screen and "Loading" not in screen
    except BaseException:
        term.close()
        raise
    return term


def test_the_first_screen_paints_its_counts_without_a_key(tmp_path):
    term = launch(tmp_path, tmp_path / "data")
    try:
        screen = term.screen()
        assert "Eval set" in screen and "demo.changeover" in screen
        assert "no fit yet" in screen  # the verdict column is there too, at 80 columns
    finally:
        term.close()


ONE_KEY = {
    "Enter": ("rows 1-50 of 4,800", "Question"),  # browse: its first page and the detail pane
    "r": ("this session: 0 responses", "[n] no"),  # rate: a response and the first metric
    "v": ("Results · kestrel-support", NUMBER),
    "c": ("Calibration · kestrel-support", NUMBER),
    "?": ("Keys: Eval sets", "Browse"),
    "C-p": ("Rate kestrel-support", "Calibration kestrel-support"),  # the command palette
}


def shows(screen: str, *wanted: str | re.Pattern) -> bool:
    return all(w.search(screen) if isinstance(w, re.Pattern) else w in screen for w in wanted)


@pytest.mark.parametrize("key", list(ONE_KEY), ids=lambda k: k.lower().replace("?", "help"))
def test_every_screen_one_key_away_shows_without_another_key(tmp_path, data_dir, key):
    term = launch(tmp_path, data_dir)
    try:
        term.keys(key)
        term.wait_for(lambda s: shows(s, *ONE_KEY[key]), timeout=90)
    finally:
        term.close()


def test_browse_ids_keep_their_digits_after_a_filter_change(tmp_path, data_dir):
    """At 80 columns the id column kept the width of ids 1..50, so atlas-3's 201.. read 20."""
    term = launch(tmp_path, data_dir)
    try:
        term.keys("Enter")
        term.wait_for("rows 1-50 of 4,800", timeout=30)
        term.keys("m")  # atlas-2: ids 1..
        term.wait_for("model atlas-2", timeout=30)
        term.keys("m")  # atlas-3: ids 201..
        screen = term.wait_for(lambda s: "model atlas-3" in s and "rows 1-50 of 1,200" in s, 30)
        rows = [ln.split() for ln in screen.splitlines() if "NA-00" in ln]
        assert rows and [r[0] for r in rows[:3]] == ["201", "202", "203"], screen
    finally:
        term.close()


CONTENT = set("€£")  # non-ASCII in the sample's own texts: data, shown as it is


def drawn_in_ascii(screen: str) -> bool:
    return all(c.isascii() or c in CONTENT for c in screen)


@pytest.mark.parametrize("variables", ["LANG=C LC_ALL=C ", "CHANGEOVER_ASCII=1 "])
def test_ascii_mode_draws_every_screen_in_ascii(tmp_path, data_dir, variables):
    """Under LANG=C Python still says UTF-8; the locale says otherwise. Borders, the tab
    underline, scrollbars, a notice's bar, separators and the palette's icon are ASCII."""
    term = launch(tmp_path, data_dir, prefix=variables)
    try:
        assert drawn_in_ascii(term.screen()), term.screen()
        term.keys("r")
        term.wait_for("this session: 0 responses", timeout=30)
        term.keys("u")  # a notice: nothing to undo yet
        screen = term.wait_for("Nothing to undo", timeout=30)
        assert drawn_in_ascii(screen), screen
        term.keys("q", "v")  # results: tabs with their underline, a scrollbar
        screen = term.wait_for(lambda s: shows(s, "Results . kestrel-support", NUMBER), 90)
        assert drawn_in_ascii(screen) and "+ ready" in screen, screen
        term.keys("q", "C-p")  # the palette and its icon
        screen = term.wait_for("Search for commands", timeout=30)
        assert drawn_in_ascii(screen), screen
    finally:
        term.close()


def labels_by(workspace: Path, rater: str) -> list[tuple[int, str, int]]:
    with Store.open(workspace, read_only=True) as store:
        es = store.eval_sets()[0]
        return [
            (r.response_id, r.metric, r.value)
            for r in store.ratings(es.id, include_retracted=False)
            if r.rater == rater
        ]


def test_a_walk_through_every_screen_from_the_readme_command(tmp_path):
    data = tmp_path / "data"
    term = launch(tmp_path, data)
    try:
        term.keys("Enter")  # browse
        screen = term.wait_for(lambda s: shows(s, "rows 1-50 of 4,800", "Question"), timeout=30)
        assert "atlas-2" in screen  # browse is open, not blind: models are named
        term.keys("q")
        term.wait_for(start_screen_shown, timeout=30)

        term.keys("r")  # rate: five responses, every metric
        screen = term.wait_for("this session: 0 responses", timeout=30)
        for name in ("atlas-2", "atlas-3", "swift-mini", "guardian-1"):
            assert name not in screen  # blind
        for k in range(5):
            for key in ("y" if k % 2 else "n", "n", str(1 + k % 5)):
                term.keys(key)
            term.wait_for(f"this session: {k + 1} response", timeout=30)
        term.keys("q")
        # back on the start screen (the labelled share moved: some labels may be second opinions)
        term.wait_for(lambda s: shows(s, *COUNTS[:3]) and "240 (5.0%)" not in s, timeout=30)

        term.keys("v")  # results
        screen = term.wait_for(lambda s: shows(s, "Results · kestrel-support", NUMBER), 120)
        assert "atlas-3" in screen
        term.keys("q")
        term.wait_for("Eval set", timeout=30)

        term.keys("c")  # calibration
        term.wait_for(lambda s: shows(s, "Calibration · kestrel-support", NUMBER), 60)
        term.keys("q")
        term.wait_for("Eval set", timeout=30)

        term.keys("C-p")  # the palette, and a search in it
        term.wait_for(lambda s: shows(s, "Rate kestrel-support", "Fit kestrel-support"), 30)
        term.run("switch")  # typed, then Enter: switching eval set opens its browse screen
        term.wait_for(lambda s: shows(s, "rows 1-50 of 4,800") and "Fit kestrel" not in s, 30)

        term.keys("q", "q")  # back, then quit: the shell has the terminal again
        term.wait_for(lambda s: not term.alternate_on() and PROMPT.strip() in s, timeout=30)
    finally:
        term.close()
    got = labels_by(data / "demo.changeover", RATER)
    assert len(got) == 15  # 5 responses x 3 metrics, every one on disk
    assert len({response for response, _, _ in got}) == 5
    assert sorted(v for _, m, v in got if m == "style") == [0, 1, 2, 3, 4]
