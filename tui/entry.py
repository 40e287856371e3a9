"""The `changeover` command's entry point: the first code of ours the console script runs.

It imports nothing else at module level, so a Ctrl-C from the moment the interpreter hands
over — while the command's modules load, while the arguments are parsed — ends the command
with "changeover: interrupted" and status 130 instead of a traceback. (Before that moment the
interpreter itself is starting up, which no program's code can reach.)
"""

from __future__ import annotations

import os
import signal
import sys


def _leave(signum: int, frame: object) -> None:
    """Ctrl-C while the command's modules load: nothing is open or written yet, so leave at
    once. (A KeyboardInterrupt raised here could land in one of importlib's weakref callbacks,
    where Python prints "Exception ignored ... Traceback" and carries on: 1 of 25 moments.)"""
    os.write(2, b"changeover: interrupted\n")
    os._exit(130)


def main() -> int:
    try:
        signal.signal(signal.SIGINT, _leave)
        from changeover.tui.cli import main as run
        from changeover.tui.cli import on_interrupt

        signal.signal(signal.SIGINT, on_interrupt)
        code = run()
    except KeyboardInterrupt:
        code = 130
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt this
        sys.stderr.write("changeover: interrupted\n")
    # the command is over: a Ctrl-C now must not turn the interpreter's exit into a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code
