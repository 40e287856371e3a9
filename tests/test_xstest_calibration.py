"""Real data: the calibration model on XSTest v2 (five models, GPT-4 judge, human labels).

gpt4 is the incumbent, the other four generating models are candidates, the metric is
`refused`. The judge's verdicts cover every response; human labels (majority of the two
annotators, ties left out) are kept on a seeded 10% sample of each (model, region) cell.
The 90% interval of each model's overall refusal rate must cover the rate from all human
labels for at least 4 of 5 models, and the raw judge rate must fall outside it for at least 3
(that judge under-reports refusals).
"""

from pathlib import Path

import numpy as np
import pytest

from changeover.core.model.counts import Counts, counts_for
from changeover.core.model.fit import Settings, fit_counts

pytestmark = pytest.mark.slow

xstest_data = pytest.importorskip("tests.xstest_data")
SAMPLE_SHARE = 0.10


def labelled_sample(full: Counts, share: float, seed: int) -> Counts:
    """Keep human labels on a random `share` of each cell's labelled responses (the rest become
    judged-only): a multivariate hypergeometric draw from the cell's table, which is exactly a
    uniform random sample of responses."""
    rng = np.random.default_rng(seed)
    n = np.zeros_like(full.n)
    M, R, L = full.u.shape
    for m in range(M):
        for r in range(R):
            table = full.n[m, r].ravel()
            keep = int(round(share * table.sum()))
            n[m, r] = rng.multivariate_hypergeometric(table, keep).reshape(L, L)
    u = full.u + (full.n - n).sum(axis=2)
    return Counts(
        full.metric, full.levels, full.models, full.regions, n, u, full.ties, full.missing_judgments
    )


def xstest_counts(tmp_path: Path) -> tuple[Counts, np.ndarray]:
    from changeover.core.importing.responses import import_file
    from changeover.core.store import Store

    data, spec = xstest_data.build_xstest_files(tmp_path, judge="gpteval")
    store = Store.memory()
    es = import_file(store, data, spec).eval_set
    full = counts_for(store, es)["refused"]
    weights = np.asarray([dict(zip(es.region_names, es.traffic_weights))[r] for r in full.regions])
    return full, weights


def calibration_result(
    full: Counts, weights: np.ndarray, settings: Settings, seed: int = 2026
) -> dict:
    """Per model: the 90% interval, the all-labels human rate and the raw judge rate (overall)."""
    counts = labelled_sample(full, SAMPLE_SHARE, seed)
    post = fit_counts({"refused": counts}, weights, settings).posteriors[0]
    overall = post.overall()  # [S, M]
    human = (full.n[:, :, 1, :].sum(axis=-1) / full.n.sum(axis=(2, 3))) @ weights
    judged = full.n.sum(axis=2) + full.u
    judge = (judged[..., 1] / judged.sum(axis=-1)) @ weights
    out = {}
    for k, model in enumerate(full.models):
        lo, hi = np.quantile(overall[:, k], [0.05, 0.95])
        out[model] = {
            "interval": (float(lo), float(hi)),
            "human": float(human[k]),
            "judge": float(judge[k]),
            "labels": int(counts.n[k].sum()),
        }
    return out


@pytest.mark.skipif(xstest_data.xstest_dir() is None, reason="../shared/data/xstest not present")
def test_xstest_intervals_cover_human_rates_and_exclude_raw_judge(tmp_path):
    full, weights = xstest_counts(tmp_path)
    assert full.models[0] == "gpt4" and len(full.models) == 5
    result = calibration_result(full, weights, Settings(chains=2, draws=1000, tune=700, seed=5))
    covers = [lo <= r["human"] <= hi for r in result.values() for lo, hi in [r["interval"]]]
    outside = [not lo <= r["judge"] <= hi for r in result.values() for lo, hi in [r["interval"]]]
    assert sum(covers) >= 4, result
    assert sum(outside) >= 3, result
