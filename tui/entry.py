"""The `changeover` command's entry point: the first code of ours the console script runs.

It imports nothing of changeover's at module level, so a Ctrl-C from the moment the
interpreter hands over — while the command's modules load, while the arguments are parsed —
ends the command with "changeover: interrupted" and status 130 instead of a traceback. (Before that moment the
interpreter itself is starting up, which no program's code can reach.)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

interrupted = False  # a Ctrl-C came: `cli.main` ends as interrupted whatever error it caused


def on_interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C: raise KeyboardInterrupt, and remember it was pressed. Not in the middle of an
    import: Python ignores an exception raised in importlib's weakref callbacks (it prints
    "Exception ignored ... Traceback" and carries on), and a C extension that is loading
    (numpy's, while a command imports the workspace) turns it into an ImportError. So the key
    is sent again 10 ms later, until the import is over."""
    global interrupted
    interrupted = True
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            again = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT))
            again.daemon = True
            again.start()
            return
        frame = frame.f_back
    raise KeyboardInterrupt


def main() -> int:
    try:
        signal.signal(signal.SIGINT, on_interrupt)
        from changeover.tui.cli import main as run

        code = run()
    except KeyboardInterrupt:
        code = 130
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt this
        sys.stderr.write("changeover: interrupted\n")
    # the command is over: a Ctrl-C now must not turn the interpreter's exit into a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code
