"""Subcommands `sweep` and `report` of the `hdetach-np` command line.

    hdetach-np sweep copying --delay 10 --hidden 32 --epochs 20 --grid p=0,0.25,0.5 --seeds 0-4 --out runs/sw
    hdetach-np sweep --grid-file grid.toml --out runs/sw --scheduler tcp://10.0.0.5:8786
    hdetach-np report runs/sw              # report.md, report.json, report.png in runs/sw

Rerunning a sweep command skips the finished runs and resumes interrupted ones (see
hdetach_np.training.sweep). Exit status 0 when every run finished, 1 when some diverged, failed,
were interrupted, were kept with another config or were busy, 2 on bad usage. Ctrl-C (SIGINT) or
SIGTERM: no new run starts, the runs under way write a checkpoint at their current iteration, one
line says how many and how to resume (the same command), and the exit status is 130 or 143.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from ..training.config import TASKS, TrainConfig, field_help
from .train import _add_config_flags


def read_table(path) -> dict:
    """A JSON or TOML file (by its suffix; TOML needs Python 3.11+) holding one object."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file {path} does not exist")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:
            raise ValueError(f"{path}: reading TOML needs Python 3.11 or newer (tomllib); "
                             "give the same content as a .json file") from None
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path} is not valid TOML: {err}") from None
    else:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold an object (a table), got {type(data).__name__}")
    return data


def parse_value(key: str, text: str):
    """A config value from text, of the type of the field `key`."""
    helps = field_help()
    if key not in helps:
        raise ValueError(f"grid key {key!r} is not a config key; expected keys among: {', '.join(helps)}")
    default = helps[key][0]
    t = text.strip()
    try:
        if isinstance(default, bool):
            if t.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return t.lower() in ("true", "1")
        if key == "perm_seed":
            return None if t.lower() in ("none", "null") else int(t)
        if isinstance(default, int):
            return int(t)
        if isinstance(default, float):
            return float(t)
    except ValueError:
        raise ValueError(f"grid value {t!r} of {key} is not a {type(default).__name__}") from None
    return t


def parse_against(text: str | None) -> tuple | None:
    """'p=0' -> ("p", 0.0), typed as the config field; None stays None."""
    if text is None:
        return None
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not value.strip() or "," in value:
        raise ValueError(f"--against {text!r}: expected one KEY=VALUE such as p=0 or one_hot=true")
    return key, parse_value(key, value)


def parse_seeds(text: str) -> list[int]:
    """'0-9' -> 0..9; '0,3,5' and '0-2,10' also work."""
    out = []
    for part in str(text).split(","):
        a, sep, b = part.strip().partition("-")
        try:
            lo, hi = int(a), int(b) if sep else int(a)
        except ValueError:
            raise ValueError(f"--seeds {text!r}: expected seeds like 0-9 or 0,3,5") from None
        if lo < 0 or hi < lo:
            raise ValueError(f"--seeds {text!r}: a range must go from a seed >= 0 up to a larger one")
        out += range(lo, hi + 1)
    if len(set(out)) != len(out):
        raise ValueError(f"--seeds {text!r} names a seed twice")
    return out


def parse_grid(items) -> dict:
    """{key: [values]} from ['p=0,0.25,0.5', 'lr=1e-3,3e-3']."""
    grid = {}
    for item in items or []:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,... such as p=0,0.25,0.5")
        if key in grid:
            raise ValueError(f"--grid names {key} twice")
        grid[key] = [parse_value(key, v) for v in values.split(",")]
    return grid


# ---------------------------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------------------------


def _add_sweep(sub):
    p = sub.add_parser(
        "sweep", help="train runs over a grid of config values (resumable; local processes or a Dask cluster)",
        description="Train one run per point of a grid of config values into SWEEP/<point> (e.g. SWEEP/p=0.25,seed=3), "
        "with a manifest SWEEP/sweep.json. Rerunning the same command skips finished runs and resumes interrupted "
        "ones from their checkpoints; a larger grid adds runs; nothing is ever deleted. The base config comes from "
        "the task defaults, then --config FILE, then --grid-file's [base] table, then the flags. Example: "
        "hdetach-np sweep copying --delay 10 --epochs 20 --grid p=0,0.25,0.5 --seeds 0-4 --out runs/sw")
    p.add_argument("task", nargs="?", choices=TASKS, help="the task (or give it in --config / --grid-file)")
    run = p.add_argument_group("sweep control")
    run.add_argument("--out", metavar="SWEEP", required=True, help="the sweep folder (created, or continued)")
    run.add_argument("--grid", metavar="KEY=V1,V2", action="append", default=None,
                     help="values of one config key, e.g. --grid p=0,0.25,0.5 --grid lr=1e-3,3e-3 (repeatable)")
    run.add_argument("--seeds", metavar="SEEDS", default=None,
                     help="seeds, e.g. 0-9 or 0,3,5 (default: the config's seed)")
    run.add_argument("--grid-file", metavar="FILE", default=None,
                     help="JSON or TOML file with a 'grid' table {key: [values]}, optional 'seeds' and 'base' table")
    run.add_argument("--config", metavar="FILE", default=None, help="JSON or TOML file of base config values")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="trainings at once in local processes (default: the number of usable cores)")
    run.add_argument("--scheduler", metavar="ADDR", default=None,
                     help="run on the Dask cluster at ADDR, e.g. tcp://10.0.0.5:8786 "
                     "(default: $DASK_SCHEDULER_ADDRESS, else local processes); needs pip install 'hdetach-np[dask]'")
    run.add_argument("--replace", action="store_true",
                     help="a run folder holding another config is moved aside (NAME.replaced-K) and trained again "
                     "(default: kept and reported)")
    run.add_argument("--data-dir", metavar="DIR", default=None, help="MNIST cache folder (default: as for train)")
    _add_config_flags(p.add_argument_group("base config (defaults: the task's values in the laptop preset)"))
    p.set_defaults(func=_run_sweep)


def sweep_spec(args) -> tuple[dict, dict]:
    """(base, grid) from the parsed arguments."""
    if getattr(args, "old_T", None) is not None:
        raise ValueError("--T is the old name of --delay (copying) and --length (adding); give those instead")
    base = read_table(args.config) if args.config else {}
    spec = read_table(args.grid_file) if args.grid_file else {}
    unknown = set(spec) - {"grid", "seeds", "base"}
    if unknown:
        raise ValueError(f"{args.grid_file}: unknown table(s) {', '.join(sorted(unknown))}; expected grid, seeds, base")
    base.update(spec.get("base", {}))
    base.update({k: getattr(args, k) for k in TrainConfig.keys() if k != "task" and getattr(args, k, None) is not None})
    if args.task:
        if base.get("task") not in (None, args.task):
            raise ValueError(f"the task {args.task!r} differs from the task {base['task']!r} of the config file")
        base["task"] = args.task
    if "task" not in base:
        raise ValueError("give a task (copying, adding, pixel-mnist, permuted-mnist) or a 'task' in --config")
    grid = dict(spec.get("grid", {}))
    for k, v in grid.items():
        if not isinstance(v, list):
            raise ValueError(f"{args.grid_file}: grid.{k} must be a list of values, got {v!r}")
    for k, v in parse_grid(args.grid).items():
        if k in grid:
            raise ValueError(f"--grid {k} is also in {args.grid_file}; give it once")
        grid[k] = v
    seeds = args.seeds if args.seeds is not None else spec.get("seeds")
    if seeds is not None:
        if "seed" in grid:
            raise ValueError("give the seeds once: --seeds or a 'seed' grid key")
        grid["seed"] = parse_seeds(seeds) if isinstance(seeds, str) else list(seeds)
    return base, grid


def _run_sweep(args) -> int:
    from ..training.sweep import SweepInterrupted, run_sweep

    base, grid = sweep_spec(args)
    workers = args.workers if args.workers is not None else len(os.sched_getaffinity(0)) \
        if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    command = "hdetach-np " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    try:
        results = run_sweep(args.out, base, grid, command=command, workers=workers, scheduler=args.scheduler,
                            replace=args.replace, data_dir=args.data_dir)
    except SweepInterrupted as err:  # SIGINT/SIGTERM: the runs under way wrote their checkpoints
        print(f"hdetach-np sweep: {err}", file=sys.stderr)
        return err.exit_status
    counts = {}
    for r in results.values():
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"sweep {args.out}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f"; summarise with: hdetach-np report {shlex.quote(str(args.out))}")
    return 0 if set(counts) <= {"trained", "resumed", "reused"} else 1


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def _add_report(sub):
    p = sub.add_parser("report", help="summarise a sweep: distributions over seeds, tests, median curves",
                       description="Per group of runs (equal grid values except the seed): median, quartiles and "
                       "min-max over seeds of the final and best validation accuracy and of the iterations to "
                       "50/90/99%; "
                       "a two-sided Mann-Whitney U test of each group against the first (or, with --against, against "
                       "the group that differs only in one key), with effect sizes; a figure "
                       "of median curves with bands. Writes report.md, report.json and report.png.")
    p.add_argument("sweep", metavar="SWEEP", help="a sweep folder (with sweep.json)")
    p.add_argument("--out", metavar="DIR", default=None, help="output folder (default: the sweep folder)")
    p.add_argument("--against", metavar="KEY=VALUE", default=None,
                   help="compare each group with the group equal to it except KEY=VALUE, e.g. --against p=0 in a "
                   "grid over p and pixels_per_step (default: every group against the first)")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from ..training.report import report_markdown, sweep_report

    summary = sweep_report(args.sweep, out_dir=args.out, against=parse_against(args.against))
    print(report_markdown(summary))
    return 0


def register(sub) -> None:
    """Add `sweep` and `report` to the subcommands `sub`."""
    _add_sweep(sub)
    _add_report(sub)
