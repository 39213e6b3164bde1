"""`hdetach-np demo`: the paper's two claims, at a size that runs in a few minutes on a laptop.

    from hdetach_np.cli.demo import run_demo
    res = run_demo("runs/demo")              # about 1.5 CPU minutes on one core; quick=True: seconds
    res.results["copying"]["variants"]       # the numbers behind the figures (also results.json)

Two stages, on built-in synthetic data (no download):

1. suppression: the weight-scale sweep (`suppression_sweep`) on a batch of the copying task: the share
   ||g_cell|| / ||g_total|| of the cell path in the LSTM gradient as the recurrent weights Wh are
   multiplied by s, for the plain gradient and the expected h-detach gradient g(1 - p).
2. copying: the training engine (`train`) on a short copying task, vanilla (p = 0) against h-detach
   (p = 0.5), the same seeds for both (the same data and initialisation), with the norms of the
   cell-path and h-path parts of the full gradient logged during training.

The run folder:

    OUT/config.json        the demo settings and the config of each stage
    OUT/results.json       every number behind the figures and in summary.md, plus wall times
    OUT/summary.md         the numbers, configs, wall times, versions and the commands that reproduce each part
    OUT/suppression.png    cell-path share against the weight scale
    OUT/copying.png        loss, validation accuracy and the cell/h gradient norms during training
    OUT/runs/<variant>-seed<k>/   the training engine's run folders (history.jsonl, checkpoints, ...)

Everything is determined by `seed`: a rerun with the same seed writes the same numbers (the wall
times aside).
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
from ..training.report import markdown_table
from ..training.threads import blas_threads, describe_threads
from .train import flag

MARKER = "hdetach-np demo"  # config.json["kind"] of a demo folder (lets --force replace only a demo)
SUPPRESSION_PS = (0.25, 0.5)


@dataclass(frozen=True)
class DemoSettings:
    """The sizes of the two stages (full or quick). `from quick` picks one of the two presets."""

    # stage 1: the weight-scale sweep
    sup_T: int
    sup_N: int
    sup_H: int
    sup_smin: float
    sup_smax: float
    sup_nscales: int
    # stage 2: copying, vanilla against h-detach
    T: int
    hidden: int
    batch_size: int
    lr: float
    p: float
    epochs: int
    iterations_per_epoch: int
    n_train: int
    n_valid: int
    log_paths_every: int
    one_hot: bool = False

    @classmethod
    def preset(cls, quick: bool) -> DemoSettings:
        if quick:
            return cls(sup_T=10, sup_N=8, sup_H=16, sup_smin=0.25, sup_smax=16.0, sup_nscales=4,
                       T=2, hidden=16, batch_size=16, lr=2e-2, p=0.5, epochs=2, iterations_per_epoch=30,
                       n_train=500, n_valid=100, log_paths_every=10)
        return cls(sup_T=50, sup_N=32, sup_H=64, sup_smin=0.25, sup_smax=32.0, sup_nscales=8,
                   T=5, hidden=64, batch_size=64, lr=2e-2, p=0.5, epochs=10, iterations_per_epoch=150,
                   n_train=10_000, n_valid=500, log_paths_every=25)


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
# Inputs
# ---------------------------------------------------------------------------------------------


def _prepare_out(out_dir, force: bool) -> Path:
    """Create the run folder; refuse a file, or a non-empty folder unless it is an earlier demo and force."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file; expected a folder (new, empty, or an earlier demo with --force)")
    if out.is_dir() and any(out.iterdir()):
        cfg = out / "config.json"
        is_demo = False
        if cfg.is_file():
            try:
                is_demo = json.loads(cfg.read_text()).get("kind") == MARKER
            except (ValueError, AttributeError):
                is_demo = False
        if not force:
            raise ValueError(f"--out {out} already exists and is not empty; choose another folder"
                             + (" or pass --force to replace this earlier demo" if is_demo else ""))
        if not is_demo:
            raise ValueError(f"--out {out} is not empty and is not an earlier demo folder (no {cfg} of a demo); "
                             "--force only replaces a demo folder; choose another folder")
        shutil.rmtree(out)
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
# Commands that reproduce each part
# ---------------------------------------------------------------------------------------------


def train_command(cfg: TrainConfig, out) -> str:
    """The `hdetach-np train` command line that gives the run of `cfg` (flags for the keys that
    differ from the task defaults)."""
    base = TrainConfig.from_dict({"task": cfg.task})
    parts = ["hdetach-np", "train", cfg.task]
    for k in TrainConfig.keys():
        v = getattr(cfg, k)
        if k == "task" or v == getattr(base, k):
            continue
        if isinstance(v, bool):
            parts.append(flag(k) if v else "--no-" + flag(k)[2:])
        else:
            parts += [flag(k), f"{v:g}" if isinstance(v, float) else str(v)]
    return " ".join(parts + ["--threads", "1", "--out", str(out)])


def _suppression_python(sup: dict) -> str:
    args = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in sup.items())
    return ("python -c \"import hdetach_np as hd; r = hd.suppression_sweep(hd.SuppressionConfig("
            + args + ")); print(r.summary('cell/total', 'all'))\"")


# ---------------------------------------------------------------------------------------------
# The stages
# ---------------------------------------------------------------------------------------------


def _suppression_stage(s: DemoSettings, seeds: tuple, show: bool):
    from ..paths.suppression import SuppressionConfig, suppression_sweep

    scales = tuple(float(x) for x in np.geomspace(s.sup_smin, s.sup_smax, s.sup_nscales).round(6))
    cfg = SuppressionConfig(scales=scales, seeds=seeds, weights="Wh", task="copying", T=s.sup_T, N=s.sup_N,
                            H=s.sup_H, ps=SUPPRESSION_PS, dtype="float64")
    t0 = time.perf_counter()
    res = suppression_sweep(cfg, progress=show)
    secs = time.perf_counter() - t0
    share = res.summary("cell/total", "all")
    ratio = res.summary("cell/h", "all")
    geo = lambda part: np.exp(np.mean(np.log(res.norms["plain"][part]["all"]), axis=0))
    numbers = {
        "scales": list(scales),
        "variants": list(res.variants),
        "cell_share_mean": {v: share[v]["mean"] for v in res.variants},
        "cell_share_min": {v: share[v]["min"] for v in res.variants},
        "cell_share_max": {v: share[v]["max"] for v in res.variants},
        "cell_over_h_geomean": {v: ratio[v]["geomean"] for v in res.variants},
        "norm_geomean_plain": {q: geo(q).tolist() for q in ("total", "cell", "h")},
    }
    return res, cfg, numbers, secs


def _run_numbers(history: list, seconds: float) -> dict:
    """The numbers of one training run from its history."""
    from ..training.plots import eval_curve, training_curve

    it_v, acc = eval_curve(history, "valid", "accuracy")
    _, vloss = eval_curve(history, "valid", "loss")
    _, tloss = training_curve(history, "loss")
    last = max(1, min(100, len(tloss) // 5))
    paths = [r["paths"] for r in history if "paths" in r]
    share = [p["norms"]["cell"]["all"] / p["norms"]["total"]["all"] for p in paths]
    first, final = paths[0]["norms"], paths[-1]["norms"]
    return {
        "valid_iterations": it_v.astype(int).tolist(),
        "valid_accuracy": acc.tolist(),
        "valid_loss": vloss.tolist(),
        "final_valid_accuracy": float(acc[-1]),
        "best_valid_accuracy": float(acc.max()),
        "final_train_loss": float(np.mean(tloss[-last:])),
        "final_train_loss_over": int(last),
        "paths_iterations": [p["iteration"] for p in paths],
        "cell_share": share,
        "first_paths": {q: first[q]["all"] for q in ("total", "cell", "h")},
        "last_paths": {q: final[q]["all"] for q in ("total", "cell", "h")},
        "seconds": seconds,
    }


def _copying_stage(s: DemoSettings, seeds: tuple, out: Path, show: bool, say):
    from ..training.loop import train

    variants = {"vanilla": 0.0, f"h-detach p={s.p:g}": s.p}
    folder = {"vanilla": "vanilla", f"h-detach p={s.p:g}": f"hdetach-p{s.p:g}"}
    runs_out, configs, commands, histories = {}, {}, {}, {}
    n_runs, k = len(variants) * len(seeds), 0
    for name, p in variants.items():
        runs_out[name] = []
        for seed in seeds:
            k += 1
            cfg = TrainConfig.from_dict(dict(
                task="copying", delay=s.T, hidden=s.hidden, batch_size=s.batch_size, lr=s.lr, p=p, anneal_p=0,
                seed=seed, epochs=s.epochs, iterations_per_epoch=s.iterations_per_epoch, n_train=s.n_train,
                n_valid=s.n_valid, one_hot=s.one_hot, log_paths_every=s.log_paths_every, bias="one"))
            run_dir = out / "runs" / f"{folder[name]}-seed{seed}"
            say(f"[{k}/{n_runs}] copying T={s.T}, {name}, seed {seed}: {cfg.total_iterations} iterations -> {run_dir}")
            t0 = time.perf_counter()
            res = train(cfg, run_dir=run_dir, quiet=not show)
            secs = time.perf_counter() - t0
            nums = _run_numbers(res.history, secs)
            nums.update(seed=seed, run_dir=str(run_dir.relative_to(out)))
            runs_out[name].append(nums)
            configs[f"{folder[name]}-seed{seed}"] = cfg.to_dict()
            commands[f"{folder[name]}-seed{seed}"] = train_command(cfg, run_dir)
            histories.setdefault(name, []).append(res.history)
    summary = {}
    for name, rs in runs_out.items():
        acc = np.array([r["final_valid_accuracy"] for r in rs])
        sh = np.array([r["cell_share"][-1] for r in rs])
        summary[name] = {"p": variants[name], "final_valid_accuracy_mean": float(acc.mean()),
                         "final_valid_accuracy_min": float(acc.min()), "final_valid_accuracy_max": float(acc.max()),
                         "final_cell_share_mean": float(sh.mean()), "runs": rs}
    return summary, configs, commands, histories


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _suppression_figure(res, cfg, path: Path):
    import matplotlib.pyplot as plt

    from ..paths.plots import plot_norms_vs_scale, plot_ratio_vs_scale

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    plot_ratio_vs_scale(axes[0], res, "cell/total", "all")
    axes[0].set_title("cell-path share of the LSTM gradient", fontsize="medium")
    axes[0].set_ylim(max(1e-30, axes[0].get_ylim()[0]), 2)
    plot_norms_vs_scale(axes[1], res, "all", "plain")
    axes[1].set_title("norms of the parts (plain gradient, geometric mean over seeds)", fontsize="medium")
    fig.suptitle(f"Suppression of the cell path as Wh grows: copying batch, T={cfg.T} (sequences of {cfg.T + 20}), "
                 f"N={cfg.N}, H={cfg.H}, {len(cfg.seeds)} seeds (line: mean, band: min-max)", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _copying_figure(histories: dict, s: DemoSettings, n_seeds: int, path: Path):
    import matplotlib.pyplot as plt

    from ..paths.plots import plot_path_norms_history
    from ..training.plots import plot_eval, plot_training_loss

    colors = dict(zip(histories, ("black", "tab:green", "tab:orange")))
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    a_loss, a_acc, a_v, a_h = axes.ravel()
    smooth = max(1, min(50, s.epochs * s.iterations_per_epoch // 20))
    for name, hs in histories.items():
        for j, h in enumerate(hs):
            lab = name if j == 0 else None
            plot_training_loss(a_loss, h, label=lab, smooth=smooth, color=colors[name], lw=1, alpha=0.8, log=False)
            plot_eval(a_acc, h, "accuracy", label=lab, color=colors[name], alpha=0.8)
    a_loss.set_title(f"training loss ({n_seeds} seeds each, mean of {smooth} iterations)", fontsize="medium")
    a_acc.set_title("validation accuracy on the 10 recalled tokens (chance 1/8)", fontsize="medium")
    a_acc.axhline(1 / 8, color="gray", ls=":", lw=1)
    for ax in (a_loss, a_acc):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax, (name, hs) in zip((a_v, a_h), histories.items()):
        recs = [r["paths"] for h in hs[:1] for r in h if "paths" in r]
        plot_path_norms_history(ax, recs, "all")
        ax.set_ylabel("gradient norm (LSTM weights Wx, Wh, b)")
        ax.set_title(f"{name}, first seed: norms of the full gradient's parts", fontsize="medium")
    lo = min(a_v.get_ylim()[0], a_h.get_ylim()[0])
    hi = max(a_v.get_ylim()[1], a_h.get_ylim()[1])
    for ax in (a_v, a_h):
        ax.set_ylim(lo, hi)
    fig.suptitle(f"Copying task, T={s.T} (sequences of {s.T + 20}), hidden {s.hidden}, batch {s.batch_size}, "
                 f"Adam lr {s.lr:g}, clipping 1.0", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# summary.md
# ---------------------------------------------------------------------------------------------


def _g(x: float) -> str:
    """The one number format of summary.md (4 significant digits)."""
    return f"{x:.4g}"


def _summary_md(r: dict) -> str:
    sup, cop, sec = r["suppression"], r["copying"], r["seconds"]
    sc, s = sup["config"], r["settings"]
    L = [f"# hdetach-np demo (seed {r['seed']}{', quick' if r['quick'] else ''})", "",
         f"Command: `{r['command']}`  ",
         f"Wall time: {_g(sec['total'])} s in all (suppression {_g(sec['suppression'])} s, copying "
         f"{_g(sec['copying'])} s, figures and files {_g(sec['figures'])} s); BLAS threads: {r['blas_threads']}.  ",
         "Versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + ".", "",
         "## 1. Suppression of the cell path by large recurrent weights", "",
         "![suppression](suppression.png)", "",
         f"One batch of the copying task (delay T = {sc['T']}, sequences of {sc['T'] + 20} steps, loss at every "
         f"step), N = {sc['N']}, H = {sc['H']}, original initialisation, float64, seeds {', '.join(map(str, sc['seeds']))}; "
         "the recurrent weights Wh multiplied by s. Mean over seeds of ||g_cell|| / ||g_total|| for the LSTM "
         "parameters (Wx, Wh, b); 'expected h-detach' is the exact expected gradient g(1 - p) over masks.", ""]
    header = ["s"] + [_g(x) for x in sup["scales"]]
    L.append(markdown_table(header, [["plain gradient" if v == "plain" else f"expected h-detach {v}"]
                                     + [_g(x) for x in sup["cell_share_mean"][v]] for v in sup["variants"]]).rstrip())
    geo = sup["norm_geomean_plain"]
    L += ["", "Geometric mean over seeds of the norms (plain gradient):", "",
          markdown_table(header, [[f"||g_{q}||"] + [_g(x) for x in geo[q]] for q in ("total", "cell", "h")]).rstrip()]
    L += ["", f"Wall time: {_g(sec['suppression'])} s. Reproduce:", "", "```bash", sup["command_python"], "```"]
    if sup.get("command_analysis"):
        L += ["", "or, with the same numbers in its Wh panel (it also sweeps all weights):", "",
              "```bash", sup["command_analysis"], "```"]
    L += ["", f"## 2. Copying: vanilla against h-detach p = {s['p']:g}", "", "![copying](copying.png)", "",
          f"Delay T = {s['T']} (sequences of {s['T'] + 20} steps; the 10 tokens to recall take values 1-8, chance "
          f"accuracy 1/8), {'one-hot' if s['one_hot'] else 'scalar token value'} input, hidden {s['hidden']}, batch "
          f"{s['batch_size']}, Adam lr {s['lr']:g}, clipping at 1.0, {s['epochs']} epochs of "
          f"{s['iterations_per_epoch']} iterations, {s['n_train']} training and {s['n_valid']} validation sequences. "
          "Both variants use the same seeds, hence the same data and initialisation; h-detach cuts each "
          f"h_(t-1) -> gates_t edge with probability {s['p']:g} (one draw per step, in every epoch). The learning rate "
          "was chosen on short vanilla runs; nothing was tuned for h-detach. The cell/h norms are those of the "
          f"full (unmasked) gradient at the current parameters, every {s['log_paths_every']} iterations.", ""]
    over = cop["variants"][next(iter(cop["variants"]))]["runs"][0]["final_train_loss_over"]
    L.append(markdown_table(
        ["run", "seed", "valid accuracy (end)", "best valid accuracy", f"training loss (mean of the last {over} iterations)",
         "cell share ||g_cell||/||g_total|| (first log -> last)", "wall time (s)"],
        [[name, run["seed"], _g(run["final_valid_accuracy"]), _g(run["best_valid_accuracy"]), _g(run["final_train_loss"]),
          f"{_g(run['first_paths']['cell'] / run['first_paths']['total'])} -> {_g(run['cell_share'][-1])}",
          _g(run["seconds"])] for name, v in cop["variants"].items() for run in v["runs"]]).rstrip())
    L += ["", markdown_table(
        ["variant", "valid accuracy at the end: mean (min - max)", "cell share at the last log, mean"],
        [[name, f"{_g(v['final_valid_accuracy_mean'])} ({_g(v['final_valid_accuracy_min'])} - "
          f"{_g(v['final_valid_accuracy_max'])})", _g(v["final_cell_share_mean"])]
         for name, v in cop["variants"].items()]).rstrip()]
    a, b = list(cop["variants"].values())[:2]
    diff = b["final_valid_accuracy_mean"] - a["final_valid_accuracy_mean"]
    L += ["", f"At the end, h-detach's mean validation accuracy is {_g(abs(diff))} {'above' if diff >= 0 else 'below'} "
          f"vanilla's, over {len(a['runs'])} seeds each. A short run at a small T: it does not test the long "
          "delays (T = 100 to 300) where the paper reports its gains.", "",
          f"Wall time: {_g(sec['copying'])} s. Reproduce each run (the run folders are in `runs/`):", "", "```bash"]
    L += list(cop["commands"].values())
    L += ["```", "", "The numbers above are in `results.json`; the configs in `config.json`.", ""]
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------------------------


def run_demo(out_dir="runs/demo", quick: bool = False, seed: int = 0, seeds: int = 3, threads: int = 1,
             force: bool = False, progress: bool | None = None, command: str | None = None) -> DemoResult:
    """Run both stages and write the run folder `out_dir` (see the module docstring).

    quick: tiny sizes (seconds, for tests). seed: the first seed; the suppression sweep and each
    variant's copying runs use seeds seed .. seed + seeds - 1. threads: BLAS threads (0: unchanged;
    fixed, 1 by default, so that machines with the same numpy give the same numbers). force: replace
    `out_dir` if it holds an earlier demo. progress: tqdm bars (None: when stderr is a terminal);
    False also silences the line printed (to stderr) at each stage and run. command: the command line to record.
    Raises ValueError for a bad argument or an unusable `out_dir`.
    """
    seed = check_int("seed", seed, 0)
    seeds = check_int("seeds", seeds, 1)
    threads = check_int("threads", threads, 0)
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be True or False, got {quick!r}")
    show = sys.stderr.isatty() if progress is None else bool(progress)  # tqdm bars and per-epoch lines
    # a line per stage and run, also when the output is a file or a pipe (progress=False: silent)
    say = (lambda m: None) if progress is False else (lambda m: print(m, file=sys.stderr, flush=True))
    out = _prepare_out(out_dir, force)

    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo", "ps"):
        import matplotlib.pyplot as plt

        plt.switch_backend("Agg")

    s = DemoSettings.preset(quick)
    seed_list = tuple(range(seed, seed + seeds))
    ctx = blas_threads(threads)
    thread_text = describe_threads(threads)
    if command is None:
        command = f"hdetach-np demo --out {out} --seed {seed} --seeds {seeds} --threads {threads}" + (" --quick" if quick else "")
    t_all = time.perf_counter()
    with ctx:
        say(f"stage 1/2: suppression sweep (T={s.sup_T}, N={s.sup_N}, H={s.sup_H}, {s.sup_nscales} scales, {seeds} seeds)")
        sup_res, sup_cfg, sup_nums, sup_secs = _suppression_stage(s, seed_list, show)
        say(f"stage 2/2: copying T={s.T}, vanilla and h-detach p={s.p:g}, {seeds} seeds each")
        t0 = time.perf_counter()
        cop, cop_cfgs, cop_cmds, histories = _copying_stage(s, seed_list, out, show, say)
        cop_secs = time.perf_counter() - t0
    t0 = time.perf_counter()
    files = {"config": out / "config.json", "results": out / "results.json", "summary": out / "summary.md",
             "suppression_png": out / "suppression.png", "copying_png": out / "copying.png"}
    _suppression_figure(sup_res, sup_cfg, files["suppression_png"])
    _copying_figure(histories, s, seeds, files["copying_png"])

    sup_dict = sup_cfg.as_dict()
    sup_nums["config"] = sup_dict
    sup_nums["command_python"] = _suppression_python(sup_dict)
    if seed_list == tuple(range(seeds)):  # the analysis script's seeds are 0 .. seeds-1
        sup_nums["command_analysis"] = (f"python analysis/suppression.py --out {out / 'suppression-analysis'} "
                                        f"--seeds {seeds} --T {s.sup_T} --N {s.sup_N} --H {s.sup_H} "
                                        f"--smin {s.sup_smin:g} --smax {s.sup_smax:g} --nscales {s.sup_nscales}")
    settings = {k: getattr(s, k) for k in s.__dataclass_fields__}
    config = {"kind": MARKER, "command": command, "quick": quick, "seed": seed, "seeds": list(seed_list),
              "threads": threads, "settings": settings, "suppression": sup_dict, "copying_runs": cop_cfgs}
    runs.write_json(files["config"], config)
    results = {"command": command, "quick": quick, "seed": seed, "blas_threads": thread_text, "settings": settings,
               "versions": _versions(), "suppression": sup_nums,
               "copying": {"variants": cop, "commands": cop_cmds},
               "seconds": {"suppression": sup_secs, "copying": cop_secs}}
    results["seconds"]["figures"] = time.perf_counter() - t0
    results["seconds"]["total"] = time.perf_counter() - t_all
    runs.write_json(files["results"], results)
    files["summary"].write_text(_summary_md(results))
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
        help="run the suppression sweep and a short copying comparison (a few minutes), write figures and a summary",
        description="On built-in synthetic data (no download): (1) the cell-path share of the LSTM gradient "
        "against the scale of the recurrent weights, plain and expected h-detach; (2) the copying task at a small "
        "delay, vanilla against h-detach p=0.5, the same seeds for both, with the cell/h gradient norms during "
        "training. Writes suppression.png, copying.png, summary.md (numbers, configs, wall times, versions, "
        "commands that reproduce each part), results.json, config.json and the training run folders. "
        "About 1.5 minutes of CPU time on one core (4 minutes of wall time on a busy 2-core machine); "
        "--quick takes seconds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", metavar="DIR", default="runs/demo", help="run folder to create (must be new or empty)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for tests (the numbers mean little)")
    p.add_argument("--seed", type=int, default=0, help="first seed; everything is determined by it")
    p.add_argument("--seeds", type=int, default=3, help="seeds per copying variant and in the suppression sweep")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="BLAS threads, fixed so that two machines with the same numpy give the same numbers; "
                   "0 leaves BLAS as it is")
    p.add_argument("--force", action="store_true", help="replace --out if it holds an earlier demo")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    argv = ["hdetach-np", "demo", "--out", args.out, "--seed", str(args.seed), "--seeds", str(args.seeds),
            "--threads", str(args.threads)] + (["--quick"] if args.quick else [])
    from ..training.model import TrainingDiverged

    try:
        res = run_demo(args.out, quick=args.quick, seed=args.seed, seeds=args.seeds, threads=args.threads,
                       force=args.force, command=" ".join(argv))
    except TrainingDiverged as err:
        print(f"hdetach-np demo: error: {err}", file=sys.stderr)
        return 1
    r = res.results
    print(f"wrote {res.out_dir}/: summary.md, suppression.png, copying.png, results.json, config.json, runs/ "
          f"({r['seconds']['total']:.0f} s)")
    for name, v in r["copying"]["variants"].items():
        print(f"  copying T={r['settings']['T']}, {name}: final validation accuracy {v['final_valid_accuracy_mean']:.3f} "
              f"(mean of {len(v['runs'])} seeds)")
    return 0


__all__ = ["DemoResult", "DemoSettings", "run_demo", "train_command"]
