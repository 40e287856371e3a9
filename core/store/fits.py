"""Kept fits: settings, the counts hash, diagnostics and the compressed draws.

Serialised form (the fits table): `settings` is the sampling settings with the raters the fit
left out under "exclude_raters", `diagnostics` is `Diagnostics.to_dict()`, `summary` holds how
long the fit took. Verdicts are not stored: they are computed from the draws when shown.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from changeover.core.settings import Settings
from changeover.core.store import base
from changeover.core.types import ChangeoverError, Diagnostics, FitRecord

_COLUMNS = "id, eval_set_id, created_at, settings, data_hash, diagnostics, summary"


class Fits(base.StoreBase):
    def save_fit(
        self,
        eval_set_id: int,
        settings: Settings,
        data_hash: str,
        diagnostics: Diagnostics,
        draws: bytes,
        exclude_raters: tuple[str, ...] = (),
        seconds: float | None = None,
    ) -> FitRecord:
        """Keep a fit: settings, counts hash, diagnostics and compressed draws."""
        stored = {**settings.to_dict(), "exclude_raters": sorted(exclude_raters)}
        with self.write() as con:
            cur = con.execute(
                "INSERT INTO fits (eval_set_id, created_at, settings, data_hash, diagnostics, "
                "summary, draws) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    eval_set_id,
                    base.now(),
                    json.dumps(stored),
                    data_hash,
                    json.dumps(diagnostics.to_dict()),
                    json.dumps({"seconds": seconds}),
                    zlib.compress(draws, 6),
                ),
            )
            fit_id = cur.lastrowid
        assert fit_id is not None
        return self.fit(fit_id)

    def fit(self, fit_id: int) -> FitRecord:
        rows = self._rows(f"SELECT {_COLUMNS} FROM fits WHERE id = ?", (fit_id,))
        if not rows:
            raise ChangeoverError(f"no fit {fit_id}")
        return _fit(rows[0])

    def fits(self, eval_set_id: int) -> list[FitRecord]:
        """Fits of an eval set, newest first."""
        return [
            _fit(r)
            for r in self._rows(
                f"SELECT {_COLUMNS} FROM fits WHERE eval_set_id = ? ORDER BY id DESC",
                (eval_set_id,),
            )
        ]

    def fit_draws(self, fit_id: int) -> bytes:
        row = self._one("SELECT draws FROM fits WHERE id = ?", (fit_id,))
        if row is None:
            raise ChangeoverError(f"no fit {fit_id}")
        return zlib.decompress(row[0])

    def labels_since(self, eval_set_id: int, created_at: str) -> int:
        """Label events (not retractions) given in the eval set after `created_at`."""
        return int(
            self._scalar(
                "SELECT count(*) FROM ratings a JOIN responses r ON r.id = a.response_id "
                "JOIN items i ON i.id = r.item_id WHERE i.eval_set_id = ? "
                "AND a.retracts IS NULL AND a.created_at > ?",
                (eval_set_id, created_at),
            )
        )


def _fit(r: dict[str, Any]) -> FitRecord:
    stored = json.loads(r["settings"])
    summary = json.loads(r["summary"])
    seconds = summary.get("seconds") if isinstance(summary, dict) else None
    return FitRecord(
        id=r["id"],
        eval_set_id=r["eval_set_id"],
        created_at=r["created_at"],
        settings=Settings.from_dict(stored),
        data_hash=r["data_hash"],
        diagnostics=Diagnostics.from_dict(json.loads(r["diagnostics"])),
        exclude_raters=tuple(stored.get("exclude_raters") or ()),
        seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
    )
