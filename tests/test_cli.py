"""The command line: exit codes (0 ok, 1 data error, 2 usage error), errors on stderr, info."""

import subprocess
import sys
from pathlib import Path

import pytest

from changeover.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = """
name = "mini"
incumbent = "old"
[regions]
"EU" = 2
"US" = 1
[[metrics]]
name = "correct"
levels = ["no", "yes"]
"""
DATA = (
    "item_id,region,question,model,response,judge_correct\n"
    "q1,EU,How do I pay?,old,Online.,yes\n"
    "q1,EU,How do I pay?,new,By card.,no\n"
    "q2,US,Cancel?,old,Call us.,yes\n"
    "q2,US,Cancel?,new,Use the app.,yes\n"
)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC)
    (tmp_path / "data.csv").write_text(DATA)
    return tmp_path


def test_import_then_info(files, capsys):
    ws = files / "w.changeover"
    assert (
        main(["import", str(ws), str(files / "data.csv"), "--spec", str(files / "spec.toml")]) == 0
    )
    assert "4" in capsys.readouterr().out
    assert main(["info", str(ws)]) == 0
    out = capsys.readouterr().out
    assert "eval set 'mini': incumbent old" in out
    assert "models:  old, new" in out
    assert "regions: EU (67%), US (33%)" in out
    assert "2 items, 4 responses, 4 judgments (0 unmappable), 0 ratings" in out


def test_info_and_a_report_without_a_fit_load_no_statistics(files):
    """A command loads what it uses: `info` needs no numpy, and a report of an eval set with
    no fit says so before scipy loads (each took about twice its CPU time when they did)."""
    ws = files / "w.changeover"
    assert (
        main(["import", str(ws), str(files / "data.csv"), "--spec", str(files / "spec.toml")]) == 0
    )
    code = (
        "import sys\n"
        "from changeover.cli.entry import main\n"
        "sys.argv = ['changeover', *sys.argv[1:]]\n"
        "code = main()\n"
        "print('LOADED', *sorted({'numpy', 'scipy'} & set(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    for args, status, unused in (
        (["info", str(ws)], 0, "numpy"),
        (["report", str(ws)], 1, "scipy"),
    ):
        out = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == status, out.stderr
        loaded = out.stderr.split("LOADED")[-1].split()
        assert unused not in loaded, (args, out.stderr)


def test_data_error_exits_1_and_leaves_no_workspace(files, capsys):
    bad = files / "bad.csv"
    bad.write_text(DATA.replace("q2,US,Cancel?,new,Use the app.,yes", "q2,Mars,Cancel?,new,,maybe"))
    ws = files / "w.changeover"
    assert main(["import", str(ws), str(bad), "--spec", str(files / "spec.toml")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:5" in err and "Mars" in err and "maybe" in err
    assert "Traceback" not in err
    assert not ws.exists()


def test_failed_import_keeps_an_existing_workspace(files, capsys):
    ws = files / "w.changeover"
    assert (
        main(["import", str(ws), str(files / "data.csv"), "--spec", str(files / "spec.toml")]) == 0
    )
    bad = files / "bad.csv"
    bad.write_text(DATA + "q3,EU,New?,old,,yes\n")
    assert main(["import", str(ws), str(bad), "--spec", str(files / "spec.toml")]) == 1
    assert ws.exists()
    assert main(["info", str(ws)]) == 0
    assert "2 items, 4 responses" in capsys.readouterr().out


def test_foreign_workspace_is_a_data_error(files, capsys):
    notes = files / "notes.txt"
    notes.write_text("hello")
    assert main(["info", str(notes)]) == 1
    assert "not a changeover workspace" in capsys.readouterr().err


def test_usage_error_exits_2():
    out = subprocess.run(
        [sys.executable, "-m", "changeover.cli", "import", "only-one-arg"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "usage:" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("args", [["open", "{ws}"], ["rate", "{ws}"], []])
def test_the_app_without_a_terminal_exits_2_at_once(files, args):
    """A script or CI step that runs `changeover` gets a one-line answer, not a full-screen app
    waiting forever for keys."""
    ws = files / "w.changeover"
    assert (
        main(["import", str(ws), str(files / "data.csv"), "--spec", str(files / "spec.toml")]) == 0
    )
    config = files / "config"
    config.mkdir()
    (config / "last_workspace").write_text(str(ws))  # what a bare `changeover` opens
    out = subprocess.run(
        [sys.executable, "-m", "changeover.cli", *(a.format(ws=ws) for a in args)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "CHANGEOVER_CONFIG_DIR": str(config)},
    )
    assert out.returncode == 2, out.stderr
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert "needs a terminal" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args",
    [["info", "--format", "json"], ["info"], ["export", "--what", "responses"]],
    ids=["info-json", "info", "export"],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(files, args):
    """`changeover info WS --format json | head -1`: the pipe closes before (or while) the
    command writes; it exits 0 with nothing on stderr, as Unix tools do (a BrokenPipeError
    traceback, in 5 runs of 6)."""
    ws = files / "w.changeover"
    assert (
        main(["import", str(ws), str(files / "data.csv"), "--spec", str(files / "spec.toml")]) == 0
    )
    command, *rest = args
    proc = subprocess.Popen(
        [sys.executable, "-m", "changeover.cli", command, str(ws), *rest],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    proc.stdout.close()  # the reader is gone before the command has written a byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""
