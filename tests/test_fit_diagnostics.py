"""A fit's diagnostics are a typed value (core.types.Diagnostics) from the fitter to the store,
and their stored form is the one fits were kept in before: the same bytes, and old fits load."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import numpy as np
import pytest
from helpers import canned_fitter, make_workspace

from changeover.core.model import fit
from changeover.core.render.report import render
from changeover.core.types import ESS_MIN, RHAT_MAX, Diagnostics
from changeover.core.workspace import Workspace

# ---- the dicts core/model/fit.py built before the diagnostics were typed (issue 23) ----------


def old_judge(d: dict) -> dict:
    reasons = []
    if not d["max_rhat"] <= RHAT_MAX:
        reasons.append(f"R-hat {d['max_rhat']:.3f} > {RHAT_MAX}")
    if not min(d["min_ess_bulk"], d["min_ess_tail"]) >= ESS_MIN:
        reasons.append(f"ESS {min(d['min_ess_bulk'], d['min_ess_tail']):.0f} < {ESS_MIN}")
    if d["divergences"]:
        reasons.append(f"{d['divergences']} divergent transitions")
    return {**d, "ok": not reasons, "reasons": reasons}


def old_overall(per_metric: dict, sampler: str) -> dict:
    if not per_metric:
        return {
            "max_rhat": float("nan"),
            "min_ess_bulk": float("nan"),
            "min_ess_tail": float("nan"),
            "divergences": 0,
            "ok": False,
            "reasons": ["no metrics"],
            "sampler": sampler,
            "per_metric": {},
        }
    d = {
        "max_rhat": max(v["max_rhat"] for v in per_metric.values()),
        "min_ess_bulk": min(v["min_ess_bulk"] for v in per_metric.values()),
        "min_ess_tail": min(v["min_ess_tail"] for v in per_metric.values()),
        "divergences": sum(v["divergences"] for v in per_metric.values()),
    }
    d = old_judge(d)
    d["reasons"] = [f"{m}: {r}" for m, v in per_metric.items() for r in v["reasons"]]
    return {**d, "sampler": sampler, "per_metric": per_metric}


def stored(d: Diagnostics) -> str:
    """What the fits table holds (core/store/fits.py)."""
    return json.dumps(d.to_dict())


def draws(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(p [C, D, M, R, L], confusion [C, D, M, R, L, L]) that mix well, mix badly, or have one
    chain (no R-hat: NaN)."""
    rng = np.random.default_rng(seed)
    chains = 1 if kind == "one chain" else 4
    p = rng.normal(size=(chains, 500, 2, 2, 2))
    if kind == "apart":
        p += np.arange(chains)[:, None, None, None, None]
    return p, rng.normal(size=(chains, 500, 2, 2, 2, 2))


CASES = {
    "all pass": [("correct", "mixed", 0), ("refused", "mixed", 0)],
    "one fails": [("correct", "mixed", 0), ("refused", "apart", 3)],
    "nan first": [("correct", "one chain", 0), ("refused", "mixed", 0)],
    "nan last": [("correct", "mixed", 1), ("refused", "one chain", 0)],
    "no metrics": [],
}


@pytest.mark.parametrize("case", CASES)
def test_the_stored_form_is_byte_for_byte_what_the_dicts_made(case):
    per_metric, old_per_metric = {}, {}
    for k, (name, kind, divergences) in enumerate(CASES[case]):
        d = fit.diagnose(*draws(kind, k), divergences)
        per_metric[name] = replace(d, sampler="nutpie")
        numbers = {
            "max_rhat": d.max_rhat,
            "min_ess_bulk": d.min_ess_bulk,
            "min_ess_tail": d.min_ess_tail,
            "divergences": divergences,
        }
        old_per_metric[name] = {**old_judge(numbers), "sampler": "nutpie"}
    new = fit._overall(per_metric, "nutpie")
    old = Diagnostics.from_dict(old_overall(old_per_metric, "nutpie"))
    assert stored(new) == stored(old)
    assert new.ok == (case == "all pass")


def test_the_cases_exercise_what_they_claim():
    """Passing, failing and NaN numbers all reach the comparison above."""
    mixed, apart, one = (fit.diagnose(*draws(k, 0), 0) for k in ("mixed", "apart", "one chain"))
    assert mixed.ok and mixed.reasons == ()
    assert not apart.ok and apart.max_rhat > RHAT_MAX
    assert not one.ok and np.isnan(one.max_rhat)


OLD_FORM = (
    '{"ok": false, "max_rhat": 1.0234, "min_ess_bulk": 310.2, "min_ess_tail": NaN, '
    '"divergences": 2, "reasons": ["correct: R-hat 1.023 > 1.01", "correct: ESS 310 < 400", '
    '"style: 2 divergent transitions"], "sampler": "nutpie", "per_metric": {"correct": '
    '{"ok": false, "max_rhat": 1.0234, "min_ess_bulk": 310.2, "min_ess_tail": 702.5, '
    '"divergences": 0, "reasons": ["R-hat 1.023 > 1.01", "ESS 310 < 400"], "sampler": "nutpie"}, '
    '"style": {"ok": false, "max_rhat": 1.002, "min_ess_bulk": 980.0, "min_ess_tail": NaN, '
    '"divergences": 2, "reasons": ["2 divergent transitions"], "sampler": "nutpie"}}}'
)


def test_a_fit_kept_before_loads_and_reads_back_the_same(tmp_path):
    """A fit whose diagnostics an earlier version wrote (the dict form, as SQLite holds it)
    loads as the typed value, serialises to the same text, and the report's JSON carries it
    (NaN as null, as before)."""
    path = tmp_path / "ws.changeover"
    with Workspace.open(path, create=True, fitter=canned_fitter()) as ws:
        es = make_workspace(ws.store)
        ws.fit(es)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE fits SET diagnostics = ?", (OLD_FORM,))
    con.close()
    with Workspace.open(path, read_only=True) as ws:
        kept = ws.latest_fit(es)
        assert kept is not None and stored(kept.diagnostics) == OLD_FORM
        d = kept.diagnostics
        assert not d.ok and d.divergences == 2 and d.per_metric["correct"].max_rhat == 1.0234
        assert d.failures()[0] == "correct: R-hat 1.023 > 1.01"
        report = json.loads(render(ws.results(es), "json"))
    assert report["diagnostics"] == json.loads(OLD_FORM.replace("NaN", "null"))
