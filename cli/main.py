"""The `changeover` command: a thin layer over core, plus the entry to the terminal app.

Exit status: 0 on success, 1 on a data error (bad file, unknown eval set...), 2 on a usage
error. Errors go to stderr as one readable block, never as a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from changeover.cli import interrupt
from changeover.core.text import inert
from changeover.core.types import ChangeoverError, UsageError

if TYPE_CHECKING:
    from changeover.core.workspace import Workspace

FORMATS = ("csv", "jsonl", "parquet")


def demo_path() -> Path:
    """Where `changeover demo` keeps its workspace (the user's data directory)."""
    from platformdirs import user_data_dir

    override = os.environ.get("CHANGEOVER_DATA_DIR")
    base = Path(override) if override else Path(user_data_dir("changeover", appauthor=False))
    return base / "demo.changeover"


def default_rater() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "rater"


def _add_eval_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--eval-set",
        metavar="NAME",
        help="eval set (may be left out when the workspace holds only one)",
    )


def _step_target(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0.5 and 1 (e.g. 0.98)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is below 0 (a number of labels)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="changeover",
        description="Retire a production LLM and pick its successor with statistical confidence.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="build the sample workspace (once) and open the app")
    p.add_argument("--rebuild", action="store_true", help="rebuild the sample workspace")
    p.add_argument("--no-app", action="store_true", help="only build it and print its path")
    _add_app_options(p)

    p = sub.add_parser("open", help="open a workspace in the app")
    p.add_argument("workspace")
    _add_app_options(p)

    p = sub.add_parser("rate", help="go straight to a labelling session")
    p.add_argument("workspace")
    _add_eval_set(p)
    p.add_argument("--rater", help="your name on the labels (default: login name)")
    p.add_argument(
        "--overlap",
        type=float,
        default=0.1,
        metavar="SHARE",
        help="share of responses given a second, blind rater (default 0.1; 0 = none)",
    )
    _add_app_options(p)

    p = sub.add_parser("import", help="import responses, judge verdicts and labels")
    p.add_argument("workspace", help="workspace file (created if missing)")
    p.add_argument(
        "file",
        nargs="+",
        help="CSV, JSONL or Parquet file, one row per response; or Inspect AI logs (one per model)",
    )
    p.add_argument("--spec", required=True, help="eval-set spec (TOML)")
    p.add_argument("--format", choices=FORMATS, help="file format (default: from the extension)")
    p.add_argument("--from", dest="source", choices=("inspect",), help="the files are Inspect logs")
    _add_lake_options(p)

    p = sub.add_parser(
        "import-counts", help="import judge-level counts made elsewhere and a sample of responses"
    )
    p.add_argument("workspace", help="workspace file (created if missing)")
    p.add_argument("file", help="counts: rows of model, region, metric, judge_level, count")
    p.add_argument("--spec", required=True, help="eval-set spec (TOML)")
    p.add_argument(
        "--sample", required=True, metavar="FILE", help="the responses to label (responses format)"
    )
    p.add_argument("--period", help="the period the counts cover (the eval set is NAME@PERIOD)")
    p.add_argument("--format", choices=FORMATS, help="counts file format (default: extension)")

    p = sub.add_parser("import-labels", help="import human labels for responses already imported")
    p.add_argument("workspace")
    p.add_argument(
        "file", help="rows of item_id, model, metric, rater, value [, created_at, selection]"
    )
    _add_eval_set(p)
    p.add_argument("--format", choices=FORMATS, help="file format (default: from the extension)")
    p.add_argument(
        "--open",
        action="store_true",
        help="the responses were chosen by a person (a triage), not drawn at random: store the "
        "labels as open, left out of the fit, like browse's open labels",
    )

    p = sub.add_parser("info", help="eval sets, models, regions and counts of a workspace")
    p.add_argument("workspace")
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = sub.add_parser("fit", help="fit the calibration model and keep the fit")
    p.add_argument("workspace")
    _add_eval_set(p)
    p.add_argument("--quick", action="store_true", help="fewer draws (a first look, not a verdict)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: settings' seed)")
    p.add_argument(
        "--target-accept",
        type=_step_target,
        default=None,
        metavar="P",
        help="NUTS acceptance target (default 0.95); 0.98 takes smaller steps: "
        "slower, fewer divergences",
    )
    p.add_argument(
        "--exclude-rater",
        action="append",
        default=[],
        metavar="NAME",
        help="leave this rater's labels out of the fit (repeatable)",
    )

    p = sub.add_parser("report", help="results as text, Markdown, JSON or CSV")
    p.add_argument("workspace")
    _add_eval_set(p)
    p.add_argument("--metric", help="only this metric")
    p.add_argument("--fit", type=int, metavar="ID", help="a kept fit (default: the latest)")
    p.add_argument("--format", choices=("text", "markdown", "json", "csv"), default="text")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.95,
        metavar="P",
        help="posterior probability a verdict needs (default 0.95)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 when the fit failed its diagnostics or is stale (for CI)",
    )
    p.add_argument(
        "--min-labels",
        type=_count,
        default=None,
        metavar="N",
        help="human labels per metric a candidate needs to be ready (default: the fit's, 30)",
    )

    p = sub.add_parser("export", help="export ratings, responses or results with provenance")
    p.add_argument("workspace")
    _add_eval_set(p)
    p.add_argument("--what", choices=("ratings", "responses", "results", "draws"), required=True)
    p.add_argument(
        "--format",
        choices=(*FORMATS, "netcdf"),
        help="csv (default), jsonl, parquet; the draws: netcdf (an ArviZ DataTree)",
    )
    p.add_argument("--fit", type=int, metavar="ID", help="draws of this kept fit (default: latest)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (default: standard output)")
    return parser


def _add_lake_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sample-per-cell",
        type=int,
        metavar="N",
        help="FILE is a dataset (folder or glob of Parquet/CSV, hive-partitioned or not): keep "
        "its judged counts and a sample of N responses per model and region",
    )
    p.add_argument("--period", help="with --sample-per-cell: the period to import (month=...)")
    p.add_argument("--seed", type=int, help="with --sample-per-cell: the sample's seed (0)")
    p.add_argument(
        "--stratify",
        metavar="METRIC",
        help="with --sample-per-cell: stratify by this metric's "
        "judge level (default: the spec's first metric)",
    )


def _add_app_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mouse", action="store_true", help="enable the mouse even over SSH")
    p.add_argument("--read-only", action="store_true", help="review without writing anything")


def main(argv: list[str] | None = None) -> int:
    args = None
    code = 0
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        code = _dispatch(args, parser)
        sys.stdout.flush()  # a reader gone away shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:  # `changeover info WS | head -1`: the reader has had enough
        _silence_stdout()
        return code  # what the command said (fit: 3 for a failed fit), else 0
    except UsageError as exc:
        say(exc, file=sys.stderr)
        return 2
    except ChangeoverError as exc:
        say(f"changeover: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("changeover: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback: the one block a user can act on
        if interrupt.interrupted:  # the Ctrl-C, turned into another error by the code it stopped
            print("changeover: interrupted", file=sys.stderr)
            return 130
        return _unexpected(exc, getattr(args, "workspace", None))


def _unexpected(exc: Exception, workspace: str | None) -> int:
    """An error nothing above expected: a damaged workspace that was too big to check whole
    when opened, a file the system refused, or else a bug, said in one block (exit 1)."""
    from changeover.core.workspace import user_error

    known = user_error(exc, workspace)
    if known is not None:
        say(f"changeover: {known}", file=sys.stderr)
        return 1
    if os.environ.get("CHANGEOVER_DEBUG"):
        raise exc
    say(
        f"changeover: internal error ({type(exc).__name__}: {str(exc).strip()[:300]}); this is a "
        "bug in changeover: please report it with the command that caused it "
        "(CHANGEOVER_DEBUG=1 shows where it happened)",
        file=sys.stderr,
    )
    return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what is still buffered
    does not fail again (and print a traceback) after the reader has gone."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        pass


def _import_into(path: Path, load) -> int:
    """Run an import (`load(workspace)`) into the workspace at `path`, created if new: a typo in
    its folder makes no tree of folders, and a failed first import leaves no empty workspace."""
    from changeover.core.workspace import Workspace

    if not path.parent.is_dir():
        raise ChangeoverError(f"{path}: no folder {path.parent} (create it first)")
    fresh = not path.exists()
    try:
        with Workspace.open(path, create=True) as ws:
            report = load(ws)
    except BaseException:
        if fresh:
            _remove_workspace(path)
        raise
    say(report.summary())
    return 0


def say(text: object, file=None) -> None:
    """Print a message that may quote a file (a column, a rater, a file name): its control
    characters as escapes (`\\x1b`), so nothing in a file can act on the terminal."""
    print(inert(text, ascii=True), file=file or sys.stdout)


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from changeover.core.workspace import Workspace

    cmd = args.command
    if cmd == "import":
        if args.format and args.source:
            parser.error("--from inspect reads Inspect logs: leave out --format")
        lake = args.sample_per_cell is not None
        if not lake and (args.period or args.seed is not None or args.stratify):
            parser.error("--period, --seed and --stratify go with --sample-per-cell N")
        if lake and (args.format or args.source):
            parser.error(
                "--sample-per-cell reads a dataset of Parquet or CSV files: leave out --format and --from"
            )
        if lake:
            return _import_into(
                Path(args.workspace),
                lambda ws: ws.import_dataset(
                    args.file[0] if len(args.file) == 1 else args.file,
                    args.spec,
                    sample_per_cell=args.sample_per_cell,
                    period=args.period,
                    seed=args.seed,
                    stratify=args.stratify,
                ),
            )
        return _import_into(
            Path(args.workspace),
            lambda ws: ws.import_file(args.file, spec=args.spec, fmt=args.source or args.format),
        )
    if cmd == "import-counts":
        return _import_into(
            Path(args.workspace),
            lambda ws: ws.import_counts(
                args.file, args.spec, sample=args.sample, period=args.period, fmt=args.format
            ),
        )
    if cmd == "import-labels":
        with Workspace.open(args.workspace) as ws:
            es = ws.choose_eval_set(args.eval_set, "changeover import-labels")
            report = ws.import_labels(args.file, es, fmt=args.format, open_labels=args.open)
        say(report.summary())
        return 0
    if cmd == "info":
        with Workspace.open(args.workspace, read_only=True) as ws:
            if args.format == "json":
                from changeover.cli.info import info_json

                print(info_json(ws))
            else:
                print(info_text(ws))
        return 0
    if cmd == "rate" and not 0 <= args.overlap < 1:
        parser.error(f"--overlap must be a share between 0 and 1, not {args.overlap}")
    if cmd == "report" and not 0.5 <= args.threshold < 1:
        parser.error(f"--threshold must be at least 0.5 and below 1, not {args.threshold}")
    if cmd in ("fit", "report"):
        from changeover.cli import fit as cmd_fit

        return cmd_fit.cmd_fit(args) if cmd == "fit" else cmd_fit.cmd_report(args)
    if cmd == "export":
        from changeover.cli.export import cmd_export

        return cmd_export(args)
    if cmd == "demo":
        from changeover.core.demo import build_demo

        path = demo_path()
        if args.rebuild or not path.exists():
            build_demo(path, rebuild=args.rebuild)
        if args.no_app:
            print(path)
            return 0
        return _run_app(path, args)
    if cmd in ("open", "rate"):
        return _run_app(Path(args.workspace), args)
    if cmd is None:
        from changeover.tui.app import last_workspace

        last = last_workspace()
        # the remembered file may be gone, emptied or replaced: then the demo, never a write to it
        if last is None or not Workspace.is_workspace(last):
            from changeover.core.demo import build_demo

            last = demo_path()
            if not last.exists():
                build_demo(last)
        return _run_app(last, argparse.Namespace(mouse=False, read_only=False, command=None))
    parser.error(f"unknown command {cmd!r}")
    return 2


def _remove_workspace(path: Path) -> None:
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


def _run_app(path: Path, args: argparse.Namespace) -> int:
    from changeover.tui.app import run_app

    return run_app(
        path,
        read_only=getattr(args, "read_only", False),
        mouse=getattr(args, "mouse", False),
        rate=args.command == "rate",
        eval_set=getattr(args, "eval_set", None),
        rater=getattr(args, "rater", None) or default_rater(),
        overlap=getattr(args, "overlap", 0.1),
    )


def info_text(ws: Workspace) -> str:
    """What `changeover info` prints."""
    from changeover.cli.info import source_text

    lines = [f"workspace {ws.path} (schema {ws.schema_version()})"]
    sets = ws.eval_sets()
    if not sets:
        lines.append("  no eval sets yet: changeover import WORKSPACE FILE --spec SPEC")
    for es in sets:
        summary = ws.summary(es, with_results=False)
        s = summary.stats
        lines.append(f"eval set {es.name!r}: incumbent {es.incumbent}, judge {es.judge}")
        if es.description:
            lines.append(f"  {es.description}")
        lines.append("  models:  " + ", ".join(summary.models))
        total = sum(r.traffic for r in es.regions)
        lines.append(
            "  regions: " + ", ".join(f"{r.name} ({r.traffic / total:.0%})" for r in es.regions)
        )
        lines.append(
            "  metrics: "
            + ", ".join(f"{m.name} [{'/'.join(m.levels)}, {m.direction}]" for m in es.metrics)
        )
        if summary.source is not None:
            lines.append("  " + source_text(summary.source))
        chosen = (
            f" ({s.open_ratings:,} of them open: chosen by a person, left out of the fit)"
            if s.open_ratings
            else ""
        )
        lines.append(
            f"  {s.items:,} items, {s.responses:,} responses, {s.judgments:,} judgments "
            f"({s.judgments_missing:,} unmappable), {s.ratings:,} ratings on "
            f"{s.labelled_responses:,} responses{chosen}"
        )
        if summary.latest_fit is not None:
            fit = summary.latest_fit
            lines.append(f"  {summary.fits} fit(s), latest #{fit.id} at {fit.created_at}")
    return inert("\n".join(lines), ascii=True)
