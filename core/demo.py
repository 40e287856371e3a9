"""The demo workspace: the committed sample data (sample_data/) imported into a workspace file.

The workspace is built beside its final path and renamed into place, so a crash or an
interrupt never leaves a half-built demo where `changeover demo` would open it.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

from changeover.core.paths import private_folder
from changeover.core.text import inert
from changeover.core.types import ChangeoverError


def sample_paths() -> tuple[Path, Path]:
    """(support.csv, support.toml) of the sample workspace, wherever the package is installed."""
    base = Path(str(resources.files("changeover.sample_data")))
    csv, spec = base / "support.csv", base / "support.toml"
    for p in (csv, spec):
        if not p.is_file():
            raise ChangeoverError(f"{p}: sample data missing from this installation")
    return csv, spec


def build_demo(path: Path, rebuild: bool = False) -> Path:
    """Create the demo workspace at `path` (kept as is unless `rebuild`); return the path."""
    from changeover.core.importing.responses import import_file
    from changeover.core.store import Store

    path = Path(path)
    if path.exists() and not rebuild:
        return path
    csv, spec = sample_paths()
    try:
        private_folder(path.parent)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".building", dir=path.parent)
    except OSError as exc:
        raise ChangeoverError(
            f"cannot make the demo workspace in {inert(path.parent, ascii=True)}: "
            f"{exc.strerror or exc}; set CHANGEOVER_DATA_DIR to a folder you can write"
        ) from None
    os.close(fd)
    tmp = Path(name)
    try:
        tmp.unlink()  # Store.open(create=True) makes the file itself
        with Store.open(tmp, create=True) as store:
            import_file(store, csv, spec=spec)
        # a journal left beside the old demo (e.g. by a read-only reader) must not meet the new one
        for stale in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
    return path
