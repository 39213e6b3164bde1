"""Copying convergence: vanilla LSTM vs h-detach p=0.25 and p=0.5, several seeds.

For each variant and seed, an LSTM is trained on the scaled-down copying task of
`COPYING` in analysis/_common.py (T=10, hidden 128, one-hot input, Adam lr 3e-3, batch 100, clipping
1.0, 100,000 training sequences, 15,000 iterations, validation on 500 sequences every 100
iterations), sized so that the 15 runs take about an hour on 2 cores. Reports the first
iteration at which the validation accuracy reaches 50%, 90% and 99% per seed, their median and
range, and the curves. The same runs log the cell-path / h-path gradient norms every 100 iterations,
which analysis/gradient_components.py plots, and give the models of analysis/transfer_copying.py.

Writes into --out: copying_convergence.png, copying_convergence.json, copying_convergence.md.
Run folders go to --runs (default runs/experiments); complete runs there are reused.

Run from the repository root (after `pip install -e .`):

    python analysis/copying_convergence.py --out docs/figures/experiments     # full: 50 min measured, 2 processes
    python analysis/copying_convergence.py --out /tmp/quick --quick           # seconds
"""

from __future__ import annotations

import time


def build_parser():
    from _common import base_parser

    p = base_parser(__doc__)
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0 .. seeds-1)")
    p.add_argument("--ps", type=float, nargs="+", default=[0.25, 0.5], help="h-detach probabilities (besides vanilla)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the COPYING setup's)")
    return p


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import _common as ex
    import matplotlib.pyplot as plt

    args = build_parser().parse_args(argv)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    t0 = time.perf_counter()
    base = dict(ex.COPYING_QUICK if args.quick else ex.COPYING)
    if args.lr is not None:
        base["lr"] = args.lr
    seeds = range(2 if args.quick else args.seeds)
    variants = ex.copying_variants(args.ps)
    jobs = ex.make_jobs(base, variants, seeds)
    groups = ex.train_groups(jobs, ex.runs_dir(args), workers=args.workers)
    summary = ex.convergence_summary(groups)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    ex.plot_accuracy_groups(axes[0], groups)
    axes[0].set_title("validation accuracy (thin: seeds, thick: median)", fontsize="medium")
    ex.plot_loss_groups(axes[1], groups, smooth=5 if args.quick else 50)
    axes[1].set_title("training loss", fontsize="medium")
    fig.suptitle(f"Copying, delay {base['delay']}, hidden {base['hidden']}, one-hot input, Adam lr {base['lr']:g}, "
                 f"batch {base['batch_size']}, clip {base['clip']:g}", fontsize="medium")
    fig.tight_layout()

    cmd = ex.command_line("copying_convergence.py", argv)
    table = ex.convergence_table(summary) + "\nPer seed:\n\n" + ex.per_seed_table(summary)
    data = {"command": cmd, "config": base, "seeds": list(seeds), "variants": variants, "summary": summary,
            "train_seconds_total": round(sum(s["train_seconds_total"] for s in summary.values()), 1),
            "wall_seconds_this_call": round(time.perf_counter() - t0, 1)}
    ex.write_outputs(args.out, "copying_convergence", data, f"Command: `{cmd}`\n\n" + table, fig)
    print(ex.convergence_table(summary))
    return data


if __name__ == "__main__":
    import _common

    _common.script_main(main)
