"""A big import never makes a label wait for it (issue 21 item 4), and stays all or nothing.

It writes in short transactions, leaving the write lock free between them, and its rows stay
invisible until one short transaction publishes them (core/store/publish.py). These tests assert
what load cannot break: labels land between the chunks, nothing of the import shows before it is
published, and a killed import leaves nothing behind that anyone sees (and is cleared by the
next). How long the lock is held is measured by bench/label_wait.py, not here."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import write_bulk_file
from helpers_tmux import build_rate_workspace

import changeover.core.store.publish as publish
from changeover.core.importing.responses import import_file
from changeover.core.store import Store
from changeover.core.types import BrowseFilter

ROOT = Path(__file__).resolve().parents[1]


def visible(path: Path) -> dict:
    """What anyone reading the workspace sees: eval sets, their counts and every label."""
    with Store.open(path, read_only=True, verify=False) as store:
        return {
            es.name: (
                store.stats(es.id),
                [(r.response_id, r.metric, r.rater, r.value) for r in store.ratings(es.id)],
            )
            for es in store.eval_sets()
        }


def lock_is_free(path: Path) -> bool:
    con = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


def test_labels_land_between_the_chunks_of_an_import(tmp_path, monkeypatch):
    """Between any two chunks of a 6,000-response import the write lock is free (a label is
    stored at once, from another connection) and none of the import's rows can be seen; after
    it, every row and every label is there."""
    path = tmp_path / "w.changeover"
    es = build_rate_workspace(path)
    csv, spec = write_bulk_file(tmp_path, 6_000)
    monkeypatch.setattr(publish, "FIRST_ROWS", 500)
    monkeypatch.setattr(publish, "MAX_ROWS", 500)  # many chunks, whatever the machine's speed
    before = visible(path)
    rater = Store.open(path)
    rids = [r.response_id for r in rater.browse(es.id, limit=40)]
    pauses: list[bool] = []
    real_pause = publish.pause_after

    def between_chunks(held: float) -> None:
        free = lock_is_free(path)
        pauses.append(free)
        seen = visible(path)
        assert "bulk" not in seen and seen["rate"][0][:3] == before["rate"][0][:3]
        rater.add_rating(rids[len(pauses) % len(rids)], "correct", f"r{len(pauses)}", 1)
        real_pause(held)

    monkeypatch.setattr(publish, "pause_after", between_chunks)
    with Store.open(path) as store:
        report = import_file(store, csv, spec)
    rater.close()
    print(f"\n{len(pauses)} chunks; the lock was free after {sum(pauses)} of them")
    assert report.added["responses"] == 6_000 and report.added["judgments"] == 12_000
    assert len(pauses) >= 24 and all(pauses)
    with Store.open(path) as store:
        bulk = store.eval_set("bulk")
        assert store.stats(bulk.id).responses == 6_000
        assert len(store.ratings(es.id)) == len(pauses)  # every label given in a pause
        assert store.browse_count(bulk.id, BrowseFilter(search="Bulk answer 5999,")) == 1
        assert store.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


MORE = "item_id,region,question,model,response,judge_correct,judge_style,rater,human_correct\n"


def test_new_responses_to_held_items_are_published_whole(tmp_path, monkeypatch):
    """A new model's responses to items the eval set holds (and new items beside them) are
    written under shadow items and moved onto the held ones when published: no item twice,
    search finds them, the index stays whole, and labels on held responses are added."""
    path = tmp_path / "w.changeover"
    csv, spec = write_bulk_file(tmp_path, 2_000)
    with Store.open(path, create=True) as store:
        import_file(store, csv, spec)
    more = tmp_path / "more.csv"
    with more.open("w") as f:
        f.write(MORE)
        for item in range(1_200):  # 1,000 held items and 200 new ones
            region = "EU" if item % 3 else "US"
            f.write(
                f'b{item},{region},Bulk question {item}?,newest,"Newest answer {item}.",yes,3,,\n'
            )
        held = "Bulk answer 3, long enough to be a real answer to the question."
        f.write(f'b1,EU,Bulk question 1?,old,"{held}",no,4,ann,yes\n')  # a label, held response
    monkeypatch.setattr(publish, "MAX_ROWS", 300)
    with Store.open(path) as store:
        before_items = store.stats(store.eval_set("bulk").id).items
        report = import_file(store, more, spec)
        bulk = store.eval_set("bulk")
        stats = store.stats(bulk.id)
        assert report.added["responses"] == 1_200 and report.added["items"] == 200
        assert stats.items == before_items + 200 == 1_200
        assert stats.responses == 3_200 and stats.ratings == 1
        assert store.models(bulk.id) == ["new", "old", "newest"]
        assert store.browse_count(bulk.id, BrowseFilter(search="Newest answer 1")) == 311
        assert store.browse_count(bulk.id, BrowseFilter(search="question 1199?")) == 1
        assert not store.con.execute(
            "SELECT count(*) FROM items WHERE eval_set_id NOT IN (SELECT id FROM eval_sets)"
        ).fetchone()[0]
        store.con.execute(
            "INSERT INTO response_texts_fts (response_texts_fts) VALUES ('integrity-check')"
        )


def pending(path: Path) -> bool:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return bool(
            con.execute(
                "SELECT count(*) FROM changeover_meta WHERE key LIKE 'pending_import:%'"
            ).fetchone()[0]
        )
    finally:
        con.close()


def cli_import(path: Path, csv: Path, spec: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "changeover.cli",
            "import",
            str(path),
            str(csv),
            "--spec",
            str(spec),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_label_given_during_an_import_is_stored_before_the_import_ends(tmp_path):
    """The user's path: `changeover import` of 30,000 responses runs while a rater labels. A
    label given once the import is writing is on disk while the import is still writing (on
    main it waited until the whole import was in: 22.6 s under load)."""
    path = tmp_path / "w.changeover"
    es = build_rate_workspace(path)
    csv, spec = write_bulk_file(tmp_path, 30_000)
    with Store.open(path) as rater:
        rid = rater.browse(es.id, limit=1)[0].response_id
        proc = cli_import(path, csv, spec)
        deadline = time.monotonic() + 300
        while lock_is_free(path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)  # until the import takes the write lock
        rater.add_rating(rid, "correct", "ann", 1)
        published = "bulk" in visible(path)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert not published, "the label waited until the import was published"
    assert "imported 30,000 responses" in out
    with Store.open(path) as store:
        assert [r.rater for r in store.ratings(es.id)] == ["ann"]


def test_a_killed_import_is_invisible_and_cleared_by_the_next(tmp_path):
    """SIGKILL while the import writes its chunks: nobody sees any of it; the next import
    removes what it wrote, and the workspace is whole."""
    path = tmp_path / "w.changeover"
    build_rate_workspace(path)
    before = visible(path)
    csv, spec = write_bulk_file(tmp_path, 30_000)
    proc = cli_import(path, csv, spec)
    deadline = time.monotonic() + 300
    while not pending(path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.3)  # a few chunks in
    assert proc.poll() is None, "the import ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert visible(path) == before
    with Store.open(path, read_only=True) as store:
        left = store.con.execute(
            "SELECT count(*) FROM items WHERE eval_set_id NOT IN (SELECT id FROM eval_sets)"
        ).fetchone()[0]
    assert left > 0, "killed before it wrote a chunk: nothing was tested"
    (tmp_path / "small").mkdir()
    small, small_spec = write_bulk_file(tmp_path / "small", 20)
    with Store.open(path) as store:
        import_file(store, small, small_spec)
        assert not store.con.execute(
            "SELECT count(*) FROM items WHERE eval_set_id NOT IN (SELECT id FROM eval_sets)"
        ).fetchone()[0]
        assert not pending(path)
        assert store.stats(store.eval_set("bulk").id).responses == 20
        assert store.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store.con.execute(
            "INSERT INTO response_texts_fts (response_texts_fts) VALUES ('integrity-check')"
        )


@pytest.mark.parametrize("where", ["chunks", "publish"])
def test_a_failing_import_deletes_what_it_wrote(tmp_path, monkeypatch, where):
    """An error (or Ctrl-C) midway through the chunks or in the publishing transaction: the
    import's rows are deleted and the workspace is as before."""
    path = tmp_path / "w.changeover"
    build_rate_workspace(path)
    before = visible(path)
    csv, spec = write_bulk_file(tmp_path, 3_000)
    monkeypatch.setattr(publish, "MAX_ROWS", 400)
    calls = []

    def interrupt(*args) -> None:
        calls.append(1)
        if where == "chunks" and len(calls) == 5 or where == "publish":
            raise KeyboardInterrupt

    if where == "chunks":
        monkeypatch.setattr(publish, "pause_after", interrupt)
    else:  # a second file into the same eval set: shadow items, moved when publishing
        with Store.open(path) as store:
            import_file(store, csv, spec)
        before = visible(path)
        more = tmp_path / "second.csv"
        more.write_text(
            csv.read_text().replace("Bulk answer", "Other answer").replace(",old,", ",older,")
        )
        csv = more
        monkeypatch.setattr(publish.Publisher, "_join", interrupt)
    with Store.open(path) as store, pytest.raises(KeyboardInterrupt):
        import_file(store, csv, spec)
    assert calls
    assert visible(path) == before
    with Store.open(path) as store:
        assert not pending(path)
        assert not store.con.execute(
            "SELECT count(*) FROM items WHERE eval_set_id NOT IN (SELECT id FROM eval_sets)"
        ).fetchone()[0]
        store.con.execute(
            "INSERT INTO response_texts_fts (response_texts_fts) VALUES ('integrity-check')"
        )
