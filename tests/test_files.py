"""Workspace files: private on creation, untouched by a read-only review, readable from a
read-only file system."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import canned_fitter

from changeover.core.settings import Settings
from changeover.core.store import Store
from changeover.core.types import (
    BrowseFilter,
    ChangeoverError,
    Diagnostics,
    EvalSet,
    Metric,
    Region,
    WorkspaceError,
)
from changeover.core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def spec() -> EvalSet:
    return EvalSet(
        id=0,
        name="files",
        incumbent="old",
        regions=(Region("EU", 3.0), Region("US", 1.0)),
        metrics=(Metric("correct", ("no", "yes"), "higher", 0.03, "Right?", ("n", "y")),),
    )


def populate(store: Store, n: int = 40) -> EvalSet:
    es = store.save_eval_set(spec())
    with store.importing(es.id) as batch:
        batch.add_responses(
            [
                (
                    f"q{i // 2}",
                    "EU" if i % 3 else "US",
                    f"Question {i // 2}?",
                    None,
                    "old" if i % 2 else "new",
                    f"Answer {i}.",
                )
                for i in range(n)
            ]
        )
        batch.add_judgments(
            [
                (
                    f"q{i // 2}",
                    "old" if i % 2 else "new",
                    "correct",
                    "judge",
                    i % 2,
                    None,
                    None,
                    None,
                )
                for i in range(n)
            ]
        )
    return es


def fingerprint(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def review(store: Store, es_id: int) -> dict:
    """Everything a reviewer reads: eval sets, browse pages, details, counts, ratings."""
    rows = store.browse(es_id, BrowseFilter(search="answer"), limit=10)
    return {
        "sets": [e.name for e in store.eval_sets()],
        "stats": store.stats(es_id),
        "rows": len(rows),
        "count": store.browse_count(es_id, BrowseFilter(region="EU")),
        "view": store.response_view(rows[0].response_id).response.text,
        "judge_counts": len(store.judge_level_counts(es_id)),
        "votes": len(store.label_votes(es_id)),
        "ratings": len(store.ratings(es_id)),
    }


def test_new_workspace_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        path = tmp_path / "new.changeover"
        with Store.open(path, create=True) as store:
            es = populate(store)
            store.add_rating(store.browse(es.id, limit=1)[0].response_id, "correct", "ann", 1)
            sidecars = [p for p in tmp_path.iterdir() if p.name.startswith("new.changeover-")]
            assert sidecars, "a WAL workspace has -wal/-shm files while open"
            assert {p.name: mode(p) for p in sidecars} == {p.name: 0o600 for p in sidecars}
        assert mode(path) == 0o600
    finally:
        os.umask(old)


def test_read_only_review_writes_nothing(tmp_path):
    path = tmp_path / "review.changeover"
    with Store.open(path, create=True) as store:
        es = populate(store)
        store.add_rating(store.browse(es.id, limit=1)[0].response_id, "correct", "ann", 1)
    before = fingerprint(path)
    with Store.open(path, read_only=True) as store:
        seen = review(store, es.id)
        rid = store.browse(es.id, limit=1)[0].response_id
        with pytest.raises(ChangeoverError, match="read-only"):
            store.add_rating(rid, "correct", "bob", 0)
        with pytest.raises(ChangeoverError, match="read-only"):
            store.retract(store.ratings(es.id)[0].id, "ann")
        with pytest.raises(ChangeoverError, match="read-only"):
            store.save_fit(es.id, Settings(), "h", Diagnostics(ok=True), b"")
        with pytest.raises(ChangeoverError, match="read-only"), store.importing(es.id):
            pass
    assert seen["ratings"] == 1 and seen["stats"].responses == 40 and seen["rows"] == 10
    assert fingerprint(path) == before
    # The CLI's read-only commands leave it as it was too.
    out = subprocess.run(
        [sys.executable, "-m", "changeover.cli", "info", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "40 responses" in out.stdout
    assert fingerprint(path) == before


def test_read_only_cannot_create(tmp_path):
    with pytest.raises(WorkspaceError, match="no such workspace"):
        Store.open(tmp_path / "none.changeover", read_only=True)
    assert not (tmp_path / "none.changeover").exists()


@pytest.fixture
def ro_mount(tmp_path):
    """A tmpfs that the test fills, then remounts read-only. Needs root and mount(8)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a read-only file system needs root and mount(8)")
    where = tmp_path / "mnt"
    where.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"mount not permitted here: {made.stderr.strip()}")

    def remount_ro() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)

    try:
        yield where, remount_ro
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_workspace_on_a_read_only_file_system(ro_mount):
    where, remount_ro = ro_mount
    clean = where / "clean.changeover"
    with Store.open(clean, create=True) as store:
        es = populate(store)
        store.add_rating(store.browse(es.id, limit=1)[0].response_id, "correct", "ann", 1)
    # A copy taken while a rater was at work: its last labels are still in the -wal file.
    live = where / "live.changeover"
    with Store.open(where / "src.changeover", create=True) as store:
        es2 = populate(store)
        for row in store.browse(es2.id, limit=5):
            store.add_rating(row.response_id, "correct", "ann", 1)
        assert (where / "src.changeover-wal").stat().st_size > 0
        for suffix in ("", "-wal", "-shm"):
            shutil.copy2(where / f"src.changeover{suffix}", where / f"live.changeover{suffix}")
    remount_ro()
    with pytest.raises(OSError):
        (where / "probe").write_text("x")
    before = fingerprint(clean)

    with Store.open(clean, read_only=True) as store:
        seen = review(store, es.id)
        with pytest.raises(ChangeoverError, match="read-only"):
            store.add_rating(1, "correct", "bob", 0)
    assert seen["ratings"] == 1 and seen["stats"].responses == 40
    with Store.open(live, read_only=True) as store:
        assert review(store, es2.id)["ratings"] == 5  # the labels in the -wal are seen
    # Opened for writing, it is refused with a message that says what to do (no traceback).
    with pytest.raises(WorkspaceError, match="--read-only"):
        Store.open(clean)
    out = subprocess.run(
        [sys.executable, "-m", "changeover.cli", "info", str(clean)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "40 responses" in out.stdout and "1 ratings" in out.stdout
    assert fingerprint(clean) == before


# ---- the app and the CLI on a read-only workspace ------------------------------------------


@pytest.fixture
def reviewed(tmp_path) -> tuple[Path, EvalSet]:
    """A closed workspace with labels and a kept fit, as a reviewer receives it."""
    path = tmp_path / "reviewed.changeover"
    with Store.open(path, create=True) as store:
        es = populate(store)
        for k, row in enumerate(store.browse(es.id, limit=40)):
            store.add_rating(row.response_id, "correct", "ann", k % 2)
        Workspace(store, canned_fitter()).fit(es, Settings.quick())
    return path, es


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHANGEOVER_CONFIG_DIR": str(Path(args[1]).parent / "config")}
    return subprocess.run(
        [sys.executable, "-m", "changeover.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def test_read_only_cli_report_and_export_write_nothing(reviewed):
    path, _ = reviewed
    before = fingerprint(path)
    out = cli("report", str(path), "--format", "markdown")
    assert out.returncode == 0, out.stderr
    assert "old" in out.stdout and "new" in out.stdout
    out = cli("export", str(path), "--what", "ratings")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") >= 40
    out = cli("rate", str(path), "--read-only", "--rater", "bob")
    assert out.returncode == 1
    assert "read-only" in out.stderr and "Traceback" not in out.stderr
    assert fingerprint(path) == before


def review_in_app(path: Path, es: EvalSet) -> list[str]:
    """A read-only review in the app: try to rate twice and to fit once; returns the refusals."""
    import asyncio

    from changeover.tui.app import ChangeoverApp
    from changeover.tui.screens.browse import BrowseScreen
    from changeover.tui.screens.rate import RateScreen

    notes: list[str] = []

    async def session() -> None:
        with Store.open(path, read_only=True) as store:
            app = ChangeoverApp(Workspace(store), rater="bob", read_only=True, seed=1)
            async with app.run_test(size=(100, 30)) as pilot:
                original = app.notify
                app.notify = lambda message, *a, **k: (
                    notes.append(str(message)),
                    original(message, *a, **k),
                )[1]
                await pilot.pause()
                await pilot.press("r")  # rate from the eval sets screen
                await pilot.pause()
                assert not isinstance(app.screen, RateScreen)
                await pilot.press("enter")  # browse
                await pilot.pause()
                await app.workers.wait_for_complete()
                assert isinstance(app.screen, BrowseScreen) and app.screen.rows
                await pilot.press("down", "enter")  # "rate openly" from browse
                await pilot.pause()
                assert not isinstance(app.screen, RateScreen)
                await pilot.press("q", "v")  # results of the kept fit
                await pilot.pause()
                await app.workers.wait_for_complete()
                await pilot.press("f")  # a fit would write: refused too
                await pilot.pause()
                await app.workers.wait_for_complete()
                await pilot.pause()
            assert len(store.fits(es.id)) == 1 and len(store.ratings(es.id)) == 40

    asyncio.run(session())
    return [n for n in notes if "read-only" in n]


def test_read_only_app_reviews_and_refuses_rating(reviewed):
    path, es = reviewed
    before = fingerprint(path)
    refusals = review_in_app(path, es)
    print("\nread-only refusals:", refusals)
    assert len(refusals) == 3, refusals  # rate, rate openly, fit
    assert fingerprint(path) == before


def test_review_on_a_read_only_file_system(reviewed, ro_mount):
    """The same review, CLI and app, of a workspace on a read-only mount."""
    src, es = reviewed
    where, remount_ro = ro_mount
    path = where / src.name
    shutil.copy2(src, path)
    remount_ro()
    before = fingerprint(path)
    out = cli("report", str(path), "--format", "text")
    assert out.returncode == 0, out.stderr
    out = cli("rate", str(path), "--rater", "bob")  # without --read-only: refused, clearly
    assert out.returncode == 1 and "--read-only" in out.stderr and "Traceback" not in out.stderr
    assert len(review_in_app(path, es)) == 3
    assert fingerprint(path) == before


def test_export_report_on_a_read_only_file_system_is_refused_not_a_crash(reviewed, ro_mount):
    import asyncio

    from changeover.tui.app import ChangeoverApp

    src, es = reviewed
    where, remount_ro = ro_mount
    path = where / src.name
    shutil.copy2(src, path)
    remount_ro()
    notes: list[str] = []

    async def session() -> None:
        with Store.open(path, read_only=True) as store:
            app = ChangeoverApp(Workspace(store), rater="bob", read_only=True, seed=1)
            async with app.run_test(size=(100, 30)) as pilot:
                original = app.notify
                app.notify = lambda message, *a, **k: (
                    notes.append(str(message)),
                    original(message, *a, **k),
                )[1]
                await pilot.pause()
                app.export_report(store.eval_set(es.id))
                await pilot.pause()
                await app.workers.wait_for_complete()
                await pilot.pause()
                assert app.is_running

    asyncio.run(session())
    assert any("report" in n.lower() for n in notes), notes
