"""Read-only writes no byte anywhere (no -wal/-shm beside the workspace, no report file), while
still seeing labels a writer adds later; what changeover creates besides workspaces (the demo's
and the config's folders, the remembered workspace) is the user's alone whatever the umask; the
command palette shows an eval set's name inert."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import canned_fitter
from helpers_tmux import Tmux, tmux_missing

from changeover.core.settings import Settings
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region
from changeover.core.workspace import Workspace
from changeover.tui.app import ChangeoverApp

ROOT = Path(__file__).resolve().parents[1]


def spec(name: str = "files") -> EvalSet:
    return EvalSet(
        id=0,
        name=name,
        incumbent="old",
        regions=(Region("EU", 3.0),),
        metrics=(Metric("correct", ("no", "yes"), "higher", 0.03, "Right?", ("n", "y")),),
    )


def populate(store: Store, name: str = "files", n: int = 20) -> EvalSet:
    es = store.save_eval_set(spec(name))
    with store.importing(es.id) as batch:
        batch.add_responses(
            (f"q{i // 2}", "EU", f"Q {i // 2}?", None, ("old", "new")[i % 2], f"A {i}.")
            for i in range(n)
        )
        batch.add_judgments(
            (f"q{i // 2}", ("old", "new")[i % 2], "correct", "judge", i % 2, None, None, None)
            for i in range(n)
        )
    return store.eval_set(es.id)


@pytest.fixture
def reviewed(tmp_path) -> tuple[Path, EvalSet]:
    """A closed workspace with labels and a kept fit, alone in its folder."""
    folder = tmp_path / "ws"
    folder.mkdir()
    path = folder / "reviewed.changeover"
    with Store.open(path, create=True) as store:
        es = populate(store)
        for k, row in enumerate(store.browse(es.id, limit=20)):
            store.add_rating(row.response_id, "correct", "ann", k % 2)
        Workspace(store, canned_fitter()).fit(es, Settings.quick())
    assert sorted(p.name for p in folder.iterdir()) == ["reviewed.changeover"]
    return path, es


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def cli(*args: str, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "changeover.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "CHANGEOVER_CONFIG_DIR": str(config)},
    )


def test_read_only_review_leaves_no_file_beside_the_workspace(reviewed, tmp_path):
    """Issue 21 item 6: SQLite's mode=ro made -wal and -shm files beside the workspace (and left
    them). The CLI's read-only commands and the app in read-only mode, export report included,
    now leave the folder exactly as it was."""
    path, es = reviewed
    before = folder_bytes(path.parent)
    for args in (
        ("info", str(path)),
        ("report", str(path), "--format", "markdown"),
        ("export", str(path), "--what", "ratings"),
    ):
        out = cli(*args, config=tmp_path / "config")
        assert out.returncode == 0, out.stderr
        assert folder_bytes(path.parent) == before, args
    notes: list[str] = []

    async def session() -> None:
        with Workspace.open(path, read_only=True) as ws:
            app = ChangeoverApp(ws, rater="bob", read_only=True, seed=1)
            async with app.run_test(size=(100, 30)) as pilot:
                app.notify = lambda message, *a, **k: notes.append(str(message))  # type: ignore[method-assign]
                await pilot.pause()
                await pilot.press("v")  # results of the kept fit
                await pilot.pause()
                await app.workers.wait_for_complete()
                app.export_report(es)  # what the palette's "Export report" calls
                await pilot.pause()
                await app.workers.wait_for_complete()

    asyncio.run(session())
    assert any("read-only" in n and "no report" in n for n in notes), notes
    assert folder_bytes(path.parent) == before


def test_a_read_only_reader_sees_labels_a_writer_adds_later(reviewed):
    """Read without -wal/-shm (immutable) while nobody writes, the reader switches to a shared
    read once a writer arrives: labels given meanwhile are seen, as `r` (reload) promises."""
    path, es = reviewed
    with Store.open(path, read_only=True) as reader:
        seen = len(reader.ratings(es.id))
        assert not Path(f"{path}-wal").exists()
        with Store.open(path) as writer:
            rid = writer.browse(es.id, limit=1)[0].response_id
            writer.add_rating(rid, "correct", "bob", 1)
            assert len(reader.ratings(es.id)) == seen + 1
            writer.add_rating(rid, "correct", "cat", 0)
            assert len(reader.ratings(es.id)) == seen + 2
        # the writer has gone (its -wal checkpointed into the file and removed)
        assert len(reader.ratings(es.id)) == seen + 2
        assert reader.con.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_demo_folders_are_private_whatever_the_umask(tmp_path):
    """`changeover demo --no-app` under umask 000 made its data folder 0777."""
    data = tmp_path / "home" / "data" / "changeover"
    out = subprocess.run(
        [sys.executable, "-m", "changeover.cli", "demo", "--no-app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CHANGEOVER_DATA_DIR": str(data)},
        preexec_fn=lambda: os.umask(0),
    )
    assert out.returncode == 0, out.stderr
    assert mode(data / "demo.changeover") == 0o600
    for folder in (data, data.parent, data.parent.parent):
        assert mode(folder) == 0o700, folder


def test_unwritable_data_folder_is_one_line(tmp_path):
    """The demo's folder where no folder can be made: one line, exit 1, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for where in (blocker / "sub", Path("/proc/changeover-nope")):
        out = subprocess.run(
            [sys.executable, "-m", "changeover.cli", "demo", "--no-app"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CHANGEOVER_DATA_DIR": str(where)},
        )
        assert out.returncode == 1, out.stderr
        assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
        assert "CHANGEOVER_DATA_DIR" in out.stderr


@pytest.mark.skipif(tmux_missing() is not None, reason=str(tmux_missing()))
def test_the_remembered_workspace_is_private_whatever_the_umask(tmp_path, reviewed):
    """The app remembers the workspace it opened in the config folder: 0600 in a 0700 folder,
    also under umask 000 (it was 0666 in 0777)."""
    path, _ = reviewed
    config = tmp_path / "cfg" / "changeover"
    term = Tmux(tmp_path, width=100, height=30, env={"CHANGEOVER_CONFIG_DIR": str(config)})
    try:
        term.run(f"umask 000; cd {ROOT} && {sys.executable} -m changeover.cli open {path}")
        term.wait_for("browse", timeout=30)
        term.keys("q")
        term.wait_for(lambda s: s.rstrip().endswith("READY$"), timeout=20)
    finally:
        term.close()
    remembered = config / "last_workspace"
    assert remembered.read_text().strip() == str(path)
    assert mode(remembered) == 0o600
    assert mode(config) == 0o700 and mode(config.parent) == 0o700


def test_the_palette_shows_an_eval_set_name_inert():
    """An eval set's name holding markup and an OSC title sequence, in the command palette:
    shown as text (it reached the terminal raw, and Textual read its brackets as markup)."""
    from textual.command import CommandPalette

    name = "[bold]set[/bold]\x1b]0;PWNED\x07"

    async def run() -> str:
        store = Store.memory()
        populate(store, name=name)
        app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+p")
            await pilot.pause()
            assert isinstance(app.screen, CommandPalette)
            await pilot.press(*"switch")
            for _ in range(20):
                await pilot.pause(0.05)
                text = "\n".join(s.text for s in app.screen._compositor.render_strips())
                if "Switch eval set" in text:
                    break
            return text

    text = asyncio.run(run())
    assert "Switch eval set: [bold]set[/bold]␛]0;PWNED␇" in text, text
    assert "\x1b" not in text and "\x07" not in text


def test_the_report_notice_shows_an_eval_set_name_as_text():
    """'Export report' on a set without a fit says so, naming the set: as Textual draws the
    notice, its brackets are not markup (`[/]` was read as a closing tag: MarkupError) and its
    escapes show as escapes."""
    from textual.content import Content

    name = "[/]set\x1b]0;PWNED\x07"
    notes: list[tuple[str, bool]] = []

    async def run() -> None:
        store = Store.memory()
        es = populate(store, name=name)
        app = ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=1)
        async with app.run_test(size=(120, 40)) as pilot:
            original = app.notify
            app.notify = lambda message, *a, markup=True, **k: (  # type: ignore[method-assign]
                notes.append((str(message), markup)),
                original(message, *a, markup=markup, **k),
            )[1]
            await pilot.pause()
            app.export_report(es)
            await app.workers.wait_for_complete()
            await pilot.pause()

    asyncio.run(run())
    [(message, markup)] = notes
    shown = (Content.from_markup(message) if markup else Content(message)).plain
    assert "No report: eval set '[/]set\\x1b]0;PWNED\\x07' has no fit yet" in shown
