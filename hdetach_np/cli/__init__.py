"""The `hdetach-np` command line. Run `hdetach-np --help`.

Each subcommand lives in its own function `_add_<name>(subparsers)` that registers its parser and
sets `func`; `main` dispatches. Errors print one line and exit with status 2 (bad usage) or 1.
"""

from __future__ import annotations

import argparse
import sys

from ..teaching.notebooks import _add_notebooks  # `hdetach-np notebooks strip|run`


def _add_check(sub):
    p = sub.add_parser(
        "check",
        help="check the hand-derived BPTT against finite differences",
        description="Check every gradient of a small random LSTM (float64) against centred finite "
        "differences: no detach, an h-detach mask, a c-detach mask and fractional per-unit edge "
        "scales. Prints a table; exit status 1 if any relative error reaches 1e-6.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--T", type=int, default=6, help="sequence length")
    p.add_argument("--N", type=int, default=3, help="batch size")
    p.add_argument("--D", type=int, default=4, help="input size")
    p.add_argument("--H", type=int, default=5, help="hidden size")
    p.add_argument("--p", type=float, default=0.5, help="h-detach probability for the masked case")
    p.set_defaults(func=_run_check)


def _run_check(args) -> int:
    from ..teaching.check import format_rows, run_check

    for name in ("T", "N", "D", "H"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    rows = run_check(seed=args.seed, T=args.T, N=args.N, D=args.D, H=args.H, p=args.p)
    print(format_rows(rows))
    return 0 if all(r.passed for r in rows) else 1


COMMANDS = [_add_check, _add_notebooks]

from .train import _add_data, _add_eval, _add_plot, _add_train, _add_transfer  # noqa: E402

COMMANDS += [_add_train, _add_eval, _add_transfer, _add_plot, _add_data]

from .demo import _add_demo  # noqa: E402  `hdetach-np demo`

COMMANDS += [_add_demo]

from .sweep import _add_report, _add_sweep  # noqa: E402  `hdetach-np sweep`, `hdetach-np report`

COMMANDS += [_add_sweep, _add_report]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="hdetach-np",
        description="NumPy LSTM with hand-derived BPTT, the exact cell/h-path gradient split and h-detach.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"hdetach-np {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
