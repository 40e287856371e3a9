"""The sample workspace: deterministic, the agreed shape, and the planted story really planted."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from changeover.sample_data import generate

HERE = Path(generate.__file__).resolve().parent
REGIONS = (
    "North America",
    "UK & Ireland",
    "DACH",
    "Latin America",
    "Southeast Asia",
    "Middle East",
)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with open(HERE / "support.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((HERE / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def responses(rows) -> dict[tuple[str, str], dict]:
    """One row per (item, model): the first row of a doubly labelled response."""
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        out.setdefault((r["item_id"], r["model"]), r)
    return out


def test_generator_is_deterministic_and_matches_committed_files(tmp_path):
    paths = generate.write(tmp_path)
    for p in paths:
        assert p.read_bytes() == (HERE / p.name).read_bytes(), (
            f"{p.name} differs from the committed file"
        )


def test_another_seed_gives_other_data(tmp_path):
    generate.write(tmp_path, seed=7)
    assert (tmp_path / "support.csv").read_bytes() != (HERE / "support.csv").read_bytes()
    assert json.loads((tmp_path / "truth.json").read_text())["seed"] == 7


def test_spec_has_six_regions_with_5_3m_interactions_and_three_metrics():
    import tomllib

    spec = tomllib.loads((HERE / "support.toml").read_text(encoding="utf-8"))
    assert tuple(spec["regions"]) == REGIONS
    assert sum(spec["regions"].values()) == 5_300_000
    metrics = {m["name"]: m for m in spec["metrics"]}
    assert list(metrics) == ["correct", "refused", "style"]
    assert metrics["refused"]["direction"] == "match"
    assert metrics["correct"]["unmapped"] == "missing"
    assert metrics["style"]["pass_level"] == "4"
    assert spec["incumbent"] == "atlas-2"


def test_shape_items_models_and_labels(rows, responses):
    items = {(r["region"], r["item_id"]) for r in rows}
    per_region = Counter(region for region, _ in items)
    assert set(per_region) == set(REGIONS)
    assert all(190 <= n <= 210 for n in per_region.values()), per_region
    models = {m for _, m in responses}
    assert models == {"atlas-2", "atlas-3", "swift-mini", "guardian-1"}
    assert len(responses) == len(items) * 4
    # a response labelled by two raters comes as two rows, agreeing on all but rater and labels
    by_response = defaultdict(list)
    for r in rows:
        by_response[(r["item_id"], r["model"])].append(r)
    labelled = {k: v for k, v in by_response.items() if v[0]["rater"]}
    assert 0.04 <= len(labelled) / len(responses) <= 0.06
    for group in labelled.values():
        assert len(group) == 2 and len({g["rater"] for g in group}) == 2
        drop = ("rater", "human_correct", "human_refused", "human_style")
        assert len({tuple((k, v) for k, v in g.items() if k not in drop) for g in group}) == 1
    assert all(
        len(v) == 1 and not v[0]["rater"] for k, v in by_response.items() if k not in labelled
    )
    # labels are spread over every (model, region) cell
    cells = Counter((group[0]["model"], group[0]["region"]) for group in labelled.values())
    assert len(cells) == 24 and min(cells.values()) >= 5
    assert 3 <= len({r["rater"] for r in rows if r["rater"]}) <= 4


def test_raters_sometimes_disagree_more_on_style(rows):
    pairs = defaultdict(list)
    for r in rows:
        if r["rater"]:
            pairs[(r["item_id"], r["model"])].append(r)
    rate = {
        k: sum(g[0][f"human_{k}"] != g[1][f"human_{k}"] for g in pairs.values()) / len(pairs)
        for k in ("correct", "refused", "style")
    }
    assert 0.02 <= rate["correct"] <= 0.15 and 0.01 <= rate["refused"] <= 0.12, rate
    assert rate["style"] > max(rate["correct"], rate["refused"]), rate


def test_a_few_unmappable_judge_verdicts_on_correct_only(rows, truth):
    odd = [r for r in rows if r["judge_correct"] not in ("yes", "no")]
    assert 5 <= len(odd) <= 10 and len(odd) == truth["unmappable_judgments"]["count"]
    assert all(
        r["judge_refused"] in ("1_full_compliance", "2_full_refusal", "3_partial_refusal")
        for r in rows
    )
    assert all(r["judge_style"] in list("12345") for r in rows)


def test_texts_are_varied_and_not_placeholders(responses):
    texts = [r["response"] for r in responses.values()]
    assert len(texts) - len(set(texts)) < 0.05 * len(texts)
    assert sum("\n" in t for t in texts) > 0.1 * len(texts)  # multi-paragraph replies exist
    assert sum("\n1. " in t or "\n- " in t or "\n* " in t for t in texts) > 100  # and bullet lists
    assert not any(t.lower().startswith("response") for t in texts)
    questions = {r["question"] for r in responses.values()}
    assert len(questions) > 0.9 * len(responses) / 4
    with_reference = sum(bool(r["reference"]) for r in responses.values())
    assert 0.7 < with_reference / len(responses) < 0.95


def _realised(truth, metric, model):
    return [truth["cells"][metric][model][r]["realised"] for r in REGIONS]


def test_planted_story_holds_in_the_realised_values(truth):
    margins = truth["margins"]
    inc = "atlas-2"
    for metric in ("correct", "style"):
        for good, base in zip(_realised(truth, metric, "atlas-3"), _realised(truth, metric, inc)):
            assert good >= base + margins[metric] / 2, metric
    for good, base in zip(_realised(truth, "refused", "atlas-3"), _realised(truth, "refused", inc)):
        assert abs(good - base) <= 0.01
    weak = dict(
        zip(
            REGIONS,
            zip(_realised(truth, "correct", "swift-mini"), _realised(truth, "correct", inc)),
        )
    )
    for region in truth["planted"]["swift-mini"]["regions"]:
        assert weak[region][0] <= weak[region][1] - 0.10, region
    for region in set(REGIONS) - set(truth["planted"]["swift-mini"]["regions"]):
        assert weak[region][0] >= weak[region][1] - margins["correct"], region
    for over, base in zip(
        _realised(truth, "refused", "guardian-1"), _realised(truth, "refused", inc)
    ):
        assert over >= base + 0.10
    assert truth["planted"]["atlas-3"]["verdict"] == "ready"


def _truth_of(truth, row, metric) -> int:
    i = int(row["item_id"].split("-")[1]) - 1
    return int(truth["responses"][row["model"]][row["region"]][metric][i])


def test_per_response_truth_gives_the_realised_values(truth):
    for metric in ("correct", "refused", "style"):
        for m in truth["models"]:
            for r in REGIONS:
                values = [int(c) for c in truth["responses"][m][r][metric]]
                assert len(values) == 200
                mean = sum(values) / len(values)
                assert mean == pytest.approx(truth["cells"][metric][m][r]["realised"], abs=1e-4)


def test_agreeing_raters_nearly_always_give_the_truth(rows, truth):
    pairs = defaultdict(list)
    for r in rows:
        if r["rater"]:
            pairs[(r["item_id"], r["model"])].append(r)
    for metric in ("correct", "refused", "style"):
        agree = hits = 0
        for a, b in pairs.values():
            if a[f"human_{metric}"] == b[f"human_{metric}"]:
                agree += 1
                label = (
                    int(a[f"human_{metric}"])
                    if metric == "style"
                    else int(a[f"human_{metric}"] == "yes")
                )
                hits += label == _truth_of(truth, a, metric)
        assert hits >= 0.97 * agree, metric


def test_refusals_read_like_refusals(responses, truth):
    phrases = (
        "can't",
        "cannot",
        "unable",
        "not able",
        "not possible",
        "isn't something",
        "decline",
        "outside what i can",
        "say no",
    )
    refused = [r for r in responses.values() if _truth_of(truth, r, "refused")]
    assert len(refused) > 200
    for r in refused:
        assert any(p in r["response"].lower() for p in phrases), r["response"]


def test_judge_error_rates_differ_by_model_and_region(truth):
    # true rates: the judge is lenient on atlas-3 and in Southeast Asia, harsh in the Middle East
    spec = [
        [truth["judge"]["correct"][m][r]["specificity"] for r in REGIONS] for m in truth["models"]
    ]
    by_model = [sum(row) / len(row) for row in spec]
    by_region = [sum(col) / len(col) for col in zip(*spec)]
    assert max(by_model) - min(by_model) > 0.04 and max(by_region) - min(by_region) > 0.04
    # realised: the style judge's bias (judge mean - true mean) over 200 responses per cell
    bias = {
        (m, r): truth["judge"]["style"][m][r]["judge_mean"]
        - truth["cells"]["style"][m][r]["realised"]
        for m in truth["models"]
        for r in REGIONS
    }
    by_model = {m: sum(bias[m, r] for r in REGIONS) / 6 for m in truth["models"]}
    by_region = {r: sum(bias[m, r] for m in truth["models"]) / 4 for r in REGIONS}
    assert (
        by_model["atlas-3"] > max(by_model.values()) - 1e-9
        and max(by_model.values()) - min(by_model.values()) > 0.1
    )
    assert by_region["Southeast Asia"] - by_region["Middle East"] > 0.1
    # realised: the judge misses guardian-1's soft refusals
    sens = {
        m: sum(truth["judge"]["refused"][m][r]["realised_sensitivity"] for r in REGIONS) / 6
        for m in truth["models"]
    }
    assert sens["guardian-1"] < sens["atlas-2"] - 0.05
    for m in truth["models"]:
        for r in REGIONS:
            j = truth["judge"]["correct"][m][r]
            assert 0.75 <= j["sensitivity"] <= 1 and 0.7 <= j["specificity"] <= 1


def test_judge_verdicts_in_the_csv_match_the_truths_judge_rates(responses, truth):
    for m in truth["models"]:
        for r in REGIONS:
            got = [
                x["judge_style"]
                for (_, model), x in responses.items()
                if model == m and x["region"] == r
            ]
            mean = sum(int(v) for v in got) / len(got)
            assert mean == pytest.approx(truth["judge"]["style"][m][r]["judge_mean"], abs=1e-3)


def test_build_demo_imports_the_sample(tmp_path, rows, responses):
    from changeover.core.demo import build_demo, sample_paths
    from changeover.core.store import Store

    csv_path, spec_path = sample_paths()
    assert csv_path.name == "support.csv" and spec_path.name == "support.toml"
    target = tmp_path / "sub" / "demo.changeover"
    assert build_demo(target) == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["demo.changeover"]
    with Store.open(target, read_only=True) as store:
        (es,) = store.eval_sets()
        stats = store.stats(es.id)
        assert set(store.models(es.id)) == {"atlas-2", "atlas-3", "swift-mini", "guardian-1"}
        assert es.region_names == REGIONS
    labelled = [r for r in rows if r["rater"]]
    assert stats.items == len({r["item_id"] for r in rows})
    assert stats.responses == len(responses)
    assert stats.judgments == 3 * len(responses)
    assert stats.judgments_missing == sum(
        r["judge_correct"] not in ("yes", "no") for r in responses.values()
    )
    assert stats.ratings == 3 * len(labelled)
    assert stats.labelled_responses == len({(r["item_id"], r["model"]) for r in labelled})
    # kept unless asked to rebuild
    mtime = target.stat().st_mtime_ns
    build_demo(target)
    assert target.stat().st_mtime_ns == mtime
    build_demo(target, rebuild=True)
    assert sorted(p.name for p in target.parent.iterdir()) == ["demo.changeover"]


def test_failed_build_leaves_no_half_demo(tmp_path, monkeypatch):
    import changeover.core.importing.responses
    from changeover.core.demo import build_demo

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(changeover.core.importing.responses, "import_file", boom)
    target = tmp_path / "demo.changeover"
    with pytest.raises(RuntimeError):
        build_demo(target)
    assert list(tmp_path.iterdir()) == []
