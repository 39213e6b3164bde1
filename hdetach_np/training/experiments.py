"""Shared machinery of the experiment scripts in analysis/: run a batch of trainings, summarise them.

    jobs = [Job("p0.5-seed0", {"task": "copying", "delay": 5, "p": 0.5, "seed": 0, ...})]
    done = run_jobs(jobs, runs_dir="runs/experiments", workers=2)   # {name: run folder}
    hist = read_history(done["p0.5-seed0"])
    first_reach(hist, (0.5, 0.9, 0.99))                              # {0.5: iteration or None, ...}

A job is a name and a `TrainConfig` dict; its run folder is `runs_dir/name`. A folder whose
summary says the run is complete and whose config equals the job's is reused, not retrained, so
several scripts can share the same runs (the convergence runs feed the gradient-component and
transfer figures). At most `workers` trainings run at once, each in its own process with BLAS
limited to one thread.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import runs
from .config import TrainConfig
from .threads import blas_threads

THRESHOLDS = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Job:
    """One training run: a folder name and the config dict given to `TrainConfig.from_dict`."""

    name: str
    config: dict

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"job name must be a non-empty folder name without '/', got {self.name!r}")
        TrainConfig.from_dict(self.config)  # rejects unknown keys and bad values now, not in a worker


def is_complete(run_dir, config: dict) -> bool:
    """True when `run_dir` holds a finished run of exactly this config."""
    run = Path(run_dir)
    try:
        summary = runs.read_json(run / runs.SUMMARY)
        saved = TrainConfig.from_saved(runs.read_json(run / runs.CONFIG))
    except (OSError, ValueError):
        return False
    return bool(summary.get("complete")) and saved == TrainConfig.from_dict(config)


def _train_one(name: str, config: dict, run_dir: str, data_dir, mnist=None) -> dict:
    from .loop import train
    from .model import TrainingDiverged

    blas_threads(1)  # one thread per worker process
    run = Path(run_dir)
    if run.exists():
        shutil.rmtree(run)  # an unfinished or different run: start again
    t0 = time.perf_counter()
    try:
        train(TrainConfig.from_dict(config), run_dir=run, data_dir=data_dir, mnist=mnist)
        status = "complete"
    except TrainingDiverged as err:
        status = f"diverged: {err}"
        runs.write_json(run / "diverged.json", {"message": str(err)})
    return {"name": name, "status": status, "seconds": time.perf_counter() - t0}


def run_jobs(jobs, runs_dir, workers: int = 2, data_dir=None, say=print, mnist=None) -> dict:
    """Train every job not already complete in `runs_dir`, at most `workers` at once.

    MNIST jobs read the cache in `data_dir` (see data.load_mnist) unless `mnist` (a data.MNISTData)
    is given.
    Returns {name: {"dir": run folder, "status": "complete" | "reused" | "diverged: ...",
    "seconds": wall time of its training (0 when reused)}}. A diverged run (NaN/inf) keeps its
    folder and history; its status says so.
    """
    jobs = list(jobs)
    if not all(isinstance(j, Job) for j in jobs):
        raise TypeError("jobs must be a list of experiments.Job")
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique, got duplicates in {names}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    root = Path(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    out, todo = {}, []
    for j in jobs:
        d = root / j.name
        if is_complete(d, j.config):
            out[j.name] = {"dir": d, "status": "reused", "seconds": 0.0}
        elif (d / "diverged.json").is_file() and _same_config(d, j.config):
            out[j.name] = {"dir": d, "status": "diverged: " + runs.read_json(d / "diverged.json")["message"],
                           "seconds": 0.0}
        else:
            todo.append(j)
    if not todo:
        return out
    say(f"training {len(todo)} run(s) in {root} ({len(jobs) - len(todo)} reused), {min(workers, len(todo))} at a time")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # inherited by the worker processes
    t0 = time.perf_counter()
    if workers == 1 or len(todo) == 1:
        results = (_train_one(j.name, j.config, str(root / j.name), data_dir, mnist) for j in todo)
        for r in results:
            out[r["name"]] = {"dir": root / r["name"], "status": r["status"], "seconds": r["seconds"]}
            say(f"  {r['name']}: {r['status']} in {r['seconds']:.0f} s")
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futs = [pool.submit(_train_one, j.name, j.config, str(root / j.name), data_dir, mnist) for j in todo]
            for f in futs:
                r = f.result()
                out[r["name"]] = {"dir": root / r["name"], "status": r["status"], "seconds": r["seconds"]}
                say(f"  {r['name']}: {r['status']} in {r['seconds']:.0f} s "
                    f"(elapsed {time.perf_counter() - t0:.0f} s)")
    return out


def train_groups(jobs: dict, runs_dir, workers: int = 2, **run_kw) -> dict:
    """Train (or reuse) the runs of make_jobs' {tag: [Job per seed]}, seeds interleaved across the
    variants (so a cut-short sweep has every variant at the first seeds), and return `collect`'s
    {tag: [run record]}. `run_kw` goes to `run_jobs` (data_dir, mnist, say)."""
    order = [j for per_seed in zip(*jobs.values()) for j in per_seed]
    return collect(jobs, run_jobs(order, runs_dir, workers=workers, **run_kw))


def _same_config(run_dir, config) -> bool:
    try:
        return TrainConfig.from_saved(runs.read_json(Path(run_dir) / runs.CONFIG)) == TrainConfig.from_dict(config)
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------


def first_reach(history: list, thresholds=THRESHOLDS, split: str = "valid") -> dict:
    """{threshold: the first iteration whose `split` accuracy is >= threshold, or None}."""
    evals = [(r["iteration"], r["accuracy"]) for r in history if r.get("split") == split and r.get("accuracy") is not None]
    return {th: next((it for it, a in evals if a >= th), None) for th in thresholds}


def spread(values) -> dict:
    """Median, min, max and count of the values that are not None; `n_missing` counts the Nones
    (e.g. runs that never reached a threshold). Median is None when fewer than half the values exist,
    since then the median is itself 'not reached'."""
    values = list(values)
    vals = [v for v in values if v is not None]
    n = len(values)
    out = {"n": len(vals), "n_missing": n - len(vals)}
    if vals and len(vals) * 2 > n:
        # the median over all runs, counting a missing value as larger than every reached one
        full = sorted(vals) + [math.inf] * (n - len(vals))
        m = float(np.median(full))
        out["median"] = None if math.isinf(m) else m
    else:
        out["median"] = None
    out["min"] = float(min(vals)) if vals else None
    out["max"] = float(max(vals)) if vals else None
    return out


def final_eval(history: list, split: str = "valid") -> dict | None:
    """The last evaluation record of a split (loss, accuracy, iteration), or None."""
    recs = [r for r in history if r.get("split") == split]
    return recs[-1] if recs else None


def best_eval(history: list, split: str = "valid") -> dict | None:
    """The evaluation record of a split with the highest accuracy (first one on ties), or None."""
    recs = [r for r in history if r.get("split") == split and r.get("accuracy") is not None]
    return max(recs, key=lambda r: r["accuracy"]) if recs else None


def median_curve(histories: list, split: str = "valid", key: str = "accuracy"):
    """(iterations, median, min, max) of an evaluation metric over runs evaluated at the same
    iterations (runs that stopped early are cut to the shortest)."""
    from .plots import eval_curve

    curves = [eval_curve(h, split, key) for h in histories]
    n = min(len(c[0]) for c in curves)
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)
    its = curves[0][0][:n]
    v = np.stack([c[1][:n] for c in curves])
    return its, np.median(v, 0), v.min(0), v.max(0)


def fmt(v, digits: int = 0) -> str:
    """A table cell: '-' for None, otherwise the number with `digits` decimals."""
    if v is None:
        return "-"
    return f"{v:.{digits}f}"


def markdown_table(header, rows) -> str:
    """A GitHub markdown table from a header list and rows of cells (converted with str)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_outputs(out_dir, stem: str, data: dict, table_md: str, fig=None, dpi: int = 100) -> dict:
    """Write OUT/stem.json, OUT/stem.md and (if a figure is given, then closed) OUT/stem.png; say
    what was written and return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "md": out / f"{stem}.md"}
    paths["json"].write_text(json.dumps(_jsonable(data), indent=1) + "\n")
    paths["md"].write_text(table_md)
    if fig is not None:
        paths["png"] = out / f"{stem}.png"
        fig.savefig(paths["png"], dpi=dpi)
        import matplotlib.pyplot as plt

        plt.close(fig)
    print("wrote", ", ".join(str(p) for p in paths.values()))
    return paths


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


# ---------------------------------------------------------------------------------------------
# The copying setup shared by the copying experiments
# ---------------------------------------------------------------------------------------------

# The scaled-down copying task of the experiments, sized so that the 15 runs of the convergence
# sweep (3 variants x 5 seeds) take about an hour on 2 cores. The paper: T=100/300, hidden 128,
# scalar input, lr 1e-3, 100,000 training sequences, 600,000 iterations; docs/results.md
# says how this setting was chosen and why it differs.
COPYING = dict(task="copying", delay=10, hidden=128, one_hot=True, lr=3e-3, batch_size=100, clip=1.0,
               n_train=100_000, n_valid=500, iterations_per_epoch=100, epochs=150, anneal_p=0,
               log_paths_every=100, bias="one")

# Smaller still, for the --quick modes (seconds).
COPYING_QUICK = dict(COPYING, delay=2, hidden=8, n_train=200, n_valid=50, iterations_per_epoch=5, epochs=3,
                     batch_size=10, log_paths_every=5)


def copying_variants(ps) -> dict:
    """{tag: overrides} of vanilla and h-detach at each p of `ps`."""
    return dict([copying_variant(0.0)] + [copying_variant(p) for p in ps])


def shortened(base: dict, iterations: int | None) -> dict:
    """`base` trained for `iterations` iterations (a positive multiple of its iterations_per_epoch)
    instead of its own number; None returns `base` unchanged."""
    if iterations is None:
        return dict(base)
    per = base["iterations_per_epoch"]
    if not isinstance(iterations, int) or iterations < per or iterations % per:
        raise ValueError(f"iterations must be a positive multiple of {per} (iterations per epoch), got {iterations!r}")
    return dict(base, epochs=iterations // per)


def cut_histories(groups: dict, tags, last: int) -> None:
    """Keep only the records up to iteration `last` in the runs of `tags` (in place). With detaching
    in every iteration (anneal_p 0) the first K iterations of a longer run are exactly a K-iteration
    run (same data, initialisation, minibatches and masks), so a longer run cut at K stands for it."""
    for tag in tags:
        for r in groups[tag]:
            r["history"] = [h for h in r["history"] if h["iteration"] <= last]


def copying_variant(p: float = 0.0, detach: str = "h", clip: float | None = None) -> tuple[str, dict]:
    """(tag, config overrides) of a copying variant: vanilla (p=0), h-detach or c-detach at p,
    optionally with another clipping threshold (0 = no clipping)."""
    tag = "vanilla" if p == 0 else f"{detach}-detach p={p:g}"
    over = {"p": float(p), "detach": detach}
    if clip is not None:
        over["clip"] = float(clip)
        if clip == 0:
            tag += ", no clipping"
    return tag, over


def job_name(cfg: dict, seed: int) -> str:
    """A run-folder name that spells out the settings that vary between experiment runs (the copying
    delay as "T<delay>", the paper's name, which also keeps earlier run folders reusable)."""
    c = TrainConfig.from_dict(cfg)
    parts = [c.task, f"T{c.delay}" if c.task == "copying" else f"k{c.pixels_per_step}", f"H{c.hidden}",
             f"lr{c.lr:g}", f"it{c.total_iterations}", f"{c.detach}{c.p:g}", f"clip{c.clip:g}"]
    if c.one_hot:
        parts.append("onehot")
    if c.task != "copying":
        parts.append(f"n{c.n_train}")
    return "-".join(parts) + f"-s{seed}"


def make_jobs(base: dict, variants: dict, seeds) -> dict:
    """{tag: [Job per seed]} for variants {tag: overrides} of the base config."""
    out = {}
    for tag, over in variants.items():
        out[tag] = []
        for s in seeds:
            cfg = dict(base, **over, seed=int(s))
            out[tag].append(Job(job_name(cfg, s), cfg))
    return out


# ---------------------------------------------------------------------------------------------
# Collecting and summarising groups of runs
# ---------------------------------------------------------------------------------------------


def collect(jobs: dict, done: dict) -> dict:
    """{tag: [{"seed", "name", "dir", "status", "seconds", "history"}]} from make_jobs' output and
    run_jobs' result; "seconds" is the training time stored in the run's summary.json."""
    out = {}
    for tag, js in jobs.items():
        out[tag] = []
        for j in js:
            d = Path(done[j.name]["dir"])
            summ = runs.read_json(d / runs.SUMMARY) if (d / runs.SUMMARY).is_file() else {}
            out[tag].append({"seed": j.config["seed"], "name": j.name, "dir": d, "status": done[j.name]["status"],
                             "seconds": float(summ.get("seconds", done[j.name]["seconds"])),
                             "history": runs.read_history(d)})
    return out


def convergence_summary(groups: dict, thresholds=THRESHOLDS) -> dict:
    """Per tag: per-seed first iterations reaching each validation-accuracy threshold, final and best
    validation accuracy, and their spread over seeds (see `spread`)."""
    out = {}
    for tag, rs in groups.items():
        per_seed = []
        for r in rs:
            reach = first_reach(r["history"], thresholds)
            fin, best = final_eval(r["history"]), best_eval(r["history"])
            per_seed.append({"seed": r["seed"], "status": r["status"], "seconds": round(r["seconds"], 1),
                             "reach": {f"{th:g}": reach[th] for th in thresholds},
                             "final_valid_accuracy": fin["accuracy"] if fin else None,
                             "final_iteration": fin["iteration"] if fin else None,
                             "best_valid_accuracy": best["accuracy"] if best else None})
        out[tag] = {
            "per_seed": per_seed,
            "reach": {f"{th:g}": spread([p["reach"][f"{th:g}"] for p in per_seed]) for th in thresholds},
            "final_valid_accuracy": spread([p["final_valid_accuracy"] for p in per_seed]),
            "best_valid_accuracy": spread([p["best_valid_accuracy"] for p in per_seed]),
            "train_seconds_total": round(sum(p["seconds"] for p in per_seed), 1),
        }
    return out


def convergence_table(summary: dict, thresholds=THRESHOLDS) -> str:
    """Markdown: per variant, for each threshold 'median (min-max), k/n seeds reached', and the
    final validation accuracy median (min-max)."""
    header = ["variant", "seeds"] + [f"iterations to {th:.0%} valid acc." for th in thresholds] + \
             ["final valid acc.", "best valid acc."]
    rows = []
    for tag, s in summary.items():
        n = len(s["per_seed"])
        cells = [tag, n]
        for th in thresholds:
            r = s["reach"][f"{th:g}"]
            if r["n"] == 0:
                cells.append(f"not reached (0/{n})")
            else:
                cells.append(f"{fmt(r['median'])} ({fmt(r['min'])}-{fmt(r['max'])}), {r['n']}/{n} reached")
        for key in ("final_valid_accuracy", "best_valid_accuracy"):
            f = s[key]
            cells.append(f"{fmt(f['median'], 3)} ({fmt(f['min'], 3)}-{fmt(f['max'], 3)})")
        rows.append(cells)
    return markdown_table(header, rows) + (
        "\nIterations: median over seeds, counting a seed that never reached the level as slower than all "
        "(so '-' when fewer than half reached it); range over the seeds that reached it. Accuracy: "
        "median (min-max) over seeds.\n")


def per_seed_table(summary: dict, thresholds=THRESHOLDS) -> str:
    """Markdown: one row per (variant, seed)."""
    header = ["variant", "seed"] + [f"it. to {th:.0%}" for th in thresholds] + ["final valid acc.", "status"]
    rows = []
    for tag, s in summary.items():
        for p in s["per_seed"]:
            rows.append([tag, p["seed"]] + [fmt(p["reach"][f"{th:g}"]) for th in thresholds]
                        + [fmt(p["final_valid_accuracy"], 3), p["status"].split(":")[0]])
    return markdown_table(header, rows)


def plot_accuracy_groups(ax, groups: dict, split: str = "valid", thresholds=THRESHOLDS):
    """Validation accuracy against iteration: each seed thin, the median over seeds thick, one
    colour per variant; dotted lines at the thresholds. Returns ax."""
    from .plots import eval_curve

    for tag, rs in groups.items():
        its, med, lo, hi = median_curve([r["history"] for r in rs], split)
        (line,) = ax.plot(its, med, lw=2, label=f"{tag} (median of {len(rs)})")
        for r in rs:
            it, v = eval_curve(r["history"], split)
            ax.plot(it, v, lw=0.6, alpha=0.35, color=line.get_color())
    for th in thresholds:
        ax.axhline(th, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"{split} accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_loss_groups(ax, groups: dict, smooth: int = 50):
    """Training loss (moving average over `smooth` iterations), median over seeds per variant."""
    from .plots import training_curve

    for tag, rs in groups.items():
        curves = [training_curve(r["history"], "loss", smooth) for r in rs]
        n = min(len(c[0]) for c in curves)
        if n == 0:
            continue
        ax.plot(curves[0][0][:n], np.median(np.stack([c[1][:n] for c in curves]), 0), label=tag)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"training loss (mean of {smooth}, median over seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# ---------------------------------------------------------------------------------------------
# The command line of the scripts
# ---------------------------------------------------------------------------------------------


def base_parser(doc: str, runs_default: str = "runs/experiments"):
    """The options every experiment script shares: --out, --quick, --runs, --workers, --seeds."""
    import argparse

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output folder for the figure, JSON and markdown table")
    p.add_argument("--quick", action="store_true", help="tiny sizes, finishes in seconds (for CI)")
    p.add_argument("--runs", default=None, help=f"folder of the training runs (reused when complete; "
                   f"default {runs_default}, or OUT/runs with --quick)")
    p.add_argument("--workers", type=int, default=2, help="trainings run at once (processes)")
    return p


def add_iterations_option(p):
    """--iterations: train for this many iterations instead of the COPYING setup's (see `shortened`)."""
    p.add_argument("--iterations", type=int, default=None,
                   help="training iterations (a multiple of 100; default: the COPYING setup's)")
    return p


def scale_parser(doc: str, N: int):
    """The options the weight-scale analysis scripts share: --out, --quick, --seed, --T, --N, --H,
    --scales (factors on Wh). `N` is the default batch size."""
    import argparse

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, finishes in seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--T", type=int, default=100, help="copying delay (sequences of T + 20 steps)")
    p.add_argument("--N", type=int, default=N, help="batch size")
    p.add_argument("--H", type=int, default=128, help="hidden size")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 4.0], help="factors on Wh")
    return p


def copying_problem(seed: int, T: int, N: int, H: int):
    """An LSTM (original initialisation, float64) and one copying batch, both from `seed`.

    Returns rng (for further draws), params, x (T+20, N, 1), y (T+20, N)."""
    import hdetach_np as hd
    from hdetach_np.tasks import copying_data

    rng = np.random.default_rng(seed)
    params = hd.init_lstm(1, H, rng, dtype=np.float64)
    x, y = copying_data(N, T, rng, dtype=np.float64)
    return rng, params, x, y


def runs_dir(args, default: str = "runs/experiments") -> Path:
    if args.runs is not None:
        return Path(args.runs)
    return Path(args.out) / "runs" if args.quick else Path(default)


def command_line(script: str, argv) -> str:
    import sys

    return f"python analysis/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
