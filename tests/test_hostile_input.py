"""Hostile input: adversarial and random CSV, JSONL, Parquet and spec files either import
correctly or fail with ImportFailed naming file and line; never another exception, never a
half-written workspace. Search and filter text reaches SQL only as parameters."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from changeover.core.importing.responses import ImportFailed, ImportReport, import_file, load_spec
from changeover.core.store import Store
from changeover.core.types import BrowseFilter

SPEC = """\
name = "hx"
incumbent = "old"

[regions]
EU = 3000000
US = 1000000

[[metrics]]
name = "correct"
levels = ["no", "yes"]
"""
HEADER = ["item_id", "region", "question", "model", "response", "judge_correct"]
TABLES = (
    "eval_sets",
    "regions",
    "metrics",
    "models",
    "items",
    "responses",
    "judgments",
    "ratings",
    "fits",
    "changeover_meta",
)
TRIED: dict[str, int] = {}  # inputs tried per kind, printed at the end of the module


def count(kind: str) -> None:
    TRIED[kind] = TRIED.get(kind, 0) + 1


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path]:
    """A workspace that already holds an eval set and a human label, and the hostile spec."""
    d = tmp_path_factory.mktemp("hostile")
    spec = d / "hx.toml"
    spec.write_text(SPEC)
    prior = d / "prior.toml"
    prior.write_text(SPEC.replace('name = "hx"', 'name = "prior"'))
    first = d / "first.csv"
    first.write_text(
        "item_id,region,question,model,response,judge_correct\n"
        "p1,EU,Earlier question?,old,Earlier answer.,yes\n"
        "p1,EU,Earlier question?,new,Another answer.,no\n"
    )
    path = d / "base.changeover"
    with Store.open(path, create=True) as store:
        report = import_file(store, first, prior)
        rid = store.browse(report.eval_set.id, limit=1)[0].response_id
        store.add_rating(rid, "correct", "ann", 1)
    yield path, spec
    print(f"\nhostile inputs tried: {dict(sorted(TRIED.items()))} (total {sum(TRIED.values())})")


def snapshot(store: Store) -> dict:
    """Row counts of every table and every stored rating: what a half-write would change."""
    out = {t: store.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    out["sets"] = {es.name: store.stats(es.id) for es in store.eval_sets()}
    out["ratings_rows"] = [tuple(r) for r in store.con.execute("SELECT * FROM ratings ORDER BY id")]
    return out


def attempt(
    base: tuple[Path, Path],
    data: bytes | None,
    name: str,
    spec: Path | None = None,
    frame: pl.DataFrame | None = None,
):
    """Import a file into a fresh copy of the base workspace. Returns (outcome, store snapshot
    before, store) where outcome is an ImportReport or an ImportFailed; any other exception
    propagates and fails the test."""
    ws, default_spec = base
    d = Path(tempfile.mkdtemp(dir=ws.parent))
    work = d / "w.changeover"
    shutil.copy(ws, work)
    path = d / name
    if frame is not None:
        frame.write_parquet(path)
    else:
        path.write_bytes(data)
    store = Store.open(work)
    before = snapshot(store)
    try:
        outcome = import_file(store, path, spec or default_spec)
    except ImportFailed as exc:
        outcome = exc
    count(f"  -> {'refused' if isinstance(outcome, ImportFailed) else 'imported'}")
    if isinstance(outcome, ImportFailed):
        check_failure(outcome, {str(path), str(spec or default_spec)})
        assert snapshot(store) == before, "a failed import changed the workspace"
    else:
        assert isinstance(outcome, ImportReport)
        after = snapshot(store)
        assert after["ratings_rows"] == before["ratings_rows"], "an import touched human labels"
    return outcome, before, store


def check_failure(exc: ImportFailed, files: set[str]) -> None:
    assert exc.problems and exc.total >= len(exc.problems)
    for p in exc.problems:
        assert p.file in files, p
        assert isinstance(p.line, int) and p.line >= 0
        assert str(p).startswith(f"{p.file}:"), str(p)
        if p.line > 0:
            assert f"{p.line}" in str(p)
    text = str(exc)
    assert "nothing imported" in text and "Traceback" not in text


def csv_bytes(rows: list[list[str]], header: list[str] = HEADER, newline: str = "\n") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogatepass")


def texts(store: Store) -> dict[tuple[str, str], tuple[str, str]]:
    """(item, model) -> (question, response) of the imported eval set."""
    es = store.eval_set("hx")
    out = {}
    for row in store.browse(es.id, limit=10_000):
        view = store.response_view(row.response_id)
        out[(view.item.external_id, view.response.model)] = (view.item.question, view.response.text)
    return out


def line_of_problem(exc: ImportFailed) -> set[int]:
    return {p.line for p in exc.problems}


# ---- adversarial files, one by one ---------------------------------------------------------

OK_ROW = ["q1", "EU", "How do I pay?", "old", "Online.", "yes"]


@pytest.mark.parametrize(
    "name, data, bad_line",
    [
        ("nul.csv", csv_bytes([OK_ROW, ["q2", "EU", "Q?", "old", "a\x00b", "no"]]), 3),
        ("latin1.csv", csv_bytes([OK_ROW]) + "q2,EU,Q?,old,café,no\n".encode("latin-1"), 3),
        ("empty.csv", b"", 1),
        ("header-only.csv", csv_bytes([]), 0),
        ("unbalanced-quote.csv", csv_bytes([OK_ROW]) + b'q2,EU,Q?,old,"never closed,no\n', 0),
        ("too-many-fields.csv", csv_bytes([OK_ROW]) + b"q2,EU,Q?,old,x,no,extra\n", 0),
        ("wrong-level.csv", csv_bytes([OK_ROW, ["q2", "EU", "Q?", "old", "x", "maybe"]]), 3),
        ("unknown-region.csv", csv_bytes([OK_ROW, ["q2", "Mars", "Q?", "old", "x", "no"]]), 3),
        ("blank-response.csv", csv_bytes([OK_ROW, ["q2", "EU", "Q?", "old", "  ", "no"]]), 3),
        ("truncated.jsonl", b'{"item_id": "q1", "region": "EU"\n', 1),
        ("not-objects.jsonl", b'[1, 2]\n"text"\n', 1),
        ("bom.jsonl", b"\xef\xbb\xbf" + json.dumps(dict(zip(HEADER, OK_ROW))).encode() + b"\n", 1),
        (
            "nested-value.jsonl",
            json.dumps({**dict(zip(HEADER, OK_ROW)), "response": {"a": [1]}}).encode() + b"\n",
            1,
        ),
        ("garbage.parquet", b"PAR1 this is not parquet PAR1", 0),
        ("binary.csv", bytes(range(256)) * 4, 1),
    ],
)
def test_adversarial_file_fails_with_its_line(base, name, data, bad_line):
    count("adversarial file")
    outcome, _, store = attempt(base, data, name)
    store.close()
    assert isinstance(outcome, ImportFailed), f"{name} imported: {outcome}"
    assert bad_line in line_of_problem(outcome), str(outcome)


@pytest.mark.parametrize(
    "name, data, expected",
    [
        (
            "bom.csv",
            b"\xef\xbb\xbf" + csv_bytes([OK_ROW]),
            {("q1", "old"): ("How do I pay?", "Online.")},
        ),
        (
            "crlf.csv",
            csv_bytes(
                [OK_ROW, ["q2", "US", "Two\r\nlines?", "old", "First\r\nsecond", "no"]],
                newline="\r\n",
            ),
            {
                ("q1", "old"): ("How do I pay?", "Online."),
                ("q2", "old"): ("Two\nlines?", "First\nsecond"),  # \r\n read as a newline
            },
        ),
        (
            "formula.csv",
            csv_bytes(
                [
                    ["q1", "EU", "=1+1", "old", '=HYPERLINK("http://evil.example","click")', "yes"],
                    ["q2", "EU", "@SUM(A1)", "old", "+cmd|' /C calc'!A0", "no"],
                ]
            ),
            {
                ("q1", "old"): ("=1+1", '=HYPERLINK("http://evil.example","click")'),
                ("q2", "old"): ("@SUM(A1)", "+cmd|' /C calc'!A0"),
            },
        ),
        (
            "sql.csv",
            csv_bytes(
                [
                    [
                        "q1",
                        "EU",
                        "'; DROP TABLE ratings; --",
                        "old",
                        "Robert'); DROP TABLE responses;--",
                        "yes",
                    ]
                ]
            ),
            {("q1", "old"): ("'; DROP TABLE ratings; --", "Robert'); DROP TABLE responses;--")},
        ),
        (
            "escapes.jsonl",
            (
                json.dumps(
                    {
                        **dict(zip(HEADER, OK_ROW)),
                        "response": "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J[bold]x[/]\u202e",
                    }
                )
                + "\n"
            ).encode(),
            {("q1", "old"): ("How do I pay?", "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J[bold]x[/]\u202e")},
        ),
    ],
)
def test_adversarial_file_imports_literally(base, name, data, expected):
    count("adversarial file")
    outcome, _, store = attempt(base, data, name)
    try:
        assert isinstance(outcome, ImportReport), str(outcome)
        assert texts(store) == expected
        assert {"ratings", "responses"} <= {
            t for (t,) in store.con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    finally:
        store.close()


@pytest.mark.parametrize("megabytes", [1, 10])
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_enormous_field_is_stored_whole(base, fmt, megabytes):
    count("enormous field")
    big = ("All work and no play. " * (megabytes * 50_000))[: megabytes * 1_000_000]
    rows = [OK_ROW, ["q2", "US", "Big?", "old", big, "no"]]
    if fmt == "csv":
        outcome, _, store = attempt(base, csv_bytes(rows), "big.csv")
    elif fmt == "jsonl":
        data = "".join(json.dumps(dict(zip(HEADER, r))) + "\n" for r in rows).encode()
        outcome, _, store = attempt(base, data, "big.jsonl")
    else:
        frame = pl.DataFrame({h: [r[i] for r in rows] for i, h in enumerate(HEADER)})
        outcome, _, store = attempt(base, None, "big.parquet", frame=frame)
    try:
        assert isinstance(outcome, ImportReport), str(outcome)
        assert texts(store)[("q2", "old")][1] == big
    finally:
        store.close()


def test_deeply_nested_json_is_a_clear_error(base):
    count("adversarial file")
    deep = "[" * 5000 + "]" * 5000
    line = json.dumps(dict(zip(HEADER, OK_ROW)))[:-1] + f', "meta": {deep}}}\n'
    outcome, _, store = attempt(base, line.encode(), "deep.jsonl")
    store.close()
    assert isinstance(outcome, ImportFailed)
    assert 1 in line_of_problem(outcome)


def test_duplicate_json_keys_are_refused(base):
    count("adversarial file")
    line = (
        '{"item_id": "q1", "region": "EU", "question": "Q?", "model": "old", '
        '"response": "first", "response": "second", "judge_correct": "yes"}\n'
    )
    outcome, _, store = attempt(base, line.encode(), "dup.jsonl")
    store.close()
    assert isinstance(outcome, ImportFailed)
    assert 1 in line_of_problem(outcome)


def test_parquet_with_wrong_types(base):
    count("adversarial file")
    frame = pl.DataFrame(
        {
            "item_id": [1, 2],
            "region": ["EU", "US"],
            "question": [1.5, 2.5],
            "model": ["old", "old"],
            "response": [["a", "list"], ["b"]],
            "judge_correct": [True, False],
        }
    )
    outcome, _, store = attempt(base, None, "types.parquet", frame=frame)
    store.close()
    assert isinstance(outcome, ImportFailed)
    assert {1, 2} <= line_of_problem(outcome)
    assert all(p.unit == "row" for p in outcome.problems if p.line)


# ---- spec files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line",
    [
        pytest.param(b'name = "x"\nincumbent = \n', 2, id="invalid-toml"),
        pytest.param(
            b'name = "x"\nincumbent = "old"\n[regions]\nEU = "lots"\n[[metrics]]\nname = "c"\n'
            b'levels = ["no", "yes"]\n',
            4,
            id="wrong-type",
        ),
        pytest.param(
            b'name = "x"\nincumbent = "old"\n[regions]\nEU = 1\n[[metrics]]\nname = "c"\n'
            b'levels = "yes"\n',
            7,
            id="levels-not-a-list",
        ),
        pytest.param(b'name = "x\xff"\n', 1, id="invalid-utf8"),
        pytest.param(b'name = "x\x00"\n', 1, id="nul"),
        pytest.param(b'\xef\xbb\xbfname = "x"\n', 0, id="bom-incomplete"),
        pytest.param(
            b'name = "x"\n' + b"a = " + b"[" * 3000 + b"]" * 3000 + b"\n", 0, id="deep-nesting"
        ),
        pytest.param(b"", 0, id="empty"),
    ],
)
def test_hostile_spec_fails_with_its_line(base, tmp_path, text, line):
    count("hostile spec")
    spec = tmp_path / "bad.toml"
    spec.write_bytes(text)
    data = csv_bytes([OK_ROW])
    try:
        load_spec(spec)
    except ImportFailed as exc:
        check_failure(exc, {str(spec)})
        if line:
            assert line in line_of_problem(exc), str(exc)
    else:
        pytest.fail("a hostile spec was accepted")
    outcome, _, store = attempt(base, data, "ok.csv", spec=spec)
    store.close()
    assert isinstance(outcome, ImportFailed)


# ---- random files (hypothesis) ------------------------------------------------------------

HOSTILE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
    min_size=0,
    max_size=40,
) | st.sampled_from(
    [
        '=HYPERLINK("http://x","y")',
        "\x1b]0;title\x07",
        "\x1b[2J\x1b[H",
        "[bold red]x[/]",
        "'; DROP TABLE ratings; --",
        "\u202eevil",
        "e\u0301\u0301",
        " padded ",
        "line\nbreak",
        "cr\rlf\r\n",
        "\ufeffbom",
        "",
        "   ",
        "NULL",
        "null",
        "None",
        "1e309",
        "-0",
        "\t",
    ]
)
KEYS = st.sampled_from(["q1", "q2", "q3", " q1 ", "Q1", "", "q\x00", "p1"])
REGIONS = st.sampled_from(["EU", "US", " EU", "eu", "Mars", ""])
MODELS = st.sampled_from(["old", "new", " old", "other", ""])
JUDGE = st.sampled_from(["yes", "no", "YES", " no ", "y", "N", "maybe", "", "2"])
ROW = st.tuples(KEYS, REGIONS, HOSTILE_TEXT, MODELS, HOSTILE_TEXT, JUDGE)
SOME_TEXT = HOSTILE_TEXT.filter(lambda t: t.strip() != "" and "\x00" not in t)
CORRUPTIONS = [
    ("blank", 4),
    ("blank", 2),
    ("blank", 0),
    ("blank", 3),
    ("level", "maybe"),
    ("region", "Mars"),
    ("duplicate", None),
    ("question", "Another question?"),
    ("nul", None),
]


@st.composite
def row_sets(draw) -> list[tuple]:
    """Mostly valid files (hostile text in questions and responses), sometimes with one
    corruption a correct importer must refuse."""
    rows = []
    for k in range(draw(st.integers(1, 3))):
        question, region = draw(SOME_TEXT), draw(st.sampled_from(["EU", "US", " EU "]))
        for model in draw(
            st.lists(st.sampled_from(["old", "new", "other"]), min_size=1, max_size=3, unique=True)
        ):
            rows.append(
                [
                    f"q{k}",
                    region,
                    question,
                    model,
                    draw(SOME_TEXT),
                    draw(st.sampled_from(["yes", "no", "YES", " no ", "y", "N"])),
                ]
            )
    if not any(r[3] == "old" for r in rows):
        rows[0][3] = "old"
    corruption = draw(st.sampled_from([None] * len(CORRUPTIONS) + CORRUPTIONS))
    if corruption is not None:
        kind, arg = corruption
        k = draw(st.integers(0, len(rows) - 1))
        if kind == "blank":
            rows[k][arg] = draw(st.sampled_from(["", "  "]))
        elif kind == "level":
            rows[k][5] = arg
        elif kind == "region":
            rows[k][1] = arg
        elif kind == "duplicate":
            rows.append(list(rows[k]))
        elif kind == "question":
            rows[k][2] = arg
        else:
            rows[k][4] = rows[k][4] + "\x00"
    return [tuple(r) for r in rows]


ROWS = st.one_of(row_sets(), row_sets(), row_sets(), st.lists(ROW, min_size=0, max_size=6))


def expected_outcome(rows: list[tuple], nul_ok: bool = False) -> dict | None:
    """What a correct import of these rows stores, or None if the file must be refused.

    A NUL byte in a CSV is refused (text files do not hold them); in JSON ("\\u0000") and
    Parquet it is a character of the value like any other."""
    levels = {"no", "yes", "n", "y"}
    out, items = {}, {}
    for item, region, question, model, response, judge in rows:
        item, region, model = item.strip(), region.strip(), model.strip()
        if not nul_ok and "\x00" in "".join((item, region, question, model, response, judge)):
            return None
        if not item or not model or not question.strip() or not response.strip():
            return None
        if region not in ("EU", "US") or judge.strip().casefold() not in levels:
            return None
        if (item, model) in out or items.get(item, (question, region)) != (question, region):
            return None
        items[item] = (question, region)
        out[(item, model)] = (question, response)
    if not out or "old" not in {m for _, m in out}:
        return None
    return out


FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    rows=ROWS,
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    poison=st.one_of(*[st.none()] * 3, st.integers(min_value=0, max_value=7)),
)
def test_random_csv(base, rows, newline, bom, poison):
    count("random CSV")
    data = csv_bytes([list(r) for r in rows], newline=newline)
    if bom:
        data = b"\xef\xbb\xbf" + data
    if poison is not None:  # one invalid UTF-8 byte at the end of a physical line
        lines = data.split(b"\n")
        k = poison % len(lines)
        lines[k] = lines[k] + b"\xff"
        data = b"\n".join(lines)
    outcome, _, store = attempt(base, data, "random.csv")
    try:
        # a CSV's \r\n inside a quoted field is read as \n, like the line ends
        as_read = [tuple(f.replace("\r\n", "\n") for f in r) for r in rows]
        expected = None if poison is not None else expected_outcome(as_read)
        if expected is None:
            assert isinstance(outcome, ImportFailed), f"accepted a bad file: {rows!r}"
            if poison is not None:
                assert poison % len(data.split(b"\n")) + 1 in line_of_problem(outcome), str(outcome)
        else:
            assert isinstance(outcome, ImportReport), f"{outcome}\nrows: {rows!r}"
            assert texts(store) == expected
    finally:
        store.close()


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE_TEXT, inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    rows=ROWS.filter(bool),
    odd=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(HEADER + ["extra"]), JSON_VALUE), max_size=2
    )
    | st.just([])
    | st.just([]),
    ascii_only=st.booleans(),
    junk_line=st.one_of(*[st.none()] * 3, st.sampled_from(["{", "[]", "1", "nul\x00"])),
)
def test_random_jsonl(base, rows, odd, ascii_only, junk_line):
    count("random JSONL")
    records = [dict(zip(HEADER, r)) for r in rows]
    for k, key, value in odd:  # wrong types, nested values, extra keys
        records[k % len(records)][key] = value
    lines = [json.dumps(r, ensure_ascii=ascii_only) for r in records]
    if junk_line is not None:
        lines.insert(1, junk_line)
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    outcome, _, store = attempt(base, data, "random.jsonl")
    try:
        plain = not odd and junk_line is None
        expected = expected_outcome(rows, nul_ok=True) if plain else None
        if junk_line is not None:
            assert isinstance(outcome, ImportFailed) and 2 in line_of_problem(outcome), str(outcome)
        elif plain and expected is None:
            assert isinstance(outcome, ImportFailed), f"accepted a bad file: {rows!r}"
        elif plain:
            assert isinstance(outcome, ImportReport), f"{outcome}\nrows: {rows!r}"
            assert texts(store) == expected
    finally:
        store.close()


@FUZZ
@given(
    rows=ROWS.filter(bool),
    retype=st.sampled_from([None, None, None, "int", "float", "bool", "list", "null"]),
    column=st.sampled_from(HEADER),
)
def test_random_parquet(base, rows, retype, column):
    count("random Parquet")
    data = {h: [r[i] for r in rows] for i, h in enumerate(HEADER)}
    n = len(rows)
    if retype == "int":
        data[column] = list(range(n))
    elif retype == "float":
        data[column] = [k + 0.5 for k in range(n)]
    elif retype == "bool":
        data[column] = [k % 2 == 0 for k in range(n)]
    elif retype == "list":
        data[column] = [["x"] * k for k in range(n)]
    elif retype == "null":
        data[column] = [None] * n
    frame = pl.DataFrame(data, strict=False)
    outcome, _, store = attempt(base, None, "random.parquet", frame=frame)
    try:
        if retype is None:
            expected = expected_outcome(rows, nul_ok=True)
            if expected is None:
                assert isinstance(outcome, ImportFailed), f"accepted a bad file: {rows!r}"
            else:
                assert isinstance(outcome, ImportReport), f"{outcome}\nrows: {rows!r}"
                assert texts(store) == expected
        elif retype in ("list", "null"):
            assert isinstance(outcome, ImportFailed), f"{retype} {column} accepted"
    finally:
        store.close()


# ---- search and filters reach SQL as parameters -------------------------------------------

SQLISH = [
    "'; DROP TABLE ratings; --",
    '" OR 1=1 --',
    "%",
    "_",
    "' OR '1'='1",
    "\\",
    "*",
    "x') UNION SELECT name, 1, 1, 1, 1, 1, 1 FROM sqlite_master --",
    "?",
    ":id",
    "$1",
    "\x00",
    "NULL",
    "[",
    "🙂",
    "a" * 10_000,
]


@pytest.mark.parametrize("text", SQLISH)
def test_search_and_filters_are_parameters(base, text):
    count("SQL-ish search")
    ws, _ = base
    with Store.open(ws) as store:
        es = store.eval_set("prior")
        before = snapshot(store)
        everything = store.browse(es.id, limit=100)
        for f in (
            BrowseFilter(search=text),
            BrowseFilter(region=text),
            BrowseFilter(model=text),
            BrowseFilter(metric=text, judge_level=1),
            BrowseFilter(metric=text, disagree=True),
            BrowseFilter(metric=text, unrated=True),
        ):
            rows = store.browse(es.id, f, limit=100)
            assert store.browse_count(es.id, f) == len(rows)
            # What matches is exactly what a literal substring / equality test says.
            if f.search is not None:
                want = [
                    r.response_id
                    for r in everything
                    if text.lower() in store.response_view(r.response_id).response.text.lower()
                    or text.lower() in r.question.lower()
                ]
                assert [r.response_id for r in rows] == want
            elif f.region is not None or f.model is not None:
                assert rows == []
        assert snapshot(store) == before
        assert store.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
