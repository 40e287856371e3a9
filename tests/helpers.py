"""Helpers the tests share (a module, not a test file: test files never import each other).

Workspaces with known contents, a canned fitter with the real fitter's signature, canned fits
for the results screen, and the Pilot helpers that read the screen as a user sees it.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
from pathlib import Path

import numpy as np
from textual.app import App
from textual.widgets import DataTable

from changeover.core.model.counts import Counts, counts_for, data_hash
from changeover.core.model.fit import FitResult
from changeover.core.model.instant import instant_posterior
from changeover.core.model.posterior import CellFlags, Posterior, to_bytes
from changeover.core.settings import Settings
from changeover.core.store import Store
from changeover.core.types import Diagnostics, EvalSet, FitCancelled, FitRecord, Metric, Region

# ---- the Pilot: run, settle, read the screen ---------------------------------------------------


def run_async(fn):
    """Run an async Pilot test with asyncio.run (no async pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def screen_text(app) -> str:
    """What the terminal would show, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def settle(pilot):
    """Wait until the app is quiet: messages handled, workers done, the screen's data in."""
    for _ in range(500):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        screen = pilot.app.screen
        if not (getattr(screen, "loading", False) or getattr(screen, "counting", False)):
            break
        await pilot.pause(0.01)
    await pilot.pause()


# ---- a small eval set of three models x three regions x three metrics (queue, app, tmux) -------

MODELS = ("oldmodel-alpha", "newmodel-beta", "newmodel-gamma")
REGIONS = ("EU", "US", "APAC")
RATIONALE = "JUDGE-RATIONALE"


def queue_spec(name="support") -> EvalSet:
    return EvalSet(
        id=0,
        name=name,
        incumbent=MODELS[0],
        regions=(Region("EU", 3.0), Region("US", 2.0), Region("APAC", 1.0)),
        metrics=(
            Metric("correct", ("no", "yes"), "higher", 0.03, "Is the answer right?", ("n", "y")),
            Metric("refused", ("no", "yes"), "match", 0.02, "Did it decline?", ("n", "y")),
            Metric(
                "style",
                ("1", "2", "3", "4", "5"),
                "higher",
                0.2,
                "Tone and clarity.",
                ("1", "2", "3", "4", "5"),
                pass_level=3,
            ),
        ),
        description="support bot migration",
        judge="judge-x",
    )


def make_workspace(
    store: Store,
    n_items: int = 30,
    seed: int = 7,
    name: str = "support",
    texts: dict[int, str] | None = None,
) -> EvalSet:
    """An eval set of n_items items x 3 models, judged on every metric; fixed for a seed."""
    rng = random.Random(seed)
    es = store.save_eval_set(queue_spec(name))
    texts = texts or {}
    responses, judgments = [], []
    for k in range(n_items):
        ext = f"q{k:04d}"
        region = REGIONS[k % len(REGIONS)]
        question = f"Question {k}: how do I reset my password on device {k % 7}?"
        reference = f"Reference answer {k}." if k % 2 == 0 else None
        for mi, model in enumerate(MODELS):
            text = texts.get(
                k * len(MODELS) + mi, f"Answer {k} from a model: press settings, then reset."
            )
            responses.append((ext, region, question, reference, model, text))
            for metric, levels in (("correct", 2), ("refused", 2), ("style", 5)):
                level = rng.randrange(levels)
                judgments.append(
                    (
                        ext,
                        model,
                        metric,
                        "judge-x",
                        level,
                        str(level),
                        None,
                        f"{RATIONALE} {metric} {level}",
                    )
                )
    with store.importing(es.id) as batch:
        batch.add_responses(responses)
        batch.add_judgments(judgments)
    return store.eval_set(es.id)


# ---- a canned fitter: the real fitter's signature, no sampling ----------------------------------

CANNED_DIAGNOSTICS = {
    "max_rhat": 1.002,
    "min_ess_bulk": 900.0,
    "min_ess_tail": 700.0,
    "divergences": 0,
    "ok": True,
    "sampler": "canned",
    "per_metric": {},
    "reasons": [],
}


def canned_fitter(calls: list | None = None, diagnostics: dict | None = None):
    """Instant posteriors dressed as a fit: real shapes and flags, no sampling. `calls`
    collects (counts, weights, settings) per fit; `diagnostics` replaces the passing ones."""

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
        return FitResult(
            posts, Diagnostics.from_dict(diagnostics or CANNED_DIAGNOSTICS), settings, 0.01
        )

    return fit


# ---- canned fits with known means (the results and calibration screens) ------------------------

INCUMBENT, GOOD, BAD, MAYBE = "old-model", "good-model", "bad-[b]model[/b]", "maybe-model"
RESULT_MODELS = (INCUMBENT, GOOD, BAD, MAYBE)
RESULT_REGIONS = ("eu", "us")
TRAFFIC = (3.0, 1.0)
# planted rates of "correct" per model (same in both regions) and half-widths of their draws
RATES = {INCUMBENT: 0.80, GOOD: 0.86, BAD: 0.70, MAYBE: 0.79}
WIDTHS = {INCUMBENT: 0.01, GOOD: 0.01, BAD: 0.01, MAYBE: 0.12}
S = 400


def make_eval_set(store: Store) -> EvalSet:
    return store.save_eval_set(
        EvalSet(
            id=0,
            name="support [red]mini[/red]",
            incumbent=INCUMBENT,
            regions=tuple(Region(r, t) for r, t in zip(RESULT_REGIONS, TRAFFIC)),
            metrics=(
                Metric("correct", ("no", "yes"), "higher", 0.02, keys=("n", "y")),
                Metric("style", ("1", "2", "3"), "higher", 0.1, keys=("1", "2", "3")),
            ),
        )
    )


def build_workspace(labels_per_cell: int = 6) -> tuple[Store, EvalSet]:
    """Two regions, four models, 10 items per region; judge verdicts on all, a few labels."""
    store = Store.memory()
    es = make_eval_set(store)
    responses, judgments, ratings = [], [], []
    for region in RESULT_REGIONS:
        for k in range(10):
            item = f"{region}-{k}"
            for m, model in enumerate(RESULT_MODELS):
                responses.append(
                    (item, region, f"question {item}", None, model, f"answer {item} {m}")
                )
                judge = int((k + m) % 5 != 0)
                judgments.append((item, model, "correct", "judge", judge, str(judge), None, None))
                judgments.append((item, model, "style", "judge", (k + m) % 3, None, None, None))
                if k < labels_per_cell:
                    human = judge if k % 4 else 1 - judge
                    ratings.append((item, model, "correct", "ann", human, "2026-01-01T00:00:00"))
                    ratings.append(
                        (item, model, "style", "ann", (k + 2 * m) % 3, "2026-01-01T00:00:00")
                    )
                    if k < 3:
                        ratings.append(
                            (item, model, "correct", "bob", judge, "2026-01-01T00:00:01")
                        )
    with store.importing(es.id) as batch:
        batch.add_responses(responses)
        batch.add_judgments(judgments)
        batch.add_ratings(ratings)
    return store, es


def canned_posteriors(es: EvalSet, cell_labels: int = 40) -> list[Posterior]:
    """Draws symmetric around planted means, so every posterior mean is known exactly."""
    offsets = np.linspace(-1.0, 1.0, S)
    M, R = len(RESULT_MODELS), len(RESULT_REGIONS)
    weights = np.array(es.traffic_weights)
    flags = CellFlags.from_dict(
        {"cell_labels": [[cell_labels] * R for _ in RESULT_MODELS], "unlabelled_cells": []}
    )
    p = np.zeros((S, M, R, 2))
    for m, model in enumerate(RESULT_MODELS):
        p[:, m, :, 1] = (RATES[model] + WIDTHS[model] * offsets)[:, None]
    p[..., 0] = 1.0 - p[..., 1]
    conf = np.zeros((S, M, R, 2, 2))
    conf[..., 1, 1] = 0.9 + 0.05 * offsets[:, None, None]
    conf[..., 1, 0] = 1.0 - conf[..., 1, 1]
    conf[..., 0, 0] = 0.8 + 0.05 * offsets[:, None, None]
    conf[..., 0, 1] = 1.0 - conf[..., 0, 0]
    correct = Posterior(
        "correct",
        ("no", "yes"),
        RESULT_MODELS,
        RESULT_REGIONS,
        weights,
        p,
        conf,
        "full",
        None,
        flags,
    )
    ps = np.zeros((S, M, R, 3))
    for m in range(M):
        ps[:, m] = [0.2, 0.3, 0.5]  # mean level 2.3 everywhere: every candidate exactly even
    ps[..., 0] += 0.05 * offsets[:, None, None]
    ps[..., 2] -= 0.05 * offsets[:, None, None]
    conf3 = np.tile(np.eye(3) * 0.7 + 0.1, (S, M, R, 1, 1))
    style = Posterior(
        "style",
        ("1", "2", "3"),
        RESULT_MODELS,
        RESULT_REGIONS,
        weights,
        ps,
        conf3,
        "full",
        2,
        flags,
    )
    return [correct, style]


DIAGNOSTICS = {
    "max_rhat": 1.003,
    "min_ess_bulk": 812.0,
    "min_ess_tail": 640.0,
    "divergences": 0,
    "ok": True,
    "sampler": "canned",
    "per_metric": {},
}


def save_canned_fit(store: Store, es: EvalSet, diagnostics: dict | None = None) -> FitRecord:
    return store.save_fit(
        es.id,
        Settings(),
        data_hash(counts_for(store, es)),
        Diagnostics.from_dict(diagnostics or DIAGNOSTICS),
        to_bytes(canned_posteriors(es)),
    )


# ---- a bulk import file (concurrency, signals) -------------------------------------------------

SPEC_TOML = """\
name = "{name}"
incumbent = "old"
judge = "judge"

[regions]
EU = 3000000
US = 2300000

[[metrics]]
name = "correct"
levels = ["no", "yes"]
direction = "higher"
margin = 0.03
guideline = "Is the answer right?"
keys = ["n", "y"]

[[metrics]]
name = "style"
levels = ["1", "2", "3", "4", "5"]
direction = "higher"
margin = 0.2
guideline = "Tone and format"
keys = ["1", "2", "3", "4", "5"]
"""


def write_bulk_file(directory: Path, rows: int) -> tuple[Path, Path]:
    """A CSV of `rows` responses for a second eval set, with its spec."""
    spec = directory / "bulk.toml"
    spec.write_text(SPEC_TOML.format(name="bulk"))
    csv = directory / "bulk.csv"
    with csv.open("w") as f:
        f.write("item_id,region,question,model,response,judge_correct,judge_style\n")
        for i in range(rows):
            item = i // 2
            f.write(
                f"b{item},{'EU' if item % 3 else 'US'},Bulk question {item}?,"
                f'{"old" if i % 2 else "new"},"Bulk answer {i}, long enough to be a real '
                f'answer to the question.",{"yes" if i % 3 else "no"},{1 + i % 5}\n'
            )
    return csv, spec


# ---- hosting one screen, and reading its widgets -----------------------------------------------


class ScreenApp(App):
    """A tiny host: the screen under test pushed on top of the default one."""

    def __init__(self, make_screen):
        super().__init__()
        self.make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())


def plain(renderable) -> str:
    return getattr(renderable, "plain", str(renderable))


def table_text(table: DataTable) -> str:
    return "\n".join(
        " | ".join(plain(c) for c in table.get_row(row.key)) for row in table.ordered_rows
    )


def fixed_fitter(posteriors, diagnostics: dict | None = None, calls: list | None = None):
    """A fitter that returns these posteriors whatever the counts (known means on screen)."""

    def fit(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
        if calls is not None:
            calls.append(threading.current_thread().name)
        for k in range(5):
            if on_progress:
                on_progress(k / 4, f"step {k}")
        diag = Diagnostics.from_dict(diagnostics or DIAGNOSTICS)
        return FitResult(list(posteriors), diag, settings, 0.01)

    return fit


def random_counts(M: int, R: int, L: int = 2, seed: int = 0, judged=(5, 40)) -> Counts:
    """Counts of one metric with M models, R regions and L levels: up to 5 labels per (human,
    judge) pair and `judged` (low, high) judged responses per judge level, drawn at random."""
    rng = np.random.default_rng(seed)
    n = rng.integers(0, 6, size=(M, R, L, L))
    u = rng.integers(*judged, size=(M, R, L))
    return Counts(
        "m",
        tuple(str(k) for k in range(L)),
        tuple(f"mod{k}" for k in range(M)),
        tuple(f"reg{k}" for k in range(R)),
        n.astype(np.int64),
        u.astype(np.int64),
    )
