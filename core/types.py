"""Domain values: frozen dataclasses that everything above the store works with.

Levels of a metric are integers 0..L-1 ordered from lowest to highest; the last level is
the "positive" one (for yes/no metrics the labels are ("no", "yes"), so 1 means yes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

from changeover.core.settings import Settings
from changeover.core.shown import beside

# The vocabulary the parts and the faces share. Each is a StrEnum: its value is the string it
# replaces, so the JSON, CSV and text outputs read as before, and a misspelt member is a type
# error where a misspelt string was a silent mismatch.


class Direction(StrEnum):
    """Which way a metric's candidate must go against the incumbent (README, "Decisions")."""

    HIGHER = "higher"
    LOWER = "lower"
    MATCH = "match"


DIRECTIONS: tuple[str, ...] = tuple(Direction)


class Verdict(StrEnum):
    """A decision on a cell or a candidate (core/decide/)."""

    READY = "ready"
    NOT_READY = "not ready"
    UNDECIDED = "undecided"


class Source(StrEnum):
    """Where the numbers come from: a posterior's draws (FULL or INSTANT) and the results
    shown (any of the three: UPDATED is a kept fit reweighted by the labels since)."""

    FULL = "full"  # a kept fit of the calibration model, on the counts it saw
    UPDATED = "updated"  # a kept fit reweighted by the labels given since (core/model/reweight.py)
    INSTANT = "instant"  # the conjugate, unpooled posterior (no fit yet, or asked for)


Unmapped = Literal["error", "missing"]


@dataclass(frozen=True)
class Region:
    name: str
    traffic: float  # monthly interactions (any positive number; weights are traffic / total)


@dataclass(frozen=True)
class Metric:
    name: str
    levels: tuple[str, ...]  # labels, index = level value, lowest first
    direction: Direction = Direction.HIGHER
    margin: float = 0.0
    guideline: str = ""
    keys: tuple[str, ...] = ()  # one key per level, same order as levels
    judge_map: tuple[tuple[str, str], ...] = ()  # raw judge value -> level label
    unmapped: Unmapped = "error"
    pass_level: int | None = None  # L > 2: report the share at or above this level index

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def is_binary(self) -> bool:
        return len(self.levels) == 2

    def level_of(self, raw: object) -> int | None:
        """Map a raw value (a level label, a judge_map entry or a key) to a level index, or None."""
        if raw is None:
            return None
        text = str(raw).strip()
        mapped = dict(self.judge_map).get(text)
        if mapped is not None:
            text = mapped
        folded = text.casefold()
        for i, label in enumerate(self.levels):
            if label.casefold() == folded:
                return i
        if self.keys:
            for i, key in enumerate(self.keys):
                if key == text:
                    return i
        return None


@dataclass(frozen=True)
class EvalSet:
    id: int
    name: str
    incumbent: str
    regions: tuple[Region, ...]
    metrics: tuple[Metric, ...]
    description: str = ""
    judge: str = "judge"
    created_at: str = ""

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"eval set {self.name!r} has no metric {name!r}")

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    @property
    def traffic_weights(self) -> tuple[float, ...]:
        total = sum(r.traffic for r in self.regions)
        return tuple(r.traffic / total for r in self.regions)


@dataclass(frozen=True)
class Item:
    id: int
    eval_set_id: int
    external_id: str
    region: str
    question: str
    reference: str | None = None


@dataclass(frozen=True)
class Response:
    id: int
    item_id: int
    model: str
    text: str


@dataclass(frozen=True)
class Judgment:
    response_id: int
    metric: str
    value: int | None  # level index, None when the judge's raw value was unmappable
    raw: str | None = None
    score: float | None = None
    rationale: str | None = None
    judge: str = "judge"


# Where a label came from (ratings.source). An *open* label is one whose response a person
# chose having seen it (browse triage in the app, stored not blind; or a file imported with
# `import-labels --open`, stored the same way with source IMPORT_OPEN): the fit leaves it out,
# as it assumes labelled responses were drawn at random given the cell and the judge's level.
# Blind labels from the rate screen and labels imported without --open count as random.
APP, IMPORT, IMPORT_OPEN = "app", "import", "import-open"
RANDOM, OPEN = "random", "open"  # a label's selection


def label_selection(blind: bool, source: str) -> str:
    """RANDOM or OPEN: how the labelled response was chosen (see IMPORT_OPEN)."""
    return RANDOM if blind or source == IMPORT else OPEN


@dataclass(frozen=True)
class Rating:
    """An append-only rating event. A retraction is a Rating with `retracts` set and no value."""

    id: int
    response_id: int
    metric: str
    rater: str
    value: int | None
    created_at: str
    blind: bool = True
    source: str = APP  # APP, IMPORT or IMPORT_OPEN
    retracts: int | None = None

    @property
    def open(self) -> bool:
        """Chosen by a person, not drawn at random: left out of the fit."""
        return label_selection(self.blind, self.source) == OPEN

    @property
    def imported(self) -> bool:
        return self.source != APP


@dataclass(frozen=True)
class ResponseView:
    """Everything the detail pane or the rate screen needs about one response."""

    response: Response
    item: Item
    judgments: tuple[Judgment, ...]
    ratings: tuple[Rating, ...]  # active (not retracted) ratings only


@dataclass(frozen=True)
class BrowseFilter:
    """Filters of the browse screen; every value reaches SQL as a parameter."""

    region: str | None = None
    model: str | None = None
    metric: str | None = None  # judge_level / human_level / disagree refer to this metric
    judge_level: int | None = None
    human_level: int | None = None
    disagree: bool = False  # a human label differs from the judge on `metric` (any, if None)
    raters_disagree: bool = False  # two raters' active labels differ (on `metric`, or any)
    unrated: bool = False  # no active human rating (on `metric`, or on any metric if None)
    search: str | None = None  # substring of question or response text


@dataclass(frozen=True)
class BrowseRow:
    response_id: int
    external_id: str
    region: str
    model: str
    question: str
    text_preview: str
    n_ratings: int


RHAT_MAX, ESS_MIN = 1.01, 400  # what a fit must meet (core/model/fit.py judges by the same)


@dataclass(frozen=True)
class Diagnostics:
    """Sampler diagnostics of a fit, overall and per metric (R-hat, bulk and tail ESS,
    divergences); `ok` when every metric passed. `to_dict` is the one serialised form (what the
    fits table and the report's JSON hold); keys this version does not know are kept in `extra`."""

    ok: bool
    max_rhat: float = float("nan")
    min_ess_bulk: float = float("nan")
    min_ess_tail: float = float("nan")
    divergences: int = 0
    reasons: tuple[str, ...] = ()
    sampler: str = ""
    per_metric: Mapping[str, Diagnostics] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS: ClassVar[tuple[str, ...]] = (
        "ok",
        "max_rhat",
        "min_ess_bulk",
        "min_ess_tail",
        "divergences",
        "reasons",
        "sampler",
        "per_metric",
    )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Diagnostics:
        def num(key: str) -> float:
            v = d.get(key)
            return float(v) if isinstance(v, (int, float)) else float("nan")

        return cls(
            ok=bool(d.get("ok", False)),
            max_rhat=num("max_rhat"),
            min_ess_bulk=num("min_ess_bulk"),
            min_ess_tail=num("min_ess_tail"),
            divergences=int(d.get("divergences") or 0),
            reasons=tuple(str(r) for r in d.get("reasons") or ()),
            sampler=str(d.get("sampler") or ""),
            per_metric={k: cls.from_dict(v) for k, v in (d.get("per_metric") or {}).items()},
            extra={k: v for k, v in d.items() if k not in cls._KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "max_rhat": self.max_rhat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "divergences": self.divergences,
            "reasons": list(self.reasons),
        }
        if self.sampler:
            out["sampler"] = self.sampler
        if self.per_metric:
            out["per_metric"] = {k: v.to_dict() for k, v in self.per_metric.items()}
        return {**out, **self.extra}

    def for_metric(self, name: str) -> Diagnostics:
        """This metric's diagnostics, or the overall ones when none were kept per metric."""
        return self.per_metric.get(name, self)

    def numbers(self) -> str:
        """'max R-hat 1.0104, min ESS bulk 399.6, tail 700, 0 divergences': the digits that
        decide against the limits."""
        bulk, tail = (beside(x, ESS_MIN, "<", 0, 2) for x in (self.min_ess_bulk, self.min_ess_tail))
        return (
            f"max R-hat {beside(self.max_rhat, RHAT_MAX, '>', 3, 6)}, min ESS bulk {bulk}, "
            f"tail {tail}, {self.divergences} divergences"
        )

    def failures(self) -> tuple[str, ...]:
        """Why the fit failed, metric by metric, with the digits that decide ("correct: R-hat
        1.0104 > 1.01", never "1.010 > 1.01"); the kept reasons when no metric's numbers were
        kept. Every face shows these."""
        if not self.per_metric:
            return self.reasons
        out = []
        for name, d in self.per_metric.items():
            if not d.max_rhat <= RHAT_MAX:
                out.append(f"{name}: R-hat {beside(d.max_rhat, RHAT_MAX, '>', 3, 6)} > {RHAT_MAX}")
            ess = min(d.min_ess_bulk, d.min_ess_tail)
            if not ess >= ESS_MIN:
                out.append(f"{name}: ESS {beside(ess, ESS_MIN, '<', 0, 2)} < {ESS_MIN}")
            if d.divergences:
                n = d.divergences
                out.append(f"{name}: {n} divergent transition{'s' * (n != 1)}")
        return tuple(out) or self.reasons


@dataclass(frozen=True)
class FitRecord:
    """A kept fit: how it sampled, which raters it left out, a hash of the counts it saw (to
    tell when it is stale), its diagnostics and how long it took. The draws stay in the store."""

    id: int
    eval_set_id: int
    created_at: str
    settings: Settings
    data_hash: str
    diagnostics: Diagnostics
    exclude_raters: tuple[str, ...] = ()
    seconds: float | None = None


@dataclass(frozen=True)
class ModelsReady:
    """How an eval set's compiled models got ready for a fit (core/model/cache.py): compiled
    now and kept for next time, read from the disk cache, or already in this process."""

    compiled: tuple[str, ...] = ()
    from_cache: tuple[str, ...] = ()
    in_memory: tuple[str, ...] = ()
    seconds: float = 0.0

    def text(self) -> str:
        """One line for `changeover fit` and the app: "compiled in 41 s; kept for next time",
        "model from cache" or "model already loaded" ("" when nothing needed compiling)."""
        if self.compiled:
            return f"model compiled in {self.seconds:.0f} s; kept for next time"
        if self.from_cache:
            return "model from cache"
        return "model already loaded" if self.in_memory else ""


class FitCancelled(Exception):
    """A fit was cancelled through its cancel event; nothing was stored."""


class ChangeoverError(Exception):
    """A problem the user can fix (bad file, wrong workspace); shown without a traceback."""


class UsageError(ChangeoverError):
    """The command was used wrongly (exit 2); the message says how to use it."""


class EvalSetChoice(UsageError):
    """Several eval sets and none named: a usage error that names them."""


class WorkspaceError(ChangeoverError):
    """The file is not a workspace changeover can open."""
