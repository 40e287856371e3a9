"""The workspace: one SQLite file. The only module that knows table and column names.

Writes run in short `BEGIN IMMEDIATE` transactions (one per label); the journal is WAL so
readers never block the rater; a busy timeout rides out other writers. Ratings are
append-only events: an undo is a new row that retracts an earlier one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from changeover.core.types import (
    BrowseFilter,
    BrowseRow,
    ChangeoverError,
    EvalSet,
    FitRecord,
    Item,
    Judgment,
    Metric,
    Rating,
    Region,
    Response,
    ResponseView,
    WorkspaceError,
)

APP_ID = "changeover"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
WRITE_WAIT_S = 120.0  # how long a write waits for the lock, busy timeout after busy timeout
IMPORT_CACHE_KB = 128 * 1024  # page cache during a bulk import (importing_eval_set)

MIGRATIONS: dict[int, str] = {
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
}


def now() -> str:
    """UTC timestamp with microseconds, sortable as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _peek(uri: str) -> tuple[set[str], int, str | None]:
    """Tables, schema version and app id of a database, read through `uri`."""
    con = sqlite3.connect(uri, uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = con.execute("PRAGMA user_version").fetchone()[0]
        app = None
        if "changeover_meta" in tables:
            row = con.execute("SELECT value FROM changeover_meta WHERE key='app'").fetchone()
            app = row[0] if row else None
        return tables, version, app
    finally:
        con.close()


def _check_existing(path: Path) -> None:
    """Refuse a file that is not a changeover workspace, without writing a byte to it."""
    if path.stat().st_size == 0:
        return
    try:
        try:
            tables, version, app = _peek(f"file:{path}?mode=ro")
        except sqlite3.OperationalError:
            # A cleanly closed WAL workspace on a read-only file system: no -shm can be made.
            tables, version, app = _peek(f"file:{path}?immutable=1")
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(f"{path}: not a changeover workspace ({exc})") from None
    if app != APP_ID:
        what = "an empty SQLite database" if not tables else "a SQLite database of another program"
        raise WorkspaceError(f"{path}: not a changeover workspace ({what})")
    if version > SCHEMA_VERSION:
        raise WorkspaceError(
            f"{path}: written by a newer changeover (schema {version}; this version reads up to "
            f"{SCHEMA_VERSION}). Upgrade changeover to open it."
        )


class Store:
    """A changeover workspace. Thread-safe: one connection guarded by a lock."""

    def __init__(self, con: sqlite3.Connection, path: Path | None, read_only: bool = False):
        self.con = con
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        self._in_write = False

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, create: bool = False, read_only: bool = False) -> Store:
        """Open (or with `create`, make) a workspace file; refuse foreign or newer files."""
        path = Path(path)
        if path.exists():
            if path.is_dir():
                raise WorkspaceError(f"{path}: is a directory, not a workspace file")
            _check_existing(path)
        elif not create:
            raise WorkspaceError(f"{path}: no such workspace")
        elif read_only:
            raise WorkspaceError(f"{path}: no such workspace (and --read-only cannot create one)")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        if read_only:
            con = cls._connect_read_only(path)
        else:
            con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        store = cls(con, path, read_only=read_only)
        if not read_only:
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
                        f"{path}: cannot be written here ({exc}); open it with --read-only "
                        "to review it"
                    ) from None
                raise WorkspaceError(f"{path}: cannot be opened ({exc})") from None
        return store

    @staticmethod
    def _connect_read_only(path: Path) -> sqlite3.Connection:
        # mode=ro still needs the -shm file of a WAL database; on a read-only file system
        # `immutable=1` is the only way in (no other process can be writing there anyway).
        for params in ("mode=ro", "immutable=1"):
            con = sqlite3.connect(
                f"file:{path}?{params}", uri=True, isolation_level=None, check_same_thread=False
            )
            try:
                con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return con
            except sqlite3.OperationalError:
                con.close()
        raise WorkspaceError(f"{path}: cannot be opened for reading")

    @classmethod
    def memory(cls) -> Store:
        """A fresh in-memory workspace, for tests."""
        con = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        store = cls(con, None)
        store.migrate()
        return store

    def close(self) -> None:
        with self._lock:
            self.con.close()

    @contextmanager
    def reading(self) -> Iterator[Store]:
        """A second, read-only connection to the same workspace, for long reads in a worker
        thread (a count over a million rows) that must not hold this connection's lock; the
        store itself when it lives in memory."""
        if self.path is None:
            yield self
            return
        other = Store.open(self.path, read_only=True)
        try:
            yield other
        finally:
            other.close()

    def __enter__(self) -> Store:
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
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
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
        """BEGIN IMMEDIATE, waiting out a long writer (a big import's merge) rather than failing
        after one busy timeout; past WRITE_WAIT_S the error says what is going on."""
        deadline = time.monotonic() + WRITE_WAIT_S
        while True:
            try:
                self.con.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise ChangeoverError(
                        f"{self.path}: another process has kept the workspace locked for over "
                        f"{WRITE_WAIT_S:.0f} s (a large import?); nothing was written, try again"
                    ) from None

    def _rows(self, sql: str, params: Sequence | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self.con.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def _one(self, sql: str, params: Sequence | dict = ()):
        with self._lock:
            return self.con.execute(sql, params).fetchone()

    # ---- eval sets -----------------------------------------------------------------------

    def save_eval_set(self, es: EvalSet) -> EvalSet:
        """Insert an eval set, or update the settings of one with that name.

        Levels of an existing metric cannot change (stored judgments and ratings index them).
        """
        with self.write() as con:
            row = con.execute("SELECT id FROM eval_sets WHERE name = ?", (es.name,)).fetchone()
            if row is None:
                cur = con.execute(
                    "INSERT INTO eval_sets (name, description, incumbent, judge, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (es.name, es.description, es.incumbent, es.judge, now()),
                )
                set_id = cur.lastrowid
            else:
                set_id = row[0]
                old = self.eval_set(set_id)
                for m in es.metrics:
                    if (
                        m.name in {x.name for x in old.metrics}
                        and old.metric(m.name).levels != m.levels
                    ):
                        raise ChangeoverError(
                            f"eval set {es.name!r}: metric {m.name!r} has levels "
                            f"{list(old.metric(m.name).levels)} in the workspace, not {list(m.levels)}"
                        )
                con.execute(
                    "UPDATE eval_sets SET description = ?, incumbent = ?, judge = ? WHERE id = ?",
                    (es.description, es.incumbent, es.judge, set_id),
                )
            for pos, r in enumerate(es.regions):
                con.execute(
                    "INSERT INTO regions (eval_set_id, name, position, traffic) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (eval_set_id, name) DO UPDATE SET traffic = excluded.traffic",
                    (set_id, r.name, pos, r.traffic),
                )
            for pos, m in enumerate(es.metrics):
                con.execute(
                    "INSERT INTO metrics (eval_set_id, name, position, levels, direction, margin, "
                    "guideline, keys, judge_map, unmapped, pass_level) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (eval_set_id, name) DO UPDATE "
                    "SET direction = excluded.direction, margin = excluded.margin, "
                    "guideline = excluded.guideline, keys = excluded.keys, "
                    "judge_map = excluded.judge_map, unmapped = excluded.unmapped, "
                    "pass_level = excluded.pass_level",
                    (
                        set_id,
                        m.name,
                        pos,
                        json.dumps(list(m.levels)),
                        m.direction,
                        m.margin,
                        m.guideline,
                        json.dumps(list(m.keys)),
                        json.dumps(list(m.judge_map)),
                        m.unmapped,
                        m.pass_level,
                    ),
                )
        return self.eval_set(set_id)

    def eval_set(self, key: int | str) -> EvalSet:
        """An eval set by id or name."""
        col = "id" if isinstance(key, int) else "name"
        rows = self._rows(f"SELECT * FROM eval_sets WHERE {col} = ?", (key,))
        if not rows:
            raise ChangeoverError(f"no eval set {key!r} in {self.path or 'this workspace'}")
        e = rows[0]
        regions = tuple(
            Region(r["name"], r["traffic"])
            for r in self._rows(
                "SELECT name, traffic FROM regions WHERE eval_set_id = ? ORDER BY position",
                (e["id"],),
            )
        )
        metrics = tuple(
            Metric(
                name=m["name"],
                levels=tuple(json.loads(m["levels"])),
                direction=m["direction"],
                margin=m["margin"],
                guideline=m["guideline"],
                keys=tuple(json.loads(m["keys"])),
                judge_map=tuple(tuple(p) for p in json.loads(m["judge_map"])),
                unmapped=m["unmapped"],
                pass_level=m["pass_level"],
            )
            for m in self._rows(
                "SELECT * FROM metrics WHERE eval_set_id = ? ORDER BY position", (e["id"],)
            )
        )
        return EvalSet(
            id=e["id"],
            name=e["name"],
            incumbent=e["incumbent"],
            regions=regions,
            metrics=metrics,
            description=e["description"],
            judge=e["judge"],
            created_at=e["created_at"],
        )

    def eval_sets(self) -> list[EvalSet]:
        return [self.eval_set(r["id"]) for r in self._rows("SELECT id FROM eval_sets ORDER BY id")]

    def models(self, eval_set_id: int) -> list[str]:
        """Models of an eval set in import order (the incumbent is wherever the file put it)."""
        return [
            r["name"]
            for r in self._rows(
                "SELECT name FROM models WHERE eval_set_id = ? ORDER BY position", (eval_set_id,)
            )
        ]

    def stats(self, eval_set_id: int) -> dict[str, int]:
        """Counts of items, responses, judgments, ratings (active) and labelled responses."""
        q = {
            "items": "SELECT count(*) FROM items WHERE eval_set_id = ?",
            "responses": "SELECT count(*) FROM responses r JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ?",
            "judgments": "SELECT count(*) FROM judgments j JOIN responses r ON r.id = j.response_id "
            "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ?",
            "judgments_missing": "SELECT count(*) FROM judgments j JOIN responses r "
            "ON r.id = j.response_id JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ? AND j.value IS NULL",
            "ratings": "SELECT count(*) FROM active_ratings a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ?",
            "labelled_responses": "SELECT count(DISTINCT a.response_id) FROM active_ratings a "
            "JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ?",
        }
        return {k: self._one(sql, (eval_set_id,))[0] for k, sql in q.items()}

    # ---- import --------------------------------------------------------------------------

    @contextmanager
    def importing(self, eval_set_id: int) -> Iterator[ImportBatch]:
        """All-or-nothing bulk import: stage rows, then merge them set-wise in one transaction.

        Staging writes only this connection's temporary tables, so it runs before the write
        lock is taken: raters labelling meanwhile wait for the merge alone, not the staging.
        """
        if self.read_only:
            raise ChangeoverError(f"{self.path}: workspace is open read-only")
        with self._lock:
            if self._in_write:  # inside the caller's transaction: stage and merge there
                batch = ImportBatch(self, eval_set_id)
                batch._create_stage()
                try:
                    yield batch
                    batch._merge()
                finally:
                    batch._drop_stage()
                return
            batch = ImportBatch(self, eval_set_id)
            batch._create_stage()
            try:
                yield batch
                with self.write():
                    batch._merge()
            finally:
                batch._drop_stage()

    @contextmanager
    def importing_eval_set(self, es: EvalSet) -> Iterator[ImportBatch]:
        """Like `importing`, but the eval set is saved (created or updated) in the merge's own
        transaction, so a failed import leaves neither rows nor a new eval set behind."""
        if self.read_only:
            raise ChangeoverError(f"{self.path}: workspace is open read-only")
        with self._lock:
            # A big import touches far more pages than the default 2 MB cache holds.
            caches = {
                db: self.con.execute(f"PRAGMA {db}.cache_size").fetchone()[0]
                for db in ("main", "temp")
            }
            for db in caches:
                self.con.execute(f"PRAGMA {db}.cache_size = -{IMPORT_CACHE_KB}")
            batch = ImportBatch(self, 0)
            batch._create_stage()
            try:
                yield batch
                with self.write():
                    batch.eval_set_id = self.save_eval_set(es).id
                    batch._merge()
            finally:
                batch._drop_stage()
                for db, size in caches.items():
                    self.con.execute(f"PRAGMA {db}.cache_size = {size}")

    # ---- lookups for the importer's checks ----------------------------------------------

    def item_index(self, eval_set_id: int) -> list[tuple[str, str, str]]:
        """(external_id, region, question) of every item of an eval set."""
        with self._lock:
            return self.con.execute(
                "SELECT external_id, region, question FROM items WHERE eval_set_id = ?",
                (eval_set_id,),
            ).fetchall()

    def response_keys(self, eval_set_id: int, external_ids: Iterable[str]) -> set[tuple[str, str]]:
        """The (external_id, model) pairs that have a response, among the given items."""
        ids, found = list(dict.fromkeys(external_ids)), set()
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                found.update(
                    self.con.execute(
                        "SELECT i.external_id, r.model FROM responses r JOIN items i ON i.id = r.item_id "
                        f"WHERE i.eval_set_id = ? AND i.external_id IN ({','.join('?' * len(part))})",
                        [eval_set_id, *part],
                    ).fetchall()
                )
        return found

    def rating_keys(self, eval_set_id: int) -> list[tuple[str, str, str, str, int | None, bool]]:
        """(external_id, model, metric, rater, value, active) of every label event that is not
        itself a retraction."""
        with self._lock:
            return [
                (*r[:5], bool(r[5]))
                for r in self.con.execute(
                    "SELECT i.external_id, r.model, a.metric, a.rater, a.value, "
                    "NOT EXISTS (SELECT 1 FROM ratings x WHERE x.retracts = a.id) "
                    "FROM ratings a JOIN responses r ON r.id = a.response_id "
                    "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ? AND a.retracts IS NULL",
                    (eval_set_id,),
                ).fetchall()
            ]

    # ---- items, responses, ratings -------------------------------------------------------

    def response_view(self, response_id: int) -> ResponseView:
        rows = self._rows(
            "SELECT r.id, r.item_id, r.model, r.text, i.eval_set_id, i.external_id, i.region, "
            "i.question, i.reference FROM responses r JOIN items i ON i.id = r.item_id WHERE r.id = ?",
            (response_id,),
        )
        if not rows:
            raise ChangeoverError(f"no response {response_id}")
        r = rows[0]
        judgments = tuple(
            Judgment(
                response_id,
                j["metric"],
                j["value"],
                j["raw"],
                j["score"],
                j["rationale"],
                j["judge"],
            )
            for j in self._rows("SELECT * FROM judgments WHERE response_id = ?", (response_id,))
        )
        return ResponseView(
            response=Response(r["id"], r["item_id"], r["model"], r["text"]),
            item=Item(
                r["item_id"],
                r["eval_set_id"],
                r["external_id"],
                r["region"],
                r["question"],
                r["reference"],
            ),
            judgments=judgments,
            ratings=tuple(self.active_ratings(response_id)),
        )

    def active_ratings(self, response_id: int) -> list[Rating]:
        return [
            _rating(r)
            for r in self._rows(
                "SELECT * FROM active_ratings WHERE response_id = ? ORDER BY id", (response_id,)
            )
        ]

    def add_rating(
        self, response_id: int, metric: str, rater: str, value: int, blind: bool = True
    ) -> Rating:
        """Store one label in its own transaction; it supersedes this rater's earlier label."""
        with self.write() as con:
            stamp = now()
            for (old_id,) in con.execute(
                "SELECT id FROM active_ratings WHERE response_id = ? AND metric = ? AND rater = ?",
                (response_id, metric, rater),
            ).fetchall():
                con.execute(
                    "INSERT INTO ratings (response_id, metric, rater, value, created_at, blind, "
                    "source, retracts) VALUES (?, ?, ?, NULL, ?, ?, 'app', ?)",
                    (response_id, metric, rater, stamp, int(blind), old_id),
                )
            cur = con.execute(
                "INSERT INTO ratings (response_id, metric, rater, value, created_at, blind, source) "
                "VALUES (?, ?, ?, ?, ?, ?, 'app')",
                (response_id, metric, rater, value, stamp, int(blind)),
            )
            rating_id = cur.lastrowid
        return self.rating(rating_id)

    def retract(self, rating_id: int, rater: str) -> Rating:
        """Undo a label: append a retraction event pointing at it."""
        with self.write() as con:
            target = con.execute(
                "SELECT response_id, metric, blind FROM active_ratings WHERE id = ?", (rating_id,)
            ).fetchone()
            if target is None:
                raise ChangeoverError(f"rating {rating_id} is not active (already retracted?)")
            cur = con.execute(
                "INSERT INTO ratings (response_id, metric, rater, value, created_at, blind, source, "
                "retracts) VALUES (?, ?, ?, NULL, ?, ?, 'app', ?)",
                (target[0], target[1], rater, now(), target[2], rating_id),
            )
            new_id = cur.lastrowid
        return self.rating(new_id)

    def rating(self, rating_id: int) -> Rating:
        rows = self._rows("SELECT * FROM ratings WHERE id = ?", (rating_id,))
        if not rows:
            raise ChangeoverError(f"no rating {rating_id}")
        return _rating(rows[0])

    def ratings(self, eval_set_id: int, include_retracted: bool = True) -> list[Rating]:
        """Every rating event of an eval set, in order (for export and tests)."""
        table = "ratings" if include_retracted else "active_ratings"
        return [
            _rating(r)
            for r in self._rows(
                f"SELECT a.* FROM {table} a JOIN responses r ON r.id = a.response_id "
                "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ? ORDER BY a.id",
                (eval_set_id,),
            )
        ]

    # ---- browse --------------------------------------------------------------------------

    def _browse_where(self, eval_set_id: int, f: BrowseFilter) -> tuple[str, list]:
        where, params = ["i.eval_set_id = ?"], [eval_set_id]
        if f.region is not None:
            where.append("i.region = ?")
            params.append(f.region)
        if f.model is not None:
            where.append("r.model = ?")
            params.append(f.model)
        if f.search:
            where.append(
                "(instr(lower(r.text), lower(?)) > 0 OR instr(lower(i.question), lower(?)) > 0)"
            )
            params += [f.search, f.search]
        if f.metric is not None and f.judge_level is not None:
            where.append(
                "EXISTS (SELECT 1 FROM judgments j WHERE j.response_id = r.id "
                "AND j.metric = ? AND j.value = ?)"
            )
            params += [f.metric, f.judge_level]
        if f.metric is not None and f.human_level is not None:
            where.append(
                "EXISTS (SELECT 1 FROM active_ratings a WHERE a.response_id = r.id "
                "AND a.metric = ? AND a.value = ?)"
            )
            params += [f.metric, f.human_level]
        if f.disagree and f.metric is not None:
            where.append(
                "EXISTS (SELECT 1 FROM active_ratings a JOIN judgments j "
                "ON j.response_id = a.response_id AND j.metric = a.metric "
                "WHERE a.response_id = r.id AND a.metric = ? AND j.value IS NOT NULL "
                "AND a.value <> j.value)"
            )
            params.append(f.metric)
        elif f.disagree:
            where.append(
                "EXISTS (SELECT 1 FROM active_ratings a JOIN judgments j "
                "ON j.response_id = a.response_id AND j.metric = a.metric "
                "WHERE a.response_id = r.id AND j.value IS NOT NULL AND a.value <> j.value)"
            )
        if f.raters_disagree:
            same_metric = "AND a.metric = ? " if f.metric is not None else ""
            where.append(
                "EXISTS (SELECT 1 FROM active_ratings a JOIN active_ratings b "
                "ON b.response_id = a.response_id AND b.metric = a.metric "
                "AND b.rater <> a.rater AND b.value <> a.value "
                f"WHERE a.response_id = r.id {same_metric})"
            )
            if f.metric is not None:
                params.append(f.metric)
        if f.unrated:
            if f.metric is not None:
                where.append(
                    "NOT EXISTS (SELECT 1 FROM active_ratings a WHERE a.response_id = r.id "
                    "AND a.metric = ?)"
                )
                params.append(f.metric)
            else:
                where.append(
                    "NOT EXISTS (SELECT 1 FROM active_ratings a WHERE a.response_id = r.id)"
                )
        return " AND ".join(where), params

    def browse(
        self, eval_set_id: int, f: BrowseFilter = BrowseFilter(), offset: int = 0, limit: int = 100
    ) -> list[BrowseRow]:
        """One page of responses matching the filter, ordered by response id."""
        where, params = self._browse_where(eval_set_id, f)
        rows = self._rows(
            "SELECT r.id, i.external_id, i.region, r.model, i.question, substr(r.text, 1, 200) AS t, "
            "(SELECT count(*) FROM active_ratings a WHERE a.response_id = r.id) AS nr "
            f"FROM responses r JOIN items i ON i.id = r.item_id WHERE {where} "
            "ORDER BY r.id LIMIT ? OFFSET ?",
            params + [limit, offset],
        )
        return [
            BrowseRow(
                r["id"], r["external_id"], r["region"], r["model"], r["question"], r["t"], r["nr"]
            )
            for r in rows
        ]

    def browse_page(
        self,
        eval_set_id: int,
        f: BrowseFilter = BrowseFilter(),
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[BrowseRow]:
        """A page of `browse` by keyset: the `limit` rows after `after_id` (or just before
        `before_id`), in response id order. Walks responses by rowid and stops at `limit`
        matches, so any page of a million responses costs about what the first one does
        (OFFSET paging and the planner's sort cost seconds there)."""
        where, params = self._browse_where(eval_set_id, f)
        if before_id is not None:
            key, order, params = "r.id < ?", "DESC", params + [before_id]
        else:
            key, order, params = "r.id > ?", "", params + [after_id if after_id is not None else -1]
        rows = self._rows(
            "SELECT r.id, i.external_id, i.region, r.model, i.question, substr(r.text, 1, 200) AS t, "
            "(SELECT count(*) FROM active_ratings a WHERE a.response_id = r.id) AS nr "
            f"FROM responses r NOT INDEXED CROSS JOIN items i ON i.id = r.item_id "
            f"WHERE {where} AND {key} ORDER BY r.id {order} LIMIT ?",
            params + [limit],
        )
        if order:
            rows.reverse()
        return [
            BrowseRow(
                r["id"], r["external_id"], r["region"], r["model"], r["question"], r["t"], r["nr"]
            )
            for r in rows
        ]

    def browse_count(self, eval_set_id: int, f: BrowseFilter = BrowseFilter()) -> int:
        where, params = self._browse_where(eval_set_id, f)
        return self._one(
            f"SELECT count(*) FROM responses r JOIN items i ON i.id = r.item_id WHERE {where}",
            params,
        )[0]

    # ---- labelling queue (core/queue.py) ---------------------------------------------------

    def cell_label_counts(
        self, eval_set_id: int, metric: str | None = None
    ) -> list[tuple[str, str, int | None, int]]:
        """(model, region, judge level on `metric` or None, labelled responses) per cell.

        A response is labelled when it has any active human rating. Only labelled responses
        are touched, so this stays fast on huge eval sets.
        """
        rows = self._rows(
            "SELECT r.model, i.region, j.value, count(*) AS n FROM "
            "(SELECT DISTINCT response_id FROM active_ratings) a "
            "JOIN responses r ON r.id = a.response_id JOIN items i ON i.id = r.item_id "
            "LEFT JOIN judgments j ON j.response_id = r.id AND j.metric = ? "
            "WHERE i.eval_set_id = ? GROUP BY 1, 2, 3",
            (metric, eval_set_id),
        )
        return [(r["model"], r["region"], r["value"], r["n"]) for r in rows]

    def item_id_range(self, eval_set_id: int) -> tuple[int, int]:
        """Smallest and largest item id of an eval set ((0, -1) when it has none)."""
        # `+eval_set_id`: walk the primary key from either end instead of the region index
        lo = self._one(
            "SELECT id FROM items WHERE +eval_set_id = ? ORDER BY id LIMIT 1", (eval_set_id,)
        )
        hi = self._one(
            "SELECT id FROM items WHERE +eval_set_id = ? ORDER BY id DESC LIMIT 1", (eval_set_id,)
        )
        return (lo[0], hi[0]) if lo is not None else (0, -1)

    def response_total(self, eval_set_id: int) -> int:
        """How many responses an eval set holds."""
        return self._one(
            "SELECT count(*) FROM responses r JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ?",
            (eval_set_id,),
        )[0]

    def item_count(self, eval_set_id: int) -> int:
        """How many items an eval set holds."""
        return self._one("SELECT count(*) FROM items WHERE eval_set_id = ?", (eval_set_id,))[0]

    def labelled_total(self, eval_set_id: int) -> int:
        """How many responses of an eval set have an active human rating."""
        return self._one(
            "SELECT count(*) FROM (SELECT DISTINCT response_id FROM active_ratings) a "
            "JOIN responses r ON r.id = a.response_id JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ?",
            (eval_set_id,),
        )[0]

    def pick_responses(
        self,
        eval_set_id: int,
        model: str,
        region: str,
        start_item: int,
        metric: str | None = None,
        judge_level: int | None = None,
        rater: str | None = None,
        scan: int = 4000,
        limit: int = 20,
    ) -> list[int]:
        """Response ids of the cell (model, region) among items `start_item` to
        `start_item + scan - 1`, in item order.

        The (model, item_id) index is walked from `start_item` and the walk stops at `limit`
        matches or at the end of the window, so a random pick costs the same on a million
        responses as on a thousand. With `metric` and `judge_level`, only responses the judge
        put at that level. With `rater`, responses that rater has not labelled; without,
        responses nobody has labelled.
        """
        clauses, params = [], [model, start_item, start_item + scan, eval_set_id, region]
        if metric is not None and judge_level is not None:
            clauses.append(
                "AND EXISTS (SELECT 1 FROM judgments j WHERE j.response_id = r.id "
                "AND j.metric = ? AND j.value = ?)"
            )
            params += [metric, judge_level]
        if rater is None:
            clauses.append(
                "AND NOT EXISTS (SELECT 1 FROM active_ratings a WHERE a.response_id = r.id)"
            )
        else:
            clauses.append(
                "AND NOT EXISTS (SELECT 1 FROM active_ratings a "
                "WHERE a.response_id = r.id AND a.rater = ?)"
            )
            params.append(rater)
        rows = self._rows(
            "SELECT r.id FROM responses r INDEXED BY responses_model "
            "JOIN items i ON i.id = r.item_id "
            "WHERE r.model = ? AND r.item_id >= ? AND r.item_id < ? "
            f"AND i.eval_set_id = ? AND i.region = ? {' '.join(clauses)} "
            "ORDER BY r.item_id LIMIT ?",
            params + [limit],
        )
        return [r["id"] for r in rows]

    # ---- counts (raw material of core/counts.py) -----------------------------------------

    def judgments_fingerprint(self) -> tuple[int, int]:
        """(judgment rows, response rows) of the workspace: changes whenever an import adds
        judged responses (judgments are never updated), so judge-level counts can be cached."""
        with self._lock:
            j = self.con.execute("SELECT count(*) FROM judgments").fetchone()[0]
            r = self.con.execute("SELECT count(*) FROM responses").fetchone()[0]
        return j, r

    def judge_level_counts(self, eval_set_id: int) -> list[tuple[str, str, str, int | None, int]]:
        """(metric, model, region, judge level or None, responses) over all judged responses.

        Responses without a judgment row for a metric appear with level None as well.
        """
        rows = self._rows(
            "SELECT m.name AS metric, r.model, i.region, j.value, count(*) AS n "
            "FROM responses r JOIN items i ON i.id = r.item_id "
            "JOIN metrics m ON m.eval_set_id = i.eval_set_id "
            "LEFT JOIN judgments j ON j.response_id = r.id AND j.metric = m.name "
            "WHERE i.eval_set_id = ? GROUP BY 1, 2, 3, 4",
            (eval_set_id,),
        )
        return [(r["metric"], r["model"], r["region"], r["value"], r["n"]) for r in rows]

    def label_votes(
        self, eval_set_id: int, exclude_raters: Iterable[str] = ()
    ) -> list[tuple[int, str, str, str, int | None, int, int]]:
        """Active human labels per (response, metric, level), with the judge's level.

        Rows: (response_id, metric, model, region, judge level or None, human level, votes).
        Only labelled responses are touched, so this stays fast on huge eval sets.
        """
        excluded = list(exclude_raters)
        marks = ",".join("?" * len(excluded))
        clause = f"AND a.rater NOT IN ({marks})" if excluded else ""
        rows = self._rows(
            "SELECT a.response_id, a.metric, r.model, i.region, j.value AS judge, a.value AS human, "
            "count(*) AS votes FROM active_ratings a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id "
            "LEFT JOIN judgments j ON j.response_id = a.response_id AND j.metric = a.metric "
            f"WHERE i.eval_set_id = ? {clause} GROUP BY 1, 2, 5, 6",
            [eval_set_id, *excluded],
        )
        return [
            (
                r["response_id"],
                r["metric"],
                r["model"],
                r["region"],
                r["judge"],
                r["human"],
                r["votes"],
            )
            for r in rows
        ]

    def rater_labels(self, eval_set_id: int) -> list[tuple[int, str, str, str, str, int]]:
        """Active human labels of an eval set, one per (response, metric, rater), for agreement.

        Rows: (response_id, metric, model, region, rater, level), ordered by response and rater.
        """
        rows = self._rows(
            "SELECT a.response_id, a.metric, r.model, i.region, a.rater, a.value "
            "FROM active_ratings a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ? AND a.value IS NOT NULL ORDER BY a.response_id, a.rater, a.id",
            (eval_set_id,),
        )
        return [
            (r["response_id"], r["metric"], r["model"], r["region"], r["rater"], r["value"])
            for r in rows
        ]

    # ---- fits ----------------------------------------------------------------------------

    def save_fit(
        self,
        eval_set_id: int,
        settings: dict,
        data_hash: str,
        diagnostics: dict,
        summary: dict,
        draws: bytes,
    ) -> FitRecord:
        """Keep a fit: settings, counts hash, diagnostics, summary and compressed draws."""
        with self.write() as con:
            cur = con.execute(
                "INSERT INTO fits (eval_set_id, created_at, settings, data_hash, diagnostics, "
                "summary, draws) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    eval_set_id,
                    now(),
                    json.dumps(settings),
                    data_hash,
                    json.dumps(diagnostics),
                    json.dumps(summary),
                    zlib.compress(draws, 6),
                ),
            )
            fit_id = cur.lastrowid
        return self.fit(fit_id)

    def fit(self, fit_id: int) -> FitRecord:
        rows = self._rows(
            "SELECT id, eval_set_id, created_at, settings, data_hash, diagnostics, "
            "summary FROM fits WHERE id = ?",
            (fit_id,),
        )
        if not rows:
            raise ChangeoverError(f"no fit {fit_id}")
        return _fit(rows[0])

    def fits(self, eval_set_id: int) -> list[FitRecord]:
        """Fits of an eval set, newest first."""
        return [
            _fit(r)
            for r in self._rows(
                "SELECT id, eval_set_id, created_at, settings, data_hash, diagnostics, summary "
                "FROM fits WHERE eval_set_id = ? ORDER BY id DESC",
                (eval_set_id,),
            )
        ]

    def fit_draws(self, fit_id: int) -> bytes:
        row = self._one("SELECT draws FROM fits WHERE id = ?", (fit_id,))
        if row is None:
            raise ChangeoverError(f"no fit {fit_id}")
        return zlib.decompress(row[0])

    # ---- export pages (core/export.py streams these; nothing is loaded whole) -------------

    def rating_events_page(
        self, eval_set_id: int, after_id: int = 0, limit: int = 5000
    ) -> list[dict]:
        """Rating events with id > after_id, oldest first, with item, region and model, and for
        a retracted event the id, rater and time of the event that retracted it."""
        return self._rows(
            "SELECT a.id, a.response_id, i.external_id AS item_id, i.region, r.model, a.metric, "
            "a.rater, a.value, a.created_at, a.blind, a.source, a.retracts, x.id AS retracted_by, "
            "x.rater AS retracted_by_rater, x.created_at AS retracted_at "
            "FROM ratings a JOIN responses r ON r.id = a.response_id JOIN items i ON i.id = r.item_id "
            "LEFT JOIN ratings x ON x.id = (SELECT min(y.id) FROM ratings y WHERE y.retracts = a.id) "
            "WHERE i.eval_set_id = ? AND a.id > ? ORDER BY a.id LIMIT ?",
            (eval_set_id, after_id, limit),
        )

    def responses_page(self, eval_set_id: int, after_id: int = 0, limit: int = 2000) -> list[dict]:
        """Responses with id > after_id in id order: response_id, item_id (external), region,
        question, reference, model, text."""
        return self._rows(
            "SELECT r.id AS response_id, i.external_id AS item_id, i.region, i.question, "
            "i.reference, r.model, r.text FROM responses r JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ? AND r.id > ? ORDER BY r.id LIMIT ?",
            (eval_set_id, after_id, limit),
        )

    def judgments_between(self, first_id: int, last_id: int) -> list[Judgment]:
        """Judgments of responses with first_id <= id <= last_id (any eval set: filter by id)."""
        return [
            Judgment(
                j["response_id"],
                j["metric"],
                j["value"],
                j["raw"],
                j["score"],
                j["rationale"],
                j["judge"],
            )
            for j in self._rows(
                "SELECT * FROM judgments WHERE response_id BETWEEN ? AND ?", (first_id, last_id)
            )
        ]

    def votes_between(self, first_id: int, last_id: int) -> list[tuple[int, str, int, int]]:
        """Active human votes (response_id, metric, level, votes) for first_id <= id <= last_id."""
        return [
            (r["response_id"], r["metric"], r["value"], r["n"])
            for r in self._rows(
                "SELECT response_id, metric, value, count(*) AS n FROM active_ratings "
                "WHERE response_id BETWEEN ? AND ? AND value IS NOT NULL GROUP BY 1, 2, 3",
                (first_id, last_id),
            )
        ]

    # ---- overlap (core/overlap.py) --------------------------------------------------------

    def rater_overlap_counts(self, eval_set_id: int) -> tuple[int, int]:
        """(responses with an active label, responses with active labels of >= 2 raters)."""
        row = self._one(
            "SELECT count(*), coalesce(sum(nr >= 2), 0) FROM (SELECT count(DISTINCT a.rater) AS nr "
            "FROM active_ratings a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ? GROUP BY a.response_id)",
            (eval_set_id,),
        )
        return int(row[0]), int(row[1])

    def single_rater_responses(self, eval_set_id: int, not_rater: str) -> list[int]:
        """Responses whose active labels all come from exactly one rater, not `not_rater`."""
        return [
            r["response_id"]
            for r in self._rows(
                "SELECT a.response_id FROM active_ratings a JOIN responses r ON r.id = a.response_id "
                "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ? GROUP BY a.response_id "
                "HAVING count(DISTINCT a.rater) = 1 AND max(a.rater) <> ? ORDER BY a.response_id",
                (eval_set_id, not_rater),
            )
        ]

    def chosen_label_votes(
        self, eval_set_id: int, exclude_raters: Iterable[str] = ()
    ) -> list[tuple[int, str, int, str, int]]:
        """The active labels among `label_votes` that were not given blind in the app: rows of
        (response_id, metric, human level, kind, votes), kind "open" (the browse screen's
        triage: the rater chose the response) or "import" (how they were chosen is unknown)."""
        excluded = list(exclude_raters)
        skip = f"AND a.rater NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        return [
            (r["response_id"], r["metric"], r["value"], r["kind"], r["votes"])
            for r in self._rows(
                "SELECT a.response_id, a.metric, a.value, count(*) AS votes, "
                "CASE WHEN a.source = 'import' THEN 'import' ELSE 'open' END AS kind "
                "FROM active_ratings a JOIN responses r ON r.id = a.response_id JOIN items i "
                "ON i.id = r.item_id WHERE i.eval_set_id = ? AND a.value IS NOT NULL "
                f"AND (a.source = 'import' OR NOT a.blind) {skip} GROUP BY 1, 2, 3, 5",
                [eval_set_id, *excluded],
            )
        ]

    def replaced_blind_votes(
        self, eval_set_id: int, exclude_raters: Iterable[str] = ()
    ) -> list[tuple[int, str, int, int]]:
        """Blind labels their rater later replaced with an open one (browse triage): rows of
        (response_id, metric, human level, votes), the rater's latest blind label where their
        active label is open. A replacement's retraction row carries the new label's blind
        flag (0 here); an undo carries the undone label's own (1 for a blind one)."""
        excluded = list(exclude_raters)
        skip = f"AND b.rater NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        return [
            (r["response_id"], r["metric"], r["value"], r["votes"])
            for r in self._rows(
                "SELECT b.response_id, b.metric, b.value, count(*) AS votes FROM ratings b "
                "JOIN ratings x ON x.retracts = b.id AND NOT x.blind "
                "JOIN active_ratings a ON a.response_id = b.response_id AND a.metric = b.metric "
                "AND a.rater = b.rater AND NOT a.blind AND a.source = 'app' "
                "JOIN responses r ON r.id = b.response_id JOIN items i ON i.id = r.item_id "
                "WHERE i.eval_set_id = ? AND b.blind AND b.source = 'app' AND b.value IS NOT NULL "
                f"{skip} AND b.id = (SELECT max(y.id) FROM ratings y WHERE "
                "y.response_id = b.response_id AND y.metric = b.metric AND y.rater = b.rater "
                "AND y.blind AND y.source = 'app' AND y.value IS NOT NULL) GROUP BY 1, 2, 3",
                [eval_set_id, *excluded],
            )
        ]


class ImportBatch:
    """Rows staged in temporary tables during `Store.importing`, merged set-wise at the end."""

    def __init__(self, store: Store, eval_set_id: int):
        self.store = store
        self.con = store.con
        self.eval_set_id = eval_set_id
        self.added: dict[str, int] = {}

    def _create_stage(self) -> None:
        self.con.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_responses (external_id TEXT, "
            "region TEXT, question TEXT, reference TEXT, model TEXT, text TEXT, seq INTEGER)"
        )
        self.con.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_judgments (external_id TEXT, "
            "model TEXT, metric TEXT, judge TEXT, value INTEGER, raw TEXT, score REAL, "
            "rationale TEXT)"
        )
        self.con.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_ratings (external_id TEXT, "
            "model TEXT, metric TEXT, rater TEXT, value INTEGER, created_at TEXT)"
        )
        self._seq = 0

    def _drop_stage(self) -> None:
        for t in ("stage_responses", "stage_judgments", "stage_ratings"):
            self.con.execute(f"DROP TABLE IF EXISTS temp.{t}")

    def add_responses(self, rows: Iterable[tuple[str, str, str, str | None, str, str]]) -> None:
        """Rows of (external_id, region, question, reference, model, text)."""
        start = self._seq
        rows = [(*r, start + k) for k, r in enumerate(rows)]
        self._seq += len(rows)
        self._stage("INSERT INTO stage_responses VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def add_judgments(self, rows: Iterable[tuple]) -> None:
        """Rows of (external_id, model, metric, judge, level or None, raw, score, rationale)."""
        self._stage("INSERT INTO stage_judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def add_ratings(self, rows: Iterable[tuple]) -> None:
        """Rows of (external_id, model, metric, rater, level, created_at)."""
        self._stage("INSERT INTO stage_ratings VALUES (?, ?, ?, ?, ?, ?)", rows)

    def _stage(self, sql: str, rows: Iterable[tuple]) -> None:
        # Outside a write, one transaction per call: it touches only temp tables, so it takes
        # no lock on the workspace, and it saves a commit per row.
        if self.store._in_write:
            self.con.executemany(sql, rows)
            return
        self.con.execute("BEGIN")
        try:
            self.con.executemany(sql, rows)
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def _merge(self) -> None:
        con, es = self.con, self.eval_set_id

        def run(key: str, sql: str, params: Sequence = ()) -> None:
            before = con.total_changes
            con.execute(sql, params)
            self.added[key] = self.added.get(key, 0) + con.total_changes - before

        con.execute(
            "CREATE INDEX IF NOT EXISTS temp.stage_judgments_key ON stage_judgments "
            "(external_id, model)"
        )
        run(
            "models",
            "INSERT OR IGNORE INTO models (eval_set_id, name, position) "
            "SELECT ?, model, (SELECT count(*) FROM models WHERE eval_set_id = ?) + min(seq) "
            "FROM stage_responses GROUP BY model ORDER BY min(seq)",
            (es, es),
        )
        run(
            "items",
            "INSERT OR IGNORE INTO items (eval_set_id, external_id, region, question, "
            "reference) SELECT ?, external_id, region, question, max(reference) FROM stage_responses "
            "GROUP BY external_id ORDER BY min(seq)",
            (es,),
        )
        run(
            "responses",
            "INSERT OR IGNORE INTO responses (item_id, model, text) "
            "SELECT i.id, s.model, s.text FROM stage_responses s JOIN items i "
            "ON i.eval_set_id = ? AND i.external_id = s.external_id ORDER BY s.seq",
            (es,),
        )
        run(
            "judgments",
            "INSERT OR IGNORE INTO judgments (response_id, metric, judge, value, raw, "
            "score, rationale) SELECT r.id, s.metric, s.judge, s.value, s.raw, s.score, s.rationale "
            "FROM stage_judgments s JOIN items i ON i.eval_set_id = ? AND i.external_id = s.external_id "
            "JOIN responses r ON r.item_id = i.id AND r.model = s.model",
            (es,),
        )
        # A label already held (same response, metric, rater and level) is not added again.
        run(
            "ratings",
            "INSERT INTO ratings (response_id, metric, rater, value, created_at, blind, "
            "source) SELECT DISTINCT r.id, s.metric, s.rater, s.value, s.created_at, 0, 'import' "
            "FROM stage_ratings s JOIN items i ON i.eval_set_id = ? AND i.external_id = s.external_id "
            "JOIN responses r ON r.item_id = i.id AND r.model = s.model "
            "WHERE NOT EXISTS (SELECT 1 FROM active_ratings a WHERE a.response_id = r.id "
            "AND a.metric = s.metric AND a.rater = s.rater AND a.value = s.value)",
            (es,),
        )


def _rating(r: dict) -> Rating:
    return Rating(
        r["id"],
        r["response_id"],
        r["metric"],
        r["rater"],
        r["value"],
        r["created_at"],
        bool(r["blind"]),
        r["source"],
        r["retracts"],
    )


def _fit(r: dict) -> FitRecord:
    return FitRecord(
        r["id"],
        r["eval_set_id"],
        r["created_at"],
        json.loads(r["settings"]),
        r["data_hash"],
        json.loads(r["diagnostics"]),
        json.loads(r["summary"]),
    )
