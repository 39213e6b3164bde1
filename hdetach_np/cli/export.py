"""Subcommand `export` of the `hdetach-np` command line: a run's history as CSV or TensorBoard.

`register(subparsers)` adds the subcommand."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    """Add `export` to the subcommands `sub`."""
    from ..training.export import FORMATS

    p = sub.add_parser(
        "export",
        help="write a run's history as a CSV file or a TensorBoard event file",
        description="Write the history of a run (its folder, or a history.jsonl file) as a CSV table "
        "(RUN/history.csv) or as a TensorBoard event file in a folder (RUN/tensorboard/; needs "
        "tensorboardX). Existing output is kept unless --force.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", help="a run folder or a history.jsonl file")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("--out", help="the CSV file, or the TensorBoard folder (default: in the run folder)")
    p.add_argument("--force", action="store_true", help="replace an existing CSV file or event files")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from ..training.export import export_history

    try:
        path = export_history(args.run, args.format, out=args.out, force=args.force)
    except (FileExistsError, ImportError) as err:
        print(f"hdetach-np export: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
