"""The workspace file: schema and migrations, opening, and transactions.

Writes run in short `BEGIN IMMEDIATE` transactions (one per label); the journal is WAL so
readers never block the rater; a busy timeout rides out other writers. Ratings are
append-only events: an undo is a new row that retracts an earlier one.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from changeover.core.paths import private_folder
from changeover.core.store import files, fts
from changeover.core.types import IMPORT, ChangeoverError, WorkspaceError

APP_ID = files.APP_ID
SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 10_000
WRITE_WAIT_S = 120.0  # how long a write waits for the lock
WRITE_POLL_S = 0.002  # how often a waiting write asks for the lock again


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, split where a statement is complete (a trigger body or a
    string may hold semicolons)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending
            pending = ""


def _add_search_index(con: sqlite3.Connection) -> None:
    """Migration 2: the full-text index (core/store/fts.py), built for the rows already there.
    Without FTS5 trigrams (SQLite < 3.34) the workspace has none and search scans."""
    if fts.available(con):
        for statement in _statements(fts.SCHEMA):
            con.execute(statement)


MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {
    1: """
    CREATE TABLE changeover_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE eval_sets (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
        incumbent TEXT NOT NULL, judge TEXT NOT NULL DEFAULT 'judge', created_at TEXT NOT NULL);
    CREATE TABLE regions (
        eval_set_id INTEGER NOT NULL REFERENCES eval_sets(id), name TEXT NOT NULL,
        position INTEGER NOT NULL, traffic REAL NOT NULL, PRIMARY KEY (eval_set_id, name));
    CREATE TABLE metrics (
        eval_set_id INTEGER NOT NULL REFERENCES eval_sets(id), name TEXT NOT NULL,
        position INTEGER NOT NULL, levels TEXT NOT NULL, direction TEXT NOT NULL,
        margin REAL NOT NULL, guideline TEXT NOT NULL, keys TEXT NOT NULL,
        judge_map TEXT NOT NULL, unmapped TEXT NOT NULL, pass_level INTEGER,
        PRIMARY KEY (eval_set_id, name));
    CREATE TABLE models (
        eval_set_id INTEGER NOT NULL REFERENCES eval_sets(id), name TEXT NOT NULL,
        position INTEGER NOT NULL, PRIMARY KEY (eval_set_id, name));
    CREATE TABLE items (
        id INTEGER PRIMARY KEY, eval_set_id INTEGER NOT NULL REFERENCES eval_sets(id),
        external_id TEXT NOT NULL, region TEXT NOT NULL, question TEXT NOT NULL,
        reference TEXT, UNIQUE (eval_set_id, external_id));
    CREATE INDEX items_region ON items (eval_set_id, region);
    CREATE TABLE responses (
        id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id),
        model TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (item_id, model));
    CREATE INDEX responses_model ON responses (model, item_id);
    CREATE TABLE judgments (
        response_id INTEGER NOT NULL REFERENCES responses(id), metric TEXT NOT NULL,
        judge TEXT NOT NULL, value INTEGER, raw TEXT, score REAL, rationale TEXT,
        PRIMARY KEY (response_id, metric)) WITHOUT ROWID;
    CREATE TABLE ratings (
        id INTEGER PRIMARY KEY, response_id INTEGER NOT NULL REFERENCES responses(id),
        metric TEXT NOT NULL, rater TEXT NOT NULL, value INTEGER, created_at TEXT NOT NULL,
        blind INTEGER NOT NULL DEFAULT 1, source TEXT NOT NULL DEFAULT 'app',
        retracts INTEGER REFERENCES ratings(id));
    CREATE INDEX ratings_response ON ratings (response_id, metric);
    CREATE INDEX ratings_retracts ON ratings (retracts);
    CREATE VIEW active_ratings AS
        SELECT r.* FROM ratings r
        WHERE r.retracts IS NULL
          AND NOT EXISTS (SELECT 1 FROM ratings x WHERE x.retracts = r.id);
    CREATE TABLE fits (
        id INTEGER PRIMARY KEY, eval_set_id INTEGER NOT NULL REFERENCES eval_sets(id),
        created_at TEXT NOT NULL, settings TEXT NOT NULL, data_hash TEXT NOT NULL,
        diagnostics TEXT NOT NULL, summary TEXT NOT NULL, draws BLOB NOT NULL);
    """,
    2: _add_search_index,
    # 3: eval sets whose judged responses live elsewhere (a Parquet lake, a warehouse): their
    # judge-level counts and where they came from; the responses table keeps only a sample.
    3: """
    CREATE TABLE eval_set_sources (
        eval_set_id INTEGER PRIMARY KEY REFERENCES eval_sets(id), kind TEXT NOT NULL,
        period TEXT, location TEXT NOT NULL, files TEXT NOT NULL, rows INTEGER NOT NULL,
        fingerprint TEXT NOT NULL, sample_per_cell INTEGER, stratify TEXT, seed INTEGER,
        engine TEXT NOT NULL, spec TEXT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL);
    CREATE TABLE judged_counts (
        eval_set_id INTEGER NOT NULL REFERENCES eval_sets(id), metric TEXT NOT NULL,
        model TEXT NOT NULL, region TEXT NOT NULL, level INTEGER, n INTEGER NOT NULL);
    CREATE INDEX judged_counts_set ON judged_counts (eval_set_id, metric);
    """,
    # 4: a response an import moves to the item it shadows keeps its search index entry
    4: fts.keep_entries_on_move,
}


def open_label(alias: str) -> str:
    """SQL: the rating `alias` is open, chosen by a person (core.types.label_selection)."""
    return f"(NOT {alias}.blind AND {alias}.source <> '{IMPORT}')"


def now() -> str:
    """UTC timestamp with microseconds, sortable as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def is_workspace(path: str | os.PathLike) -> bool:
    """Whether `path` is a changeover workspace this version can open (read without writing a
    byte: an empty file, another program's database or a text file is not)."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        files.check_existing(path, SCHEMA_VERSION, verify=False)
    except (OSError, ChangeoverError):
        return False
    return True


class StoreBase:
    """The connection to a workspace file. Thread-safe: one connection guarded by a lock."""

    def __init__(
        self,
        con: sqlite3.Connection | files.ReadOnlyConnection,
        path: Path | None,
        read_only: bool = False,
    ):
        self._con = con
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        self._in_write = False

    @property
    def con(self) -> sqlite3.Connection:
        if isinstance(self._con, files.ReadOnlyConnection):
            return self._con.current()
        return self._con

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        create: bool = False,
        read_only: bool = False,
        verify: bool = True,
    ) -> Self:
        """Open (or with `create`, make) a workspace file; refuse foreign, newer or (when the
        check is cheap: `verify` and a small file) damaged files before writing to them."""
        path = Path(path)
        if path.exists():
            if path.is_dir():
                raise WorkspaceError(f"{path}: is a directory, not a workspace file")
            files.check_existing(path, SCHEMA_VERSION, verify)
        elif not create:
            raise WorkspaceError(f"{path}: no such workspace")
        elif read_only:
            raise WorkspaceError(f"{path}: no such workspace (and --read-only cannot create one)")
        else:
            try:
                private_folder(path.parent)
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise WorkspaceError(
                    f"{path}: cannot create a workspace there ({exc.strerror or exc})"
                ) from None
        if read_only:
            return cls(files.ReadOnlyConnection(path, BUSY_TIMEOUT_MS), path, read_only=True)
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        store = cls(con, path, read_only=read_only)
        try:
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            store.migrate()
        except sqlite3.OperationalError as exc:
            con.close()
            unwritable = not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
            if unwritable or "readonly" in str(exc):
                raise WorkspaceError(
                    f"{path}: cannot be written here ({exc}); open it with --read-only to review it"
                ) from None
            raise WorkspaceError(f"{path}: cannot be opened ({exc})") from None
        except sqlite3.DatabaseError as exc:
            con.close()
            raise files.damaged(path, exc) from None
        return store

    @classmethod
    def memory(cls) -> Self:
        """A fresh in-memory workspace, for tests."""
        con = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        store = cls(con, None)
        store.migrate()
        return store

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @contextmanager
    def reading(self) -> Iterator[Self]:
        """A second, read-only connection to the same workspace, for long reads in a worker
        thread (a count over a million rows) that must not hold this connection's lock; the
        store itself when it lives in memory."""
        if self.path is None:
            yield self
            return
        other = type(self).open(self.path, read_only=True, verify=False)
        try:
            yield other
        finally:
            other.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        return self.con.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> int:
        """Apply pending migrations; a no-op when the schema is current. Returns how many ran."""
        if (
            self.schema_version() == SCHEMA_VERSION
            and self._one("SELECT 1 FROM changeover_meta WHERE key = 'app'") is not None
        ):
            return 0  # current: no write lock taken, so opening never waits for a long writer
        ran = 0
        with self.write():
            version = self.schema_version()
            for target in sorted(v for v in MIGRATIONS if v > version):
                step = MIGRATIONS[target]
                if callable(step):
                    step(self.con)
                else:
                    for statement in _statements(step):
                        self.con.execute(statement)
                self.con.execute(f"PRAGMA user_version = {target}")
                ran += 1
            self.con.execute(
                "INSERT OR IGNORE INTO changeover_meta (key, value) VALUES ('app', ?)", (APP_ID,)
            )
        return ran

    # ---- transactions --------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction; committed on exit, rolled back on error."""
        if self.read_only:
            raise ChangeoverError(f"{self.path}: workspace is open read-only")
        with self._lock:
            if self._in_write:  # nested: join the outer transaction
                yield self.con
                return
            self._begin()
            self._in_write = True
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            else:
                self.con.execute("COMMIT")
            finally:
                self._in_write = False

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting out another writer rather than failing after one busy
        timeout; past WRITE_WAIT_S the error says what is going on. It asks for the lock every
        WRITE_POLL_S itself: SQLite's own busy handler retries ever more rarely (every 100 ms
        after the first 0.3 s), and would miss the pauses a big import leaves between its
        chunks (core/store/publish.py)."""
        deadline = time.monotonic() + WRITE_WAIT_S
        self.con.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    self.con.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    if time.monotonic() >= deadline:
                        raise ChangeoverError(
                            f"{self.path}: another process has kept the workspace locked for "
                            f"over {WRITE_WAIT_S:.0f} s (a large import?); nothing was written, "
                            "try again"
                        ) from None
                time.sleep(WRITE_POLL_S)
        finally:
            self.con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _rows(self, sql: str, params: Sequence | dict = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.con.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def _all(self, row_type: Any, sql: str, params: Sequence | dict = ()) -> list:
        """Every row of a query as `row_type` (a named tuple or dataclass whose fields are the
        query's columns, in order)."""
        with self._lock:
            return [row_type(*row) for row in self.con.execute(sql, params).fetchall()]

    def _one(self, sql: str, params: Sequence | dict = ()) -> Any:
        with self._lock:
            return self.con.execute(sql, params).fetchone()

    def _scalar(self, sql: str, params: Sequence | dict = ()) -> Any:
        row = self._one(sql, params)
        return None if row is None else row[0]
