"""Speed of this checkout against another one (e.g. the commit before a change), in one process.

Run from the repository root, with a second checkout of the older commit next to it:

    git worktree add --detach ../base COMMIT
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_versions.py --base ../base \
        --out benchmarks/results/compare_versions.json
    python benchmarks/compare_versions.py --base ../base --quick --out /tmp/compare.json   # seconds

The package of --base is loaded under another name (`hdetach_np_base`), so both versions run in
the same process on the same data. Each configuration times the two alternately (base then new,
the order reversed every other repeat) after a warm-up, with one BLAS thread (threadpoolctl), and
reports the median seconds of each and the ratios new / base of the medians, for the wall clock
and for the process's CPU time (with one thread, the work done; far less disturbed by other jobs
on the cores than the wall time).

The configurations are those of bench_lstm.py (its main table, detach sweep and scaling grid at
T=100) and bench_paths.py (`gradient_paths`, and `temporal_credit` as well), built by the same
functions of bench_lstm.py for both versions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def load_package(name: str, root: Path):
    """Import the hdetach_np folder under `root` as the package `name`."""
    pkg = root / "hdetach_np"
    spec = importlib.util.spec_from_file_location(name, pkg / "__init__.py", submodule_search_locations=[str(pkg)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_bench(name: str, hd):
    """A copy of bench_lstm.py whose functions use the package `hd`."""
    spec = importlib.util.spec_from_file_location(name, HERE / "bench_lstm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    module.hd = hd
    return module


def paths_case(hd, T, N, D, H, steps, seed=0):
    """The adjoints of bench_paths.py (its `make_case`), computed with the package `hd`."""
    spec = importlib.util.spec_from_file_location("bench_paths_for_" + hd.__name__, HERE / "bench_paths.py")
    bench_paths = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_paths)
    return bench_paths.make_case(T, N, D, H, steps, seed=seed, hd=hd)


def variants(bench, hd, quick: bool) -> dict:
    """name -> a function of no arguments that runs one iteration, for one version."""
    C = bench.Config
    copying = C("copying", T=120, N=100, D=10, H=128, K=9, loss="all")
    pixel = C("pixel-mnist", T=784, N=100, D=1, H=128, K=10, loss="last")
    if quick:
        copying, pixel = C("copying", 20, 16, 10, 32, 9, "all"), C("pixel-mnist", 40, 16, 1, 32, 10, "last")
    out = {}
    for dname, dt in (("f32", np.float32), ("f64", np.float64)):
        for p in (0.0, 0.25):
            out[f"copying ours-{dname}-p{p:g}"] = bench.ours(copying, dt, p)
    out["copying ours-f32-p0-fresh"] = bench.ours(copying, np.float32, 0.0, reuse=False)
    out["pixel-mnist ours-f32-p0"] = bench.ours(pixel, np.float32, 0.0)
    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        out[f"sweep backward p={p:g}"] = bench.ours_backward_only(copying, np.float32, p)
    for H in (16,) if quick else (64, 128, 256):
        for N in (1, 32, 100):
            cfg = C(f"T100-H{H}-N{N}", T=20 if quick else 100, N=N, D=1, H=H, K=1, loss="all")
            out[f"scaling {cfg.name}"] = bench.ours_backward_only_with_forward(cfg)
    for name, (T, steps) in {"copying": (120, "all"), "pixel": (784, "last")}.items():
        T = 20 if quick else T
        dhs, cache = paths_case(hd, T, 16 if quick else 100, 1, 32 if quick else 128, steps)
        out[f"paths-{name} lstm_backward"] = lambda dhs=dhs, cache=cache: hd.lstm_backward(dhs, cache)
        out[f"paths-{name} gradient_paths"] = lambda dhs=dhs, cache=cache: hd.gradient_paths(dhs, cache)
        out[f"paths-{name} temporal_credit"] = lambda dhs=dhs, cache=cache: hd.temporal_credit(dhs, cache)
    return out


def compare(base: dict, new: dict, seconds: float, min_repeats: int, max_repeats: int) -> dict:
    results = {}
    for name in new:
        fns = {"base": base[name], "new": new[name]}
        for f in fns.values():  # warm-up
            f()
        times = {k: {"wall": [], "cpu": []} for k in fns}
        start, r = time.perf_counter(), 0
        while r < min_repeats or (r < max_repeats and time.perf_counter() - start < seconds):
            for k in ("base", "new") if r % 2 == 0 else ("new", "base"):
                w0, c0 = time.perf_counter(), time.process_time()
                fns[k]()
                times[k]["cpu"].append(time.process_time() - c0)
                times[k]["wall"].append(time.perf_counter() - w0)
            r += 1
        row = {"repeats": r}
        for clock in ("wall", "cpu"):
            b, n = np.array(times["base"][clock]), np.array(times["new"][clock])
            row[clock] = {"base_ms": float(np.median(b) * 1e3), "new_ms": float(np.median(n) * 1e3),
                          "ratio_of_medians": float(np.median(n) / np.median(b)),
                          "median_of_ratios": float(np.median(n / b))}
        results[name] = row
        print(f"{name:<36} {r:>3} x  cpu {row['cpu']['base_ms']:9.2f} -> {row['cpu']['new_ms']:9.2f} ms "
              f"(x{row['cpu']['ratio_of_medians']:.3f})   wall x{row['wall']['ratio_of_medians']:.3f}", flush=True)
    return results


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="root of the other checkout (holds hdetach_np/)")
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--seconds", type=float, default=8.0, help="time budget per configuration")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and 3 repeats (a smoke test)")
    ap.add_argument("--only", default=None, help="run only the configurations whose name contains this")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_info, threadpool_limits

    sys.path.insert(0, str(ROOT))
    import hdetach_np as hd_new

    hd_base = load_package("hdetach_np_base", Path(args.base).resolve())
    new = variants(load_bench("bench_lstm_new", hd_new), hd_new, args.quick)
    base = variants(load_bench("bench_lstm_base", hd_base), hd_base, args.quick)
    if args.only:
        new = {k: v for k, v in new.items() if args.only in k}
    with threadpool_limits(1, user_api="blas"):
        blas = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
        print(f"BLAS: {blas}", flush=True)
        seconds, lo, hi = (0.0, 3, 3) if args.quick else (args.seconds, 7, 60)
        results = compare(base, new, seconds, lo, hi)
    out = {
        "command": "python benchmarks/compare_versions.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "new": str(ROOT), "base": str(Path(args.base).resolve()), "numpy": np.__version__,
        "python": platform.python_version(), "cpus": os.cpu_count(), "blas": blas,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "machine": platform.machine(), "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
