"""Browsing and picking responses: filtered pages by keyset, and the labelling queue's picks."""

from __future__ import annotations

from changeover.core.store import base, fts
from changeover.core.store.rows import CellLabelCount
from changeover.core.types import BrowseFilter, BrowseRow

# A browse query without a search the index can narrow walks responses in id order.
SCAN = "responses r JOIN items i ON i.id = r.item_id"
# With one, the index hands out the candidate responses in id order, so a page stops at its
# last hit; the substring test in the WHERE clause keeps exactly the rows a scan keeps.
INDEXED = (
    f"{fts.INDEX} f CROSS JOIN responses r ON r.id = f.rowid CROSS JOIN items i ON i.id = r.item_id"
)


class Browse(base.StoreBase):
    use_search_index = True  # False: every search scans (tests and the bench compare the two)
    _search_index: bool | None = None  # whether the workspace has the index (looked up once)

    def _search_match(self, search: str | None) -> str | None:
        """The FTS5 query that narrows `search`, or None when the search scans (no search, one
        too short for trigrams, or a workspace without the index: schema 1 opened read-only,
        or a SQLite without trigrams)."""
        if not search or not self.use_search_index:
            return None
        if self._search_index is None:
            found = self._one("SELECT 1 FROM sqlite_master WHERE name = ?", (fts.INDEX,))
            self._search_index = found is not None
        return fts.match_expression(search) if self._search_index else None

    def _browse_query(
        self, eval_set_id: int, f: BrowseFilter, scan: str = SCAN
    ) -> tuple[str, str, list, str]:
        """FROM clause, WHERE clause, its parameters and the column that orders the rows (the
        response id): through the search index when it can narrow the search, else `scan`."""
        where, params = self._browse_where(eval_set_id, f)
        match = self._search_match(f.search)
        if match is None:
            return scan, where, params, "r.id"
        return INDEXED, f"f.{fts.INDEX} MATCH ? AND {where}", [match, *params], "f.rowid"

    def _browse_where(self, eval_set_id: int, f: BrowseFilter) -> tuple[str, list]:
        where: list[str] = ["i.eval_set_id = ?"]
        params: list[object] = [eval_set_id]
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
        source, where, params, key = self._browse_query(eval_set_id, f)
        return self._browse_rows(
            f"FROM {source} WHERE {where} ORDER BY {key} LIMIT ? OFFSET ?",
            params + [limit, offset],
        )

    def browse_page(
        self,
        eval_set_id: int,
        f: BrowseFilter = BrowseFilter(),
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[BrowseRow]:
        """A page of `browse` by keyset: the `limit` rows after `after_id` (or just before
        `before_id`), in response id order. Walks responses by rowid (or the search index's
        hits) and stops at `limit` matches, so any page of a million responses costs about what
        the first one does (OFFSET paging and the planner's sort cost seconds there)."""
        source, where, params, key = self._browse_query(
            eval_set_id, f, scan="responses r NOT INDEXED CROSS JOIN items i ON i.id = r.item_id"
        )
        if before_id is not None:
            bound, order, params = f"{key} < ?", "DESC", params + [before_id]
        else:
            bound, order = f"{key} > ?", ""
            params = params + [after_id if after_id is not None else -1]
        rows = self._browse_rows(
            f"FROM {source} WHERE {where} AND {bound} ORDER BY {key} {order} LIMIT ?",
            params + [limit],
        )
        if order:
            rows.reverse()
        return rows

    def _browse_rows(self, tail: str, params: list) -> list[BrowseRow]:
        return self._all(
            BrowseRow,
            "SELECT r.id, i.external_id, i.region, r.model, i.question, substr(r.text, 1, 200), "
            "(SELECT count(*) FROM active_ratings a WHERE a.response_id = r.id) " + tail,
            params,
        )

    def browse_count(self, eval_set_id: int, f: BrowseFilter = BrowseFilter()) -> int:
        source, where, params, _ = self._browse_query(eval_set_id, f)
        return self._one(f"SELECT count(*) FROM {source} WHERE {where}", params)[0]

    # ---- labelling queue (core/labelling/queue.py) ---------------------------------------------------

    def cell_label_counts(
        self, eval_set_id: int, metric: str | None = None
    ) -> list[CellLabelCount]:
        """Labelled responses per cell and judge level on `metric` (None: no such verdict).

        A response is labelled when it has any active human rating. Only labelled responses
        are touched, so this stays fast on huge eval sets.
        """
        return self._all(
            CellLabelCount,
            "SELECT r.model, i.region, j.value, count(*) AS n FROM "
            "(SELECT DISTINCT response_id FROM active_ratings) a "
            "JOIN responses r ON r.id = a.response_id JOIN items i ON i.id = r.item_id "
            "LEFT JOIN judgments j ON j.response_id = r.id AND j.metric = ? "
            "WHERE i.eval_set_id = ? GROUP BY 1, 2, 3",
            (metric, eval_set_id),
        )

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
