"""Benchmark of the calibration fit: scale in N, samplers, cold vs warm, the instant posterior.

    .venv/bin/python bench/fit_scale.py [--forward] [--no-pymc] [--draws 1000] [--chains 4]

Prints, measured in one run:
1. the instant posterior's refresh after one new label on the sample workspace, counts query
   included (target < 10 ms);
2. a full fit of the sample workspace: the first in this process (its models from the disk
   cache, or compiled when the cache is cold: bench/cold_start.py measures both), again, and a
   refit after new labels (the compiled model is reused: only the counts are swapped);
3. fit wall time at 10k and at 1M judged responses with the same labels (target ratio <= 1.2);
   with --forward also the forward parametrisation, to show the ridge it avoids;
4. PyMC's NUTS against nutpie on the 10k data.
Each fit line shows R-hat, bulk/tail ESS, divergences and the mean leapfrog steps per draw.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from changeover.core import model as model_mod  # noqa: E402
from changeover.core import model_cache  # noqa: E402
from changeover.core.model.counts import Counts, counts_for  # noqa: E402
from changeover.core.model.fit import Settings, fit_counts  # noqa: E402
from changeover.core.model.instant import CellDraws, instant_posterior  # noqa: E402


def simulate_scale(total: int, labels: int = 500, M: int = 4, R: int = 6, seed: int = 0) -> Counts:
    """Yes/no counts with `total` judged responses; the labelled tables do not depend on total."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.55, 0.95, (M, R))
    se = np.clip(rng.uniform(0.75, 0.95, (M, 1)) + rng.normal(0, 0.03, (M, R)), 0.5, 0.99)
    fpr = np.clip(rng.uniform(0.05, 0.2, (M, 1)) + rng.normal(0, 0.02, (M, R)), 0.01, 0.5)
    joint = np.stack(
        [
            np.stack([(1 - theta) * (1 - fpr), (1 - theta) * fpr], -1),
            np.stack([theta * (1 - se), theta * se], -1),
        ],
        -2,
    )
    label_rng = np.random.default_rng(seed + 1)
    per = labels // (M * R)
    n = np.zeros((M, R, 2, 2), np.int64)
    u = np.zeros((M, R, 2), np.int64)
    for m in range(M):
        for r in range(R):
            n[m, r] = label_rng.multinomial(per, joint[m, r].ravel()).reshape(2, 2)
            u[m, r] = rng.multinomial(total // (M * R) - per, joint[m, r].sum(axis=0))
    return Counts(
        "correct",
        ("no", "yes"),
        tuple(f"m{k}" for k in range(M)),
        tuple(f"r{k}" for k in range(R)),
        n,
        u,
    )


def line(label: str, seconds: float, fit) -> str:
    d = fit.diagnostics
    steps = np.mean([v["mean_steps"] for v in fit.extra.values()])
    return (
        f"  {label:<34} {seconds:7.1f} s   R-hat {d.max_rhat:.3f}   ESS bulk "
        f"{d.min_ess_bulk:5.0f} tail {d.min_ess_tail:5.0f}   divergences "
        f"{d.divergences:3d}   steps/draw {steps:5.1f}   ok={d.ok}"
    )


def timed_fit(counts: dict, weights, settings: Settings):
    start = time.perf_counter()
    fit = fit_counts(counts, weights, settings)
    return time.perf_counter() - start, fit


def sample_workspace():
    from changeover.core.importing.responses import import_file
    from changeover.core.store import Store

    store = Store.memory()
    es = import_file(
        store, ROOT / "sample_data" / "support.csv", ROOT / "sample_data" / "support.toml"
    ).eval_set
    return store, es


def bench_instant(store, es) -> None:
    print(
        "instant posterior on the sample workspace (3 metrics, 1000 draws, counts query included)"
    )
    unlabelled = [
        b.response_id
        for b in store.browse(es.id, limit=400)
        if not store.response_view(b.response_id).ratings
    ][:40]
    cells = CellDraws()  # the workspace's, which keeps each cell's draws until its counts change
    start = time.perf_counter()
    for c in counts_for(store, es).values():
        instant_posterior(c, es.traffic_weights, draws=1000, cache=cells)
    print(f"  first call (cold caches)           {1000 * (time.perf_counter() - start):7.2f} ms")
    counts_ms, total_ms = [], []
    for rid in unlabelled:
        store.add_rating(rid, "correct", "bench", 1)
        start = time.perf_counter()
        counts = counts_for(store, es)
        mid = time.perf_counter()
        for c in counts.values():
            instant_posterior(c, es.traffic_weights, draws=1000, cache=cells)
        end = time.perf_counter()
        counts_ms.append(1000 * (mid - start))
        total_ms.append(1000 * (end - start))
    print(
        f"  refresh after one new label        {np.median(total_ms):7.2f} ms median "
        f"(counts query {np.median(counts_ms):.2f} ms; max {np.max(total_ms):.2f} ms; "
        f"{len(total_ms)} labels)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--forward", action="store_true", help="also time the forward parametrisation")
    ap.add_argument("--no-pymc", action="store_true", help="skip PyMC's sampler")
    args = ap.parse_args()
    full = Settings(chains=args.chains, draws=args.draws, tune=args.draws)

    store, es = sample_workspace()
    bench_instant(store, es)

    print(f"\nfull fit of the sample workspace ({args.chains} chains x {args.draws} draws, nutpie)")
    store, es = sample_workspace()  # afresh: the instant benchmark above added labels
    counts = counts_for(store, es)
    seconds, fit = timed_fit(counts, es.traffic_weights, full)
    print(line("first in this process", seconds, fit))
    seconds, fit = timed_fit(counts, es.traffic_weights, full)
    print(line("compiled, same counts", seconds, fit))
    for b in store.browse(es.id, limit=60)[30:60]:
        store.add_rating(b.response_id, "refused", "bench2", 0)
    counts = counts_for(store, es)
    seconds, fit = timed_fit(counts, es.traffic_weights, full)
    print(line("refit after 30 new labels", seconds, fit))
    for name, stats in fit.extra.items():
        c = counts[name]
        form = (
            f"geometry {model_mod.geometry_for(c, full)}"
            if len(c.levels) == 2
            else "judge-first scale model"
        )
        print(
            f"    {name:<8} steps/draw {stats['mean_steps']:5.1f}  max depth {stats['max_depth']}  "
            f"{form}  mass matrix {model_mod.adaptation_for(c, full)}"
        )

    print("\nscale: same 500 labels, more judged responses (yes/no, 4 models x 6 regions)")
    small, large = simulate_scale(10_000), simulate_scale(1_000_000)
    weights = [1 / 6] * 6
    geometries = ["auto", "aligned", "forward"] if args.forward else ["auto", "aligned"]
    for geometry in geometries:
        settings = Settings(
            chains=args.chains, draws=args.draws, tune=args.draws, geometry=geometry
        )
        for data in (small, large):  # compile whatever the geometry picks, outside the timing
            fit_counts(
                {"correct": data}, weights, Settings.quick(geometry=geometry, draws=10, tune=10)
            )
        t_small, f_small = timed_fit({"correct": small}, weights, settings)
        print(line(f"{geometry}: 10k judged", t_small, f_small))
        t_large, f_large = timed_fit({"correct": large}, weights, settings)
        print(line(f"{geometry}: 1M judged", t_large, f_large))
        print(f"  {geometry}: ratio 1M / 10k = {t_large / t_small:.2f}")

    print("\nsamplers on the 10k data (geometry auto)")
    t_nutpie, f_nutpie = timed_fit({"correct": small}, weights, full)
    print(line("nutpie (compiled)", t_nutpie, f_nutpie))
    if not args.no_pymc:
        settings = Settings(chains=args.chains, draws=args.draws, tune=args.draws, sampler="pymc")
        t_pymc, f_pymc = timed_fit({"correct": small}, weights, settings)
        print(line("PyMC NUTS (incl. its compile)", t_pymc, f_pymc))
        print(f"  PyMC / nutpie = {t_pymc / t_nutpie:.1f}")
    print(f"\ncompiled models loaded in this process: {len(model_cache._LOADED)}")


if __name__ == "__main__":
    main()
