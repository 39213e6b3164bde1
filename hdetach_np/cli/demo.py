"""`hdetach-np demo`: what the toolkit found, at a size that runs in under 5 minutes on 2 cores.

    from hdetach_np.cli.demo import run_demo
    res = run_demo("runs/demo")              # about 4 minutes on 2 cores; quick=True: seconds
    res.results["copying"]["variants"]       # the numbers behind the figures (also results.json)

Two stages, on built-in synthetic data (no download):

1. suppression: the weight-scale sweep (`suppression_sweep`) on a batch of the copying task: the share
   ||g_cell|| / ||g_total|| of the cell path in the LSTM gradient as the recurrent weights Wh are
   multiplied by s, for the plain gradient and the expected h-detach gradient g(1 - p).
2. copying: the copying setting of the Results (delay 10, one-hot input, hidden 128, Adam lr 3e-3,
   batch 100, clipping 1), vanilla (p = 0) against h-detach (p = 0.5) with the same seeds (the same
   data and initialisation), trained through the sweep machinery (`run_sweep`, two runs at a time,
   one BLAS thread each), for as many iterations as fit; then each run's best model is evaluated at
   the trained delay and at 2x and 4x it (`transfer_copying`).

The run folder:

    OUT/config.json        the demo settings and the config of each stage
    OUT/results.json       every number behind the figures and in summary.md, plus wall times
    OUT/summary.md         the numbers, configs, wall times, versions and the commands that reproduce each part
    OUT/suppression.png    cell-path share against the weight scale
    OUT/copying.png        validation accuracy during training, and transfer accuracy at 1x, 2x, 4x the delay
    OUT/runs/              the sweep folder: sweep.json and one run folder per variant and seed

Everything is determined by `seed`: every computation runs on one BLAS thread, so a rerun with the
same seed and the same numpy writes the same numbers (the wall times aside).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validate import check_int
from ..training import runs
from ..training.config import TrainConfig
from ..training.threads import blas_threads
from .demo_report import (
    SWEEP,
    TRANSFER_SEED,
    comparison,
    copying_figure,
    summary_markdown,
    suppression_figure,
    suppression_python,
    sweep_command,
    train_command,
)

MARKER = "hdetach-np demo"  # config.json["kind"] of a demo folder (lets --force replace only a demo)
OWN_FILES = ("config.json", "results.json", "summary.md", "suppression.png", "copying.png")
SUPPRESSION_PS = (0.25, 0.5)


@dataclass(frozen=True)
class DemoSettings:
    """The sizes of the two stages (full or quick). `preset(quick)` picks one of the two."""

    # stage 1: the weight-scale sweep
    sup_delay: int
    sup_N: int
    sup_H: int
    sup_smin: float
    sup_smax: float
    sup_nscales: int
    sup_seeds: int
    # stage 2: copying, vanilla against h-detach, then transfer
    delay: int
    hidden: int
    batch_size: int
    lr: float
    p: float
    epochs: int
    iterations_per_epoch: int
    n_train: int
    n_valid: int
    log_paths_every: int
    transfer_factors: tuple = (1, 2, 4)
    transfer_n: int = 2000
    one_hot: bool = True

    @classmethod
    def preset(cls, quick: bool) -> DemoSettings:
        if quick:
            return cls(sup_delay=10, sup_N=8, sup_H=16, sup_smin=0.25, sup_smax=16.0, sup_nscales=4, sup_seeds=2,
                       delay=2, hidden=8, batch_size=10, lr=5e-2, p=0.5, epochs=4, iterations_per_epoch=10,
                       n_train=200, n_valid=50, log_paths_every=5, transfer_n=100)
        # the Results' copying setting, 6,000 iterations: 0.032 s per iteration with two runs at a
        # time on one BLAS thread each, so about 3.3 minutes of training on 2 cores
        return cls(sup_delay=50, sup_N=32, sup_H=64, sup_smin=0.25, sup_smax=32.0, sup_nscales=8, sup_seeds=5,
                   delay=10, hidden=128, batch_size=100, lr=3e-3, p=0.5, epochs=60, iterations_per_epoch=100,
                   n_train=100_000, n_valid=500, log_paths_every=100)

    def train_base(self) -> dict:
        """The training config shared by every copying run (the sweep's base)."""
        return dict(task="copying", delay=self.delay, hidden=self.hidden, one_hot=self.one_hot, lr=self.lr,
                    batch_size=self.batch_size, clip=1.0, n_train=self.n_train, n_valid=self.n_valid,
                    iterations_per_epoch=self.iterations_per_epoch, epochs=self.epochs, anneal_p=0,
                    log_paths_every=self.log_paths_every, bias="one")


@dataclass(frozen=True, eq=False)
class DemoResult:
    """What `run_demo` returns: the run folder, the paths of the files written and the results
    (the content of results.json: numbers, configs, wall times, versions, commands)."""

    out_dir: Path
    files: dict
    results: dict

    @property
    def seconds(self) -> float:
        return self.results["seconds"]["total"]


# ---------------------------------------------------------------------------------------------
# The run folder
# ---------------------------------------------------------------------------------------------


def _demo_entries(out: Path) -> list[Path] | None:
    """The entries of `out` that an earlier demo wrote, or None if `out` holds anything else (or
    is not a demo folder): its own files and the sweep folder with the runs its manifest lists."""
    try:
        if json.loads((out / "config.json").read_text()).get("kind") != MARKER:
            return None
    except (OSError, ValueError, AttributeError):
        return None
    mine = [out / n for n in OWN_FILES if (out / n).exists()]
    if (out / SWEEP).exists():
        try:
            listed = json.loads((out / SWEEP / "sweep.json").read_text())["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if any(e.name not in listed and e.name != "sweep.json" for e in (out / SWEEP).iterdir()):
            return None
        mine.append(out / SWEEP)
    return mine if len(mine) == len(list(out.iterdir())) else None


def _prepare_out(out_dir, force: bool) -> Path:
    """Create the run folder; refuse a file, or a non-empty folder unless force and it holds only
    what an earlier demo wrote (then those entries are removed)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file; expected a folder "
                         "(new, empty, or an earlier demo with --force)")
    if out.is_dir() and any(out.iterdir()):
        mine = _demo_entries(out)
        if not force:
            raise ValueError(f"--out {out} already exists and is not empty; choose another folder"
                             + (" or pass --force to replace this earlier demo" if mine else ""))
        if mine is None:
            raise ValueError(f"--out {out} is not empty and does not hold only an earlier demo's files; "
                             "--force only replaces a demo folder that holds nothing else; choose another folder")
        for entry in mine:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the run folder --out {out}: {err}") from err
    return out


def _versions() -> dict:
    import matplotlib
    import tqdm

    v = runs.versions()
    v.pop("executable", None)
    v["matplotlib"] = matplotlib.__version__
    v["tqdm"] = tqdm.__version__
    return v


# ---------------------------------------------------------------------------------------------
# The stages
# ---------------------------------------------------------------------------------------------


def _suppression_stage(s: DemoSettings, seed: int, show: bool):
    from ..paths.suppression import SuppressionConfig, suppression_sweep

    scales = tuple(float(x) for x in np.geomspace(s.sup_smin, s.sup_smax, s.sup_nscales).round(6))
    cfg = SuppressionConfig(scales=scales, seeds=tuple(range(seed, seed + s.sup_seeds)), weights="Wh",
                            task="copying", delay=s.sup_delay, N=s.sup_N, H=s.sup_H, ps=SUPPRESSION_PS, dtype="float64")
    res = suppression_sweep(cfg, progress=show)
    share = res.summary("cell/total", "all")
    geo = lambda part: np.exp(np.mean(np.log(res.norms["plain"][part]["all"]), axis=0))
    numbers = {
        "scales": list(scales),
        "variants": list(res.variants),
        "cell_share_mean": {v: share[v]["mean"] for v in res.variants},
        "cell_share_min": {v: share[v]["min"] for v in res.variants},
        "cell_share_max": {v: share[v]["max"] for v in res.variants},
        "norm_geomean_plain": {q: geo(q).tolist() for q in ("total", "cell", "h")},
    }
    return res, cfg, numbers


def _run_numbers(run_dir: Path, delays, n: int) -> dict:
    """The numbers of one finished run: its validation curve and its best model's transfer accuracy."""
    from ..training.plots import eval_curve
    from ..training.trained import transfer_copying

    history = runs.read_history(run_dir)
    it, acc = eval_curve(history, "valid", "accuracy")
    best = int(np.argmax(acc))  # the first evaluation at the best accuracy: the model of best.npz
    transfer = transfer_copying(run_dir, list(delays), n=n, seed=TRANSFER_SEED, which="best")
    return {"valid_iterations": it.astype(int).tolist(), "valid_accuracy": acc.tolist(),
            "final_valid_accuracy": float(acc[-1]), "best_valid_accuracy": float(acc[best]),
            "best_iteration": int(it[best]), "transfer_accuracy": [r["accuracy"] for r in transfer]}


def _copying_stage(s: DemoSettings, seeds: tuple, out: Path, workers: int, show: bool, say):
    from ..training.sweep import RunWatcher, run_sweep

    variants = {"vanilla": 0.0, f"h-detach p={s.p:g}": s.p}
    base = s.train_base()
    root = out / SWEEP
    command = sweep_command(base, list(variants.values()), seeds, root)
    t0 = time.perf_counter()
    with RunWatcher(root, s.epochs * s.iterations_per_epoch, say, every=30.0 if s.n_train > 1000 else 0.5):
        done = run_sweep(root, base, {"p": list(variants.values()), "seed": list(seeds)}, workers=workers,
                         command=command, say=say, progress=show)
    train_secs = time.perf_counter() - t0
    bad = {k: v for k, v in done.items() if v["status"] != "trained"}
    if bad:
        why = "; ".join(f"{k}: {v['status']} {v['message']}" for k, v in bad.items())
        raise RuntimeError(f"demo runs did not train: {why}")
    delays = [f * s.delay for f in s.transfer_factors]
    say(f"transfer: each run's best model at delays {', '.join(map(str, delays))} ({s.transfer_n} sequences each)")
    t0 = time.perf_counter()
    manifest = json.loads((root / "sweep.json").read_text())["runs"]
    out_v, configs, commands = {}, {}, {}
    for name, p in variants.items():
        rs = []
        for run, entry in manifest.items():
            if entry["point"]["p"] != p:
                continue
            nums = _run_numbers(root / run, delays, s.transfer_n)
            nums.update(seed=entry["point"]["seed"], run_dir=f"{SWEEP}/{run}", seconds=done[run]["train_seconds"])
            rs.append(nums)
            configs[run] = entry["config"]
            commands[run] = train_command(TrainConfig.from_dict(entry["config"]), root / run)
        acc = np.array([r["transfer_accuracy"] for r in rs])  # (seeds, delays)
        out_v[name] = {"p": p, "runs": rs, "transfer_accuracy_mean": acc.mean(axis=0).tolist(),
                       "final_valid_accuracy_mean": float(np.mean([r["final_valid_accuracy"] for r in rs])),
                       "best_valid_accuracy_mean": float(np.mean([r["best_valid_accuracy"] for r in rs]))}
    transfer_cmds = [f"hdetach-np transfer {root / run} --delays {' '.join(map(str, delays))} --n {s.transfer_n} "
                     f"--seed {TRANSFER_SEED} --which best --threads 1" for run in manifest]
    result = {"delays": delays, "variants": out_v, "sweep_command": command, "train_commands": commands,
              "transfer_commands": transfer_cmds}
    return result, configs, train_secs, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------------------------


def run_demo(out_dir="runs/demo", quick: bool = False, seed: int = 0, seeds: int = 1, workers: int = 2,
             force: bool = False, progress: bool | None = None, command: str | None = None) -> DemoResult:
    """Run both stages and write the run folder `out_dir` (see the module docstring).

    quick: tiny sizes (seconds, for tests). seed: the first seed; the copying runs of each variant
    use seeds seed .. seed + seeds - 1, the suppression sweep its own number of seeds from `seed`.
    workers: training runs at a time (each on one BLAS thread; the numbers do not depend on it).
    force: replace `out_dir` if it holds only an earlier demo. progress: tqdm bars (None: when
    stderr is a terminal); False also silences the line printed (to stderr) at each stage.
    command: the command line to record. Raises ValueError for a bad argument or an unusable `out_dir`.
    """
    seed = check_int("seed", seed, 0)
    seeds = check_int("seeds", seeds, 1)
    workers = check_int("workers", workers, 1)
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be True or False, got {quick!r}")
    show = sys.stderr.isatty() if progress is None else bool(progress)
    # a line per stage, also when the output is a file or a pipe (progress=False: silent)
    say = (lambda m: None) if progress is False else (lambda m: print(m, file=sys.stderr, flush=True))
    out = _prepare_out(out_dir, force)

    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo", "ps"):
        import matplotlib.pyplot as plt

        plt.switch_backend("Agg")

    s = DemoSettings.preset(quick)
    seed_list = tuple(range(seed, seed + seeds))
    if command is None:
        command = f"hdetach-np demo --out {out} --seed {seed} --seeds {seeds}" + (" --quick" if quick else "")
    t_all = time.perf_counter()
    with blas_threads(1):
        say(f"stage 1/2: suppression sweep (delay {s.sup_delay}, N={s.sup_N}, H={s.sup_H}, {s.sup_nscales} scales, "
            f"{s.sup_seeds} seeds)")
        t0 = time.perf_counter()
        sup_res, sup_cfg, sup_nums = _suppression_stage(s, seed, show)
        sup_secs = time.perf_counter() - t0
        its = s.epochs * s.iterations_per_epoch
        say(f"stage 2/2: copying delay {s.delay}, vanilla and h-detach p={s.p:g}, {seeds} seed(s) each, "
            f"{its} iterations, {workers} run(s) at a time -> {out / SWEEP}")
        cop, cop_cfgs, train_secs, transfer_secs = _copying_stage(s, seed_list, out, workers, show, say)
    t0 = time.perf_counter()
    files = {"config": out / "config.json", "results": out / "results.json", "summary": out / "summary.md",
             "suppression_png": out / "suppression.png", "copying_png": out / "copying.png"}
    suppression_figure(sup_res, sup_cfg, files["suppression_png"])
    copying_figure(cop, s, files["copying_png"])
    sup_dict = sup_cfg.as_dict()
    sup_nums["config"] = sup_dict
    sup_nums["command_python"] = suppression_python(sup_dict)
    settings = {k: getattr(s, k) for k in s.__dataclass_fields__}
    config = {"kind": MARKER, "command": command, "quick": quick, "seed": seed, "seeds": list(seed_list),
              "workers": workers, "settings": settings, "suppression": sup_dict, "copying_runs": cop_cfgs}
    runs.write_json(files["config"], config)
    results = {"command": command, "quick": quick, "seed": seed, "workers": workers, "settings": settings,
               "versions": _versions(), "suppression": sup_nums, "copying": cop, "comparison": comparison(cop),
               "seconds": {"suppression": sup_secs, "training": train_secs, "transfer": transfer_secs}}
    results["seconds"]["figures"] = time.perf_counter() - t0
    results["seconds"]["total"] = time.perf_counter() - t_all
    runs.write_json(files["results"], results)
    files["summary"].write_text(summary_markdown(results))
    say(f"done in {results['seconds']['total']:.0f} s; see {files['summary']}")
    return DemoResult(out, files, results)


# ---------------------------------------------------------------------------------------------
# Command line: `hdetach-np demo`
# ---------------------------------------------------------------------------------------------


def register(sub) -> None:
    """Add `demo` to the subcommands `sub`."""
    import argparse

    p = sub.add_parser(
        "demo",
        help="run the suppression sweep and a copying comparison with transfer (under 5 minutes on 2 cores)",
        description="On built-in synthetic data (no download): (1) the cell-path share of the LSTM gradient "
        "against the scale of the recurrent weights, plain and expected h-detach; (2) the copying task at delay 10 "
        "(one-hot input, hidden 128, Adam lr 3e-3), vanilla against h-detach p=0.5 with the same seeds, 6,000 "
        "iterations, two runs at a time on one BLAS thread each, then each best model at 1x, 2x and 4x the delay. "
        "Writes suppression.png, copying.png, summary.md (numbers, configs, wall times, versions, commands that "
        "reproduce each part), results.json, config.json and the sweep folder runs/. About 4 minutes on 2 "
        "cores; --quick takes seconds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", metavar="DIR", default="runs/demo", help="run folder to create (must be new or empty)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for tests (the numbers mean little)")
    p.add_argument("--seed", type=int, default=0, help="first seed; everything is determined by it")
    p.add_argument("--seeds", type=int, default=1,
                   help="copying seeds per variant (each further seed adds about the same training time)")
    p.add_argument("--workers", type=int, default=2, help="training runs at a time (one BLAS thread each)")
    p.add_argument("--force", action="store_true", help="replace --out if it holds only an earlier demo")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    argv = ["hdetach-np", "demo", "--out", args.out, "--seed", str(args.seed), "--seeds", str(args.seeds)]
    argv += (["--workers", str(args.workers)] if args.workers != 2 else []) + (["--quick"] if args.quick else [])
    try:
        res = run_demo(args.out, quick=args.quick, seed=args.seed, seeds=args.seeds, workers=args.workers,
                       force=args.force, command=" ".join(argv))
    except RuntimeError as err:  # a run diverged or failed: its folder says why
        print(f"hdetach-np demo: error: {err}", file=sys.stderr)
        return 1
    r = res.results
    print(f"wrote {res.out_dir}/: summary.md, suppression.png, copying.png, results.json, config.json, {SWEEP}/ "
          f"({r['seconds']['total']:.0f} s)")
    delays = r["copying"]["delays"]
    for name, v in r["copying"]["variants"].items():
        print(f"  {name}: best validation accuracy {v['best_valid_accuracy_mean']:.3f}; transfer "
              + ", ".join(f"delay {d} {a:.3f}" for d, a in zip(delays, v["transfer_accuracy_mean"]))
              + f" (mean of {len(v['runs'])} seed{'s' if len(v['runs']) > 1 else ''})")
    return 0


__all__ = ["DemoResult", "DemoSettings", "run_demo", "sweep_command", "train_command"]
