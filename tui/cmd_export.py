"""`changeover export`: a thin layer over the workspace's export."""

from __future__ import annotations

import argparse
import os
import sys

from changeover.core.workspace import Workspace


def cmd_export(args: argparse.Namespace) -> int:
    """Export ratings, responses or results; 2 on a usage error (Parquet without -o)."""
    if args.format == "parquet" and not args.output:
        print(
            "changeover export: --format parquet writes a binary file: give -o FILE",
            file=sys.stderr,
        )
        return 2
    with Workspace.open(args.workspace, read_only=True) as ws:
        es = ws.choose_eval_set(args.eval_set, "changeover export")
        try:
            n = ws.export(es, args.what, args.format, args.output or sys.stdout)
        except BrokenPipeError:  # `changeover export ... | head`: the reader has had enough
            _silence_stdout()
            return 0
    if args.output:
        print(
            f"wrote {n:,} {args.what} rows of eval set {es.name!r} to {args.output}",
            file=sys.stderr,
        )
    return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        pass
