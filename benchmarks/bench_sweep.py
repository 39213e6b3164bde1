"""What the sweep machinery costs, and what the paper's sweeps would take.

Part 1, overhead: the same 8-run sweep (copying, seeds 0-7, runs sized by a calibration to about
--run-seconds each on one thread) with 1 local worker, 2 local workers and a 2-worker Dask
LocalCluster (processes, one thread each, on 127.0.0.1). For each: the wall time of the sweep call,
the sum of the trainings' own times (train's summary.json "seconds"), and the overhead per run
    (wall x slots - sum of training times) / runs,
i.e. the time a slot spent on anything but training (starting processes, pickling, the run folder,
the data set, idle slots at the end), also as a fraction of the mean training time. The Dask cluster
is started before the clock starts (a cluster lives longer than one sweep); its start-up is recorded
apart.

Part 2, on paper: seconds per training iteration on one BLAS thread, measured over --iterations
iterations after 2 warm-up ones, for the paper's copying runs (T=100 and T=300, hidden 128, batch 100,
scalar input; vanilla and h-detach p=0.25) and pixel MNIST (784 steps, hidden 100, batch 100; a random
stand-in for the images: the cost does not depend on pixel values). Extrapolated, assuming every
worker is a core as fast as this one: the copying sweep (T in {100, 300} x {vanilla, p=0.25, p=0.5}
x 5 seeds = 30 runs of 600 epochs x 1,000 iterations) and a pixel-MNIST sweep (vanilla and p=0.25
x 5 seeds = 10 runs of 200 epochs x 500 iterations) on 1, 8 and 64 workers: ceil(runs / workers)
rounds of the longest run. Each timed iteration includes a validation pass over one sequence (an
overestimate of a few percent at most); the paper's per-epoch validation passes are not included.

Run from the repository root (dask[distributed] needed for the Dask line):

    python benchmarks/bench_sweep.py --out benchmarks/results/bench_sweep.json
    python benchmarks/bench_sweep.py --quick --out /tmp/bench_sweep.json        # seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package first

from hdetach_np.training import TrainConfig, train  # noqa: E402
from hdetach_np.training.sweep import run_sweep  # noqa: E402

SMALL = dict(task="copying", delay=10, hidden=64, batch_size=100, one_hot=True, lr=3e-3, n_train=10_000, n_valid=500,
             iterations_per_epoch=100, anneal_p=0)


def seconds_per_iteration(cfg: dict, iterations: int, mnist=None, preset: str = "laptop") -> float:
    """Median wall seconds of one training iteration on one BLAS thread, over `iterations` iterations
    after 2 warm-up ones: `train` in memory with one iteration per epoch and one validation sequence,
    timed by the "seconds" of its evaluation records (so each time includes validating 1 sequence)."""
    from threadpoolctl import threadpool_limits

    c = TrainConfig.from_dict(dict(cfg, epochs=iterations + 2, iterations_per_epoch=1, n_valid=1, anneal_p=0),
                              preset=preset)
    with threadpool_limits(limits=1, user_api="blas"):
        hist = train(c, mnist=mnist).history
    stamps = [r["seconds"] for r in hist if r.get("split") == "valid"]
    return float(np.median(np.diff(stamps)[1:]))


def overhead(run_seconds: float, n_runs: int, quick: bool, say=print) -> dict:
    s_it = seconds_per_iteration(SMALL, 20 if quick else 60)
    iterations = max(100, int(round(run_seconds / s_it / 100)) * 100)
    base = dict(SMALL, epochs=iterations // 100)
    say(f"calibration: {s_it * 1e3:.2f} ms per iteration -> runs of {iterations} iterations")
    grid = {"seed": list(range(n_runs))}
    out = {"config": base, "calibration_seconds_per_iteration": s_it, "runs": n_runs, "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        modes = [("local, 1 worker", dict(workers=1)), ("local, 2 workers", dict(workers=2))]
        cluster = None
        try:
            from dask.distributed import LocalCluster

            t0 = time.perf_counter()
            cluster = LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            out["dask_cluster_start_seconds"] = time.perf_counter() - t0
            modes.append(("Dask LocalCluster, 2 workers", dict(scheduler=cluster.scheduler_address)))
        except ImportError:
            say("dask.distributed not installed: no Dask line")
        try:
            for k, (label, kw) in enumerate(modes):
                slots = kw.get("workers", 2)
                t0 = time.perf_counter()
                res = run_sweep(Path(tmp) / f"s{k}", base, grid, say=lambda s: None, progress=False, **kw)
                wall = time.perf_counter() - t0
                train_s = sum(r["train_seconds"] for r in res.values())
                call_s = sum(r["seconds"] for r in res.values())
                per_run = (wall * slots - train_s) / n_runs
                out["modes"][label] = {"slots": slots, "wall_seconds": wall, "train_seconds_sum": train_s,
                                       "worker_call_seconds_sum": call_s, "overhead_seconds_per_run": per_run,
                                       "overhead_fraction": per_run / (train_s / n_runs),
                                       "statuses": sorted({r["status"] for r in res.values()})}
                say(f"{label}: wall {wall:.1f} s, trainings {train_s:.1f} s, overhead per run {per_run:.2f} s "
                    f"({per_run / (train_s / n_runs):.1%} of a run)")
        finally:
            if cluster is not None:
                cluster.close()
    return out


def paper(iterations: int, say=print) -> dict:
    from hdetach_np.training.data import MNISTData

    n = 200
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    mnist = MNISTData(imgs, labels, imgs[:100], labels[:100], imgs[:100], labels[:100])
    configs = {
        "copying T=100, vanilla": dict(task="copying", delay=100, p=0.0, n_train=1000, n_valid=100),
        "copying T=100, p=0.25": dict(task="copying", delay=100, p=0.25, n_train=1000, n_valid=100, anneal_p=0),
        "copying T=300, vanilla": dict(task="copying", delay=300, p=0.0, n_train=1000, n_valid=100),
        "copying T=300, p=0.25": dict(task="copying", delay=300, p=0.25, n_train=1000, n_valid=100, anneal_p=0),
        "pixel MNIST 784 steps, vanilla": dict(task="pixel-mnist", n_train=n, n_valid=100, n_test=0),
        "pixel MNIST 784 steps, p=0.25": dict(task="pixel-mnist", p=0.25, n_train=n, n_valid=100, n_test=0, anneal_p=0),
    }
    s_it = {}
    for name, cfg in configs.items():
        s_it[name] = seconds_per_iteration(cfg, iterations, mnist=mnist, preset="paper")  # the original's settings
        say(f"{name}: {s_it[name]:.3f} s per iteration (one thread)")
    sweeps = {
        "copying (T 100/300 x vanilla, p 0.25, p 0.5 x 5 seeds; 600,000 iterations)":
            {"runs": 30, "iterations": 600 * 1000,
             "run_seconds": max(s_it["copying T=300, vanilla"], s_it["copying T=300, p=0.25"]),
             "cpu_seconds": 15 * 600_000 * (s_it["copying T=100, vanilla"] + 2 * s_it["copying T=100, p=0.25"]) / 3
             + 15 * 600_000 * (s_it["copying T=300, vanilla"] + 2 * s_it["copying T=300, p=0.25"]) / 3},
        "pixel MNIST (vanilla, p 0.25 x 5 seeds; 100,000 iterations)":
            {"runs": 10, "iterations": 200 * 500,
             "run_seconds": max(s_it["pixel MNIST 784 steps, vanilla"], s_it["pixel MNIST 784 steps, p=0.25"]),
             "cpu_seconds": 5 * 100_000 * (s_it["pixel MNIST 784 steps, vanilla"]
                                           + s_it["pixel MNIST 784 steps, p=0.25"])},
    }
    for s in sweeps.values():
        s["run_seconds"] *= s["iterations"]  # the longest run
        s["wall_seconds"] = {w: math.ceil(s["runs"] / w) * s["run_seconds"] for w in (1, 8, 64)}
        s["wall_seconds"][1] = s["cpu_seconds"]  # one worker runs them all in turn
    return {"seconds_per_iteration": s_it, "iterations_measured": iterations, "sweeps": sweeps}


def hours(s: float) -> str:
    return f"{s / 3600:,.0f} h ({s / 86400:,.1f} days)" if s >= 86400 else f"{s / 3600:,.1f} h"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON file for the results")
    p.add_argument("--run-seconds", type=float, default=60.0, help="target training time of one run")
    p.add_argument("--iterations", type=int, default=8, help="iterations timed per paper config")
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    args = p.parse_args(argv)
    res = {"command": "python benchmarks/bench_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                       "numpy": np.__version__},
           "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}}
    res["overhead"] = overhead(2.0 if args.quick else args.run_seconds, 4 if args.quick else 8, args.quick)
    res["paper"] = paper(2 if args.quick else args.iterations)
    for name, s in res["paper"]["sweeps"].items():
        print(f"{name}: " + ", ".join(f"{w} worker(s) {hours(t)}" for w, t in s["wall_seconds"].items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print("wrote", args.out)
    return res


if __name__ == "__main__":
    main()
