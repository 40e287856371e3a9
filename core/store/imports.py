"""All-or-nothing bulk imports: rows staged in temporary tables, then written in short
transactions and published in one (core/store/publish.py), and the lookups the importer's
checks need."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from changeover.core.store import base
from changeover.core.store.publish import Publisher
from changeover.core.store.rows import ItemKey, JudgmentKey, RatingKey
from changeover.core.store.sets import EvalSets
from changeover.core.types import IMPORT, ChangeoverError, EvalSet

IMPORT_CACHE_KB = 128 * 1024  # page cache during a bulk import (importing_eval_set)


class Imports(EvalSets):
    @contextmanager
    def importing(self, eval_set_id: int) -> Iterator[ImportBatch]:
        """All-or-nothing bulk import: stage rows, then write and publish them (Publisher).

        Staging writes only this connection's temporary tables, so it takes no write lock;
        the writing holds it a chunk at a time, so raters labelling meanwhile wait for one
        chunk at most. Inside the caller's transaction everything is merged there at once.
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
                batch.added = Publisher(self, eval_set_id).run(lambda: eval_set_id)
            finally:
                batch._drop_stage()

    @contextmanager
    def importing_eval_set(self, es: EvalSet) -> Iterator[ImportBatch]:
        """Like `importing`, but the eval set is saved (created or updated) in the publishing
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
                if self._in_write:  # inside the caller's transaction: merge there, at once
                    batch.eval_set_id = self.save_eval_set(es).id
                    batch._merge()
                else:
                    held = self._scalar("SELECT id FROM eval_sets WHERE name = ?", (es.name,))
                    batch.added = Publisher(self, held).run(lambda: self.save_eval_set(es).id)
            finally:
                batch._drop_stage()
                for db, size in caches.items():
                    self.con.execute(f"PRAGMA {db}.cache_size = {size}")

    # ---- lookups for the importer's checks ----------------------------------------------

    def item_index(self, eval_set_id: int) -> list[ItemKey]:
        """Every item of an eval set, by the id, region and question an import file uses."""
        return self._all(
            ItemKey,
            "SELECT external_id, region, question FROM items WHERE eval_set_id = ?",
            (eval_set_id,),
        )

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

    def judgment_levels(self, eval_set_id: int, external_ids: Iterable[str]) -> list[JudgmentKey]:
        """The stored judge verdicts of the given items (what a re-import is checked against)."""
        return self._all(
            JudgmentKey,
            "SELECT i.external_id, r.model, j.metric, j.value FROM items i "
            "JOIN responses r ON r.item_id = i.id JOIN judgments j ON j.response_id = r.id "
            "WHERE i.eval_set_id = ? AND i.external_id IN (SELECT value FROM json_each(?))",
            (eval_set_id, json.dumps(list(dict.fromkeys(external_ids)))),
        )

    def rating_keys(self, eval_set_id: int) -> list[RatingKey]:
        """Every label event of an eval set that is not itself a retraction."""
        return [
            r._replace(active=bool(r.active), open=bool(r.open))
            for r in self._all(
                RatingKey,
                "SELECT i.external_id, r.model, a.metric, a.rater, a.value, "
                "NOT EXISTS (SELECT 1 FROM ratings x WHERE x.retracts = a.id), "
                f"{base.open_label('a')} "
                "FROM ratings a JOIN responses r ON r.id = a.response_id "
                "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ? AND a.retracts IS NULL",
                (eval_set_id,),
            )
        ]


class ImportBatch:
    """Rows staged in temporary tables during `Store.importing`, merged set-wise at the end."""

    def __init__(self, store: base.StoreBase, eval_set_id: int):
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
            "model TEXT, metric TEXT, rater TEXT, value INTEGER, created_at TEXT, source TEXT)"
        )
        self._seq = 0

    def _drop_stage(self) -> None:
        for t in ("stage_responses", "stage_judgments", "stage_ratings"):
            self.con.execute(f"DROP TABLE IF EXISTS temp.{t}")

    def add_responses(self, rows: Iterable[tuple[str, str, str, str | None, str, str]]) -> None:
        """Rows of (external_id, region, question, reference, model, text)."""
        start = self._seq
        numbered = [(*r, start + k) for k, r in enumerate(rows)]
        self._seq += len(numbered)
        self._stage("INSERT INTO stage_responses VALUES (?, ?, ?, ?, ?, ?, ?)", numbered)

    def add_judgments(self, rows: Iterable[tuple]) -> None:
        """Rows of (external_id, model, metric, judge, level or None, raw, score, rationale)."""
        self._stage("INSERT INTO stage_judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def add_ratings(self, rows: Iterable[tuple], source: str = IMPORT) -> None:
        """Rows of (external_id, model, metric, rater, level, created_at); `source` IMPORT
        (drawn at random) or IMPORT_OPEN (chosen by a person: stored not blind, as the app's
        open labels are, and left out of the fit)."""
        self._stage(
            "INSERT INTO stage_ratings VALUES (?, ?, ?, ?, ?, ?, ?)", ((*r, source) for r in rows)
        )

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
            # rowcount counts the statement's own rows; total_changes would add the rows the
            # search index's triggers write
            rows = con.execute(sql, params).rowcount
            self.added[key] = self.added.get(key, 0) + rows

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
            "source) SELECT DISTINCT r.id, s.metric, s.rater, s.value, s.created_at, 0, s.source "
            "FROM stage_ratings s JOIN items i ON i.eval_set_id = ? AND i.external_id = s.external_id "
            "JOIN responses r ON r.item_id = i.id AND r.model = s.model "
            "WHERE NOT EXISTS (SELECT 1 FROM active_ratings a WHERE a.response_id = r.id "
            "AND a.metric = s.metric AND a.rater = s.rater AND a.value = s.value)",
            (es,),
        )
