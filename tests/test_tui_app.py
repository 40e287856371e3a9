"""The app as a whole: routing, help, command palette, keys in the README, start-up costs,
NO_COLOR, mouse over SSH, and the last workspace."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import canned_fitter, make_workspace, run_async, screen_text, settle

from changeover.core.store import Store
from changeover.core.types import ChangeoverError
from changeover.core.workspace import Workspace
from changeover.tui import app as app_module
from changeover.tui.app import ChangeoverApp, last_workspace, run_app, write_report
from changeover.tui.screens.browse import BrowseScreen
from changeover.tui.screens.calibration import CalibrationScreen
from changeover.tui.screens.eval_sets import EvalSetsScreen
from changeover.tui.screens.help import HelpScreen, key_name
from changeover.tui.screens.rate import RateScreen
from changeover.tui.screens.results import ResultsScreen

ROOT = Path(__file__).resolve().parents[1]


# The screens whose keys the README documents, with the name its "screen" column uses.
SCREENS = {
    ChangeoverApp: "everywhere",
    EvalSetsScreen: "eval sets",
    BrowseScreen: "browse",
    RateScreen: "rate",
    HelpScreen: "help",
    ResultsScreen: "results",
    CalibrationScreen: "calibration",
}


def bindings_of(cls):
    """Every binding a class of ours declares, its bases of ours included (Textual merges them)."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("changeover."):
            continue
        for b in vars(klass).get("BINDINGS", []):
            for key in b.key.split(","):
                yield key.strip(), b


def display(key: str, binding) -> str:
    return binding.key_display or key


def test_every_binding_has_a_description():
    for cls in SCREENS:
        for key, b in bindings_of(cls):
            assert b.description.strip(), f"{cls.__name__}: {key} has no description"


def test_every_key_is_in_the_readme_table():
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing (its key table lists every key)"
    rows = []
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and len(cells) >= 3:
            rows.append((set(re.findall(r"`([^`]+)`", cells[0])), cells[1].casefold()))
    missing = [
        f"{label}: {display(key, b)}"
        for cls, label in SCREENS.items()
        for key, b in bindings_of(cls)
        if not any(display(key, b) in keys and label in where for keys, where in rows)
    ]
    assert not missing, f"keys missing from README.md's key table: {missing}"


def test_heavy_modules_are_not_loaded_at_start():
    """The start screen and a first label need none of the statistics libraries: nothing heavy
    is loaded when the model's warm-up begins (WARM_UP_AFTER_S after the start, in a worker),
    which then loads numba, and PyTensor with it, but never PyMC, ArviZ or nutpie: those wait
    for a fit."""
    code = """
import asyncio, sys
sys.path.insert(0, "tests")
from changeover.core.store import Store
from helpers import make_workspace
from changeover.tui.app import ChangeoverApp
from changeover.core.workspace import Workspace

HEAVY = ("pymc", "arviz", "pytensor", "nutpie")
seen = []
warm_up = ChangeoverApp.prepare_models

def watched(self):
    seen.append(sorted(m for m in HEAVY if m in sys.modules))
    return warm_up(self)

ChangeoverApp.prepare_models = watched

async def main():
    store = Store.memory()
    make_workspace(store, n_items=6)
    app = ChangeoverApp(Workspace(store), rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y", "n", "3")
        await pilot.pause()
        for _ in range(1200):  # the warm-up, in its worker (a minute at most)
            await pilot.pause(0.05)
            if "numba" in sys.modules:
                break
        print("AT START", seen[0] if seen else "no warm-up")
        print("WARMED", "numba" in sys.modules, sorted(m for m in HEAVY[:2] + HEAVY[3:] if m in sys.modules))

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "AT START []" in out.stdout, out.stdout
    assert "WARMED True []" in out.stdout, out.stdout


@run_async
async def test_routes_and_back(store):
    make_workspace(store, n_items=6)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, EvalSetsScreen)
        text = screen_text(app)
        assert "support" in text and "18" in text and "0 (0.0%)" in text  # counts arrived
        for key, cls in (("enter", BrowseScreen), ("r", RateScreen)):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, cls)
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, EvalSetsScreen)
        for key, label in (("v", "results"), ("c", "calibration")):
            await pilot.press(key)
            await settle(pilot)
            cls = next((c for c, lbl in SCREENS.items() if lbl == label), None)
            if cls is None:  # not built yet: the app says so and stays put
                assert isinstance(app.screen, EvalSetsScreen)
            else:
                assert isinstance(app.screen, cls)
                app.pop_screen()
                await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@run_async
async def test_start_rating_goes_straight_to_a_session(store):
    make_workspace(store, n_items=6)
    app = ChangeoverApp(
        Workspace(store, canned_fitter()), rater="ann", seed=1, start_rating="support"
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RateScreen) and app.screen.view is not None
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, EvalSetsScreen)


@run_async
async def test_help_lists_every_key_of_the_screen(store):
    make_workspace(store, n_items=6)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for key, cls in ((None, EvalSetsScreen), ("enter", BrowseScreen), ("r", RateScreen)):
            if key:
                await pilot.press(key)
                await settle(pilot)
            assert isinstance(app.screen, cls)
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            help_screen = app.screen
            listed = dict(help_screen.keys)
            for _k, b in [*bindings_of(cls), *bindings_of(ChangeoverApp)]:
                shown = key_name(b)
                if listed.get(shown) != b.description:
                    # a key bound twice shows the screen's meaning; it must still be there
                    assert shown in listed, f"{cls.__name__}: {shown} not in help"
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, cls)
            if cls is not EvalSetsScreen:
                await pilot.press("escape")
                await settle(pilot)


@run_async
async def test_command_palette_commands(store):
    make_workspace(store, n_items=6)
    make_workspace(store, n_items=3, name="second")
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in (
            "Switch eval set: support",
            "Switch eval set: second",
            "Fit support",
            "Export report support",
            "Theme",
            "Rate support",
        ):
            assert wanted in titles, titles
        # "Keys" is the app's own help screen (?), not Textual's widget help panel
        keys = next(c for c in app.get_system_commands(app.screen) if c.title == "Keys")
        assert keys.callback == app.action_help
        switch = next(
            c for c in app.get_system_commands(app.screen) if c.title == "Switch eval set: second"
        )
        switch.callback()
        await settle(pilot)
        assert isinstance(app.screen, BrowseScreen) and app.screen.eval_set.name == "second"
        assert app.screen.total == 9
        # the palette itself opens on ctrl+p and finds the command by typing
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"switch eval set: support")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, BrowseScreen) and app.screen.eval_set.name == "support"


def test_report_needs_a_fit(store, tmp_path):
    es = make_workspace(store, n_items=3)
    with pytest.raises(ChangeoverError, match="no fit yet"):
        write_report(Workspace(store), es, directory=tmp_path)


@run_async
async def test_no_color_is_respected(store, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    make_workspace(store, n_items=3)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.no_color
        colours = {
            seg.style.color
            for strip in app.screen._compositor.render_strips()
            for seg in strip
            if seg.style and seg.style.color is not None
        }
        greys = {c.triplet for c in colours if c.triplet}
        assert all(t.red == t.green == t.blue for t in greys), greys  # monochrome


def test_run_app_remembers_the_workspace_and_turns_mouse_off_over_ssh(tmp_path, monkeypatch):
    monkeypatch.setenv("CHANGEOVER_CONFIG_DIR", str(tmp_path / "config"))
    assert last_workspace() is None
    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as s:
        make_workspace(s, n_items=3)
    seen = {}

    def fake_run(self, **kwargs):
        seen.update(kwargs, start=self.start_rating, rater=self.rater, read_only=self.read_only)

    monkeypatch.setattr(ChangeoverApp, "run", fake_run)
    monkeypatch.setattr(app_module, "has_terminal", lambda: True)
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
    assert run_app(path, rater="ann") == 0
    assert seen["mouse"] is False and seen["start"] is None
    assert last_workspace() == path.resolve()
    assert run_app(path, mouse=True, rate=True, rater="bob") == 0
    assert seen["mouse"] is True and seen["start"] == "support" and seen["rater"] == "bob"
    monkeypatch.delenv("SSH_CONNECTION")
    assert run_app(path, read_only=True) == 0
    assert seen["mouse"] is True and seen["read_only"] is True
    with pytest.raises(ChangeoverError, match="no eval set"):
        run_app(path, rate=True, eval_set="nope")
    with pytest.raises(ChangeoverError, match="no such workspace"):
        run_app(tmp_path / "missing.changeover")


def test_config_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CHANGEOVER_CONFIG_DIR", str(tmp_path))
    assert app_module._config_dir() == tmp_path


@run_async
async def test_export_report_command_writes_markdown(tmp_path, monkeypatch):
    path = tmp_path / "w.changeover"
    store = Store.open(path, create=True)
    es = make_workspace(store, n_items=30)
    for rid in range(1, 40):
        for m in es.metrics:
            store.add_rating(rid, m.name, "carol", 1)
    Workspace(store, canned_fitter()).fit(es)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        command = next(
            c for c in app.get_system_commands(app.screen) if c.title == "Export report support"
        )
        command.callback()
        await settle(pilot)
    store.close()
    report = tmp_path / "w-support-report.md"
    text = report.read_text(encoding="utf-8")
    assert "newmodel-beta" in text and "oldmodel-alpha" in text and "|" in text


@run_async
async def test_a_report_that_cannot_be_written_is_a_notice_not_a_crash(store, monkeypatch):
    es = make_workspace(store, n_items=3)

    def unwritable(ws, es, directory=None):
        raise PermissionError(13, "Permission denied", "/ro/w-support-report.md")

    monkeypatch.setattr(app_module, "write_report", unwritable)
    app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
    notes = []
    async with app.run_test(size=(100, 30)) as pilot:
        real = app.notify
        app.notify = lambda message, *a, **k: (notes.append(str(message)), real(message, *a, **k))[
            1
        ]
        await settle(pilot)
        app.export_report(es)
        await settle(pilot)
        assert app.is_running
    assert any("/ro/w-support-report.md" in n and "Permission denied" in n for n in notes), notes
