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
    """Table names appear in SQL only inside core/store/."""
    offenders = []
    for path in list((ROOT / "core").rglob("*.py")) + list((ROOT / "tui").rglob("*.py")):
        if path.parent.name == "store":
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


def _imports(path: Path) -> set[str]:
    """Modules a file imports (absolute names; relative imports resolved in its package)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


# What the faces may use of core: the workspace layer, the values it hands out and the
# renderers of those values. The store, the model, the counts and the fitting glue are
# reached through the workspace only.
FACE_MAY_IMPORT = {
    "changeover.core.workspace",
    "changeover.core.results",
    "changeover.core.summary",
    "changeover.core.report",
    "changeover.core.calibration",
    "changeover.core.posterior",
    "changeover.core.settings",
    "changeover.core.types",
    "changeover.core.text",
    "changeover.core.demo",
    "changeover.core.paths",  # private folders and files (the remembered workspace)
}


def test_the_faces_reach_the_store_and_the_model_only_through_the_workspace():
    offenders = []
    for path in (ROOT / "tui").rglob("*.py"):
        for name in _imports(path):
            if not name.startswith("changeover.core."):
                continue
            module = ".".join(name.split(".")[:3])
            if module not in FACE_MAY_IMPORT:
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = ["changeover", *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles():
    """core and tui import each other's modules without a cycle (lazy imports included)."""
    files = [*(ROOT / "core").rglob("*.py"), *(ROOT / "tui").rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for imported in _imports(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                deps.add(imported)
        graph[name] = deps
    # a package's __init__ importing its own parts is not a cycle through them
    for name in graph:
        graph[name] = {d for d in graph[name] if not d.startswith(name + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*trail[trail.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_module_over_500_lines():
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in [*(ROOT / "core").rglob("*.py"), *(ROOT / "tui").rglob("*.py")]
        if (n := len(p.read_text().splitlines())) > 500
    ]
    assert long == []
