"""Fitting through the workspace and the `fit` / `report` commands: round trip through the fits
table, staleness, excluded raters, cancel, the seed rule, the eval-set rule and exit codes
(with a canned fitter; one quick real fit in the slow tier)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from helpers import canned_fitter

import changeover.cli.fit as cmd_fit
from changeover.cli.main import main
from changeover.core.model.counts import counts_for, data_hash
from changeover.core.model.instant import instant_posterior
from changeover.core.model.kept_fits import kept_fit
from changeover.core.results import refit_hint
from changeover.core.settings import Settings
from changeover.core.store import Store
from changeover.core.types import (
    BrowseFilter,
    ChangeoverError,
    Diagnostics,
    EvalSet,
    FitCancelled,
    Metric,
    Region,
)
from changeover.core.workspace import Workspace

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


@pytest.fixture
def workspace():
    store = Store.memory()
    return store, fill(store, spec())


def test_fit_round_trip(workspace):
    store, es = workspace
    calls: list = []
    progress: list = []
    ws = Workspace(store, canned_fitter(calls))
    fit = ws.fit(es, Settings.quick(seed=3), on_progress=lambda f, m: progress.append(f))
    counts = counts_for(store, es)
    assert fit.data_hash == data_hash(counts)
    assert fit.settings.seed == 3 and fit.exclude_raters == ()
    assert fit.diagnostics.ok and progress and fit.seconds == pytest.approx(0.01)
    assert calls[0][1] == pytest.approx([0.75, 0.25])
    results = ws.results(es)
    assert results.source == "full" and results.fit.id == fit.id and not results.stale
    assert [c.candidate for c in results.candidates] == ["good", "bad"]
    assert results.candidate("bad").verdict == "not ready"
    again, posts = kept_fit(store, es)
    assert again == fit and [p.metric for p in posts] == ["correct", "style"]
    expected = instant_posterior(counts["correct"], [0.75, 0.25], 500, 3)
    np.testing.assert_allclose(posts[0].p, expected.p, atol=1e-6)  # float32 in storage
    assert posts[0].flags.cell_labels == expected.flags.cell_labels
    assert posts[1].pass_level == 2
    # the counts the fit saw travel with it (to update it by later labels)
    assert posts[0].counts is not None and (posts[0].counts.n == counts["correct"].n).all()
    assert posts[0].chains == Settings.quick().chains
    assert kept_fit(store, es, fit.id)[0].id == fit.id


def test_no_fit_and_foreign_fit(workspace):
    store, es = workspace
    assert kept_fit(store, es) == (None, [])
    ws = Workspace(store, canned_fitter())
    assert ws.results(es).source == "instant"
    with pytest.raises(ChangeoverError, match="no fit yet"):
        ws.results(es, require_fit=True)
    other = fill(store, spec("other"), items=5, labelled=2)
    fit = ws.fit(other, Settings.quick())
    with pytest.raises(ChangeoverError, match="another eval set"):
        ws.results(es, fit_id=fit.id)


def test_stale_after_a_new_label_and_fresh_after_undo(workspace):
    store, es = workspace
    ws = Workspace(store, canned_fitter())
    ws.fit(es, Settings.quick())
    assert not ws.results(es).stale
    unlabelled = store.browse(es.id, BrowseFilter(unrated=True), limit=1)[0]
    rating = store.add_rating(unlabelled.response_id, "correct", "bob", 1)
    stale = ws.results(es)
    assert stale.stale and stale.labels_since == 1 and stale.source == "updated"
    store.retract(rating.id, "bob")
    assert not ws.results(es).stale


def test_excluded_raters_stay_excluded(workspace):
    store, es = workspace
    ws = Workspace(store, canned_fitter())
    fit = ws.fit(es, Settings.quick(), exclude_raters=("ann",))
    assert fit.exclude_raters == ("ann",)
    assert fit.data_hash == data_hash(counts_for(store, es, ["ann"]))
    assert fit.data_hash != data_hash(counts_for(store, es))
    _, posts = kept_fit(store, es)
    assert np.asarray(posts[0].flags.cell_labels).sum() == 0
    # A new label by the excluded rater does not make the fit stale.
    row = store.browse(es.id, limit=1)[0]
    store.add_rating(row.response_id, "correct", "ann", 0)
    assert not ws.results(es).stale


def test_cancel_stores_nothing(workspace):
    store, es = workspace
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(FitCancelled):
        Workspace(store, canned_fitter()).fit(es, Settings.quick(), cancel=cancel)
    assert store.fits(es.id) == []


def test_a_refit_after_a_failed_fit_of_the_same_data_draws_anew(workspace):
    """Same seed and data give the same draws, so refitting them after a failed fit would fail
    again: the next seed is used, unless the seed was given."""
    store, es = workspace
    failed = {**CANNED_FAILED}
    seeds = []

    def failing(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        seeds.append(settings.seed)
        return canned_fitter(diagnostics=failed)(counts, weights, settings)

    fails, passes = Workspace(store, failing), Workspace(store, canned_fitter())
    base = Settings.quick(seed=40)
    fails.fit(es, base)
    second = fails.fit(es, base)
    assert seeds == [40, 41] and second.settings.seed == 41
    fails.fit(es, base, seed=40)  # a seed asked for is kept
    after_failure = passes.fit(es, base)
    assert after_failure.settings.seed == 41  # the last one (seed 40) failed
    ok = passes.fit(es, base)  # the last one passed
    assert seeds == [40, 41, 40] and ok.settings.seed == 40
    store.add_rating(store.browse(es.id, limit=1)[0].response_id, "correct", "ann2", 1)
    fails.fit(es, base)
    fails.fit(es, base)
    assert seeds[-2:] == [40, 41]  # new labels: the seed as given; then the next one
    slow_mixing = refit_hint(Diagnostics(ok=False, max_rhat=1.02))
    assert "--seed" in slow_mixing and "--target-accept" not in slow_mixing


CANNED_FAILED = {
    "max_rhat": 1.003,
    "min_ess_bulk": 900.0,
    "min_ess_tail": 700.0,
    "divergences": 1,
    "ok": False,
    "sampler": "nutpie",
    "reasons": ["style: 1 divergent transitions"],
}


def test_a_failed_fit_says_which_metric_and_what_to_do(workspace):
    store, es = workspace
    ws = Workspace(store, canned_fitter(diagnostics=CANNED_FAILED))
    quick = ws.fit(es, Settings.quick())
    text = cmd_fit.fit_summary_text(quick, ws.results(es), es, "ws.changeover")
    assert "FAILED" in text and "fit without --quick" in text and "--target-accept" not in text
    fit = ws.fit(es, Settings())
    results = ws.results(es)
    text = cmd_fit.fit_summary_text(fit, results, es, "ws.changeover")
    assert "FAILED" in text and "style: 1 divergent transitions" in text
    assert "--seed" in text and "--target-accept 0.98" in text
    flag = next(f for f in results.flags if f.kind == "diagnostics")
    assert "style: 1 divergent transitions" in flag.message
    assert "--target-accept 0.98" in flag.message


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
    assert "bad" in out and "not ready" in out and "P(all hold) = " in out
    with Store.open(ws_file, read_only=True) as store:
        fit = store.fits(1)[0]
        assert fit.settings.seed == 11 and fit.settings.draws == Settings.quick().draws


def test_fit_exits_3_when_the_kept_fit_failed_its_diagnostics(ws_file, capsys, monkeypatch):
    monkeypatch.setattr(cmd_fit, "FITTER", canned_fitter(diagnostics=CANNED_FAILED))
    assert main(["fit", str(ws_file)]) == 3
    out = capsys.readouterr().out
    assert "FAILED" in out and "--target-accept 0.98" in out
    assert main(["report", str(ws_file)]) == 0  # the report shows it (and warns) ...
    assert "failed its diagnostics" in capsys.readouterr().err
    assert main(["report", str(ws_file), "--strict"]) == 3  # ... --strict refuses it
    assert "failed its diagnostics" in capsys.readouterr().err


def test_report_strict_refuses_a_stale_fit(ws_file, capsys):
    assert main(["fit", str(ws_file)]) == 0
    assert main(["report", str(ws_file), "--strict"]) == 0
    with Store.open(ws_file) as store:
        row = store.browse(1, BrowseFilter(unrated=True), limit=1)[0]
        store.add_rating(row.response_id, "correct", "zed", 0)
    capsys.readouterr()
    assert main(["report", str(ws_file), "--strict"]) == 3
    assert "is stale" in capsys.readouterr().err


def test_a_quick_fit_report_says_so_and_what_to_do(ws_file, capsys, monkeypatch):
    monkeypatch.setattr(cmd_fit, "FITTER", canned_fitter(diagnostics=CANNED_FAILED))
    assert main(["fit", str(ws_file), "--quick"]) == 3
    capsys.readouterr()
    assert main(["report", str(ws_file)]) == 0
    out, err = capsys.readouterr()
    assert "quick: a first look" in out
    assert "fit without --quick" in out and "fit without --quick" in err
    assert "refit with another seed" not in out


def test_fit_exclude_rater_and_unknown_eval_set(ws_file, capsys):
    assert main(["fit", str(ws_file), "--exclude-rater", "ann"]) == 0
    assert "left out raters: ann" in capsys.readouterr().out
    assert main(["fit", str(ws_file), "--eval-set", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["fit", str(ws_file.with_name("missing.changeover"))]) == 1


def test_several_eval_sets_need_a_name_in_every_command(ws_file, capsys, tmp_path):
    with Store.open(ws_file) as store:
        fill(store, spec("second"), items=4, labelled=1)
    labels = tmp_path / "labels.csv"
    labels.write_text("item_id,model,metric,rater,value\neu-0,inc,correct,zoe,yes\n")
    for args in (
        ["fit", str(ws_file)],
        ["report", str(ws_file)],
        ["export", str(ws_file), "--what", "ratings"],
        ["import-labels", str(ws_file), str(labels)],
    ):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "'support'" in err and "'second'" in err and "--eval-set" in err, args
    with Store.open(ws_file, read_only=True) as store:
        assert not any(r.rater == "zoe" for r in store.ratings(1) + store.ratings(2))
    assert main(["fit", str(ws_file), "--eval-set", "second"]) == 0


def test_no_eval_sets(tmp_path, capsys):
    path = tmp_path / "empty.changeover"
    Store.open(path, create=True).close()
    assert main(["fit", str(path)]) == 1
    assert "no eval sets" in capsys.readouterr().err


def test_ctrl_c_cancels_cleanly(ws_file, capsys, monkeypatch):
    def slow_fitter(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C mid-fit
        if cancel.wait(10):
            raise FitCancelled("cancelled")
        raise AssertionError("the cancel event was never set")

    monkeypatch.setattr(cmd_fit, "FITTER", slow_fitter)
    # The command's entry point installs its Ctrl-C handler (cli/entry.py); this test calls
    # `main` directly, so it installs Python's own, whatever the runner inherited: a test run
    # started in the background by a non-interactive shell inherits SIGINT ignored, Python then
    # installs no handler, and the Ctrl-C above reached nobody (found when CI ran that way).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(["fit", str(ws_file)]) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
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
    assert data["schema"] == "changeover.report/1"
    assert [m["name"] for m in data["metrics"]] == ["style"]
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
        row = store.browse(1, BrowseFilter(unrated=True), limit=1)[0]
        store.add_rating(row.response_id, "correct", "zed", 0)
    capsys.readouterr()
    assert main(["report", str(ws_file)]) == 0
    out, err = capsys.readouterr()
    assert "fit #1 is stale: 1 label(s) given since" in err and "[stale_fit]" in out


def test_fit_target_accept_is_kept_and_checked(ws_file, capsys):
    assert main(["fit", str(ws_file), "--quick", "--target-accept", "0.98"]) == 0
    with Store.open(ws_file, read_only=True) as store:
        assert store.fits(1)[0].settings.target_accept == 0.98
    for bad in ("1.5", "0.2", "high"):
        with pytest.raises(SystemExit) as exc:
            main(["fit", str(ws_file), "--target-accept", bad])
        assert exc.value.code == 2
        assert "--target-accept" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_real_fit():
    """The workspace with the real default fitter (one yes/no metric, few draws)."""
    store = Store.memory()
    one = spec()
    es = fill(
        store,
        EvalSet(0, one.name, one.incumbent, one.regions, one.metrics[:1]),
        items=40,
        labelled=30,
    )
    ws = Workspace(store)  # no fitter given: the calibration model
    start = time.perf_counter()
    ws.fit(es, Settings.quick(seed=1, draws=150, tune=150))
    elapsed = time.perf_counter() - start
    results = ws.results(es)
    assert results.source == "full" and [t.name for t in results.metrics] == ["correct"]
    overall = results.table("correct").row("overall")
    assert overall.cell("bad").value.mean < overall.cell("inc").value.mean - 0.1
    assert [c.candidate for c in results.candidates] == ["good", "bad"]
    assert results.candidate("bad").verdict != "ready" and not results.stale
    print(f"quick real fit: {elapsed:.1f} s")


@pytest.mark.slow
def test_the_app_runs_the_real_fitter_and_refits_a_failed_fit_with_the_next_seed():
    """The path users run: `f` in the app with the default fitter. A fit this short fails its
    diagnostics (too few draws for ESS >= 400), so `f` again on the same labels must use the
    next seed; then one more label keeps the fit on screen, updated, with the same verdicts."""
    import asyncio

    from helpers import settle

    from changeover.tui.app import ChangeoverApp
    from changeover.tui.screens.results import ResultsScreen

    store = Store.memory()
    one = spec()
    es = fill(store, EvalSet(0, one.name, one.incumbent, one.regions, one.metrics[:1]), 40, 30)
    ws = Workspace(store)  # the default fitter: the calibration model
    quick = Settings.quick(seed=5, draws=100, tune=100)

    async def session() -> None:
        app = ChangeoverApp(ws, rater="ann", seed=1, fit_settings=quick)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press("v")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ResultsScreen)
            await pilot.press("f")
            await settle(pilot)
            first = store.fits(es.id)[0]
            assert first.settings.seed == 5 and not first.diagnostics.ok
            assert "fit diagnostics failed" in str(screen.query_one("#results-status").content)
            await pilot.press("f")
            await settle(pilot)
            second = store.fits(es.id)[0]
            assert second.id != first.id and second.settings.seed == 6
            before = screen.data
            assert before.source == "full" and before.fit.id == second.id
            row = store.browse(es.id, BrowseFilter(unrated=True), limit=1)[0]
            store.add_rating(row.response_id, "correct", "cy", 1)
            await pilot.press("r")
            await settle(pilot)
            after = screen.data
            assert after.stale and after.labels_since == 1 and after.fit.id == second.id
            assert after.source == "updated" and after.khat < 0.7
            assert [c.verdict for c in after.candidates] == [c.verdict for c in before.candidates]

    asyncio.run(session())


def test_a_failed_fit_prints_the_digits_that_decide(ws_file, capsys, monkeypatch):
    """R-hat 1.0104 fails R-hat <= 1.01: `changeover fit` says 1.0104, never "1.010 > 1.01";
    an ESS of 399.6 is not printed as 400 beside "< 400"; one divergence is "1 divergent
    transition"."""
    one = {"max_rhat": 1.0104, "min_ess_bulk": 399.6, "min_ess_tail": 700.0, "divergences": 1}
    ok = {"max_rhat": 1.002, "min_ess_bulk": 900.0, "min_ess_tail": 800.0, "divergences": 0}
    diagnostics = {
        **one,
        "ok": False,
        "sampler": "nutpie",
        "per_metric": {"correct": {**one, "ok": False}, "style": {**ok, "ok": True}},
        "reasons": ["correct: R-hat 1.010 > 1.01"],
    }
    monkeypatch.setattr(cmd_fit, "FITTER", canned_fitter(diagnostics=diagnostics))
    assert main(["fit", str(ws_file)]) == 3
    out = capsys.readouterr().out
    assert "max R-hat 1.0104, min ESS bulk 399.6" in out
    assert "correct: R-hat 1.0104 > 1.01" in out and "1.010 >" not in out
    assert "correct: ESS 399.6 < 400" in out and "correct: 1 divergent transition\n" in out
    assert main(["report", str(ws_file)]) == 0
    text = capsys.readouterr()
    assert "R-hat 1.0104 > 1.01" in text.err and "1.0104" in text.out


def test_bad_options_are_usage_errors(ws_file, capsys):
    """`report --min-labels -3` and `fit --exclude-rater nobody` ran as if nothing were wrong
    (exit 0, "left out raters: nobody"): exit 2, the reason, the raters there are, no fit."""
    assert main(["fit", str(ws_file)]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["report", str(ws_file), "--min-labels", "-3"])
    assert exc.value.code == 2 and "--min-labels: -3 is below 0" in capsys.readouterr().err
    with Store.open(ws_file, read_only=True) as store:
        raters = sorted({r.rater for r in store.ratings(1)})
    capsys.readouterr()
    assert main(["fit", str(ws_file), "--exclude-rater", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "--exclude-rater nobody: no such rater" in err and ", ".join(raters) in err
    with Store.open(ws_file, read_only=True) as store:
        assert len(store.fits(1)) == 1  # nothing fitted
    assert main(["fit", str(ws_file), "--exclude-rater", raters[0]]) == 0
