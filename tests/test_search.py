"""Browse search: the trigram index finds exactly the rows the substring scan finds, user text is
never FTS syntax, the index follows every write and old workspaces get one; and a workspace is a
plain SQLite file that sqlite-utils reads."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from helpers import MODELS, REGIONS, queue_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from changeover.core.store import Store, base, fts
from changeover.core.types import BrowseFilter

# Letters of both cases, FTS5 syntax, quotes, punctuation, whitespace, and characters that case
# folding treats differently from SQLite's ASCII-only lower() (É/é, ß, İ, Σ/σ/ς, K = Kelvin sign).
ALPHABET = "abcAB fund REF-:*^()\"'.,?!%_\\\t\néÉßİΣσςK€😀日本\x00\x01\x1b"
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """What SQLite's lower() does: ASCII letters only."""
    return text.translate(ASCII_LOWER)


def fill(store: Store, rows: list[tuple[str, list[str]]], name: str = "support") -> int:
    """An eval set whose item k has question rows[k][0] and one response per text in rows[k][1]."""
    es = store.save_eval_set(queue_spec(name))
    with store.importing(es.id) as batch:
        batch.add_responses(
            (f"q{k:04d}", REGIONS[k % len(REGIONS)], question, None, MODELS[m], text)
            for k, (question, texts) in enumerate(rows)
            for m, text in enumerate(texts)
        )
    return es.id


def expected(rows: list[tuple[str, list[str]]], query: str) -> list[tuple[str, str]]:
    """(item, model) of every response whose question or text contains `query`, by plain Python."""
    q = fold(query)
    return [
        (f"q{k:04d}", MODELS[m])
        for k, (question, texts) in enumerate(rows)
        for m, text in enumerate(texts)
        if q in fold(question) or q in fold(text)
    ]


def found(store: Store, es: int, query: str, **filters) -> dict[str, object]:
    """Every way browse answers a search: keyset pages forward and back, OFFSET pages, count."""
    f = BrowseFilter(search=query, **filters)
    forward, after = [], None
    while page := store.browse_page(es, f, after_id=after, limit=3):
        forward += page
        after = page[-1].response_id
    backward, before = [], 10**9
    while page := store.browse_page(es, f, before_id=before, limit=3):
        backward = page + backward
        before = page[0].response_id
    return {
        "forward": forward,
        "backward": backward,
        "offset": store.browse(es, f, offset=1, limit=1000),
        "count": store.browse_count(es, f),
    }


def assert_index_and_scan_agree(store: Store, es: int, query: str, **filters) -> list:
    """The index's answer equals the scan's in every form; returns the (item, model) keys."""
    assert store.use_search_index
    indexed = found(store, es, query, **filters)
    store.use_search_index = False
    try:
        scanned = found(store, es, query, **filters)
    finally:
        store.use_search_index = True
    assert indexed == scanned
    assert indexed["forward"] == indexed["backward"]
    assert indexed["count"] == len(indexed["forward"])
    return [(r.external_id, r.model) for r in indexed["forward"]]


texts = st.text(alphabet=ALPHABET, max_size=40)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(texts, st.lists(texts, min_size=1, max_size=3)), max_size=12),
    picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 40), st.integers(1, 8))),
    others=st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=8), max_size=3),
    data=st.data(),
)
def test_index_finds_exactly_what_the_scan_finds(rows, picks, others, data):
    # Queries cut from the stored texts (so most of them match), case-swapped, and random ones.
    corpus = [t for question, answers in rows for t in (question, *answers) if t]
    queries = list(others)
    for which, start, length in picks:
        if corpus:
            text = corpus[which % len(corpus)]
            queries.append(text[start % len(text) :][:length])
    queries += [q.swapcase() for q in queries[:3]]
    with Store.memory() as store:
        es = fill(store, rows)
        for query in queries:
            if not query:
                continue
            indexed = len(query) >= fts.MIN_CHARS and "\x00" not in query
            assert (store._search_match(query) is not None) == indexed
            assert assert_index_and_scan_agree(store, es, query) == expected(rows, query)
        model = data.draw(st.sampled_from(MODELS))
        if queries and queries[0]:
            keys = assert_index_and_scan_agree(store, es, queries[0], model=model)
            assert keys == [k for k in expected(rows, queries[0]) if k[1] == model]


SUPPORT = [
    ("How do I get a refund?", ["Refunds take 5 days.", "Non-refundable, sorry!", "Call us."]),
    ("Reset my router (#17)?", ["Hold the button.", 'See "Settings" -> Reset.', "50% off?!"]),
    ("Where is my parcel?", ["It left on Friday.", "Track it under Orders.", "Ask REFUND desk"]),
]


@pytest.mark.parametrize(
    "query, keys",
    [
        # a fragment inside a word, any case
        ("fund", [("q0000", m) for m in MODELS] + [("q0002", MODELS[2])]),
        ("REFUNDABLE", [("q0000", MODELS[1])]),
        # punctuation only, and text that is FTS5 syntax when unquoted
        ("?!", [("q0001", MODELS[2])]),
        ('"Settings"', [("q0001", MODELS[1])]),
        ("(#17)", [("q0001", m) for m in MODELS]),
        ("t OR x", []),
        ("NEAR(a b)", []),
        ("text:Hold", []),
        ("ref*", []),
        ("-> R", [("q0001", MODELS[1])]),
        ("^Hold", []),
        ('"', [("q0001", MODELS[1])]),
        # shorter than a trigram: the scan answers
        ("5", [("q0000", MODELS[0]), ("q0001", MODELS[2])]),
    ],
)
def test_search_is_a_plain_substring_of_question_or_text(store, query, keys):
    es = fill(store, SUPPORT)
    assert assert_index_and_scan_agree(store, es, query) == keys == expected(SUPPORT, query)


def test_text_after_a_nul_character_is_found(store):
    """The trigram tokenizer stops at NUL (JSON and Parquet may hold one): such rows are always
    checked, so the search still finds what follows it."""
    rows = [("Q\x00 one", ["refund after \x00 chargeback", "plain refund"]), ("two", ["x"])]
    es = fill(store, rows)
    assert assert_index_and_scan_agree(store, es, "chargeback") == [("q0000", MODELS[0])]
    assert assert_index_and_scan_agree(store, es, "one") == [("q0000", m) for m in MODELS[:2]]
    assert assert_index_and_scan_agree(store, es, "refund") == [("q0000", m) for m in MODELS[:2]]
    integrity_check(store)


def integrity_check(store: Store) -> None:
    """FTS5's own check that the index holds exactly the content it indexes (raises if not)."""
    store.con.execute(f"INSERT INTO {fts.INDEX} ({fts.INDEX}, rank) VALUES ('integrity-check', 1)")


def test_index_follows_imports_edits_and_rollbacks(store):
    es = fill(store, SUPPORT)
    # A second import adds responses to existing items and a new item.
    with store.importing(es) as batch:
        batch.add_responses(
            [
                ("q0000", "EU", "How do I get a refund?", None, "newmodel-delta", "Chargeback."),
                ("q0009", "US", "Is a chargeback possible?", None, MODELS[0], "Yes."),
            ]
        )
    integrity_check(store)
    assert assert_index_and_scan_agree(store, es, "chargeback") == [
        ("q0000", "newmodel-delta"),
        ("q0009", MODELS[0]),
    ]
    # Nothing edits texts today, but the triggers keep the index right if anything does.
    with store.write() as con:
        con.execute("UPDATE items SET question = 'Where is my order?' WHERE external_id = 'q0002'")
        con.execute("UPDATE responses SET text = 'Ombudsman.' WHERE text = 'Call us.'")
        con.execute("DELETE FROM responses WHERE text = 'Yes.'")
    integrity_check(store)
    assert assert_index_and_scan_agree(store, es, "parcel") == []
    assert assert_index_and_scan_agree(store, es, "my order") == [("q0002", m) for m in MODELS]
    assert assert_index_and_scan_agree(store, es, "ombudsman") == [("q0000", MODELS[2])]
    assert assert_index_and_scan_agree(store, es, "chargeback") == [("q0000", "newmodel-delta")]
    # A write that fails leaves no trace in the index either.
    with pytest.raises(RuntimeError), store.write() as con:
        con.execute("UPDATE responses SET text = 'Zeppelin.' WHERE text = 'Ombudsman.'")
        raise RuntimeError("abort")
    integrity_check(store)
    assert assert_index_and_scan_agree(store, es, "zeppelin") == []
    assert assert_index_and_scan_agree(store, es, "ombudsman") == [("q0000", MODELS[2])]


def test_integrity_check_notices_an_index_out_of_step(store):
    """The check the tests above rely on does fail on a stale index."""
    fill(store, SUPPORT)
    with store.write() as con:
        con.execute("DROP TRIGGER responses_fts_au")
        con.execute("UPDATE responses SET text = 'Zeppelin.' WHERE text = 'Call us.'")
    with pytest.raises(sqlite3.DatabaseError):
        integrity_check(store)


def downgrade_to_schema_1(path: Path) -> None:
    """Make `path` what changeover wrote before migration 2: no index, no view, no triggers,
    and none of the later migrations' tables either."""
    con = sqlite3.connect(path, isolation_level=None)
    names = ["responses_fts_ai", "responses_fts_ad", "responses_fts_au", "items_fts_au"]
    for trigger in names:
        con.execute(f"DROP TRIGGER {trigger}")
    con.execute(f"DROP TABLE {fts.INDEX}")
    con.execute("DROP VIEW response_texts")
    for table in ("eval_set_sources", "judged_counts"):  # migration 3
        con.execute(f"DROP TABLE {table}")
    con.execute("PRAGMA user_version = 1")
    con.close()


def test_schema_1_workspace_migrates_and_indexes_the_rows_it_holds(tmp_path):
    path = tmp_path / "old.changeover"
    with Store.open(path, create=True) as store:
        es = fill(store, SUPPORT)
    downgrade_to_schema_1(path)
    # Opened read-only it cannot migrate: search scans, with the same answer.
    with Store.open(path, read_only=True) as old:
        assert old.schema_version() == 1
        assert old._search_match("fund") is None
        keys = [(r.external_id, r.model) for r in old.browse(es, BrowseFilter(search="fund"))]
    assert keys == expected(SUPPORT, "fund") != []
    with Store.open(path) as store:
        assert store.schema_version() == base.SCHEMA_VERSION
        assert store._search_match("fund") is not None
        integrity_check(store)
        assert assert_index_and_scan_agree(store, es, "fund") == keys
        rows = store.con.execute(f"SELECT count(*) FROM {fts.INDEX}").fetchone()[0]
        assert rows == sum(len(texts) for _, texts in SUPPORT)


def test_without_trigrams_there_is_no_index_and_search_scans(tmp_path, monkeypatch):
    monkeypatch.setattr(fts, "available", lambda con: False)
    with Store.open(tmp_path / "w.changeover", create=True) as store:
        es = fill(store, SUPPORT)
        assert store.schema_version() == base.SCHEMA_VERSION
        assert store._search_match("fund") is None
        found = [(r.external_id, r.model) for r in store.browse(es, BrowseFilter(search="fund"))]
        assert found == expected(SUPPORT, "fund") != []


def test_this_sqlite_has_trigrams():
    """The index is only as good as the SQLite under it; CI's must have FTS5 trigrams."""
    assert fts.available(sqlite3.connect(":memory:"))


# ---- other tools open a workspace ------------------------------------------------------------


def sqlite_utils_cli() -> str:
    found = shutil.which("sqlite-utils", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("sqlite-utils is a dependency of changeover but its command is not installed")
    return found


def test_sqlite_utils_reads_a_workspace(tmp_path):
    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as store:
        es = fill(store, SUPPORT)
        store.add_rating(store.browse(es)[0].response_id, "correct", "ann", 1)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    cli = sqlite_utils_cli()
    out = subprocess.run(
        [cli, "tables", str(path), "--counts"], capture_output=True, text=True, check=True
    )
    counts = {t["table"]: t["count"] for t in json.loads(out.stdout)}
    assert counts["eval_sets"] == 1
    assert counts["items"] == len(SUPPORT)
    assert counts["responses"] == sum(len(texts) for _, texts in SUPPORT)
    assert counts["ratings"] == 1
    # SQL through sqlite-utils' library, the search index included (its own query syntax)
    db = sqlite_utils.Database(path)
    rows = db.query(
        "SELECT t.text FROM response_texts_fts f JOIN response_texts t ON t.id = f.rowid "
        "WHERE response_texts_fts MATCH :q ORDER BY t.id",
        {"q": '"ref" AND "efu" AND "fun"'},
    )
    # the question of q0000 holds "refund", so all three of its responses match
    assert [row["text"] for row in rows] == [
        "Refunds take 5 days.",
        "Non-refundable, sorry!",
        "Call us.",
        "Ask REFUND desk",
    ]
    assert db["responses"].count == counts["responses"]
    db.close()
    # Reading changed nothing, and changeover reads the same.
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    with Store.open(path, read_only=True) as store:
        assert store.browse_count(es, BrowseFilter(search="refun")) == 4
