"""Transfer copying: models trained at delay T evaluated at 1x, 2x, 4x, 10x and 20x T.

Takes the runs of analysis/copying_convergence.py (trained first if they are not complete in
--runs), loads each run's best model (best validation accuracy) and evaluates it with
`hdetach_np.training.transfer_copying` on --n fresh sequences per delay (generator seeded 555, as the
original transfer script; the same `hdetach-np transfer RUN --delays ...` does for one run).

Writes into --out: transfer_copying.png, transfer_copying.json, transfer_copying.md.

Run from the repository root (after `pip install -e .`):

    python analysis/transfer_copying.py --out docs/figures/experiments     # reuses the convergence runs
    python analysis/transfer_copying.py --out /tmp/quick --quick           # seconds
"""

from __future__ import annotations

import time

import numpy as np

FACTORS = (1, 2, 4, 10, 20)


def build_parser():
    from _common import base_parser

    p = base_parser(__doc__)
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0 .. seeds-1)")
    p.add_argument("--ps", type=float, nargs="+", default=[0.25, 0.5], help="h-detach probabilities (besides vanilla)")
    p.add_argument("--n", type=int, default=2000, help="sequences per delay")
    return p


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import _common as ex
    import matplotlib.pyplot as plt

    from hdetach_np.training import blas_threads, transfer_copying

    args = build_parser().parse_args(argv)
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    t0 = time.perf_counter()
    base = dict(ex.COPYING_QUICK if args.quick else ex.COPYING)
    n = 50 if args.quick else args.n
    seeds = range(2 if args.quick else args.seeds)
    jobs = ex.make_jobs(base, ex.copying_variants(args.ps), seeds)
    groups = ex.train_groups(jobs, ex.runs_dir(args), workers=args.workers)
    T = base["delay"]
    Ts = [f * T for f in FACTORS]

    summary, rows = {}, []
    blas_threads(1)  # the evaluations below run in this process
    for tag, rs in groups.items():
        acc = np.array([[e["accuracy"] for e in transfer_copying(r["dir"], Ts, n=n, seed=555, which="best")]
                        for r in rs])  # (seeds, delays)
        summary[tag] = {"per_seed": {int(r["seed"]): a.tolist() for r, a in zip(rs, acc)},
                        "median": np.median(acc, 0).tolist(), "min": acc.min(0).tolist(), "max": acc.max(0).tolist()}
        rows.append([tag] + [f"{np.median(acc[:, k]):.3f} ({acc[:, k].min():.3f}-{acc[:, k].max():.3f})"
                             for k in range(len(Ts))])

    fig, ax = plt.subplots(figsize=(7, 4.6))
    for tag, s in summary.items():
        (line,) = ax.plot(Ts, s["median"], marker="o", label=tag)
        ax.fill_between(Ts, s["min"], s["max"], color=line.get_color(), alpha=0.15)
    ax.axhline(1 / 8, color="grey", ls=":", lw=0.8, label="chance (1/8)")
    ax.set_xscale("log")
    ax.set_xticks(Ts)
    ax.set_xticklabels([str(t) for t in Ts])
    ax.set_xlabel("delay T at evaluation")
    ax.set_ylabel("accuracy on the 10 copied tokens")
    ax.set_title(f"Trained at delay {T} (best model per run), {n} sequences per delay; median, band min-max "
                 f"over {len(seeds)} seeds", fontsize="small")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()

    cmd = ex.command_line("transfer_copying.py", argv)
    table = ex.markdown_table(["variant"] + [f"delay {t} ({f}x)" for t, f in zip(Ts, FACTORS)], rows) + \
        f"\nAccuracy on the last 10 steps, median (min-max) over {len(seeds)} seeds, {n} sequences per delay.\n"
    data = {"command": cmd, "config": base, "trained_T": T, "eval_T": Ts, "n": n, "seed": 555,
            "seeds": list(seeds), "summary": summary, "wall_seconds_this_call": round(time.perf_counter() - t0, 1)}
    ex.write_outputs(args.out, "transfer_copying", data, f"Command: `{cmd}`\n\n" + table, fig)
    print(table)
    return data


if __name__ == "__main__":
    import _common

    _common.script_main(main)
