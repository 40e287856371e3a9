"""The workspace store: round trip, migrations, refusal of foreign and newer files, ratings."""

import hashlib
import os
import sqlite3
import stat

import pytest

from changeover.core.store import SCHEMA_VERSION, Store
from changeover.core.types import ChangeoverError, EvalSet, Metric, Region, WorkspaceError


def spec(name="support", incumbent="old") -> EvalSet:
    return EvalSet(
        id=0,
        name=name,
        incumbent=incumbent,
        regions=(Region("EU", 3.0), Region("US", 1.0)),
        metrics=(
            Metric("correct", ("no", "yes"), "higher", 0.03, "Is it right?", ("n", "y")),
            Metric(
                "style",
                ("1", "2", "3", "4", "5"),
                "higher",
                0.2,
                "Tone",
                ("1", "2", "3", "4", "5"),
                pass_level=3,
            ),
        ),
        description="test set",
        judge="gpt-judge",
    )


def populate(store: Store) -> EvalSet:
    es = store.save_eval_set(spec())
    with store.importing(es.id) as batch:
        batch.add_responses(
            [
                ("q1", "EU", "How do I pay?", "Online.", "old", "Pay online."),
                ("q1", "EU", "How do I pay?", "Online.", "new", "You can pay online [b]now[/b]."),
                ("q2", "US", "Cancel?", None, "old", "Call us."),
                ("q2", "US", "Cancel?", None, "new", "Use the app."),
            ]
        )
        batch.add_judgments(
            [
                ("q1", "old", "correct", "gpt-judge", 1, "yes", 0.9, "fine"),
                ("q1", "new", "correct", "gpt-judge", 1, "yes", 0.8, "fine"),
                ("q2", "old", "correct", "gpt-judge", None, "unsure", None, None),
                ("q1", "old", "style", "gpt-judge", 3, "4", None, None),
            ]
        )
        batch.add_ratings([("q1", "old", "correct", "ann", 1, "2026-01-01T00:00:00+00:00")])
    return es


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_round_trip(tmp_path):
    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as store:
        es = populate(store)
    with Store.open(path) as store:
        back = store.eval_set("support")
        assert back == es
        assert back.metric("style").pass_level == 3
        assert back.traffic_weights == (0.75, 0.25)
        assert store.models(es.id) == ["old", "new"]
        assert store.stats(es.id)._asdict() == {
            "items": 2,
            "responses": 4,
            "judgments": 4,
            "judgments_missing": 1,
            "ratings": 1,
            "labelled_responses": 1,
            "open_ratings": 0,
        }
        view = store.response_view(2)
        assert view.response.text == "You can pay online [b]now[/b]."
        assert view.item.question == "How do I pay?" and view.item.reference == "Online."
        assert [j.value for j in view.judgments] == [1]


def test_new_workspace_is_private(tmp_path):
    path = tmp_path / "w.changeover"
    Store.open(path, create=True).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def dump(path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump()) + [
            f"user_version={con.execute('PRAGMA user_version').fetchone()[0]}"
        ]
    finally:
        con.close()


def test_migrations_twice_are_a_noop(tmp_path):
    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as store:
        populate(store)
        assert store.schema_version() == SCHEMA_VERSION
        assert store.migrate() == 0
    before = dump(path)
    with Store.open(path) as store:
        assert store.migrate() == 0
    assert dump(path) == before


def test_foreign_files_are_refused_and_untouched(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_bytes(b"just some notes, not a database\n" * 100)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers (name) VALUES ('Ada')")
    con.commit()
    con.close()
    for path, expected in (
        (text, "not a changeover workspace"),
        (other, "SQLite database of another program"),
    ):
        before, mtime = digest(path), os.stat(path).st_mtime_ns
        with pytest.raises(WorkspaceError, match=expected):
            Store.open(path)
        assert digest(path) == before and os.stat(path).st_mtime_ns == mtime
        assert not os.path.exists(f"{path}-wal") and not os.path.exists(f"{path}-shm")


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "future.changeover"
    with Store.open(path, create=True) as store:
        populate(store)
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.execute("PRAGMA journal_mode = DELETE")
    con.close()
    before = digest(path)
    with pytest.raises(WorkspaceError, match="newer changeover"):
        Store.open(path)
    assert digest(path) == before


def test_missing_workspace_is_not_created_unless_asked(tmp_path):
    with pytest.raises(WorkspaceError, match="no such workspace"):
        Store.open(tmp_path / "absent.changeover")
    assert not (tmp_path / "absent.changeover").exists()


def test_ratings_are_append_only_events():
    store = Store.memory()
    es = populate(store)
    first = store.add_rating(1, "correct", "bob", 0)
    second = store.add_rating(1, "correct", "bob", 1)  # supersedes bob's first label
    undo = store.retract(second.id, "bob")
    assert undo.retracts == second.id and undo.value is None
    events = store.ratings(es.id)
    assert [e.id for e in events] == sorted(e.id for e in events)
    # every event is still there: import label, bob's two labels, two retractions
    assert len(events) == 5
    assert {r.rater: r.value for r in store.active_ratings(1)} == {"ann": 1}
    assert first.created_at <= second.created_at
    with pytest.raises(ChangeoverError, match="not active"):
        store.retract(second.id, "bob")


def test_import_is_idempotent_and_keeps_ratings():
    store = Store.memory()
    es = populate(store)
    store.add_rating(3, "correct", "bob", 0)
    before = store.stats(es.id)
    with store.importing(es.id) as batch:
        batch.add_responses([("q1", "EU", "How do I pay?", "Online.", "old", "Pay online.")])
        batch.add_ratings([("q1", "old", "correct", "ann", 1, "2026-01-01T00:00:00+00:00")])
    assert batch.added == {"models": 0, "items": 0, "responses": 0, "judgments": 0, "ratings": 0}
    assert store.stats(es.id) == before


def test_failed_import_writes_nothing():
    store = Store.memory()
    es = populate(store)
    before = store.stats(es.id)
    with pytest.raises(RuntimeError), store.importing(es.id) as batch:
        batch.add_responses([("q9", "EU", "New?", None, "old", "Yes.")])
        raise RuntimeError("checker found a problem")
    assert store.stats(es.id) == before


def test_changing_levels_of_a_metric_is_refused():
    store = Store.memory()
    populate(store)
    bad = spec()
    bad = EvalSet(
        0,
        bad.name,
        bad.incumbent,
        bad.regions,
        (Metric("correct", ("wrong", "partly", "right")),) + bad.metrics[1:],
    )
    with pytest.raises(ChangeoverError, match="has levels"):
        store.save_eval_set(bad)


def test_read_only_store_refuses_writes(tmp_path):
    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as store:
        populate(store)
    with Store.open(path, read_only=True) as store:
        assert store.stats(1).ratings == 1
        with pytest.raises(ChangeoverError, match="read-only"):
            store.add_rating(1, "correct", "bob", 1)


def test_browse_filters_reach_sql_as_parameters():
    store = Store.memory()
    es = populate(store)
    from changeover.core.types import BrowseFilter

    assert [r.response_id for r in store.browse(es.id, BrowseFilter(search="[b]now"))] == [2]
    assert store.browse(es.id, BrowseFilter(search="'; DROP TABLE ratings; --")) == []
    assert store.stats(es.id).ratings == 1
    assert store.browse_count(es.id, BrowseFilter(region="US")) == 2
    assert store.browse_count(es.id, BrowseFilter(metric="correct", unrated=True)) == 3
    assert [r.model for r in store.browse(es.id, BrowseFilter(model="new"), limit=1, offset=1)] == [
        "new"
    ]


def test_browse_finds_responses_where_raters_disagree():
    from changeover.core.types import BrowseFilter

    store = Store.memory()
    es = populate(store)  # ann labelled response 1 "yes" on correct
    store.add_rating(1, "correct", "bob", 0)  # bob says no: a disagreement
    store.add_rating(3, "correct", "bob", 1)
    store.add_rating(3, "correct", "cat", 1)  # agreement
    store.add_rating(4, "style", "bob", 2)
    store.add_rating(4, "style", "cat", 4)  # disagreement on another metric
    rows = lambda f: [r.response_id for r in store.browse(es.id, f)]  # noqa: E731
    assert rows(BrowseFilter(raters_disagree=True)) == [1, 4]
    assert rows(BrowseFilter(raters_disagree=True, metric="correct")) == [1]
    bob = store.active_ratings(1)[-1]
    store.retract(bob.id, "bob")
    assert rows(BrowseFilter(raters_disagree=True, metric="correct")) == []
