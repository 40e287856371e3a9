"""Ctrl-C in the first moments of a command (`timeout -s INT 0.15 changeover info WS`): the
command ends with "changeover: interrupted" and status 130, or finishes, never with a Python
traceback, wherever the signal lands while its modules load and its arguments are parsed.

The signal is sent from inside the process, a given time after the console script's entry
function is called (what runs before it — the interpreter's own start-up and the import of the
entry module, which imports nothing — is out of reach of any program's code)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from changeover.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = """name = "mini"
incumbent = "old"
[regions]
"EU" = 2
[[metrics]]
name = "correct"
levels = ["no", "yes"]
"""
DATA = "item_id,region,question,model,response,judge_correct\nq1,EU,Q?,old,A.,yes\nq1,EU,Q?,new,B.,no\n"


def entry_point() -> tuple[str, str]:
    """The module and function the `changeover` console script calls (pyproject.toml)."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["changeover"].split(":")
    return module, function


def interrupted_after(seconds: float, args: list[str], env: dict | None = None):
    """Run the console script with SIGINT delivered `seconds` after the interpreter is up."""
    module, function = entry_point()
    script = (
        "import os, signal, sys\n"
        f"sys.argv = ['changeover', *{args!r}]\n"
        f"from {module} import {function} as main\n"
        "signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))\n"
        f"signal.setitimer(signal.ITIMER_REAL, {seconds!r}); code = main()\n"
        "signal.setitimer(signal.ITIMER_REAL, 0); sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("startup")
    (d / "spec.toml").write_text(SPEC)
    (d / "data.csv").write_text(DATA)
    assert (
        main(
            ["import", str(d / "w.changeover"), str(d / "data.csv"), "--spec", str(d / "spec.toml")]
        )
        == 0
    )
    return d / "w.changeover"


def check(out: subprocess.CompletedProcess, label: str) -> str:
    shown = f"{label}: exit {out.returncode}, stderr {out.stderr[-600:]!r}"
    assert "Traceback" not in out.stderr and "Error" not in out.stderr, shown
    assert out.returncode in (0, 1, 130), shown
    if out.returncode == 1:  # the command's own answer (a report without a fit): one line
        assert out.stderr.count("\n") == 1 and "internal error" not in out.stderr, shown
        return "finished"
    if out.returncode == 130:
        assert out.stderr.strip().endswith("changeover: interrupted"), shown
        return "interrupted"
    return "finished"


# Every 2 ms through the time it takes to load the command's modules and parse its arguments
# (about 40 ms here), then sparser up to 0.2 s.
DELAYS = [k / 500 for k in range(40)] + [0.1, 0.15, 0.2]


def test_ctrl_c_at_any_moment_of_info(workspace):
    outcomes = [check(interrupted_after(d, ["info", str(workspace)]), f"{d:.3f}s") for d in DELAYS]
    print(
        f"\ninfo: {outcomes.count('interrupted')} interrupted, {outcomes.count('finished')} finished"
    )
    assert "interrupted" in outcomes


@pytest.mark.parametrize("command", ["import", "report", "export", "demo"])
def test_ctrl_c_early_in_other_commands(workspace, tmp_path, command):
    import os

    d = workspace.parent
    args = {
        "import": [
            "import",
            str(tmp_path / "new.changeover"),
            str(d / "data.csv"),
            "--spec",
            str(d / "spec.toml"),
        ],
        "report": ["report", str(workspace)],
        "export": ["export", str(workspace), "--what", "ratings"],
        "demo": ["demo", "--no-app"],
    }[command]
    env = {**os.environ, "CHANGEOVER_DATA_DIR": str(tmp_path / "data")}
    for delay in (0.0, 0.01, 0.03, 0.06, 0.12):
        check(interrupted_after(delay, args, env), f"{command} at {delay}s")


def test_ctrl_c_inside_a_c_extension_import_is_still_an_interrupt(workspace, monkeypatch, capsys):
    """What CI once caught in 1 of 5 tries (export at 0.06 s): the Ctrl-C landed while numpy's
    C extension imported `datetime`, which turned it into "ImportError: PyCapsule_Import could
    not import module", and the error report then imported numpy again and printed a traceback.
    Replayed here on purpose: the signal handler runs, and the code it stops raises another
    error in its place, as numpy does."""
    from changeover.cli import interrupt
    from changeover.cli import main as cli

    def dispatch(args, parser):
        try:
            interrupt.on_interrupt(2, None)
        except KeyboardInterrupt as exc:
            raise ImportError('PyCapsule_Import could not import module "datetime"') from exc
        raise AssertionError("on_interrupt must raise")

    monkeypatch.setattr(cli, "_dispatch", dispatch)
    monkeypatch.setattr(interrupt, "interrupted", False)
    assert cli.main(["info", str(workspace)]) == 130
    assert capsys.readouterr().err == "changeover: interrupted\n"
    # without a Ctrl-C the same error is what it is: a bug, said in one block
    monkeypatch.setattr(interrupt, "interrupted", False)
    monkeypatch.setattr(
        cli, "_dispatch", lambda args, parser: (_ for _ in ()).throw(ImportError("x"))
    )
    assert cli.main(["info", str(workspace)]) == 1
    assert "internal error (ImportError: x)" in capsys.readouterr().err
