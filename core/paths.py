"""Folders changeover makes (the demo's data folder, the config folder, a workspace's folder)
are the user's alone, like its files (0600), whatever the umask."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def private_folder(folder: Path) -> None:
    """Make `folder` and its missing parents with mode 0700 (an existing folder is left as it
    is). Raises OSError when it cannot."""
    missing = []
    p = Path(folder)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            d.mkdir(mode=0o700)
            os.chmod(d, 0o700)  # mkdir's mode passes through the umask
    if not Path(folder).is_dir():
        raise NotADirectoryError(20, "not a folder", str(folder))


def write_private(path: Path, text: str) -> None:
    """Write a small text file readable by the user alone (0600), replacing its content."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
