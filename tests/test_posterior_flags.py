"""A posterior's cell flags are a typed value, and fits kept before they were read back the
same: their blob, written the old way (the flags a plain dict in the metadata), still loads."""

import io
import json
from dataclasses import replace

import numpy as np
from helpers import random_counts

from changeover.core.decide.cell_checks import widen_unlabelled
from changeover.core.decide.verdicts import decide_all
from changeover.core.model.counts import Counts
from changeover.core.model.instant import instant_posterior
from changeover.core.model.posterior import CellFlags, Posterior, from_bytes, to_bytes
from changeover.core.types import Source


def old_blob(post: Posterior, flags: dict) -> bytes:
    """The fits table's blob as core/model/posterior.to_bytes wrote it until the flags were
    typed: `post.flags` was a dict and went into the metadata as it was."""
    assert post.counts is not None
    arrays = {
        "p0": post.p.astype(np.float32),
        "c0": post.confusion.astype(np.float32),
        "w0": np.asarray(post.weights, dtype=np.float64),
        "n0": post.counts.n,
        "u0": post.counts.u,
    }
    meta = [
        {
            "metric": post.metric,
            "levels": list(post.levels),
            "models": list(post.models),
            "regions": list(post.regions),
            "source": post.source,
            "pass_level": post.pass_level,
            "flags": flags,
            "chains": post.chains,
            "counts": {
                "models": list(post.counts.models),
                "regions": list(post.counts.regions),
                "ties": post.counts.ties,
                "missing_judgments": post.counts.missing_judgments,
            },
        }
    ]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def counts_with_an_unlabelled_cell() -> Counts:
    counts = random_counts(3, 2)
    n = counts.n.copy()
    n[2, 0] = 0
    ties = np.array([[0, 1], [2, 0], [0, 0]])
    return Counts(**{**counts.__dict__, "n": n, "ties": 3, "ties_per_cell": ties})


def test_a_fit_kept_before_the_flags_were_typed_reads_back_the_same():
    counts = counts_with_an_unlabelled_cell()
    post = instant_posterior(counts, [0.5, 0.5], draws=200)
    # what the estimators wrote then: cell_flags' dict, and a key an older version kept
    written = {
        "cell_labels": counts.labels_per_cell.astype(int).tolist(),
        "unlabelled_cells": [["mod2", "reg0"]],
        "cell_ties": [[0, 1], [2, 0], [0, 0]],
        "cell_offset_prior": 0.5,
    }
    (read,) = from_bytes(old_blob(post, written))
    assert read.flags == post.flags
    assert read.flags.cell_labels == tuple(map(tuple, written["cell_labels"]))
    assert read.flags.unlabelled_cells == (("mod2", "reg0"),)
    assert read.flags.ties_of(1) == (2, 0)
    assert read.source is Source.INSTANT
    # decided as the posterior it was written from
    specs = {"m": ("higher", 0.03)}
    now, then = decide_all([read], specs, "mod0"), decide_all([post], specs, "mod0")
    assert [c.reason for c in now] == [c.reason for c in then]


def test_flags_are_written_with_the_keys_fits_have_always_had():
    counts = counts_with_an_unlabelled_cell()
    post = instant_posterior(counts, [0.5, 0.5], draws=200)
    meta = json.loads(np.load(io.BytesIO(to_bytes([post])))["meta"].tobytes())
    assert meta[0]["flags"] == {
        "cell_labels": counts.labels_per_cell.astype(int).tolist(),
        "unlabelled_cells": [["mod2", "reg0"]],
        "cell_ties": [[0, 1], [2, 0], [0, 0]],
    }
    (back,) = from_bytes(to_bytes([post]))
    assert back.flags == post.flags


def test_a_blob_without_flags_reads_as_no_flags():
    post = instant_posterior(random_counts(2, 2), [0.5, 0.5], draws=50)
    (read,) = from_bytes(old_blob(post, {}))
    assert read.flags == CellFlags() and read.flags.labels_of(0) is None


def test_widening_adds_its_cells_and_keeps_the_tallies():
    counts = counts_with_an_unlabelled_cell()
    full = replace(instant_posterior(counts, [0.5, 0.5], draws=200), source=Source.FULL)
    wide = widen_unlabelled(full)
    assert wide.flags.widened_cells == (("mod2", "reg0"),)
    assert wide.flags.cell_labels == full.flags.cell_labels
    assert wide.flags.cell_ties == full.flags.cell_ties
