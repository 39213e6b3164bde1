"""Cost of a whole training iteration: `train` against the maths alone, one BLAS thread.

Run from the repository root, with the machine's BLAS tuning variables unset:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python benchmarks/bench_train.py --out benchmarks/results/bench_train.json
    python benchmarks/bench_train.py --quick            # tiny sizes, seconds (a smoke test)
    python benchmarks/bench_train.py --cold             # also the cold-call effect (section 2)

1. Whole iteration. For each setting, `train` runs whole epochs into a run folder (history,
   checkpoints and best model written as in the Results), and its seconds per iteration are read
   from summary.json (the session's wall time after set-up divided by its iterations: minibatches,
   masks, forward, readout, loss, backward, path-norm logging, clipping, the optimizer, history,
   evaluation at every epoch's end, checkpoints); its CPU seconds are the process time of the call
   less that of building the task's data (the set-up's main part), per iteration. With one BLAS
   thread the CPU time is the work done, far less disturbed by other jobs than the wall time. "The
   maths" is the same number of iterations of `lstm_forward` (reusing its cache), the readout, the
   loss and `lstm_backward` with an h-detach mask, on one fixed minibatch. The two alternate (train,
   maths, maths, train, ...) and the table reports the median seconds per iteration of each and the
   ratio of medians.
   Settings:
     copying       the Results' copying setting: T=10 (20 + 10 steps), one-hot input (D=10),
                   H=128, N=100, Adam lr 3e-3, 100 iterations per epoch, 500 validation sequences,
                   path norms logged every 100 iterations; p=0.25
     pixel-mnist   T=784 (one pixel per step, D=1), H=128, N=100, on a random MNIST-shaped data set
                   (uint8 images, random labels); 20 iterations per epoch, validation and test sets
                   of 200 and 400 images (the Results' MNIST proportions: 5,000 and 10,000 per
                   50,000 training images); p=0.25
2. Cold calls (--cold; pixel-MNIST-like: T=784, N=100, D=1, H=128, float32). `lstm_forward` +
   `lstm_backward` timed right after the memory of the previous iteration was handed back to the
   operating system (glibc's malloc_trim), with fresh arrays and with `reuse=` the previous cache,
   against warm calls of each.

The BLAS is held to one thread by threadpoolctl (OPENBLAS_NUM_THREADS=1 is set too, before numpy
loads, for machines without it).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import hdetach_np as hd  # noqa: E402
from hdetach_np.training import TrainConfig, train  # noqa: E402
from hdetach_np.training.data import MNISTData  # noqa: E402
from hdetach_np.training.task_data import make_task_data  # noqa: E402

SETTINGS = {
    "copying": dict(task="copying", delay=10, hidden=128, one_hot=True, lr=3e-3, batch_size=100, clip=1.0,
                    n_train=100_000, n_valid=500, iterations_per_epoch=100, anneal_p=0, log_paths_every=100, p=0.25),
    "pixel-mnist": dict(task="pixel-mnist", pixels_per_step=1, hidden=128, lr=1e-3, batch_size=100, n_train=2000,
                        n_valid=200, n_test=400, iterations_per_epoch=20, anneal_p=0, p=0.25),
}
EPOCHS = {"copying": 3, "pixel-mnist": 1}
QUICK = {
    "copying": dict(SETTINGS["copying"], hidden=16, n_train=1000, n_valid=50, iterations_per_epoch=20,
                    log_paths_every=20),
    "pixel-mnist": dict(SETTINGS["pixel-mnist"], pixels_per_step=28, hidden=16, batch_size=10, n_train=200, n_valid=20,
                        n_test=40, iterations_per_epoch=5),
}


def fake_mnist(seed: int = 0, n=(2000, 1000, 1000)) -> MNISTData:
    """Random MNIST-shaped data: uint8 images (n, 784), labels (n,)."""
    rng = np.random.default_rng(seed)
    parts = {}
    for split, m in zip(("train", "valid", "test"), n):
        parts[f"x_{split}"] = rng.integers(0, 256, size=(m, 784), dtype=np.uint8)
        parts[f"y_{split}"] = rng.integers(0, 10, size=m, dtype=np.uint8)
    return MNISTData(**parts)


def train_seconds(cfg: TrainConfig, mnist, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds per iteration of `train`, all in after set-up. Wall: from the run's
    summary.json; CPU: the process time of the call less that of building the task's data."""
    run = Path(tempfile.mkdtemp(dir=folder))
    cpu0 = time.process_time()
    make_task_data(cfg, mnist=mnist)
    cpu1 = time.process_time()
    train(cfg, run, mnist=mnist)
    cpu2 = time.process_time()
    summary = json.loads((run / "summary.json").read_text())
    return summary["seconds_per_iteration_this_session"], ((cpu2 - cpu1) - (cpu1 - cpu0)) / cfg.total_iterations


def maths_seconds(cfg: TrainConfig, mnist, iterations: int) -> tuple[float, float]:
    """Wall and CPU seconds per iteration of forward (reusing the cache), readout, loss and backward with a mask."""
    task = make_task_data(cfg, mnist=mnist)
    rng = np.random.default_rng(0)
    dt = np.dtype(cfg.dtype)
    params = hd.init_lstm(task.input_size, cfg.hidden, rng, dtype=dt)
    readout = hd.init_linear(cfg.hidden, task.output_size, rng, dtype=dt)
    x, y = task.train_batch(0, rng)
    targets = y[None] if task.last_only else y
    cache = None
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        keep = hd.sample_h_detach_mask(task.steps, cfg.p, rng, dtype=dt)
        hs, cache = hd.lstm_forward(params, x, reuse=cache)  # (T, N, H)
        logits, lcache = hd.linear_forward(readout, hs[-1:] if task.last_only else hs)
        _, dlogits = hd.softmax_cross_entropy(logits, targets)
        lg = hd.linear_backward(dlogits, lcache)
        if task.last_only:
            hd.lstm_backward(None, cache, h_scale=keep, dhT=lg.h[0])
        else:
            hd.lstm_backward(lg.h, cache, h_scale=keep)
    return (time.perf_counter() - t0) / iterations, (time.process_time() - cpu0) / iterations


def bench_iteration(settings: dict, epochs: dict, repeats: int, folder: Path) -> dict:
    mnist = fake_mnist()
    out = {}
    for name, kw in settings.items():
        cfg = TrainConfig.from_dict(dict(kw, epochs=epochs[name]))
        n = cfg.total_iterations
        train_seconds(cfg, mnist, folder), maths_seconds(cfg, mnist, max(n // 4, 2))  # warm-up
        runs = {"train": [], "maths": []}
        for r in range(repeats):
            for kind in (("train", "maths") if r % 2 == 0 else ("maths", "train")):
                seconds = train_seconds(cfg, mnist, folder) if kind == "train" else maths_seconds(cfg, mnist, n)
                runs[kind].append(seconds)
        res = {"config": cfg.to_dict(), "iterations": n, "repeats": repeats}
        for clock, i in (("wall", 0), ("cpu", 1)):
            t, m = (float(np.median([r[i] for r in runs[kind]])) for kind in ("train", "maths"))
            res[clock] = {"train": [r[i] for r in runs["train"]], "maths": [r[i] for r in runs["maths"]],
                          "train_median": t, "maths_median": m, "ratio": t / m}
            print(f"{name} ({clock}): train {t * 1e3:.2f} ms/iteration, maths {m * 1e3:.2f} ms, ratio {t / m:.3f}",
                  flush=True)
        out[name] = res
    return out


def _trim():
    """Hand the freed heap memory back to the operating system (glibc), as a long pause might."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def bench_cold(T: int, N: int, H: int, repeats: int) -> dict:
    """Forward + backward seconds, warm (right after a call of the same kind) and cold (after the
    freed memory went back to the operating system), with fresh arrays and with `reuse=`."""
    rng = np.random.default_rng(0)
    params = hd.init_lstm(1, H, rng, dtype=np.float32)
    x = rng.random((T, N, 1), dtype=np.float32)
    dhT = rng.standard_normal((N, H)).astype(np.float32)
    held = {"cache": None}  # the cache kept between calls (reuse only)

    def step(reuse: bool) -> tuple[float, float]:
        t0, cpu0 = time.perf_counter(), time.process_time()
        _, cache = hd.lstm_forward(params, x, reuse=held["cache"] if reuse else None)
        hd.lstm_backward(None, cache, dhT=dhT)
        held["cache"] = cache if reuse else None
        return time.perf_counter() - t0, time.process_time() - cpu0

    times = {f"{kind}-{temp}": [] for kind in ("fresh", "reuse") for temp in ("warm", "cold")}
    for r in range(repeats):
        for kind in (("fresh", "reuse") if r % 2 == 0 else ("reuse", "fresh")):
            reuse = kind == "reuse"
            held["cache"] = None
            step(reuse)
            times[f"{kind}-warm"].append(step(reuse))
            _trim()
            times[f"{kind}-cold"].append(step(reuse))
    out = {"T": T, "N": N, "H": H, "repeats": repeats}
    for clock, i in (("wall", 0), ("cpu", 1)):
        med = {k: float(np.median([t[i] for t in v])) for k, v in times.items()}
        out[clock] = {"times": {k: [t[i] for t in v] for k, v in times.items()}, "median": med}
        print(f"forward + backward ({clock} s): " + ", ".join(f"{k} {v:.3f}" for k, v in med.items()), flush=True)
    return out


def machine() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "processor": platform.processor(), "cpus": os.cpu_count(),
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}}
    try:
        import threadpoolctl

        info["blas"] = [{k: lib.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                        for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
    except ImportError:
        pass
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test")
    ap.add_argument("--repeats", type=int, default=5, help="train/maths pairs per setting")
    ap.add_argument("--cold", action="store_true", help="also the cold-call effect (pixel-MNIST-like)")
    ap.add_argument("--only", choices=tuple(SETTINGS), default=None, help="one setting only")
    ap.add_argument("--out", default=None, help="JSON file for the results")
    args = ap.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:
        print("threadpoolctl is not installed: one thread through OPENBLAS_NUM_THREADS=1 only", flush=True)
    settings = QUICK if args.quick else SETTINGS
    if args.only:
        settings = {args.only: settings[args.only]}
    epochs = {k: 1 for k in settings} if args.quick else EPOCHS
    res = {"machine": machine()}
    with tempfile.TemporaryDirectory() as folder:
        res["iteration"] = bench_iteration(settings, epochs, 2 if args.quick else args.repeats, Path(folder))
    if args.cold:
        res["cold"] = bench_cold(*((20, 4, 8) if args.quick else (784, 100, 128)), repeats=2 if args.quick else 5)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
