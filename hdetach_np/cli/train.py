"""Subcommands `train`, `eval` and `transfer` of the `hdetach-np` command line (`plot`, `data`: plot.py, data.py).

`register(sub)` adds them to the top-level parser. Bad usage (a bad flag or value, an unknown
config key) prints one line and exits with status 2; a run that cannot go on (NaN/inf, unreadable
checkpoint, MNIST unavailable) prints one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .._validate import check_int
from ..lstm import INIT_SCHEMES
from ..masks import PER
from ..training.config import BIASES, DETACH, DTYPES, LEGACY_T, MNIST_TASKS, PRESETS, TASKS, TrainConfig, field_help
from ..training.guard import DEFAULT_CHECKPOINT_MINUTES
from ..training.optim import OPTIMIZERS
from ..training.threads import blas_threads, describe_threads, parse_threads, recorded_threads

FLAG_ALIASES = {"p": ["--p-detach"], "hidden": ["--lstm-size"]}
INT_OR_NONE = ("delay", "length", "perm_seed")  # integer keys whose default may be null
CHOICES = {"optimizer": OPTIMIZERS, "detach": DETACH, "mask_per": PER, "init": INIT_SCHEMES, "bias": BIASES,
           "dtype": DTYPES}


def _fail(cmd: str, err: Exception, status: int = 1) -> int:
    print(f"hdetach-np {cmd}: error: {err}", file=sys.stderr)
    return status


def _threads_type(text: str):
    try:
        return parse_threads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_threads_flag(group, default="auto"):
    """The `--threads` flag of the commands that train or evaluate (the demo fixes its own count)."""
    group.add_argument("--threads", type=_threads_type, default=default, metavar="N|auto",
                       help="BLAS threads: 'auto' (measured at the start: one thread per core that other processes "
                       "leave free, at most 2; a resumed run keeps the count it started with), a count (1 on a "
                       f"machine shared with other jobs), or 0 to leave BLAS as it is (default: {default})")


def flag(name: str) -> str:
    """The command-line flag of a TrainConfig key: "batch_size" -> "--batch-size"."""
    return "--" + name.replace("_", "-")


def _note_old_T(args, task: str) -> str:
    """The name that `--T` (the old name of the copying delay and the adding length) stands for."""
    if task not in LEGACY_T:
        raise ValueError("--T does not apply to pixel MNIST (784 / --pixels-per-step steps)")
    name = LEGACY_T[task]
    if getattr(args, name, None) is not None:
        raise ValueError(f"give {flag(name)} only (--T is its old name)")
    print(f"note: --T is the old name of {flag(name)} for the {task} task; T now means the sequence length "
          f"({'delay + 20' if task == 'copying' else 'the length'}); use {flag(name)}", file=sys.stderr)
    return name


def _task_default_text(name: str, preset: str = "laptop") -> str:
    vals = {}
    for task in TASKS:
        if task not in MNIST_TASKS and name == "pixels_per_step":
            continue
        if task != "copying" and name == "one_hot":
            continue
        if PRESETS[preset][task][name] is not None:
            vals.setdefault(PRESETS[preset][task][name], []).append(task)
    return "; ".join(f"{', '.join(ts)}: {v}" for v, ts in vals.items())


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def _add_train(sub):
    p = sub.add_parser(
        "train",
        help="train an LSTM (optionally with h-detach) on a task",
        description="Train an LSTM with a linear readout on copying, adding, pixel-mnist or permuted-mnist. "
        "Writes a run folder (config.json, versions.json, history.jsonl, checkpoint.npz, best.npz, summary.json). "
        "Config values come from the task defaults of --preset (laptop: minutes on 2 cores; paper: the original "
        "experiments, hours to days), then --config FILE.json, then the flags. Ctrl-C (SIGINT) or SIGTERM stops "
        "at the end of the iteration under way, writes a checkpoint and says how to resume (exit status 130 or "
        "143). Example: hdetach-np train copying --p 0.5 --out runs/c10",
    )
    p.add_argument("task", nargs="?", choices=TASKS, help="the task (not needed with --resume)")
    run = p.add_argument_group("run control (not part of the config)")
    run.add_argument("--out", metavar="DIR", default=None,
                     help="run folder to create (default: runs/<task>-<YYYYmmdd-HHMMSS> in the current directory)")
    run.add_argument("--config", metavar="FILE", default=None,
                     help="JSON file of config values (unknown keys are an error); flags override it (default: none)")
    run.add_argument("--resume", metavar="RUN", default=None,
                     help="continue the run in folder RUN from its checkpoint, with its own config (default: none)")
    run.add_argument("--stop-after", type=int, metavar="K", default=None,
                     help="stop after iteration K with a checkpoint; continue later with --resume "
                     "(default: run to the end)")
    run.add_argument("--data-dir", metavar="DIR", default=None,
                     help="MNIST cache folder (default: $HDETACH_NP_MNIST_DIR or ~/.cache/hdetach-np/mnist)")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines (default: off)")
    run.add_argument("--checkpoint-minutes", type=float, metavar="M", default=DEFAULT_CHECKPOINT_MINUTES,
                     help="also write a checkpoint after M minutes of training since the last one, so a killed run "
                     f"loses at most that much; 0 = only at epoch ends (default: {DEFAULT_CHECKPOINT_MINUTES:g})")
    add_threads_flag(run)
    run.add_argument("--preset", choices=tuple(PRESETS), default="laptop",
                     help="task defaults: laptop (copying delay 10, one-hot input, lr 3e-3, 15,000 iterations; pixel "
                     "MNIST 16 pixels per step, 16 epochs; adding length 100, 10,000 iterations: 7-17 minutes each) or "
                     "paper (the original experiments: copying delay 300, 600,000 iterations, about 40 hours; "
                     "pixel MNIST one pixel per step, 200 epochs, about 32 hours; adding length 200, about 2.5 "
                     "hours); durations extrapolated from 20 iterations on one BLAS thread of a busy 2-core "
                     "machine, evaluations not included (docs/training.md) (default: laptop)")
    _add_config_flags(p.add_argument_group("config (defaults: the task's values in --preset laptop; see --preset)"))
    p.set_defaults(func=_run_train)


def _add_config_flags(cfg):
    """One flag per TrainConfig field except task (dest = the field name, default None = not given)."""
    for name, (default, text, task_dep) in field_help().items():
        if name == "task":
            continue
        flags = [flag(name)] + FLAG_ALIASES.get(name, [])
        shown = _task_default_text(name) if task_dep else default
        kw = dict(dest=name, default=None, help=f"{text} (default: {shown})".replace("%", "%%"))
        if isinstance(default, bool):
            cfg.add_argument(*flags, action=argparse.BooleanOptionalAction, **kw)
        elif name in CHOICES:
            cfg.add_argument(*flags, choices=CHOICES[name], **kw)
        else:
            is_int = isinstance(default, int) or name in INT_OR_NONE
            typ = float if isinstance(default, float) else int if is_int else str
            cfg.add_argument(*flags, type=typ, metavar={float: "X", int: "INT", str: "STR"}[typ], **kw)
    cfg.add_argument("--T", dest="old_T", type=int, metavar="INT", default=None,
                     help="old name of --delay (copying) and --length (adding), with a note (default: none)")


def _config_from_args(args) -> tuple[TrainConfig | None, dict]:
    given = {k: getattr(args, k) for k in TrainConfig.keys() if k != "task" and getattr(args, k, None) is not None}
    if args.resume:
        if given or args.config or args.old_T is not None:
            names = ", ".join([flag(k) for k in given] + (["--T"] if args.old_T is not None else [])) or "--config"
            raise ValueError(f"a resumed run keeps its config; drop {names}")
        return None, given
    base = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        from ..training.runs import read_json

        base = read_json(path)
        if not isinstance(base, dict):
            raise ValueError(f"{path} must hold a JSON object of config values")
    task = args.task or base.get("task")
    if task is None:
        raise ValueError("give a task (copying, adding, pixel-mnist, permuted-mnist) or --resume RUN")
    if args.task and base.get("task") not in (None, args.task):
        raise ValueError(f"the task {args.task!r} differs from {base['task']!r} in {args.config}")
    if args.old_T is not None:
        given[_note_old_T(args, task)] = args.old_T
    return TrainConfig.from_dict({**base, **given, "task": task}, preset=args.preset), given


def _run_train(args) -> int:
    import numpy as np

    from ..training import TrainingDiverged, train
    from ..training.data import DataError
    from ..training.guard import TrainingInterrupted
    from ..training.runs import CHECKPOINT, VERSIONS, CheckpointError, RunFolderBusy, read_json
    from . import os_error_hint

    if args.stop_after is not None:
        check_int("--stop-after", args.stop_after, 1)
    if not args.checkpoint_minutes >= 0:
        raise ValueError(f"--checkpoint-minutes must be >= 0 (0 = only at epoch ends), got {args.checkpoint_minutes}")
    config, _ = _config_from_args(args)
    if args.resume:
        run = Path(args.resume)
        if not (run / "config.json").is_file():
            raise FileNotFoundError(f"{run} is not a run folder (no config.json)")
        config = TrainConfig.from_saved(read_json(run / "config.json"))
        if args.task and args.task != config.task:
            raise ValueError(f"the run {run} is a {config.task} run, not {args.task}")
    else:
        run = Path(args.out) if args.out else Path("runs") / f"{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    threads = args.threads
    if args.resume and threads == "auto" and (run / VERSIONS).is_file():
        threads = recorded_threads(read_json(run / VERSIONS)) or threads  # continue as the run started
    try:
        # a NaN/inf is reported as one line (TrainingDiverged), not as numpy's warnings before it
        with blas_threads(threads), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if not args.quiet:
                print(f"run folder: {run}" + (" (resumed)" if args.resume else "") + f"; {config.total_iterations:,} "
                      f"iterations; threads {describe_threads(args.threads)}"
                      + (" as the run started" if threads != args.threads else ""), flush=True)
            res = train(config, run, resume=bool(args.resume), stop_after=args.stop_after, quiet=args.quiet,
                        data_dir=args.data_dir, checkpoint_minutes=args.checkpoint_minutes)
    except TrainingInterrupted as err:
        print(f"hdetach-np train: {err}", file=sys.stderr)
        return err.exit_status
    except (TrainingDiverged, DataError, CheckpointError, RunFolderBusy) as err:
        return _fail("train", err)
    except OSError as err:
        if isinstance(err, FileNotFoundError) or not (run / "config.json").is_file():
            raise
        kept = ("its last checkpoint" if (run / CHECKPOINT).is_file()
                else "no checkpoint yet (it restarts at iteration 0)")
        hint = os_error_hint(err).removeprefix("; ")
        return _fail("train", f"{err}; {hint + '; ' if hint else ''}the run keeps {kept}; continue it with "
                              f"hdetach-np train --resume {run}")
    b = res.best
    state = "finished" if res.complete else "stopped"
    line = f"{state} at iteration {res.iteration}"
    if b:
        line += f"; best validation loss {b['loss']:.4f}"
        if b.get("accuracy") is not None:
            line += f", accuracy {b['accuracy']:.4f}"
        if b.get("test_accuracy") is not None:
            line += f", test accuracy at that epoch {b['test_accuracy']:.4f}"
        line += f" (epoch {b['epoch']})"
    print(line + f"; run folder {run}")
    return 0


# ---------------------------------------------------------------------------------------------
# eval, transfer
# ---------------------------------------------------------------------------------------------


def _add_eval(sub):
    p = sub.add_parser("eval", help="evaluate a run's best (or last) model",
                       description="Evaluate the model of a run folder on its validation (and, for MNIST, test) set.")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="best.npz (best validation) or checkpoint.npz (last) (default: best)")
    p.add_argument("--split", nargs="+", choices=("valid", "test"), default=None,
                   help="splits to evaluate (default: all the task has)")
    p.add_argument("--data-dir", metavar="DIR", default=None, help="MNIST cache folder (default: as for train)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: off)")
    add_threads_flag(p)
    p.set_defaults(func=_run_eval)


def _run_eval(args) -> int:
    from ..training import TrainingDiverged, evaluate_run
    from ..training.data import DataError
    from ..training.runs import CheckpointError

    try:
        with blas_threads(args.threads):
            res = evaluate_run(args.run, which=args.which, splits=args.split, data_dir=args.data_dir)
    except (DataError, CheckpointError, TrainingDiverged) as err:
        return _fail("eval", err)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{'split':<8}{'n':>8}{'loss':>12}{'accuracy':>10}")
    for split, r in res.items():
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        print(f"{split:<8}{r['n']:>8}{r['loss']:>12.5f}{acc:>10}")
    return 0


def _add_transfer(sub):
    p = sub.add_parser("transfer", help="evaluate a copying model at other delays",
                       description="Evaluate a copying run's model on fresh sequences at other delays (a new "
                       "generator seeded --seed per delay, as the original transfer script). Prints a table and writes "
                       "RUN/transfer.json.")
    p.add_argument("run", metavar="RUN", help="run folder of a copying run")
    p.add_argument("--delays", nargs="+", type=int, metavar="DELAY",
                   help="delays to test, e.g. --delays 200 400 1000 (required)")
    p.add_argument("--T", dest="old_T", nargs="+", type=int, metavar="DELAY",
                   help="old name of --delays, with a note (default: none)")
    p.add_argument("--n", type=int, default=5000, help="sequences per delay (default: 5000)")
    p.add_argument("--seed", type=int, default=555, help="seed of the fresh sequences (default: 555)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="model to use (default: best)")
    add_threads_flag(p)
    p.add_argument("--quiet", action="store_true", help="no line per delay while evaluating (default: off)")
    p.set_defaults(func=_run_transfer)


def _run_transfer(args) -> int:
    from ..training import TrainingDiverged, transfer_copying
    from ..training.runs import CheckpointError, read_json, write_json

    check_int("--n", args.n, 1)
    check_int("--seed", args.seed, 0)
    if args.old_T is not None:
        if args.delays is not None:
            raise ValueError("give --delays only (--T is its old name)")
        print("note: --T is the old name of --delays; use --delays", file=sys.stderr)
        args.delays = args.old_T
    if args.delays is None:
        raise ValueError("give the delays to test, e.g. --delays 20 40 100")
    if not (Path(args.run) / "config.json").is_file():
        raise FileNotFoundError(f"{args.run} is not a run folder (no config.json)")
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    try:
        with blas_threads(args.threads):
            say(f"evaluating {args.run} ({args.which} model) at {len(args.delays)} delay(s), {args.n} sequences each")
            rows = transfer_copying(args.run, args.delays, n=args.n, seed=args.seed, which=args.which, log=say)
    except (CheckpointError, TrainingDiverged) as err:
        return _fail("transfer", err)
    print(f"{'delay':>7}{'loss':>12}{'accuracy':>10}")
    for r in rows:
        print(f"{r['delay']:>7}{r['loss']:>12.5f}{r['accuracy']:>10.4f}")
    path = Path(args.run) / "transfer.json"
    old = read_json(path) if path.is_file() else {"results": []}
    key = lambda r: (r["delay"], r["n"], r["seed"])
    # older files name the copying delay "T"
    old_rows = [{("delay" if k == "T" else k): v for k, v in r.items()} for r in old.get("results", [])]
    keep = [r for r in old_rows if key(r) not in {key(x) for x in rows}]
    write_json(path, {"which": args.which, "results": sorted(keep + rows, key=key)})
    return 0



def register(sub) -> None:
    """Add `train`, `eval` and `transfer` to the subcommands `sub` (`plot` and `data` are in plot.py, data.py)."""
    for add in (_add_train, _add_eval, _add_transfer):
        add(sub)
