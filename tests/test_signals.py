"""Dropped sessions: the rate screen in a real terminal (tmux) gets SIGHUP (what an SSH drop
sends) or SIGKILL after some labels; every label given is on disk, the workspace opens clean,
and after SIGHUP the terminal is handed back restored. An import killed midway leaves the
workspace exactly as it was."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_tmux import (
    LABEL_KEYS,
    Tmux,
    build_rate_workspace,
    expected_labels,
    find_process,
    label_responses,
    tmux_missing,
    wait_gone,
)

from changeover.core.store import Store
from changeover.core.types import EvalSet

ROOT = Path(__file__).resolve().parents[1]


def stored_levels(path: Path, es: EvalSet, rater: str) -> list[int]:
    with Store.open(path) as store:
        assert store.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = [r for r in store.ratings(es.id, include_retracted=False) if r.rater == rater]
    return sorted(r.value for r in rows)


needs_tmux = pytest.mark.skipif(tmux_missing() is not None, reason=str(tmux_missing()))


def session_until_signal(
    tmp_path: Path, signum: int, responses: int
) -> tuple[EvalSet, Path, list, dict]:
    """Label `responses` responses in the app in tmux, then send `signum` to the app.

    Returns the eval set, the workspace, the keys given and the terminal's state afterwards."""
    workspace = tmp_path / "rate.changeover"
    es = build_rate_workspace(workspace)
    term = Tmux(tmp_path, width=100, height=30, env={"NO_COLOR": "1"})
    try:
        term.run(
            f"cd {ROOT} && {sys.executable} -m changeover.cli rate {workspace} --rater ann"
            "; echo APP-EXIT-$?-"
        )
        given = label_responses(term, responses=responses)
        app = find_process(term.shell_pid(), "changeover.cli rate")
        os.kill(app, signum)
        assert wait_gone(app, timeout=10), f"the app did not end on {signal.Signals(signum).name}"
        # The shell has the terminal again: it runs what is typed.
        term.run("echo SHELL-BACK-$((6*7))")
        shown = term.wait_for("SHELL-BACK-42", timeout=10)
        state = {
            "exit": " ".join(re.findall(r"APP-EXIT-(\d+)-", shown)),
            "alternate_on": term.display("#{alternate_on}"),
            "cursor_flag": term.display("#{cursor_flag}"),
            "mouse_any_flag": term.display("#{mouse_any_flag}"),
        }
    finally:
        term.close()
    return es, workspace, given, state


@needs_tmux
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGKILL], ids=["SIGHUP", "SIGKILL"])
def test_signal_mid_session_keeps_every_label(tmp_path, signum):
    es, workspace, given, _ = session_until_signal(tmp_path, signum, responses=5)
    assert len(given) * len(LABEL_KEYS) == 10
    assert stored_levels(workspace, es, "ann") == sorted(expected_labels(len(given)))


@needs_tmux
def test_sighup_restores_the_terminal(tmp_path):
    """Without a handler Python's default action ends the app mid-frame, leaving the pane on the
    alternate screen with the cursor hidden; tui/app.py exits cleanly on SIGHUP instead, with
    the status a shell gives a process ended by SIGHUP, 128 + 1 (it was 0)."""
    _, _, _, state = session_until_signal(tmp_path, signal.SIGHUP, responses=1)
    assert state == {
        "exit": "129",
        "alternate_on": "0",
        "cursor_flag": "1",
        "mouse_any_flag": "0",
    }


@needs_tmux
@pytest.mark.slow
def test_the_app_ends_when_its_terminal_goes_away(tmp_path):
    """The terminal itself disappears (the tmux server is killed, as an SSH connection drops)
    while the app is drawing a new screen: the app must not stay behind. Textual's shutdown
    could block for good writing to the dead terminal (1 time in 6 here; dozens of orphans were
    found after the journey tests); the app now ends itself a few seconds after the hang-up."""
    workspace = tmp_path / "rate.changeover"
    build_rate_workspace(workspace)
    apps = []
    for k in range(6):
        (tmp_path / f"t{k}").mkdir()
        term = Tmux(tmp_path / f"t{k}", width=80, height=24, env={"NO_COLOR": "1"})
        try:
            term.run(f"cd {ROOT} && {sys.executable} -m changeover.cli open {workspace}")
            term.wait_for("enter browse", timeout=30)
            apps.append(find_process(term.shell_pid(), "changeover.cli open"))
            term.keys("v")  # results: a whole new screen on its way to the terminal
            time.sleep(0.05 * k)
        finally:
            term.close()
    stuck = [pid for pid in apps if not wait_gone(pid, timeout=15)]
    for pid in stuck:
        os.kill(pid, signal.SIGKILL)
    assert stuck == [], "the app outlived its terminal"


# ---- an import killed midway --------------------------------------------------------------

KILL_IMPORT_ROWS = 300_000


def write_big_import(directory: Path, rows: int) -> tuple[Path, Path]:
    from helpers import write_bulk_file

    return write_bulk_file(directory, rows)


def snapshot(path: Path) -> dict:
    with Store.open(path, read_only=True) as store:
        return {
            "sets": {es.name: store.stats(es.id) for es in store.eval_sets()},
            "ratings": [
                (r.response_id, r.metric, r.rater, r.value)
                for es in store.eval_sets()
                for r in store.ratings(es.id)
            ],
            "fits": sum(len(store.fits(es.id)) for es in store.eval_sets()),
        }


def reading(pid: int, path: Path) -> bool:
    """Has process `pid` got `path` open (the importer is reading the file)?"""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


@pytest.mark.parametrize("phase", ["checking", "writing"])
def test_import_killed_midway_leaves_the_workspace_as_it_was(tmp_path, phase):
    """SIGKILL while the importer checks the file (nothing written yet) or while it merges
    (the WAL is growing): the workspace is exactly as before."""
    workspace = tmp_path / "kill.changeover"
    es = build_rate_workspace(workspace)
    with Store.open(workspace) as store:
        store.add_rating(store.browse(es.id, limit=1)[0].response_id, "correct", "ann", 1)
    before = snapshot(workspace)
    csv, spec = write_big_import(tmp_path, KILL_IMPORT_ROWS)
    wal = Path(f"{workspace}-wal")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "changeover.cli",
            "import",
            str(workspace),
            str(csv),
            "--spec",
            str(spec),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    started = time.monotonic()
    deadline = started + 120
    killed_with_wal = None
    while time.monotonic() < deadline and proc.poll() is None:
        size = wal.stat().st_size if wal.exists() else 0
        if (phase == "writing" and size > 1_000_000) or (
            phase == "checking" and reading(proc.pid, csv) and size < 1_000_000
        ):
            proc.kill()
            killed_with_wal = size
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert killed_with_wal is not None, f"the import ended first: {proc.stderr.read()[-500:]}"
    assert proc.returncode == -signal.SIGKILL
    if phase == "checking":
        assert killed_with_wal < 1_000_000, "already writing: not the phase under test"
    assert snapshot(workspace) == before
    with Store.open(workspace) as store:
        assert store.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [s.name for s in store.eval_sets()] == ["rate"]
    print(
        f"\nkilled the import while {phase} ({time.monotonic() - started:.1f}s in, "
        f"{killed_with_wal:,} bytes in the WAL); workspace unchanged"
    )


def response_shown(screen: str) -> str:
    """The 'Response N: ...' text on the rate screen."""
    return next(line.strip(" │|") for line in screen.splitlines() if "Response " in line)


@needs_tmux
def test_a_response_left_half_labelled_comes_back_first(tmp_path):
    """A session killed after one metric of a response: the next session of that rater gives
    that response back first, at its next metric, and `u` undoes the label given before."""
    workspace = tmp_path / "rate.changeover"
    es = build_rate_workspace(workspace)
    command = f"cd {ROOT} && {sys.executable} -m changeover.cli rate {workspace} --rater ann"
    term = Tmux(tmp_path, width=100, height=30)
    try:
        term.run(command)
        screen = term.wait_for(lambda s: "this session: 0 responses" in s and "Response " in s)
        left = response_shown(screen)
        term.keys("y")  # correct: yes; style not yet
        term.wait_for("✓ correct: yes", timeout=20)
        app = find_process(term.shell_pid(), "changeover.cli rate")
        os.kill(app, signal.SIGKILL)
        assert wait_gone(app, timeout=10)
        term.run("tput rmcup; clear; echo KILLED")  # SIGKILL left the app's screen up
        term.wait_for("KILLED\nREADY$", timeout=20)
        term.run(command)
        screen = term.wait_for(lambda s: "this session: 0 responses" in s and "Response " in s)
        assert response_shown(screen) == left
        assert "✓ correct: yes" in screen and "▶ style" in screen
        term.keys("u")
        screen = term.wait_for("▶ correct", timeout=20)
        assert "Nothing to undo" not in screen and response_shown(screen) == left
        term.keys("n", "3")
        term.wait_for("this session: 1 response", timeout=20)
        term.keys("q", "q")
        term.wait_for(lambda s: not term.alternate_on(), timeout=20)
    finally:
        term.close()
    with Store.open(workspace, read_only=True) as store:
        active = store.ratings(es.id, include_retracted=False)
    assert sorted((r.metric, r.value) for r in active) == [("correct", 0), ("style", 2)]
    assert len({r.response_id for r in active}) == 1
