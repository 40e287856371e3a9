"""The results value (core/results.py) as JSON or CSV, and `render` for every format (text and
Markdown come from core/render/report_text.py).

JSON shape (``render(results, "json")``, stable; fields are only ever added):

    {
      "schema": "changeover.report/1",
      "eval_set": str, "incumbent": str, "models": [str]          (incumbent first),
      "regions": [{"name": str, "weight": float}],
      "threshold": float, "min_labels": int,
      "interval": {"level": 0.9, "lower_quantile": 0.05, "upper_quantile": 0.95},
      "fit": null | {"id": int, "created_at": str, "settings": {...}, "data_hash": str,
                     "stale": bool, "labels_since": int, "quick": bool},
      "source": "full" | "updated" | "instant"
                (a kept fit; the fit updated by the labels since; the conjugate posterior),
      "khat": float | null     (Pareto k of that update),
      "sources": [str]         ("full" calibration model, "instant" conjugate),
      "metrics": [{
          "name": str, "levels": [str], "direction": "higher"|"lower"|"match", "margin": float,
          "quantity": "rate" | "mean_level", "pass_level": int | null, "source": str,
          "rows": [{"region": str ("overall" last), "weight": float, "cells": [{
              "model": str, "labels": int | null, "ties": int (rated, raters tied: left out),
              "mean": float, "lower": float, "upper": float,
              "pass_share": null | {"mean", "lower", "upper"},
              "delta": null (incumbent) | {"mean", "lower", "upper"},
              "p_noninferior": float | null (P(holds); the key keeps its first name),
              "verdict": str | null, "reason": str | null}]}]}],
      "candidates": [{"model": str, "verdict": "ready"|"not ready"|"undecided",
          "joint_probability": float, "reason": str, "labels": {metric: int | null},
          "labels_to_minimum": {metric: int},
          "labels_needed": [{"metric", "region", "candidate_labels": int,
                             "incumbent_labels": int, "total": int, "capped": bool,
                             "max_labels": int, "text": str}]}],
      "calibration": [{"metric", "model", "region", "labels": int,
          "sensitivity": null | {"mean", "lower", "upper"}, "specificity": same (yes/no only),
          "youden": same (yes/no only), "exact": [{"mean", "lower", "upper"}] (scales),
          "kappa": float | null, "warnings": [str],
          "confusion": {"mean": [[float]], "lower": [[float]], "upper": [[float]]}
                       (rows human level h, columns judge level j: P(J = j | H = h)),
          "counts": null | [[int]] (labelled responses, human h x judge j),
          "judge_only": null | [int] (judged, unlabelled responses by judge level)}],
      "agreement": [{"metric", "raters": [str], "units": int, "alpha": float | null,
          "weights": str, "pairs": [{"rater_a", "rater_b", "shared": int, "kappa"}]}],
      "baselines": [{"metric", "model", "region", "n_judged": int, "n_labelled": int,
          "estimates": [{"method", "estimate": float | null, "lower": float | null,
                         "upper": float | null, "note": str}]}],
      "diagnostics": {...} (the fit's, as stored; {} without a fit),
      "flags": [{"kind": str, "message": str}]
    }

Numbers that cannot be computed are null, never NaN; the JSON is pure ASCII (other characters
as \\u escapes), so printing it to a terminal is safe. The CSV has one row per metric x region
x model cell with every number of that cell (`CSV_COLUMNS`); text cells a spreadsheet would
run as formulas are neutralised.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np

from changeover.core.decide.verdicts import labels_to_minimum
from changeover.core.model.baselines import METHODS
from changeover.core.model.posterior import LEVEL, LOWER_Q, UPPER_Q, Interval
from changeover.core.results import Results
from changeover.core.text import write_csv
from changeover.core.types import Source

SCHEMA = "changeover.report/1"
FORMATS = ("text", "markdown", "json", "csv")


def _csv_method(method: str) -> str:
    return method.replace("++", "").replace("-", "_")


_INTERVAL = ("", "_lower_90", "_upper_90")
_FIRST_METHODS = ("judge", "human", "rogan_gladen", "ppi++")  # columns since the first version
CSV_COLUMNS = (
    "eval_set", "fit_id", "metric", "quantity", "region", "weight", "model", "incumbent",
    "labels", "mean", "lower_90", "upper_90",
    *(f"{name}{s}" for name in ("pass_share", "delta") for s in _INTERVAL),
    "p_noninferior", "verdict", "reason",
    *(f"{name}{s}" for name in ("sensitivity", "specificity") for s in _INTERVAL),
    *(f"{_csv_method(m)}{s}" for m in _FIRST_METHODS for s in _INTERVAL),
    "source", "kappa",  # added later: new columns go last
    *(f"{_csv_method(m)}{s}" for m in METHODS if m not in _FIRST_METHODS for s in _INTERVAL),
    "ties",
)  # fmt: skip
_TEXT_COLUMNS = {"eval_set", "metric", "quantity", "region", "model", "verdict", "reason", "source"}
_INT_COLUMNS = {"fit_id", "labels", "ties"}
CSV_KINDS = {  # each column's type: the CSV's cells, the results export's Parquet schema
    c: "str" if c in _TEXT_COLUMNS else "int" if c in _INT_COLUMNS else "float" for c in CSV_COLUMNS
} | {"incumbent": "bool"}


def _iv(prefix: str, iv: Interval | None) -> dict[str, float | None]:
    if iv is None:
        return {prefix: None, f"{prefix}_lower_90": None, f"{prefix}_upper_90": None}
    return {prefix: iv.mean, f"{prefix}_lower_90": iv.lower, f"{prefix}_upper_90": iv.upper}


def report_rows(results: Results) -> list[dict[str, Any]]:
    """One dict per metric x region x model cell with every number of that cell (CSV_COLUMNS)."""
    calib = {(c.metric, c.model, c.region): c for c in results.calibration}
    base = {(b.metric, b.model, b.region): b for b in results.baselines}
    out = []
    for t in results.metrics:
        for row in t.rows:
            for cell in row.cells:
                d: dict[str, Any] = {
                    "eval_set": results.eval_set,
                    "fit_id": results.fit.id if results.fit is not None else None,
                    "source": results.source,
                    "metric": t.name,
                    "quantity": t.quantity,
                    "region": row.region,
                    "weight": row.weight,
                    "model": cell.model,
                    "incumbent": cell.model == results.incumbent,
                    "labels": cell.labels,
                    "ties": cell.ties,
                    "mean": cell.value.mean,
                    "lower_90": cell.value.lower,
                    "upper_90": cell.value.upper,
                }
                d.update(_iv("pass_share", cell.pass_share))
                d.update(_iv("delta", cell.delta))
                dec = cell.decision
                d["p_noninferior"] = None if dec is None else dec.probability
                d["verdict"] = None if dec is None else dec.verdict
                d["reason"] = None if dec is None else dec.reason
                c = calib.get((t.name, cell.model, row.region))
                d.update(_iv("sensitivity", c.sensitivity if c else None))
                d.update(_iv("specificity", c.specificity if c else None))
                d["kappa"] = c.kappa if c else None
                b = base.get((t.name, cell.model, row.region))
                for method in METHODS:
                    e = b.get(method) if b else None
                    d.update(_iv(_csv_method(method), None if e is None else _estimate(e)))
                out.append({k: _num(d.get(k)) for k in CSV_COLUMNS})
    return out


def _estimate(e: Any) -> Interval | None:
    """A baseline's estimate as an interval (NaN bounds where the method gives none)."""
    if e.estimate is None:
        return None
    nan = float("nan")
    return Interval(e.estimate, nan if e.lo is None else e.lo, nan if e.hi is None else e.hi)


def _num(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def render(results: Results, fmt: str = "text") -> str:
    """The results as "text" (80-100 columns), "markdown", "json" or "csv"."""
    if fmt in ("text", "markdown"):
        from changeover.core.render import report_text

        return report_text.text(results) if fmt == "text" else report_text.markdown(results)
    if fmt == "json":
        return json.dumps(to_json(results), indent=2, ensure_ascii=True, allow_nan=False) + "\n"
    if fmt == "csv":  # the results export's writer: one convention (true/false, no formulas)
        buf = io.StringIO()
        write_csv(report_rows(results), CSV_KINDS, buf)
        return buf.getvalue()
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _ivj(i: Interval | None) -> dict[str, float | None] | None:
    return None if i is None else {"mean": i.mean, "lower": i.lower, "upper": i.upper}


def _pick(obj: Any, *names: str) -> dict[str, Any]:
    """The named attributes of a value, as a JSON object (same names)."""
    return {n: getattr(obj, n) for n in names}


def to_json(results: Results) -> dict[str, Any]:
    """The documented JSON shape (see the module docstring) as plain Python data."""
    fit = results.fit
    fit_json = None
    if fit is not None:
        fit_json = {
            **_pick(fit, "id", "created_at"),
            "settings": {**fit.settings.to_dict(), "exclude_raters": list(fit.exclude_raters)},
            "data_hash": fit.data_hash,
            **_pick(results, "stale", "labels_since"),
            "quick": fit.settings.is_quick,
        }

    def cell(c: Any) -> dict[str, Any]:
        dec = c.decision
        return {
            **_pick(c, "model", "labels"),
            **_pick(c.value, "mean", "lower", "upper"),
            "ties": c.ties,
            "pass_share": _ivj(c.pass_share),
            "delta": _ivj(c.delta),
            "p_noninferior": None if dec is None else dec.probability,
            "verdict": None if dec is None else dec.verdict,
            "reason": None if dec is None else dec.reason,
        }

    metrics = [
        {
            **_pick(t, "name"),
            "levels": list(t.levels),
            **_pick(t, "direction", "margin", "quantity", "pass_level"),
            "source": Source.INSTANT if t.source == Source.INSTANT else Source.FULL,
            "rows": [
                {**_pick(r, "region", "weight"), "cells": [cell(c) for c in r.cells]}
                for r in t.rows
            ],
        }
        for t in results.metrics
    ]
    forecast = ("metric", "region", "candidate_labels", "incumbent_labels", "total", "capped")
    candidates = [
        {
            "model": d.candidate,
            **_pick(d, "verdict", "joint_probability", "reason"),
            "labels": dict(d.labels),
            "labels_to_minimum": labels_to_minimum(d, results.min_labels),
            "labels_needed": [_pick(f, *forecast, "max_labels", "text") for f in d.forecasts],
        }
        for d in results.candidates
    ]
    calibration = [
        {
            **_pick(c, "metric", "model", "region", "labels"),
            **{k: _ivj(getattr(c, k)) for k in ("sensitivity", "specificity", "youden")},
            "exact": [_ivj(iv) for iv in c.exact],
            "kappa": c.kappa,
            "warnings": list(c.warnings),
            "confusion": {
                "mean": [list(r) for r in c.confusion_mean],
                "lower": [list(r) for r in c.confusion_lower],
                "upper": [list(r) for r in c.confusion_upper],
            },
            "counts": None if c.counts is None else [list(r) for r in c.counts],
            "judge_only": None if c.judge_only is None else list(c.judge_only),
        }
        for c in results.calibration
    ]
    agreement = [
        {
            "metric": a.metric,
            "raters": list(a.raters),
            **_pick(a, "units", "alpha", "weights"),
            "pairs": [_pick(p, "rater_a", "rater_b", "shared", "kappa") for p in a.pairs],
        }
        for a in results.agreement.values()
    ]
    baselines = [
        {
            **_pick(b, "metric", "model", "region", "n_judged", "n_labelled"),
            "estimates": [
                {**_pick(e, "method", "estimate"), "lower": e.lo, "upper": e.hi, "note": e.note}
                for e in b.estimates
            ],
        }
        for b in results.baselines
    ]
    out = {
        "schema": SCHEMA,
        **_pick(results, "eval_set", "incumbent"),
        "models": list(results.models),
        "regions": [{"name": n, "weight": w} for n, w in results.regions],
        **_pick(results, "threshold", "min_labels"),
        "interval": {"level": LEVEL, "lower_quantile": LOWER_Q, "upper_quantile": UPPER_Q},
        "fit": fit_json,
        **_pick(results, "source", "khat"),
        "sources": [Source.INSTANT if results.source == Source.INSTANT else Source.FULL],
        "metrics": metrics,
        "candidates": candidates,
        "calibration": calibration,
        "agreement": agreement,
        "baselines": baselines,
        "diagnostics": results.diagnostics.to_dict() if results.diagnostics else {},
        "flags": [_pick(f, "kind", "message") for f in results.flags],
    }
    return _clean(out)


def _clean(x: Any) -> Any:
    """JSON-ready: NaN and infinities as null, numpy numbers as Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    return _num(x)
