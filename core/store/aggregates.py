"""Judge-level counts kept for eval sets whose judged responses live elsewhere (a Parquet lake,
a warehouse), with their provenance. Such an eval set stores only a sample of the responses;
the counts stand in for the full GROUP BY over the responses table."""

from __future__ import annotations

import json
from collections.abc import Iterable

from changeover.core.store import base
from changeover.core.store.rows import EvalSetSource, JudgeLevelCount

_SOURCE_COLUMNS = (
    "kind, period, location, files, rows, fingerprint, sample_per_cell, stratify, seed, engine, "
    "spec, created_at, updated_at"
)


class Aggregates(base.StoreBase):
    def save_aggregate(
        self, eval_set_id: int, source: EvalSetSource, counts: Iterable[JudgeLevelCount]
    ) -> None:
        """Record (or replace) an eval set's judge-level counts and their provenance, in the
        caller's transaction when there is one."""
        with self.write() as con:
            con.execute("DELETE FROM judged_counts WHERE eval_set_id = ?", (eval_set_id,))
            con.executemany(
                "INSERT INTO judged_counts (eval_set_id, metric, model, region, level, n) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(eval_set_id, *row) for row in counts],
            )
            values = list(source)
            values[3] = json.dumps(list(source.files))
            con.execute(
                f"INSERT INTO eval_set_sources (eval_set_id, {_SOURCE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (eval_set_id) DO UPDATE "
                "SET kind = excluded.kind, period = excluded.period, "
                "location = excluded.location, files = excluded.files, rows = excluded.rows, "
                "fingerprint = excluded.fingerprint, sample_per_cell = excluded.sample_per_cell, "
                "stratify = excluded.stratify, seed = excluded.seed, engine = excluded.engine, "
                "spec = excluded.spec, "
                "updated_at = excluded.updated_at",
                [eval_set_id, *values],
            )

    def eval_set_source(self, eval_set_id: int) -> EvalSetSource | None:
        """Where the eval set's judged responses live; None when the workspace holds them all."""
        row = self._one(
            f"SELECT {_SOURCE_COLUMNS} FROM eval_set_sources WHERE eval_set_id = ?",
            (eval_set_id,),
        )
        if row is None:
            return None
        row = list(row)
        row[3] = tuple(json.loads(row[3]))
        return EvalSetSource._make(row)

    def aggregate_counts(self, eval_set_id: int) -> list[JudgeLevelCount] | None:
        """Judged responses per (metric, model, region, judge level) as imported with the eval
        set, or None when the eval set keeps every response (then they are counted there)."""
        if (
            self._one("SELECT 1 FROM eval_set_sources WHERE eval_set_id = ?", (eval_set_id,))
            is None
        ):
            return None
        return self._all(
            JudgeLevelCount,
            "SELECT metric, model, region, level, n FROM judged_counts WHERE eval_set_id = ? "
            "ORDER BY metric, model, region, level",
            (eval_set_id,),
        )
