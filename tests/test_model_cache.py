"""Compiled models that outlive the process (core/model/cache.py, core/model/compiling.py).

The fast tests check the keys, the bundle format and the refusals without compiling anything;
the slow ones run `changeover fit` the way a user does: twice in fresh processes on a fresh
cache, two at once, and interrupted with Ctrl-C in a real terminal."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import random_counts
from helpers_tmux import Tmux, tmux_missing

from changeover.core.model import cache as model_cache
from changeover.core.model import fit as model_mod
from changeover.core.model.counts import Counts
from changeover.core.settings import Settings
from changeover.core.store import Store
from changeover.core.types import ModelsReady

CLI = [sys.executable, "-m", "changeover.cli"]


def counts(M: int, R: int, L: int = 2) -> Counts:
    return random_counts(M, R, L, judged=(100, 200))


# ---- keys: which shapes compile again ----------------------------------------------------


@pytest.mark.parametrize("L", [2, 5])
def test_models_and_regions_are_data_not_structure(L):
    """A workspace with other numbers of models and regions uses the same compiled model."""
    settings = Settings(geometry="forward")
    keys = {
        model_mod.job_for(counts(M, R, L), settings).key
        for M, R in [(2, 2), (4, 6), (3, 5), (12, 9)]
    }
    assert len(keys) == 1


def test_what_changes_the_graph_changes_the_key():
    """One model or one region leaves terms out of the graph, and the geometry and pooling
    change it: each gets its own compiled model, and so does a scale against yes/no."""
    forward, aligned = Settings(geometry="forward"), Settings(geometry="aligned")
    keys = [
        model_mod.job_for(counts(4, 6), forward).key,
        model_mod.job_for(counts(4, 6), aligned).key,
        model_mod.job_for(counts(4, 6), Settings(pooling="shared")).key,
        model_mod.job_for(counts(1, 6), forward).key,
        model_mod.job_for(counts(4, 1), forward).key,
        model_mod.job_for(counts(4, 6, L=5), forward).key,
        model_mod.job_for(counts(4, 1, L=5), forward).key,
        model_mod.job_for(counts(1, 6, L=5), forward).key,
    ]
    assert len(set(keys)) == len(keys)
    assert len({model_cache.bundle_key(k) for k in keys}) == len(keys)


def test_the_key_names_the_graph_that_is_built():
    """Two jobs with one key build PyMC models with the same free variables (names and ranks):
    what the key leaves out is only the sizes. (Builds graphs; compiles nothing.)"""
    settings = Settings(geometry="forward")

    def free(c: Counts) -> list[tuple[str, int]]:
        m = model_mod.job_for(c, settings).build()
        return [(v.name, v.ndim) for v in m.free_RVs]

    for L in (2, 5):
        assert free(counts(2, 2, L)) == free(counts(5, 7, L))
        assert free(counts(2, 1, L)) != free(counts(2, 2, L))


def test_the_key_follows_the_libraries_and_the_code(monkeypatch):
    structure = ("yes/no", "partial", "forward", True, True)
    before = model_cache.bundle_key(structure)
    real = model_cache.metadata.version
    monkeypatch.setattr(
        model_cache.metadata,
        "version",
        lambda name: "9.9.9" if name == "pytensor" else real(name),
    )
    assert model_cache.bundle_key(structure) != before


def test_a_bundle_of_another_structure_or_a_broken_one_is_a_miss(tmp_path, monkeypatch):
    """load() refuses without compiling: no bundle, a bundle.json naming another key or
    structure, or one that is not JSON."""
    monkeypatch.setenv("CHANGEOVER_CACHE_DIR", str(tmp_path))
    key = model_cache.bundle_key(("x",))
    assert model_cache.load(key) is None
    folder = model_cache.bundle_folder(key)
    folder.mkdir(parents=True)
    (folder / "bundle.json").write_text("{not json")
    assert model_cache.load(key) is None
    (folder / "bundle.json").write_text(json.dumps({"key": "another", "structure": "('x',)"}))
    assert model_cache.load(key) is None
    (folder / "bundle.json").write_text(json.dumps({"key": key, "structure": "('y',)"}))
    assert model_cache.load(key, ("x",)) is None


def test_the_message_says_how_the_model_came():
    assert ModelsReady(compiled=("correct",), seconds=41.2).text() == (
        "model compiled in 41 s; kept for next time"
    )
    assert ModelsReady(from_cache=("correct", "style")).text() == "model from cache"
    assert ModelsReady(in_memory=("style",)).text() == "model already loaded"
    assert ModelsReady().text() == ""


def test_old_bundles_are_pruned_and_used_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("CHANGEOVER_CACHE_DIR", str(tmp_path))
    old, recent = tmp_path / ("a" * 40), tmp_path / ("b" * 40)
    for folder in (old, recent):
        folder.mkdir()
        (folder / "bundle.json").write_text("{}")
    (tmp_path / "pytensor").mkdir()
    stale = time.time() - (model_cache.KEEP_DAYS + 1) * 86400
    os.utime(old / "bundle.json", (stale, stale))
    model_cache.prune(keep=set())
    assert not old.exists() and recent.exists() and (tmp_path / "pytensor").exists()


# ---- the user's path: `changeover fit` in new processes ------------------------------------

SPEC = """name = "tiny"
incumbent = "old"
[regions]
"EU" = 3
"US" = 2
[[metrics]]
name = "correct"
levels = ["no", "yes"]
direction = "higher"
margin = 0.05
"""


def tiny_workspace(folder: Path, models: int = 2, regions: int = 2) -> Path:
    """One yes/no metric, two models, two regions, 40 items per region, 12 labels per cell:
    one compiled model. More models and regions are the same compiled model (its sizes are
    data) with more parameters to sample."""
    rng = np.random.default_rng(3)
    names = ["old", "new", *(f"cand{k}" for k in range(2, models))]
    places = ["EU", "US", *(f"R{k}" for k in range(2, regions))]
    rows = ["item_id,region,question,model,response,judge_correct,rater,human_correct"]
    for region in places:
        for k in range(40):
            for j, model in enumerate(names):
                truth = rng.random() < (0.8 if j == 0 else 0.7)
                judge = truth if rng.random() < 0.85 else not truth
                rater, human = ("ann", "yes" if truth else "no") if k < 12 else ("", "")
                rows.append(
                    f"{region}{k},{region},q {region}{k}?,{model},answer {k} of {model},"
                    f"{'yes' if judge else 'no'},{rater},{human}"
                )
    weights = "".join(f'"{r}" = {3 if r == "EU" else 2}\n' for r in places)
    (folder / "spec.toml").write_text(SPEC.replace('"EU" = 3\n"US" = 2\n', weights))
    (folder / "rows.csv").write_text("\n".join(rows) + "\n")
    ws = folder / "tiny.changeover"
    subprocess.run(
        [*CLI, "import", str(ws), str(folder / "rows.csv"), "--spec", str(folder / "spec.toml")],
        check=True,
        capture_output=True,
    )
    return ws


def fit(ws: Path, cache: Path) -> tuple[subprocess.CompletedProcess, float]:
    """`changeover fit` in a new process; its CPU seconds, its compiling children's included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [*CLI, "fit", str(ws), "--seed", "7"],
        capture_output=True,
        text=True,
        env={**os.environ, "CHANGEOVER_CACHE_DIR": str(cache)},
        timeout=1800,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, cpu


def report(ws: Path, fit_id: int) -> dict:
    out = subprocess.run(
        [*CLI, "report", str(ws), "--fit", str(fit_id), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    data.pop("fit", None)
    return data


@pytest.mark.slow  # compiles a model (about a minute of CPU on 2 cores)
def test_the_second_process_loads_the_model_the_first_compiled(tmp_path):
    ws, cache = tiny_workspace(tmp_path), tmp_path / "cache"
    first, cold = fit(ws, cache)
    assert first.returncode == 0, first.stderr
    assert "model compiled in" in first.stdout and "kept for next time" in first.stdout
    second, warm = fit(ws, cache)
    assert second.returncode == 0, second.stderr
    assert "model from cache" in second.stdout
    assert warm <= 0.4 * cold, (warm, cold)
    # the same seed and counts through the loaded model: the same numbers
    assert report(ws, 1) == report(ws, 2)
    bundles = [p for p in cache.iterdir() if (p / "bundle.json").exists()]
    assert len(bundles) == 1


@pytest.mark.slow  # compiles a model
def test_two_processes_compiling_at_once_share_one_compile(tmp_path):
    """Two raters on one host fit at once with an empty cache: the second waits for the first's
    compile (a lock per model) instead of compiling it too, says it took the model from the
    cache, and both fits land with the same numbers."""
    ws = tiny_workspace(tmp_path)
    other = tmp_path / "other.changeover"
    shutil.copy(ws, other)
    env = {**os.environ, "CHANGEOVER_CACHE_DIR": str(tmp_path / "cache")}
    procs = [
        subprocess.Popen(
            [*CLI, "fit", str(path), "--seed", "7"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for path in (ws, other)
    ]
    outs = [p.communicate(timeout=1800)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = sorted("compiled" if "model compiled in" in o else "cache" for o in outs)
    assert said == ["cache", "compiled"], outs
    assert report(ws, 1) == report(other, 1)


def test_a_cache_folder_that_cannot_be_written_falls_back_to_a_private_one(tmp_path, monkeypatch):
    """A read-only home must not stop a fit: the models compile into a folder of this process."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CHANGEOVER_CACHE_DIR", str(blocker / "models"))
    monkeypatch.setattr(model_cache, "_FALLBACK", [])
    root = model_cache.writable_root()
    assert root != blocker / "models" and root.is_dir() and os.access(root, os.W_OK)
    assert model_cache.cache_root() == root == model_cache.bundle_folder("k").parent


@pytest.mark.slow  # compiles a model, then samples in a real terminal
def test_ctrl_c_while_compiling_or_sampling_exits_130_and_stores_nothing(tmp_path):
    if (why := tmux_missing()) is not None:
        pytest.skip(why)
    # 12 models x 12 regions: the tiny workspace's compiled model, sampling for seconds (about
    # 6 s at load 4), so the Ctrl-C lands while it samples (2 x 2 can be done in 0.2 s)
    ws, cache = tiny_workspace(tmp_path, 12, 12), tmp_path / "cache"
    term = Tmux(tmp_path, width=120, height=20, env={"CHANGEOVER_CACHE_DIR": str(cache)})
    command = f"{sys.executable} -m changeover.cli fit {ws} --seed 7; echo EXIT=$?"
    try:
        # while compiling: the compiling process goes too, and nothing half-written is kept
        term.run(command)
        term.wait_for("once per machine", timeout=120)  # the progress line, not the path
        term.keys("C-c")
        screen = term.wait_for(exited, timeout=60)
        assert "\nEXIT=130" in screen and "nothing was stored" in screen, screen
        assert "Traceback" not in screen and "Segmentation" not in screen
        assert not any((p / "bundle.json").exists() for p in cache.glob("*") if p.is_dir())
        # while sampling, with the machine's cache (the model compiled once by any test)
        machine = model_cache.cache_root()
        out, _ = fit(ws, machine)
        assert out.returncode == 0, out.stderr
        for delay in (0.2, 1.5):
            term.run("clear")
            term.run(f"CHANGEOVER_CACHE_DIR={machine} " + command.replace("--seed 7", "--seed 8"))
            term.wait_for("sampling correct", timeout=120)  # the progress line
            time.sleep(delay)
            term.keys("C-c")
            screen = term.wait_for(exited, timeout=60)
            assert "\nEXIT=130" in screen and "nothing was stored" in screen, screen
            assert "Segmentation" not in screen and "Aborted" not in screen, screen
    finally:
        term.close()
    store = Store.open(ws, read_only=True)
    try:
        assert len(store.fits(store.eval_sets()[0].id)) == 1  # only the fit that finished
    finally:
        store.close()
    assert _compilers_using(cache) == []


def exited(screen: str) -> bool:
    """The command's status is on screen (its own line, not the command line's `echo`)."""
    return re.search(r"^EXIT=\d+", screen, re.MULTILINE) is not None


def _compilers_using(cache: Path) -> list[int]:
    """Compiling processes still alive for this cache (their environment names it)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"model_compile" in cmd and f"CHANGEOVER_CACHE_DIR={cache}".encode() in env:
            found.append(int(proc.name))
    return found
