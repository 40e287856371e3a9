"""How a fit samples: one frozen value, stored with every fit in one serialised form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Settings:
    """How to sample. Same seed and counts give the same numbers."""

    chains: int = 4
    draws: int = 1000
    tune: int = 1000  # half as many tuning steps left divergences in some fits
    seed: int = 20260601
    target_accept: float = 0.95  # 0.9 left divergences in some fits
    sampler: str = "auto"  # "auto" (nutpie when installed) | "pymc" | "nutpie"
    pooling: str = "partial"  # "partial" | "shared" (one confusion for every model and region)
    min_labels: int = 30  # a candidate with fewer human labels on a metric is never ready
    adaptation: str = "auto"  # nutpie mass matrix: "auto" (diagonal) | "diag" | "low_rank"
    geometry: str = "auto"  # "auto" | "aligned" (L = 2 only: tau parametrisation) | "forward"
    keep_draws: int = 2000  # draws kept per fit (thinned), to keep stored fits small

    @classmethod
    def quick(cls, **overrides: Any) -> Settings:
        """A fast preset for tests and previews (2 chains x 300 draws)."""
        return replace(cls(chains=2, draws=300, tune=300), **overrides)

    @property
    def is_quick(self) -> bool:
        """Fewer draws than a verdict needs (a first look)."""
        return self.draws < Settings.draws

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """The settings stored with a fit (keys this version does not know are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
