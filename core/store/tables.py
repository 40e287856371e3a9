"""The raw material of the statistics (grouped counts, votes, labels per rater) and the pages
export streams (nothing is loaded whole)."""

from __future__ import annotations

from collections.abc import Iterable

from changeover.core.store import base
from changeover.core.store.publish import PUBLISHED
from changeover.core.store.rows import (
    ChosenVote,
    JudgeLevelCount,
    LabelVote,
    RaterLabel,
    RatingEvent,
    ReplacedVote,
    ResponseRow,
    Vote,
)
from changeover.core.types import Judgment


class Tables(base.StoreBase):
    def judgments_fingerprint(self) -> tuple[int, int, str | None]:
        """(judgment rows, response rows, imports published) of the workspace: changes whenever
        an import adds judged responses (judgments are never updated) or publishes rows it
        wrote before (core/store/publish.py), so judge-level counts can be cached."""
        with self._lock:
            j = self.con.execute("SELECT count(*) FROM judgments").fetchone()[0]
            r = self.con.execute("SELECT count(*) FROM responses").fetchone()[0]
            p = self.con.execute(
                "SELECT value FROM changeover_meta WHERE key = ?", (PUBLISHED,)
            ).fetchone()
        return j, r, p[0] if p else None

    def judge_level_counts(self, eval_set_id: int) -> list[JudgeLevelCount]:
        """Judged responses per (metric, model, region, judge level).

        Responses without a judgment row for a metric appear with level None as well.
        """
        return self._all(
            JudgeLevelCount,
            "SELECT m.name AS metric, r.model, i.region, j.value, count(*) AS n "
            "FROM responses r JOIN items i ON i.id = r.item_id "
            "JOIN metrics m ON m.eval_set_id = i.eval_set_id "
            "LEFT JOIN judgments j ON j.response_id = r.id AND j.metric = m.name "
            "WHERE i.eval_set_id = ? GROUP BY 1, 2, 3, 4",
            (eval_set_id,),
        )

    def label_votes(self, eval_set_id: int, exclude_raters: Iterable[str] = ()) -> list[LabelVote]:
        """Active human labels per (response, metric, level), with the judge's level.

        Only labelled responses are touched, so this stays fast on huge eval sets.
        """
        excluded = list(exclude_raters)
        marks = ",".join("?" * len(excluded))
        clause = f"AND a.rater NOT IN ({marks})" if excluded else ""
        return self._all(
            LabelVote,
            "SELECT a.response_id, a.metric, r.model, i.region, j.value AS judge, a.value AS human, "
            "count(*) AS votes FROM active_ratings a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id "
            "LEFT JOIN judgments j ON j.response_id = a.response_id AND j.metric = a.metric "
            f"WHERE i.eval_set_id = ? {clause} GROUP BY 1, 2, 5, 6",
            [eval_set_id, *excluded],
        )

    def rater_labels(self, eval_set_id: int) -> list[RaterLabel]:
        """Active human labels of an eval set, one per (response, metric, rater), for agreement,
        ordered by response and rater."""
        return self._all(
            RaterLabel,
            "SELECT a.response_id, a.metric, r.model, i.region, a.rater, a.value "
            "FROM active_ratings a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ? AND a.value IS NOT NULL ORDER BY a.response_id, a.rater, a.id",
            (eval_set_id,),
        )

    # ---- export pages (core/render/export.py) --------------------------------------------------

    def rating_events_page(
        self, eval_set_id: int, after_id: int = 0, limit: int = 5000
    ) -> list[RatingEvent]:
        """Rating events with id > after_id, oldest first, with item, region and model, and for
        a retracted event the id, rater and time of the event that retracted it."""
        rows = self._all(
            RatingEvent,
            "SELECT a.id, a.response_id, i.external_id AS item_id, i.region, r.model, a.metric, "
            "a.rater, a.value, a.created_at, a.blind, a.source, a.retracts, x.id AS retracted_by, "
            "x.rater AS retracted_by_rater, x.created_at AS retracted_at "
            "FROM ratings a JOIN responses r ON r.id = a.response_id JOIN items i ON i.id = r.item_id "
            "LEFT JOIN ratings x ON x.id = (SELECT min(y.id) FROM ratings y WHERE y.retracts = a.id) "
            "WHERE i.eval_set_id = ? AND a.id > ? ORDER BY a.id LIMIT ?",
            (eval_set_id, after_id, limit),
        )
        return [r._replace(blind=bool(r.blind)) for r in rows]

    def responses_page(
        self, eval_set_id: int, after_id: int = 0, limit: int = 2000
    ) -> list[ResponseRow]:
        """Responses with id > after_id, in id order, with their items."""
        return self._all(
            ResponseRow,
            "SELECT r.id AS response_id, i.external_id AS item_id, i.region, i.question, "
            "i.reference, r.model, r.text FROM responses r JOIN items i ON i.id = r.item_id "
            "WHERE i.eval_set_id = ? AND r.id > ? ORDER BY r.id LIMIT ?",
            (eval_set_id, after_id, limit),
        )

    def judgments_between(self, first_id: int, last_id: int) -> list[Judgment]:
        """Judgments of responses with first_id <= id <= last_id (any eval set: filter by id)."""
        return self._all(
            Judgment,
            "SELECT response_id, metric, value, raw, score, rationale, judge FROM judgments "
            "WHERE response_id BETWEEN ? AND ?",
            (first_id, last_id),
        )

    def votes_between(self, first_id: int, last_id: int) -> list[Vote]:
        """Active human votes per level for responses with first_id <= id <= last_id."""
        return self._all(
            Vote,
            "SELECT response_id, metric, value, count(*) AS n FROM active_ratings "
            "WHERE response_id BETWEEN ? AND ? AND value IS NOT NULL GROUP BY 1, 2, 3",
            (first_id, last_id),
        )

    # ---- how labels were chosen (core/model/counts.py) ----------------------------------------

    def chosen_label_votes(
        self, eval_set_id: int, exclude_raters: Iterable[str] = ()
    ) -> list[ChosenVote]:
        """The active labels among `label_votes` that were not given blind in the app, per
        (response, metric, level, kind): "open" (browse triage, or imported with --open: source
        'import-open', not blind) or "import" (imported as random)."""
        excluded = list(exclude_raters)
        skip = f"AND a.rater NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        return self._all(
            ChosenVote,
            "SELECT a.response_id, a.metric, a.value, count(*) AS votes, "
            "CASE WHEN a.source = 'import' THEN 'import' ELSE 'open' END AS kind "
            "FROM active_ratings a JOIN responses r ON r.id = a.response_id JOIN items i "
            "ON i.id = r.item_id WHERE i.eval_set_id = ? AND a.value IS NOT NULL "
            f"AND (a.source = 'import' OR NOT a.blind) {skip} GROUP BY 1, 2, 3, 5",
            [eval_set_id, *excluded],
        )

    def replaced_blind_votes(
        self, eval_set_id: int, exclude_raters: Iterable[str] = ()
    ) -> list[ReplacedVote]:
        """Blind labels their rater later replaced with an open one (browse triage): the
        rater's latest blind label where their active label is open. A replacement's
        retraction row carries the new label's blind flag (0 here); an undo carries the undone
        label's own (1 for a blind one)."""
        excluded = list(exclude_raters)
        skip = f"AND b.rater NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        return self._all(
            ReplacedVote,
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
