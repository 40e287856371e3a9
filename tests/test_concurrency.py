"""Four raters label one eval set at once while an import, fits (counts query + kept fit) and a
long read transaction run beside them: every label lands once and no "database is locked"
escapes. (That a label never waits for the import is tests/test_import_chunks.py's; how long
labels wait is measured by bench/label_wait.py, not asserted: load decides it.)"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
import time
import traceback
from pathlib import Path

import pytest
from helpers import write_bulk_file

from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region
from changeover.core.workspace import Workspace

RATERS = ("ann", "bob", "cat", "dan")
LABELS_EACH = 250
METRICS = ("correct", "style")
RESPONSES = LABELS_EACH // len(METRICS)  # each rater labels every metric of these responses
BULK_ROWS = 30_000  # responses in the file imported while the raters work
PAUSE_S = 0.008  # between two labels: keeps the labelling going while the import runs


def eval_set(name: str) -> EvalSet:
    return EvalSet(
        id=0,
        name=name,
        incumbent="old",
        regions=(Region("EU", 3_000_000), Region("US", 2_300_000)),
        metrics=(
            Metric("correct", ("no", "yes"), "higher", 0.03, "Is the answer right?", ("n", "y")),
            Metric(
                "style",
                ("1", "2", "3", "4", "5"),
                "higher",
                0.2,
                "Tone and format",
                ("1", "2", "3", "4", "5"),
            ),
        ),
    )


def build_workspace(path: Path) -> EvalSet:
    """The eval set the raters label: RESPONSES responses, judged on both metrics."""
    with Store.open(path, create=True) as store:
        es = store.save_eval_set(eval_set("conc"))
        with store.importing(es.id) as batch:
            batch.add_responses(
                [
                    (
                        f"q{i // 2}",
                        "EU" if i % 3 else "US",
                        f"Question {i // 2}?",
                        None,
                        "old" if i % 2 else "new",
                        f"Answer number {i} with some words.",
                    )
                    for i in range(RESPONSES)
                ]
            )
            batch.add_judgments(
                [
                    (
                        f"q{i // 2}",
                        "old" if i % 2 else "new",
                        m,
                        "judge",
                        i % (2 if m == "correct" else 5),
                        None,
                        None,
                        None,
                    )
                    for i in range(RESPONSES)
                    for m in METRICS
                ]
            )
        return es


# ---- workers (module level: spawned processes import this file) ---------------------------


def rater_worker(path: str, rater: str, response_ids: list[int], start, out) -> None:
    """Label every metric of every response through Store.add_rating, timing each call."""
    errors: list[str] = []
    latencies: list[tuple[float, float]] = []  # (wall-clock start, seconds)
    try:
        store = Store.open(path)
        start.wait()
        for k, rid in enumerate(response_ids):
            for m in METRICS:
                value = (k + len(rater)) % (2 if m == "correct" else 5)
                began, t0 = time.time(), time.perf_counter()
                try:
                    store.add_rating(rid, m, rater, value)
                except Exception as exc:  # counted: a label the rater would have lost
                    errors.append(f"{type(exc).__name__}: {exc}")
                latencies.append((began, time.perf_counter() - t0))
                time.sleep(PAUSE_S)
        store.close()
    except Exception:
        errors.append(traceback.format_exc())
    out.put(("rater", rater, errors, latencies))


def import_worker(path: str, csv: str, spec: str, start, out) -> None:
    from changeover.core.importing.responses import import_file

    errors: list[str] = []
    rows = 0
    t0 = t1 = time.time()
    try:
        store = Store.open(path)
        start.wait()
        t0 = time.time()
        rows = import_file(store, csv, spec).rows
        t1 = time.time()
        store.close()
    except Exception:
        errors.append(traceback.format_exc())
    out.put(("import", rows, errors, (t0, t1)))


def canned_fitter(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
    """The exact conjugate posterior in place of NUTS: a fit's reads and write, no sampling."""
    from changeover.core.model.fit import FitResult
    from changeover.core.model.instant import instant_posterior
    from changeover.core.types import Diagnostics

    posts = [
        instant_posterior(c, weights, 200, 1, (pass_levels or {}).get(name))
        for name, c in counts.items()
    ]
    diag = {
        "max_rhat": 1.0,
        "min_ess_bulk": 900.0,
        "min_ess_tail": 700.0,
        "divergences": 0,
        "ok": True,
        "sampler": "canned",
        "per_metric": {},
        "reasons": [],
    }
    return FitResult(posts, Diagnostics.from_dict(diag), settings, 0.01)


def fit_worker(path: str, eval_set_name: str, start, stop, out) -> None:
    """Fits, one after another: the counts GROUP BY over the eval set, then the kept fit."""
    from changeover.core.model.fit import Settings
    from changeover.core.model.kept_fits import run_fit

    errors: list[str] = []
    runs = 0
    try:
        store = Store.open(path)
        es = store.eval_set(eval_set_name)
        start.wait()
        while not stop.is_set():
            run_fit(store, es, Settings.quick(), fitter=canned_fitter)
            runs += 1
            stop.wait(0.1)  # a real fit samples for seconds between its reads and its write
        store.close()
    except Exception:
        errors.append(traceback.format_exc())
    out.put(("fit", runs, errors, 0.0))


def long_reader_worker(path: str, start, stop, out) -> None:
    """A read transaction held open for the whole run (a report, a `sqlite3` shell...)."""
    errors: list[str] = []
    seen = -1
    try:
        con = sqlite3.connect(path, isolation_level=None)
        start.wait()
        con.execute("BEGIN")
        seen = con.execute("SELECT count(*) FROM ratings").fetchone()[0]
        stop.wait(60)
        # The snapshot must not move while the transaction is open.
        assert con.execute("SELECT count(*) FROM ratings").fetchone()[0] == seen
        con.execute("COMMIT")
        con.close()
    except Exception:
        errors.append(traceback.format_exc())
    out.put(("reader", seen, errors, 0.0))


# ---- the test -----------------------------------------------------------------------------


def test_four_raters_with_import_fit_and_long_reader(tmp_path):
    path = tmp_path / "shared.changeover"
    es = build_workspace(path)
    with Store.open(path) as store:
        response_ids = [row.response_id for row in store.browse(es.id, limit=RESPONSES)]
    assert len(response_ids) == RESPONSES
    csv, spec = write_bulk_file(tmp_path, BULK_ROWS)

    ctx = mp.get_context("spawn")
    start = ctx.Barrier(len(RATERS) + 3)
    stop = ctx.Event()
    out = ctx.Queue()
    raters = [
        ctx.Process(target=rater_worker, args=(str(path), r, response_ids, start, out))
        for r in RATERS
    ]
    others = [
        ctx.Process(target=import_worker, args=(str(path), str(csv), str(spec), start, out)),
        ctx.Process(target=fit_worker, args=(str(path), es.name, start, stop, out)),
        ctx.Process(target=long_reader_worker, args=(str(path), start, stop, out)),
    ]
    for p in raters + others:
        p.start()
    results = []
    # Raters and the import finish on their own; then the readers are told to stop.
    for _ in range(len(RATERS) + 1):
        results.append(out.get(timeout=150))
    stop.set()
    for _ in range(2):
        results.append(out.get(timeout=60))
    for p in raters + others:
        p.join(timeout=30)
        assert p.exitcode == 0

    by_kind: dict[str, list] = {}
    for r in results:
        by_kind.setdefault(r[0], []).append(r)
    errors = [e for r in results for e in r[2]]
    assert errors == [], "\n".join(errors[:5])

    timed = [t for r in by_kind["rater"] for t in r[3]]
    assert len(timed) == len(RATERS) * LABELS_EACH
    latencies = sorted(seconds for _, seconds in timed)
    worst = latencies[-1]
    [(_, rows, _, (import_start, import_end))] = by_kind["import"]
    [(_, fit_runs, _, _)] = by_kind["fit"]
    during_import = sum(import_start <= began <= import_end for began, _ in timed)
    worst_during_import = max(
        (t for began, t in timed if import_start <= began <= import_end), default=0.0
    )
    print(
        f"\nlabels={len(timed)} worst_add_rating={worst * 1000:.0f}ms "
        f"median={latencies[len(latencies) // 2] * 1000:.1f}ms import_rows={rows} "
        f"import_s={import_end - import_start:.1f} labels_during_import={during_import} "
        f"worst_during_import={worst_during_import * 1000:.0f}ms "
        f"fits={fit_runs}"
    )
    assert rows == BULK_ROWS
    assert during_import > 0, "the import did not overlap the labelling: nothing was tested"
    assert fit_runs > 0

    with Store.open(path) as store:
        events = store.ratings(es.id)
        active = store.ratings(es.id, include_retracted=False)
        assert len(events) == len(RATERS) * LABELS_EACH  # nothing stored twice, nothing retracted
        keys = {(r.response_id, r.metric, r.rater) for r in active}
        assert len(keys) == len(active) == len(RATERS) * LABELS_EACH
        for rater in RATERS:
            assert sum(r.rater == rater for r in active) == LABELS_EACH
        assert store.stats(store.eval_set("bulk").id).responses == BULK_ROWS
        assert store.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


class WriteLock:
    """Another connection holding the workspace's write lock (a big import's merge) from
    `with` until `release()`; `released_at` is when it let go (perf_counter). The tests order
    events against it instead of timing them: load cannot reorder a lock."""

    def __init__(self, path: Path):
        self.path, self.held, self.go = path, threading.Event(), threading.Event()
        self.released_at = float("inf")
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        con = sqlite3.connect(self.path, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        self.held.set()
        self.go.wait(timeout=300)
        self.released_at = time.perf_counter()
        con.execute("COMMIT")
        con.close()

    def release(self) -> None:
        self.go.set()

    def __enter__(self) -> WriteLock:
        self.thread.start()
        self.held.wait()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.thread.join()


def test_a_label_waits_out_a_writer_longer_than_the_busy_timeout(tmp_path, monkeypatch):
    """A big import's merge can hold the lock past one busy timeout: the label waits, then lands;
    past the store's overall wait it fails as a ChangeoverError with a message, never as a raw
    "database is locked"."""
    import changeover.core.store.base as store_module
    from changeover.core.types import ChangeoverError

    path = tmp_path / "busy.changeover"
    es = build_workspace(path)
    with Store.open(path) as store:
        store.con.execute("PRAGMA busy_timeout = 100")  # one busy timeout: 0.1 s
        rid = store.browse(es.id, limit=1)[0].response_id
        with WriteLock(path) as lock:
            # let go a second after the label starts waiting: ten busy timeouts
            threading.Timer(1.0, lock.release).start()
            store.add_rating(rid, "correct", "ann", 1)
            stored_at = time.perf_counter()
        assert stored_at > lock.released_at  # it waited for the writer, then landed
        assert [r.value for r in store.active_ratings(rid)] == [1]

        monkeypatch.setattr(store_module, "WRITE_WAIT_S", 0.3)
        refused = pytest.raises(ChangeoverError, match="locked for over")
        with WriteLock(path), refused:  # the lock is held until the label has given up
            store.add_rating(rid, "correct", "bob", 0)
        assert [r.rater for r in store.active_ratings(rid)] == ["ann"]


def test_opening_a_workspace_does_not_wait_for_a_writer(tmp_path):
    """A rater starting the app while a large import merges gets in at once (and can read)."""
    path = tmp_path / "open.changeover"
    es = build_workspace(path)
    with WriteLock(path) as lock:  # held until the workspace is open and read
        with Store.open(path) as store:
            rows = store.browse(es.id, limit=5)
        opened_at = time.perf_counter()
    assert len(rows) == 5
    assert opened_at < lock.released_at, "opening waited for the writer"


def test_rate_screen_survives_a_workspace_locked_too_long(tmp_path, monkeypatch):
    import asyncio

    import changeover.core.store.base as store_module
    from changeover.tui.app import ChangeoverApp
    from changeover.tui.screens.rate import RateScreen

    path = tmp_path / "locked.changeover"
    es = build_workspace(path)
    monkeypatch.setattr(store_module, "WRITE_WAIT_S", 0.2)
    notes: list[str] = []

    async def session() -> None:
        with Store.open(path) as store:
            store.con.execute("PRAGMA busy_timeout = 50")
            app = ChangeoverApp(
                Workspace(store, canned_fitter), rater="ann", start_rating=es.name, seed=1
            )
            async with app.run_test(size=(100, 30)) as pilot:
                original = app.notify
                app.notify = lambda message, *a, **k: (
                    notes.append(str(message)),
                    original(message, *a, **k),
                )[1]
                await pilot.pause()
                assert isinstance(app.screen, RateScreen)
                with WriteLock(path):  # held until the label has been refused
                    await pilot.press("y")  # refused: the workspace stays locked past the wait
                    await pilot.pause()
                await pilot.press("y")  # the same key again, now that the lock is free
                await pilot.pause()
                assert app.is_running
            assert [r.value for r in store.ratings(es.id)] == [1]

    asyncio.run(session())
    assert any("locked" in n for n in notes), notes
