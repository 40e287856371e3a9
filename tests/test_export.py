"""Export of ratings and responses: round trip in every format, provenance, CSV neutralisation."""

import io
import json
from pathlib import Path

import polars as pl
import pytest

from changeover.cli.main import main
from changeover.core.render import export as ex
from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region

SPEC = EvalSet(
    id=0,
    name="support",
    incumbent="old",
    regions=(Region("EU", 3.0), Region("US", 1.0)),
    metrics=(
        Metric("correct", ("no", "yes"), "higher", 0.03, "Is it right?", ("n", "y")),
        Metric("style", ("1", "2", "3", "4", "5"), "higher", 0.2, "Tone", pass_level=3),
    ),
    judge="gpt-judge",
)


def build(store: Store) -> tuple[EvalSet, dict]:
    """A small workspace with imported and app labels, a replaced label and an undone one."""
    es = store.save_eval_set(SPEC)
    with store.importing(es.id) as batch:
        batch.add_responses(
            [
                ("q1", "EU", "How do I pay?", "Online.", "old", "Pay online."),
                ("q1", "EU", "How do I pay?", "Online.", "new", '=HYPERLINK("http://x","hi")'),
                ("q2", "US", "Cancel?", None, "old", "-2+3 is what you owe \x1b[31m"),
                ("q2", "US", "Cancel?", None, "new", '@SUM(A1) said "quoted", ok'),
            ]
        )
        batch.add_judgments(
            [
                ("q1", "old", "correct", "gpt-judge", 1, "yes", 0.9, "fine"),
                ("q1", "new", "correct", "gpt-judge", 0, "no", -0.5, "+wrong"),
                ("q2", "old", "correct", "gpt-judge", None, "unsure", None, None),
                ("q1", "old", "style", "gpt-judge", 3, "4", None, None),
            ]
        )
        batch.add_ratings([("q1", "old", "correct", "ann", 1, "2026-01-01T00:00:00+00:00")])
    rid = {
        (v.item.external_id, v.response.model): v.response.id
        for v in (store.response_view(i) for i in range(1, 5))
    }
    store.add_rating(rid["q1", "old"], "correct", "bob", 1)  # agrees with ann
    store.add_rating(rid["q1", "new"], "correct", "ann", 1)
    store.add_rating(rid["q1", "new"], "correct", "ann", 0)  # replaces the 1
    undone = store.add_rating(rid["q2", "new"], "correct", "bob", 1)
    store.retract(undone.id, "bob")
    store.add_rating(rid["q2", "old"], "correct", "ann", 1)
    store.add_rating(rid["q2", "old"], "correct", "bob", 0)  # a tie
    store.add_rating(rid["q1", "old"], "style", "ann", 4, blind=False)
    return es, rid


@pytest.fixture
def workspace(tmp_path):
    path = tmp_path / "w.changeover"
    with Store.open(path, create=True) as store:
        es, rid = build(store)
        events = store.ratings(es.id)
    return path, es, rid, events


def read(path, fmt) -> pl.DataFrame:
    if fmt == "csv":
        return pl.read_csv(path, infer_schema=False)  # all text: what a spreadsheet would see
    if fmt == "jsonl":
        return pl.read_ndjson(path)
    return pl.read_parquet(path)


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_ratings_round_trip(workspace, tmp_path, fmt):
    path, es, rid, events = workspace
    out = tmp_path / f"ratings.{fmt}"
    assert main(["export", str(path), "--what", "ratings", "--format", fmt, "-o", str(out)]) == 0
    df = read(out, fmt)
    assert df.height == len(events) == 10
    assert set(ex.RATING_COLUMNS) == set(df.columns)
    if fmt == "csv":
        df = df.with_columns(
            pl.col("event_id", "retracted_by", "retracts", "level").cast(pl.Int64),
            pl.col("blind", "retracted", "active") == "true",
        )
    by_id = {r["event_id"]: r for r in df.iter_rows(named=True)}
    for e in events:
        row = by_id[e.id]
        assert (
            row["rater"],
            row["level"],
            row["created_at"],
            row["blind"],
            row["source"],
            row["retracts"],
            row["response_id"] if fmt != "csv" else e.response_id,
        ) == (e.rater, e.value, e.created_at, e.blind, e.source, e.retracts, e.response_id)
    imported = df.filter(pl.col("source") == "import")
    assert imported.height == 1 and imported["blind"].to_list() == [False]
    # the replaced label and the undone label are both visible, with who and when undid them
    retracted = df.filter(pl.col("retracted"))
    assert retracted.height == 2
    for row in retracted.iter_rows(named=True):
        undo = by_id[row["retracted_by"]]
        assert undo["retracts"] == row["event_id"]
        assert row["retracted_at"] == undo["created_at"]
        assert row["retracted_by_rater"] == undo["rater"]
        assert row["active"] is False
    active = df.filter(pl.col("active"))
    with Store.open(path, read_only=True) as store:
        assert active.height == len(store.ratings(es.id, include_retracted=False))
    labels = df.filter(pl.col("metric") == "style")["label"].to_list()
    assert labels == ["5"]  # level index 4 of 1..5


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_responses_round_trip(workspace, tmp_path, fmt):
    path, es, rid, _ = workspace
    out = tmp_path / f"responses.{fmt}"
    assert main(["export", str(path), "--what", "responses", "--format", fmt, "-o", str(out)]) == 0
    df = read(out, fmt)
    assert df.height == 4
    assert list(df.columns) == list(ex.response_columns(es))
    rows = {(r["item_id"], r["model"]): r for r in df.iter_rows(named=True)}
    q1_old, q1_new, q2_old, q2_new = (
        rows[k] for k in [("q1", "old"), ("q1", "new"), ("q2", "old"), ("q2", "new")]
    )
    as_int = (lambda v: None if v is None else int(v)) if fmt == "csv" else (lambda v: v)
    assert q1_old["judge_correct_label"] == "yes" and q1_old["judge_correct_raw"] == "yes"
    assert q1_old["human_correct_label"] == "yes" and as_int(q1_old["human_correct_votes"]) == 2
    assert q1_old["human_style_label"] in ("5", 5) and q1_old["judge_style_label"] in ("4", 4)
    assert q1_new["human_correct_label"] == "no" and as_int(q1_new["human_correct_votes"]) == 1
    assert q2_old["human_correct_label"] is None and as_int(q2_old["human_correct_votes"]) == 2
    assert q2_old["judge_correct_level"] is None and q2_old["judge_correct_raw"] == "unsure"
    assert q2_new["human_correct_label"] is None and as_int(q2_new["human_correct_votes"]) == 0
    if fmt == "csv":  # text cells a spreadsheet would run are neutralised, numbers are not
        assert q1_new["text"] == '\'=HYPERLINK("http://x","hi")'
        assert q2_old["text"].startswith("'-2+3")
        assert q2_new["text"] == '\'@SUM(A1) said "quoted", ok'
        assert q1_new["judge_correct_rationale"] == "'+wrong"
        assert q1_new["judge_correct_score"] == "-0.5"
    else:  # JSONL and Parquet keep the text exactly
        assert q1_new["text"] == '=HYPERLINK("http://x","hi")'
        assert q2_old["text"] == "-2+3 is what you owe \x1b[31m"
        assert q1_new["judge_correct_score"] == -0.5


def test_neutralise():
    from changeover.core.text import neutralise

    for bad in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert neutralise(bad) == "'" + bad
    for fine in ("a=1", "1-2", "", " =x"):
        assert neutralise(fine) == fine
    assert neutralise(-3) == -3


def test_stdout_csv_and_terminal_escapes(workspace, capsys):
    path, *_ = workspace
    assert main(["export", str(path), "--what", "responses"]) == 0
    out = capsys.readouterr().out
    assert "'=HYPERLINK" in out and "\x1b" in out  # a pipe gets the data as is

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    with Store.open(path, read_only=True) as store:
        ex.export(store, store.eval_set("support"), "responses", "csv", tty)
    assert "\x1b" not in tty.getvalue() and "\\x1b[31m" in tty.getvalue()

    with Store.open(path) as store:  # a C1 CSI (\x9b) survives json.dumps: escaped on a terminal
        store.add_rating(1, "correct", "eve\x9b2J", 1)
        es = store.eval_set("support")
        tty = Tty()
        ex.export(store, es, "ratings", "jsonl", tty)
        pipe = io.StringIO()
        ex.export(store, es, "ratings", "jsonl", pipe)
    assert "\x9b" not in tty.getvalue() and "eve\\u009b2J" in tty.getvalue()
    assert json.loads(tty.getvalue().splitlines()[-1])["rater"] == "eve\x9b2J"
    assert "eve\x9b2J" in pipe.getvalue()


def test_a_right_to_left_override_is_shown_not_obeyed_on_a_terminal(workspace):
    """The same characters the report escapes: export to a terminal escapes them too."""
    path, *_ = workspace

    class Tty(io.StringIO):
        def isatty(self):
            return True

    with Store.open(path) as store:
        store.add_rating(1, "correct", "eve\u202egnp.exe", 1)
        es = store.eval_set("support")
        csv_tty, json_tty = Tty(), Tty()
        ex.export(store, es, "ratings", "csv", csv_tty)
        ex.export(store, es, "ratings", "jsonl", json_tty)
    assert "\u202e" not in csv_tty.getvalue() and "eve\\u202egnp.exe" in csv_tty.getvalue()
    assert "\u202e" not in json_tty.getvalue() and "eve\\u202egnp.exe" in json_tty.getvalue()
    assert json.loads(json_tty.getvalue().splitlines()[-1])["rater"] == "eve\u202egnp.exe"


def test_stdout_jsonl(workspace, capsys):
    path, *_ = workspace
    assert main(["export", str(path), "--what", "ratings", "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10 and json.loads(lines[0])["rater"] == "ann"


def test_parquet_without_output_refused(workspace, capsys):
    path, *_ = workspace
    assert main(["export", str(path), "--what", "ratings", "--format", "parquet"]) == 2
    assert "-o FILE" in capsys.readouterr().err


def test_streams_in_pages(tmp_path):
    store = Store.memory()
    es, _ = build(store)
    calls = []
    page = store.responses_page

    def spy(*a):
        calls.append(a)
        return page(*a)

    store.responses_page = spy
    assert len(list(ex.response_rows(store, es, page=3))) == 4
    assert len(calls) == 3  # 3 rows, 1 row, then an empty page
    assert len(list(ex.rating_rows(store, es, page=4))) == 10


def test_failed_export_leaves_no_file(workspace, tmp_path):
    path, *_ = workspace
    out = tmp_path / "results.csv"
    code = main(["export", str(path), "--what", "results", "-o", str(out)])
    assert code == 1  # no fit yet (or no report modules): a clear error, nothing written
    assert not out.exists() and not list(tmp_path.glob(".results.csv.*"))


def test_unknown_eval_set(workspace, capsys):
    path, *_ = workspace
    assert main(["export", str(path), "--eval-set", "nope", "--what", "ratings"]) == 1
    assert "nope" in capsys.readouterr().err


def canned_fitter(counts, weights, settings, on_progress=None, cancel=None, pass_levels=None):
    """The instant posterior standing in for the full model: fast and deterministic."""
    from types import SimpleNamespace

    from changeover.core.model.instant import instant_posterior

    posts = [
        instant_posterior(c, weights, draws=400, seed=0, pass_level=(pass_levels or {}).get(name))
        for name, c in counts.items()
    ]
    return SimpleNamespace(posteriors=posts, diagnostics={"ok": True}, seconds=0.0)


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_results_of_latest_fit(workspace, tmp_path, fmt):
    from changeover.core.model.fit import Settings
    from changeover.core.model.kept_fits import run_fit

    path, es, *_ = workspace
    with Store.open(path) as store:
        fit = run_fit(store, store.eval_set("support"), Settings.quick(), fitter=canned_fitter)
    out = tmp_path / f"results.{fmt}"
    assert main(["export", str(path), "--what", "results", "--format", fmt, "-o", str(out)]) == 0
    df = read(out, fmt)
    # 2 metrics x (2 regions + overall) x 2 models
    assert df.height == 2 * 3 * 2
    assert set(ex.result_columns()) == set(df.columns)
    if fmt == "csv":
        df = df.with_columns(
            pl.col("fit_id").cast(pl.Int64), pl.col("mean", "lower_90", "upper_90").cast(pl.Float64)
        )
    assert set(df["fit_id"].to_list()) == {fit.id}
    assert set(df["fit_created_at"].to_list()) == {fit.created_at}
    assert ((df["lower_90"] <= df["mean"]) & (df["mean"] <= df["upper_90"])).all()
    assert set(df["region"].to_list()) == {"EU", "US", "overall"}
    cand = df.filter(pl.col("model") == "new")
    assert cand["verdict"].null_count() == 0 and set(cand["verdict"].to_list()) <= {
        "ready",
        "not ready",
        "undecided",
    }


def test_closed_pipe_is_not_an_error(workspace, tmp_path):
    import subprocess
    import sys

    path, *_ = workspace
    with Store.open(path) as store:  # enough rows to outgrow the pipe's buffer
        es = store.eval_set("support")
        with store.importing(es.id) as batch:
            batch.add_responses(
                [(f"x{i}", "EU", "q" * 200, None, "old", "t" * 2000) for i in range(400)]
            )
    proc = subprocess.Popen(
        [sys.executable, "-m", "changeover.cli", "export", str(path), "--what", "responses"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout.readline().startswith(b"response_id,")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_unwritable_output_is_a_clear_error(workspace, tmp_path, monkeypatch, capsys):
    import tempfile

    path, *_ = workspace

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "r.csv"
    assert main(["export", str(path), "--what", "ratings", "-o", str(out)]) == 1
    assert "cannot write here (Permission denied)" in capsys.readouterr().err
    assert (
        main(["export", str(path), "--what", "ratings", "-o", str(tmp_path / "missing" / "r.csv")])
        == 1
    )
    assert "no such directory" in capsys.readouterr().err
    assert not out.exists()


def test_report_csv_and_results_export_write_the_same_cells(workspace, capsys):
    """`report --format csv` and `export --what results` write one convention: the same cells,
    byte for byte, booleans as true/false (the report wrote True/False)."""
    from changeover.core.model.fit import Settings
    from changeover.core.model.kept_fits import run_fit

    path, *_ = workspace
    with Store.open(path) as store:
        run_fit(store, store.eval_set("support"), Settings.quick(), fitter=canned_fitter)
    assert main(["report", str(path), "--format", "csv"]) == 0
    report = capsys.readouterr().out.splitlines()
    assert main(["export", str(path), "--what", "results"]) == 0
    exported = capsys.readouterr().out.splitlines()
    assert [line.rsplit(",", 1)[0] for line in exported] == report
    column = report[0].split(",").index("incumbent")
    assert {row.split(",")[column] for row in report[1:]} == {"true", "false"}
