"""Labels chosen by hand come in as chosen (issue 24): `import-labels --open` and a `selection`
column store them as the app stores its own open labels, so the counts and the fit are the
same; the ratings export round-trips them; and "open" means one thing on every face: a label
whose response a person chose, left out of the fit (browse no longer calls imported labels
"open")."""

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import canned_fitter, run_async, screen_text, settle

from changeover.core.model.counts import counts_for
from changeover.core.types import OPEN, RANDOM
from changeover.core.workspace import Workspace
from changeover.tui.app import ChangeoverApp
from changeover.tui.screens.browse import BrowseScreen

ROOT = Path(__file__).resolve().parents[1]
# one worker builds the module's workspaces (`triaged`), not each of them
pytestmark = pytest.mark.xdist_group("import_labels_open")
SPEC = """
name = "triage"
incumbent = "old"
judge = "j"
[regions]
EU = 2
US = 1
[[metrics]]
name = "correct"
levels = ["no", "yes"]
direction = "higher"
margin = 0.05
[[metrics]]
name = "style"
levels = ["1", "2", "3"]
direction = "higher"
margin = 0.2
"""
MODELS = ("old", "new")
REGIONS = ("EU", "US")
ITEMS = 40  # per region: 2 models x 2 regions x 40 = 160 responses
LABEL_HEADER = ["item_id", "model", "metric", "rater", "value", "created_at"]


def key_of(item: str, model: str) -> str:
    """A piece of text only this response holds, so `/` in browse finds exactly one row."""
    return f"{item}-{model}"


def build_files(d: Path) -> dict:
    """A spec, a responses file, a file of random labels (rater ann, drawn per cell) and a
    triage file (rater tri: responses where the judge said yes, re-rated by hand, mostly ones
    ann did not label; one she did)."""
    rng = random.Random(24)
    (d / "spec.toml").write_text(SPEC)
    rows, judged = [], {}
    for region in REGIONS:
        for k in range(ITEMS):
            item = f"{region.lower()}{k:02d}"
            for model in MODELS:
                correct = "yes" if rng.random() < 0.7 else "no"
                style = str(rng.randint(1, 3))
                judged[item, model] = (region, correct, style)
                rows.append(
                    [
                        item,
                        region,
                        f"Question {item}?",
                        model,
                        f"Reply {key_of(item, model)}.",
                        correct,
                        style,
                    ]
                )
    with open(d / "responses.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "region", "question", "model", "response"] + JUDGE_COLS)
        w.writerows(rows)
    random_rows, triage = [], []
    for region in REGIONS:
        for model in MODELS:
            cell = sorted(k for k, v in judged.items() if k[1] == model and v[0] == region)
            drawn = rng.sample(cell, 8)
            for item, _ in drawn:
                _, correct, style = judged[item, model]
                flip = rng.random() < 0.25
                human = ("no" if correct == "yes" else "yes") if flip else correct
                stamp = f"2026-11-0{1 + len(random_rows) % 9}T10:00:00Z"
                random_rows += [
                    [item, model, "correct", "ann", human, stamp],
                    [item, model, "style", "ann", style, stamp],
                ]
            looks_wrong = [k for k in cell if k not in drawn and judged[k][1] == "yes"]
            triage += [(item, model, "no", "1") for item, _ in looks_wrong[:1]]
    overlap = next(k for k in judged if any(r[0] == k[0] and r[1] == k[1] for r in random_rows))
    triage.append((overlap[0], overlap[1], "no", "2"))  # ann's random label stays counted
    write_labels(d / "random.csv", random_rows)
    write_labels(
        d / "triage.csv",
        [
            row
            for item, model, correct, style in triage
            for row in (
                [item, model, "correct", "tri", correct, "2026-11-20T09:00:00Z"],
                [item, model, "style", "tri", style, "2026-11-20T09:00:00Z"],
            )
        ],
    )
    return {"triage": triage}


JUDGE_COLS = ["judge_correct", "judge_style"]


def write_labels(path: Path, rows: list, header: list = LABEL_HEADER) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def rows_of(path: Path) -> list[list[str]]:
    """A labels file's rows, without its header."""
    return list(csv.reader(path.read_text().splitlines()))[1:]


def cli(*args, check: int | None = 0) -> subprocess.CompletedProcess:
    """`changeover ARGS` as the user runs it: a process of its own."""
    out = subprocess.run(
        [sys.executable, "-m", "changeover.cli", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check is not None:
        assert out.returncode == check, out.stderr
    assert "Traceback" not in out.stderr
    return out


def new_workspace(d: Path, name: str) -> Path:
    ws = d / f"{name}.changeover"
    cli("import", ws, d / "responses.csv", "--spec", d / "spec.toml")
    return ws


def counts_of(ws: Path) -> dict:
    with Workspace.open(ws, read_only=True) as w:
        es = w.store.eval_set("triage")
        return counts_for(w.store, es)


def same_counts(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name], b[name]
        assert (x.models, x.regions) == (y.models, y.regions)
        assert np.array_equal(x.n, y.n) and np.array_equal(x.u, y.u), name
        assert (x.left_out, x.ties, x.open_counted) == (y.left_out, y.ties, y.open_counted), name
        assert np.array_equal(x.left_out_per_cell, y.left_out_per_cell), name


def active_labels(ws: Path) -> set:
    """The labels in force: (item, model, metric, rater, level, selection, created_at)."""
    with Workspace.open(ws, read_only=True) as w:
        es = w.store.eval_set("triage")
        views = {}
        out = set()
        for r in w.store.ratings(es.id, include_retracted=False):
            v = views.setdefault(r.response_id, w.response_view(r.response_id))
            sel = OPEN if r.open else RANDOM
            out.add((v.item.external_id, v.response.model, r.metric, r.rater, r.value, sel))
            out.add((v.item.external_id, v.response.model, r.metric, r.rater, r.created_at))
        return out


async def rate_openly(pilot, item: str, model: str, keys: tuple[str, ...]) -> None:
    """Browse: `/` finds the response by its text, `enter` rates it openly, one key a metric."""
    await pilot.press("slash", "ctrl+u")
    await pilot.press(*key_of(item, model), "enter")
    await settle(pilot)
    assert len(pilot.app.screen.rows) == 1
    await pilot.press("enter")
    await settle(pilot)
    assert not pilot.app.screen.blind
    await pilot.press(*keys)
    await settle(pilot)
    assert isinstance(pilot.app.screen, BrowseScreen)


@pytest.fixture(scope="module")
def triaged(tmp_path_factory):
    """Two workspaces with ann's random labels, and tri's triage: in `app` given openly in
    the app's browse screen, in `imported` imported with `import-labels --open`."""
    d = tmp_path_factory.mktemp("triage")
    spec = build_files(d)
    app_ws, imported = new_workspace(d, "app"), new_workspace(d, "imported")
    for ws in (app_ws, imported):
        cli("import-labels", ws, d / "random.csv")
    out = cli("import-labels", imported, d / "triage.csv", "--open")
    assert "are open (chosen by a person): kept apart and left out of the fit" in out.stdout

    @run_async
    async def triage_in_the_app():
        with Workspace.open(app_ws, fitter=canned_fitter()) as w:  # no fit here
            app = ChangeoverApp(w, rater="tri", seed=1)
            async with app.run_test(size=(100, 30)) as pilot:
                await settle(pilot)
                await pilot.press("enter")
                await settle(pilot)
                for item, model, correct, style in spec["triage"]:
                    await rate_openly(pilot, item, model, ({"no": "n", "yes": "y"}[correct], style))

    triage_in_the_app()
    return d, app_ws, imported, spec


def test_open_import_gives_the_counts_of_open_labels_in_the_app(triaged):
    d, app_ws, imported, spec = triaged
    app_counts, imported_counts = counts_of(app_ws), counts_of(imported)
    same_counts(app_counts, imported_counts)
    # the triage is left out: the responses only tri labelled are unlabelled in the fit
    assert app_counts["correct"].left_out == len(spec["triage"]) - 1
    # ... which the flag changes: imported as random, the same labels enter the fit
    plain = new_workspace(d, "plain")
    cli("import-labels", plain, d / "random.csv")
    cli("import-labels", plain, d / "triage.csv")
    counted = counts_of(plain)
    assert counted["correct"].left_out == 0
    c, a = counted["correct"], app_counts["correct"]
    assert c.n.sum() + c.ties == a.n.sum() + a.left_out  # the overlap may tie with ann
    # and every face's results agree: the instant posterior (no fit here) with its flags
    with (
        Workspace.open(app_ws, read_only=True) as a,
        Workspace.open(imported, read_only=True) as b,
    ):
        ra = a.results(a.store.eval_set("triage"), instant=True)
        rb = b.results(b.store.eval_set("triage"), instant=True)
    assert ra.metrics == rb.metrics and ra.candidates == rb.candidates
    assert [f.message for f in ra.flags] == [f.message for f in rb.flags]
    assert any(f.kind == "open_labels" and "imported with --open" in f.message for f in rb.flags)


def test_info_counts_open_labels_apart(triaged):
    _, app_ws, imported, spec = triaged
    n_open = 2 * len(spec["triage"])  # two metrics each
    for ws in (app_ws, imported):
        text = cli("info", ws).stdout
        assert f"({n_open} of them open: chosen by a person, left out of the fit)" in text, text
        doc = json.loads(cli("info", ws, "--format", "json").stdout)
        assert doc["eval_sets"][0]["ratings_open"] == n_open


def copy_of(ws: Path, target: Path) -> Path:
    """A copy of a workspace (SQLite's backup, so nothing in its WAL is missed)."""
    import sqlite3

    with sqlite3.connect(ws) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def test_a_selection_column_marks_each_row(triaged, tmp_path):
    """One file holding both kinds: the `selection` column says per row; the same counts and
    labels as the random file plus the triage imported with --open."""
    d, app_ws, imported, _ = triaged
    random_rows = rows_of(d / "random.csv")
    triage_rows = rows_of(d / "triage.csv")
    mixed = write_labels(
        tmp_path / "mixed.csv",
        [[*r, "random"] for r in random_rows[::2]]
        + [[*r, ""] for r in random_rows[1::2]]  # no selection: random, without --open
        + [[*r, "Open"] for r in triage_rows],
        [*LABEL_HEADER, "selection"],
    )
    ws = tmp_path / "mixed.changeover"
    cli("import", ws, d / "responses.csv", "--spec", d / "spec.toml")
    out = cli("import-labels", ws, mixed)
    assert f"{len(triage_rows)} of the file's labels are open" in out.stdout
    same_counts(counts_of(ws), counts_of(imported))
    same_counts(counts_of(ws), counts_of(app_ws))
    assert active_labels(ws) == active_labels(imported)


def test_selection_problems_are_refused_with_their_lines(triaged, tmp_path):
    d, _, imported, _ = triaged
    ws = copy_of(imported, tmp_path / "w.changeover")
    before = active_labels(ws)
    triage_rows = rows_of(d / "triage.csv")
    bad = write_labels(
        tmp_path / "bad.csv",
        [
            [*triage_rows[0], "open"],  # 2: fine
            [*triage_rows[1], "maybe"],  # 3: not a selection
            [*triage_rows[0][:3], "zed", "yes", "", "random"],  # 4
            [*triage_rows[0][:3], "zed", "yes", "", "open"],  # 5: contradicts line 4
            [*triage_rows[2], "random"],  # 6: the workspace holds it as open
        ],
        [*LABEL_HEADER, "selection"],
    )
    err = cli("import-labels", ws, bad, check=1).stderr
    for expected in (
        f"{bad}:3: selection: 'maybe' is not random or open",
        f"{bad}:5: selection: open here but random on line 4",
        f"{bad}:6: selection: rater tri already has this label for this response's",
        "in the workspace as open, not random",
    ):
        assert expected in err, err
    err = cli("import-labels", ws, bad, "--open", check=1).stderr
    assert f"{bad}:4: selection: random here, but --open imports every label" in err, err
    assert active_labels(ws) == before  # nothing written


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_the_ratings_export_imports_back_as_the_same_labels(triaged, tmp_path, fmt):
    """`export --what ratings` writes each label's selection; imported into a fresh workspace
    of the same responses it gives the same labels in force (rater, level, time, selection)
    and the same counts; into the workspace it came from it adds nothing."""
    d, app_ws, _, _ = triaged
    ws = copy_of(app_ws, tmp_path / "source.changeover")
    with Workspace.open(ws) as w:  # a replaced label and an undone one: events not in force
        es = w.store.eval_set("triage")
        rid = next(r.response_id for r in w.store.ratings(es.id) if r.rater == "ann")
        w.add_rating(rid, "correct", "ann", 0)
        w.retract(w.add_rating(rid, "style", "bob", 2).id, "bob")
    out = tmp_path / f"ratings.{fmt}"
    cli("export", ws, "--what", "ratings", "--format", fmt, "-o", out)
    fresh = tmp_path / "fresh.changeover"
    cli("import", fresh, d / "responses.csv", "--spec", d / "spec.toml")
    report = cli("import-labels", fresh, out).stdout
    assert "rows not active (retracted) were skipped" in report
    assert active_labels(fresh) == active_labels(ws)
    same_counts(counts_of(fresh), counts_of(ws))
    assert "imported 0 labels" in cli("import-labels", ws, out).stdout


@pytest.mark.parametrize("which", ["app", "imported"])
def test_browse_says_open_only_for_labels_left_out_of_the_fit(triaged, which):
    """Browse's detail pane: an imported random label reads "(imported)", not "(open)" (which
    it read before, though the fit counts it); an open label reads "(open)" however it came."""
    d, app_ws, imported, spec = triaged
    ws = app_ws if which == "app" else imported
    item, model, _, _ = spec["triage"][-1]  # labelled by ann (random) and by tri (open)

    @run_async
    async def shown() -> str:
        with Workspace.open(ws, read_only=True) as w:
            app = ChangeoverApp(w, rater="zoe", seed=1)
            async with app.run_test(size=(100, 40)) as pilot:
                await settle(pilot)
                await pilot.press("enter")
                await settle(pilot)
                await pilot.press("slash", *key_of(item, model), "enter")
                await settle(pilot)
                await pilot.press("tab", "end")
                await pilot.pause()
                return screen_text(app)

    text = shown()
    tri = "by tri (open)" if which == "app" else "by tri (imported, open)"
    for expected in ("correct: ", "by ann (imported)", tri):
        assert expected in text, text
    assert "by ann (open)" not in text and "by ann (imported, open)" not in text


def test_the_results_screen_counts_a_cells_open_labels_apart(triaged):
    """A cell in full on the results screen says how many of its responses carry only open
    labels, left out of the fit (each cell here has one triaged response ann did not label)."""
    _, _, imported, _ = triaged

    @run_async
    async def details() -> str:
        with Workspace.open(imported, read_only=True) as w:
            app = ChangeoverApp(w, rater="zoe", seed=1)
            async with app.run_test(size=(80, 24)) as pilot:
                await settle(pilot)
                await pilot.press("v")
                await settle(pilot)
                await pilot.press("down", "right", "enter")  # past the axis row: EU, old
                await pilot.pause()
                return screen_text(app)

    text = details()
    assert "Details: one cell" in text and "old · correct · EU" in text, text
    assert "open-labelled responses left out of the fit: 1 (chosen by a person" in text, text


@pytest.mark.slow
def test_open_import_gives_the_fit_of_open_labels_in_the_app(triaged, tmp_path):
    """The model, seeded, on both workspaces (in one process: the second fit reuses the
    compiled model): the same numbers, verdicts and warnings, the open labels' included."""
    from changeover.core.settings import Settings

    _, app_ws, imported, _ = triaged
    shown = []
    for ws in (app_ws, imported):
        with Workspace.open(copy_of(ws, tmp_path / ws.name)) as w:
            es = w.store.eval_set("triage")
            w.fit(es, Settings.quick(), seed=5)
            r = w.results(es)
        assert r.source == "full"
        shown.append((r.metrics, r.candidates, r.calibration, r.baselines, r.flags))
    assert shown[0] == shown[1]
    assert any(f.kind == "open_labels" for f in shown[0][-1])
