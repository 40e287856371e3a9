"""The results of a fit as plain data (`build_report`) and as text, Markdown, JSON or CSV (`render`).

Intervals are 90% equal-tailed: the 5% and 95% quantiles of the posterior draws. The quantity of a
yes/no metric is the rate of its positive (last) level; of an L-point scale the mean level on
1..L, plus the share at or above the pass level when the metric has one. "overall" is the
traffic-weighted sum over regions. delta = candidate - incumbent, draw by draw.

JSON shape (``render(report, "json")``, stable; keys are only ever added under a new schema):

    {
      "schema": "changeover.report/1",
      "eval_set": str, "incumbent": str, "models": [str]          (incumbent first),
      "regions": [{"name": str, "weight": float}],
      "threshold": float, "min_labels": int,
      "interval": {"level": 0.9, "lower_quantile": 0.05, "upper_quantile": 0.95},
      "fit": null | {"id": int, "created_at": str, "settings": {...}, "data_hash": str,
                     "stale": bool | null},
      "sources": [str]                      ("full" calibration model, "instant" conjugate),
      "metrics": [{
          "name": str, "levels": [str], "direction": "higher"|"lower"|"match", "margin": float,
          "quantity": "rate" | "mean_level", "pass_level": int | null, "source": str,
          "rows": [{"region": str ("overall" last), "weight": float, "cells": [{
              "model": str, "labels": int | null,
              "mean": float, "lower": float, "upper": float,
              "pass_share": null | {"mean", "lower", "upper"},
              "delta": null (incumbent) | {"mean", "lower", "upper"},
              "p_noninferior": float | null, "verdict": str | null, "reason": str | null}]}]}],
      "candidates": [{"model": str, "verdict": "ready"|"not ready"|"undecided",
          "joint_probability": float, "reason": str, "labels": {metric: int | null},
          "labels_to_minimum": {metric: int},
          "labels_needed": [{"metric", "region", "candidate_labels": int,
                             "incumbent_labels": int, "total": int, "capped": bool,
                             "max_labels": int, "text": str}]}],
      "calibration": [{"metric", "model", "region", "labels": int | null,
          "sensitivity": null | {"mean", "lower", "upper"}, "specificity": same (yes/no only),
          "confusion": {"mean": [[float]], "lower": [[float]], "upper": [[float]]}
                       (rows human level h, columns judge level j: P(J = j | H = h)),
          "counts": null | [[int]] (labelled responses, human h x judge j),
          "judge_only": null | [int] (judged, unlabelled responses by judge level)}],
      "baselines": [{"metric", "model", "region", "n_judged": int, "n_labelled": int,
          "estimates": [{"method": "judge"|"human"|"rogan_gladen"|"ppi++",
                         "estimate": float | null, "lower": float | null,
                         "upper": float | null, "note": str}]}],
      "diagnostics": {...} (the fit's, as stored),
      "flags": [{"kind": str, "message": str}]
    }

Numbers that cannot be computed are null, never NaN; the JSON is pure ASCII (other characters
as \\u escapes), so printing it to a terminal is safe. The CSV has one row per
metric x region x model cell with every number of that cell (columns: `CSV_COLUMNS`).
Names from the eval set are data: the text renderer (core/report_text.py) shows control
characters as visible escapes and never interprets markup; Markdown escapes its special characters.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field

import numpy as np

from changeover.core.baselines import METHODS, BaselineCell, baselines_all
from changeover.core.decide import (
    CandidateDecision,
    Decision,
    decide,
    decide_all,
    labels_to_minimum,
    specs_of,
)
from changeover.core.types import ChangeoverError, EvalSet

SCHEMA = "changeover.report/1"
LOWER_Q, UPPER_Q, LEVEL = 0.05, 0.95, 0.90
FORMATS = ("text", "markdown", "json", "csv")


@dataclass(frozen=True)
class Interval:
    mean: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Cell:
    model: str
    labels: int | None
    value: Interval
    pass_share: Interval | None = None
    delta: Interval | None = None  # None for the incumbent
    decision: Decision | None = None


@dataclass(frozen=True)
class Row:
    region: str  # a region or "overall"
    weight: float
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class MetricTable:
    name: str
    levels: tuple[str, ...]
    direction: str
    margin: float
    quantity: str  # "rate" or "mean_level"
    pass_level: int | None
    source: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Calibration:
    metric: str
    model: str
    region: str
    labels: int | None
    sensitivity: Interval | None
    specificity: Interval | None
    confusion_mean: tuple[tuple[float, ...], ...]
    confusion_lower: tuple[tuple[float, ...], ...]
    confusion_upper: tuple[tuple[float, ...], ...]
    counts: tuple[tuple[int, ...], ...] | None = None
    judge_only: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Flag:
    kind: str  # stale_fit, instant_posterior, unlabelled_cell, diagnostics, ties, open_labels,
    # open_labels_counted, missing_judgments
    message: str


@dataclass(frozen=True)
class Report:
    eval_set: str
    incumbent: str
    models: tuple[str, ...]
    regions: tuple[tuple[str, float], ...]
    threshold: float
    min_labels: int
    metrics: tuple[MetricTable, ...]
    candidates: tuple[CandidateDecision, ...]
    calibration: tuple[Calibration, ...]
    baselines: tuple[BaselineCell, ...] = ()
    fit: dict | None = None
    diagnostics: dict = field(default_factory=dict)
    flags: tuple[Flag, ...] = ()
    sources: tuple[str, ...] = ()


def interval(draws: np.ndarray) -> Interval:
    """Mean and 5%-95% quantiles of draws (axis 0)."""
    lo, hi = np.quantile(draws, [LOWER_Q, UPPER_Q], axis=0)
    return Interval(float(np.mean(draws)), float(lo), float(hi))


def _cell_labels(post) -> list[list[int]] | None:
    table = (post.flags or {}).get("cell_labels")
    return None if table is None else [[int(x) for x in row] for row in table]


def _metric_table(
    post, metric, models: tuple[str, ...], incumbent: str, threshold: float
) -> MetricTable:
    q, share = post.quantity(), post.pass_share()
    labels = _cell_labels(post)
    i = post.model_index(incumbent)
    rows = []
    for r, region in enumerate([*post.regions, "overall"]):
        overall = region == "overall"
        pick = (lambda a: a @ post.weights) if overall else (lambda a, r=r: a[:, :, r])
        qq, ss = pick(q), None if share is None else pick(share)
        cells = []
        for model in models:
            m = post.model_index(model)
            n = None if labels is None else (sum(labels[m]) if overall else labels[m][r])
            delta = dec = None
            if model != incumbent:
                d = qq[:, m] - qq[:, i]
                delta = interval(d)
                dec = decide(d, metric.direction, metric.margin, threshold)
            cells.append(
                Cell(
                    model,
                    n,
                    interval(qq[:, m]),
                    None if ss is None else interval(ss[:, m]),
                    delta,
                    dec,
                )
            )
        weight = 1.0 if overall else float(post.weights[r])
        rows.append(Row(region, weight, tuple(cells)))
    return MetricTable(
        post.metric,
        tuple(post.levels),
        metric.direction,
        float(metric.margin),
        "rate" if post.is_binary else "mean_level",
        post.pass_level,
        post.source,
        tuple(rows),
    )


def _calibration(post, counts) -> list[Calibration]:
    out, labels = [], _cell_labels(post)
    c = None if counts is None else counts.get(post.metric)
    for m, model in enumerate(post.models):
        for r, region in enumerate(post.regions):
            conf = post.confusion[:, m, r]
            lo, hi = np.quantile(conf, [LOWER_Q, UPPER_Q], axis=0)
            mean = conf.mean(axis=0)
            se = sp = None
            if post.is_binary:
                se, sp = interval(conf[:, 1, 1]), interval(conf[:, 0, 0])
            table = judge_only = None
            if c is not None and model in c.models and region in c.regions:
                cm, cr = c.models.index(model), c.regions.index(region)
                table = tuple(tuple(int(x) for x in row) for row in c.n[cm, cr])
                judge_only = tuple(int(x) for x in c.u[cm, cr])
            tup = lambda a: tuple(tuple(float(x) for x in row) for row in a)  # noqa: E731
            out.append(
                Calibration(
                    post.metric,
                    model,
                    region,
                    None if labels is None else labels[m][r],
                    se,
                    sp,
                    tup(mean),
                    tup(lo),
                    tup(hi),
                    table,
                    judge_only,
                )
            )
    return out


def failure_kind(diagnostics: dict, draws: int | None = None) -> str:
    """Why a fit failed its diagnostics, as far as what to do goes: "quick" (a quick fit is
    simply too short to pass), "divergences" (usually one or two in 4000 draws: on the sample
    workspace 3 default fits in 29 had a single one; at target_accept 0.98 none did, in 40 fits
    of refusals and 16 of style) or "mixing" (R-hat or ESS)."""
    if draws is not None and draws < 1000:
        return "quick"
    return "divergences" if diagnostics.get("divergences") else "mixing"


def refit_hint(diagnostics: dict, draws: int | None = None) -> str:
    """What to do about a failed fit, for the command line (the report's flag, the fit summary)."""
    return {
        "quick": "a quick fit is too short to pass them: fit without --quick",
        "divergences": (
            "refit with another seed (changeover fit --seed N), or with smaller steps "
            "(changeover fit --target-accept 0.98: slower, fewer divergences)"
        ),
        "mixing": "refit with another seed (changeover fit --seed N)",
    }[failure_kind(diagnostics, draws)]


def _draws(fit) -> int | None:
    settings = getattr(fit, "settings", None) or {}
    return settings.get("draws") if isinstance(settings, dict) else None


def _flags(posteriors, fit, counts, stale, diagnostics) -> list[Flag]:
    flags = []
    if stale:
        fid = f"#{fit['id']} " if fit else ""
        flags.append(
            Flag(
                "stale_fit",
                f"fit {fid}is stale: labels changed since it ran (run `changeover fit` again)",
            )
        )
    if any(p.source == "instant" for p in posteriors):
        flags.append(
            Flag(
                "instant_posterior",
                "instant posterior (conjugate, unpooled, no "
                "sampling): a quick look, not the full model",
            )
        )
    if diagnostics and diagnostics.get("ok") is False:
        fmt = lambda v: (  # noqa: E731
            f"{v:.3f}"
            if isinstance(v, float) and abs(v) < 100
            else (f"{v:.0f}" if isinstance(v, float) else str(v))
        )
        parts = diagnostics.get("reasons") or [  # per metric; older fits kept only the totals
            f"{k} {fmt(diagnostics[k])}"
            for k in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences")
            if k in diagnostics
        ]
        flags.append(
            Flag(
                "diagnostics",
                "the fit failed its diagnostics (R-hat <= 1.01, "
                "ESS >= 400, no divergences): "
                + "; ".join(parts)
                + "; "
                + refit_hint(diagnostics, _draws(fit)),
            )
        )
    for post in posteriors:
        unl = (post.flags or {}).get("unlabelled_cells")
        if unl is None and _cell_labels(post) is not None:
            unl = [
                [post.models[m], post.regions[r]]
                for m, row in enumerate(_cell_labels(post))
                for r, n in enumerate(row)
                if n == 0
            ]
        for model, region in unl or ():
            flags.append(
                Flag(
                    "unlabelled_cell",
                    f"{post.metric}: no human labels for {model} in "
                    f"{region}; its estimate leans on the pooling",
                )
            )
    for c in (counts or {}).values():
        if c.ties:
            flags.append(
                Flag(
                    "ties",
                    f"{c.metric}: {c.ties} labelled response(s) left out because their raters tied",
                )
            )
        if c.left_out:  # counts_for: labels chosen in browse stay out of the fit
            flags.append(
                Flag(
                    "open_labels",
                    f"{c.metric}: {c.left_out} labelled response(s) left out of the fit: their "
                    "labels were chosen in browse (open), not drawn at random",
                )
            )
        if c.open_counted:
            flags.append(
                Flag(
                    "open_labels_counted",
                    f"{c.metric}: {c.open_counted} response(s) labelled openly in browse count as "
                    "if drawn at random: the intervals may be too narrow",
                )
            )
        if c.missing_judgments:
            flags.append(
                Flag(
                    "missing_judgments",
                    f"{c.metric}: {c.missing_judgments} response(s) without a usable judge verdict",
                )
            )
    return flags


def build_report(
    eval_set: EvalSet,
    posteriors,
    fit=None,
    counts=None,
    threshold: float = 0.95,
    min_labels: int = 30,
    stale: bool | None = None,
) -> Report:
    """The report as plain data. `counts` (metric -> Counts) adds count tables and baselines;
    `stale` is computed from `counts` and the fit's data hash when not given."""
    if not posteriors:
        raise ChangeoverError(f"eval set {eval_set.name!r}: nothing to report (no posterior)")
    incumbent = eval_set.incumbent
    models = [incumbent]
    for post in posteriors:
        if incumbent not in post.models:
            raise ChangeoverError(
                f"metric {post.metric!r}: the incumbent {incumbent!r} is not "
                f"among the fitted models {list(post.models)}"
            )
        models += [m for m in post.models if m not in models]
    models_t = tuple(models)
    fit_d = None
    if fit is not None:
        if stale is None and counts is not None:
            from changeover.core.counts import data_hash

            stale = data_hash(counts) != fit.data_hash
        fit_d = {
            "id": fit.id,
            "created_at": fit.created_at,
            "settings": fit.settings,
            "data_hash": fit.data_hash,
            "stale": stale,
        }
    known = {m.name for m in eval_set.metrics}
    for p in posteriors:
        if p.metric not in known:
            raise ChangeoverError(
                f"the fit has metric {p.metric!r}, which eval set "
                f"{eval_set.name!r} no longer defines: fit again"
            )
    tables = tuple(
        _metric_table(p, eval_set.metric(p.metric), models_t, incumbent, threshold)
        for p in posteriors
    )
    specs = {k: v for k, v in specs_of(eval_set).items() if k in {p.metric for p in posteriors}}
    candidates = tuple(decide_all(posteriors, specs, incumbent, threshold, min_labels))
    calibration = tuple(c for p in posteriors for c in _calibration(p, counts))
    base = ()
    if counts:
        keep = {k: v for k, v in counts.items() if k in specs}
        base = tuple(
            baselines_all(keep, dict(zip(eval_set.region_names, eval_set.traffic_weights)))
        )
    diagnostics = dict(fit.diagnostics) if fit is not None else {}
    flags = tuple(_flags(posteriors, fit_d, counts, stale, diagnostics))
    return Report(
        eval_set.name,
        incumbent,
        models_t,
        tuple(zip(posteriors[0].regions, (float(w) for w in posteriors[0].weights))),
        float(threshold),
        int(min_labels),
        tables,
        candidates,
        calibration,
        base,
        fit_d,
        diagnostics,
        flags,
        tuple(sorted({p.source for p in posteriors})),
    )


# ---- flat rows (CSV, export) ------------------------------------------------------------------

CSV_COLUMNS = (
    "eval_set",
    "fit_id",
    "metric",
    "quantity",
    "region",
    "weight",
    "model",
    "incumbent",
    "labels",
    "mean",
    "lower_90",
    "upper_90",
    "pass_share",
    "pass_share_lower_90",
    "pass_share_upper_90",
    "delta",
    "delta_lower_90",
    "delta_upper_90",
    "p_noninferior",
    "verdict",
    "reason",
    "sensitivity",
    "sensitivity_lower_90",
    "sensitivity_upper_90",
    "specificity",
    "specificity_lower_90",
    "specificity_upper_90",
    *(
        f"{m}{s}"
        for m in ("judge", "human", "rogan_gladen", "ppi")
        for s in ("", "_lower_90", "_upper_90")
    ),
)


def _iv(prefix: str, iv: Interval | None) -> dict:
    if iv is None:
        return {prefix: None, f"{prefix}_lower_90": None, f"{prefix}_upper_90": None}
    return {prefix: iv.mean, f"{prefix}_lower_90": iv.lower, f"{prefix}_upper_90": iv.upper}


def report_rows(report: Report) -> list[dict]:
    """One dict per metric x region x model cell with every number of that cell (CSV_COLUMNS)."""
    calib = {(c.metric, c.model, c.region): c for c in report.calibration}
    base = {(b.metric, b.model, b.region): b for b in report.baselines}
    out = []
    for t in report.metrics:
        for row in t.rows:
            for cell in row.cells:
                d = {
                    "eval_set": report.eval_set,
                    "fit_id": (report.fit or {}).get("id"),
                    "metric": t.name,
                    "quantity": t.quantity,
                    "region": row.region,
                    "weight": row.weight,
                    "model": cell.model,
                    "incumbent": cell.model == report.incumbent,
                    "labels": cell.labels,
                }
                d.update(_iv("mean", cell.value))
                d["lower_90"], d["upper_90"] = d.pop("mean_lower_90"), d.pop("mean_upper_90")
                d.update(_iv("pass_share", cell.pass_share))
                d.update(_iv("delta", cell.delta))
                dec = cell.decision
                d["p_noninferior"] = None if dec is None else dec.probability
                d["verdict"] = None if dec is None else dec.verdict
                d["reason"] = None if dec is None else dec.reason
                c = calib.get((t.name, cell.model, row.region))
                d.update(_iv("sensitivity", c.sensitivity if c else None))
                d.update(_iv("specificity", c.specificity if c else None))
                b = base.get((t.name, cell.model, row.region))
                for method in METHODS:
                    e = b.get(method) if b else None
                    key = "ppi" if method == "ppi++" else method
                    d.update(
                        _iv(
                            key,
                            None
                            if e is None or e.estimate is None
                            else Interval(e.estimate, e.lo, e.hi),
                        )
                    )
                out.append({k: _num(d.get(k)) for k in CSV_COLUMNS})
    return out


def _num(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ---- rendering ---------------------------------------------------------------------------------


def render(report: Report, fmt: str = "text") -> str:
    """The report as "text" (80-100 columns), "markdown", "json" or "csv"."""
    if fmt == "text":
        from changeover.core.report_text import text

        return text(report)
    if fmt == "markdown":
        from changeover.core.report_text import markdown

        return markdown(report)
    if fmt == "json":
        return (
            json.dumps(_clean_json(to_json(report)), indent=2, ensure_ascii=True, allow_nan=False)
            + "\n"
        )
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        w.writeheader()
        for row in report_rows(report):
            w.writerow({k: "" if v is None else _csv_text(v) for k, v in row.items()})
        return buf.getvalue()
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _csv_text(v):
    # A spreadsheet runs a text cell starting with = + - @ as a formula; names are data.
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def to_json(report: Report) -> dict:
    """The documented JSON shape (see the module docstring) as plain Python data."""
    iv = lambda i: (  # noqa: E731
        None
        if i is None
        else {"mean": _num(i.mean), "lower": _num(i.lower), "upper": _num(i.upper)}
    )
    metrics = [
        {
            "name": t.name,
            "levels": list(t.levels),
            "direction": t.direction,
            "margin": t.margin,
            "quantity": t.quantity,
            "pass_level": t.pass_level,
            "source": t.source,
            "rows": [
                {
                    "region": r.region,
                    "weight": r.weight,
                    "cells": [
                        {
                            "model": c.model,
                            "labels": c.labels,
                            "mean": _num(c.value.mean),
                            "lower": _num(c.value.lower),
                            "upper": _num(c.value.upper),
                            "pass_share": iv(c.pass_share),
                            "delta": iv(c.delta),
                            "p_noninferior": None
                            if c.decision is None
                            else _num(c.decision.probability),
                            "verdict": None if c.decision is None else c.decision.verdict,
                            "reason": None if c.decision is None else c.decision.reason,
                        }
                        for c in r.cells
                    ],
                }
                for r in t.rows
            ],
        }
        for t in report.metrics
    ]
    candidates = [
        {
            "model": d.candidate,
            "verdict": d.verdict,
            "joint_probability": _num(d.joint_probability),
            "reason": d.reason,
            "labels": dict(d.labels),
            "labels_to_minimum": labels_to_minimum(d, report.min_labels),
            "labels_needed": [
                {
                    "metric": f.metric,
                    "region": f.region,
                    "candidate_labels": f.candidate_labels,
                    "incumbent_labels": f.incumbent_labels,
                    "total": f.total,
                    "capped": f.capped,
                    "max_labels": f.max_labels,
                    "text": f.text,
                }
                for f in d.forecasts
            ],
        }
        for d in report.candidates
    ]
    calibration = [
        {
            "metric": c.metric,
            "model": c.model,
            "region": c.region,
            "labels": c.labels,
            "sensitivity": iv(c.sensitivity),
            "specificity": iv(c.specificity),
            "confusion": {
                "mean": [list(r) for r in c.confusion_mean],
                "lower": [list(r) for r in c.confusion_lower],
                "upper": [list(r) for r in c.confusion_upper],
            },
            "counts": None if c.counts is None else [list(r) for r in c.counts],
            "judge_only": None if c.judge_only is None else list(c.judge_only),
        }
        for c in report.calibration
    ]
    baselines = [
        {
            "metric": b.metric,
            "model": b.model,
            "region": b.region,
            "n_judged": b.n_judged,
            "n_labelled": b.n_labelled,
            "estimates": [
                {
                    "method": e.method,
                    "estimate": _num(e.estimate),
                    "lower": _num(e.lo),
                    "upper": _num(e.hi),
                    "note": e.note,
                }
                for e in b.estimates
            ],
        }
        for b in report.baselines
    ]
    return {
        "schema": SCHEMA,
        "eval_set": report.eval_set,
        "incumbent": report.incumbent,
        "models": list(report.models),
        "regions": [{"name": n, "weight": w} for n, w in report.regions],
        "threshold": report.threshold,
        "min_labels": report.min_labels,
        "interval": {"level": LEVEL, "lower_quantile": LOWER_Q, "upper_quantile": UPPER_Q},
        "fit": report.fit,
        "sources": list(report.sources),
        "metrics": metrics,
        "candidates": candidates,
        "calibration": calibration,
        "baselines": baselines,
        "diagnostics": _clean_json(report.diagnostics),
        "flags": [{"kind": f.kind, "message": f.message} for f in report.flags],
    }


def _clean_json(x):
    if isinstance(x, dict):
        return {str(k): _clean_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean_json(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return _num(float(x))
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x
