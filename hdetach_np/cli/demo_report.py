"""The report of `hdetach-np demo`: its two figures and summary.md, from the numbers of results.json.

    suppression_figure(res, cfg, "suppression.png")    # cell-path share against the weight scale
    copying_figure(results["copying"], settings, "copying.png")
    summary_markdown(results)                          # the text of summary.md
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..training.config import TrainConfig
from ..training.report import markdown_table
from .train import flag

TRANSFER_SEED = 555  # the seed of the fresh transfer sequences (as the original transfer script)
SWEEP = "runs"  # the sweep folder inside the demo's run folder


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def suppression_figure(res, cfg, path: Path):
    """Cell-path share against the weight scale (left) and the norms of the parts (right)."""
    import matplotlib.pyplot as plt

    from ..paths.plots import plot_norms_vs_scale, plot_ratio_vs_scale

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    plot_ratio_vs_scale(axes[0], res, "cell/total", "all")
    axes[0].set_title("cell-path share of the LSTM gradient", fontsize="medium")
    axes[0].set_ylim(max(1e-30, axes[0].get_ylim()[0]), 2)
    plot_norms_vs_scale(axes[1], res, "all", "plain")
    axes[1].set_title("norms of the parts (plain gradient, geometric mean over seeds)", fontsize="medium")
    fig.suptitle(f"Suppression of the cell path as Wh grows: copying batch, delay {cfg.delay} "
                 f"(sequences of {cfg.delay + 20}), "
                 f"N={cfg.N}, H={cfg.H}, {len(cfg.seeds)} seeds (line: mean, band: min-max)", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_transfer_bars(ax, delays, variants: dict, colors: dict):
    """Grouped bars of transfer accuracy: one group per delay, one bar per variant (mean over its
    runs, a dot per run). variants: {name: {"runs": [{"transfer_accuracy": [...]}]}}."""
    width = 0.8 / len(variants)
    x = np.arange(len(delays))
    for j, (name, v) in enumerate(variants.items()):
        acc = np.array([r["transfer_accuracy"] for r in v["runs"]])  # (runs, delays)
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(pos, acc.mean(axis=0), width, color=colors[name], alpha=0.75, label=name)
        for row in acc:
            ax.plot(pos, row, "o", color="black", markersize=3)
        for px, a in zip(pos, acc.mean(axis=0)):
            ax.annotate(f"{a:.2f}", (px, a), ha="center", va="bottom", fontsize="small")
    ax.set_xticks(x, [f"delay {d}" for d in delays])
    ax.set_ylim(0, 1.08)
    ax.axhline(1 / 8, color="gray", ls=":", lw=1)
    ax.set_ylabel("accuracy on the 10 recalled tokens")
    return ax


def copying_figure(cop: dict, s, path: Path):
    """The training figure: validation accuracy of every run, and the transfer bars. s: DemoSettings."""
    import matplotlib.pyplot as plt

    colors = dict(zip(cop["variants"], ("black", "tab:green")))
    fig, (a_acc, a_tr) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.4, 1]})
    for name, v in cop["variants"].items():
        for j, r in enumerate(v["runs"]):
            a_acc.plot(r["valid_iterations"], r["valid_accuracy"], color=colors[name], lw=1.2, alpha=0.85,
                       label=name if j == 0 else None)
    a_acc.axhline(1 / 8, color="gray", ls=":", lw=1, label="chance (1/8)")
    a_acc.set(xlabel="iteration", ylabel="validation accuracy", ylim=(0, 1.02))
    n = len(next(iter(cop["variants"].values()))["runs"])
    seeds = f"{n} seed{'s' if n > 1 else ''} each, same seeds"
    a_acc.set_title(f"validation accuracy at delay {s.delay} ({seeds})", fontsize="medium")
    plot_transfer_bars(a_tr, cop["delays"], cop["variants"], colors)
    a_tr.set_title(f"best model at 1x, 2x, 4x the delay ({s.transfer_n} fresh sequences)", fontsize="medium")
    for ax in (a_acc, a_tr):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    fig.suptitle(f"Copying, delay {s.delay}, {'one-hot' if s.one_hot else 'scalar'} input, hidden {s.hidden}, "
                 f"batch {s.batch_size}, Adam lr {s.lr:g}, clipping 1, {s.epochs * s.iterations_per_epoch} iterations",
                 fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# summary.md
# ---------------------------------------------------------------------------------------------


def fmt(x: float) -> str:
    """The one number format of summary.md (4 significant digits)."""
    return f"{x:.4g}"


def summary_markdown(r: dict) -> str:
    """The text of summary.md from the results dict `r` (the content of results.json)."""
    sup, cop, sec, cmp_ = r["suppression"], r["copying"], r["seconds"], r["comparison"]
    sc, s = sup["config"], r["settings"]
    L = [f"# hdetach-np demo (seed {r['seed']}{', quick' if r['quick'] else ''})", "",
         f"Command: `{r['command']}`  ",
         f"Wall time: {fmt(sec['total'])} s in all (suppression {fmt(sec['suppression'])} s, training "
         f"{fmt(sec['training'])} s, transfer {fmt(sec['transfer'])} s, figures and files {fmt(sec['figures'])} s); "
         f"one BLAS thread per process, {r['workers']} training runs at a time.  ",
         "Versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + ".", "",
         "## 1. Suppression of the cell path by large recurrent weights", "", "![suppression](suppression.png)", "",
         f"One batch of the copying task (delay {sc['delay']}, sequences of {sc['delay'] + 20} steps, loss at every "
         f"step), N = {sc['N']}, H = {sc['H']}, original initialisation, float64, "
         f"seeds {', '.join(map(str, sc['seeds']))}; "
         "the recurrent weights Wh multiplied by s. Mean over seeds of ||g_cell|| / ||g_total|| for the LSTM "
         "parameters (Wx, Wh, b); 'expected h-detach' is the exact expected gradient g(1 - p) over masks.", ""]
    header = ["s"] + [fmt(x) for x in sup["scales"]]
    L.append(markdown_table(header, [["plain gradient" if v == "plain" else f"expected h-detach {v}"]
                                     + [fmt(x) for x in sup["cell_share_mean"][v]] for v in sup["variants"]]).rstrip())
    geo = sup["norm_geomean_plain"]
    L += ["", "Geometric mean over seeds of the norms (plain gradient):", "",
          markdown_table(header, [[f"||g_{q}||"] + [fmt(x) for x in geo[q]] for q in ("total", "cell", "h")]).rstrip(),
          "", "Reproduce:", "", "```bash", sup["command_python"], "```", ""]
    its = s["epochs"] * s["iterations_per_epoch"]
    L += [f"## 2. Copying: vanilla against h-detach p = {s['p']:g}", "", "![copying](copying.png)", "",
          f"Delay {s['delay']} (sequences of {s['delay'] + 20} steps; the 10 tokens to recall take values 1-8, chance "
          f"accuracy 1/8), {'one-hot' if s['one_hot'] else 'scalar'} input, hidden {s['hidden']}, batch "
          f"{s['batch_size']}, Adam lr {s['lr']:g}, clipping at 1, {its} iterations, {s['n_train']} training and "
          f"{s['n_valid']} validation sequences. Both variants use the same seeds, hence the same data and "
          f"initialisation. Transfer: each run's best model (by validation accuracy) on {s['transfer_n']} fresh "
          f"sequences per delay (generator seeded {TRANSFER_SEED}).", ""]
    delays = cop["delays"]
    L.append(markdown_table(
        ["run", "seed", "valid accuracy (end)", "best valid accuracy (iteration)"]
        + [f"transfer delay {d} ({d // s['delay']}x)" for d in delays] + ["training wall time (s)"],
        [[name, run["seed"], fmt(run["final_valid_accuracy"]),
          f"{fmt(run['best_valid_accuracy'])} ({run['best_iteration']})"]
         + [fmt(a) for a in run["transfer_accuracy"]] + [fmt(run["seconds"])]
         for name, v in cop["variants"].items() for run in v["runs"]]).rstrip())
    names = list(cop["variants"])
    diff = cmp_["transfer_difference"]
    word = lambda d: f"{fmt(abs(d))} {'above' if d > 0 else 'below'}" if d != 0 else "equal to"
    n = len(cop["variants"][names[0]]["runs"])
    L += ["", f"In this run, over {n} seed{'s' if n > 1 else ''} per variant (means): from iteration "
          f"{cmp_['from_iteration']} on, {names[1]}'s validation accuracy is above {names[0]}'s at "
          f"{cmp_['hdetach_ahead']} of {cmp_['evaluations']} evaluations; at the end it is "
          f"{word(cmp_['final_valid_difference'])} {names[0]}'s. Transfer accuracy of {names[1]} is "
          + "; ".join(f"{word(d)} {names[0]}'s at delay {t}" for d, t in zip(diff, delays)) + ".",
          "", "One seed pair shows one outcome: across seeds the runs spread widely (see the Results "
          "pages for 5 seeds per variant).", "",
          f"Training wall time: {fmt(sec['training'])} s. "
          f"Reproduce the training runs (the sweep folder is `{SWEEP}/`):",
          "", "```bash", cop["sweep_command"], "```", "", "or one run at a time:", "", "```bash"]
    L += list(cop["train_commands"].values()) + ["```", "", "and the transfer evaluation:", "", "```bash"]
    L += cop["transfer_commands"] + ["```", ""]
    L += ["The numbers above are in `results.json`; the configs in `config.json`.", ""]
    return "\n".join(L)


__all__ = ["copying_figure", "fmt", "plot_transfer_bars", "summary_markdown", "suppression_figure"]


# ---------------------------------------------------------------------------------------------
# Commands that reproduce each part
# ---------------------------------------------------------------------------------------------


def config_flags(cfg: dict, skip=()) -> list[str]:
    """The flags of the keys of `cfg` that differ from its task's defaults."""
    base = TrainConfig.from_dict({"task": cfg["task"]})
    parts = []
    for k in TrainConfig.keys():
        v = cfg[k]
        if k == "task" or k in skip or v == getattr(base, k):
            continue
        if isinstance(v, bool):
            parts.append(flag(k) if v else "--no-" + flag(k)[2:])
        else:
            parts += [flag(k), f"{v:g}" if isinstance(v, float) else str(v)]
    return parts


def train_command(cfg: TrainConfig, out) -> str:
    """The `hdetach-np train` command line that gives the run of `cfg`."""
    return " ".join(["hdetach-np", "train", cfg.task] + config_flags(cfg.to_dict())
                    + ["--threads", "1", "--out", str(out)])


def sweep_command(base: dict, ps, seeds, out) -> str:
    """The `hdetach-np sweep` command line that trains the demo's runs (2 at a time)."""
    cfg = TrainConfig.from_dict(base).to_dict()
    return " ".join(["hdetach-np", "sweep", cfg["task"]] + config_flags(cfg, skip=("p", "seed"))
                    + ["--grid", "p=" + ",".join(f"{p:g}" for p in ps), "--seeds", ",".join(map(str, seeds)),
                       "--workers", "2", "--out", str(out)])


def suppression_python(sup: dict) -> str:
    args = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in sup.items())
    return ("python -c \"import hdetach_np as hd; r = hd.suppression_sweep(hd.SuppressionConfig("
            + args + ")); print(r.summary('cell/total', 'all'))\"")


def comparison(cop: dict) -> dict:
    """What the run shows: h-detach minus vanilla, computed from the numbers (never assumed)."""
    van, hd = list(cop["variants"].values())[:2]
    it = np.array(van["runs"][0]["valid_iterations"])
    mean = lambda v: np.mean([r["valid_accuracy"] for r in v["runs"]], axis=0)
    late = it >= (4000 if it[-1] > 4000 else it[-1] // 2)  # the Results see the effect from about iteration 4,000
    ahead = int(np.sum(mean(hd)[late] > mean(van)[late]))
    diff = (np.array(hd["transfer_accuracy_mean"]) - np.array(van["transfer_accuracy_mean"])).tolist()
    return {"from_iteration": int(it[late][0]), "evaluations": int(late.sum()), "hdetach_ahead": ahead,
            "final_valid_difference": hd["final_valid_accuracy_mean"] - van["final_valid_accuracy_mean"],
            "transfer_difference": diff}
