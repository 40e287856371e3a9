"""The real XSTest data imports as 5 models x 450 responses with two raters' labels."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from xstest_data import MODELS, build_xstest_files, xstest_dir

from changeover.core.importing.responses import import_file
from changeover.core.store import Store

pytestmark = pytest.mark.skipif(
    xstest_dir() is None, reason="XSTest data (../shared/data/xstest) absent"
)

LABELS = {"1_full_compliance": 0, "2_full_refusal": 1, "3_partial_refusal": 1}


def _rows(model: str, judge: str) -> list[dict[str, str]]:
    path = xstest_dir() / f"xstest_v2_completions_{model}_{judge}.csv"
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _file_counts(judge: str, column: str) -> tuple[Counter, Counter, int]:
    """From the CSVs, with the csv module: judged (model, region, level) counts, human label
    counts per (model, rater, level), and how many judge values are not one of the labels."""
    judged, human, free = Counter(), Counter(), 0
    for model in MODELS:
        for row in _rows(model, judge):
            region = "contrast" if row["type"].startswith("contrast_") else "safe"
            level = LABELS.get(row[column].strip())
            free += level is None
            judged[(model, region, level)] += 1
            for rater in ("annotation_1", "annotation_2"):
                human[(model, rater.replace("annotation", "annotator"), LABELS[row[rater]])] += 1
    return judged, human, free


@pytest.fixture(scope="module")
def gpteval(tmp_path_factory):
    data, spec = build_xstest_files(tmp_path_factory.mktemp("xstest"), judge="gpteval")
    store = Store.memory()
    report = import_file(store, data, spec)
    return store, report


def test_five_models_of_450_responses_with_two_raters(gpteval):
    store, report = gpteval
    es = report.eval_set
    assert sorted(store.models(es.id)) == sorted(MODELS)
    stats = store.stats(es.id)
    assert stats.items == 450
    assert stats.responses == 5 * 450
    assert stats.ratings == 2 * 5 * 450
    assert stats.labelled_responses == 5 * 450
    per_model = Counter()
    for _metric, model, _region, _level, n in store.judge_level_counts(es.id):
        per_model[model] += n
    assert per_model == {m: 450 for m in MODELS}
    raters = {r.rater for r in store.ratings(es.id)}
    assert raters == {"annotator_1", "annotator_2"}
    assert dict(zip(es.region_names, (r.traffic for r in es.regions))) == {
        "safe": 250,
        "contrast": 200,
    }


def test_judged_counts_per_model_region_and_level_match_the_files(gpteval):
    store, report = gpteval
    expected, _, _ = _file_counts("gpteval", "gpt4_label")
    got = Counter(
        {
            (model, region, level): n
            for metric, model, region, level, n in store.judge_level_counts(report.eval_set.id)
        }
    )
    assert got == expected


def test_free_text_verdicts_become_missing_not_refusals(gpteval):
    store, report = gpteval
    _, _, free = _file_counts("gpteval", "gpt4_label")
    assert free > 0
    assert report.missing_judgments == {"refused": free}
    assert store.stats(report.eval_set.id).judgments_missing == free
    # Most of them read like refusals ("I'm sorry, but I can't assist ..."); none is counted as one.
    free_rows = [
        (m, r["id"]) for m in MODELS for r in _rows(m, "gpteval") if r["gpt4_label"] not in LABELS
    ]
    refusals = {
        (model, region): n
        for metric, model, region, level, n in store.judge_level_counts(report.eval_set.id)
        if level == 1
    }
    expected, _, _ = _file_counts("gpteval", "gpt4_label")
    assert refusals == {(m, r): n for (m, r, level), n in expected.items() if level == 1}
    assert len(free_rows) == free
    assert "unmappable -> missing" in report.summary()


def test_human_labels_per_model_rater_and_level_match_the_files(gpteval):
    store, report = gpteval
    _, expected, _ = _file_counts("gpteval", "gpt4_label")
    model_of = {}
    got = Counter()
    for rating in store.ratings(report.eval_set.id):
        if rating.response_id not in model_of:
            model_of[rating.response_id] = store.response_view(rating.response_id).response.model
        got[(model_of[rating.response_id], rating.rater, rating.value)] += 1
    assert got == expected


def test_string_match_judge_imports_without_missing(tmp_path):
    data, spec = build_xstest_files(tmp_path, judge="streval")
    store = Store.memory()
    report = import_file(store, data, spec)
    expected, _, free = _file_counts("streval", "strmatch_label")
    assert free == 0 and report.missing_judgments == {"refused": 0}
    got = Counter(
        {
            (model, region, level): n
            for metric, model, region, level, n in store.judge_level_counts(report.eval_set.id)
        }
    )
    assert got == expected
