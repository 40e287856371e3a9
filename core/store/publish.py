"""A big import writes in short transactions, so a rater's label never waits for it, and still
all or nothing: its rows land in chunks under a pending generation nobody can see, and one short
transaction publishes them.

The rows go into the real tables a chunk per transaction (sized to hold the write lock about
CHUNK_S), with a pause after each that leaves the lock free: a label waits one chunk at most.
Until published, the import's items carry as their eval set id the generation, a negative
number, so its responses, verdicts and labels are invisible (every read of an eval set goes
through its items). An item the eval set already holds, given a new response, gets a "shadow"
item in the generation with the same id and question. Publishing, in one transaction: save the
eval set, move the shadows' responses onto the items they shadow (the search index keeps their
entries: same question, same text; schema migration 4), give the other items the eval set's
id, and add what belongs to responses already held (verdicts of a new metric, labels). A failed
or interrupted import deletes its generation; one whose process died (SIGKILL, power) is
deleted by the next import.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from changeover.core.store import base

PENDING = "pending_import:"  # changeover_meta key prefix: one per import being written
PUBLISHED = "imports_published"  # changeover_meta: how many imports were published
CHUNK_S = 0.05  # how long one chunk may hold the write lock; the rows per chunk adapt to it
FIRST_ROWS = 500  # rows in the first chunk; then as many as took CHUNK_S, at most doubling,
MIN_ROWS, MAX_ROWS = 50, 10_000  # between these
YIELD_SHARE = 0.1  # after each chunk the lock stays free for this share of its hold ...
MIN_YIELD_S = 0.004  # ... and at least this long, for a waiting label (it asks every 2 ms)


def pause_after(held: float) -> None:
    """Leave the write lock free for a waiting writer (a label) before the next chunk."""
    time.sleep(max(MIN_YIELD_S, YIELD_SHARE * held))


class Publisher:
    """Writes one import's staged rows (the temp tables of core/store/imports.py) in chunks,
    then publishes them in one transaction: see the module's docstring."""

    def __init__(self, store: base.StoreBase, held_id: int | None):
        self.store, self.con = store, store.con
        self.held_id = held_id  # the eval set's id when the workspace holds it already
        self.gen = 0  # chosen when the import registers (run)
        self.added: dict[str, int] = {}
        self.new = "stage_new"  # the staged responses the eval set does not hold (_prepare)

    # ---- staging what goes where (temp tables: no lock) ---------------------------------

    def _prepare(self) -> None:
        held = self.held_id
        if held is None:  # a new eval set: every staged row is new
            self.new = "stage_responses"
            statements = [
                "CREATE TEMP TABLE stage_judgments_held AS SELECT * FROM stage_judgments WHERE 0",
                "CREATE TEMP TABLE stage_ratings_held AS SELECT * FROM stage_ratings WHERE 0",
            ]
        else:
            self.new = "stage_new"
            statements = [
                # responses the eval set does not hold yet, in file order
                "CREATE TEMP TABLE stage_new AS SELECT s.* FROM stage_responses s WHERE NOT "
                "EXISTS (SELECT 1 FROM items i JOIN responses r ON r.item_id = i.id WHERE "
                f"i.eval_set_id = {held} AND i.external_id = s.external_id AND r.model = s.model) "
                "ORDER BY s.seq",
                "CREATE INDEX temp.stage_new_key ON stage_new (external_id, model)",
                # verdicts (of a new metric) and labels of responses already held, which are
                # added when publishing: only those the workspace does not hold yet
                "CREATE TEMP TABLE stage_judgments_held AS SELECT s.* FROM stage_judgments s "
                "WHERE NOT EXISTS (SELECT 1 FROM stage_new n WHERE n.external_id = "
                "s.external_id AND n.model = s.model) AND NOT EXISTS (SELECT 1 FROM items i "
                "JOIN responses r ON r.item_id = i.id JOIN judgments j ON j.response_id = r.id "
                f"AND j.metric = s.metric WHERE i.eval_set_id = {held} AND i.external_id = "
                "s.external_id AND r.model = s.model)",
                "CREATE TEMP TABLE stage_ratings_held AS SELECT s.* FROM stage_ratings s "
                "WHERE NOT EXISTS (SELECT 1 FROM stage_new n WHERE n.external_id = "
                "s.external_id AND n.model = s.model) AND NOT EXISTS (SELECT 1 FROM items i "
                "JOIN responses r ON r.item_id = i.id JOIN active_ratings a ON a.response_id = "
                "r.id AND a.metric = s.metric AND a.rater = s.rater AND a.value = s.value WHERE "
                f"i.eval_set_id = {held} AND i.external_id = s.external_id AND r.model = s.model)",
            ]
        statements += [
            # the new responses' items, in the order of their first response
            "CREATE TEMP TABLE stage_items AS SELECT external_id, region, question, "
            f"max(reference) AS reference FROM {self.new} GROUP BY external_id ORDER BY min(seq)",
            "CREATE TEMP TABLE stage_models AS SELECT model, min(seq) AS first "
            "FROM stage_responses GROUP BY model",
        ]
        with self._temp():
            for sql in statements:
                self.con.execute(sql)

    @contextmanager
    def _temp(self) -> Iterator[None]:
        """A transaction on temp tables only: it takes no lock on the workspace."""
        self.con.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def drop(self) -> None:
        for t in (
            "stage_new",
            "stage_items",
            "stage_models",
            "stage_judgments_held",
            "stage_ratings_held",
        ):
            self.con.execute(f"DROP TABLE IF EXISTS temp.{t}")

    # ---- writing ---------------------------------------------------------------------------

    def run(self, save: Callable[[], int]) -> dict[str, int]:
        """Write everything staged, then publish with `save()`, which saves the eval set in the
        publishing transaction and returns its id. Returns the rows added per table."""
        clear_abandoned(self.store)
        self._prepare()
        try:
            with self.store.write() as con:
                taken = [
                    int(k[len(PENDING) :])
                    for (k,) in con.execute(
                        "SELECT key FROM changeover_meta WHERE key LIKE ?", (f"{PENDING}%",)
                    )
                ]
                self.gen = min(taken, default=0) - 1  # eval set ids are positive
                con.execute(
                    "INSERT INTO changeover_meta (key, value) VALUES (?, ?)",
                    (f"{PENDING}{self.gen}", _owner()),
                )
            self._chunks()
            self._publish(save)
        except BaseException:
            # interrupted again while clearing up: the next import clears it (clear_abandoned)
            with contextlib.suppress(BaseException):
                delete_generation(self.store, self.gen)
            raise
        finally:
            self.drop()
        return self.added

    def _chunked(self, key: str, table: str, sql: str) -> None:
        """Run `sql` (with ?/? for a rowid range of `table`) chunk by chunk, one transaction
        each of about CHUNK_S, pausing after each; counts the rows into `added[key]`."""
        last = self.con.execute(f"SELECT max(rowid) FROM temp.{table}").fetchone()[0] or 0
        start, rows = 1, FIRST_ROWS
        while start <= last:
            began = time.perf_counter()
            with self.store.write() as con:
                n = con.execute(sql, (start, start + rows - 1)).rowcount
            held = time.perf_counter() - began
            self.added[key] = self.added.get(key, 0) + n
            start += rows
            fit = rows * CHUNK_S / max(held, 1e-4)  # the rows that would have taken CHUNK_S
            rows = int(min(MAX_ROWS, 2 * rows, max(MIN_ROWS, (rows + fit) / 2)))
            pause_after(held)

    def _chunks(self) -> None:
        # CROSS JOIN keeps the staged rows' rowid range the outer loop: left to itself SQLite
        # walks every item of the generation for each chunk (40 ms a chunk at 25k items).
        g = self.gen
        self._chunked(
            "items",
            "stage_items",
            "INSERT INTO items (eval_set_id, external_id, region, question, reference) "
            f"SELECT {g}, external_id, region, question, reference FROM stage_items "
            "WHERE rowid BETWEEN ? AND ?",
        )
        self._chunked(
            "responses",
            self.new,
            "INSERT INTO responses (item_id, model, text) SELECT i.id, s.model, s.text "
            f"FROM {self.new} s CROSS JOIN items i ON i.eval_set_id = {g} AND i.external_id = "
            "s.external_id WHERE s.rowid BETWEEN ? AND ? ORDER BY s.rowid",
        )
        self._chunked(
            "judgments",
            "stage_judgments",
            "INSERT OR IGNORE INTO judgments (response_id, metric, judge, value, raw, score, "
            "rationale) SELECT r.id, s.metric, s.judge, s.value, s.raw, s.score, s.rationale "
            f"FROM stage_judgments s CROSS JOIN items i ON i.eval_set_id = {g} AND i.external_id = "
            "s.external_id JOIN responses r ON r.item_id = i.id AND r.model = s.model "
            "WHERE s.rowid BETWEEN ? AND ?",
        )
        self._chunked(
            "ratings",
            "stage_ratings",
            "INSERT INTO ratings (response_id, metric, rater, value, created_at, blind, source) "
            "SELECT DISTINCT r.id, s.metric, s.rater, s.value, s.created_at, 0, s.source "
            f"FROM stage_ratings s CROSS JOIN items i ON i.eval_set_id = {g} AND i.external_id = "
            "s.external_id JOIN responses r ON r.item_id = i.id AND r.model = s.model "
            "WHERE s.rowid BETWEEN ? AND ?",
        )

    def _publish(self, save: Callable[[], int]) -> None:
        g = self.gen
        with self.store.write() as con:
            es = save()

            def run(key: str, sql: str, params: tuple = (), sign: int = 1) -> None:
                n = con.execute(sql, params).rowcount
                self.added[key] = self.added.get(key, 0) + sign * n

            run(
                "models",
                "INSERT OR IGNORE INTO models (eval_set_id, name, position) SELECT ?, model, "
                "(SELECT count(*) FROM models WHERE eval_set_id = ?) + first FROM stage_models "
                "ORDER BY first",
                (es, es),
            )
            self._join(con, es, run)
            run(
                "judgments",
                "INSERT OR IGNORE INTO judgments (response_id, metric, judge, value, raw, score, "
                "rationale) SELECT r.id, s.metric, s.judge, s.value, s.raw, s.score, s.rationale "
                "FROM stage_judgments_held s JOIN items i ON i.eval_set_id = ? AND i.external_id "
                "= s.external_id JOIN responses r ON r.item_id = i.id AND r.model = s.model",
                (es,),
            )
            # A label already held (same response, metric, rater and level) is not added again.
            run(
                "ratings",
                "INSERT INTO ratings (response_id, metric, rater, value, created_at, blind, "
                "source) SELECT DISTINCT r.id, s.metric, s.rater, s.value, s.created_at, 0, "
                "s.source FROM stage_ratings_held s JOIN items i ON i.eval_set_id = ? AND "
                "i.external_id = s.external_id JOIN responses r ON r.item_id = i.id AND r.model "
                "= s.model WHERE NOT EXISTS (SELECT 1 FROM active_ratings a WHERE a.response_id "
                "= r.id AND a.metric = s.metric AND a.rater = s.rater AND a.value = s.value)",
                (es,),
            )
            con.execute("DELETE FROM changeover_meta WHERE key = ?", (f"{PENDING}{g}",))
            if any(self.added.values()):  # rows became visible: cached counts are stale
                con.execute(
                    "INSERT INTO changeover_meta (key, value) VALUES (?, '1') ON CONFLICT (key) "
                    "DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                    (PUBLISHED,),
                )

    def _join(self, con: sqlite3.Connection, es: int, run: Callable[..., None]) -> None:
        """The generation's items into the eval set `es`: a shadow's responses move to the item
        it shadows (one that another import published meanwhile is dropped), the other items
        take the eval set's id."""
        g = self.gen
        con.execute("DROP TABLE IF EXISTS temp.shadows")
        con.execute(
            "CREATE TEMP TABLE shadows AS SELECT sh.id AS shadow, it.id AS item FROM items sh "
            "JOIN items it ON it.eval_set_id = ? AND it.external_id = sh.external_id "
            "WHERE sh.eval_set_id = ?",
            (es, g),
        )
        con.execute(
            "UPDATE OR IGNORE responses SET item_id = (SELECT item FROM temp.shadows "
            "WHERE shadow = responses.item_id) WHERE item_id IN (SELECT shadow FROM temp.shadows)"
        )
        left = "(SELECT r.id FROM responses r WHERE r.item_id IN (SELECT shadow FROM temp.shadows))"
        run("ratings", f"DELETE FROM ratings WHERE response_id IN {left}", sign=-1)
        run("judgments", f"DELETE FROM judgments WHERE response_id IN {left}", sign=-1)
        run("responses", f"DELETE FROM responses WHERE id IN {left}", sign=-1)
        run("items", "DELETE FROM items WHERE id IN (SELECT shadow FROM temp.shadows)", sign=-1)
        con.execute("DROP TABLE temp.shadows")
        con.execute("UPDATE items SET eval_set_id = ? WHERE eval_set_id = ?", (es, g))


def _owner() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": base.now()})


def delete_generation(store: base.StoreBase, gen: int) -> None:
    """Remove an unpublished import's rows, chunk by chunk, then its pending mark."""
    while True:
        began = time.perf_counter()
        with store.write() as con:
            ids = json.dumps(
                [
                    r[0]
                    for r in con.execute(
                        "SELECT r.id FROM responses r JOIN items i ON i.id = r.item_id "
                        "WHERE i.eval_set_id = ? LIMIT ?",
                        (gen, FIRST_ROWS),
                    )
                ]
            )
            for table, key in (("ratings", "response_id"), ("judgments", "response_id")):
                con.execute(
                    f"DELETE FROM {table} WHERE {key} IN (SELECT value FROM json_each(?))", (ids,)
                )
            if (
                con.execute(
                    "DELETE FROM responses WHERE id IN (SELECT value FROM json_each(?))", (ids,)
                ).rowcount
                == 0
            ):
                con.execute("DELETE FROM items WHERE eval_set_id = ?", (gen,))
                con.execute("DELETE FROM changeover_meta WHERE key = ?", (f"{PENDING}{gen}",))
                return
        pause_after(time.perf_counter() - began)


def clear_abandoned(store: base.StoreBase) -> None:
    """Delete the generations of imports whose process on this machine is gone."""
    here = socket.gethostname()
    rows = store.con.execute(
        "SELECT key, value FROM changeover_meta WHERE key LIKE ?", (f"{PENDING}%",)
    ).fetchall()
    for key, value in rows:
        try:
            owner = json.loads(value)
            gen = int(key[len(PENDING) :])
        except ValueError:
            continue
        if owner.get("host") == here and not _alive(int(owner.get("pid", 0))):
            delete_generation(store, gen)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
