"""Scale acceptance: the 1-5 scale model on SummEval's real expert ratings, side by side with
the baselines, and a scale fit's time beside a yes/no fit's on the same workspace.

    .venv/bin/python bench/scale_acceptance.py [--seeds 1,2,3,4,5] [--fraction 0.10]
        [--dimensions coherence,consistency,fluency,relevance]

Prints, measured in one run:
1. per label seed and dimension (SummEval, 12 systems, the GPT-4 judge, `fraction` of each
   system's summaries with the experts' median label, default fit settings): the fit's
   diagnostics, and for the model, stratified PPI++ and post-stratified human-only: coverage
   of the all-expert mean by the 90% intervals, mean width, mean absolute error, the largest
   error and its system; then totals (targets: every fit passes; coverage >= 88%; width <=
   PPI++'s; error <= human-only's; no cell's mean off by more than 0.5 levels);
2. baseline intervals outside the scale [1, 5] (target 0);
3. same seed, same numbers: a refit after recompiling gives identical draws (target: yes);
4. on the sample workspace (sample_data/support.*: two yes/no metrics and the 1-5 style metric),
   each metric's fit time, compiled, median of three (target: style <= 2x the slower yes/no).
Needs ../shared/data/summeval (see tests/summeval_data.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from summeval_data import responses, summeval_counts  # noqa: E402

from changeover.core import model_cache  # noqa: E402
from changeover.core.model.baselines import baselines  # noqa: E402
from changeover.core.model.fit import Settings, fit_counts  # noqa: E402


def acceptance(seeds, dimensions, fraction) -> None:
    frame = responses()
    rows = {"model": [], "ppi++": [], "human": []}  # per cell: (covered, width, error)
    failed, outside, worst = 0, 0, []
    head = f"{'dimension':12s} {'seed':>4s}  {'fit':>5s}  {'R-hat':>5s} {'ESS':>5s} {'div':>3s}"
    print(
        head + "   coverage model/ppi++/human   width model/ppi++/human   error model/ppi++/human"
        "   largest model error"
    )
    for seed in seeds:
        for d in dimensions:
            counts, truth = summeval_counts(d, fraction, seed, frame)
            start = time.perf_counter()
            fit = fit_counts({d: counts}, [1.0], Settings(seed=seed))
            seconds = time.perf_counter() - start
            diag = fit.diagnostics
            failed += not diag["ok"]
            mean = fit.posteriors[0].quantity()[:, :, 0]  # [D, M] mean levels
            lo, hi = np.quantile(mean, [0.05, 0.95], axis=0)
            off = mean.mean(axis=0) - truth
            k = int(np.argmax(np.abs(off)))
            worst.append((abs(float(off[k])), f"{d} seed {seed} {counts.models[k]} {off[k]:+.2f}"))
            here = {"model": list(zip(lo, hi, mean.mean(axis=0)))}
            cells = [b for b in baselines(counts, [1.0]) if b.region != "overall"]
            for method in ("ppi++", "human"):
                ests = [b.get(method) for b in cells]
                here[method] = [(e.lo, e.hi, e.estimate) for e in ests]
                outside += sum(not (1.0 <= e.lo <= e.estimate <= e.hi <= 5.0) for e in ests)
            parts = []
            for key in ("coverage", "width", "error"):
                vals = []
                for method, cs in here.items():
                    stats = [
                        (lo_ <= t <= hi_, hi_ - lo_, abs(est - t))
                        for (lo_, hi_, est), t in zip(cs, truth)
                    ]
                    if key == "coverage":
                        vals.append(f"{sum(s[0] for s in stats):2d}")
                        rows[method] += stats
                    else:
                        vals.append(
                            f"{np.mean([s[1 if key == 'width' else 2] for s in stats]):.3f}"
                        )
                parts.append("/".join(vals))
            print(
                f"{d:12s} {seed:4d}  {seconds:4.1f}s  {diag['max_rhat']:.3f} "
                f"{min(diag['min_ess_bulk'], diag['min_ess_tail']):5.0f} {diag['divergences']:3d}"
                f"   {parts[0]:>8s} of {len(truth)}           {parts[1]:>17s}"
                f"         {parts[2]:>17s}   {counts.models[k]} {off[k]:+.2f}"
            )
    total = len(rows["model"])
    print(f"\ntotals over {total} cells ({len(seeds)} seeds x {len(dimensions)} dimensions x 12):")
    print(f"  fits failing their diagnostics: {failed} (target 0)")
    for method, stats in rows.items():
        cov = np.mean([s[0] for s in stats])
        print(
            f"  {method:6s} coverage {cov:6.1%}  mean width {np.mean([s[1] for s in stats]):.3f}"
            f"  mean abs error {np.mean([s[2] for s in stats]):.3f}"
            f"  off by more than 0.5: {sum(s[2] > 0.5 for s in stats)}"
            f" (largest {max(s[2] for s in stats):.2f})"
        )
    errors = np.array([s[2] for s in rows["model"]])
    print(
        f"  model cells off by more than 0.5 levels: {int((errors > 0.5).sum())} of {total}; "
        f"largest {max(worst)[1]} (target: none)"
    )
    print("  targets: model coverage >= 88%, width <= ppi++'s, error <= human's, none off > 0.5")
    print(f"\nbaseline intervals outside [1, 5]: {outside} (target 0)")


def same_seed(dimension: str, fraction: float) -> None:
    counts, _ = summeval_counts(dimension, fraction, 3)
    first = fit_counts({dimension: counts}, [1.0], Settings(seed=3)).posteriors[0].p
    with tempfile.TemporaryDirectory() as fresh:  # compile again, into an empty cache
        os.environ["CHANGEOVER_CACHE_DIR"], kept = fresh, os.environ.get("CHANGEOVER_CACHE_DIR")
        model_cache._LOADED.clear()
        again = fit_counts({dimension: counts}, [1.0], Settings(seed=3)).posteriors[0].p
        model_cache._LOADED.clear()
        if kept is None:
            del os.environ["CHANGEOVER_CACHE_DIR"]
        else:
            os.environ["CHANGEOVER_CACHE_DIR"] = kept
    print(
        f"\nsame seed, recompiled: identical draws {np.array_equal(first, again)}, "
        f"largest difference {float(np.abs(first - again).max()):.3g} (target: identical)"
    )


def scale_against_yes_no() -> None:
    from changeover.core.importing.responses import import_file
    from changeover.core.model.counts import counts_for
    from changeover.core.store import Store

    store = Store.memory()
    es = import_file(
        store, ROOT / "sample_data" / "support.csv", ROOT / "sample_data" / "support.toml"
    ).eval_set
    counts = counts_for(store, es)
    settings = Settings()
    times = {}
    for name, c in counts.items():
        fit_counts({name: c}, es.traffic_weights, settings)  # compile outside the timing
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            fit_counts({name: c}, es.traffic_weights, settings)
            runs.append(time.perf_counter() - start)
        times[name] = (statistics.median(runs), len(c.levels))
    print("\nthe sample workspace, one metric per fit, compiled, median of 3 (default settings):")
    for name, (seconds, levels) in times.items():
        print(f"  {name:8s} {levels} levels  {seconds:5.2f} s")
    yes_no = max(s for s, levels in times.values() if levels == 2)
    scale = max(s for s, levels in times.values() if levels > 2)
    print(f"  scale / slower yes/no: {scale / yes_no:.2f} (target <= 2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--fraction", type=float, default=0.10)
    ap.add_argument("--dimensions", default="coherence,consistency,fluency,relevance")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    dimensions = args.dimensions.split(",")
    acceptance(seeds, dimensions, args.fraction)
    same_seed(dimensions[0], args.fraction)
    scale_against_yes_no()


if __name__ == "__main__":
    main()
