"""The command-line actions on the teaching notebooks: `strip`, `run`, `nbgrader-metadata`, `launch-links`.

    python -m hdetach_np.teaching.notebook_actions ACTION ...    # main() below
    hdetach-np notebooks ACTION ...                       # hdetach_np.cli.notebooks

`add_notebook_actions(parser)` registers the actions on an argparse parser; each action calls the
notebook tools of `hdetach_np.teaching.notebooks` (and `hdetach_np.teaching.course`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .notebooks import (
    BEGIN_SOLUTION,
    CODE_STUB,
    END_SOLUTION,
    FAST_ENV,
    _check_out,
    notebook_paths,
    read_notebook,
    run_notebooks,
    strip_notebooks,
    write_notebook,
)


def add_notebook_actions(parser):
    """Add the actions `strip` and `run` to `parser` (this module's `main`, `hdetach-np notebooks`)."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    s = actions.add_parser(
        "strip", allow_abbrev=False,
        help="write student copies without the solutions",
        description="Copy each notebook, replacing the code of every cell tagged 'solution' by "
        f"`{CODE_STUB}` (only the lines between '{BEGIN_SOLUTION}' and '{END_SOLUTION}' when "
        "present) and clearing outputs.",
    )
    s.add_argument("src", help="a notebook or a folder of notebooks")
    s.add_argument("--out", required=True, help="folder for the student copies (not the source folder); a notebook "
                   "of the same name already there is not replaced without --force")
    s.add_argument("--force", action="store_true", help="replace same-named notebooks in --out")
    s.add_argument("--keep-outputs", action="store_true",
                   help="keep the outputs of cells that are not solutions (they may give answers away)")
    s.set_defaults(func=_run_strip)
    r = actions.add_parser(
        "run", allow_abbrev=False,
        help="execute notebooks and save their outputs (in place unless --out)",
        description="Execute each notebook top to bottom in a fresh kernel of this Python and save "
        "it with its outputs. Without --out this REWRITES each notebook file in place (edits are kept, "
        f"outputs replaced); --out DIR writes the executed copies there instead. --fast sets {FAST_ENV}=1.",
    )
    r.add_argument("src", help="a notebook or a folder of notebooks")
    r.add_argument("--fast", action="store_true", help=f"shrink every run ({FAST_ENV}=1)")
    r.add_argument("--timeout", type=float, default=600, help="seconds allowed per cell")
    r.add_argument("--out", default=None,
                   help="folder for the executed copies (default: rewrite the notebooks in place)")
    r.add_argument("--force", action="store_true", help="replace same-named notebooks in --out")
    r.set_defaults(func=_run_run)
    g = actions.add_parser(
        "nbgrader-metadata",
        help="give the exercises nbgrader metadata (in place)",
        description="Mark each cell tagged 'solution' as an nbgrader solution cell and the 'check' cell "
        "after it as a graded, locked test cell, so that `nbgrader generate_assignment` and "
        "`nbgrader autograde` work on the notebooks. Running it again changes nothing.",
    )
    g.add_argument("notebooks", nargs="+", help="notebooks to update in place")
    g.add_argument("--points", type=int, default=1, help="points of each check cell")
    g.set_defaults(func=_run_nbgrader_metadata)
    la = actions.add_parser(
        "launch-links",
        help="open each notebook with Colab and Binder links and an install cell (in place)",
        description="Make the first cell of each notebook a Markdown cell with links that open it on "
        "Colab and Binder, and start its first code cell with lines that install hdetach_np when "
        "it cannot be imported. Running it again replaces them.",
    )
    la.add_argument("notebooks", nargs="+", help="notebooks to update in place")
    la.add_argument("--url", help="https://github.com/OWNER/NAME (default: url in ./setup.cfg)")
    la.add_argument("--branch", default="main", help="the branch the links open")
    la.set_defaults(func=_run_launch_links)


def _run_strip(args) -> int:
    for path in strip_notebooks(args.src, args.out, keep_outputs=args.keep_outputs, force=args.force):
        print(f"wrote {path}")
    return 0


def _run_run(args) -> int:
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout}")
    try:
        from nbclient.exceptions import CellExecutionError
    except ImportError:
        CellExecutionError = RuntimeError  # reported below by execute_notebook's ImportError
    paths = notebook_paths(args.src)
    if args.out is not None:  # check every name before running anything
        _check_out(paths, Path(args.out), args.force, "sources")
    for path in paths:
        try:
            written = run_notebooks(path, fast=args.fast, timeout=args.timeout, out=args.out, force=args.force)
        except ImportError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except CellExecutionError as err:
            print(f"{path}: a cell failed, the notebook was not saved:\n{err}", file=sys.stderr)
            return 1
        print(f"executed {path}" + (f" into {written[0]}" if args.out is not None else " (saved in place)"))
    return 0


def _run_nbgrader_metadata(args) -> int:
    from .course import add_nbgrader_metadata

    paths = [Path(p) for p in args.notebooks]
    updated = [(p, add_nbgrader_metadata(read_notebook(p), name=p.name, points=args.points)) for p in paths]
    for path, nb in updated:  # every notebook checked before any is written
        write_notebook(nb, path)
        print(f"updated {path}")
    return 0


def _run_launch_links(args) -> int:
    from .course import add_launch_cells, repository_url

    url = args.url or repository_url()
    paths = [Path(p) for p in args.notebooks]
    updated = [(p, add_launch_cells(read_notebook(p), p.name, url, args.branch)) for p in paths]
    for path, nb in updated:
        write_notebook(nb, path)
        print(f"updated {path}")
    return 0


def main(argv=None) -> int:
    """`python -m hdetach_np.teaching.notebook_actions ACTION ...`; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m hdetach_np.teaching.notebook_actions", allow_abbrev=False,
        description="Student copies and execution of the hdetach-np teaching notebooks.",
    )
    add_notebook_actions(parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"{parser.prog} {args.action}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
