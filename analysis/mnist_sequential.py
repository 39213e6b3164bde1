"""Sequential (pixel) MNIST and permuted MNIST with the real data, vanilla LSTM vs h-detach p=0.25.

A run sized for a 2-core machine (the defaults: 22 minutes with 2 processes): --pixels-per-step
pixels per step (16: 49 steps instead of the paper's 784), the first --n-train of the 50,000
training images, --epochs passes (16; the paper 200), validation on the first --n-valid of the
10,000 validation images after every epoch and test (the first --n-test of the official test set)
at the epoch of best validation accuracy. Hidden 100, Adam lr 1e-3, batch 100, clipping 1.0, as
the paper.

Needs the MNIST cache: run `hdetach-np data mnist` once. --quick uses a small random stand-in
instead (its numbers mean nothing; it only exercises the script).

Writes into --out: mnist_sequential.png, mnist_sequential.json, mnist_sequential.md.

Run from the repository root (after `pip install -e .` and `hdetach-np data mnist`):

    python analysis/mnist_sequential.py --out docs/figures/experiments   # the defaults: 22 min measured
    python analysis/mnist_sequential.py --out /tmp/quick --quick          # seconds, no data needed
"""

from __future__ import annotations

import time

import numpy as np


def build_parser():
    from _common import base_parser

    p = base_parser(__doc__)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (400, 401, ...; 400 is the original's)")
    p.add_argument("--p", type=float, default=0.25, help="h-detach probability")
    p.add_argument("--pixels-per-step", type=int, default=16, help="pixels fed per step (a divisor of 784)")
    p.add_argument("--hidden", type=int, default=100, help="hidden size")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--n-train", type=int, default=50000, help="training images (the first n of the 50k)")
    p.add_argument("--n-valid", type=int, default=5000, help="validation images")
    p.add_argument("--n-test", type=int, default=10000, help="test images")
    p.add_argument("--epochs", type=int, default=16, help="passes over the training subset")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST cache (default: hdetach-np data mnist's)")
    return p


def stand_in(n_train=300, n_eval=100, seed=0):
    """A random MNIST-shaped data set for --quick (uint8 pixels, labels from the mean brightness so
    there is something to learn)."""
    from hdetach_np.training.data import MNISTData

    rng = np.random.default_rng(seed)

    def split(n):
        x = rng.integers(0, 256, (n, 784), dtype=np.uint8)
        return x, (x.mean(1) > 127.5).astype(np.uint8)

    return MNISTData(*split(n_train), *split(n_eval), *split(n_eval))


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import _common as ex
    import matplotlib.pyplot as plt

    from hdetach_np.training.data import DataError, load_mnist

    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    if args.quick:
        mnist, source = stand_in(), "random stand-in (--quick)"
        args.pixels_per_step, args.hidden, args.n_train, args.n_valid, args.n_test, args.epochs = 28, 8, 100, 50, 50, 2
        seeds = [400]
    else:
        try:
            load_mnist(args.data_dir)  # fail early with the message saying how to get the data
        except DataError as err:
            raise SystemExit(f"mnist_sequential.py needs the real MNIST data: {err}") from err
        mnist, source = None, "MNIST cache of `hdetach-np data mnist`"
        seeds = [400 + k for k in range(args.seeds)]
    jobs = {}
    for task in ("pixel-mnist", "permuted-mnist"):
        base = dict(task=task, pixels_per_step=args.pixels_per_step, hidden=args.hidden, lr=args.lr,
                    n_train=args.n_train, n_valid=args.n_valid, n_test=args.n_test, epochs=args.epochs,
                    anneal_p=0, batch_size=100 if not args.quick else 25, bias="one")
        for tag, over in ex.copying_variants([args.p]).items():
            jobs[f"{task}, {tag}"] = ex.make_jobs(base, {tag: over}, seeds)[tag]
    groups = ex.train_groups(jobs, ex.runs_dir(args), workers=args.workers, data_dir=args.data_dir, mnist=mnist)

    rows, summary = [], {}
    for tag, rs in groups.items():
        summary[tag] = []
        for r in rs:
            best = ex.best_eval(r["history"])
            test = [h for h in r["history"] if h.get("split") == "test"]
            fin = ex.final_eval(r["history"])
            s = {"seed": r["seed"], "status": r["status"], "seconds": round(r["seconds"], 1),
                 "best_valid_accuracy": best["accuracy"] if best else None,
                 "best_epoch": best["epoch"] if best else None,
                 "test_accuracy_at_best": test[-1]["accuracy"] if test else None,
                 "final_valid_accuracy": fin["accuracy"] if fin else None}
            summary[tag].append(s)
            rows.append([tag, r["seed"], ex.fmt(s["best_valid_accuracy"], 4), s["best_epoch"],
                         ex.fmt(s["test_accuracy_at_best"], 4), ex.fmt(s["final_valid_accuracy"], 4),
                         f"{s['seconds']:.0f}"])

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    for ax, task in zip(axes, ("pixel-mnist", "permuted-mnist")):
        ex.plot_accuracy_groups(ax, {t.split(", ", 1)[1]: g for t, g in groups.items() if t.startswith(task)},
                                thresholds=())
        ax.set_title(task, fontsize="medium")
    fig.suptitle(f"{source}: {args.pixels_per_step} pixels per step ({784 // args.pixels_per_step} steps), "
                 f"hidden {args.hidden}, {args.n_train} training images, Adam lr {args.lr:g}", fontsize="medium")
    fig.tight_layout()

    cmd = ex.command_line("mnist_sequential.py", argv)
    table = ex.markdown_table(["task, variant", "seed", "best valid acc.", "epoch of best", "test acc. at best",
                               "final valid acc.", "train seconds"], rows)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "runs")}
    data = {"command": cmd, "data": source, "settings": settings,
            "summary": summary, "wall_seconds_this_call": round(time.perf_counter() - t0, 1)}
    ex.write_outputs(args.out, "mnist_sequential", data, f"Command: `{cmd}`\n\nData: {source}\n\n" + table, fig)
    print(table)
    return data


if __name__ == "__main__":
    import _common

    _common.script_main(main)
