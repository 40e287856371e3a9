"""Every report format on a canned fit: a hand-made Posterior with known quantiles, kept with
store.save_fit and read back the way the workspace reads it."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from changeover.core.decide.rule import DecisionRule
from changeover.core.decide.verdicts import decide
from changeover.core.model.counts import Counts, data_hash
from changeover.core.model.kept_fits import kept_fit
from changeover.core.model.posterior import CellFlags, Posterior, to_bytes
from changeover.core.render.report import SCHEMA, render, report_rows
from changeover.core.results import build_results, probability_text
from changeover.core.settings import Settings
from changeover.core.store import Store
from changeover.core.types import Diagnostics, EvalSet, Metric, Region

S = 2001  # linspace offsets: mean = base, 5% quantile = base - 0.045, 95% = base + 0.045
UP = np.linspace(-0.05, 0.05, S)
MODELS = ("inc", "cand", "[red]evil[/red]\x1b[2J")
REGIONS = ("eu", "us")
BASE = np.array([[0.800, 0.700], [0.900, 0.690], [0.600, 0.500]])  # [M, R] rate of "yes"
MARGIN = 0.03


def eval_set() -> EvalSet:
    return EvalSet(
        0,
        "support",
        "inc",
        (Region("eu", 3.0), Region("us", 1.0)),
        (
            Metric("correct", ("no", "yes"), "higher", MARGIN),
            Metric("style", ("1", "2", "3", "4"), "higher", 0.1, pass_level=2),
        ),
    )


def correct_draws() -> np.ndarray:
    """q [S, M, R]: the incumbent's spread runs up, the candidates' down (deltas are spread too)."""
    q = np.empty((S, 3, 2))
    q[:, 0] = BASE[0] + UP[:, None]
    q[:, 1:] = BASE[1:] + UP[::-1, None, None]
    return q


def posteriors() -> list[Posterior]:
    q = correct_draws()
    p = np.stack([1 - q, q], axis=-1)
    conf = np.empty((S, 3, 2, 2, 2))
    se = 0.9 + 0.05 * UP[:, None, None] / 0.05  # mean 0.9, 5%-95%: 0.855-0.945
    conf[..., 1, 1], conf[..., 1, 0] = se, 1 - se
    conf[..., 0, 0], conf[..., 0, 1] = 0.8, 0.2
    labels = [[40, 35], [50, 12], [0, 30]]
    flags = CellFlags.from_dict({"cell_labels": labels, "unlabelled_cells": [[MODELS[2], "eu"]]})
    w = np.array([0.75, 0.25])
    correct = Posterior("correct", ("no", "yes"), MODELS, REGIONS, w, p, conf, "full", None, flags)
    ps = np.zeros((S, 3, 2, 4))
    ps[..., 1], ps[..., 2] = 0.5, 0.5  # mean level 2.5, share at or above level 3: 0.5
    sconf = np.broadcast_to(np.eye(4), (S, 3, 2, 4, 4)).copy()
    style = Posterior(
        "style", ("1", "2", "3", "4"), MODELS, REGIONS, w, ps, sconf, "full", 2, flags
    )
    return [correct, style]


def counts() -> dict[str, Counts]:
    n = np.zeros((3, 2, 2, 2), np.int64)
    n[:, :, 0, 0], n[:, :, 1, 1], n[:, :, 1, 0], n[:, :, 0, 1] = 8, 20, 2, 3
    u = np.full((3, 2, 2), 100, np.int64)
    sn = np.zeros((3, 2, 4, 4), np.int64)
    return {
        "correct": Counts("correct", ("no", "yes"), MODELS, REGIONS, n, u),
        "style": Counts(
            "style", ("1", "2", "3", "4"), MODELS, REGIONS, sn, np.zeros((3, 2, 4), np.int64)
        ),
    }


@pytest.fixture
def canned():
    store = Store.memory()
    es = store.save_eval_set(eval_set())
    diag = {
        "max_rhat": 1.004,
        "min_ess_bulk": 812.0,
        "min_ess_tail": 640.0,
        "divergences": 0,
        "ok": True,
        "sampler": "nutpie",
        "per_metric": {},
    }
    store.save_fit(
        es.id,
        Settings(seed=7),
        data_hash(counts()),
        Diagnostics.from_dict(diag),
        to_bytes(posteriors()),
    )
    fit, posts = kept_fit(store, es)
    return build_results(es, posts, source="full", fit=fit, counts=counts())


def delta_draws(m: int, r: int) -> np.ndarray:
    q = correct_draws().astype(np.float32).astype(float)
    return q[:, m, r] - q[:, 0, r]


def test_structure(canned):
    r = canned
    assert r.models == MODELS and r.incumbent == "inc"
    t = r.metrics[0]
    assert [row.region for row in t.rows] == ["eu", "us", "overall"]
    eu = t.rows[0]
    inc, cand = eu.cells[0], eu.cells[1]
    assert inc.value.mean == pytest.approx(0.80, abs=1e-6)
    assert (inc.value.lower, inc.value.upper) == pytest.approx((0.755, 0.845), abs=1e-6)
    assert inc.delta is None and inc.decision is None and inc.labels == 40
    expected = decide(delta_draws(1, 0), "higher", MARGIN)
    assert cand.decision.probability == pytest.approx(expected.probability)
    assert cand.delta.mean == pytest.approx(0.10, abs=1e-6)
    overall = t.rows[2].cells[0]
    assert overall.value.mean == pytest.approx(0.75 * 0.8 + 0.25 * 0.7, abs=1e-6)
    assert t.rows[2].cells[1].labels == 62
    style = r.metrics[1]
    assert style.quantity == "mean_level" and style.rows[0].cells[0].value.mean == pytest.approx(
        2.5
    )
    assert style.rows[0].cells[0].pass_share.mean == pytest.approx(0.5)


def test_candidate_verdicts(canned):
    cand, evil = canned.candidates
    assert cand.candidate == "cand"
    # cand in us: delta -0.01 spread over +-0.1, so P(delta > -0.03) ~ 0.6: undecided.
    cells = {(c.metric, c.region): c for c in cand.cells}
    assert cells[("correct", "eu")].decision.verdict == "ready"
    assert cells[("correct", "us")].decision.verdict == "undecided"
    assert cand.verdict == "undecided" and cells[("correct", "us")].forecast is not None
    assert evil.verdict == "not ready"


def test_calibration_and_baselines(canned):
    c = next(
        x for x in canned.calibration if (x.metric, x.model, x.region) == ("correct", "inc", "eu")
    )
    assert c.sensitivity.mean == pytest.approx(0.9, abs=1e-6)
    assert (c.sensitivity.lower, c.sensitivity.upper) == pytest.approx((0.855, 0.945), abs=1e-6)
    assert c.specificity.mean == pytest.approx(0.8, abs=1e-6)
    assert c.counts == ((8, 3), (2, 20)) and c.judge_only == (100, 100)
    b = next(
        x for x in canned.baselines if (x.metric, x.model, x.region) == ("correct", "inc", "eu")
    )
    assert b.get("judge").estimate == pytest.approx((3 + 20 + 100) / 233)
    style = [x for x in canned.baselines if x.metric == "style"]  # scales have baselines too
    assert style and all(
        1 <= e.lo <= e.estimate <= e.hi <= 5
        for x in style
        for e in x.estimates
        if e.estimate is not None
    )
    assert all(x.get("rogan_gladen").estimate is None for x in style)
    # the text report gives a scale no Rogan-Gladen column, so PPI++ sits beside the others
    text = render(canned, "text")
    style_section = text[text.index("== baselines: style ==") :].split("\n== ")[0]
    head = " ".join(line for line in style_section.splitlines() if line.startswith("model"))
    assert "PPI++" in head and "Rogan-Gladen" not in head
    correct = text[text.index("== baselines: correct ==") : text.index("== baselines: style ==")]
    assert "Rogan-Gladen" in correct


def test_flags(canned):
    kinds = [f.kind for f in canned.flags]
    assert "unlabelled_cell" in kinds and "stale_fit" not in kinds and "diagnostics" not in kinds
    es = eval_set()
    stale = build_results(
        es, posteriors(), source="full", fit=canned.fit, stale=True, labels_since=3, khat=0.2
    )
    flag = next(f for f in stale.flags if f.kind == "stale_fit")
    assert "3 label(s) given since" in flag.message and "fit again" in flag.message


def test_text(canned):
    text = render(canned, "text")
    assert "0.800 [0.755, 0.845]" in text  # inc, eu
    assert "0.900 [0.855, 0.945]" in text  # cand, eu
    assert "+0.100 [+0.010, +0.190]" in text  # cand - inc in eu
    p = decide(delta_draws(1, 1), "higher", MARGIN).probability
    assert f"{probability_text(p, 0.95)} undecided" in text
    assert "5% and 95% quantiles" in text
    assert "0.900 [0.855, 0.945]" in text  # sensitivity
    assert "TN 8 FP 3 FN 2 TP 20" in text
    assert "labels needed, correct/us: about" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    # Names are data: the markup stays literal, the escape sequence is shown, not sent.
    assert "\x1b" not in text and "[red]evil[/red]\\x1b[2J" in text


def test_markdown(canned):
    md = render(canned, "markdown")
    assert md.startswith("# changeover report")
    assert "| eu | 75% | 0.800 \\[0.755, 0.845\\] | 0.900 \\[0.855, 0.945\\] |" in md
    assert "\x1b" not in md and "\\[red\\]evil\\[/red\\]" in md
    assert "## verdicts" in md and "## baselines: correct" in md
    assert "\n- labels needed, correct/us: about" in md


def test_json_shape(canned):
    data = json.loads(render(canned, "json"))
    assert data["schema"] == SCHEMA
    assert set(data) >= {
        "eval_set",
        "incumbent",
        "models",
        "regions",
        "threshold",
        "min_labels",
        "interval",
        "fit",
        "sources",
        "metrics",
        "candidates",
        "calibration",
        "baselines",
        "diagnostics",
        "flags",
    }
    assert data["interval"] == {"level": 0.9, "lower_quantile": 0.05, "upper_quantile": 0.95}
    assert data["models"][0] == "inc" and data["fit"]["stale"] is False
    m = data["metrics"][0]
    assert m["name"] == "correct" and m["quantity"] == "rate"
    cell = m["rows"][0]["cells"][1]
    assert set(cell) == {
        "model",
        "labels",
        "ties",
        "mean",
        "lower",
        "upper",
        "pass_share",
        "delta",
        "p_noninferior",
        "verdict",
        "reason",
    }
    assert cell["mean"] == pytest.approx(0.9, abs=1e-6) and cell["verdict"] == "ready"
    assert data["metrics"][1]["rows"][0]["cells"][0]["pass_share"]["mean"] == pytest.approx(0.5)
    cand = data["candidates"][0]
    assert cand["verdict"] == "undecided" and cand["labels"] == {"correct": 62, "style": 62}
    need = cand["labels_needed"][0]
    assert set(need) == {
        "metric",
        "region",
        "candidate_labels",
        "incumbent_labels",
        "total",
        "capped",
        "max_labels",
        "text",
    }
    cal = data["calibration"][0]
    assert cal["confusion"]["mean"][1][1] == pytest.approx(0.9, abs=1e-6) and cal["counts"] == [
        [8, 3],
        [2, 20],
    ]
    est = data["baselines"][0]["estimates"]
    assert [e["method"] for e in est] == ["judge", "human", "rogan_gladen", "ppi++"]
    assert data["diagnostics"]["max_rhat"] == 1.004
    assert json.loads(render(canned, "json")) == data  # stable across calls


def test_csv(canned):
    rows = list(csv.DictReader(io.StringIO(render(canned, "csv"))))
    assert len(rows) == 2 * 3 * 3  # metric x (regions + overall) x model
    row = next(
        r for r in rows if (r["metric"], r["region"], r["model"]) == ("correct", "us", "cand")
    )
    assert float(row["mean"]) == pytest.approx(0.69, abs=1e-6)
    assert float(row["lower_90"]) == pytest.approx(0.645, abs=1e-6)
    assert float(row["delta"]) == pytest.approx(-0.01, abs=1e-6)
    p = decide(delta_draws(1, 1), "higher", MARGIN).probability
    assert float(row["p_noninferior"]) == pytest.approx(p) and row["verdict"] == "undecided"
    assert float(row["judge"]) == pytest.approx(123 / 233) and row["labels"] == "12"
    inc = next(
        r for r in rows if (r["metric"], r["region"], r["model"]) == ("correct", "eu", "inc")
    )
    assert inc["delta"] == "" and float(inc["sensitivity"]) == pytest.approx(0.9, abs=1e-6)
    assert len(report_rows(canned)) == len(rows)


def test_without_counts_or_fit():
    r = build_results(eval_set(), posteriors(), source="instant")
    assert r.baselines == () and r.fit is None
    assert all(c.counts is None for c in r.calibration)
    for fmt in ("text", "markdown", "json", "csv"):
        assert render(r, fmt)
    with pytest.raises(ValueError):
        render(r, "html")


def test_failed_diagnostics_and_instant_are_flagged():
    store = Store.memory()
    es = store.save_eval_set(eval_set())
    posts = posteriors()
    instant = [
        Posterior(
            p.metric,
            p.levels,
            p.models,
            p.regions,
            p.weights,
            p.p,
            p.confusion,
            "instant",
            p.pass_level,
            p.flags,
        )
        for p in posts
    ]
    failed = Diagnostics(ok=False, max_rhat=1.2)
    fit = store.save_fit(es.id, Settings(), "x", failed, to_bytes(posts))
    assert "diagnostics" in {f.kind for f in build_results(es, posts, source="full", fit=fit).flags}
    kinds = {f.kind for f in build_results(es, instant, source="instant", fit=fit).flags}
    assert "instant_posterior" in kinds and "diagnostics" not in kinds  # not the fit's draws


def test_thresholds_are_arguments():
    strict = build_results(
        eval_set(), posteriors(), source="full", rule=DecisionRule(threshold=0.999)
    )
    cell = strict.metrics[0].rows[0].cells[1]
    assert strict.threshold == 0.999
    assert cell.decision.verdict == decide(delta_draws(1, 0), "higher", MARGIN, 0.999).verdict
    lenient = build_results(
        eval_set(), posteriors(), source="full", rule=DecisionRule(min_labels=5)
    )
    assert "minimum" not in lenient.candidates[0].reason
    assert "only 62 human labels" not in lenient.candidates[0].reason


def test_a_shown_probability_never_contradicts_its_verdict():
    """At threshold 0.95, 0.9496 is undecided: shown 0.9496, not 0.95; 0.9504 is ready."""
    assert probability_text(0.9496, 0.95) == "0.9496"
    assert probability_text(0.9504, 0.95) == "0.95"
    assert probability_text(0.95, 0.95) == "0.95" and probability_text(0.9449, 0.95) == "0.94"
    assert probability_text(0.946, 0.95) == "0.946" and probability_text(float("nan"), 0.95) == "-"
    rng = np.random.default_rng(3)
    for p in rng.uniform(0.9, 1.0, 2000):
        shown = float(probability_text(p, 0.95))
        assert (shown >= 0.95) == (p >= 0.95 - 1e-9), p
    for p in (0.9495, 0.94951, 0.9499999):  # what 2000 draws can give, and worse
        assert float(probability_text(p, 0.95)) < 0.95


def test_new_json_fields(canned):
    data = json.loads(render(canned, "json"))
    assert data["source"] == "full" and data["khat"] is None and data["fit"]["labels_since"] == 0
    assert data["fit"]["quick"] is False and data["fit"]["settings"]["seed"] == 7
    cal = data["calibration"][0]
    assert cal["kappa"] == pytest.approx(
        (28 / 33 - (11 / 33 * 10 / 33 + 22 / 33 * 23 / 33))
        / (1 - (11 / 33 * 10 / 33 + 22 / 33 * 23 / 33))
    )
    assert cal["youden"]["mean"] == pytest.approx(0.7, abs=1e-6) and isinstance(
        cal["warnings"], list
    )
    assert data["agreement"] == []


def test_flags_say_when_open_labels_were_left_out_or_counted():
    from dataclasses import replace

    c = counts()
    c["correct"] = replace(c["correct"], left_out=3)
    c["style"] = replace(c["style"], open_counted=2)
    results = build_results(eval_set(), posteriors(), source="full", counts=c)
    flags = {f.kind: f.message for f in results.flags}
    assert "correct: 3 labelled response(s) left out of the fit" in flags["open_labels"]
    assert "style: 2 response(s) with open labels count as if drawn" in flags["open_labels_counted"]


def test_an_unlabelled_cell_is_widened_in_the_report_and_never_ready():
    # The candidate's eu cell has no labels: pooled, its delta of +0.10 would be "ready". Every
    # face shows the posterior widened by the judge's unknown lean there (cell_checks), and the
    # cell's verdict is the checked one: undecided, in the table as in the candidate's verdict.
    from dataclasses import replace

    labels = [[40, 35], [0, 12], [0, 30]]
    flags = CellFlags.from_dict(
        {"cell_labels": labels, "unlabelled_cells": [["cand", "eu"], [MODELS[2], "eu"]]}
    )
    posts = [replace(p, flags=flags) for p in posteriors()]
    assert decide(delta_draws(1, 0), "higher", MARGIN).verdict == "ready"  # pooling alone
    q = posts[0].quantity()[:, 1, 0]
    narrow = np.subtract(*np.quantile(q, [0.95, 0.05]))
    results = build_results(eval_set(), posts, source="full", counts=counts())
    rows = {(r["metric"], r["region"], r["model"]): r for r in report_rows(results)}
    row = rows["correct", "eu", "cand"]
    assert row["labels"] == 0
    assert row["upper_90"] - row["lower_90"] > 2 * narrow
    assert row["verdict"] != "ready" and "labels in the cell" in row["reason"]
    us = results.cell("correct", "us", "cand")  # labelled: as fitted
    assert (us.value.lower, us.value.upper) == pytest.approx((0.645, 0.735), abs=1e-6)
    (cell,) = [
        c for c in results.candidate("cand").cells if c.region == "eu" and c.metric == "correct"
    ]
    assert cell.decision.verdict != "ready"
    style = rows["style", "eu", "cand"]  # a judge that never errs: widening moves nothing
    assert style["p_noninferior"] == 1.0 and style["verdict"] == "undecided"  # but unlabelled
    assert rows["style", "us", "cand"]["verdict"] == "ready"
    again = build_results(eval_set(), posts, source="full", counts=counts())
    assert report_rows(again) == report_rows(results)  # seeded: the same numbers every time
    assert any("judge's unknown lean" in f.message for f in results.flags)


def test_a_reason_never_shows_a_probability_on_the_wrong_side_of_the_threshold(tmp_path, capsys):
    """`changeover report`: cand in us has P(delta > -0.03) = 0.6002 (1201 of 2001 draws); at
    --threshold 0.6005 it is undecided, and its reason must not read "= 0.60 ... neither >=
    0.60" (the threshold cut to two decimals)."""
    import re

    from changeover.cli.main import main

    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as store:
        es = store.save_eval_set(eval_set())
        diag = Diagnostics(ok=True, max_rhat=1.004, min_ess_bulk=812, min_ess_tail=640)
        store.save_fit(es.id, Settings(seed=7), "x", diag, to_bytes(posteriors()))
    assert main(["report", str(path), "--format", "json", "--threshold", "0.6005"]) == 0
    report = json.loads(capsys.readouterr().out)
    cells = [c for m in report["metrics"] for row in m["rows"] for c in row["cells"]]
    us = next(c for c in report["metrics"][0]["rows"] if c["region"] == "us")["cells"][1]
    assert us["verdict"] == "undecided" and "neither >= 0.6005" in us["reason"]
    for cell in cells:
        if "neither" in (cell["reason"] or ""):  # undecided on the probabilities themselves
            for shown in re.findall(r"\) = ([0-9.]+)", cell["reason"]):
                assert float(shown) < 0.6005, cell["reason"]
