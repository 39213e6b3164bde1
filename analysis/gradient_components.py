"""Gradient components during training: the cell-path and h-path parts of the gradient, vanilla vs h-detach.

Uses the runs of analysis/copying_convergence.py (the same configs, so complete runs in --runs are
reused, otherwise trained): every 100 iterations the engine splits the full, unmasked LSTM
gradient of the current minibatch at the current parameters exactly into its cell-path part
(every h_{t-1} -> gates_t edge cut) and its h-path part (the rest). Plots, per variant and next to
the validation accuracy, the norms ||g_cell|| and ||g_h|| of all LSTM parameters and the cell share
||g_cell|| / ||g_total|| (medians over seeds, band min-max).

Writes into --out: gradient_components.png, gradient_components.json, gradient_components.md.

Run from the repository root (after `pip install -e .`):

    python analysis/gradient_components.py --out docs/figures/experiments   # reuses the convergence runs
    python analysis/gradient_components.py --out /tmp/quick --quick         # seconds
"""

from __future__ import annotations

import time

import numpy as np


def build_parser():
    from _common import base_parser

    p = base_parser(__doc__)
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0 .. seeds-1)")
    p.add_argument("--ps", type=float, nargs="+", default=[0.25, 0.5], help="h-detach probabilities (besides vanilla)")
    p.add_argument("--group", default="all", help="parameter group of the norms (all, Wh, Wx, b, Wh.f, ...)")
    return p


def path_series(history: list, group: str = "all"):
    """(iterations, ||g_cell||, ||g_h||, ||g_total||) of the path-norm records of one run."""
    recs = [r["paths"] for r in history if "paths" in r]
    it = np.array([r["iteration"] for r in recs], dtype=float)
    get = lambda part: np.array([r["norms"][part][group] for r in recs], dtype=float)  # noqa: E731
    return it, get("cell"), get("h"), get("total")


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import _common as ex
    import matplotlib.pyplot as plt

    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    base = dict(ex.COPYING_QUICK if args.quick else ex.COPYING)
    seeds = range(2 if args.quick else args.seeds)
    variants = ex.copying_variants(args.ps)
    jobs = ex.make_jobs(base, variants, seeds)
    groups = ex.train_groups(jobs, ex.runs_dir(args), workers=args.workers)

    series = {}
    for tag, rs in groups.items():
        ss = [path_series(r["history"], args.group) for r in rs]
        n = min(len(s[0]) for s in ss)
        if n == 0:
            raise ValueError(f"the runs of {tag!r} have no gradient-path records (log_paths_every is 0)")
        it = ss[0][0][:n]
        cell, h, tot = (np.stack([s[k][:n] for s in ss]) for k in (1, 2, 3))
        share = cell / tot
        series[tag] = {"iteration": it, "cell": cell, "h": h, "total": tot, "share": share}

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ex.plot_accuracy_groups(axes[0], groups)
    axes[0].set_title("validation accuracy", fontsize="medium")
    for tag, s in series.items():
        (line,) = axes[1].plot(s["iteration"], np.median(s["cell"], 0), "-", label=f"{tag}: ||g_cell||")
        axes[1].plot(s["iteration"], np.median(s["h"], 0), "--", color=line.get_color(), label=f"{tag}: ||g_h||")
        axes[2].plot(s["iteration"], np.median(s["share"], 0), color=line.get_color(), label=tag)
        axes[2].fill_between(s["iteration"], s["share"].min(0), s["share"].max(0), color=line.get_color(), alpha=0.15)
    axes[1].set_yscale("log")
    axes[1].set_ylabel(f"gradient norm ({args.group}), median over seeds")
    axes[1].set_title("cell-path (solid) and h-path (dashed) parts", fontsize="medium")
    axes[2].set_ylabel("||g_cell|| / ||g_total||")
    axes[2].set_title("cell share (median, band: min-max over seeds)", fontsize="medium")
    for ax in axes[1:]:
        ax.set_xlabel("iteration")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.suptitle(f"Copying, delay {base['delay']}, hidden {base['hidden']}: split of the full (unmasked) "
                 f"minibatch gradient during training, {len(seeds)} seeds", fontsize="medium")
    fig.tight_layout()

    # table at a few iterations spread over the run
    its = series[next(iter(series))]["iteration"]
    picks = sorted({int(its[k]) for k in np.unique(np.geomspace(1, len(its), 6).astype(int) - 1)})
    header = ["variant", "iteration", "valid acc. (median)", "||g_cell|| (median)", "||g_h|| (median)",
              "cell share median (min-max)"]
    rows = []
    summary = {}
    for tag, s in series.items():
        band = ex.band_curve([r["history"] for r in groups[tag]])
        acc_it, acc_med = band["iteration"], band["median"]
        summary[tag] = []
        for it in picks:
            k = int(np.searchsorted(s["iteration"], it))
            a = int(np.searchsorted(acc_it, it))
            acc = float(acc_med[a]) if a < len(acc_it) and acc_it[a] == it else None
            row = {"iteration": it, "valid_accuracy_median": acc, "cell_median": float(np.median(s["cell"][:, k])),
                   "h_median": float(np.median(s["h"][:, k])), "share_median": float(np.median(s["share"][:, k])),
                   "share_min": float(s["share"][:, k].min()), "share_max": float(s["share"][:, k].max())}
            summary[tag].append(row)
            rows.append([tag, it, ex.fmt(acc, 3), f"{row['cell_median']:.3g}", f"{row['h_median']:.3g}",
                         f"{row['share_median']:.3f} ({row['share_min']:.3f}-{row['share_max']:.3f})"])
    cmd = ex.command_line("gradient_components.py", argv)
    table = ex.markdown_table(header, rows) + (
        "\nNorms of all LSTM parameters (Wx, Wh, b) of the full, unmasked minibatch gradient; the cell part cuts "
        "every h-edge, the h part is the rest (total = cell + h as vectors, so the share can exceed 1).\n")
    data = {"command": cmd, "config": base, "group": args.group, "seeds": list(seeds), "summary": summary,
            "series": {tag: {k: np.round(v, 6).tolist() for k, v in s.items()} for tag, s in series.items()},
            "wall_seconds_this_call": round(time.perf_counter() - t0, 1)}
    ex.write_outputs(args.out, "gradient_components", data, f"Command: `{cmd}`\n\n" + table, fig)
    print(table)
    return data


if __name__ == "__main__":
    import _common

    _common.script_main(main)
