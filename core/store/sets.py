"""Eval sets: their definition (regions, metrics, models) and how much they hold."""

from __future__ import annotations

import json

from changeover.core.store import base
from changeover.core.store.rows import EvalSetStats
from changeover.core.types import ChangeoverError, Direction, EvalSet, Metric, Region


class EvalSets(base.StoreBase):
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
                    (es.name, es.description, es.incumbent, es.judge, base.now()),
                )
                set_id = cur.lastrowid
                assert set_id is not None
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
                direction=Direction(m["direction"]),
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

    def stats(self, eval_set_id: int) -> EvalSetStats:
        """Counts of items, responses, judgments, ratings (active; and open ones) and labelled
        responses."""
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
            "open_ratings": "SELECT count(*) FROM active_ratings a JOIN responses r "
            "ON r.id = a.response_id JOIN items i ON i.id = r.item_id "
            f"WHERE i.eval_set_id = ? AND {base.open_label('a')}",
        }
        return EvalSetStats(**{k: self._scalar(sql, (eval_set_id,)) for k, sql in q.items()})
