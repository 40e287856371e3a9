"""The arrow points one way: core never imports textual or tui."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_does_not_import_the_ui():
    code = (
        "import importlib, pkgutil, sys, core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
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
