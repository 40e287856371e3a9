"""The eval-set spec (TOML): read, validate every key, and say where a problem is.

Semantic problems name the key's line and path, e.g.
`spec.toml:12: metrics[1].direction: 'up' is not one of higher, lower, match`.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from changeover.core.importing.read import ImportFailed, Problem, show, too_deep
from changeover.core.types import DIRECTIONS, Direction, EvalSet, Metric, Region

RESERVED_KEYS = frozenset("useq?")  # the rate screen's own keys (undo, skip, expand, quit, help)

_KEY_RE = re.compile(r'^\s*(?:"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*=')
_TOP_KEYS = {"name", "description", "incumbent", "judge", "regions", "metrics", "inspect"}
_METRIC_KEYS = {
    "name",
    "levels",
    "direction",
    "margin",
    "keys",
    "guideline",
    "unmapped",
    "judge_map",
    "pass_level",
}
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _key_lines(text: str) -> dict[str, int]:
    """Where each key of a TOML spec sits (first line), as dotted paths like metrics[1].margin."""
    lines: dict[str, int] = {}
    table, metric = "", -1
    for no, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if s.startswith("[[") and s[2:].split("]")[0].strip() == "metrics":
            metric += 1
            table = f"metrics[{metric}]"
            lines.setdefault(table, no)
            continue
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", s)
        if header:
            name = header.group(1).strip('"')
            table = (
                f"metrics[{metric}].{name.split('.', 1)[1]}"
                if name.startswith("metrics.")
                else name
            )
            lines.setdefault(table, no)
            continue
        m = _KEY_RE.match(raw)
        if m:
            key = next(g for g in m.groups() if g is not None)
            lines.setdefault(f"{table}.{key}" if table else key, no)
    return lines


def _line_of(lines: dict[str, int], path: str) -> int:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return 0


def _is_number(v: object) -> bool:
    if not isinstance(v, int | float) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer of hundreds of digits: beyond any float
        return False


def _shown_number(v: object) -> str:
    """A value for a message; an integer too large for a float by its number of digits."""
    if isinstance(v, int) and not isinstance(v, bool) and not _is_number(v):
        return f"{show(v, 12)}... ({len(str(abs(v)))} digits, too large)"
    return show(v)


def load_spec(path: str | Path) -> EvalSet:
    """Read and validate an eval-set spec (TOML); the EvalSet has id 0 until saved."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ImportFailed(
            [Problem(str(path), 0, "", f"cannot read the spec: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ImportFailed([Problem(str(path), line, "", "not valid UTF-8")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        if m:
            msg = f"column {m.group(2)}: {msg}"
        raise ImportFailed(
            [Problem(str(path), int(m.group(1)) if m else 0, "", f"invalid TOML: {msg}")]
        ) from None
    except RecursionError:
        data = None
    except ValueError:  # an integer past Python's 4,300-digit limit for text conversion
        long = re.search(r"\d{4300}", text)
        line = text[: long.start()].count("\n") + 1 if long else 0
        raise ImportFailed(
            [Problem(str(path), line, "", "invalid TOML: a number of more than 4,300 digits")]
        ) from None
    if data is None or too_deep(data):
        raise ImportFailed([Problem(str(path), 0, "", "invalid TOML: nested too deeply")])
    return _spec_from_dict(data, str(path), _key_lines(text))


Bad = Callable[[str, str], None]  # reports a problem: (the spec's key, what is wrong)


class TextOf(Protocol):
    """Reads a text value of a spec table, reporting (and defaulting) one that is not text."""

    def __call__(
        self, d: dict, key: str, where: str, required: bool = False, default: str = ""
    ) -> str: ...


def _spec_from_dict(data: dict, file: str, lines: dict[str, int]) -> EvalSet:
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(file, _line_of(lines, key), key, message))

    def text_of(d: dict, key: str, where: str, required: bool = False, default: str = "") -> str:
        v = d.get(key)
        if v is None:
            if required:
                bad(where, "required")
            return default
        if not isinstance(v, str) or (required and not v.strip()):
            bad(
                where,
                f"{show(v)} is not a non-empty text" if required else f"{show(v)} is not a text",
            )
            return default
        return v.strip() if required else v

    for key in data:
        if key not in _TOP_KEYS:
            bad(key, f"unknown key (expected {', '.join(sorted(_TOP_KEYS))})")
    name = text_of(data, "name", "name", required=True)
    incumbent = text_of(data, "incumbent", "incumbent", required=True)
    description = text_of(data, "description", "description")
    judge = text_of(data, "judge", "judge", default="judge") or "judge"

    regions: list[Region] = []
    raw_regions = data.get("regions")
    if raw_regions is None:
        bad("regions", "required: a [regions] table of region = monthly traffic")
    elif not isinstance(raw_regions, dict) or not raw_regions:
        bad("regions", "must be a non-empty table of region = monthly traffic")
    else:
        for rname, traffic in raw_regions.items():
            if not rname.strip():
                bad(f"regions.{rname}", "empty region name")
            elif not _is_number(traffic) or traffic <= 0:
                bad(
                    f"regions.{rname}", f"traffic {_shown_number(traffic)} is not a positive number"
                )
            else:
                regions.append(Region(rname, float(traffic)))

    metrics: list[Metric] = []
    raw_metrics = data.get("metrics")
    if raw_metrics is None:
        bad("metrics", "required: at least one [[metrics]] table")
    elif (
        not isinstance(raw_metrics, list)
        or not raw_metrics
        or not all(isinstance(m, dict) for m in raw_metrics)
    ):
        bad("metrics", "must be one or more [[metrics]] tables")
    else:
        seen: set[str] = set()
        for i, m in enumerate(raw_metrics):
            metric = _metric_from_dict(m, f"metrics[{i}]", bad, text_of)
            if metric is None:
                continue
            if metric.name in seen:
                bad(f"metrics[{i}].name", f"metric {metric.name!r} appears twice")
                continue
            seen.add(metric.name)
            metrics.append(metric)
        _colliding_columns(metrics, bad)
    if problems:
        raise ImportFailed(problems)
    return EvalSet(
        id=0,
        name=name,
        incumbent=incumbent,
        regions=tuple(regions),
        metrics=tuple(metrics),
        description=description,
        judge=judge,
    )


def metric_columns(name: str) -> tuple[str, ...]:
    """The columns a metric names in a responses file."""
    return (f"judge_{name}", f"judge_{name}_score", f"judge_{name}_rationale", f"human_{name}")


def _colliding_columns(metrics: list[Metric], bad: Bad) -> None:
    """Two metrics may not name the same column (a metric `style_score` beside `style`)."""
    owner: dict[str, str] = {}
    for i, m in enumerate(metrics):
        clash = next((c for c in metric_columns(m.name) if c in owner), None)
        if clash is not None:
            bad(
                f"metrics[{i}].name",
                f"its column {clash} is also a column of metric {owner[clash]!r}: rename one",
            )
        for c in metric_columns(m.name):
            owner.setdefault(c, m.name)


def _metric_from_dict(m: dict, where: str, bad: Bad, text_of: TextOf) -> Metric | None:
    errors: list[str] = []

    def fail(key: str, message: str) -> None:
        errors.append(key)
        bad(f"{where}.{key}" if key else where, message)

    for key in m:
        if key not in _METRIC_KEYS:
            fail(key, f"unknown key (expected {', '.join(sorted(_METRIC_KEYS))})")
    name = text_of(m, "name", f"{where}.name", required=True)
    if name and not _NAME_RE.match(name):
        fail(
            "name",
            f"{show(name)}: use letters, digits and _ (it names the columns judge_{name}, human_{name})",
        )
    levels = m.get("levels")
    if levels is None:
        fail("levels", 'required, e.g. levels = ["no", "yes"] (lowest first)')
        levels = []
    elif (
        not isinstance(levels, list)
        or len(levels) < 2
        or not all(isinstance(x, str) and x.strip() for x in levels)
    ):
        fail("levels", "must be a list of at least two non-empty texts, lowest first")
        levels = []
    elif len({x.strip().casefold() for x in levels}) != len(levels):
        fail("levels", "levels must differ (case-insensitively)")
        levels = []
    levels = tuple(x.strip() for x in levels)
    direction = m.get("direction", "higher")
    if direction not in DIRECTIONS:
        fail("direction", f"{show(direction)} is not one of {', '.join(DIRECTIONS)}")
    margin = m.get("margin", 0.0)
    if not _is_number(margin) or margin < 0:
        fail("margin", f"{_shown_number(margin)} is not a number >= 0")
        margin = 0.0
    guideline = text_of(m, "guideline", f"{where}.guideline")
    unmapped = m.get("unmapped", "error")
    if unmapped not in ("error", "missing"):
        fail("unmapped", f"{show(unmapped)} is not one of error, missing")
    keys: tuple[str, ...] = ()
    if "keys" in m:
        raw = m["keys"]
        if not isinstance(raw, list) or not all(isinstance(k, str) and len(k) == 1 for k in raw):
            fail("keys", "must be a list of single characters, one per level")
        elif levels and len(raw) != len(levels):
            fail("keys", f"{len(raw)} keys for {len(levels)} levels")
        elif len(set(raw)) != len(raw):
            fail("keys", "keys must differ")
        elif taken := sorted(RESERVED_KEYS & set(raw)):
            are = (
                "is the rate screen's own key"
                if len(taken) == 1
                else "are the rate screen's own keys"
            )
            fail(
                "keys",
                f"{', '.join(taken)} {are} (u undo, s skip, e full question, q quit, ? help)",
            )
        else:
            keys = tuple(raw)
    elif levels:
        if tuple(x.casefold() for x in levels) == ("no", "yes"):
            keys = ("n", "y")
        elif len(levels) <= 9:
            keys = tuple(str(i) for i in range(1, len(levels) + 1))
        else:
            fail("keys", f"{len(levels)} levels: give one key per level (keys = [...])")
    judge_map: list[tuple[str, str]] = []
    raw_map = m.get("judge_map", {})
    if not isinstance(raw_map, dict):
        fail("judge_map", "must be a table of raw judge value = level")
    else:
        folded = {x.casefold(): x for x in levels}
        for raw_value, label in raw_map.items():
            if not isinstance(label, str) or label.strip().casefold() not in folded:
                if levels:
                    fail(
                        f"judge_map.{raw_value}",
                        f"{show(label)} is not one of the levels {', '.join(levels)}",
                    )
                continue
            judge_map.append((raw_value.strip(), folded[label.strip().casefold()]))
    pass_level = None
    if "pass_level" in m:
        raw = m["pass_level"]
        names = [x.casefold() for x in levels]
        if len(levels) <= 2 and levels:
            fail("pass_level", "only for scales with more than two levels")
        elif str(raw).strip().casefold() in names:
            pass_level = names.index(str(raw).strip().casefold())
        elif levels:
            fail("pass_level", f"{show(raw)} is not one of the levels {', '.join(levels)}")
    if errors or not name or not levels:
        return None
    return Metric(
        name=name,
        levels=levels,
        direction=Direction(direction),
        margin=float(margin),
        guideline=guideline,
        keys=keys,
        judge_map=tuple(judge_map),
        unmapped=unmapped,
        pass_level=pass_level,
    )
