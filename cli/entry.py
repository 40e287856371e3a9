"""The `changeover` command's entry point: the first code of ours the console script runs.

It imports nothing of changeover's at module level but the Ctrl-C handler (cli/interrupt.py,
which imports nothing else), so a Ctrl-C from the moment the interpreter hands over — while the
command's modules load, while the arguments are parsed — ends the command with "changeover:
interrupted" and status 130 instead of a traceback. (Before that moment the interpreter itself
is starting up, which no program's code can reach.)
"""

from __future__ import annotations

import signal
import sys

from changeover.cli.interrupt import on_interrupt


def main() -> int:
    try:
        signal.signal(signal.SIGINT, on_interrupt)
        from changeover.cli.main import main as run

        code = run()
    except KeyboardInterrupt:
        code = 130
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt this
        sys.stderr.write("changeover: interrupted\n")
    # the command is over: a Ctrl-C now must not turn the interpreter's exit into a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code
