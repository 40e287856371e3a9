"""Full-text search: a trigram FTS5 index over question and response text.

The browse search means "this text occurs in the question or the response, ignoring ASCII case"
(`instr(lower(...))`). A trigram index can answer exactly that question, fragments inside words
and punctuation included, where a word index could not: the index narrows the rows to those
holding every trigram of the query (a superset of the matches) and the substring test then
keeps exactly the rows a full scan keeps. Queries of fewer than three characters have no
trigram and scan.

One index row per response holds its question and its text (through the view
`response_texts`), so a match on either comes out in response id order and the browse page
stops after its first page of hits, however common the text. `detail=none` keeps positions out
of the index, most of its size; the AND of trigrams it supports is all the narrowing needs.
Triggers keep the index in step with every write to responses and items, whoever writes them.

The trigram tokenizer stops reading at a NUL character, which JSON and Parquet files may put in a
text: such a text is indexed as a marker that every query matches, so its row is always checked.
"""

from __future__ import annotations

import sqlite3

INDEX = "response_texts_fts"
MIN_CHARS = 3  # a trigram index cannot narrow a shorter query
NUL_MARK = "\x01\x01\x01"  # indexed in place of a text holding NUL; one trigram
# Trigrams a write gathers in memory before writing them out as a segment (a setting kept in the
# index; SQLite's default is 1 MB). A bulk import then writes fewer, larger segments and merges
# them less (figures in the README).
HASH_BYTES = 64 * 1024 * 1024


def _indexed(column: str) -> str:
    """SQL for what the index holds of a text column: the text, or the marker if it has a NUL."""
    return f"CASE WHEN instr(CAST({column} AS BLOB), X'00') THEN char(1, 1, 1) ELSE {column} END"


Q_OLD, Q_NEW = (
    f"(SELECT {_indexed('question')} FROM items WHERE id = {row}.item_id)" for row in ("old", "new")
)

# A response moved to another item with the same question (an import publishing its rows,
# core/store/publish.py) keeps its index entry: the WHEN spares re-indexing it.
UPDATE_TRIGGER = f"""CREATE TRIGGER responses_fts_au AFTER UPDATE OF item_id, text ON responses
WHEN old.text IS NOT new.text OR {Q_OLD} IS NOT {Q_NEW} BEGIN
    INSERT INTO {INDEX} ({INDEX}, rowid, question, text)
    VALUES ('delete', old.id, {Q_OLD}, {_indexed("old.text")});
    INSERT INTO {INDEX} (rowid, question, text) VALUES (new.id, {Q_NEW}, {_indexed("new.text")});
END"""

# Statements of schema migration 2; trigger bodies hold semicolons, so they are split with
# sqlite3.complete_statement (see base._statements), not on every ";".
SCHEMA = f"""
CREATE VIEW response_texts AS
    SELECT r.id AS id, {_indexed("i.question")} AS question, {_indexed("r.text")} AS text
    FROM responses r JOIN items i ON i.id = r.item_id;
CREATE VIRTUAL TABLE {INDEX} USING fts5(
    question, text, content='response_texts', content_rowid='id', tokenize='trigram',
    detail='none', columnsize=0);
CREATE TRIGGER responses_fts_ai AFTER INSERT ON responses BEGIN
    INSERT INTO {INDEX} (rowid, question, text) VALUES (new.id, {Q_NEW}, {_indexed("new.text")});
END;
CREATE TRIGGER responses_fts_ad AFTER DELETE ON responses BEGIN
    INSERT INTO {INDEX} ({INDEX}, rowid, question, text)
    VALUES ('delete', old.id, {Q_OLD}, {_indexed("old.text")});
END;
{UPDATE_TRIGGER};
CREATE TRIGGER items_fts_au AFTER UPDATE OF question ON items BEGIN
    INSERT INTO {INDEX} ({INDEX}, rowid, question, text)
    SELECT 'delete', r.id, {_indexed("old.question")}, {_indexed("r.text")}
    FROM responses r WHERE r.item_id = old.id;
    INSERT INTO {INDEX} (rowid, question, text)
    SELECT r.id, {_indexed("new.question")}, {_indexed("r.text")}
    FROM responses r WHERE r.item_id = new.id;
END;
INSERT INTO {INDEX} ({INDEX}, rank) VALUES ('hashsize', {HASH_BYTES});
INSERT INTO {INDEX} ({INDEX}) VALUES ('rebuild');
"""


def available(con: sqlite3.Connection) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (3.34 and later)."""
    try:
        con.execute("CREATE VIRTUAL TABLE temp.fts_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.OperationalError:
        return False
    con.execute("DROP TABLE temp.fts_probe")
    return True


def keep_entries_on_move(con: sqlite3.Connection) -> None:
    """Migration 4: the update trigger with its WHEN (a workspace without the index: nothing)."""
    if con.execute(f"SELECT 1 FROM sqlite_master WHERE name = '{INDEX}'").fetchone():
        con.execute("DROP TRIGGER IF EXISTS responses_fts_au")
        con.execute(UPDATE_TRIGGER)


def match_expression(query: str) -> str | None:
    """An FTS5 query every row containing `query` matches (each distinct trigram, quoted as a
    string so nothing the user typed is FTS syntax, or the NUL marker), or None when the index
    cannot narrow it."""
    if len(query) < MIN_CHARS or "\x00" in query:
        return None
    trigrams = dict.fromkeys(query[k : k + 3] for k in range(len(query) - 2))
    every = " AND ".join('"' + t.replace('"', '""') + '"' for t in trigrams)
    return f'({every}) OR "{NUL_MARK}"'
