"""Fitting glue and the `fit` / `report` commands: round trip through the fits table, stale
detection, excluded raters, cancel, and exit codes (with a canned fitter; one quick real fit)."""

from __future__ import annotations

import json
import signal
import threading
import time

import numpy as np
import pytest

import changeover.tui.cmd_fit as cmd_fit
from changeover.core.counts import counts_for, data_hash
from changeover.core.fitting import is_stale, latest_posteriors, run_fit
from changeover.core.instant import instant_posterior
from changeover.core.model import FitCancelled, FitResult, Settings
from changeover.core.store import Store
from changeover.core.types import BrowseFilter, ChangeoverError, EvalSet, Metric, Region
from changeover.tui.cli import main

T = "2026-01-01T00:00:00+00:00"
MODELS = ("inc", "good", "bad")
RATES = {"inc": 0.80, "good": 0.82, "bad": 0.60}


def spec(name: str = "support") -> EvalSet:
    return EvalSet(
        0,
        name,
        "inc",
        (Region("eu", 3.0), Region("us", 1.0)),
        (
            Metric("correct", ("no", "yes"), "higher", 0.05),
            Metric("style", ("1", "2", "3"), "higher", 0.2, pass_level=2),
        ),
    )


def fill(store: Store, es: EvalSet, items: int = 60, labelled: int = 35, seed: int = 0) -> EvalSet:
    """Responses of three models; the judge is 90% right; `labelled` items carry a human label."""
    rng = np.random.default_rng(seed)
    es = store.save_eval_set(es)
    responses, judgments, ratings = [], [], []
    for k in range(items):
        for region in ("eu", "us"):
            item = f"{region}-{k}"
            for model in MODELS:
                truth = int(rng.random() < RATES[model])
                judge = truth if rng.random() < 0.9 else 1 - truth
                style = int(rng.integers(0, 3))
                responses.append((item, region, f"q {item}", None, model, f"text {item} {model}"))
                judgments += [
                    (item, model, "correct", "judge", judge, None, None, None),
                    (item, model, "style", "judge", style, None, None, None),
                ]
                if k < labelled:
                    ratings += [
                        (item, model, "correct", "ann", truth, T),
                        (item, model, "style", "ann", style, T),
                    ]
    with store.importing(es.id) as batch:
        batch.add_responses(responses)
        batch.add_judgments(judgments)
        batch.add_ratings(ratings)
    return store.eval_set(es.name)


def canned_fitter(calls: list | None = None):
    """Instant posteriors dressed as a fit: real shapes and flags, no sampling."""

    def fit(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        if calls is not None:
            calls.append((counts, list(weights), settings))
        posts = []
        for k, (name, c) in enumerate(counts.items()):
            if cancel is not None and cancel.is_set():
                raise FitCancelled("cancelled")
            if on_progress:
                on_progress(k / len(counts), name)
            posts.append(
                instant_posterior(c, weights, 500, settings.seed, (pass_levels or {}).get(name))
            )
        diag = {
            "max_rhat": 1.002,
            "min_ess_bulk": 900.0,
            "min_ess_tail": 700.0,
            "divergences": 0,
            "ok": True,
            "sampler": "canned",
            "per_metric": {},
            "reasons": [],
        }
        return FitResult(posts, diag, settings, 0.01)

    return fit


@pytest.fixture
def workspace():
    store = Store.memory()
    return store, fill(store, spec())


def test_run_fit_round_trip(workspace):
    store, es = workspace
    calls: list = []
    progress: list = []
    fit = run_fit(
        store,
        es,
        Settings.quick(seed=3),
        on_progress=lambda f, m: progress.append(f),
        fitter=canned_fitter(calls),
    )
    counts = counts_for(store, es)
    assert fit.data_hash == data_hash(counts)
    assert fit.settings["seed"] == 3 and fit.settings["exclude_raters"] == []
    assert fit.diagnostics["ok"] is True and progress
    assert set(fit.summary["verdicts"]) == {"good", "bad"}
    assert fit.summary["verdicts"]["bad"]["verdict"] == "not ready"
    assert calls[0][1] == pytest.approx([0.75, 0.25])
    again, posts = latest_posteriors(store, es)
    assert again.id == fit.id and [p.metric for p in posts] == ["correct", "style"]
    expected = instant_posterior(counts["correct"], [0.75, 0.25], 500, 3)
    np.testing.assert_allclose(posts[0].p, expected.p, atol=1e-6)  # float32 in storage
    assert posts[0].flags["cell_labels"] == expected.flags["cell_labels"]
    assert posts[1].pass_level == 2
    assert latest_posteriors(store, es, fit.id)[0].id == fit.id


def test_no_fit_and_foreign_fit(workspace):
    store, es = workspace
    assert latest_posteriors(store, es) == (None, [])
    other = fill(store, spec("other"), items=5, labelled=2)
    fit = run_fit(store, other, Settings.quick(), fitter=canned_fitter())
    with pytest.raises(ChangeoverError, match="another eval set"):
        latest_posteriors(store, es, fit.id)


def test_stale_after_a_new_label_and_fresh_after_undo(workspace):
    store, es = workspace
    fit = run_fit(store, es, Settings.quick(), fitter=canned_fitter())
    assert not is_stale(store, es, fit)
    unlabelled = store.browse(es.id, BrowseFilter(unrated=True), limit=1)[0]
    rating = store.add_rating(unlabelled.response_id, "correct", "bob", 1)
    assert is_stale(store, es, fit)
    store.retract(rating.id, "bob")
    assert not is_stale(store, es, fit)


def test_excluded_raters_stay_excluded(workspace):
    store, es = workspace
    fit = run_fit(store, es, Settings.quick(), exclude_raters=["ann"], fitter=canned_fitter())
    assert fit.settings["exclude_raters"] == ["ann"]
    assert (
        fit.data_hash
        == data_hash(counts_for(store, es, ["ann"]))
        != data_hash(counts_for(store, es))
    )
    _, posts = latest_posteriors(store, es)
    assert np.asarray(posts[0].flags["cell_labels"]).sum() == 0
    # A new label by the excluded rater does not make the fit stale.
    row = store.browse(es.id, limit=1)[0]
    store.add_rating(row.response_id, "correct", "ann", 0)
    assert not is_stale(store, es, fit)
    # Counts taken with every rater are not reused for a fit that left one out.
    assert not is_stale(store, es, fit, counts_for(store, es))


def test_cancel_stores_nothing(workspace):
    store, es = workspace
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(FitCancelled):
        run_fit(store, es, Settings.quick(), cancel=cancel, fitter=canned_fitter())
    assert store.fits(es.id) == []


# ---- the commands ------------------------------------------------------------------------------


@pytest.fixture
def ws_file(tmp_path, monkeypatch):
    path = tmp_path / "ws.changeover"
    with Store.open(path, create=True) as store:
        fill(store, spec())
    monkeypatch.setattr(cmd_fit, "FITTER", canned_fitter())
    return path


def test_fit_command(ws_file, capsys):
    assert main(["fit", str(ws_file), "--quick", "--seed", "11"]) == 0
    out = capsys.readouterr().out
    assert "fit #1 of support" in out and "diagnostics ok" in out
    assert "bad" in out and "not ready" in out
    with Store.open(ws_file, read_only=True) as store:
        fit = store.fits(1)[0]
        assert fit.settings["seed"] == 11 and fit.settings["draws"] == Settings.quick().draws


def test_fit_exclude_rater_and_unknown_eval_set(ws_file, capsys):
    assert main(["fit", str(ws_file), "--exclude-rater", "ann"]) == 0
    assert "left out raters: ann" in capsys.readouterr().out
    assert main(["fit", str(ws_file), "--eval-set", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["fit", str(ws_file.with_name("missing.changeover"))]) == 1


def test_several_eval_sets_need_a_name(ws_file, capsys):
    with Store.open(ws_file) as store:
        fill(store, spec("second"), items=4, labelled=1)
    for cmd in ("fit", "report"):
        assert main([cmd, str(ws_file)]) == 2
        err = capsys.readouterr().err
        assert "'support'" in err and "'second'" in err and "--eval-set" in err
    assert main(["fit", str(ws_file), "--eval-set", "second"]) == 0


def test_no_eval_sets(tmp_path, capsys):
    path = tmp_path / "empty.changeover"
    Store.open(path, create=True).close()
    assert main(["fit", str(path)]) == 1
    assert "no eval sets" in capsys.readouterr().err


def test_ctrl_c_cancels_cleanly(ws_file, capsys, monkeypatch):
    def slow_fitter(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C mid-fit
        if cancel.wait(10):
            raise FitCancelled("cancelled")
        raise AssertionError("the cancel event was never set")

    monkeypatch.setattr(cmd_fit, "FITTER", slow_fitter)
    assert main(["fit", str(ws_file)]) == 130
    assert "cancelled; nothing was stored" in capsys.readouterr().err
    with Store.open(ws_file, read_only=True) as store:
        assert store.fits(1) == []


def test_report_command(ws_file, capsys):
    assert main(["report", str(ws_file)]) == 1
    err = capsys.readouterr().err
    assert "no fit yet" in err and "changeover fit" in err
    assert main(["fit", str(ws_file)]) == 0
    capsys.readouterr()
    assert main(["report", str(ws_file)]) == 0
    out, err = capsys.readouterr()
    assert "== correct ==" in out and "== verdicts ==" in out and err == ""
    assert main(["report", str(ws_file), "--format", "json", "--metric", "style"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "changeover.report/1" and [m["name"] for m in data["metrics"]] == [
        "style"
    ]
    assert data["fit"]["id"] == 1 and data["fit"]["stale"] is False
    assert main(["report", str(ws_file), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("eval_set,fit_id,metric")
    assert main(["report", str(ws_file), "--format", "markdown", "--fit", "1"]) == 0
    assert capsys.readouterr().out.startswith("# changeover report")
    assert main(["report", str(ws_file), "--fit", "99"]) == 1
    assert main(["report", str(ws_file), "--metric", "nope"]) == 1
    assert "no metric 'nope'" in capsys.readouterr().err


def test_report_warns_when_stale(ws_file, capsys):
    assert main(["fit", str(ws_file)]) == 0
    with Store.open(ws_file) as store:
        row = store.browse(1, limit=1)[0]
        store.add_rating(row.response_id, "correct", "zed", 0)
    capsys.readouterr()
    assert main(["report", str(ws_file)]) == 0
    out, err = capsys.readouterr()
    assert "fit #1 is stale" in err and "[stale_fit]" in out


@pytest.mark.slow
def test_quick_real_fit():
    """The glue with the real model (one yes/no metric, few draws: compilation dominates)."""
    store = Store.memory()
    one = spec()
    es = fill(
        store,
        EvalSet(0, one.name, one.incumbent, one.regions, one.metrics[:1]),
        items=40,
        labelled=30,
    )
    start = time.perf_counter()
    fit = run_fit(store, es, Settings.quick(seed=1, draws=150, tune=150))
    elapsed = time.perf_counter() - start
    _, posts = latest_posteriors(store, es)
    assert [p.metric for p in posts] == ["correct"] and posts[0].source == "full"
    q = posts[0].overall()  # [S, M]
    assert q[:, 2].mean() < q[:, 0].mean() - 0.1  # "bad" is right 60% of the time, inc 80%
    assert set(fit.summary["verdicts"]) == {"good", "bad"}
    assert fit.summary["verdicts"]["bad"]["verdict"] != "ready"
    assert not is_stale(store, es, fit)
    print(f"quick real fit: {elapsed:.1f} s")


def test_fit_target_accept_is_kept_and_checked(ws_file, capsys):
    assert main(["fit", str(ws_file), "--quick", "--target-accept", "0.98"]) == 0
    with Store.open(ws_file, read_only=True) as store:
        assert store.fits(1)[0].settings["target_accept"] == 0.98
    for bad in ("1.5", "0.2", "high"):
        with pytest.raises(SystemExit) as exc:
            main(["fit", str(ws_file), "--target-accept", bad])
        assert exc.value.code == 2
        assert "--target-accept" in capsys.readouterr().err


def test_a_failed_fit_says_which_metric_and_what_to_do(workspace):
    from changeover.core.report import build_report

    store, es = workspace
    diag = {
        "max_rhat": 1.003,
        "min_ess_bulk": 900.0,
        "min_ess_tail": 700.0,
        "divergences": 1,
        "ok": False,
        "sampler": "nutpie",
        "reasons": ["style: 1 divergent transitions"],
    }

    def flagged(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        result = canned_fitter()(counts, weights, settings, on_progress, cancel, pass_levels)
        return FitResult(result.posteriors, diag, settings, 0.01)

    quick = cmd_fit.fit_summary_text(run_fit(store, es, Settings.quick(), fitter=flagged), es)
    assert "FAILED" in quick and "fit without --quick" in quick and "--target-accept" not in quick
    fit = run_fit(store, es, Settings(), fitter=flagged)
    text = cmd_fit.fit_summary_text(fit, es, "ws.changeover")
    assert "FAILED" in text and "style: 1 divergent transitions" in text
    assert "--seed" in text and "--target-accept 0.98" in text
    kept, posts = latest_posteriors(store, es)
    flag = next(f for f in build_report(es, posts, fit=kept).flags if f.kind == "diagnostics")
    assert (
        "style: 1 divergent transitions" in flag.message and "--target-accept 0.98" in flag.message
    )


def test_a_refit_after_a_failed_fit_of_the_same_data_draws_anew(workspace):
    """Same seed and data give the same draws, so refitting them after a failed fit would fail
    again: the next seed is used, unless the seed was given."""
    store, es = workspace
    diag = {"ok": False, "reasons": ["style: 1 divergent transitions"], "divergences": 1}
    seeds = []

    def failing(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        seeds.append(settings.seed)
        result = canned_fitter()(counts, weights, settings, on_progress, cancel, pass_levels)
        return FitResult(result.posteriors, {**result.diagnostics, **diag}, settings, 0.01)

    base = Settings.quick(seed=40)
    run_fit(store, es, base, fitter=failing, vary_seed=True)
    second = run_fit(store, es, base, fitter=failing, vary_seed=True)
    assert seeds == [40, 41] and second.settings["seed"] == 41
    run_fit(store, es, base, fitter=failing)  # a seed asked for is kept
    after_failure = run_fit(store, es, base, fitter=canned_fitter(), vary_seed=True)
    assert after_failure.settings["seed"] == 41  # the last one (seed 40) failed
    ok = run_fit(store, es, base, fitter=canned_fitter(), vary_seed=True)  # last one passed
    assert seeds == [40, 41, 40] and ok.settings["seed"] == 40
    store.add_rating(store.browse(es.id, limit=1)[0].response_id, "correct", "ann2", 1)
    run_fit(store, es, base, fitter=failing, vary_seed=True)
    run_fit(store, es, base, fitter=failing, vary_seed=True)
    assert seeds[-2:] == [40, 41]  # new labels: the seed as given; then the next one
    from changeover.core.report import refit_hint

    slow_mixing = refit_hint({"divergences": 0, "max_rhat": 1.02, "ok": False}, 1000)
    assert "--seed" in slow_mixing and "--target-accept" not in slow_mixing
