"""What the eval-sets screen and `changeover info` show about one eval set (built by
core/workspace.py, which the faces import it from)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from changeover.core.store.rows import EvalSetSource, EvalSetStats
from changeover.core.types import EvalSet, FitRecord

if TYPE_CHECKING:
    from changeover.core.results import Results


@dataclass(frozen=True)
class EvalSetSummary:
    """What the eval-sets screen and `changeover info` show about one eval set."""

    eval_set: EvalSet
    stats: EvalSetStats
    models: tuple[str, ...]
    fits: int
    latest_fit: FitRecord | None
    results: Results | None  # of the latest fit (None without a fit, or when not asked)
    source: EvalSetSource | None = None  # where the judged responses live, if not all here

    @property
    def responses_judged(self) -> int:
        """Judged responses the counts cover: the dataset's rows, or every stored response."""
        return self.source.rows if self.source is not None else self.stats.responses

    @property
    def responses_text(self) -> str:
        return responses_text(self.stats.responses, self.source)


def responses_text(stored: int, source: EvalSetSource | None) -> str:
    """How many responses an eval set holds: "4,800", or for a sample of a dataset
    "6,000 of 20,000,000 · sampled · 2026-11"."""
    if source is None:
        return f"{stored:,}"
    kind = "sampled" if source.kind == "dataset" else "counts + sample"
    period = f" · {source.period}" if source.period else ""
    return f"{stored:,} of {source.rows:,} · {kind}{period}"
