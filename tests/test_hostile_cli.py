"""Hostile files through the command line: whatever the file, `changeover import` and
`import-labels` exit 0 or 1, print no traceback and no control character (stdout or stderr),
and a refused import leaves the workspace byte for byte as it was (a new one is not created).

A fixed corpus of the cases issue 21 found runs through the real command (a subprocess); the
property tests (tests/hostile_files.py) run the same command in-process: a few hundred
generated files in the fast tier, 5,000 in the slow one."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile_files import ANY_INPUT, SPEC, Input
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from changeover.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
# what may never reach a terminal from a file: C0 controls but newline (tab is harmless), DEL,
# C1 controls, bidi overrides and isolates
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
PRIOR_SPEC = SPEC.replace('name = "hx"', 'name = "prior"')
PRIOR = "item_id,region,question,model,response,judge_correct,judge_style\n" + "".join(
    f"p{k},EU,Prior {k}?,{m},Prior answer {k}.,yes,2\n" for k in range(3) for m in ("old", "new")
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A workspace holding an eval set 'prior' and a human label."""
    d = tmp_path_factory.mktemp("hostile-cli")
    (d / "prior.toml").write_text(PRIOR_SPEC)
    (d / "prior.csv").write_text(PRIOR)
    (d / "label.csv").write_text("item_id,model,metric,rater,value\np0,new,correct,ann,no\n")
    ws = d / "template.changeover"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["import", str(ws), str(d / "prior.csv"), "--spec", str(d / "prior.toml")]) == 0
        assert main(["import-labels", str(ws), str(d / "label.csv")]) == 0
    return ws


OUTCOMES: dict[str, int] = {}  # runs per (command, exit), printed when the module ends


@pytest.fixture(scope="module", autouse=True)
def outcomes():
    yield
    print(f"\nhostile CLI runs: {dict(sorted(OUTCOMES.items()))}")


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def check(code: object, out: str, err: str, before: str | None, after: str | None, what: str):
    """The promises, for one run of a command on a hostile input."""
    shown = f"{what}: exit {code!r}\nstdout {out[-400:]!r}\nstderr {err[-800:]!r}"
    OUTCOMES[f"{what} -> {code}"] = OUTCOMES.get(f"{what} -> {code}", 0) + 1
    assert code in (0, 1), shown
    assert "Traceback" not in err and "internal error" not in err, shown
    assert not CONTROL.search(out) and not CONTROL.search(err), shown
    if code == 1:
        assert err.startswith("changeover: "), shown
        assert after == before, "a refused import changed the workspace\n" + shown


def run_in_process(template: Path, given_input: Input, fresh: bool) -> None:
    """Write the input, run the command on a copy of the workspace (or a new one), check."""
    with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
        folder = Path(tmp)
        ws = folder / "w.changeover"
        if not fresh or given_input.command != "import":
            shutil.copy(template, ws)
        args = given_input.write(folder)
        before = digest(ws)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([given_input.command, str(ws), *args])
            except SystemExit as exc:  # argparse: a usage error
                code = exc.code
        check(code, out.getvalue(), err.getvalue(), before, digest(ws), given_input.command)


FAST = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(given_input=ANY_INPUT, fresh=st.booleans())
def test_hostile_files_fast(template, given_input, fresh):
    run_in_process(template, given_input, fresh)


@pytest.mark.slow
@settings(FAST, max_examples=5_000)
@given(given_input=ANY_INPUT, fresh=st.booleans())
def test_hostile_files_slow(template, given_input, fresh):
    run_in_process(template, given_input, fresh)


# ---- the fixed corpus: issue 21's cases, through the real command --------------------------

JSON_ROW = '{"item_id": "q1", "region": "EU", "question": "Q?", "model": "%s", "response": "A.", "judge_correct": "yes", "judge_style": "2"}'


def _binary_parquet() -> pa.Table:
    return pa.table(
        {
            "item_id": pa.array([b"q1", b"\xff\xfeq2"], pa.binary()),
            "region": ["EU", "EU"],
            "question": ["Q?", "Q?"],
            "model": ["old", "new"],
            "response": ["A.", "B."],
            "judge_correct": ["yes", "no"],
            "judge_style": ["1", "2"],
        }
    )


SPEC_FILE = {"spec.toml": SPEC.encode()}
ROWS_CSV = b"item_id,region,question,model,response,judge_correct,judge_style\nq1,EU,Q?,old,A.,yes,1\nq1,EU,Q?,new,B.,no,2\n"
CORPUS = {
    # item 1: tracebacks
    "parquet bytes not UTF-8": (
        Input(
            {"in.parquet": _binary_parquet(), **SPEC_FILE},
            ["{dir}/in.parquet", "--spec", "{dir}/spec.toml"],
        ),
        "row 2: item_id: not valid UTF-8",
    ),
    "a dataset's Parquet bytes not UTF-8": (
        Input(
            {"lake/part.parquet": _binary_parquet(), **SPEC_FILE},
            ["{dir}/lake", "--spec", "{dir}/spec.toml", "--sample-per-cell", "2"],
        ),
        "part.parquet: row 2: item_id: not valid UTF-8",
    ),
    "spec number of 400 digits": (
        Input(
            {"in.csv": ROWS_CSV, "spec.toml": SPEC.replace("3000000", "9" * 400).encode()},
            ["{dir}/in.csv", "--spec", "{dir}/spec.toml"],
        ),
        "spec.toml:4: regions.EU: traffic 999999999999... (400 digits, too large)",
    ),
    "spec number of 5,000 digits": (
        Input(
            {"in.csv": ROWS_CSV, "spec.toml": SPEC.replace("3000000", "9" * 5000).encode()},
            ["{dir}/in.csv", "--spec", "{dir}/spec.toml"],
        ),
        "spec.toml:4: invalid TOML: a number of more than 4,300 digits",
    ),
    "JSONL number of 5,000 digits": (
        Input(
            {
                "in.jsonl": (
                    JSON_ROW % "old" + "\n" + (JSON_ROW % "new").replace('"2"', "9" * 5000) + "\n"
                ).encode(),
                **SPEC_FILE,
            },
            ["{dir}/in.jsonl", "--spec", "{dir}/spec.toml"],
        ),
        "in.jsonl:2: a number of more than 4,300 digits",
    ),
    "JSONL lone surrogate beside a line that is not an object": (
        Input(
            {
                "in.jsonl": (
                    (JSON_ROW % "old").replace('"Q?"', '"\\ud800"') + "\n[1, 2]\n"
                ).encode(),
                **SPEC_FILE,
            },
            ["{dir}/in.jsonl", "--spec", "{dir}/spec.toml"],
        ),
        "in.jsonl:1: question: a lone surrogate escape",
    ),
    "a metric whose columns collide with another's": (
        Input(
            {
                "in.csv": ROWS_CSV,
                "spec.toml": (
                    SPEC + '[[metrics]]\nname = "style_score"\nlevels = ["no", "yes"]\n'
                ).encode(),
            },
            ["{dir}/in.csv", "--spec", "{dir}/spec.toml"],
        ),
        "metrics[2].name: its column judge_style_score is also a column of metric 'style'",
    ),
    # item 3: escapes echoed raw
    "an OSC 52 column name": (
        Input(
            {
                "in.csv": ROWS_CSV.replace(
                    b"judge_style\n", b"judge_style,judge_\x1b]52;c;cm0g\x07\n"
                ),
                **SPEC_FILE,
            },
            ["{dir}/in.csv", "--spec", "{dir}/spec.toml"],
        ),
        "judge_\\x1b]52;c;cm0g\\x07: no metric",
    ),
    "an OSC 0 metric name in the spec": (
        Input(
            {
                "in.csv": ROWS_CSV,
                "spec.toml": SPEC.replace(
                    'name = "style"', 'name = "st\\u001b]0;PWNED\\u0007"'
                ).encode(),
            },
            ["{dir}/in.csv", "--spec", "{dir}/spec.toml"],
        ),
        "\\x1b]0;PWNED\\x07",
    ),
    "an escape in a rater's name": (
        Input(
            {
                "labels.csv": b"item_id,model,metric,rater,value\n"
                b"p1,new,correct,\x1b]0;PWNED\x07,yes\np1,new,correct,\x1b]0;PWNED\x07,no\n"
            },
            ["{dir}/labels.csv"],
            command="import-labels",
        ),
        "rater \\x1b]0;PWNED\\x07)",
    ),
}


@pytest.mark.parametrize("case", list(CORPUS))
def test_corpus_through_the_cli(template, tmp_path, case):
    """Each of the issue's cases as a user meets it: exit 1, one block naming file, line and
    column, no traceback, no control character, the workspace untouched."""
    given_input, expected = CORPUS[case]
    ws = tmp_path / "w.changeover"
    shutil.copy(template, ws)
    args = given_input.write(tmp_path)
    before = digest(ws)
    out = subprocess.run(
        [sys.executable, "-m", "changeover.cli", given_input.command, str(ws), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    check(out.returncode, out.stdout, out.stderr, before, digest(ws), case)
    assert out.returncode == 1 and expected in out.stderr, out.stderr


def test_creating_a_workspace_where_no_file_can_be_made(template, tmp_path):
    """A workspace in a folder the system will not write (here /proc): one line, exit 1."""
    for where in (Path("/proc/w.changeover"), tmp_path / "blocker" / "w.changeover"):
        (tmp_path / "blocker").write_text("a file, not a folder")
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "changeover.cli",
                "import",
                str(where),
                str(template.parent / "prior.csv"),
                "--spec",
                str(template.parent / "prior.toml"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
        assert "Traceback" not in out.stderr and str(where) in out.stderr


def test_a_parquet_file_cut_short(template, tmp_path):
    pq.write_table(_binary_parquet(), tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    for cut in (0, 4, len(data) // 2, len(data) - 1):
        run_in_process(
            template,
            Input(
                {"in.parquet": data[:cut], **SPEC_FILE},
                ["{dir}/in.parquet", "--spec", "{dir}/spec.toml"],
            ),
            fresh=False,
        )
