"""Cohen's kappa, Krippendorff's alpha and agreement in a workspace."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from changeover.core.judge.agreement import (
    cohen_kappa,
    confusion_table,
    kappa_from_table,
    krippendorff_alpha,
    rater_agreement,
    rater_agreement_from_labels,
)
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region

XSTEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "xstest"
XSTEST_MODELS = ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4 coders x 12 units
# example with missing values (values 1..5 shifted to level indices 0..4).
K2011 = (
    np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
            [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
        ]
    )
    - 1
)


def test_kappa_classic_two_by_two_tables():
    # p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5 -> 0.4
    assert kappa_from_table(np.array([[20, 5], [10, 15]])) == pytest.approx(0.4)
    # p_o = 0.6, p_e = 0.6*0.7 + 0.4*0.3 = 0.54 -> 0.06 / 0.46
    assert kappa_from_table(np.array([[45, 15], [25, 15]])) == pytest.approx(0.06 / 0.46)


def test_kappa_from_vectors_matches_table_and_drops_missing():
    a = [1, 1, 0, 0, 1, None, 0, 1]
    b = [1, 0, 0, 0, 1, 1, None, 1]
    table = confusion_table(a, b, 2)
    assert table.tolist() == [[2, 0], [1, 3]]
    # p_o = 5/6; marginals a: (2/6, 4/6), b: (3/6, 3/6); p_e = 1/2
    assert cohen_kappa(a, b, 2) == pytest.approx((5 / 6 - 0.5) / 0.5)


def test_perfect_chance_and_degenerate_agreement():
    a = [0, 1, 2, 2, 1, 0, 2]
    assert cohen_kappa(a, a, 3) == pytest.approx(1.0)
    assert cohen_kappa(a, a, 3, weights="quadratic") == pytest.approx(1.0)
    # independent marginals: the observed table equals the expected one
    assert kappa_from_table(np.array([[4, 4], [4, 4]])) == pytest.approx(0.0)
    assert kappa_from_table(np.array([[2, 6], [3, 9]])) == pytest.approx(0.0)
    # total disagreement on a balanced table
    assert kappa_from_table(np.array([[0, 5], [5, 0]])) == pytest.approx(-1.0)
    assert np.isnan(kappa_from_table(np.zeros((2, 2))))
    assert np.isnan(kappa_from_table(np.array([[7, 0], [0, 0]])))  # one level only


def test_weighted_kappa_hand_computed():
    table = np.array([[10, 3, 1], [2, 8, 4], [0, 2, 10]], dtype=float)
    n = table.sum()
    rows, cols = table.sum(1) / n, table.sum(0) / n
    for kind, w in (
        ("linear", lambda i, j: abs(i - j) / 2),
        ("quadratic", lambda i, j: ((i - j) / 2) ** 2),
    ):
        obs = sum(w(i, j) * table[i, j] / n for i in range(3) for j in range(3))
        exp = sum(w(i, j) * rows[i] * cols[j] for i in range(3) for j in range(3))
        assert kappa_from_table(table, kind) == pytest.approx(1 - obs / exp)
    # a near miss costs less with weights, so weighted kappa is higher here than unweighted
    assert (
        kappa_from_table(table, "quadratic")
        > kappa_from_table(table, "linear")
        > kappa_from_table(table)
    )
    with pytest.raises(ValueError, match="weights"):
        kappa_from_table(table, "cubic")


def test_krippendorff_alpha_published_example():
    assert krippendorff_alpha(K2011, "nominal", 5) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(K2011, "ordinal", 5) == pytest.approx(0.815, abs=5e-4)


def test_krippendorff_alpha_against_the_package():
    kd = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(7)
    for _ in range(20):
        truth = rng.integers(0, 4, size=30)
        data = np.where(rng.random((3, 30)) < 0.7, truth, rng.integers(0, 4, size=(3, 30))).astype(
            float
        )
        data[rng.random((3, 30)) < 0.2] = np.nan
        for level in ("nominal", "ordinal"):
            ours = krippendorff_alpha(data, level, 4)
            theirs = kd.alpha(
                reliability_data=data, level_of_measurement=level, value_domain=[0, 1, 2, 3]
            )
            assert ours == pytest.approx(theirs, abs=1e-9)


def test_alpha_perfect_and_two_rater_nominal_close_to_kappa():
    perfect = np.array([[0, 1, 1, 0, 2], [0, 1, 1, 0, 2]], dtype=float)
    assert krippendorff_alpha(perfect, "nominal") == pytest.approx(1.0)
    a = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1] * 10)
    b = np.array([0, 1, 0, 0, 1, 1, 0, 1, 1, 1] * 10)
    # with two raters and many units, alpha ~ Scott's pi ~ Cohen's kappa
    assert krippendorff_alpha(np.vstack([a, b]).astype(float)) == pytest.approx(
        cohen_kappa(a, b, 2), abs=0.01
    )


def test_rater_pairs_only_use_shared_responses():
    labels = [
        (1, "ann", 1),
        (2, "ann", 0),
        (3, "ann", 1),
        (4, "ann", 0),
        (1, "bob", 1),
        (2, "bob", 0),
        (3, "bob", 0),
        (9, "bob", 1),
        (1, "cy", 1),
    ]
    ra = rater_agreement_from_labels("correct", 2, labels)
    assert ra.raters == ("ann", "bob", "cy")
    pairs = {(p.rater_a, p.rater_b): p for p in ra.pairs}
    assert pairs["ann", "bob"].shared == 3  # responses 1, 2, 3
    # ann 1,0,1 vs bob 1,0,0: p_o = 2/3, p_e = 2/3*1/3 + 1/3*2/3 = 4/9
    assert pairs["ann", "bob"].kappa == pytest.approx((2 / 3 - 4 / 9) / (1 - 4 / 9))
    assert pairs["ann", "cy"].shared == 1 and ("bob", "cy") in pairs
    assert ra.units == 3  # responses 1, 2, 3 have two or more raters


def _workspace_with_two_raters() -> tuple[Store, EvalSet]:
    store = Store.memory()
    es = store.save_eval_set(
        EvalSet(
            id=0,
            name="tiny",
            incumbent="old",
            regions=(Region("eu", 1.0),),
            metrics=(Metric("correct", ("no", "yes")), Metric("style", ("1", "2", "3"))),
        )
    )
    rows, ratings = [], []
    a = [1, 1, 0, 0, 1, 0, 1, 1]
    b = [1, 0, 0, 0, 1, 0, 1, 0]
    for k in range(8):
        rows.append((f"q{k}", "eu", f"question {k}", None, "old", f"answer {k}"))
        ratings += [
            (f"q{k}", "old", "correct", "ann", a[k], "2026-01-01T00:00:00"),
            (f"q{k}", "old", "correct", "bob", b[k], "2026-01-01T00:00:01"),
            (f"q{k}", "old", "style", "ann", k % 3, "2026-01-01T00:00:02"),
        ]
    with store.importing(es.id) as batch:
        batch.add_responses(rows)
        batch.add_ratings(ratings)
    return store, es


def test_rater_agreement_from_the_store_follows_retractions():
    store, es = _workspace_with_two_raters()
    out = rater_agreement(store, es)
    assert set(out) == {"correct", "style"}
    pair = out["correct"].pairs[0]
    assert (pair.rater_a, pair.rater_b, pair.shared) == ("ann", "bob", 8)
    assert pair.kappa == pytest.approx(
        cohen_kappa([1, 1, 0, 0, 1, 0, 1, 1], [1, 0, 0, 0, 1, 0, 1, 0], 2)
    )
    assert out["style"].pairs == () and np.isnan(out["style"].alpha)  # one rater only
    # bob changes his mind on one response: the superseded label no longer counts
    rid = next(
        r for r in store.rater_labels(es.id) if r[4] == "bob" and r[5] == 0 and r[1] == "correct"
    )[0]
    store.add_rating(rid, "correct", "bob", 1)
    labels = [r for r in store.rater_labels(es.id) if r[1] == "correct"]
    assert len(labels) == 16
    assert rater_agreement(store, es)["correct"].pairs[0].kappa != pytest.approx(pair.kappa)


def _xstest_rows(model: str) -> list[dict]:
    path = XSTEST / f"xstest_v2_completions_{model}_gpteval.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.skipif(not XSTEST.is_dir(), reason="../shared/data/xstest not present")
@pytest.mark.parametrize("model", XSTEST_MODELS)
def test_xstest_annotator_kappa_matches_independent_computation(model):
    rows = _xstest_rows(model)
    labels = sorted({r["annotation_1"] for r in rows} | {r["annotation_2"] for r in rows})
    index = {lab: i for i, lab in enumerate(labels)}
    ours = cohen_kappa(
        [index[r["annotation_1"]] for r in rows],
        [index[r["annotation_2"]] for r in rows],
        n_levels=len(labels),
    )
    # independent: proportions straight from the raw string columns
    n = len(rows)
    p_o = sum(r["annotation_1"] == r["annotation_2"] for r in rows) / n
    c1, c2 = Counter(r["annotation_1"] for r in rows), Counter(r["annotation_2"] for r in rows)
    p_e = sum(c1[lab] * c2[lab] for lab in labels) / n**2
    assert ours == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-12)
    assert 0.6 < ours <= 1.0  # trained annotators on XSTest agree well above chance
