"""The arrow points one way: core never imports textual or tui."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_does_not_import_the_ui():
    code = (
        "import importlib, pkgutil, sys, changeover.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('changeover.core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules\n"
        "             if n.split('.')[0] == 'textual' or n.startswith('changeover.tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_only_the_store_knows_sql():
    """Table names appear in SQL only inside core/store.py."""
    offenders = []
    for path in list((ROOT / "core").glob("*.py")) + list((ROOT / "tui").rglob("*.py")):
        if path.name == "store.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value.upper()
                if ("SELECT " in text and " FROM " in text) or "INSERT INTO" in text:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_nothing_installs_as_core_or_tui(tmp_path):
    """Installed, the project is `changeover.*`: a bare `core`, `tui` or `sample_data` would
    collide with any other project that ships one."""
    code = (
        "import importlib.util as u, changeover.core, changeover.tui.cli\n"
        "print([n for n in ('core', 'tui', 'sample_data') if u.find_spec(n)])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_project_imports_itself_as_changeover():
    """No module of the project imports a bare `core`, `tui` or `sample_data`."""
    offenders = []
    for path in [
        *(ROOT / "core").rglob("*.py"),
        *(ROOT / "tui").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
        *(ROOT / "sample_data").rglob("*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(n.split(".")[0] in ("core", "tui", "sample_data") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
