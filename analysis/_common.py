"""What the experiment scripts in analysis/ share: the copying setup, named runs, summaries, options.

    jobs = make_jobs(COPYING_QUICK, copying_variants([0.5]), seeds=[0, 1])   # {tag: [sweep.Run per seed]}
    groups = train_groups(jobs, "runs/experiments", workers=2)               # {tag: [run record]}
    convergence_summary(groups)

The runs go through the package's sweep machinery (hdetach_np.training.sweep.run_many: joblib
worker processes, one BLAS thread each; resumed, reused, never deleted). A run's folder is
RUNS/<job_name>, a name that spells out the settings, so several scripts share the same runs (the
convergence runs feed the gradient-component, transfer, learning-rate and ablation scripts).

The scripts import this module as `_common` (they run as `python analysis/NAME.py`, which puts
analysis/ first on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hdetach_np.training import runs
from hdetach_np.training.config import TrainConfig
from hdetach_np.training.report import (  # noqa: F401
    THRESHOLDS,
    band_curve,
    best_eval,
    final_eval,
    first_reach,
    fmt,
    markdown_table,
    spread,
    write_outputs,
)
from hdetach_np.training.sweep import Run, run_many


def train_groups(jobs: dict, runs_dir, workers: int = 2, **run_kw) -> dict:
    """Train (or reuse, or resume) the runs of make_jobs' {tag: [Run per seed]}, seeds interleaved
    across the variants (so a cut-short sweep has every variant at the first seeds), and return
    `collect`'s {tag: [run record]}. `run_kw` goes to `run_many` (data_dir, mnist, say, scheduler)."""
    order = [j for per_seed in zip(*jobs.values()) for j in per_seed]
    run_kw.setdefault("command", script_command())  # named in the message when Ctrl-C stops the runs
    return collect(jobs, run_many(order, runs_dir, workers=workers, **run_kw), runs_dir)


# ---------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The copying setup shared by the copying experiments
# ---------------------------------------------------------------------------------------------

# The scaled-down copying task of the experiments, sized so that the 15 runs of the convergence
# sweep (3 variants x 5 seeds) take about an hour on 2 cores. The paper: delay 100/300, hidden 128,
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
    """{tag: [sweep.Run per seed]} for variants {tag: overrides} of the base config."""
    out = {}
    for tag, over in variants.items():
        out[tag] = []
        for s in seeds:
            cfg = dict(base, **over, seed=int(s))
            out[tag].append(Run(job_name(cfg, s), cfg, dict(over, seed=int(s))))
    return out


# ---------------------------------------------------------------------------------------------
# Collecting and summarising groups of runs
# ---------------------------------------------------------------------------------------------


def collect(jobs: dict, done: dict, runs_dir) -> dict:
    """{tag: [{"seed", "name", "dir", "status", "seconds", "history"}]} from make_jobs' output and
    run_many's result; "seconds" is the training time stored in the run's summary.json."""
    out = {}
    for tag, js in jobs.items():
        out[tag] = []
        for j in js:
            d = Path(runs_dir) / j.name
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
    from hdetach_np.training.plots import eval_curve

    for tag, rs in groups.items():
        b = band_curve([r["history"] for r in rs], split)
        (line,) = ax.plot(b["iteration"], b["median"], lw=2, label=f"{tag} (median of {len(rs)})")
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
    from hdetach_np.training.plots import training_curve

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
    """The options the weight-scale analysis scripts share: --out, --quick, --seed, --delay, --N,
    --H, --scales (factors on Wh). `N` is the default batch size. --T is still accepted as the old
    name of --delay (hidden from the help)."""
    import argparse

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, finishes in seconds")
    p.add_argument("--seed", type=int, default=0)
    add_delay_option(p)
    p.add_argument("--N", type=int, default=N, help="batch size")
    p.add_argument("--H", type=int, default=128, help="hidden size")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 4.0], help="factors on Wh")
    return p


def add_delay_option(p):
    """--delay: the copying delay (sequences of delay + 20 steps); --T, its old name, still works."""
    import argparse

    p.add_argument("--delay", type=int, default=100, help="copying delay (sequences of delay + 20 steps)")
    p.add_argument("--T", dest="delay", type=int, help=argparse.SUPPRESS)
    return p


def copying_problem(seed: int, delay: int, N: int, H: int):
    """An LSTM (original initialisation, float64) and one copying batch, both from `seed`.

    Returns rng (for further draws), params, x (L, N, 1), y (L, N) with L = delay + 20 steps."""
    import hdetach_np as hd
    from hdetach_np.tasks import copying_data

    rng = np.random.default_rng(seed)
    params = hd.init_lstm(1, H, rng, dtype=np.float64)
    x, y = copying_data(N, delay, rng, dtype=np.float64)
    return rng, params, x, y


def runs_dir(args, default: str = "runs/experiments") -> Path:
    if args.runs is not None:
        return Path(args.runs)
    return Path(args.out) / "runs" if args.quick else Path(default)


def command_line(script: str, argv) -> str:
    import sys

    return f"python analysis/{script} " + " ".join(argv if argv is not None else sys.argv[1:])


def script_command() -> str:
    """The command line that started this script ('python analysis/NAME.py --seeds 5'), to name in
    messages saying how to go on."""
    import shlex
    import sys

    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def script_main(main) -> None:
    """Run a script's main() from the shell. Bad input (ValueError) ends in one line and exit 1.
    Ctrl-C or SIGTERM during training ends in one line saying which runs kept a checkpoint and how
    to go on (exit 130 or 143, the shell's 128 + signal number); the runs resume where they stopped
    when the same command runs again."""
    import sys

    from hdetach_np.training.sweep import SweepInterrupted

    name = Path(sys.argv[0]).name
    try:
        main()
    except ValueError as err:
        sys.exit(f"{name}: error: {err}")
    except SweepInterrupted as err:  # the runs under way wrote their checkpoints
        print(f"{name}: {err}", file=sys.stderr)
        sys.exit(err.exit_status)
    except KeyboardInterrupt:  # between runs, or while summarising: every finished run is on disk
        print(f"{name}: interrupted; finished runs are kept, run `{script_command()}` again to go on",
              file=sys.stderr)
        sys.exit(130)
