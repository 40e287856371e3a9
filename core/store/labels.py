"""Responses and their human labels: append-only rating events, undo as a retraction."""

from __future__ import annotations

from typing import Any

from changeover.core.store import base
from changeover.core.types import ChangeoverError, Item, Judgment, Rating, Response, ResponseView


class Labels(base.StoreBase):
    def response_view(self, response_id: int) -> ResponseView:
        rows = self._rows(
            "SELECT r.id, r.item_id, r.model, r.text, i.eval_set_id, i.external_id, i.region, "
            "i.question, i.reference FROM responses r JOIN items i ON i.id = r.item_id WHERE r.id = ?",
            (response_id,),
        )
        if not rows:
            raise ChangeoverError(f"no response {response_id}")
        r = rows[0]
        judgments = self._all(
            Judgment,
            "SELECT response_id, metric, value, raw, score, rationale, judge FROM judgments "
            "WHERE response_id = ?",
            (response_id,),
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
            judgments=tuple(judgments),
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
            stamp = base.now()
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
        assert rating_id is not None
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
                (target[0], target[1], rater, base.now(), target[2], rating_id),
            )
            new_id = cur.lastrowid
        assert new_id is not None
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

    def unfinished(self, eval_set_id: int, rater: str, metrics: list[str]) -> list[int]:
        """Responses of the eval set the rater began labelling blind in the app and left with
        some of `metrics` unanswered (a session killed midway), the latest first."""
        if not metrics:
            return []
        marks = ", ".join("?" * len(metrics))
        rows = self._rows(
            "SELECT a.response_id, max(a.id) AS last FROM active_ratings a "
            "JOIN responses r ON r.id = a.response_id JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ? AND a.rater = ? AND a.blind = 1 AND a.source = 'app' "
            f"AND a.value IS NOT NULL AND a.metric IN ({marks}) GROUP BY a.response_id "
            "HAVING count(DISTINCT a.metric) < ? ORDER BY last DESC",
            (eval_set_id, rater, *metrics, len(metrics)),
        )
        return [r["response_id"] for r in rows]

    def raters(self, eval_set_id: int) -> list[str]:
        """Everyone who has labelled a response of the eval set (undone labels included)."""
        rows = self._rows(
            "SELECT DISTINCT a.rater FROM ratings a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ? ORDER BY a.rater",
            (eval_set_id,),
        )
        return [r["rater"] for r in rows]

    # ---- overlap (core/labelling/overlap.py) ----------------------------------------------------

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


def _rating(r: dict[str, Any]) -> Rating:
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
