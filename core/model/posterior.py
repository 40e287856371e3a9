"""Posterior draws of one metric, whichever estimator made them, and what is derived from them.

Both the full calibration model and the instant (conjugate) posterior produce a `Posterior`;
decisions, reports and screens only ever see this shape. Intervals are 90% equal-tailed: the
5% and 95% quantiles of the draws (`interval`), the one interval every face shows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from changeover.core.model.counts import Counts
from changeover.core.types import Source

LOWER_Q, UPPER_Q, LEVEL = 0.05, 0.95, 0.90


@dataclass(frozen=True)
class Interval:
    """A posterior mean with its 90% equal-tailed interval."""

    mean: float
    lower: float
    upper: float

    def includes(self, x: float) -> bool:
        return self.lower <= x <= self.upper


def interval(draws: np.ndarray) -> Interval:
    """Mean and 5%-95% quantiles of draws (along axis 0)."""
    draws = np.asarray(draws, dtype=float)
    lo, hi = np.quantile(draws, [LOWER_Q, UPPER_Q], axis=0)
    return Interval(float(np.mean(draws)), float(lo), float(hi))


Cell = tuple[str, str]  # (model, region)
Table = tuple[tuple[int, ...], ...]  # one number per (model, region), in the posterior's order


def _table(rows: Iterable[Iterable[Any]] | None) -> Table | None:
    return None if rows is None else tuple(tuple(int(x) for x in row) for row in rows)


def _cells(pairs: Iterable[Iterable[str]] | None) -> tuple[Cell, ...]:
    return tuple((str(m), str(r)) for m, r in pairs or ())


@dataclass(frozen=True)
class CellFlags:
    """What a posterior says of its cells besides the draws. Every estimator sets the labels
    (core/model/instant.cell_flags); widening the unlabelled cells adds `widened_cells`."""

    cell_labels: Table | None = None  # labelled responses per cell (None: not known)
    cell_ties: Table | None = None  # responses per cell rated but left out: their raters tied
    unlabelled_cells: tuple[Cell, ...] = ()  # cells without a label
    widened_cells: tuple[Cell, ...] = ()  # cells whose draws carry the judge's unknown lean

    def labels_of(self, m: int) -> tuple[int, ...] | None:
        """Labelled responses of the posterior's model m per region (None: not known)."""
        return None if self.cell_labels is None else self.cell_labels[m]

    def ties_of(self, m: int) -> tuple[int, ...] | None:
        return None if self.cell_ties is None else self.cell_ties[m]

    def to_dict(self) -> dict[str, Any]:
        """The serialised form kept with a fit (the keys fits have always been written with)."""
        out: dict[str, Any] = {}
        if self.cell_labels is not None:
            out["cell_labels"] = [list(row) for row in self.cell_labels]
        out["unlabelled_cells"] = [list(c) for c in self.unlabelled_cells]
        if self.cell_ties is not None:
            out["cell_ties"] = [list(row) for row in self.cell_ties]
        if self.widened_cells:
            out["widened_cells"] = [list(c) for c in self.widened_cells]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CellFlags:
        """Flags read back from a fit, whenever it was written (keys it does not know, from
        older versions, are ignored)."""
        data = data or {}
        return cls(
            cell_labels=_table(data.get("cell_labels")),
            cell_ties=_table(data.get("cell_ties")),
            unlabelled_cells=_cells(data.get("unlabelled_cells")),
            widened_cells=_cells(data.get("widened_cells")),
        )


@dataclass(frozen=True)
class Posterior:
    """Draws for one metric.

    p[s, m, r, l]         true level distribution of model m in region r (sums to 1 over l)
    confusion[s, m, r, h, j]  the judge's P(J = j | H = h) in that cell
    """

    metric: str
    levels: tuple[str, ...]
    models: tuple[str, ...]
    regions: tuple[str, ...]
    weights: np.ndarray  # [R] traffic weights, sum to 1
    p: np.ndarray
    confusion: np.ndarray
    source: Source = Source.FULL  # the calibration model, or INSTANT (conjugate, unpooled)
    pass_level: int | None = None
    flags: CellFlags = CellFlags()
    chains: int = 1  # the draws are this many chains, one after the other
    counts: Counts | None = None  # the counts it was computed from (to reweight by new labels)

    @property
    def n_draws(self) -> int:
        return self.p.shape[0]

    @property
    def is_binary(self) -> bool:
        return len(self.levels) == 2

    def quantity(self) -> np.ndarray:
        """The decision quantity per draw, [S, M, R]: rate of the positive (top) level for
        yes/no metrics, mean level on the 1..L scale otherwise."""
        if self.is_binary:
            return self.p[..., -1]
        scale = np.arange(1, len(self.levels) + 1, dtype=float)
        return self.p @ scale

    def pass_share(self) -> np.ndarray | None:
        """Share at or above the pass level, [S, M, R] (L > 2 with a pass level only)."""
        if self.is_binary or self.pass_level is None:
            return None
        return self.p[..., self.pass_level :].sum(axis=-1)

    def overall(self, q: np.ndarray | None = None) -> np.ndarray:
        """Traffic-weighted overall across regions, [S, M]."""
        q = self.quantity() if q is None else q
        return q @ self.weights

    def model_index(self, model: str) -> int:
        return self.models.index(model)


def to_bytes(posteriors: list[Posterior]) -> bytes:
    """Serialise posteriors (arrays as float32) for the fits table."""
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for k, post in enumerate(posteriors):
        arrays[f"p{k}"] = post.p.astype(np.float32)
        arrays[f"c{k}"] = post.confusion.astype(np.float32)
        arrays[f"w{k}"] = np.asarray(post.weights, dtype=np.float64)
        if post.counts is not None:
            arrays[f"n{k}"], arrays[f"u{k}"] = post.counts.n, post.counts.u
        meta.append(
            {
                "metric": post.metric,
                "levels": list(post.levels),
                "models": list(post.models),
                "regions": list(post.regions),
                "source": post.source,
                "pass_level": post.pass_level,
                "flags": post.flags.to_dict(),
                "chains": post.chains,
                "counts": None
                if post.counts is None
                else {
                    "models": list(post.counts.models),
                    "regions": list(post.counts.regions),
                    "ties": post.counts.ties,
                    "missing_judgments": post.counts.missing_judgments,
                },
            }
        )
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first kwarg
    return buf.getvalue()


def from_bytes(blob: bytes) -> list[Posterior]:
    data = np.load(io.BytesIO(blob))
    meta = json.loads(data["meta"].tobytes().decode())
    out = []
    for k, m in enumerate(meta):
        flags = CellFlags.from_dict(m.get("flags"))
        c = m.get("counts")
        counts = None
        if c is not None and f"n{k}" in data:
            counts = Counts(
                metric=m["metric"],
                levels=tuple(m["levels"]),
                models=tuple(c["models"]),
                regions=tuple(c["regions"]),
                n=data[f"n{k}"].astype(np.int64),
                u=data[f"u{k}"].astype(np.int64),
                ties=int(c.get("ties", 0)),
                missing_judgments=int(c.get("missing_judgments", 0)),
            )
        out.append(
            Posterior(
                metric=m["metric"],
                levels=tuple(m["levels"]),
                models=tuple(m["models"]),
                regions=tuple(m["regions"]),
                weights=data[f"w{k}"],
                p=data[f"p{k}"].astype(np.float64),
                confusion=data[f"c{k}"].astype(np.float64),
                source=Source(m["source"]),
                pass_level=m["pass_level"],
                flags=flags,
                chains=int(m.get("chains", 1)),
                counts=counts,
            )
        )
    return out
