"""Files that are not a whole changeover workspace — empty, damaged, another program's — are never
written to, nor beside: every command exits 1 with one line naming the file, no traceback, and
the file (and its folder) stay byte for byte as they were."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from changeover.cli.main import main
from changeover.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
SPEC = """
name = "mini"
incumbent = "old"
[regions]
"EU" = 2
[[metrics]]
name = "correct"
levels = ["no", "yes"]
"""
ROWS = "".join(
    f"q{i},EU,Question {i}?,{m},Answer {i} of {m}.,yes\n" for i in range(40) for m in ("old", "new")
)
DATA = "item_id,region,question,model,response,judge_correct\n" + ROWS
LABELS = "item_id,model,metric,rater,value\nq1,new,correct,ann,yes\n"
PAGE = 4096


def folder_state(folder: Path) -> dict[str, str]:
    """Every file of the folder and a hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def commands(ws: Path, files: Path) -> list[list[str]]:
    """Every command that takes a workspace, as a user would type it."""
    return [
        ["info", str(ws)],
        ["report", str(ws)],
        ["export", str(ws), "--what", "ratings"],
        ["fit", str(ws), "--quick"],
        ["import-labels", str(ws), str(files / "labels.csv")],
        ["import", str(ws), str(files / "data.csv"), "--spec", str(files / "spec.toml")],
        ["rate", str(ws), "--rater", "ann"],
        ["open", str(ws)],
        ["open", str(ws), "--read-only"],
    ]


@pytest.fixture
def files(tmp_path) -> Path:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "spec.toml").write_text(SPEC)
    (inputs / "data.csv").write_text(DATA)
    (inputs / "labels.csv").write_text(LABELS)
    return inputs


def run_cli(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHANGEOVER_CONFIG_DIR": str(home / "config")}
    return subprocess.run(
        [sys.executable, "-m", "changeover.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def test_an_empty_file_is_refused_by_every_command_and_left_empty(tmp_path, files):
    """Issue 20 item 2: `: > z.changeover; changeover info z.changeover` printed a traceback
    (`no such table: eval_sets`); fit, import-labels, rate and open wrote a schema into it."""
    where = tmp_path / "ws"
    where.mkdir()
    ws = where / "z.changeover"
    ws.touch()
    before = folder_state(where)
    for args in commands(ws, files):
        out = run_cli(args, tmp_path)
        shown = f"{args[0]}: {out.stderr!r}"
        assert out.returncode == 1, shown
        assert "Traceback" not in out.stderr, shown
        assert out.stderr.count("\n") == 1, shown  # one line
        assert "z.changeover: an empty file, not a changeover workspace" in out.stderr, shown
        assert folder_state(where) == before, shown  # no schema, no -wal, no -shm


def damaged_copies(tmp_path: Path, files: Path) -> tuple[Path, list[Path]]:
    """A workspace with responses and a label, and copies of it with zeros over one page each
    (the header page included)."""
    good = tmp_path / "good.changeover"
    assert (
        main(["import", str(good), str(files / "data.csv"), "--spec", str(files / "spec.toml")])
        == 0
    )
    assert main(["import-labels", str(good), str(files / "labels.csv")]) == 0
    assert not Path(f"{good}-wal").exists()
    data = good.read_bytes()
    copies = []
    for page in range(len(data) // PAGE):
        d = tmp_path / f"page{page}"
        d.mkdir()
        copy = d / "w.changeover"
        copy.write_bytes(data[: page * PAGE] + bytes(PAGE) + data[(page + 1) * PAGE :])
        copies.append(copy)
    return good, copies


def whole(path: Path) -> bool:
    """SQLite's own verdict on a file, read without writing anything."""
    try:
        con = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            return con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False


def test_a_damaged_workspace_is_never_written_to(tmp_path, files, capsys):
    """Issue 21 item 5: import-labels wrote into 9 of 18 damaged workspaces and exited 0. Zeros
    over any one page: every writing command refuses the file (exit 1, one line naming it,
    nothing written), unless SQLite finds the file whole (a page nothing uses)."""
    _, copies = damaged_copies(tmp_path, files)
    refused = 0
    for copy in copies:
        before = folder_state(copy.parent)
        intact = whole(copy)
        for args in commands(copy, files)[:6]:
            code = main(args)
            err = capsys.readouterr().err
            shown = f"{copy.parent.name} {args[0]}: {err!r}"
            if intact:
                continue
            assert code == 1, shown
            assert err.count("\n") == 1 and str(copy) in err, shown
            assert folder_state(copy.parent) == before, shown
            refused += 1
    print(f"\n{len(copies)} damaged copies, {refused} refusals")
    assert refused >= 6 * (len(copies) - 2)  # all but free pages are caught


def test_a_damaged_workspace_through_the_cli(tmp_path, files):
    """The user's path: zeros over a page of the ratings, then import-labels and info."""
    good, copies = damaged_copies(tmp_path, files)
    with Store.open(good, read_only=True) as store:
        page = store.con.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'ratings'"
        ).fetchone()[0]
    copy = copies[page - 1]
    before = folder_state(copy.parent)
    for args in (commands(copy, files)[4], commands(copy, files)[0]):
        out = run_cli(args, tmp_path)
        assert out.returncode == 1, out.stderr
        assert "the workspace file is damaged" in out.stderr and "Traceback" not in out.stderr
        assert folder_state(copy.parent) == before


def test_another_programs_files_are_left_alone(tmp_path, files):
    """A text file and another program's SQLite database given as the workspace."""
    where = tmp_path / "ws"
    where.mkdir()
    (where / "notes.txt").write_text("not a workspace\n")
    con = sqlite3.connect(where / "other.db")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE t (x)")
    con.close()
    before = folder_state(where)
    for name in ("notes.txt", "other.db"):
        for args in (commands(where / name, files)[4], commands(where / name, files)[6]):
            out = run_cli(args, tmp_path)
            assert out.returncode == 1 and "not a changeover workspace" in out.stderr, out.stderr
            assert "Traceback" not in out.stderr
    assert folder_state(where) == before
