"""The suppression of the cell path by large weights: the weight-scale sweep.

For several seeds, an LSTM (hidden 128, original initialisation) on a batch of the copying task
(delay 100, loss at every step) has its recurrent weights Wh, or all its parameters, multiplied
by a scale s on a log grid. The gradient is split exactly into its cell-path and h-path parts, for
the plain gradient and for the expected h-detach gradient g(1 - p) at p = 0.25 and 0.5.

Writes into --out: suppression.png (figure) and suppression.json (config, raw norms, ratio
summaries over seeds per parameter group and gate).

Run from the repository root (after `pip install -e .`):

    python analysis/suppression.py --out docs/figures            # full: about 2 minutes
    python analysis/suppression.py --out /tmp/quick --quick      # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def build_parser():
    from _common import add_delay_option

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, finishes in seconds")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0 .. seeds-1)")
    add_delay_option(p)
    p.add_argument("--N", type=int, default=50, help="batch size")
    p.add_argument("--H", type=int, default=128, help="hidden size")
    p.add_argument("--smin", type=float, default=0.25, help="smallest weight scale")
    p.add_argument("--smax", type=float, default=32.0, help="largest weight scale")
    p.add_argument("--nscales", type=int, default=15, help="number of scales on the log grid")
    return p


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hdetach_np.paths.plots import plot_group_ratios_vs_scale, plot_norms_vs_scale, plot_ratio_vs_scale
    from hdetach_np.paths.suppression import SuppressionConfig, suppression_sweep

    args = build_parser().parse_args(argv)
    if args.quick:
        args.seeds, args.delay, args.N, args.H, args.nscales = 2, 10, 8, 16, 5
    if args.smin <= 0 or args.smax <= args.smin:
        raise ValueError(f"expected 0 < --smin < --smax, got {args.smin} and {args.smax}")
    scales = tuple(np.geomspace(args.smin, args.smax, args.nscales).round(6))
    common = dict(scales=scales, seeds=tuple(range(args.seeds)), task="copying", delay=args.delay, N=args.N,
                  H=args.H, ps=(0.25, 0.5), dtype="float64")
    os.makedirs(args.out, exist_ok=True)
    given = argv if argv is not None else sys.argv[1:]
    results, out = {}, {"command": "python analysis/suppression.py " + " ".join(given)}
    for weights in ("Wh", "all"):
        t0 = time.perf_counter()
        results[weights] = suppression_sweep(SuppressionConfig(weights=weights, **common))
        out[weights] = results[weights].as_dict(digits=4)
        out[weights]["seconds"] = round(time.perf_counter() - t0, 2)

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.6))
    axes = axes.ravel()
    plot_ratio_vs_scale(axes[0], results["Wh"], "cell/total", "all")
    axes[0].set_title("Wh scaled: cell share of the LSTM gradient", fontsize="medium")
    plot_ratio_vs_scale(axes[1], results["all"], "cell/total", "all")
    axes[1].set_title("Wx, Wh, b scaled: cell share of the LSTM gradient", fontsize="medium")
    plot_group_ratios_vs_scale(axes[2], results["Wh"], ("Wx", "Wh.i", "Wh.f", "Wh.o", "Wh.g", "b"))
    axes[2].set_title("Wh scaled: cell share per group and gate (plain gradient)", fontsize="medium")
    plot_norms_vs_scale(axes[3], results["Wh"], "all")
    axes[3].set_title("Wh scaled: norms of the parts (plain gradient, geometric mean)", fontsize="medium")
    for ax in axes[:3]:
        ax.set_ylim(1e-12, 3)
    c = common
    fig.suptitle(f"Copying task, delay={c['delay']}, N={c['N']}, H={c['H']}, {args.seeds} seeds "
                 "(line: mean, band: min-max)", fontsize="medium")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "suppression.png"), dpi=100)
    plt.close(fig)
    with open(os.path.join(args.out, "suppression.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
    for weights in ("Wh", "all"):
        summ = results[weights].summary("cell/total", "all")
        print(f"weights={weights}: mean ||g_cell||/||g_total|| (all LSTM parameters) over {args.seeds} seeds")
        print("  scale    " + "  ".join(f"{v:>10}" for v in summ))
        for m, s in enumerate(scales):
            print(f"  {s:<8.4g} " + "  ".join(f"{summ[v]['mean'][m]:10.3g}" for v in summ))
    return out


if __name__ == "__main__":
    import _common

    _common.script_main(main)
