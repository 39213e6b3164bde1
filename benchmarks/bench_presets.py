"""Expected duration of each task's presets ("laptop" and "paper"), extrapolated from a few iterations.

For every task and preset, `train` runs in memory (no run folder) twice, stopping after `--warmup`
and after `--warmup + --iterations` iterations; the difference of the two wall times over
`--iterations` is the time per training iteration (the data set, the model and the first
iterations cost the same in both runs and cancel). The expected duration is that time multiplied
by the preset's number of iterations; evaluations at the end of each epoch come on top. Pixel MNIST
uses a random stand-in of the preset's sizes (the time per iteration does not depend on the pixels).
BLAS runs on one thread (the `--threads auto` policy).

Run from the repository root:

    python benchmarks/bench_presets.py                  # about 2 minutes
    python benchmarks/bench_presets.py --tasks copying  # one task
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def stand_in_mnist(n_train: int, n_eval: int):
    from hdetach_np.training.data import MNISTData

    rng = np.random.default_rng(0)

    def split(n):
        return rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)

    return MNISTData(*split(n_train), *split(n_eval), *split(n_eval))


def seconds_per_iteration(cfg, warmup: int, iterations: int, mnist=None) -> float:
    from hdetach_np.training import train

    walls = []
    for stop in (warmup, warmup + iterations):
        t0 = time.perf_counter()
        train(cfg, stop_after=stop, mnist=mnist)
        walls.append(time.perf_counter() - t0)
    return (walls[1] - walls[0]) / iterations


def main(argv=None) -> int:
    from hdetach_np.training import blas_threads
    from hdetach_np.training.config import MNIST_TASKS, PRESETS, TASKS, TrainConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=["copying", "adding", "pixel-mnist"])
    ap.add_argument("--warmup", type=int, default=5, help="iterations before the timed ones (default: 5)")
    ap.add_argument("--iterations", type=int, default=20, help="timed iterations (default: 20)")
    ap.add_argument("--out", default=None, help="write the results to this JSON file")
    args = ap.parse_args(argv)
    rows = []
    with blas_threads(1):
        for task in args.tasks:
            for preset in PRESETS:
                cfg = TrainConfig.from_dict({"task": task}, preset=preset)
                mnist = stand_in_mnist(cfg.n_train, max(cfg.n_valid, cfg.n_test)) if task in MNIST_TASKS else None
                spi = seconds_per_iteration(cfg, args.warmup, args.iterations, mnist)
                rows.append({"load_average": os.getloadavg()[0], "task": task, "preset": preset,
                             "T": cfg.sequence_length, "hidden": cfg.hidden,
                             "iterations": cfg.total_iterations, "seconds_per_iteration": spi,
                             "hours": spi * cfg.total_iterations / 3600})
                r = rows[-1]
                print(f"{task:>14} {preset:>6}: T={r['T']:<4} {r['iterations']:>7} iterations x "
                      f"{spi * 1e3:7.1f} ms = {r['hours']:7.2f} h (load average {r['load_average']:.1f})", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
