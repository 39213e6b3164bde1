"""Ablations on copying: c-detach (cutting the cell edge instead of the h edge) and no gradient clipping.

Variants, on the copying setup of `COPYING` in analysis/_common.py (T=10, hidden 128, one-hot input,
Adam lr 3e-3, batch 100) for --iterations iterations:
- c-detach p=0.5: the cell edge c_{t-1} -> c_t is cut at each step with probability 0.5;
- vanilla and h-detach p=0.5 without gradient clipping (clip 0);
- as references, vanilla and h-detach p=0.5 with clipping 1.0: the runs of copying_convergence.py
  (15,000 iterations, reused or trained), cut at --iterations. With detaching in every iteration
  (anneal_p 0) the first K iterations of a longer run are exactly a K-iteration run (same data,
  initialisation, minibatches and masks), so the cut is the shorter run.

Writes into --out: ablations.png, ablations.json, ablations.md.

Run from the repository root (after `pip install -e .`):

    python analysis/ablations.py --out docs/figures/experiments --seeds 3 --iterations 6000   # 9 runs, 12 min measured
    python analysis/ablations.py --out /tmp/quick --quick           # seconds
"""

from __future__ import annotations

import time


def build_parser():
    from _common import add_iterations_option, base_parser

    p = base_parser(__doc__)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0 .. seeds-1)")
    p.add_argument("--p", type=float, default=0.5, help="detach probability of the c-detach and h-detach variants")
    return add_iterations_option(p)


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import _common as ex
    import matplotlib.pyplot as plt

    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    full = dict(ex.COPYING_QUICK if args.quick else ex.COPYING)
    base = ex.shortened(full, None if args.quick else args.iterations)
    seeds = range(2 if args.quick else args.seeds)
    refs = ex.make_jobs(full, ex.copying_variants([args.p]), seeds)
    variants = dict([ex.copying_variant(args.p, detach="c"),
                     ex.copying_variant(0.0, clip=0.0), ex.copying_variant(args.p, clip=0.0)])
    jobs = dict(refs, **ex.make_jobs(base, variants, seeds))
    groups = ex.train_groups(jobs, ex.runs_dir(args), workers=args.workers)
    last = base["epochs"] * base["iterations_per_epoch"]
    ex.cut_histories(groups, refs, last)  # the references, cut at the ablation runs' length
    summary = ex.convergence_summary(groups)
    for tag, rs in groups.items():  # clipping statistics: how often the norm exceeded 1, largest norm
        norms = [r2["grad_norm"] for r in rs for r2 in r["history"] if "grad_norm" in r2]
        summary[tag]["max_grad_norm"] = max(norms) if norms else None
        summary[tag]["fraction_over_1"] = sum(n > 1 for n in norms) / len(norms) if norms else None

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    ex.plot_accuracy_groups(axes[0], {t: groups[t] for t in list(groups)[:3]})
    axes[0].set_title(f"c-detach vs h-detach (p={args.p:g}), with clipping", fontsize="medium")
    ex.plot_accuracy_groups(axes[1], {t: groups[t] for t in list(groups)[:2] + list(groups)[3:]})
    axes[1].set_title("with and without gradient clipping", fontsize="medium")
    fig.suptitle(f"Copying, delay {base['delay']}, hidden {base['hidden']}, one-hot input, Adam lr {base['lr']:g}, "
                 f"{len(seeds)} seeds", fontsize="medium")
    fig.tight_layout()

    cmd = ex.command_line("ablations.py", argv)
    extra = ex.markdown_table(["variant", "largest gradient norm", "fraction of iterations with norm > 1"],
                              [[t, ex.fmt(s["max_grad_norm"], 2), ex.fmt(s["fraction_over_1"], 3)]
                               for t, s in summary.items()])
    table = ex.convergence_table(summary) + "\nGradient norms before clipping (all seeds):\n\n" + extra + \
        "\nPer seed:\n\n" + ex.per_seed_table(summary)
    data = {"command": cmd, "config": base, "seeds": list(seeds), "variants": variants, "summary": summary,
            "train_seconds_total": round(sum(s["train_seconds_total"] for s in summary.values()), 1),
            "wall_seconds_this_call": round(time.perf_counter() - t0, 1)}
    ex.write_outputs(args.out, "ablations", data, f"Command: `{cmd}`\n\n" + table, fig)
    print(table)
    return data


if __name__ == "__main__":
    import _common

    _common.script_main(main)
