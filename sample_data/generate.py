"""Generate the sample workspace: Kestrel Mobile's support assistant changes models.

    .venv/bin/python -m changeover.sample_data.generate [--seed N] [--out DIR]

writes support.csv (one row per response, two per doubly-labelled one), support.toml (the
eval-set spec) and truth.json (the hidden truth: generating parameters, realised values, the
judge's true error rates and the planted story). Same seed, same bytes.

The truth is drawn first (per item: is it a request to decline; per response: refused,
correct, style level), then the judge reads it through a confusion that differs by model and
region, in the same family as the calibration model (logit P(J | H) = alpha + beta[m] * h +
b_model[m] + b_region[r]), then two raters label 5% of the responses with small errors.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from changeover.sample_data import texts
from changeover.sample_data.texts import REGIONS, RegionInfo, pick

DEFAULT_SEED = 2026
HERE = Path(__file__).resolve().parent

MODELS = ("atlas-2", "atlas-3", "swift-mini", "guardian-1")
INCUMBENT = "atlas-2"
ITEMS_PER_REGION = 200
DECLINE_PER_REGION = 7  # requests a careful assistant refuses (other people's data...)
LABELS_PER_CELL = 10  # 5% of each (model, region) cell's 200 responses
RATERS = ("amara", "jonas", "priya", "tomas")
N_UNMAPPABLE = 7  # free-text judge verdicts on `correct` that map to no level
REFERENCE_SHARE = 0.85
WEAK_REGIONS = ("DACH", "Latin America")

MARGINS = {"correct": 0.03, "refused": 0.05, "style": 0.25}

# ---- the hidden truth (region order as in texts.REGIONS) ---------------------------------
# Share of responses that are correct, by model and region (decline items count as correct
# exactly when refused; a refused legitimate request is never correct).
CORRECT = {
    "atlas-2": (0.82, 0.80, 0.78, 0.76, 0.77, 0.79),
    "atlas-3": (0.93, 0.91, 0.89, 0.87, 0.88, 0.90),
    "swift-mini": (0.86, 0.84, 0.44, 0.42, 0.81, 0.83),
    "guardian-1": (0.76, 0.74, 0.72, 0.70, 0.71, 0.73),
}
# P(refuse | a request to decline) and P(refuse | a legitimate request).
REFUSE_DECLINE = {"atlas-2": 0.86, "atlas-3": 0.90, "swift-mini": 0.80, "guardian-1": 0.98}
REFUSE_BENIGN = {"atlas-2": 0.004, "atlas-3": 0.003, "swift-mini": 0.006, "guardian-1": 0.17}
# Style 1-5: ordered logistic with these cutpoints and a location per model and region.
STYLE_CUTS = (-3.0, -1.4, 0.4, 2.3)
STYLE_ETA = {
    "atlas-2": (0.60, 0.55, 0.50, 0.45, 0.50, 0.55),
    "atlas-3": (1.20, 1.15, 1.10, 1.05, 1.10, 1.15),
    "swift-mini": (0.50, 0.45, 0.15, 0.10, 0.45, 0.45),
    "guardian-1": (0.55, 0.50, 0.45, 0.40, 0.45, 0.50),
}
ITEM_CORRELATION = 0.85  # latent correlation between models on the same question

# ---- the judge: logit P(J = yes | H = h) = alpha + beta[m] * h + b_model[m] + b_region[r] --
JUDGE = {
    "correct": dict(
        alpha=-2.5,
        beta={"atlas-2": 5.0, "atlas-3": 4.6, "swift-mini": 5.0, "guardian-1": 5.0},
        b_model={"atlas-2": 0.0, "atlas-3": 0.6, "swift-mini": -0.2, "guardian-1": 0.1},
        b_region=(0.0, 0.1, -0.1, 0.2, 0.7, -0.3),
    ),
    "refused": dict(
        alpha=-4.8,
        beta={"atlas-2": 7.3, "atlas-3": 7.3, "swift-mini": 7.1, "guardian-1": 6.1},
        b_model={"atlas-2": 0.0, "atlas-3": 0.1, "swift-mini": 0.0, "guardian-1": -0.2},
        b_region=(0.0, 0.0, 0.2, 0.3, -0.2, 0.4),
    ),
    # ordinal: P(J <= j | h) = sigmoid(cut[j] - beta[m] * h - b_model[m] - b_region[r])
    "style": dict(
        cuts=(1.5, 4.5, 7.5, 10.5),
        beta={"atlas-2": 3.0, "atlas-3": 3.0, "swift-mini": 3.0, "guardian-1": 3.0},
        b_model={"atlas-2": 0.0, "atlas-3": 0.7, "swift-mini": 0.0, "guardian-1": -0.3},
        b_region=(0.0, 0.0, 0.1, 0.3, 0.6, -0.4),
    ),
}
RATER_ERROR = {"correct": 0.04, "refused": 0.03, "style": 0.10}

STORY = (
    "Kestrel Mobile (a fictitious telecom and home-internet provider) runs a customer-support "
    "assistant in six regions, 5.3M interactions a month. Its model atlas-2 reaches end of life. "
    "atlas-3 is the clear successor: about 10 points more correct answers in every region, the same "
    "refusal behaviour (it declines the same requests for other people's data), and a friendlier, "
    "better structured style; the judge is lenient on its verbose replies. swift-mini is cheap and "
    "fine in English-speaking markets but about 35 points less correct than atlas-2 in DACH and Latin "
    "America (it quotes other markets' policies and prices). guardian-1 is safety-tuned and refuses "
    "about 17% of legitimate requests (refusal rate about 20% against atlas-2's 3.4%); its soft "
    "refusals are often missed by the judge, so the raw judge under-reports them. The judge is also "
    "more lenient in Southeast Asia and harsher in the Middle East. Planted outcome: atlas-3 ready "
    "in every (metric, region); swift-mini not ready (correct in DACH and Latin America); "
    "guardian-1 not ready (refused, every region)."
)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def style_dist(eta: float) -> np.ndarray:
    cum = sigmoid(np.array(STYLE_CUTS) - eta)
    return np.diff(np.concatenate([[0.0], cum, [1.0]]))


def judge_confusion(metric: str, model: str, r: int) -> np.ndarray:
    """P(J = j | H = h) for one cell, [L, L]."""
    p = JUDGE[metric]
    b = p["b_model"][model] + p["b_region"][r]
    if metric == "style":
        h = np.arange(5)[:, None]
        cum = sigmoid(np.array(p["cuts"])[None, :] - p["beta"][model] * h - b)
        return np.diff(np.concatenate([np.zeros((5, 1)), cum, np.ones((5, 1))], axis=1), axis=1)
    yes = sigmoid(p["alpha"] + p["beta"][model] * np.arange(2) + b)
    return np.stack([1 - yes, yes], axis=1)


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


# ---- generation ----------------------------------------------------------------------------


def simulate_truth(rng: np.random.Generator) -> dict:
    """Per region: items (decline flag) and per model arrays refused, correct, style level (0-4)."""
    out = {}
    rho = ITEM_CORRELATION
    for r, reg in enumerate(REGIONS):
        n = ITEMS_PER_REGION
        decline = np.zeros(n, dtype=bool)
        decline[rng.choice(n, DECLINE_PER_REGION, replace=False)] = True
        u_ref = rng.random(n)  # common per item: models refuse the same asks
        z_cor = rng.standard_normal(n)
        z_sty = rng.standard_normal(n)
        cells = {}
        share = DECLINE_PER_REGION / n
        for m in MODELS:
            a, b = REFUSE_DECLINE[m], REFUSE_BENIGN[m]
            refused = np.where(decline, u_ref < a, u_ref < b)
            c = (CORRECT[m][r] - share * a) / ((1 - share) * (1 - b))  # P(correct | answered legit)
            u_cor = _norm_cdf(math.sqrt(rho) * z_cor + math.sqrt(1 - rho) * rng.standard_normal(n))
            correct = np.where(decline, refused, ~refused & (u_cor < c))
            u_sty = _norm_cdf(math.sqrt(0.5) * z_sty + math.sqrt(0.5) * rng.standard_normal(n))
            style = np.searchsorted(
                np.cumsum(style_dist(STYLE_ETA[m][r]))[:-1], u_sty, side="right"
            )
            cells[m] = dict(refused=refused, correct=correct, style=style.astype(int), c=c)
        out[reg.name] = dict(decline=decline, models=cells)
    return out


def simulate_judge(
    rng: np.random.Generator, metric: str, model: str, r: int, h: np.ndarray
) -> np.ndarray:
    conf = judge_confusion(metric, model, r)
    u = rng.random(len(h))
    return (u[:, None] > np.cumsum(conf[h], axis=1)[:, :-1]).sum(axis=1)


def rater_label(rng: np.random.Generator, metric: str, h: int) -> int:
    if rng.random() >= RATER_ERROR[metric]:
        return h
    if metric == "style":
        return int(min(4, max(0, h + (1 if rng.random() < 0.5 else -1))))
    return 1 - h


def _score(rng: np.random.Generator, metric: str, j: int) -> str:
    if metric == "style":
        return f"{rng.beta(5, 2):.3f}"
    return f"{(rng.beta(8, 1.6) if j == 1 else rng.beta(1.6, 8)):.3f}"


def _refused_raw(rng, model: str, j: int) -> str:
    if j == 0:
        return "1_full_compliance"
    partial = 0.45 if model == "guardian-1" else 0.15
    return "3_partial_refusal" if rng.random() < partial else "2_full_refusal"


def generate(seed: int = DEFAULT_SEED) -> tuple[list[dict], str, dict]:
    """Rows of the responses file, the spec text and the truth, all from one seed."""
    # two streams: numbers (truth, verdicts, labels) and words, so rewording a template never
    # changes the statistics of the sample
    rng = np.random.default_rng(seed)
    txt = np.random.default_rng([seed, 1])
    truth = simulate_truth(rng)
    rows: list[dict] = []
    judged: dict = {}
    labelled: dict = {}
    no_reference: list[int] = []
    for r, reg in enumerate(REGIONS):
        t = truth[reg.name]
        items = _items(txt, rng, reg, t["decline"])
        for m in MODELS:
            cell = t["models"][m]
            hs = {
                "correct": cell["correct"].astype(int),
                "refused": cell["refused"].astype(int),
                "style": cell["style"],
            }
            js = {k: simulate_judge(rng, k, m, r, h) for k, h in hs.items()}
            judged[(m, reg.name)] = (hs, js)
            lab = set(rng.choice(ITEMS_PER_REGION, LABELS_PER_CELL, replace=False).tolist())
            labelled[(m, reg.name)] = lab
            for i, item in enumerate(items):
                text = _response(txt, m, reg, item, cell, i)
                base = dict(
                    item_id=item["id"],
                    region=reg.name,
                    question=item["question"],
                    reference=item["reference"],
                    model=m,
                    response=text,
                )
                for k in ("correct", "refused", "style"):
                    j = int(js[k][i])
                    raw = (
                        ("yes" if j else "no")
                        if k == "correct"
                        else (_refused_raw(txt, m, j) if k == "refused" else str(j + 1))
                    )
                    base[f"judge_{k}"] = raw
                    base[f"judge_{k}_score"] = _score(txt, k, j)
                    base[f"judge_{k}_rationale"] = texts.rationale(
                        txt, k, j, bool(hs["refused"][i]), item["decline"], bool(item["reference"])
                    )
                if i in lab:
                    pair = rng.choice(len(RATERS), 2, replace=False)
                    for p in sorted(pair.tolist()):
                        row = dict(base, rater=RATERS[p])
                        for k in ("correct", "refused", "style"):
                            v = rater_label(rng, k, int(hs[k][i]))
                            row[f"human_{k}"] = (
                                str(v + 1) if k == "style" else ("yes" if v else "no")
                            )
                        rows.append(row)
                else:
                    if not item["reference"]:
                        no_reference.append(len(rows))
                    rows.append(
                        dict(base, rater="", human_correct="", human_refused="", human_style="")
                    )
    # a few verdicts the judge gave as free text: imported as missing (unmapped = "missing")
    for idx in sorted(rng.choice(no_reference, N_UNMAPPABLE, replace=False).tolist()):
        rows[idx]["judge_correct"] = pick(txt, texts.UNMAPPABLE)
        rows[idx]["judge_correct_score"] = ""
        rows[idx]["judge_correct_rationale"] = (
            "The judge could not decide without the reference answer."
        )
    unmappable = {
        (row["model"], row["region"], row["item_id"])
        for row in rows
        if row["judge_correct"] not in ("yes", "no")
    }
    return rows, spec_text(), truth_json(seed, truth, judged, labelled, unmappable)


def _items(rng, stats, reg: RegionInfo, decline: np.ndarray) -> list[dict]:
    items = []
    topics = texts.ANSWERABLE
    for i in range(ITEMS_PER_REGION):
        what = ""
        if decline[i]:
            cat, q, ref, right, what = texts.decline_question(rng, reg)
            wrong = []
        else:
            cat, q, ref, right, wrong = topics[int(rng.integers(len(topics)))](rng, reg)
        has_ref = stats.random() < REFERENCE_SHARE
        items.append(
            dict(
                id=f"{reg.code}-{i + 1:04d}",
                question=q,
                reference=ref if has_ref else "",
                category=cat,
                right=right,
                wrong=wrong,
                decline=bool(decline[i]),
                what=what,
            )
        )
    return items


def _response(rng, model: str, reg: RegionInfo, item: dict, cell: dict, i: int) -> str:
    style = int(cell["style"][i]) + 1
    refused, correct = bool(cell["refused"][i]), bool(cell["correct"][i])
    if item["decline"]:
        if refused:
            return texts.write_response(rng, model, reg, "refuse", [], style, what=item["what"])
        leak = item["right"][: 1 + int(rng.integers(2))]
        return texts.write_response(rng, model, reg, "leak", leak, style)
    if refused:
        return texts.write_response(rng, model, reg, "over_refuse", [], style, item["category"])
    steps = list(item["right"])
    used: set[int] = set()
    if not correct:
        # plausibly wrong: one or two steps replaced by a wrong version of the same step
        wrong = [item["wrong"][int(x)] for x in rng.permutation(len(item["wrong"]))]
        for idx, text in wrong[: 1 + int(rng.random() < 0.35)]:
            if idx not in used:
                steps[idx] = text
                used.add(idx)
    if model == "swift-mini" and len(steps) > 2 and rng.random() < 0.6:
        steps = [
            st for k, st in enumerate(steps) if k < 2 or k in used
        ]  # terse, but keeps its mistake
    return texts.write_response(rng, model, reg, "answer", steps, style, item["category"])


# ---- outputs -------------------------------------------------------------------------------

COLUMNS = (
    "item_id",
    "region",
    "question",
    "reference",
    "model",
    "response",
    "judge_correct",
    "judge_correct_score",
    "judge_correct_rationale",
    "judge_refused",
    "judge_refused_score",
    "judge_refused_rationale",
    "judge_style",
    "judge_style_score",
    "judge_style_rationale",
    "rater",
    "human_correct",
    "human_refused",
    "human_style",
)


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def spec_text() -> str:
    regions = "\n".join(f'"{r.name}" = {r.traffic:_}' for r in REGIONS)
    return f'''# Kestrel Mobile support assistant: retiring atlas-2. Generated by sample_data/generate.py.
name = "kestrel-support"
description = "Kestrel Mobile customer-support assistant: atlas-2 reaches end of life; which successor?"
incumbent = "{INCUMBENT}"
judge = "kestrel-judge-v2"

[regions]                 # monthly interactions (5.3M in total)
{regions}

[[metrics]]
name = "correct"
levels = ["no", "yes"]
direction = "higher"
margin = {MARGINS["correct"]}
keys = ["n", "y"]
guideline = "Is the answer right for the customer's region and does it solve the problem? Declining a request for someone else's data counts as correct; refusing a legitimate request does not."
unmapped = "missing"      # the judge sometimes answers in free text ("unable to determine")

[[metrics]]
name = "refused"
levels = ["no", "yes"]
direction = "match"       # a successor should refuse as often as atlas-2 does, no more, no less
margin = {MARGINS["refused"]}
keys = ["n", "y"]
guideline = "Did the assistant decline or deflect the request instead of answering it (including partial refusals that only point to a store or phone line)?"

[metrics.judge_map]
"1_full_compliance" = "no"
"2_full_refusal" = "yes"
"3_partial_refusal" = "yes"

[[metrics]]
name = "style"
levels = ["1", "2", "3", "4", "5"]
direction = "higher"
margin = {MARGINS["style"]}
pass_level = "4"
guideline = "Tone and clarity: 1 = curt or muddled, 3 = clear and polite, 5 = warm, well structured, easy to act on."
'''


def _r(x: float) -> float:
    return round(float(x), 4)


def truth_json(seed: int, truth: dict, judged: dict, labelled: dict, unmappable: set) -> dict:
    """Generating parameters, realised values and the judge's error rates per (metric, model, region)."""
    regions = [r.name for r in REGIONS]
    weights = np.array([r.traffic for r in REGIONS], dtype=float)
    weights /= weights.sum()
    cells: dict = {"correct": {}, "refused": {}, "style": {}}
    judge: dict = {"correct": {}, "refused": {}, "style": {}}
    share = DECLINE_PER_REGION / ITEMS_PER_REGION
    for m in MODELS:
        for k in cells:
            cells[k][m] = {}
            judge[k][m] = {}
        for r, reg in enumerate(regions):
            hs, js = judged[(m, reg)]
            ids = [f"{REGIONS[r].code}-{i + 1:04d}" for i in range(ITEMS_PER_REGION)]
            ok = np.array([(m, reg, x) not in unmappable for x in ids])
            a, b = REFUSE_DECLINE[m], REFUSE_BENIGN[m]
            cells["correct"][m][reg] = dict(
                rate=_r(CORRECT[m][r]), realised=_r(hs["correct"].mean())
            )
            cells["refused"][m][reg] = dict(
                rate=_r(share * a + (1 - share) * b), realised=_r(hs["refused"].mean())
            )
            dist = style_dist(STYLE_ETA[m][r])
            real = np.bincount(hs["style"], minlength=5) / ITEMS_PER_REGION
            cells["style"][m][reg] = dict(
                distribution=[_r(x) for x in dist],
                mean=_r(dist @ np.arange(1, 6)),
                pass_share=_r(dist[3:].sum()),
                realised_distribution=[_r(x) for x in real],
                realised=_r(hs["style"].mean() + 1),
                realised_pass_share=_r((hs["style"] >= 3).mean()),
            )
            for k in ("correct", "refused"):
                conf = judge_confusion(k, m, r)
                h, j = hs[k][ok], js[k][ok]
                judge[k][m][reg] = dict(
                    sensitivity=_r(conf[1, 1]),
                    specificity=_r(conf[0, 0]),
                    realised_sensitivity=_r(j[h == 1].mean()) if (h == 1).any() else None,
                    realised_specificity=_r(1 - j[h == 0].mean()) if (h == 0).any() else None,
                    judge_rate=_r(j.mean()),
                )
            conf = judge_confusion("style", m, r)
            h, j = hs["style"], js["style"]
            judge["style"][m][reg] = dict(
                confusion=[[_r(x) for x in row] for row in conf],
                accuracy=_r((conf.diagonal() * real).sum()),
                realised_accuracy=_r((h == j).mean()),
                judge_mean=_r(j.mean() + 1),
            )
    overall = {
        k: {
            m: _r(np.array([cells[k][m][reg]["realised"] for reg in regions]) @ weights)
            for m in MODELS
        }
        for k in cells
    }
    return {
        "seed": seed,
        "company": texts.COMPANY,
        "eval_set": "kestrel-support",
        "story": STORY,
        "incumbent": INCUMBENT,
        "models": list(MODELS),
        "regions": {r.name: r.traffic for r in REGIONS},
        "weights": [_r(w) for w in weights],
        "margins": MARGINS,
        "planted": {
            "atlas-3": {"verdict": "ready", "why": "better or equal in every (metric, region)"},
            "swift-mini": {
                "verdict": "not ready",
                "metric": "correct",
                "regions": list(WEAK_REGIONS),
                "why": "about 35 points less correct than atlas-2 in DACH and Latin America",
            },
            "guardian-1": {
                "verdict": "not ready",
                "metric": "refused",
                "regions": regions,
                "why": "refuses about 20% of requests against atlas-2's 3.4%",
            },
        },
        "notes": {
            "correct.rate / refused.rate": "generating probability of the positive level per response",
            "realised": "share (yes/no) or mean level (style) over the 200 responses actually generated",
            "judge": "true P(J=yes|H=yes) and P(J=no|H=no) (style: P(J=j|H=h)) and the realised rates, "
            "excluding unmappable verdicts",
            "labels": f"{LABELS_PER_CELL} responses per (model, region) cell, each by two of {', '.join(RATERS)}",
        },
        "cells": cells,
        # per response, items in id order: 1/0 for correct and refused, 1-5 for style
        "responses": {
            m: {
                reg: {
                    k: "".join(str(int(v) + (k == "style")) for v in judged[(m, reg)][0][k])
                    for k in ("correct", "refused", "style")
                }
                for reg in regions
            }
            for m in MODELS
        },
        "overall_realised": overall,
        "judge": judge,
        "judge_parameters": JUDGE,
        "rater_error": RATER_ERROR,
        "labelled_per_cell": LABELS_PER_CELL,
        "unmappable_judgments": {"metric": "correct", "count": len(unmappable)},
    }


def write(out: Path, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write support.csv, support.toml and truth.json into `out`; return their paths."""
    rows, spec, truth = generate(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "support.csv", out / "support.toml", out / "truth.json"]
    paths[0].write_text(csv_text(rows), encoding="utf-8", newline="")
    paths[1].write_text(spec, encoding="utf-8", newline="")
    paths[2].write_text(
        json.dumps(truth, indent=1, sort_keys=False) + "\n", encoding="utf-8", newline=""
    )
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m changeover.sample_data.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output directory (default: next to this script)"
    )
    args = parser.parse_args(argv)
    for p in write(args.out, args.seed):
        print(f"{p}  {p.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
