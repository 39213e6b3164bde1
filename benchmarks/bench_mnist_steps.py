"""What shorter pixel steps cost: pixel MNIST at 16, 8, 4 and 1 pixels per step (49-784 steps).

The laptop preset feeds pixel MNIST 16 pixels per step (49 steps); the paper feeds one (784 steps).
For each number of pixels per step this measures, on one BLAS thread, in float32, hidden 100, batch
100 (the presets' sizes):

- seconds per training iteration, for vanilla (p = 0) and h-detach (p = 0.25): `train` runs in
  memory twice, stopping after --warmup and after --warmup + --iterations iterations; the difference
  of the two wall times over --iterations is the time per iteration (set-up and warm-up cancel);
- seconds per evaluated sequence (`evaluate` on 1,000 sequences, after one warm-up call);

and extrapolates one run of 16 epochs x 500 iterations with 5,000 validation sequences after every
epoch and 10,000 test sequences at the end (the laptop preset's schedule), and one of the paper's
200 epochs (validation on 10,000 sequences after every epoch), on one core; and a sweep of 20 such
runs (2 variants x 10 seeds) on 1, 2, 8 and 64 workers, each a core as fast as this one:
ceil(runs / workers) rounds of one run. A random stand-in replaces the images (the cost does not
depend on pixel values).

Run from the repository root:

    python benchmarks/bench_mnist_steps.py --out benchmarks/results/bench_mnist_steps.json   # about 5 minutes
    python benchmarks/bench_mnist_steps.py --quick                                            # seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_presets import seconds_per_iteration, stand_in_mnist  # noqa: E402

PIXELS_PER_STEP = (16, 8, 4, 1)
WORKERS = (1, 2, 8, 64)
SWEEP_RUNS = 20  # 2 variants x 10 seeds
LAPTOP = dict(epochs=16, iterations_per_epoch=500, n_valid=5_000, n_test=10_000)
PAPER = dict(epochs=200, iterations_per_epoch=500, n_valid=10_000, n_test=10_000)


def seconds_per_sequence(cfg, mnist, n: int) -> float:
    """Evaluation cost per sequence of `cfg`'s model on the validation split (`n` sequences)."""
    from hdetach_np.training.model import evaluate, init_model
    from hdetach_np.training.task_data import make_task_data

    task = make_task_data(cfg, mnist=mnist)
    model = init_model(task.input_size, cfg.hidden, task.output_size, np.random.default_rng(0), np.dtype(cfg.dtype))
    buffers = {}
    evaluate(model, task, "valid", buffers=buffers)  # warm-up
    t0 = time.perf_counter()
    evaluate(model, task, "valid", buffers=buffers)
    return (time.perf_counter() - t0) / n


def run_seconds(per_iteration: float, per_sequence: float, schedule: dict) -> float:
    """Training plus evaluations of one run with `schedule` (epochs, iterations_per_epoch, n_valid, n_test)."""
    iterations = schedule["epochs"] * schedule["iterations_per_epoch"]
    sequences = schedule["epochs"] * schedule["n_valid"] + schedule["n_test"]
    return per_iteration * iterations + per_sequence * sequences


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.1f} days"


def main(argv=None) -> int:
    from hdetach_np.training import blas_threads
    from hdetach_np.training.config import TrainConfig
    from hdetach_np.training.runs import versions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--warmup", type=int, default=3, help="iterations before the timed ones (default: 3)")
    ap.add_argument("--iterations", type=int, default=12, help="timed iterations (default: 12)")
    ap.add_argument("--quick", action="store_true", help="2 timed iterations, 8 and 16 pixels per step (seconds)")
    ap.add_argument("--out", default=None, help="write the results to this JSON file")
    args = ap.parse_args(argv)
    steps = (16, 8) if args.quick else PIXELS_PER_STEP
    timed = 2 if args.quick else args.iterations
    n_eval = 100 if args.quick else 1_000
    mnist = stand_in_mnist(10_000, n_eval)
    rows = []
    with blas_threads(1):
        for pps in steps:
            row = {"pixels_per_step": pps, "steps": 784 // pps, "load_average": os.getloadavg()[0]}
            for p in (0.0, 0.25):
                cfg = TrainConfig.from_dict({"task": "pixel-mnist", "pixels_per_step": pps, "p": p, "n_train": 10_000,
                                             "n_valid": n_eval, "n_test": 0, "epochs": 1})  # 100 its: none evaluated
                row[f"seconds_per_iteration_p{p:g}"] = seconds_per_iteration(cfg, args.warmup, timed, mnist)
            row["seconds_per_sequence"] = seconds_per_sequence(cfg, mnist, n_eval)
            per_it = max(row["seconds_per_iteration_p0"], row["seconds_per_iteration_p0.25"])
            row["laptop_run_seconds"] = run_seconds(per_it, row["seconds_per_sequence"], LAPTOP)
            row["paper_run_seconds"] = run_seconds(per_it, row["seconds_per_sequence"], PAPER)
            row["sweep_seconds"] = {str(w): math.ceil(SWEEP_RUNS / w) * row["laptop_run_seconds"] for w in WORKERS}
            row["paper_sweep_seconds"] = {str(w): math.ceil(SWEEP_RUNS / w) * row["paper_run_seconds"] for w in WORKERS}
            rows.append(row)
            print(f"{pps:>2} pixels per step ({row['steps']:>3} steps): "
                  f"{row['seconds_per_iteration_p0'] * 1e3:7.1f} ms (p=0), "
                  f"{row['seconds_per_iteration_p0.25'] * 1e3:7.1f} ms (p=0.25) per iteration, "
                  f"{row['seconds_per_sequence'] * 1e3:.2f} ms per evaluated sequence; a 16-epoch run "
                  f"{hours(row['laptop_run_seconds'])}, a 200-epoch run {hours(row['paper_run_seconds'])} "
                  f"(load average {row['load_average']:.1f})", flush=True)
    print(markdown(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"versions": versions(), "runs_per_sweep": SWEEP_RUNS, "laptop": LAPTOP, "paper": PAPER,
                       "rows": rows}, f, indent=2)
    return 0


def markdown(rows) -> str:
    head = ["pixels per step", "steps", "ms / iteration (p=0, p=0.25)", "16-epoch run"] + \
        [f"20 runs on {w} worker{'s' if w > 1 else ''}" for w in WORKERS] + ["200-epoch run", "20 on 64 workers"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        cells = [str(r["pixels_per_step"]), str(r["steps"]),
                 f"{r['seconds_per_iteration_p0'] * 1e3:.0f}, {r['seconds_per_iteration_p0.25'] * 1e3:.0f}",
                 hours(r["laptop_run_seconds"])] + [hours(r["sweep_seconds"][str(w)]) for w in WORKERS] + \
                [hours(r["paper_run_seconds"]), hours(r["paper_sweep_seconds"]["64"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
