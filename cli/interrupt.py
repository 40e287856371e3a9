"""The Ctrl-C handler of the `changeover` command, installed first thing by cli/entry.py;
`cli.main` reads `interrupted`. It imports nothing of changeover's."""

from __future__ import annotations

import os
import signal
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
