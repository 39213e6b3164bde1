"""What a checkpoint costs, and so how much work a kill -9 can lose with the default checkpointing.

Run from the repository root:

    python benchmarks/bench_checkpoint.py                   # about a minute
    python benchmarks/bench_checkpoint.py --dir /some/disk  # write the checkpoints on another disk
    python benchmarks/bench_checkpoint.py --quick           # a few seconds (a smoke test)

For two settings (copying T=10, hidden 128, one-hot input, the setting of the copying results;
copying T=300, hidden 128, scalar input, the original experiments' setting), it times, with one
BLAS thread:
- `save_checkpoint` of the model, the Adam state and the metadata, as `train` writes it (an
  uncompressed .npz, written to a temporary file, fsync'ed and renamed), median of --writes;
- one training iteration (`train` in memory, no folder), median over --iterations iterations.
It prints, and writes to --out as JSON, those times, the checkpoint's size, the default interval of
timed checkpoints, and the share of training time spent writing checkpoints at that interval.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from hdetach_np.training import runs
from hdetach_np.training.config import TrainConfig
from hdetach_np.training.guard import DEFAULT_CHECKPOINT_MINUTES
from hdetach_np.training.loop import init_model, loss_and_grads, make_task_data, task_sizes
from hdetach_np.training.optim import clip_grad_norm, make_optimizer

SETTINGS = {
    "copying T=10 hidden 128": dict(task="copying", delay=10, hidden=128, one_hot=True, lr=3e-3, n_train=10_000,
                                    n_valid=500),
    "copying T=300 hidden 128": dict(task="copying", delay=300, hidden=128, one_hot=False, lr=1e-3, n_train=10_000,
                                     n_valid=500),
}


def time_setting(cfg: TrainConfig, folder: Path, writes: int, iterations: int) -> dict:
    D, K = task_sizes(cfg)
    task = make_task_data(cfg)
    model = init_model(D, cfg.hidden, K, np.random.default_rng(0), np.dtype(cfg.dtype))
    opt = make_optimizer(cfg.optimizer, model.arrays(), cfg.lr)
    rng = np.random.default_rng(1)
    step_seconds = []
    for it in range(iterations + 3):  # 3 warm-up iterations
        t0 = time.perf_counter()
        x, y = task.train_batch(it, rng)
        res = loss_and_grads(model, x, y, task)
        clip_grad_norm(res.grads, cfg.clip)
        opt.step(res.grads)
        if it >= 3:
            step_seconds.append(time.perf_counter() - t0)
    meta = {"iteration": iterations, "epoch": 0, "best": None, "rng": rng.bit_generator.state,
            "config": cfg.to_dict(), "seconds": 1.0, "optimizer": cfg.optimizer}
    path = folder / runs.CHECKPOINT
    write_seconds = []
    for _ in range(writes + 1):
        t0 = time.perf_counter()
        runs.save_checkpoint(path, model.arrays(), meta, opt.state_dict())
        write_seconds.append(time.perf_counter() - t0)
    write, step = statistics.median(write_seconds[1:]), statistics.median(step_seconds)
    interval = 60 * DEFAULT_CHECKPOINT_MINUTES
    return {"config": cfg.to_dict(), "checkpoint_bytes": path.stat().st_size,
            "write_seconds_median": write, "write_seconds_max": max(write_seconds[1:]),
            "iteration_seconds_median": step, "iterations_per_interval": interval / step,
            "interval_seconds": interval, "write_share_of_training": write / (interval + write)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=None, help="folder to write the checkpoints in (default: a temporary folder)")
    ap.add_argument("--writes", type=int, default=30, help="checkpoint writes per setting (default: 30)")
    ap.add_argument("--iterations", type=int, default=100, help="timed iterations per setting (default: 100)")
    ap.add_argument("--quick", action="store_true", help="3 writes and 5 iterations")
    ap.add_argument("--out", default="benchmarks/results/bench_checkpoint.json", help="JSON output")
    args = ap.parse_args(argv)
    writes, iterations = (3, 5) if args.quick else (args.writes, args.iterations)
    try:
        from threadpoolctl import threadpool_limits
        one_thread = threadpool_limits(1, user_api="blas")
    except ImportError:
        one_thread = contextlib.nullcontext()
    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, one_thread:
        for name, kw in SETTINGS.items():
            cfg = TrainConfig.from_dict({**kw, "iterations_per_epoch": 100, "epochs": 1})
            results[name] = r = time_setting(cfg, Path(tmp), writes, iterations)
            print(f"{name}: checkpoint {r['checkpoint_bytes'] / 1e6:.2f} MB, written in "
                  f"{1e3 * r['write_seconds_median']:.1f} ms (median; max {1e3 * r['write_seconds_max']:.1f}); "
                  f"one iteration {1e3 * r['iteration_seconds_median']:.1f} ms; "
                  f"{r['iterations_per_interval']:.0f} iterations per {DEFAULT_CHECKPOINT_MINUTES:g}-minute interval; "
                  f"writing takes {100 * r['write_share_of_training']:.3f}% of the time")
    out = {"default_checkpoint_minutes": DEFAULT_CHECKPOINT_MINUTES, "numpy": np.__version__, "settings": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
