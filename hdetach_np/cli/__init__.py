"""The `hdetach-np` command line. Run `hdetach-np --help`.

Each module of this folder exposes `register(subparsers)`, which adds its subcommands and sets
`func` on each; `main` dispatches. Flags are never abbreviated (`--epoch` is not `--epochs`): an
unknown flag is an error that names the closest known one. Errors print one line and exit with
status 2 (bad usage) or 1 (the command could not finish: out of memory, a file that cannot be
written...); `main` maps the known exception types to that line, so no command ends with a
traceback for them.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import sys


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that takes no abbreviations (subcommand parsers inherit the class)."""

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)


def closest_flag(parser: argparse.ArgumentParser, word: str) -> str | None:
    """The option of `parser` that `word` most likely meant, or None (prefixes first, then difflib)."""
    name = word.split("=", 1)[0]
    options = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    starts = [o for o in options if o.startswith(name)]
    if starts:
        return min(starts, key=len)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return close[0] if close else None


def _subcommands(parser: argparse.ArgumentParser) -> dict:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subs[0].choices if subs else {}


def unknown_flag(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.ArgumentParser, str] | None:
    """The first `--flag` in argv that the (sub)command it follows does not know, with that
    (sub)command's parser; None if every flag is known. Run before parsing, so that a value after
    the unknown flag is not mistaken for a positional argument."""
    current, known = parser, set()
    for word in argv:
        if word == "--":
            break
        if word in _subcommands(current):
            known |= {s for a in current._actions for s in a.option_strings}
            current = _subcommands(current)[word]
        elif word.startswith("--") and word.split("=", 1)[0] not in known | {
                s for a in current._actions for s in a.option_strings}:
            return current, word
    return None


def register_check(sub):
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
    from .._validate import check_int
    from ..teaching.check import format_rows, run_check

    for name in ("T", "N", "D", "H"):
        check_int(f"--{name}", getattr(args, name), 1)
    try:
        rows = run_check(seed=args.seed, T=args.T, N=args.N, D=args.D, H=args.H, p=args.p)
    except MemoryError as err:
        raise MemoryError(f"not enough memory for --T {args.T} --N {args.N} --D {args.D} --H {args.H} ({err}); "
                          "choose smaller sizes") from err
    print(format_rows(rows))
    return 0 if all(r.passed for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from . import data, demo, export, notebooks, plot, sweep, train

    parser = Parser(
        prog="hdetach-np",
        description="NumPy LSTM with hand-derived BPTT, the exact cell/h-path gradient split and h-detach.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    register_check(sub)
    notebooks.register(sub)
    train.register(sub)
    plot.register(sub)
    data.register(sub)
    demo.register(sub)
    export.register(sub)
    sweep.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    unknown = unknown_flag(parser, argv)
    if unknown:
        where, word = unknown
        hint = closest_flag(where, word)
        where.error(f"unknown flag {word}" + (f"; did you mean {hint}?" if hint else f"; see {where.prog} --help"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"hdetach-np {args.command}: error: {err}", file=sys.stderr)
        return 2
    except MemoryError as err:
        print(f"hdetach-np {args.command}: error: out of memory: {err or 'an allocation failed'}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"hdetach-np {args.command}: error: {err}{os_error_hint(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def os_error_hint(err: OSError) -> str:
    """What to do about a failed read or write, from its error number ("" when there is no advice)."""
    if err.errno == errno.ENOSPC:
        return "; free disk space and run the command again"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "; make the folder writable or choose another one"
    if err.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
        return "; choose another name"
    return ""
