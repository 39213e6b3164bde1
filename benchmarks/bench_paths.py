"""Cost of the exact cell/h split: `gradient_paths` (one two-stream pass) against a plain
`lstm_backward`, and against the two-call reference `gradient_paths_reference`.

float32, two configurations:
- copying: T = 120 (delay 100 + 20), N = 100, D = 1, H = 128, loss at every step;
- pixel:   T = 784, N = 100, D = 1, H = 128, loss at the last step (pixel-MNIST-like).
The adjoints dhs come from a readout and softmax cross-entropy. Candidates: `lstm_backward`,
`gradient_paths`, the two-call reference, and one plain forward + backward (`lstm_forward` reusing
its cache, then `lstm_backward`: the unit of the speed targets). Each repeat runs every candidate
once, in turn (interleaved, the order reversed every other repeat), after one warm-up call each.
Two clocks are recorded for every call: wall time (perf_counter) and the process's CPU time
(process_time). With one BLAS thread the CPU time is the work done, and it is far less disturbed
by other jobs competing for the cores than the wall time. The tables show, for each clock, medians
and the ratio of medians to `lstm_backward`, the median of the per-repeat ratios, and the minimum
times and their ratio.

Run from the repository root (after `pip install -e .`):

    python benchmarks/bench_paths.py --out benchmarks/results/bench_paths.json
    python benchmarks/bench_paths.py --blas-threads 1 --out /tmp/bench1.json   # needs threadpoolctl
    python benchmarks/bench_paths.py --quick --out /tmp/bench.json             # seconds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time

import numpy as np

CONFIGS = {
    "copying": dict(T=120, N=100, D=1, H=128, steps="all"),
    "pixel": dict(T=784, N=100, D=1, H=128, steps="last"),
}


def make_case(T, N, D, H, steps, seed=0, hd=None):
    """The adjoints of a readout and softmax cross-entropy on a float32 LSTM, and its cache. hd: the
    hdetach_np module to use (default: the installed one; compare_versions.py passes another version)."""
    if hd is None:
        import hdetach_np as hd

    rng = np.random.default_rng(seed)
    params = hd.init_lstm(D, H, rng, dtype=np.float32)
    readout = hd.init_linear(H, 10, rng, dtype=np.float32)
    x = rng.random((T, N, D), dtype=np.float32)
    y = rng.integers(0, 10, size=(T, N))
    hs, cache = hd.lstm_forward(params, x)
    logits, lcache = hd.linear_forward(readout, hs)
    _, dlogits = hd.softmax_cross_entropy(logits, y, steps=steps)
    return hd.linear_backward(dlogits, lcache).h, cache


def run(name, cfg, repeats):
    import hdetach_np as hd

    dhs, cache = make_case(**cfg)
    params, x = cache.params, np.array(cache.x)
    candidates = {
        "lstm_backward": lambda: hd.lstm_backward(dhs, cache),
        "gradient_paths": lambda: hd.gradient_paths(dhs, cache),
        "reference (2 calls)": lambda: hd.paths.gradient_paths_reference(dhs, cache),
        "forward + backward": lambda: hd.lstm_backward(dhs, hd.lstm_forward(params, x, reuse=cache)[1]),
    }
    # agreement (float32): the total of the split against the plain backward
    g, pg = candidates["lstm_backward"](), candidates["gradient_paths"]()
    err = max(float(np.linalg.norm(getattr(pg.total, f) - getattr(g, f)) / np.linalg.norm(getattr(g, f)))
              for f in ("Wx", "Wh", "b"))
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    times = {c: {k: [] for k in candidates} for c in clocks}
    for f in candidates.values():  # warm-up
        f()
    names = list(candidates)
    for r in range(repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            w0, c0 = time.perf_counter(), time.process_time()
            candidates[k]()
            times["cpu"][k].append(time.process_time() - c0)
            times["wall"][k].append(time.perf_counter() - w0)
    tables = {}
    for clock, tk in times.items():
        base = np.array(tk["lstm_backward"])
        rows = {}
        for k, v in tk.items():
            v = np.array(v)
            rows[k] = {
                "median_ms": float(np.median(v) * 1e3),
                "ratio_of_medians": float(np.median(v) / np.median(base)),
                "median_of_ratios": float(np.median(v / base)),
                "min_ms": float(np.min(v) * 1e3),
                "ratio_of_mins": float(np.min(v) / np.min(base)),
                "times_ms": (v * 1e3).round(3).tolist(),
            }
        tables[clock] = rows
    return {"config": {k: v for k, v in cfg.items()}, "repeats": repeats, "rel_error_total_vs_plain": err,
            "rows": tables["wall"], "rows_cpu": tables["cpu"]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--quick", action="store_true", help="short sequences and 3 repeats (seconds)")
    p.add_argument("--blas-threads", type=int, default=None, help="limit BLAS threads (needs threadpoolctl)")
    args = p.parse_args(argv)
    configs = {k: dict(v) for k, v in CONFIGS.items()}
    if args.quick:
        configs["copying"]["T"], configs["pixel"]["T"], args.repeats = 20, 40, 3
    limit = contextlib.nullcontext()
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=args.blas_threads, user_api="blas")
    with limit:
        results = {name: run(name, cfg, args.repeats) for name, cfg in configs.items()}
    out = {
        "command": "python benchmarks/bench_paths.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "numpy": np.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        "blas_threads": args.blas_threads, "dtype": "float32", "results": results,
    }
    for clock, key in (("wall time", "rows"), ("CPU time", "rows_cpu")):
        print(f"{clock}:")
        print(f"{'config':<9} {'candidate':<20} {'median ms':>10} {'x lstm_backward':>16} {'median ratio':>13} "
              f"{'min ms':>8} {'x (mins)':>9}")
        for name, r in results.items():
            for k, row in r[key].items():
                print(f"{name:<9} {k:<20} {row['median_ms']:10.1f} {row['ratio_of_medians']:16.2f} "
                      f"{row['median_of_ratios']:13.2f} {row['min_ms']:8.1f} {row['ratio_of_mins']:9.2f}")
    for name, r in results.items():
        err = r["rel_error_total_vs_plain"]
        print(f"{name:<9} (float32 rel. error of the split's total vs lstm_backward: {err:.1e})")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
