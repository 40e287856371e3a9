"""The results screen in a real 80x24 terminal (tmux): with three and with five candidates, every
candidate's verdict for every region, the overall row and every metric is on screen without
scrolling, on every tab, and the cell in full is one key away."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from helpers_tmux import Tmux, tmux_missing

from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region
from changeover.core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ("North America", "UK & Ireland", "DACH", "Latin America", "Southeast Asia", "ME")
MODELS = ("atlas-2", "atlas-3", "swift-mini", "guardian-1", "orca-large", "nimbus-7b")
GLYPHS = {"ready": "✔", "not ready": "✘", "undecided": "?"}

pytestmark = pytest.mark.skipif(tmux_missing() is not None, reason=str(tmux_missing()))


def build(path: Path, n_models: int) -> EvalSet:
    """Six regions, a yes/no metric and a 1-5 scale with a pass level, 12 labels per cell;
    candidates better, worse and level with the incumbent, so every verdict shows up."""
    models = MODELS[:n_models]
    rng = random.Random(n_models)
    es = EvalSet(
        0,
        "kestrel",
        models[0],
        tuple(Region(r, 1.0 + k) for k, r in enumerate(REGIONS)),
        (
            Metric("correct", ("no", "yes"), "higher", 0.03),
            Metric("style", ("1", "2", "3", "4", "5"), "higher", 0.25, pass_level=3),
        ),
    )
    quality = {m: q for m, q in zip(models, (0.75, 0.95, 0.45, 0.76, 0.9, 0.6))}
    responses, judgments, ratings = [], [], []
    for region in REGIONS:
        for k in range(40):
            item = f"{region}-{k}"
            for m, model in enumerate(models):
                responses.append((item, region, f"q {item}", None, model, f"a {item} {m}"))
                good = rng.random() < quality[model]
                style = min(4, max(0, round(quality[model] * 5 - 1 + rng.gauss(0, 0.8))))
                for metric, truth, levels in (("correct", int(good), 2), ("style", style, 5)):
                    judge = truth if rng.random() < 0.85 else rng.randrange(levels)
                    judgments.append((item, model, metric, "judge", judge, None, None, None))
                    if k < 12:
                        ratings.append((item, model, metric, "ann", truth, "2026-01-01T00:00"))
    with Store.open(path, create=True) as store:
        es = store.save_eval_set(es)
        with store.importing(es.id) as batch:
            batch.add_responses(responses)
            batch.add_judgments(judgments)
            batch.add_ratings(ratings)
    return es


def expected(path: Path, es: EvalSet) -> dict[str, dict[str, str]]:
    """Per tab (metric name, or "all"), per row label: the candidates' glyphs in order, from
    the same results value the app shows (the instant posterior: no fit yet)."""
    with Workspace.open(path, read_only=True) as ws:
        data = ws.results(es)
    out: dict[str, dict[str, str]] = {"all": {}}
    for view in data.metrics:
        rows = out.setdefault(view.name, {})
        for row in view.rows:
            rows[row.region] = "".join(GLYPHS[c.decision.verdict] for c in row.cells[1:])
        out["all"][view.name] = rows["overall"]
    return out


def shown(screen: str, label: str) -> str | None:
    """The glyphs on the screen line of a row (None: no such line; the tab bar above the table
    also starts with a metric's name)."""
    found = None
    for line in screen.splitlines():
        if line.startswith(f" {label} "):
            found = "".join(ch for ch in line[len(label) + 1 :] if ch in "✔✘?")
    return found


def named(screen: str, name: str) -> bool:
    """Is `name` in the table's header, on one line or wrapped onto the second?"""
    lines = screen.splitlines()
    top = next(k for k, line in enumerate(lines) if line.startswith((" region ", " overall ")))
    one, two = lines[top], lines[top + 1] + " " * 80
    for cut in range(len(name), 0, -1):
        at = one.find(f" {name[:cut]}")
        if at >= 0 and (cut == len(name) or two[at + 1 :].startswith(name[cut:])):
            return True
    return False


@pytest.mark.parametrize("candidates", [3, 5])
def test_every_verdict_on_every_tab_at_80x24(tmp_path, candidates):
    workspace = tmp_path / "w.changeover"
    es = build(workspace, candidates + 1)
    want = expected(workspace, es)
    glyph_kinds = {g for rows in want.values() for gs in rows.values() for g in gs}
    assert glyph_kinds == {"✔", "✘", "?"}, "the workspace should give every verdict"
    term = Tmux(tmp_path, width=80, height=24)
    try:
        term.run(f"cd {ROOT} && {sys.executable} -m changeover.cli open {workspace}")
        term.wait_for("enter browse", timeout=60)
        term.keys("v")
        for tab in ("correct", "style", "all"):
            rows = want[tab]

            def complete(screen: str, rows=rows) -> bool:
                return all(shown(screen, label) == glyphs for label, glyphs in rows.items())

            screen = term.wait_for(complete, timeout=60)
            assert "cells:" in screen and "enter: the cell" in screen  # the legend says how
            for name in MODELS[: candidates + 1]:  # every model named in the header
                assert named(screen, name), name
            term.keys("]")
        term.wait_for(" region ", timeout=20)  # ] went round to correct: regions are rows
        term.keys("Down", "Right", "Right", "Enter")  # a cell in full
        screen = term.wait_for("90% interval", timeout=20)
        assert "Details: one cell" in screen and "P(holds)" in screen
        assert f"{MODELS[1]} · correct · {REGIONS[1]}" in screen
        term.keys("Escape")
        term.wait_for(lambda s: "Details" not in s, timeout=20)
        term.keys("q")
        term.wait_for("enter browse", timeout=20)
        term.keys("q")
        term.wait_for(lambda s: not term.alternate_on(), timeout=20)
    finally:
        term.close()


def test_the_first_results_show_a_loading_line_at_once(tmp_path):
    """Without a fit the first results take seconds (the instant posterior, and the statistics
    libraries loading for the first time in the process); the screen says so from its first
    frame instead of standing blank."""
    workspace = tmp_path / "w.changeover"
    build(workspace, 4)
    term = Tmux(tmp_path, width=80, height=24)
    try:
        term.run(f"cd {ROOT} && {sys.executable} -m changeover.cli open {workspace}")
        term.wait_for("enter browse", timeout=60)
        term.keys("v")
        frames = []
        while not frames or " region " not in frames[-1]:
            frames.append(term.screen())
            assert len(frames) < 3000, "the results never came"
        before = [f for f in frames if f.startswith("Results · kestrel") and " region " not in f]
        assert before, "no frame between the screen and its results"
        for frame in before:
            assert frame.splitlines()[1].startswith("loading the results..."), frame
        assert "loading" not in frames[-1]
    finally:
        term.close()


def test_a_stale_fit_says_f_refits_on_the_first_line_at_80_columns_in_ascii(tmp_path):
    """A label after the fit: the status line's first line at 80 columns, in ASCII mode, keeps
    the fit, its staleness and the key that refits (it wrapped 'refits' onto a second line)."""
    from helpers import canned_fitter

    workspace = tmp_path / "w.changeover"
    es = build(workspace, 4)
    with Workspace.open(workspace, fitter=canned_fitter()) as ws:
        fit = ws.fit(es)
        response = next(r for r in ws.browse_page(es.id, limit=500) if r.n_ratings == 0)
        ws.store.add_rating(response.response_id, "correct", "cy", 1)
    term = Tmux(tmp_path, width=80, height=24, env={"CHANGEOVER_ASCII": "1"})
    try:
        term.run(f"cd {ROOT} && {sys.executable} -m changeover.cli open {workspace}")
        term.wait_for("enter browse", timeout=60)
        term.keys("v")
        screen = term.wait_for("stale", timeout=60)
        status = screen.splitlines()[1]
        assert status.startswith(f"fit #{fit.id}, ") and "." in status  # ASCII separators
        assert "stale: 1 label since, updated by it . f refits" in status, status
    finally:
        term.close()
