"""BLAS threads at the toolkit's sizes: is the `--threads auto` policy close to the best count?

One training iteration (`lstm_forward` reusing its cache, readout, softmax cross-entropy, and the
backward pass of all three; float32) is timed at three sizes the toolkit trains:

- copying:   delay 10 (sequences of 30 steps), N = 100, D = 10 (one-hot), H = 128, loss at every step;
- pixel-49:  pixel MNIST with 16 pixels per step, T = 49, N = 100, D = 16, H = 100, loss at the last step;
- pixel-784: pixel MNIST one pixel per step, T = 784, N = 100, D = 1, H = 100, loss at the last step;

with every thread count from 1 to the number of cores, in two conditions: "idle" (nothing started
by the benchmark) and "busy" (a second process spinning `while True: pass`, saturating one core).
Within a condition the thread counts are interleaved (1 2 ... then ... 2 1), after a warm-up, and
the median seconds per iteration is reported with its ratio to the best count. In each condition
`hd.training.resolve_threads("auto")` is asked, as a run would ask it at its start, which count it
chooses; the policy is good when the ratio of that count stays near 1 in both conditions.

Run from the repository root (numpy and threadpoolctl, both dependencies of hdetach-np):

    python benchmarks/bench_threads.py                     # about 2 minutes on 2 cores
    python benchmarks/bench_threads.py --quick             # seconds (smoke test)
    python benchmarks/bench_threads.py --out benchmarks/results/bench_threads.json

On a machine shared with other jobs "idle" only means that the benchmark adds no load: the load
average at the start of each condition is recorded next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZES = {
    "copying": dict(T=30, N=100, D=10, H=128, K=9, steps="all"),
    "pixel-49": dict(T=49, N=100, D=16, H=100, K=10, steps="last"),
    "pixel-784": dict(T=784, N=100, D=1, H=100, K=10, steps="last"),
}


def make_iteration(T, N, D, H, K, steps, seed=0):
    """A function running one training iteration (forward, readout, loss, backward) at this size."""
    import hdetach_np as hd

    rng = np.random.default_rng(seed)
    params = hd.init_lstm(D, H, rng, dtype=np.float32)
    readout = hd.init_linear(H, K, rng, dtype=np.float32)
    x = rng.random((T, N, D), dtype=np.float32)
    y = rng.integers(0, K, size=(T, N))
    state = {"cache": None}

    def iteration():
        hs, cache = hd.lstm_forward(params, x, reuse=state["cache"])  # (T, N, H)
        logits, lcache = hd.linear_forward(readout, hs)  # (T, N, K)
        _, dlogits = hd.softmax_cross_entropy(logits, y, steps=steps)
        hd.lstm_backward(hd.linear_backward(dlogits, lcache).h, cache)
        state["cache"] = cache

    return iteration


def time_counts(iteration, counts, repeats: int, calls: int) -> dict:
    """Median seconds per call of `iteration` under each BLAS thread count (interleaved)."""
    from threadpoolctl import threadpool_limits

    times = {n: [] for n in counts}
    for n in counts:  # warm-up
        with threadpool_limits(n, user_api="blas"):
            iteration()
    for r in range(repeats):
        for n in (counts if r % 2 == 0 else counts[::-1]):
            with threadpool_limits(n, user_api="blas"):
                t0 = time.perf_counter()
                for _ in range(calls):
                    iteration()
                times[n].append((time.perf_counter() - t0) / calls)
    return {n: float(np.median(v)) for n, v in times.items()}


def spinner():
    """Start a process that keeps one core busy; the caller terminates it."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run(quick: bool) -> dict:
    import hdetach_np as hd

    cores = os.cpu_count() or 1
    counts = list(range(1, cores + 1))
    repeats, calls = (2, 1) if quick else (7, 3)
    from threadpoolctl import threadpool_info

    blas = [{k: i.get(k) for k in ("internal_api", "version", "architecture")}
            for i in threadpool_info() if i.get("user_api") == "blas"]
    out = {"cores": cores, "counts": counts, "repeats": repeats, "calls_per_repeat": calls,
           "numpy": np.__version__, "blas": blas, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
           "conditions": {}}
    for condition in ("idle", "busy"):
        proc = spinner() if condition == "busy" else None
        try:
            time.sleep(1.0 if proc else 0.0)
            busy = hd.training.threads.busy_cores(0.5)
            auto = hd.training.auto_threads(busy)  # what a run starting now would choose
            cond = {"load_average_at_start": os.getloadavg()[0], "busy_cores_at_start": busy, "auto": auto,
                    "sizes": {}}
            for name, size in SIZES.items():
                if quick:
                    size = {**size, "T": min(size["T"], 20)}
                med = time_counts(make_iteration(**size), counts, repeats, calls)
                best = min(med.values())
                cond["sizes"][name] = {"seconds": {str(n): s for n, s in med.items()},
                                       "ratio_to_best": {str(n): s / best for n, s in med.items()}}
                print(f"{condition:>5} {name:>10}: " + "  ".join(
                    f"{n} thread(s) {s * 1e3:8.2f} ms ({s / best:.2f}x best)" for n, s in med.items())
                    + f"  auto: {auto}", flush=True)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait()
        out["conditions"][condition] = cond
    return out


def markdown(res: dict) -> str:
    counts = [str(n) for n in res["counts"]]
    lines = ["| condition | size | " + " | ".join(f"{n} thread(s): ms (x best)" for n in counts)
             + " | auto chose | auto / best |", "|---" * (len(counts) + 4) + "|"]
    for cond, c in res["conditions"].items():
        for name, r in c["sizes"].items():
            cells = [f"{r['seconds'][n] * 1e3:.2f} ({r['ratio_to_best'][n]:.2f})" for n in counts]
            lines.append(f"| {cond} (other processes: {c['busy_cores_at_start']:.2f} cores) | {name} | "
                         + " | ".join(cells) + f" | {c['auto']} | {r['ratio_to_best'][str(c['auto'])]:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--quick", action="store_true", help="short sequences and few repeats (seconds)")
    ap.add_argument("--out", default=None, help="write the results to this JSON file")
    args = ap.parse_args(argv)
    res = run(args.quick)
    print(markdown(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
