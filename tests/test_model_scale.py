"""The scale model (core/model/scale.py): its pieces against numpy (fast), and on SummEval's
real 1-5 ratings with 10% expert labels (slow): diagnostics, coverage, width and error against
the baselines, and same seed, same numbers."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from changeover.core.model import scale as model_scale
from changeover.core.model.counts import Counts
from changeover.core.model.fit import Settings, fit_counts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from summeval_data import summeval_counts, summeval_dir  # noqa: E402


def tiny(M=3, R=2, L=5, seed=0) -> Counts:
    rng = np.random.default_rng(seed)
    n = rng.integers(0, 4, size=(M, R, L, L)).astype(np.int64)
    u = rng.integers(0, 60, size=(M, R, L)).astype(np.int64)
    levels = tuple(str(k + 1) for k in range(L))
    models = tuple(f"m{k}" for k in range(M))
    return Counts("style", levels, models, tuple(f"r{k}" for k in range(R)), n, u)


def evaluate(model, names, point):
    import pytensor

    outs = model.replace_rvs_by_values([model[k] for k in names])
    # Python's linker: the values, with no C or numba compilation in the fast tier
    fn = pytensor.function(model.value_vars, outs, on_unused_input="ignore", mode="FAST_COMPILE")
    return dict(zip(names, fn(*[point[v.name] for v in model.value_vars])))


def ordered_logistic(loc, cut):
    gt = expit(loc[..., None] - cut)
    return np.concatenate([np.ones_like(gt[..., :1]), gt], -1) - np.concatenate(
        [gt, np.zeros_like(gt[..., :1])], -1
    )


@pytest.mark.parametrize("R", [1, 3])
def test_the_model_is_the_ordered_logistic_of_the_human_given_the_judge(R):
    counts = tiny(R=R, seed=R)
    model = model_scale.build_scale_model(counts)
    rng = np.random.default_rng(2)
    point = {
        v.name: rng.normal(0, 0.7, size=model.initial_point()[v.name].shape)
        for v in model.value_vars
    }
    names = ["log_gap", "curve", "sd_model", "sd_model_level", "z_model", "z_model_level"]
    if R > 1:
        names += ["sd_region", "sd_cell", "z_region", "z_cell"]
    got = evaluate(model, [*names, "r", "labels"], point)
    steps = np.concatenate([[0.0], np.cumsum(np.exp(got["log_gap"]))])
    cut = steps - steps.mean()
    gap = np.exp(got["log_gap"]).mean()
    ends = np.concatenate([[cut[0] - gap], cut, [cut[-1] + gap]])
    agree = (ends[:-1] + ends[1:]) / 2
    shift = got["sd_model"] * got["z_model"][:, None] + got["sd_model_level"] * got["z_model_level"]
    cell = 0.0
    if R > 1:
        cell = got["sd_region"] * got["z_region"][None] + got["sd_cell"] * got["z_cell"]
        np.testing.assert_allclose(got["z_cell"].sum(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(got["z_cell"].sum(axis=1), 0, atol=1e-12)
    loc = (agree + got["curve"])[None, None, :] + shift[:, None, :] + np.asarray(cell)[..., None]
    r = ordered_logistic(loc, cut)  # [M, R, L(j), L(h)]
    np.testing.assert_allclose(got["r"], r, rtol=1e-9)
    want = (np.swapaxes(counts.n, 2, 3) * np.log(r)).sum()  # the labels, given the judge level
    assert float(got["labels"]) == pytest.approx(want, rel=1e-9)


def test_judge_levels_are_drawn_exactly_and_seeded():
    counts = tiny(M=2, R=2, seed=4)
    a = model_scale.judge_draws(counts, 4, 5000, seed=11)
    np.testing.assert_array_equal(a, model_scale.judge_draws(counts, 4, 5000, seed=11))
    assert not np.array_equal(a, model_scale.judge_draws(counts, 4, 5000, seed=12))
    judged = counts.u + counts.n.sum(axis=2)
    prior = model_scale.judge_prior(counts)
    np.testing.assert_allclose(prior.sum(axis=-1), 1.0)  # a prior worth one response
    want = (judged + prior) / (judged.sum(axis=-1, keepdims=True) + 1.0)
    np.testing.assert_allclose(a.mean(axis=(0, 1)), want, atol=4e-3)


def test_truth_and_confusion_follow_from_the_judge_first():
    rng = np.random.default_rng(3)
    q = rng.dirichlet(np.ones(5), size=(7, 2, 3))  # [D, M, R, L(j)]
    r = rng.dirichlet(np.ones(5), size=(7, 2, 3, 5))  # [D, M, R, L(j), L(h)]
    pi, confusion = model_scale.combine(q, r)
    np.testing.assert_allclose(pi, np.einsum("dmrj,dmrjh->dmrh", q, r))
    np.testing.assert_allclose(confusion.sum(axis=-1), 1.0)
    # the joint table is the same whichever way it is factored
    np.testing.assert_allclose(
        pi[..., :, None] * confusion, np.swapaxes(q[..., :, None] * r, -1, -2), atol=1e-15
    )


needs_summeval = pytest.mark.skipif(summeval_dir() is None, reason="../shared/data/summeval absent")

SEEDS = (1, 2, 3, 4, 5)


@pytest.mark.slow
@needs_summeval
def test_summeval_scale_acceptance():
    """10% expert labels, five label seeds, coherence and relevance (120 cells): every fit passes
    its diagnostics; the 90% intervals cover the all-expert mean in >= 88% of cells, are
    narrower on average than stratified PPI++'s, and the mean absolute error is no larger than
    the post-stratified human-only estimate's."""
    from changeover.core.model.baselines import baselines

    covered, width, ppi_width, error, human_error = [], [], [], [], []
    for seed in SEEDS:
        for dimension in ("coherence", "relevance"):
            counts, truth = summeval_counts(dimension, 0.10, seed)
            fit = fit_counts({dimension: counts}, [1.0], Settings(seed=seed))
            assert fit.diagnostics["ok"], (dimension, seed, fit.diagnostics["reasons"])
            mean = fit.posteriors[0].quantity()[:, :, 0]  # [D, M] mean levels
            lo, hi = np.quantile(mean, [0.05, 0.95], axis=0)
            covered += list((lo <= truth) & (truth <= hi))
            width += list(hi - lo)
            error += list(np.abs(mean.mean(axis=0) - truth))
            cells = [b for b in baselines(counts, [1.0]) if b.region != "overall"]
            ppi_width += [b.get("ppi++").hi - b.get("ppi++").lo for b in cells]
            human_error += [abs(b.get("human").estimate - t) for b, t in zip(cells, truth)]
    assert np.mean(covered) >= 0.88
    assert np.mean(width) <= np.mean(ppi_width)
    assert np.mean(error) <= np.mean(human_error)


SAME_SEED = """
import sys, hashlib
sys.path.insert(0, {tests!r})
from summeval_data import summeval_counts
from changeover.core.model.fit import Settings, fit_counts
counts, _ = summeval_counts("coherence", 0.10, 3)
fit = fit_counts({{"coherence": counts}}, [1.0], Settings(seed=3))
print(hashlib.sha256(fit.posteriors[0].p.tobytes()).hexdigest())
"""


@pytest.mark.slow
@needs_summeval
def test_same_seed_same_numbers_across_processes():
    """Two processes (each compiling its own model) give bit-identical draws of a scale metric."""
    script = SAME_SEED.format(tests=str(ROOT / "tests"))
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    counts, _ = summeval_counts("coherence", 0.10, 3)
    here = fit_counts({"coherence": counts}, [1.0], Settings(seed=3)).posteriors[0].p
    import hashlib

    digests.add(hashlib.sha256(here.tobytes()).hexdigest())
    assert len(digests) == 1


@pytest.mark.slow
@needs_summeval
def test_summeval_the_way_a_user_meets_it(tmp_path, capsys):
    """SummEval's files through the CLI (import, import-labels, fit with the default fitter,
    report), then the app in a real terminal at 80x24: the workspace's counts are the ones the
    acceptance test fits, the fit passes, the report has scale baselines inside [1, 5], the
    overall row never says "ready" beside an undecided region, and the results screen shows
    every candidate's verdict without scrolling."""
    import json
    import shutil

    from summeval_data import write_files

    from changeover.cli.main import main
    from changeover.core.workspace import Workspace

    responses_csv, spec, labels = write_files(tmp_path, ("coherence", "relevance"), 0.10, 7)
    ws = tmp_path / "summeval.changeover"
    assert main(["import", str(ws), str(responses_csv), "--spec", str(spec)]) == 0
    assert main(["import-labels", str(ws), str(labels)]) == 0
    with Workspace.open(ws) as workspace:
        stored = workspace.counts(workspace.choose_eval_set(None))
    for dimension in ("coherence", "relevance"):
        want, _ = summeval_counts(dimension, 0.10, 7)
        np.testing.assert_array_equal(stored[dimension].n, want.n)
        np.testing.assert_array_equal(stored[dimension].u, want.u)
    assert main(["fit", str(ws)]) == 0  # exit 3 if the fit failed its diagnostics
    capsys.readouterr()
    assert main(["report", str(ws), "--format", "json", "--strict"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["diagnostics"]["ok"]
    scale_cells = [b for b in report["baselines"] if b["metric"] in ("coherence", "relevance")]
    assert len(scale_cells) == 2 * 12 * 2  # 12 models x (news, overall) x 2 metrics
    for cell in scale_cells:
        for e in cell["estimates"]:
            if e["method"] in ("judge", "human", "ppi++"):
                assert 1.0 <= e["lower"] <= e["estimate"] <= e["upper"] <= 5.0, (cell, e)
    for metric in report["metrics"]:
        news, overall = metric["rows"]
        for a, b in zip(news["cells"], overall["cells"]):
            assert a["verdict"] == b["verdict"]  # one region: the overall is that region

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    from helpers_tmux import Tmux

    term = Tmux(tmp_path, width=80, height=24, env={"CHANGEOVER_DATA_DIR": str(tmp_path)})
    try:
        term.run(f"{Path(sys.executable).parent / 'changeover'} open {ws}")
        term.wait_for("1,198", timeout=60)
        term.keys("v")
        screen = term.wait_for("P(all hold)", timeout=30)
        screen = term.wait_for(lambda s: s.count("P(all hold)") == 11, timeout=10)
        for name in report["models"][1:]:
            assert re.search(rf"(undecided|ready|not ready) {name} ", screen), name
    finally:
        term.close()


def simulate_scale(rng: np.random.Generator, M: int = 4, R: int = 6, per_cell: int = 400):
    """5-level counts from a forward truth (not the model's own family): true levels ordered
    logistic by model and region, the judge a biased ordered logistic of the true level that
    differs by model and region; 5% of each cell labelled at random. Returns (Counts, the true
    mean levels [M, R])."""
    L = 5
    loc = rng.normal(0.5, 0.6, size=(M, 1)) + rng.normal(0, 0.4, size=(M, R))
    pi = ordered_logistic(loc, np.array([-2.0, -0.7, 0.5, 1.8]))
    bias = rng.normal(0.5, 0.5, size=(M, 1)) + rng.normal(0, 0.3, size=(1, R))
    judge_loc = 2.2 * np.arange(L)[None, None, :] - 4.4 + bias[..., None]  # [M, R, h]
    confusion = ordered_logistic(judge_loc, np.array([-3.3, -1.1, 1.1, 3.3]))
    joint = pi[..., :, None] * confusion
    n = np.zeros((M, R, L, L), np.int64)
    u = np.zeros((M, R, L), np.int64)
    for m in range(M):
        for r in range(R):
            k = rng.binomial(per_cell, 0.05)
            n[m, r] = rng.multinomial(k, joint[m, r].ravel()).reshape(L, L)
            u[m, r] = rng.multinomial(per_cell - k, joint[m, r].sum(axis=0))
    levels = tuple(str(k + 1) for k in range(L))
    models = tuple(f"m{k}" for k in range(M))
    counts = Counts("style", levels, models, tuple(f"r{k}" for k in range(R)), n, u)
    return counts, (pi * np.arange(1, L + 1)).sum(axis=-1)


@pytest.mark.slow
def test_simulated_scales_with_regions_pass_and_cover():
    """Four models x six regions, 20 labels per cell: the forward scale model failed its
    diagnostics in 38 of 47 such fits; every judge-first fit passes, and the 90% intervals
    cover the true mean level in at least 85% of the 96 cells."""
    rng = np.random.default_rng(1)
    covered = []
    for k in range(4):
        counts, truth = simulate_scale(rng)
        fit = fit_counts({"style": counts}, [1 / 6] * 6, Settings(seed=k))
        assert fit.diagnostics["ok"], fit.diagnostics["reasons"]
        mean = (fit.posteriors[0].p * np.arange(1, 6)).sum(axis=-1)  # [D, M, R]
        lo, hi = np.quantile(mean, [0.05, 0.95], axis=0)
        covered += list(((lo <= truth) & (truth <= hi)).ravel())
    assert np.mean(covered) >= 0.85
