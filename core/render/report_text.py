"""Text and Markdown renderings of the results value (see `core.render.report.render`).

Both come from the same sections, so they say the same things. Names from the eval set are
data: control and bidi characters are shown as escapes (``\\x1b``, core.text.inert) and
markup is never interpreted; Markdown additionally escapes its special characters. Text
tables wrap their columns into further blocks to stay within 100 columns.
"""

from __future__ import annotations

import math
import re
import textwrap

from changeover.core.decide.verdicts import labels_to_minimum
from changeover.core.judge.calibration import CalibrationCell
from changeover.core.model.baselines import METHODS
from changeover.core.model.posterior import Interval
from changeover.core.results import (
    Cell,
    MetricTable,
    Results,
    probability_text,
)
from changeover.core.shown import beside
from changeover.core.text import inert
from changeover.core.types import ESS_MIN, RHAT_MAX, Diagnostics, Direction, Source, Verdict

_SOURCE = {
    Source.FULL: "the kept fit of the calibration model",
    Source.UPDATED: "the kept fit, updated by the labels given since (importance weights)",
    Source.INSTANT: "the instant posterior (conjugate, unpooled)",
}

# Sections shared by the text and Markdown renderers: (title, blocks); a block is a paragraph
# string or a table (header, rows). Strings are raw here and escaped by the renderer.

_DIRECTION = {
    Direction.HIGHER: "higher is better",
    Direction.LOWER: "lower is better",
    Direction.MATCH: "should match the incumbent",
}


def _f(x: float | None, sign: bool = False, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _ivtext(i: Interval | None, sign: bool = False) -> str:
    if i is None:
        return "-"
    return f"{_f(i.mean, sign)} [{_f(i.lower, sign)}, {_f(i.upper, sign)}]"


def _quantity(t: MetricTable) -> str:
    if t.quantity == "rate":
        return f'rate of "{t.levels[-1]}"'
    return f"mean level on 1-{len(t.levels)}"


def _sections(report: Results) -> list[tuple[str, list]]:
    fit = report.fit
    head = [
        f"eval set {report.eval_set}, incumbent {report.incumbent}; "
        f"candidates: {', '.join(m for m in report.models if m != report.incumbent)}"
    ]
    if fit is not None:
        st = fit.settings
        line = f"fit #{fit.id} of {fit.created_at} ({st.chains} chains, {st.draws} draws, seed {st.seed}"
        line += ", quick: a first look, not a verdict)" if st.is_quick else ")"
        if fit.exclude_raters:
            line += "; raters left out: " + ", ".join(fit.exclude_raters)
        if report.stale:
            line += f"; STALE: {report.labels_since} label(s) since"
        head.append(line)
    head.append(
        f"numbers from {_SOURCE[report.source]}; regions: "
        + ", ".join(f"{n} ({w:.0%})" for n, w in report.regions)
    )
    head.append(
        f"threshold {report.threshold:g}; a candidate needs at least {report.min_labels} "
        "human labels per metric to be ready; intervals are 90% (the 5% and 95% "
        "quantiles of the posterior draws); P(holds) is the probability that a cell's "
        "condition holds, P(all hold) that all of a candidate's do at once"
    )
    out = [("changeover report", head)]
    if report.flags:
        out.append(("warnings", [f"[{f.kind}] {f.message}" for f in report.flags]))
    cands = [m for m in report.models if m != report.incumbent]
    for t in report.metrics:
        blocks: list = [
            f"{_quantity(t)}, {_DIRECTION.get(t.direction, t.direction)}, margin {t.margin:g}"
        ]
        rows = [
            [
                r.region,
                f"{r.weight:.0%}" if r.region != "overall" else "",
                *(_ivtext(c.value) for c in r.cells),
            ]
            for r in t.rows
        ]
        blocks.append((["region", "weight", *report.models], rows))
        if t.pass_level is not None and t.quantity != "rate":
            blocks.append(f"share at or above {t.levels[t.pass_level]} (level {t.pass_level + 1})")
            blocks.append(
                (
                    ["region", *report.models],
                    [[r.region, *(_ivtext(c.pass_share) for c in r.cells)] for r in t.rows],
                )
            )
        if cands:
            blocks.append(f"difference to {report.incumbent} (candidate - incumbent)")
            blocks.append(
                (
                    ["region", *cands],
                    [
                        [
                            r.region,
                            *(_ivtext(c.delta, True) for c in r.cells if c.delta is not None),
                        ]
                        for r in t.rows
                    ],
                )
            )
            blocks.append("P(holds) and verdict")
            blocks.append(
                (
                    ["region", *cands],
                    [
                        [
                            r.region,
                            *(
                                f"{probability_text(c.decision.probability, report.threshold)} "
                                f"{c.decision.verdict}"
                                for c in r.cells
                                if c.decision
                            ),
                        ]
                        for r in t.rows
                    ],
                )
            )
        blocks.append("human-labelled responses")
        blocks.append(
            (
                ["region", *report.models],
                [[r.region, *(_labels_text(c) for c in r.cells)] for r in t.rows],
            )
        )
        out.append((t.name, blocks))
    if report.candidates:
        blocks = [
            (
                ["candidate", "verdict", "P(all hold)", "labels"],
                [
                    [
                        d.candidate,
                        d.verdict,
                        probability_text(d.joint_probability, report.threshold),
                        ", ".join(f"{k} {'?' if v is None else v}" for k, v in d.labels.items()),
                    ]
                    for d in report.candidates
                ],
            )
        ]
        for d in report.candidates:
            lines = [f"{d.candidate}: {d.reason}"]
            short = labels_to_minimum(d, report.min_labels)
            lines += [
                f"  {m}: {n} more candidate labels to reach {report.min_labels}"
                for m, n in short.items()
            ]
            if d.verdict == Verdict.NOT_READY and d.forecasts:
                lines.append(
                    f"  no labels-needed forecast: not ready in other cells whatever "
                    f"{len(d.forecasts)} undecided cell(s) settle to"
                )
            else:
                lines += [f"  labels needed, {f.text}" for f in d.forecasts]
            blocks.append("\n".join(lines))
        out.append(("verdicts", blocks))
    out += _calibration_sections(report)
    out += _baseline_sections(report)
    out.append(("diagnostics", _diagnostic_blocks(report.diagnostics)))
    return out


def _counts_text(c: CalibrationCell) -> str:
    """Binary: the 2 x 2 table as TN FP FN TP; scales: agreements out of labelled responses."""
    if c.counts is None:
        return "-"
    if len(c.counts) == 2:
        (tn, fp), (fn, tp) = c.counts
        text = f"TN {tn} FP {fp} FN {fn} TP {tp}"
    else:
        agree = sum(c.counts[h][h] for h in range(len(c.counts)))
        text = f"agree {agree}/{sum(map(sum, c.counts))}"
    return text + ("" if c.judge_only is None else f", judge only {sum(c.judge_only)}")


def _calibration_sections(report: Results) -> list:
    out = []
    for t in report.metrics:
        cells = [c for c in report.calibration if c.metric == t.name]
        if t.quantity == "rate":
            accuracy = ["sensitivity", "specificity", "kappa"]
            note = (
                "sensitivity P(judge yes | human yes), specificity P(judge no | human no); "
                "labelled responses by human x judge verdict (TN FP FN TP)"
            )
        else:
            accuracy = ["P(judge = human) by level", "kappa (quad.)"]
            note = (
                "diagonal of the judge's confusion matrix P(J = j | H = h), levels 1..L; "
                "labelled responses where judge and human agree (full table in JSON)"
            )
        head = ["model", "region", "labels", *accuracy, "human x judge", "warnings"]
        rows = [
            [
                c.model,
                c.region,
                str(c.labels),
                *(
                    [_ivtext(c.sensitivity), _ivtext(c.specificity)]
                    if t.quantity == "rate"
                    else [" ".join(f"{iv.mean:.2f}" for iv in c.exact)]
                ),
                _f(c.kappa, digits=2),
                _counts_text(c),
                "; ".join(c.warnings) or "-",
            ]
            for c in cells
        ]
        out.append((f"judge calibration: {t.name}", [note, (head, rows, 2)]))
    return out


_BASELINE_NAMES = {
    "judge": "raw judge",
    "human": "human only",
    "rogan_gladen": "Rogan-Gladen",
    "ppi++": "PPI++",
}


def _baseline_sections(report: Results) -> list:
    out = []
    for name in dict.fromkeys(b.metric for b in report.baselines):
        cells = [b for b in report.baselines if b.metric == name]
        # Rogan-Gladen is for yes/no metrics only: a scale gets no column of dashes for it
        table = report.table(name)
        scale = table is not None and len(table.levels) > 2
        shown = [k for k, m in enumerate(METHODS) if not (scale and m == "rogan_gladen")]
        head = [
            "model",
            "region",
            "judged",
            "labelled",
            *(_BASELINE_NAMES[METHODS[k]] for k in shown),
        ]
        rows = [
            [
                b.model,
                b.region,
                str(b.n_judged),
                str(b.n_labelled),
                *(
                    "-" if e.estimate is None else f"{e.estimate:.3f} [{e.lo:.3f}, {e.hi:.3f}]"
                    for e in (b.estimates[k] for k in shown)
                ),
            ]
            for b in cells
        ]
        rogan = not scale
        out.append(
            (
                f"baselines: {name}",
                [
                    "90% intervals: raw judge (Wilson; a mean level's normal interval on scales), "
                    "human only and PPI++ post-stratified by the judge's level (labels balance "
                    "the judge's levels)"
                    + (", Rogan-Gladen (yes/no, delta method)" if rogan else ""),
                    (head, rows, 2),
                ],
            )
        )
    return out


def _diagnostic_blocks(diag: Diagnostics | None) -> list:
    if diag is None:
        return ["no sampler diagnostics (no full fit)"]

    def row(d: Diagnostics) -> list[str]:
        ess = [beside(x, ESS_MIN, "<", 0, 2) for x in (d.min_ess_bulk, d.min_ess_tail)]
        return [beside(d.max_rhat, RHAT_MAX, ">", 3, 6), *ess,
                str(d.divergences), "ok" if d.ok else "FAILED"]  # fmt: skip

    head = ["max R-hat", "min ESS bulk", "min ESS tail", "divergences", "diagnostics"]
    rows = [[name, *row(d)] for name, d in diag.per_metric.items()]
    blocks: list = [
        f"sampler {diag.sampler or '?'}; a fit passes with R-hat <= {RHAT_MAX}, bulk and tail "
        f"ESS >= {ESS_MIN} and no divergences"
    ]
    blocks.append((["metric", *head], [*rows, ["all", *row(diag)]]))
    return blocks


# ---- text and Markdown ---------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def _plain(s: object) -> str:
    """Text as data: control and bidi characters shown as escapes (``\\x1b``)."""
    return inert(s, ascii=True)


def _md(s: object) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _plain(s).replace("\n", " "))


def _grid(head: list[str], rows: list[list[str]], keys: int = 1, width: int = 100) -> list[str]:
    """Aligned columns; columns after the first `keys` wrap into further blocks to fit `width`."""
    head = [_plain(h).replace("\n", " ") for h in head]
    rows = [[_plain(c).replace("\n", " ") for c in r] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    base = sum(widths[:keys]) + 2 * (keys - 1)
    chunks: list[list[int]] = []
    cur: list[int] = []
    used = base
    for k in range(keys, len(head)):
        if cur and used + 2 + widths[k] > width:
            chunks.append(cur)
            cur, used = [], base
        cur.append(k)
        used += 2 + widths[k]
    chunks.append(cur)
    lines: list[str] = []
    for n, cols in enumerate(chunks):
        if n:
            lines.append("")
        for r in [head, *rows]:
            lines.append("  ".join(r[k].ljust(widths[k]) for k in [*range(keys), *cols]).rstrip())
            if r is head:
                lines.append("  ".join("-" * widths[k] for k in [*range(keys), *cols]))
    return lines


def text(report: Results) -> str:
    """The report as aligned plain text (80-100 columns)."""
    lines: list[str] = []
    for title, blocks in _sections(report):
        lines += ["", f"== {_plain(title)} =="] if lines else [f"== {_plain(title)} =="]
        for b in blocks:
            if isinstance(b, str):
                for x in b.split("\n"):
                    indent = " " * (len(x) - len(x.lstrip()) + 2)
                    lines += textwrap.wrap(
                        _plain(x), 100, subsequent_indent=indent, break_on_hyphens=False
                    ) or [""]
            else:
                lines += ["", *_grid(*b), ""]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def markdown(report: Results) -> str:
    """The report as Markdown (headings and pipe tables)."""
    lines: list[str] = []
    for n, (title, blocks) in enumerate(_sections(report)):
        lines += [f"{'#' if n == 0 else '##'} {_md(title)}", ""]
        for b in blocks:
            if isinstance(b, str):
                first, *rest = b.split("\n")  # indented follow-up lines become a list
                lines += [
                    _md(first),
                    *([""] if rest else []),
                    *(f"- {_md(x.strip())}" for x in rest),
                    "",
                ]
            else:
                head, rows = b[0], b[1]
                lines.append("| " + " | ".join(_md(h) for h in head) + " |")
                lines.append("|" + "|".join("---" for _ in head) + "|")
                lines += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _labels_text(cell: Cell) -> str:
    """A cell's labelled responses, and those its raters tied on: '4 (+2 tied)'."""
    text = "?" if cell.labels is None else str(cell.labels)
    return f"{text} (+{cell.ties} tied)" if cell.ties else text
