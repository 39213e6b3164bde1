"""Robustness to the learning rate: copying convergence of vanilla vs h-detach at several learning rates.

The copying setup of `COPYING` in analysis/_common.py (T=10, hidden 128, one-hot input, Adam, batch
100, clipping 1.0) at each learning rate of --lrs (default: the paper's 5e-4 and 1e-3, and the
setup's 3e-3), vanilla and h-detach at each of --ps, --seeds seeds, for --iterations iterations.
At the setup's own learning rate the runs are those of copying_convergence.py (reused, cut at
--iterations: with detaching in every iteration, the first K iterations of a longer run are
exactly a K-iteration run).

Writes into --out: lr_robustness.png, lr_robustness.json, lr_robustness.md.

Run from the repository root (after `pip install -e .`):

    # 12 new runs, 20 min measured
    python analysis/lr_robustness.py --out docs/figures/experiments --seeds 3 --iterations 8000
    python analysis/lr_robustness.py --out /tmp/quick --quick      # seconds
"""

from __future__ import annotations

import time


def build_parser():
    from _common import add_iterations_option, base_parser

    p = base_parser(__doc__)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0 .. seeds-1)")
    p.add_argument("--ps", type=float, nargs="+", default=[0.5], help="h-detach probabilities (besides vanilla)")
    p.add_argument("--lrs", type=float, nargs="+", default=None,
                   help="Adam learning rates (default: the paper's 5e-4 and 1e-3, and the COPYING setup's)")
    return add_iterations_option(p)


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import _common as ex
    import matplotlib.pyplot as plt

    args = build_parser().parse_args(argv)
    full = dict(ex.COPYING_QUICK if args.quick else ex.COPYING)
    lrs = args.lrs if args.lrs is not None else [5e-4, 1e-3, full["lr"]]
    if any(lr <= 0 for lr in lrs):
        raise ValueError(f"every --lrs value must be > 0, got {lrs}")
    t0 = time.perf_counter()
    base = ex.shortened(full, None if args.quick else args.iterations)
    seeds = range(2 if args.quick else args.seeds)
    variants = ex.copying_variants(args.ps)
    jobs, refs = {}, []
    for lr in lrs:
        # at the setup's own learning rate the convergence runs are reused (cut at --iterations)
        own = lr == full["lr"]
        for tag, js in ex.make_jobs(dict(full if own else base, lr=lr), variants, seeds).items():
            jobs[f"lr {lr:g}, {tag}"] = js
            if own:
                refs.append(f"lr {lr:g}, {tag}")
    groups = ex.train_groups(jobs, ex.runs_dir(args), workers=args.workers)
    ex.cut_histories(groups, refs, base["epochs"] * base["iterations_per_epoch"])
    summary = ex.convergence_summary(groups)

    fig, axes = plt.subplots(1, len(lrs), figsize=(5.5 * len(lrs), 4.4), squeeze=False)
    for ax, lr in zip(axes[0], lrs):
        ex.plot_accuracy_groups(ax, {t.split(", ", 1)[1]: g for t, g in groups.items() if t.startswith(f"lr {lr:g},")})
        ax.set_title(f"Adam lr {lr:g}", fontsize="medium")
    fig.suptitle(f"Copying, delay {base['delay']}, hidden {base['hidden']}, one-hot input, {len(seeds)} seeds",
                 fontsize="medium")
    fig.tight_layout()

    cmd = ex.command_line("lr_robustness.py", argv)
    table = ex.convergence_table(summary) + "\nPer seed:\n\n" + ex.per_seed_table(summary)
    data = {"command": cmd, "config": base, "lrs": lrs, "seeds": list(seeds), "summary": summary,
            "train_seconds_total": round(sum(s["train_seconds_total"] for s in summary.values()), 1),
            "wall_seconds_this_call": round(time.perf_counter() - t0, 1)}
    ex.write_outputs(args.out, "lr_robustness", data, f"Command: `{cmd}`\n\n" + table, fig)
    print(ex.convergence_table(summary))
    return data


if __name__ == "__main__":
    import _common

    _common.script_main(main)
