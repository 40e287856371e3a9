"""`changeover export`: a thin layer over the workspace's export."""

from __future__ import annotations

import argparse
import sys

from changeover.core.workspace import Workspace


def cmd_export(args: argparse.Namespace) -> int:
    """Export ratings, responses, results or draws; 2 on a usage error (Parquet without -o)."""
    if args.what == "draws" or args.format == "netcdf" or args.fit is not None:
        return _export_draws(args)
    args.format = args.format or "csv"
    if args.format == "parquet" and not args.output:
        print(
            "changeover export: --format parquet writes a binary file: give -o FILE",
            file=sys.stderr,
        )
        return 2
    with Workspace.open(args.workspace, read_only=True) as ws:
        es = ws.choose_eval_set(args.eval_set, "changeover export")
        n = ws.export(es, args.what, args.format, args.output or sys.stdout)
    if args.output:
        print(
            f"wrote {n:,} {args.what} rows of eval set {es.name!r} to {args.output}",
            file=sys.stderr,
        )
    return 0


def _export_draws(args: argparse.Namespace) -> int:
    """The kept fit's draws as netCDF (core.render.export_draws); 2 on a usage error."""
    if args.what != "draws" or args.format not in (None, "netcdf") or not args.output:
        print(
            "changeover export: the posterior draws export as netCDF to a file: "
            "--what draws [--fit ID] [--format netcdf] -o FILE",
            file=sys.stderr,
        )
        return 2
    with Workspace.open(args.workspace, read_only=True) as ws:
        es = ws.choose_eval_set(args.eval_set, "changeover export")
        done = ws.export_draws(es, args.output, fit_id=args.fit)
    print(
        f"wrote fit #{done['fit_id']} of eval set {es.name!r} ({done['variables']} variables, "
        f"{done['chains']} chains x {done['draws']:,} draws) to {args.output}",
        file=sys.stderr,
    )
    return 0
