"""The arrows point one way: core never imports a face (tui/, cli/), the app never imports the
command line, and inside core each package imports only those before it on the data path."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


FACES = ("tui", "cli")


def _sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")]


def test_core_does_not_import_the_ui():
    code = (
        "import importlib, pkgutil, sys, changeover.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'changeover.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] == 'textual'\n"
        "             or n.startswith(('changeover.tui', 'changeover.cli')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_only_the_store_knows_sql():
    """Table names appear in SQL only inside core/store/."""
    offenders = []
    for path in _sources("core", *FACES):
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
        "import importlib.util as u, changeover.core, changeover.cli.main\n"
        "print([n for n in ('core', 'tui', 'sample_data') if u.find_spec(n)])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_project_imports_itself_as_changeover():
    """No module of the project imports a bare `core`, `cli`, `tui` or `sample_data`."""
    offenders = []
    for path in _sources("core", *FACES, "tests", "bench", "sample_data"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(n.split(".")[0] in ("core", "cli", "tui", "sample_data") for n in names):
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


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = ["changeover", *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in _sources("core", *FACES)}


def _resolved(imported: str) -> str | None:
    """The project module an imported name lives in (`a.b.c.name` -> `a.b.c`), if any."""
    while imported and imported not in MODULES:
        imported = imported.rpartition(".")[0]
    return imported or None


def _project_imports(path: Path) -> set[str]:
    return {m for name in _imports(path) if (m := _resolved(name)) and m != _module_name(path)}


# What the faces may use of core: the workspace layer, the values it hands out and the
# renderers of those values. The store, the model, the counts and the fitting glue are
# reached through the workspace only.
FACE_MAY_IMPORT = {
    "changeover.core.workspace",
    "changeover.core.results",
    "changeover.core.summary",
    "changeover.core.render.report",
    "changeover.core.judge.calibration",
    "changeover.core.model.posterior",
    "changeover.core.settings",
    "changeover.core.types",
    "changeover.core.text",
    "changeover.core.demo",
    "changeover.core.paths",  # private folders and files (the remembered workspace)
}


def test_the_faces_reach_the_store_and_the_model_only_through_the_workspace():
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in _sources(*FACES)
        for module in _project_imports(path)
        if module.startswith("changeover.core") and module not in FACE_MAY_IMPORT
    ]
    assert offenders == []


def test_the_app_does_not_import_the_command_line():
    """cli/ starts the app (tui/app.py); the app knows nothing of the command line."""
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in _sources("tui")
        for module in _project_imports(path)
        if module.startswith("changeover.cli")
    ]
    assert offenders == []


# core's parts along the data path, and what each may import (besides itself). The values are
# the modules every part may use; `workspace` is the one path to the faces and uses any part.
VALUES = ("types", "settings", "shown", "text", "paths")
CORE_MAY_IMPORT = {
    "values": set(),
    "store": {"values"},
    "importing": {"values", "store"},
    "model": {"values", "store"},
    "decide": {"values", "model"},
    "judge": {"values", "model", "decide"},
    "labelling": {"values", "store", "model", "decide"},
    "results": {"values", "model", "decide", "judge"},
    "render": {"values", "store", "model", "decide", "judge", "results"},
    "summary": {"values", "store", "results"},
    "demo": {"values", "store", "importing"},
}


def _part(module: str) -> str:
    """`changeover.core.model.fit` -> `model`; a values module -> `values`."""
    name = module.split(".")[2]
    return "values" if name in VALUES else name


def test_every_core_module_belongs_to_a_part():
    parts = {_part(m) for m in MODULES if m.startswith("changeover.core.")}
    assert parts <= {*CORE_MAY_IMPORT, "workspace"}


def test_each_part_of_core_imports_only_the_parts_before_it():
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith("changeover.core.") or _part(module) == "workspace":
            continue
        part = _part(module)
        for imported in _project_imports(path):
            other = _part(imported) if imported.startswith("changeover.core.") else imported
            if other != part and other not in CORE_MAY_IMPORT[part]:
                offenders.append(f"{path.relative_to(ROOT)} ({part}) imports {imported}")
    assert offenders == []


def test_no_import_cycles():
    """core and the faces import each other's modules without a cycle (lazy imports included)."""
    graph = {name: _project_imports(path) for name, path in MODULES.items()}
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
        for p in _sources("core", *FACES)
        if (n := len(p.read_text().splitlines())) > 500
    ]
    assert long == []
