"""`changeover export --what draws --format netcdf`: the kept fit as an ArviZ DataTree.

The file opens with `arviz.from_netcdf`; `az.summary` and `az.plot_forest` work on it; its
draws give the report's numbers (means and 90% intervals: the 5% and 95% quantiles); the
stored draws split back into the fit's chains.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import canned_fitter

from changeover.cli.main import main
from changeover.core.model.counts import Counts
from changeover.core.model.fit import summarise
from changeover.core.model.posterior import Posterior, from_bytes, to_bytes
from changeover.core.render.export_draws import chains_of, changeover_version, draws_tree
from changeover.core.settings import Settings
from changeover.core.workspace import Workspace

az = pytest.importorskip("arviz")

SPEC = """name = "support"
incumbent = "inc"
regions = { EU = 3, US = 1 }
metrics = [
  { name = "correct", levels = ["no", "yes"], direction = "higher", margin = 0.05 },
  { name = "style", levels = ["1", "2", "3"], direction = "higher", margin = 0.2, pass_level = "2" },
]
"""
MODELS = {"inc": 0.8, "good": 0.85, "bad": 0.6}


def make_workspace(
    tmp_path: Path,
    spec_text: str = SPEC,
    name: str = "ws",
    unlabelled: tuple[str, str] | None = None,
) -> Path:
    """Three models, two regions, the spec's metrics (correct, and style if it has it), human
    labels on 12 of 30 items per region (none in the `unlabelled` (model, region) cell)."""
    rng = np.random.default_rng(7)
    rows = []
    for k in range(30):
        for region in ("EU", "US"):
            for model, rate in MODELS.items():
                truth = int(rng.random() < rate)
                judge = truth if rng.random() < 0.9 else 1 - truth
                style = int(rng.integers(1, 4))
                labelled = k < 12 and (model, region) != unlabelled
                rows.append(
                    {
                        "item_id": f"{region}-{k}",
                        "region": region,
                        "question": f"q {k}",
                        "model": model,
                        "response": f"text {k} {model}",
                        "judge_correct": "ny"[judge],
                        "rater": "ana" if labelled else "",
                        "human_correct": "ny"[truth] if labelled else "",
                    }
                )
                if "style" in spec_text:
                    rows[-1] |= {"judge_style": style, "human_style": style if labelled else ""}
    data, spec = tmp_path / f"{name}.csv", tmp_path / f"{name}.toml"
    with open(data, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    spec.write_text(spec_text)
    ws = tmp_path / f"{name}.changeover"
    with Workspace.open(ws, create=True) as w:
        w.import_file(data, spec)
    return ws


@pytest.fixture
def workspace(tmp_path) -> Path:
    return make_workspace(tmp_path)


def _fit(ws: Path, settings: Settings = Settings.quick(), fitter=None):
    with Workspace.open(ws, fitter=fitter or canned_fitter()) as w:
        return w.fit(w.eval_set("support"), settings)


def _full_canned_fitter():
    """The canned fitter's posteriors marked as the full model's (only those get an unlabelled
    cell widened)."""
    inner = canned_fitter()

    def fit(*args, **kwargs):
        result = inner(*args, **kwargs)
        result.posteriors[:] = [replace(p, source="full") for p in result.posteriors]
        return result

    return fit


def _fit_and_export(ws: Path, out: Path, fitter=None):
    fit = _fit(ws, fitter=fitter)
    assert main(["export", str(ws), "--what", "draws", "--format", "netcdf", "-o", str(out)]) == 0
    return fit


def _results(ws: Path, fit_id: int):
    with Workspace.open(ws, read_only=True) as w:
        return w.results(w.eval_set("support"), fit_id=fit_id)


def _eti(draws) -> tuple[float, float, float]:
    flat = np.asarray(draws).reshape(-1)
    lo, hi = np.quantile(flat, [0.05, 0.95])
    return float(flat.mean()), float(lo), float(hi)


@pytest.mark.parametrize("unlabelled", [None, ("bad", "US")], ids=["labelled", "unlabelled-cell"])
def test_netcdf_round_trip_gives_the_reports_numbers(tmp_path, unlabelled):
    """Also where a cell has no labels: its interval in the report carries the judge's unknown
    lean there, and so do the exported draws."""
    workspace = make_workspace(tmp_path, unlabelled=unlabelled)
    out = tmp_path / "draws.nc"
    fit = _fit_and_export(workspace, out, _full_canned_fitter())
    report = _results(workspace, fit.id)
    widened = [f for f in report.flags if f.kind == "unlabelled_cell"]
    assert bool(widened) == (unlabelled is not None)
    dt = az.from_netcdf(out)
    post = dt["posterior"]
    checked = 0
    for table in report.metrics:
        name = "rate" if table.quantity == "rate" else "mean_level"
        for row in table.rows:
            for cell in row.cells:
                sel = {"model": cell.model}
                if row.region == "overall":
                    value = post[f"{table.name}_{name}_overall"].sel(sel)
                else:
                    value = post[f"{table.name}_{name}"].sel(sel | {"region": row.region})
                got = _eti(value)
                want = (cell.value.mean, cell.value.lower, cell.value.upper)
                assert got == pytest.approx(want, abs=1e-12)
                if cell.pass_share is not None:
                    var = f"{table.name}_pass_share" + (
                        "_overall" if row.region == "overall" else ""
                    )
                    region = {} if row.region == "overall" else {"region": row.region}
                    share = _eti(post[var].sel(sel | region))
                    assert share == pytest.approx(
                        (cell.pass_share.mean, cell.pass_share.lower, cell.pass_share.upper),
                        abs=1e-12,
                    )
                if cell.delta is not None:
                    var = f"{table.name}_delta" + ("_overall" if row.region == "overall" else "")
                    region = {} if row.region == "overall" else {"region": row.region}
                    delta = _eti(post[var].sel({"candidate": cell.model} | region))
                    assert delta == pytest.approx(
                        (cell.delta.mean, cell.delta.lower, cell.delta.upper), abs=1e-12
                    )
                checked += 1
    assert checked == 2 * 3 * 3  # metrics x (2 regions + overall) x models
    for cal in report.calibration:
        if cal.sensitivity is None:
            continue
        sel = {"model": cal.model, "region": cal.region}
        sens = _eti(post[f"{cal.metric}_sensitivity"].sel(sel))
        assert sens == pytest.approx(
            (cal.sensitivity.mean, cal.sensitivity.lower, cal.sensitivity.upper), abs=1e-12
        )


def test_arviz_summary_and_forest_plot_work(workspace, tmp_path):
    out = tmp_path / "draws.nc"
    fit = _fit_and_export(workspace, out)
    dt = az.from_netcdf(out)
    table = az.summary(
        dt, var_names=["correct_delta"], ci_prob=0.9, ci_kind="eti", kind="stats", round_to="none"
    )
    report = _results(workspace, fit.id)
    eu = next(r for r in report.metrics[0].rows if r.region == "EU")
    bad = next(c for c in eu.cells if c.model == "bad")
    row = table.loc["correct_delta[bad, EU]"]
    assert (row["mean"], row["eti90_lb"], row["eti90_ub"]) == pytest.approx(
        (bad.delta.mean, bad.delta.lower, bad.delta.upper), abs=1e-9
    )
    plot = az.plot_forest(dt, var_names=["style_mean_level"], backend="none", ci_kind="eti")
    assert "style_mean_level" in plot.viz["point_estimate"].data_vars


def test_coordinates_and_provenance(workspace, tmp_path):
    out = tmp_path / "draws.nc"
    fit = _fit_and_export(workspace, out)
    post = az.from_netcdf(out)["posterior"]
    assert list(post["model"].values) == ["inc", "good", "bad"]
    assert list(post["candidate"].values) == ["good", "bad"]
    assert list(post["region"].values) == ["EU", "US"]
    assert list(post["level"].values) == ["1", "2", "3"]
    assert post["style_confusion"].dims == (
        "chain",
        "draw",
        "model",
        "region",
        "human_level",
        "judge_level",
    )
    assert post["correct_rate"].dims == ("chain", "draw", "model", "region")
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 500  # the instant posterior
    a = post.attrs
    assert (a["eval_set"], a["fit_id"], a["created_at"]) == ("support", fit.id, fit.created_at)
    assert a["data_hash"] == fit.data_hash and a["workspace"] == str(workspace)
    assert a["creation_library_version"] == changeover_version() != "unknown"
    assert json.loads(a["settings"])["chains"] == Settings.quick().chains
    assert a["incumbent"] == "inc" and a["stale"] == "false"
    assert "rate of the positive level 'yes'" in post["correct_rate"].attrs["description"]


def test_stored_draws_split_back_into_chains():
    """model.summarise stores chains one after another, thinned alike; the export undoes it."""
    C, D, M, R, L = 3, 50, 2, 2, 2
    counts = Counts(
        metric="m",
        levels=("no", "yes"),
        models=("inc", "cand"),
        regions=("a", "b"),
        n=np.ones((M, R, L, L), dtype=np.int64),
        u=np.ones((M, R, L), dtype=np.int64),
    )
    chain = np.arange(C)[:, None, None, None, None]
    draw = np.arange(D)[None, :, None, None, None]
    p = np.broadcast_to((chain + 1) / 10 + draw / 1000, (C, D, M, R, L)).copy()
    settings = Settings.quick(chains=C, keep_draws=60)  # thinned: every 3rd draw of 50
    conf = np.broadcast_to(p[..., None], (C, D, M, R, L, L))
    kept = replace(summarise(counts, [0.5, 0.5], p, conf, settings), chains=C)  # as run_fit keeps
    stored = from_bytes(to_bytes([kept]))
    assert stored[0].chains == C and chains_of(stored) == C
    rate = draws_tree(stored, "inc", {})["posterior"]["m_rate"]
    assert rate.sizes == {"chain": C, "draw": 17, "model": M, "region": R}
    for c in range(C):
        expect = (c + 1) / 10 + np.arange(0, D, 3) / 1000
        assert np.allclose(rate.isel(chain=c, model=0, region=0).values, expect, atol=1e-6)
    instant = [replace(stored[0], source="instant")]
    assert chains_of(instant, C) == 1  # conjugate draws have no chains
    older = [replace(stored[0], chains=1)]  # kept before the chain count was: the setting
    assert chains_of(older, C) == C


def test_scales_with_other_levels_get_their_own_dimensions():
    rng = np.random.default_rng(0)

    def post(metric: str, levels: tuple[str, ...]) -> Posterior:
        L = len(levels)
        p = rng.dirichlet(np.ones(L), size=(40, 2, 1))
        conf = rng.dirichlet(np.ones(L), size=(40, 2, 1, L))
        return Posterior(metric, levels, ("inc", "c"), ("r",), np.ones(1), p, conf)

    tree = draws_tree(
        [
            post("a", ("1", "2", "3")),
            post("b", ("1", "2", "3")),
            post("c", ("lo", "mid", "hi", "top")),
        ],
        "inc",
        {},
    )
    posterior = tree["posterior"]
    assert posterior["a_p"].dims[-1] == posterior["b_p"].dims[-1] == "level"
    assert posterior["c_p"].dims[-1] == "c_level"
    assert list(posterior["c_level"].values) == ["lo", "mid", "hi", "top"]
    assert posterior["c_confusion"].dims[-2:] == ("c_human_level", "c_judge_level")


def test_usage_errors_and_no_fit(workspace, tmp_path, capsys):
    out = tmp_path / "draws.nc"
    ws = str(workspace)
    assert main(["export", ws, "--what", "draws", "-o", str(out)]) == 1  # no fit yet
    assert "has no fit yet" in capsys.readouterr().err
    assert main(["export", ws, "--what", "draws"]) == 2  # netCDF is binary: needs -o
    assert main(["export", ws, "--what", "results", "--format", "netcdf", "-o", str(out)]) == 2
    assert main(["export", ws, "--what", "draws", "--format", "csv", "-o", str(out)]) == 2
    assert "--what draws [--fit ID] [--format netcdf] -o FILE" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".draws.nc.*"))


def test_fit_option_picks_a_kept_fit(workspace, tmp_path):
    first = _fit(workspace, Settings.quick(seed=1))
    _fit(workspace, Settings.quick(seed=2))
    out = tmp_path / "first.nc"
    args = ["export", str(workspace), "--what", "draws", "--fit", str(first.id), "-o", str(out)]
    assert main(args) == 0
    attrs = az.from_netcdf(out)["posterior"].attrs
    assert attrs["fit_id"] == first.id and json.loads(attrs["settings"])["seed"] == 1


@pytest.mark.slow
def test_a_real_fit_exports_its_chains(tmp_path):
    """A real (quick) fit of the yes/no metric: two chains, the report's numbers, R-hat."""
    from changeover.core.model.fit import fit_counts

    one_metric = "\n".join(line for line in SPEC.splitlines() if '"style"' not in line)
    ws = make_workspace(tmp_path, one_metric, "one")
    fit = _fit(ws, Settings.quick(seed=5, draws=200, tune=200), fitter=fit_counts)
    out = tmp_path / "draws.nc"
    assert main(["export", str(ws), "--what", "draws", "-o", str(out)]) == 0
    dt = az.from_netcdf(out)
    post = dt["posterior"]
    assert (post.sizes["chain"], post.sizes["draw"]) == (2, 200)
    overall = _results(ws, fit.id).metrics[0].rows[-1]
    for cell in overall.cells:
        got = _eti(post["correct_rate_overall"].sel(model=cell.model))
        assert got == pytest.approx(
            (cell.value.mean, cell.value.lower, cell.value.upper), abs=1e-12
        )
    rhat = az.rhat(dt, var_names=["correct_rate"])["correct_rate"].values
    assert np.isfinite(rhat).all() and rhat.max() < 1.1
