"""Looking at a workspace file without writing to it: is it a changeover workspace, is it whole,
and a read-only connection that writes no byte anywhere.

SQLite's `mode=ro` on a WAL database makes `-wal` and `-shm` files beside it when they are
missing (and leaves them there). When they are missing nobody has the workspace open, so it is
read `immutable=1`, which needs neither; once a writer comes along (its `-wal` appears, or the
file changes) the reader switches to `mode=ro`, whose files the writer has made by then.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from changeover.core.text import inert
from changeover.core.types import ChangeoverError, WorkspaceError

APP_ID = "changeover"
# Whole-file checks (PRAGMA quick_check) run on files up to this size: about 0.14 s for 53 MB
# (100k responses) on the project's machine, so a few tenths of a second at most.
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024


def sidecar(path: Path, suffix: str) -> Path:
    return Path(f"{path}{suffix}")


def reader_uri(path: Path) -> str:
    """How to read `path` without creating a file: `mode=ro` when a writer's `-wal` is there
    (it keeps the `-shm` too), else `immutable=1`."""
    params = "mode=ro" if sidecar(path, "-wal").exists() else "immutable=1"
    return f"file:{path}?{params}"


def _peek(uri: str, path: Path, verify: bool) -> tuple[set[str], int, str | None]:
    """Tables, schema version and app id of a database, read through `uri`; with `verify`,
    checked whole first when that is cheap (`check_whole`)."""
    con = sqlite3.connect(uri, uri=True)
    try:
        if verify:
            check_whole(con, path)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = con.execute("PRAGMA user_version").fetchone()[0]
        app = None
        if "changeover_meta" in tables:
            row = con.execute("SELECT value FROM changeover_meta WHERE key='app'").fetchone()
            app = row[0] if row else None
        return tables, version, app
    finally:
        con.close()


def check_existing(path: Path, newest_schema: int, verify: bool = True) -> None:
    """Refuse a file that is not a changeover workspace, or (with `verify`, when cheap) a
    damaged one, without writing a byte to it or beside it."""
    if path.stat().st_size == 0:
        raise WorkspaceError(
            f"{_shown(path)}: an empty file, not a changeover workspace (nothing was written to "
            "it; to make a workspace, name a file that does not exist)"
        )
    try:
        try:
            tables, version, app = _peek(reader_uri(path), path, verify)
        except sqlite3.OperationalError:
            # a cleanly closed WAL workspace on a read-only file system: no -shm can be made
            tables, version, app = _peek(f"file:{path}?immutable=1", path, verify)
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(f"{_shown(path)}: not a changeover workspace ({exc})") from None
    if app != APP_ID:
        what = "an empty SQLite database" if not tables else "a SQLite database of another program"
        raise WorkspaceError(f"{_shown(path)}: not a changeover workspace ({what})")
    if version > newest_schema:
        raise WorkspaceError(
            f"{_shown(path)}: written by a newer changeover (schema {version}; this version "
            f"reads up to {newest_schema}). Upgrade changeover to open it."
        )


def check_whole(con: sqlite3.Connection, path: Path) -> None:
    """PRAGMA quick_check when the file is small enough for it to be cheap: a damaged workspace
    is refused before anything reads wrong numbers from it or writes into it."""
    if path.stat().st_size > QUICK_CHECK_MAX_BYTES:
        return
    try:
        found = [row[0] for row in con.execute("PRAGMA quick_check(3)")]
    except sqlite3.OperationalError:
        raise  # cannot read it here (a read-only file system): check_existing tries otherwise
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise  # not SQLite at all: check_existing says so
        found = [str(exc)]
    if found != ["ok"]:
        lines = [x for f in found for x in f.splitlines() if x and not x.startswith("***")]
        raise damaged(path, "; ".join(lines))


def damaged(path: Path | None, detail: object) -> WorkspaceError:
    """The error a damaged workspace file gives, whichever command met it."""
    return WorkspaceError(
        f"{_shown(path)}: the workspace file is damaged ({inert(detail, ascii=True)}); "
        "nothing was written to it. Use a copy from before the damage"
    )


def user_error(exc: Exception, workspace: str | os.PathLike | None) -> ChangeoverError | None:
    """A failure the user can act on, as the error that says so, or None (a bug): a damaged
    workspace found after it was opened (one too big to check whole first), a file or disk
    the system refused."""
    where = Path(workspace) if workspace is not None else None
    if isinstance(exc, sqlite3.OperationalError):
        if any(w in str(exc) for w in ("disk is full", "disk I/O", "readonly", "unable to open")):
            return ChangeoverError(f"{_shown(where)}: {exc}")
        return None
    if isinstance(exc, sqlite3.DatabaseError):  # SQLITE_CORRUPT, SQLITE_NOTADB
        return damaged(where, exc)
    if isinstance(exc, OSError) and exc.strerror:
        return ChangeoverError(f"{_shown(exc.filename or where)}: {exc.strerror}")
    return None


def _shown(path: object) -> str:
    return inert(path if path is not None else "this workspace", newlines=False, ascii=True)


def _state(path: Path) -> tuple:
    """What tells a reader that a writer has been at the file: its -wal, and the file's stat."""
    try:
        st = path.stat()
    except OSError:
        return ()
    return (sidecar(path, "-wal").exists(), st.st_ino, st.st_size, st.st_mtime_ns)


class ReadOnlyConnection:
    """A read-only connection that writes nothing beside the workspace (see the module's
    docstring). `current()` is the connection to use now."""

    def __init__(self, path: Path, busy_timeout_ms: int):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.retired: list[sqlite3.Connection] = []  # cursors of a page stream may still run
        self.con, self.state = self._connect()

    def _connect(self) -> tuple[sqlite3.Connection, tuple | None]:
        state = _state(self.path)
        # mode=ro needs the -shm of a WAL database; on a read-only file system `immutable=1`
        # is the only way in (no other process can be writing there anyway).
        for uri in dict.fromkeys((reader_uri(self.path), f"file:{self.path}?immutable=1")):
            con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            try:
                con.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return con, (state if "immutable" in uri else None)
            except sqlite3.OperationalError:
                con.close()
        raise WorkspaceError(f"{_shown(self.path)}: cannot be opened for reading")

    def current(self) -> sqlite3.Connection:
        """The connection, opened again first if it reads `immutable` and a writer came."""
        watching = self.state is not None and not self.con.in_transaction
        if watching and _state(self.path) != self.state:
            self.retired.append(self.con)
            self.con, self.state = self._connect()
        return self.con

    def close(self) -> None:
        for con in (*self.retired, self.con):
            con.close()
