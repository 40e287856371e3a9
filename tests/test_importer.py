"""Import: the same data in three formats, every bad-input case, idempotence, labels, specs."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from changeover.core.importing.responses import (
    MAX_SHOWN,
    ImportFailed,
    Problem,
    import_file,
    import_labels,
    load_spec,
)
from changeover.core.store import Store

SPEC = """name = "acme"
incumbent = "atlas"
judge = "judge-v3"

[regions]
"North America" = 1_450_000
Europe = 1_200_000

[[metrics]]
name = "correct"
levels = ["no", "yes"]
direction = "higher"
margin = 0.03

[[metrics]]
name = "style"
levels = ["1", "2", "3", "4", "5"]
direction = "higher"
margin = 0.2
unmapped = "missing"
pass_level = "4"
"""

COLUMNS = [
    "item_id",
    "region",
    "question",
    "reference",
    "model",
    "response",
    "judge_correct",
    "judge_correct_score",
    "judge_style",
    "human_correct",
    "rater",
]
# CSV physical lines: header 1; rows start at 2, 4, 6, 7, 10, 11, 12 (responses span lines).
ROWS = [
    [
        "q1",
        "Europe",
        "How do I reset my router?",
        "Hold reset for 10 s",
        "atlas",
        "Hold the button\nfor ten seconds.",
        "yes",
        "0.92",
        "4",
        "yes",
        "ann",
    ],
    [
        "q1",
        "Europe",
        "How do I reset my router?",
        "Hold reset for 10 s",
        "atlas",
        "Hold the button\nfor ten seconds.",
        "yes",
        "0.92",
        "4",
        "no",
        "bob",
    ],
    [
        "q1",
        "Europe",
        "How do I reset my router?",
        "Hold reset for 10 s",
        "nova",
        "Unplug it, [bold]wait[/bold].",
        "no",
        "0.3",
        "3",
        None,
        None,
    ],
    [
        "q2",
        "North America",
        "Can I get a refund?",
        None,
        "atlas",
        "Yes, within 30 days.\n\nSee the policy.",
        "yes",
        "0.88",
        "5",
        None,
        None,
    ],
    [
        "q2",
        "North America",
        "Can I get a refund?",
        None,
        "nova",
        "No.",
        "no",
        "0.1",
        "excellent",
        None,
        None,
    ],
    [
        "q3",
        "Europe",
        "Where is my parcel?",
        None,
        "atlas",
        "It ships Friday.",
        "yes",
        "0.7",
        "2",
        "yes",
        "ann",
    ],
    [
        "q3",
        "Europe",
        "Where is my parcel?",
        None,
        "nova",
        'Track it "online", today',
        "yes",
        "0.8",
        "4",
        None,
        None,
    ],
]
LINES = [2, 4, 6, 7, 10, 11, 12]


def rows(**changes) -> list[dict]:
    """The good rows as dicts; changes = {index: {column: value}}."""
    out = [dict(zip(COLUMNS, r)) for r in ROWS]
    for i, change in changes.items():
        out[int(i.lstrip("r"))].update(change)
    return out


def write_csv(path: Path, data: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(data[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for row in data:
            w.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return path


def _typed(row: dict) -> dict:
    """JSONL/Parquet carry numbers as numbers."""
    out = dict(row)
    if out.get("judge_correct_score") is not None:
        out["judge_correct_score"] = float(out["judge_correct_score"])
    return out


def write_jsonl(path: Path, data: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in data:
            row = _typed(row)
            if str(row.get("judge_style")).isdigit():
                row["judge_style"] = int(row["judge_style"])  # a number 4 means the level "4"
            f.write(json.dumps(row) + "\n")
    return path


def write_parquet(path: Path, data: list[dict]) -> Path:
    schema = {c: pl.String for c in data[0]}
    schema["judge_correct_score"] = pl.Float64
    pl.DataFrame([_typed(r) for r in data], schema=schema, orient="row").write_parquet(path)
    return path


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def dump(store: Store) -> list[str]:
    """Every row of the workspace, for 'nothing changed' checks."""
    return list(store.con.iterdump())


def contents(store: Store) -> dict:
    """What a workspace holds, without ids-by-time (created_at) that differ between runs."""
    out = {}
    for es in store.eval_sets():
        judgments = sorted(
            (
                (j.response_id, j.metric, j.judge, j.value, j.raw, j.score, j.rationale)
                for j in store.judgments_between(0, 10**9)
            ),
            key=repr,
        )
        ratings = [
            (r.response_id, r.metric, r.rater, r.value, r.source, r.retracts)
            for r in store.ratings(es.id)
        ]
        out[es.name] = (
            replace(es, created_at=""),
            store.models(es.id),
            store.responses_page(es.id, 0, 10**6),
            judgments,
            ratings,
            store.stats(es.id),
        )
    return out


# ---- good files --------------------------------------------------------------------------


def test_csv_jsonl_and_parquet_give_identical_workspaces(tmp_path, spec):
    workspaces = []
    for name, writer in (
        ("data.csv", write_csv),
        ("data.jsonl", write_jsonl),
        ("data.parquet", write_parquet),
    ):
        store = Store.memory()
        report = import_file(store, writer(tmp_path / name, rows()), spec)
        assert report.added["responses"] == 6 and report.added["ratings"] == 3
        workspaces.append(contents(store))
    assert workspaces[0] == workspaces[1] == workspaces[2]
    es, models, responses, judgments, ratings, stats = workspaces[0]["acme"]
    assert models == ["atlas", "nova"]
    assert stats._asdict() == {
        "items": 3,
        "responses": 6,
        "judgments": 12,
        "judgments_missing": 1,
        "ratings": 3,
        "labelled_responses": 2,
        "open_ratings": 0,
    }
    assert responses[0].text == "Hold the button\nfor ten seconds."  # verbatim, newlines kept
    assert responses[1].text == "Unplug it, [bold]wait[/bold]."
    assert responses[0].reference == "Hold reset for 10 s"
    assert es.metric("style").pass_level == 3 and es.metric("correct").keys == ("n", "y")


def test_unmappable_judge_value_is_stored_as_missing_with_its_raw_text(tmp_path, spec):
    store = Store.memory()
    report = import_file(store, write_csv(tmp_path / "data.csv", rows()), spec)
    assert report.missing_judgments == {"correct": 0, "style": 1}
    missing = [j for j in store.judgments_between(0, 10**9) if j.value is None]
    assert [(j.metric, j.raw) for j in missing] == [("style", "excellent")]
    scores = {j.score for j in store.judgments_between(0, 10**9) if j.metric == "correct"}
    assert scores == {0.92, 0.3, 0.88, 0.1, 0.7, 0.8}
    text = report.summary()
    assert "6 responses (3 items, 2 models)" in text and "3 labels" in text
    assert "1 judge values unmappable -> missing (style: 1)" in text


def test_numbers_in_jsonl_and_parquet_match_scale_labels(tmp_path, spec):
    data = [r for r in rows() if r["judge_style"] != "excellent"]
    frame = pl.DataFrame([_typed(r) for r in data]).with_columns(
        pl.col("judge_style").cast(pl.Float64)
    )
    frame.write_parquet(tmp_path / "float.parquet")
    store = Store.memory()
    import_file(store, tmp_path / "float.parquet", spec)
    levels = sorted(j.value for j in store.judgments_between(0, 10**9) if j.metric == "style")
    by_response = {(r["item_id"], r["model"]): int(r["judge_style"]) - 1 for r in data}
    assert levels == sorted(by_response.values())


def test_small_chunks_give_the_same_workspace_and_lines(tmp_path, spec):
    path = write_csv(tmp_path / "data.csv", rows())
    whole, chunked = Store.memory(), Store.memory()
    import_file(whole, path, spec)
    import_file(chunked, path, spec, chunk_rows=2)
    assert contents(whole) == contents(chunked)
    bad = write_csv(tmp_path / "bad.csv", rows(r6={"region": "Asia"}))
    with pytest.raises(ImportFailed) as exc:
        import_file(Store.memory(), bad, spec, chunk_rows=2)
    assert "bad.csv:12: region: 'Asia' is not a region of the spec" in str(exc.value)


def test_spec_may_be_an_eval_set_and_format_may_be_forced(tmp_path, spec):
    path = write_jsonl(tmp_path / "data.txt", rows())
    store = Store.memory()
    report = import_file(store, path, load_spec(spec), fmt="jsonl")
    assert report.added["responses"] == 6
    with pytest.raises(ImportFailed, match="cannot tell the format"):
        import_file(store, path, spec)


# ---- re-import ---------------------------------------------------------------------------


def test_reimport_changes_nothing_and_keeps_ratings(tmp_path, spec):
    store = Store.memory()
    path = write_csv(tmp_path / "data.csv", rows())
    import_file(store, path, spec)
    es = store.eval_sets()[0]
    first = store.responses_page(es.id, 0, 10)[0].response_id
    carol = store.add_rating(first, "correct", "carol", 0)
    ann = store.add_rating(first, "correct", "ann", 0)  # ann changes her imported "yes" in the app
    retracted = store.add_rating(first, "style", "dave", 2)
    store.retract(retracted.id, "dave")
    before = dump(store)
    report = import_file(store, path, spec)
    assert dump(store) == before
    assert report.added == {"models": 0, "items": 0, "responses": 0, "judgments": 0, "ratings": 0}
    assert report.summary().startswith("nothing new")
    active = {(r.rater, r.metric): r for r in store.active_ratings(first)}
    assert active[("carol", "correct")].id == carol.id
    assert active[("ann", "correct")].id == ann.id and active[("ann", "correct")].value == 0
    assert ("dave", "style") not in active


def test_reimport_after_new_responses_adds_only_them(tmp_path, spec):
    store = Store.memory()
    import_file(store, write_csv(tmp_path / "a.csv", rows()[:5]), spec)
    assert store.stats(1).responses == 4
    report = import_file(store, write_csv(tmp_path / "b.csv", rows()), spec)
    assert report.added["responses"] == 2 and report.added["items"] == 1
    assert report.added["ratings"] == 1  # only q3's label; q1's two labels were there already
    assert "4 responses already there were kept as stored" in report.summary()
    assert store.stats(1).responses == 6 and store.stats(1).ratings == 3


# ---- bad files: a message with file, line and column; the workspace unchanged ------------

CSV_CASES = {
    "region not in the spec": (
        dict(r6={"region": "Asia"}),
        "data.csv:12: region: 'Asia' is not a region of the spec",
    ),
    "unknown judge level": (
        dict(r6={"judge_correct": "maybe"}),
        "data.csv:12: judge_correct: 'maybe' is not a level of correct (no, yes)",
    ),
    "unknown human level": (
        dict(r5={"human_correct": "perhaps"}),
        "data.csv:11: human_correct: 'perhaps' is not a level of correct (no, yes)",
    ),
    "empty response": (dict(r6={"response": "  "}), "data.csv:12: response: empty response"),
    "question differs": (
        dict(r6={"question": "Where's my parcel??"}),
        "data.csv:12: question: item q3 has a different question on line 11",
    ),
    "item region differs": (
        dict(r4={"region": "Europe"}),
        "data.csv:10: region: item q2 is in 'North America' on line 7",
    ),
    "score not a number": (
        dict(r6={"judge_correct_score": "high"}),
        "data.csv:12: judge_correct_score: 'high' is not a number",
    ),
    "same rater twice": (
        dict(r1={"rater": "ann"}),
        "data.csv:4: item_id: duplicate of line 2 (item q1, model atlas, rater ann)",
    ),
    "rows of one response differ": (
        dict(r1={"response": "Something else"}),
        "data.csv:4: response: differs from line 2",
    ),
    "label without rater": (
        dict(r5={"rater": None}),
        "data.csv:11: rater: empty, but the row has human_ labels",
    ),
}


@pytest.fixture
def imported(tmp_path, spec) -> Store:
    store = Store.memory()
    import_file(store, write_csv(tmp_path / "good.csv", rows()), spec)
    return store


def _refused(store: Store, path: Path, spec: Path, expected: str, **kw) -> ImportFailed:
    before = dump(store)
    with pytest.raises(ImportFailed) as exc:
        import_file(store, path, spec, **kw)
    assert dump(store) == before
    shown = [str(p) for p in exc.value.problems]
    assert any(s.endswith(expected) or expected in s for s in shown), "\n".join(shown)
    assert expected in str(exc.value)
    return exc.value


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_csv_is_refused_with_its_line_and_nothing_changes(tmp_path, spec, imported, case):
    changes, expected = CSV_CASES[case]
    path = write_csv(tmp_path / "data.csv", rows(**changes))
    _refused(imported, path, spec, str(tmp_path / expected))


def test_incumbent_without_responses_is_refused(tmp_path, spec):
    data = rows(**{f"r{i}": {"model": "orbit"} for i in (0, 1, 3, 5)})
    _refused(
        Store.memory(),
        write_csv(tmp_path / "data.csv", data),
        spec,
        str(tmp_path / "data.csv: model: the incumbent 'atlas'"),
    )


def test_duplicate_response_names_both_lines(tmp_path, spec, imported):
    path = write_csv(tmp_path / "data.csv", rows() + [rows()[6]])
    _refused(imported, path, spec, str(tmp_path / "data.csv:13: item_id: duplicate of line 12"))


def test_missing_column_is_named_on_the_header_line(tmp_path, spec, imported):
    columns = [c for c in COLUMNS if c != "question"]
    path = write_csv(tmp_path / "data.csv", rows(), columns)
    _refused(imported, path, spec, str(tmp_path / "data.csv:1: question: missing column"))


def test_column_of_an_unknown_metric_is_refused(tmp_path, spec, imported):
    data = [dict(r, judge_tone="warm") for r in rows()]
    path = write_csv(tmp_path / "data.csv", data)
    _refused(imported, path, spec, "judge_tone: no metric 'tone' in the spec")


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"\xff\xfe", "not valid UTF-8 (byte 0xff"),
        (b"\x00", "NUL byte"),
    ],
)
def test_unreadable_bytes_are_named_by_line(tmp_path, spec, imported, bad, message):
    path = write_csv(tmp_path / "data.csv", rows())
    raw = path.read_bytes().replace(b"Track it", b"Track" + bad + b" it")
    path.write_bytes(raw)
    _refused(imported, path, spec, str(tmp_path / f"data.csv:12: encoding: {message}"))


def test_item_that_differs_from_the_workspace_is_refused(tmp_path, spec, imported):
    data = rows(r2={"question": "How do I restart my router?"})[2:3]
    path = write_csv(tmp_path / "data.csv", data)
    _refused(
        imported,
        path,
        spec,
        "data.csv:2: question: item q1 has a different question in the workspace",
    )


def test_changed_levels_of_a_held_metric_are_refused(tmp_path, imported):
    spec = tmp_path / "other.toml"
    spec.write_text(
        SPEC.replace('levels = ["1", "2", "3", "4", "5"]', 'levels = ["1", "2", "3"]').replace(
            'pass_level = "4"', 'pass_level = "3"'
        )
    )
    path = write_csv(tmp_path / "data.csv", rows(r4={"judge_style": "2"}))
    _refused(
        imported,
        path,
        spec,
        "metrics.style.levels: the workspace holds style with levels 1, 2, 3, 4, 5",
    )


def test_malformed_json_line_is_a_problem_not_a_traceback(tmp_path, spec, imported):
    path = write_jsonl(tmp_path / "data.jsonl", rows())
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-5]  # cut off the end of line 3
    lines.insert(4, "")  # a blank line 5: later lines keep their physical numbers
    path.write_text("\n".join(lines) + "\n")
    exc = _refused(imported, path, spec, str(tmp_path / "data.jsonl:3: malformed JSON"))
    assert exc.total == 1


def test_nested_value_in_a_text_column_is_a_wrong_type(tmp_path, spec, imported):
    path = write_jsonl(
        tmp_path / "data.jsonl", rows(r4={"question": {"text": "Can I get a refund?"}})
    )
    exc = _refused(
        imported,
        path,
        spec,
        str(
            tmp_path / "data.jsonl:5: question: a list or object where a single value was expected"
        ),
    )
    assert exc.total == 1  # reported once, not again as an empty or differing question


def test_parquet_problems_name_the_row(tmp_path, spec, imported):
    data = rows(r6={"region": "Asia"})
    frame = pl.DataFrame([_typed(r) for r in data]).with_columns(
        pl.Series("reference", [None, ["a", "b"], None, None, None, None, None])
    )
    frame.write_parquet(tmp_path / "data.parquet")
    exc = _refused(
        imported,
        tmp_path / "data.parquet",
        spec,
        str(tmp_path / "data.parquet: row 7: region: 'Asia' is not a region of the spec"),
    )
    assert any(
        str(p).endswith("row 2: reference: a list or object where a single value was expected")
        for p in exc.problems
    )


def test_problem_list_is_capped_with_a_count_of_the_rest(tmp_path, spec, imported):
    base = rows()[0]
    data = [
        dict(base, item_id=f"x{i}", rater=None, human_correct=None, region="Mars")
        for i in range(120)
    ]
    path = write_csv(tmp_path / "data.csv", data)
    exc = _refused(imported, path, spec, "data.csv:4: region: 'Mars' is not a region")
    assert exc.total == 120 and len(exc.problems) == MAX_SHOWN
    assert "... and 70 more" in str(exc)
    assert str(exc).count("\n") == MAX_SHOWN + 1


def test_problem_text_format():
    assert str(Problem("a.csv", 12, "region", "bad")) == "a.csv:12: region: bad"
    assert (
        str(Problem("a.parquet", 3, "model", "bad", unit="row")) == "a.parquet: row 3: model: bad"
    )
    assert str(Problem("a.csv", 0, "model", "bad")) == "a.csv: model: bad"


# ---- labels files ------------------------------------------------------------------------

LABEL_COLUMNS = ["item_id", "model", "metric", "rater", "value", "created_at"]


def write_labels(path: Path, data: list[list]) -> Path:
    return write_csv(path, [dict(zip(LABEL_COLUMNS, r)) for r in data], LABEL_COLUMNS)


GOOD_LABELS = [
    ["q1", "nova", "correct", "ann", "no", "2026-11-02T14:05:00Z"],
    ["q2", "atlas", "style", "ann", "4", None],
    ["q2", "nova", "correct", "bob", "Y", None],  # a key in the other case
    ["q2", "nova", "correct", "bob", "yes", None],  # same label twice: fine
]


def test_labels_file_twice_adds_nothing(tmp_path, imported):
    path = write_labels(tmp_path / "labels.csv", GOOD_LABELS)
    first = import_labels(imported, path)
    assert first.added["ratings"] == 3
    assert "imported 3 labels" in first.summary()
    stamps = {
        r.created_at for r in imported.ratings(1) if r.rater == "ann" and r.metric == "correct"
    }
    assert "2026-11-02T14:05:00.000000+00:00" in stamps
    before = dump(imported)
    second = import_labels(imported, path, eval_set="acme")
    assert second.added["ratings"] == 0
    assert dump(imported) == before


def test_bad_labels_are_refused_with_their_lines(tmp_path, imported):
    data = [
        ["q1", "nova", "correct", "ann", "maybe", None],  # 2: unknown level
        ["q9", "atlas", "correct", "ann", "yes", None],  # 3: unknown response
        ["q2", "atlas", "tone", "ann", "yes", None],  # 4: unknown metric
        ["q2", "nova", "correct", "bob", "no", "yesterday"],  # 5: bad time
        ["q3", "nova", "correct", "cy", "no", None],  # 6
        ["q3", "nova", "correct", "cy", "yes", None],  # 7: contradicts line 6
        ["q1", "atlas", "correct", "bob", "yes", None],  # 8: bob said no in the workspace
    ]
    path = write_labels(tmp_path / "labels.csv", data)
    before = dump(imported)
    with pytest.raises(ImportFailed) as exc:
        import_labels(imported, path)
    assert dump(imported) == before
    text = str(exc.value)
    f = str(tmp_path / "labels.csv")
    for expected in (
        f"{f}:2: value: 'maybe' is not a level of correct (no, yes)",
        f"{f}:3: item_id: no response of model 'atlas' to item 'q9'",
        f"{f}:4: metric: 'tone' is not a metric of 'acme'",
        f"{f}:5: created_at: 'yesterday' is not an ISO 8601 time",
        f"{f}:7: value: yes here but no on line 6",
        f"{f}:8: value: rater bob already has the label no",
    ):
        assert expected in text, text
    assert exc.value.total == 6


def test_labels_need_their_columns(tmp_path, imported):
    path = write_csv(tmp_path / "labels.csv", [{"item_id": "q1", "model": "nova", "value": "no"}])
    with pytest.raises(ImportFailed) as exc:
        import_labels(imported, path)
    assert f"{tmp_path / 'labels.csv'}:1: metric: missing column" in str(exc.value)
    assert "rater: missing column" in str(exc.value)


# ---- specs -------------------------------------------------------------------------------


def _spec_error(tmp_path, text: str) -> str:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFailed) as exc:
        load_spec(path)
    return str(exc.value)


def test_spec_loads_with_defaults(spec):
    es = load_spec(spec)
    assert es.id == 0 and es.name == "acme" and es.incumbent == "atlas" and es.judge == "judge-v3"
    assert es.region_names == ("North America", "Europe")
    assert es.metric("style").keys == ("1", "2", "3", "4", "5")
    assert es.metric("style").unmapped == "missing" and es.metric("correct").unmapped == "error"


def test_spec_semantic_errors_name_line_and_key(tmp_path):
    text = _spec_error(
        tmp_path,
        SPEC.replace('direction = "higher"\nmargin = 0.2', 'direction = "up"\nmargin = 0.2'),
    )
    line = SPEC.splitlines().index('name = "style"') + 3  # 1-based line of its direction
    assert (
        f"spec.toml:{line}: metrics[1].direction: 'up' is not one of higher, lower, match" in text
    )


def test_spec_syntax_error_names_the_line(tmp_path):
    text = _spec_error(tmp_path, SPEC.replace("margin = 0.03", "margin = "))
    assert "spec.toml:13: invalid TOML" in text


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            ("Europe = 1_200_000", "Europe = -5"),
            "spec.toml:7: regions.Europe: traffic -5 is not a positive number",
        ),
        (('name = "acme"\n', ""), "spec.toml: name: required"),
        (
            ("margin = 0.03", 'margin = 0.03\nkeys = ["n", "q"]'),
            "spec.toml:14: metrics[0].keys: q is the rate screen's own key (u undo",
        ),
        (
            ("margin = 0.03", 'margin = 0.03\nkeys = ["n", "e"]'),  # e: the full question
            "spec.toml:14: metrics[0].keys: e is the rate screen's own key (u undo",
        ),
        (
            ("margin = 0.03", 'margin = 0.03\nkeys = ["n", "n"]'),
            "metrics[0].keys: keys must differ",
        ),
        (
            ("margin = 0.03", 'margin = 0.03\npass_level = "yes"'),
            "metrics[0].pass_level: only for scales with more than two levels",
        ),
        (
            ("margin = 0.03", 'margin = 0.03\n[metrics.judge_map]\n"1_full" = "perhaps"'),
            "spec.toml:15: metrics[0].judge_map.1_full: 'perhaps' is not one of the levels no, yes",
        ),
        (
            ('judge = "judge-v3"', 'judge = "judge-v3"\nincumbant = "x"'),
            "spec.toml:4: incumbant: unknown key",
        ),
        (
            ('levels = ["no", "yes"]', 'levels = ["yes"]'),
            "metrics[0].levels: must be a list of at least two",
        ),
        (
            ('unmapped = "missing"', 'unmapped = "skip"'),
            "metrics[1].unmapped: 'skip' is not one of error, missing",
        ),
    ],
)
def test_spec_errors(tmp_path, change, expected):
    text = _spec_error(tmp_path, SPEC.replace(*change))
    assert expected in text, text


def test_spec_collects_all_errors(tmp_path):
    text = _spec_error(
        tmp_path,
        SPEC.replace('direction = "higher"', 'direction = "up"').replace(
            "margin = 0.03", "margin = -1"
        ),
    )
    assert "3 problems" in text


def test_duplicate_json_key_and_deep_nesting_are_problems_with_their_lines(
    tmp_path, spec, imported
):
    path = write_jsonl(tmp_path / "data.jsonl", rows())
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:-1] + ', "response": "a second answer"}'
    lines[3] = lines[3][:-1] + ', "meta": ' + "[" * 3000 + "]" * 3000 + "}"
    path.write_text("\n".join(lines) + "\n")
    exc = _refused(
        imported,
        path,
        spec,
        str(tmp_path / "data.jsonl:2: response: appears twice in this JSON object"),
    )
    assert str(tmp_path / "data.jsonl:4: JSON nested too deeply") in str(exc)
    spec_path = tmp_path / "deep.toml"
    spec_path.write_text('name = "x"\na = ' + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ImportFailed, match="nested too deeply"):
        load_spec(spec_path)


def test_labels_in_jsonl_and_parquet(tmp_path, imported):
    good = [dict(zip(LABEL_COLUMNS, r)) for r in GOOD_LABELS[:2]]
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text(
        "".join(json.dumps(r) + "\n" for r in good) + json.dumps(dict(good[0], item_id="q7")) + "\n"
    )
    with pytest.raises(ImportFailed) as exc:
        import_labels(imported, jsonl)
    assert f"{jsonl}:3: item_id: no response of model 'nova' to item 'q7'" in str(exc.value)
    frame = pl.DataFrame(good).with_columns(pl.Series("value", ["no", "4"]))
    frame.write_parquet(tmp_path / "labels.parquet")
    assert import_labels(imported, tmp_path / "labels.parquet").added["ratings"] == 2
    frame.with_columns(pl.Series("value", ["no", "9"])).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(
        ImportFailed, match=r"bad.parquet: row 2: value: '9' is not a level of style"
    ):
        import_labels(imported, tmp_path / "bad.parquet")
