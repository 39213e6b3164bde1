"""Speed of one training-loop step: hdetach-np against TensorFlow and JAX, one thread each.

Run from the repository root; TensorFlow and JAX come with the `frameworks` extra, and each one that
is not installed is skipped with a message:

    pip install -e ".[frameworks]"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_frameworks.py   # 1.5-4 min on 2 cores
    python benchmarks/bench_frameworks.py --quick --out /tmp/fw.json     # tiny sizes, a smoke test
    python benchmarks/bench_frameworks.py --frameworks jax                # leave TensorFlow out
    python benchmarks/bench_frameworks.py --configs copying               # one config
    python benchmarks/bench_frameworks.py --markdown benchmarks/results/bench_frameworks.json

A step (framework_steps.py; the thread handling is in one_thread.py): LSTM forward, linear readout
and softmax cross-entropy at every step, backward to all parameters with an h-detach keep-mask (one
Bernoulli per step shared by the batch, p = 0.5), float32. Variants: hdetach-np, tf-cell (a
graph-mode custom cell with the mask as mask * h + (1 - mask) * stop_gradient(h) before the gates),
jax-scan (jit(value_and_grad) over lax.scan, the same mask), and, without a mask, tf-keras-lstm
(Keras' LSTM) against hdetach-np-nomask. Configs: copying (T=120, N=100, D=10, H=128, K=9),
pixel-mnist (T=784, N=100, D=1, H=128, K=10) and copying-delay10 (the README Results' setting: delay
10 = 30 steps, one-hot D=10, N=100, H=128, K=9).

Order of events, all in one process:
1. Threads, before anything runs. JAX has no thread-count option: XLA_FLAGS gets
   --xla_cpu_multi_thread_eigen=false before JAX is imported (XLA's flag for its Eigen calls), and
   JAX's CPU client is created while the process may use one core only, so that XLA's thread pool
   (sized by the usable cores) gets one thread and its threads stay on that core; the main thread
   gets every core back at once. Without this, XLA's pool has a thread per core and the
   per-thread CPU times show two of them sharing the work. TensorFlow:
   tf.config.threading.set_intra_op_parallelism_threads(1) and set_inter_op_parallelism_threads(1)
   right after import, before any op. numpy: threadpoolctl limits every thread pool it finds
   (OpenBLAS, any OpenMP runtime) to 1, after the frameworks are loaded. The check: each variant's
   process CPU time over its wall time across its timed calls, and across the fastest quarter of
   them (at most about 1 for one thread at a time; up to the number of threads working at once
   otherwise, on a machine with cores to spare: on a busy one every thread waits for a core and the
   ratio falls whatever the count). Where Linux reports per-thread scheduler times (schedstat), also
   the mean number of the process's threads that were runnable (on a core or waiting for one)
   during the calls, which a busy machine does not lower: about 1 for one thread at a time, 2 for
   two threads working at once; and how many threads ran more than 5% of a variant's CPU time, with
   the busiest one's share. As a control, numpy with 2 BLAS threads on large matmuls shows what two
   threads give on the machine as it is.
2. Gradients: each framework step against hdetach-np's, with the same weights, data and mask, in
   float64 at a tiny size (relative error < 1e-12) and in float32 at every benchmark size (< 1e-4).
   The run stops if one fails.
3. Timing, per config: building (tracing, compiling) and the first call are timed apart; then
   warm-up calls; then repeats, interleaved (A B C ... then ... C B A), each round with one fresh
   mask shared by all variants. Reported: median seconds per step, the ratio of medians
   hdetach-np / framework, and the quartiles of the per-round ratios.
The JSON holds the machine, versions, thread settings and check, the BLAS kernel (threadpoolctl),
the gradient errors and every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import framework_steps as fs  # noqa: E402
from one_thread import (  # noqa: E402
    busy_threads,
    cpu_over_wall,
    limit_threadpools,
    load_frameworks,
    thread_settings,
    threads_control,
    timed_call,
)

import hdetach_np as hd  # noqa: E402

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

FRAMEWORKS = ("tensorflow", "jax")
P_DETACH = 0.5
F64_TOL, F32_TOL = 1e-12, 1e-4
F64_SIZE = dict(T=7, N=3, D=2, H=5, K=4)
ONE_THREAD_LIMIT = 1.1  # CPU / wall above this: more than one thread at once
RATIOS = (("hdetach-np", "tf-cell"), ("hdetach-np", "jax-scan"), ("hdetach-np-nomask", "tf-keras-lstm"))


@dataclass(frozen=True)
class Config:
    name: str
    T: int
    N: int
    D: int
    H: int
    K: int
    repeats: int

    def sizes(self) -> dict:
        return dict(T=self.T, N=self.N, D=self.D, H=self.H, K=self.K)


CONFIGS = (
    Config("copying", T=120, N=100, D=10, H=128, K=9, repeats=15),
    Config("pixel-mnist", T=784, N=100, D=1, H=128, K=10, repeats=7),
    Config("copying-delay10", T=30, N=100, D=10, H=128, K=9, repeats=21),
)
QUICK_CONFIGS = (
    Config("copying", T=12, N=4, D=10, H=8, K=9, repeats=3),
    Config("pixel-mnist", T=20, N=4, D=1, H=8, K=10, repeats=3),
)


# ---------------------------------------------------------------------------------------------
# Building, checking and timing the steps
# ---------------------------------------------------------------------------------------------


def build_steps(libs: dict, problem: fs.Problem) -> list[fs.Step]:
    steps = [fs.hdetach_step(problem), fs.hdetach_step(problem, uses_mask=False)]
    if "tensorflow" in libs:
        steps += [fs.tf_cell_step(libs["tensorflow"], problem),
                  fs.tf_keras_step(libs["tensorflow"], libs["keras"], problem)]
    if "jax" in libs:
        steps.append(fs.jax_scan_step(libs["jax"], problem))
    return steps


def check(steps, problem, mask, tol: float, label: str) -> dict:
    """Gradient errors of every framework step; raises if one is above `tol`."""
    errors = {}
    for step in steps:
        if step.name.startswith("hdetach-np"):
            continue
        errors[step.name] = err = fs.gradient_errors(step, problem, mask)
        worst = max(err, key=err.get)
        print(f"gradient check {label}: {step.name} largest relative error {err[worst]:.1e} ({worst})", flush=True)
        if err[worst] >= tol:
            raise SystemExit(f"gradient check {label} failed: {step.name} {worst} relative error "
                             f"{err[worst]:.2e}, expected < {tol:g}")
    return errors


def check_float64(libs: dict) -> dict:
    """The float64 check at a tiny size (JAX inside its float64 context)."""
    problem = fs.make_problem(**F64_SIZE, dtype=np.float64, seed=1)
    mask = fs.mixed_mask(F64_SIZE["T"], np.random.default_rng(2), np.float64)
    errors = check(build_steps({k: v for k, v in libs.items() if k != "jax"}, problem), problem, mask,
                   F64_TOL, "float64")
    if "jax" in libs:
        with fs.jax_x64(libs["jax"]):
            errors.update(check([fs.jax_scan_step(libs["jax"], problem)], problem, mask, F64_TOL, "float64"))
    return errors


def interleaved(steps, T: int, repeats: int, warmup: int, rng: np.random.Generator) -> dict:
    """`warmup` untimed calls of every step, then `repeats` interleaved timed rounds.

    Returns {name: [timed_call(...) of each round]}."""
    def masks():
        return hd.sample_h_detach_mask(T, P_DETACH, rng, dtype=np.float32)

    out = {s.name: [] for s in steps}
    for _ in range(warmup):
        mask = masks()
        for s in steps:
            s.run(mask if s.uses_mask else None)
    for r in range(repeats):
        mask = masks()  # one mask per round, shared by every variant
        for s in (steps if r % 2 == 0 else steps[::-1]):
            out[s.name].append(timed_call(s, mask))
    return out


def summarise(times: dict, steps, first_calls: dict) -> tuple[dict, dict]:
    timing = {}
    for s in steps:
        t = {k: [c[k] for c in times[s.name]] for k in ("wall", "cpu")}
        q1, med, q3 = np.percentile(t["wall"], [25, 50, 75])
        timing[s.name] = {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3),
                          "min_s": float(np.min(t["wall"])), "n": len(t["wall"]),
                          **cpu_over_wall(times[s.name]), **busy_threads(times[s.name]),
                          "build_s": s.build_s, "first_call_s": first_calls[s.name],
                          "wall_s": t["wall"], "cpu_s": t["cpu"]}
    ratios = {}
    for a, b in RATIOS:
        if a in timing and b in timing:
            per_round = np.array(timing[a]["wall_s"]) / np.array(timing[b]["wall_s"])
            q1, med, q3 = np.percentile(per_round, [25, 50, 75])
            ratios[f"{a} / {b}"] = {"ratio_of_medians": timing[a]["median_s"] / timing[b]["median_s"],
                                    "per_round_median": float(med), "per_round_q1": float(q1),
                                    "per_round_q3": float(q3)}
    return timing, ratios


def bench_config(cfg: Config, libs: dict, warmup: int) -> dict:
    problem = fs.make_problem(**cfg.sizes(), dtype=np.float32, seed=0)
    steps = build_steps(libs, problem)
    mask = fs.mixed_mask(cfg.T, np.random.default_rng(2), np.float32)
    first_calls = {s.name: timed_call(s, mask)["wall"] for s in steps}  # before the check calls them
    errors = check(steps, problem, mask, F32_TOL, f"float32 {cfg.name}")
    times = interleaved(steps, cfg.T, cfg.repeats, warmup, np.random.default_rng(3))
    timing, ratios = summarise(times, steps, first_calls)
    print(f"{cfg.name}: " + (", ".join(f"{k} {v['ratio_of_medians']:.3f}" for k, v in ratios.items())
                             or "no framework to compare with"), flush=True)
    return {**asdict(cfg), "gradient_errors": errors, "timing": timing, "ratios": ratios}


# ---------------------------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------------------------


def machine_info(libs: dict) -> dict:
    versions = {"python": platform.python_version(), "numpy": np.__version__, "hdetach_np": hd.__version__}
    for name in ("tensorflow", "keras", "jax"):
        if name in libs:
            versions[name] = libs[name].__version__
    if "jax" in libs:
        import jaxlib

        versions["jaxlib"] = jaxlib.__version__
    info = {
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "versions": versions, "commit": _git_commit(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                               "OMP_NUM_THREADS", "XLA_FLAGS", "TF_ENABLE_ONEDNN_OPTS")},
        "loadavg_start": list(os.getloadavg()),
    }
    if threadpoolctl is not None:
        info["threadpools"] = [{k: lib.get(k) for k in ("user_api", "internal_api", "prefix", "version",
                                                         "architecture", "num_threads")}
                               for lib in threadpoolctl.threadpool_info()]
    return info


def _cpu_model() -> str | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or None


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def markdown(res: dict) -> str:
    """The run's tables as markdown."""
    m = res["meta"]
    blas = [f"{p['internal_api']} {p['version']} ({p['architecture']})" for p in m.get("threadpools", [])
            if p.get("user_api") == "blas"]
    lines = [f"Machine: {m['cpu']}, {m['cpu_count']} cores; "
             + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
             + f"; numpy BLAS: {', '.join(blas) or 'unknown'}; load average at start {m['loadavg_start'][0]:.1f}",
             "", "| config | " + " | ".join(res["ratio_names"]) + " |", "|---|" + "---:|" * len(res["ratio_names"])]
    for name, c in res["configs"].items():
        cells = []
        for r in res["ratio_names"]:
            v = c["ratios"].get(r)
            cells.append("" if v is None else
                         f"{v['ratio_of_medians']:.2f} ({v['per_round_q1']:.2f}-{v['per_round_q3']:.2f})")
        lines.append(f"| {name} (T={c['T']}, D={c['D']}) | " + " | ".join(cells) + " |")
    for name, c in res["configs"].items():
        lines += ["", f"**{name}** (T={c['T']}, N={c['N']}, D={c['D']}, H={c['H']}, K={c['K']}; "
                      f"{c['repeats']} rounds)", "",
                  "| variant | median s | q1 s | q3 s | CPU / wall | fastest quarter | runnable threads | threads > 5% "
                  "| build s | first call s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for v, t in c["timing"].items():
            lines.append(f"| {v} | {t['median_s']:.4f} | {t['q1_s']:.4f} | {t['q3_s']:.4f} | "
                         f"{t['cpu_over_wall']:.2f} | {t['cpu_over_wall_fastest']:.2f} | "
                         f"{_runnable(t)} | {_threads(t)} | {t['build_s']:.2f} | "
                         f"{t['first_call_s']:.3f} |")
    ctl = res.get("threads_control")
    if ctl:
        lines += ["", f"Control: numpy with {ctl['blas_threads']} BLAS threads, {ctl['matmul']} matmuls: "
                      f"CPU / wall {ctl['cpu_over_wall']:.2f}, fastest quarter "
                      f"{ctl['cpu_over_wall_fastest']:.2f}, runnable threads {_runnable(ctl)}, "
                      f"threads > 5% {_threads(ctl)}."]
    return "\n".join(lines)


def _runnable(t: dict) -> str:
    return "n/a" if t["runnable_threads"] is None else f"{t['runnable_threads']:.2f}"


def _threads(t: dict) -> str:
    """'2 (0.97, 2 on one core)': threads with more than 5% of the CPU time, the busiest one's share,
    and how many of them may run on one core only."""
    if t["threads_over_5pct"] is None:
        return "n/a"
    pinned = f", {t['of_them_on_one_core']} on one core" if t.get("of_them_on_one_core") else ""
    return f"{t['threads_over_5pct']} ({t['busiest_thread_share']:.2f}{pinned})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and 3 rounds (a smoke test)")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated, some of "
                    + ", ".join(FRAMEWORKS))
    ap.add_argument("--configs", default=",".join(c.name for c in CONFIGS),
                    help="comma-separated, some of " + ", ".join(c.name for c in CONFIGS))
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls of every variant before timing")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_frameworks.json")
    ap.add_argument("--markdown", type=Path, default=None, metavar="JSON",
                    help="print the tables of an earlier result file as markdown and exit")
    args = ap.parse_args(argv)
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    wanted = [w.strip() for w in args.frameworks.split(",") if w.strip()]
    if not wanted or any(w not in FRAMEWORKS for w in wanted):
        ap.error(f"--frameworks must name some of {', '.join(FRAMEWORKS)}, got {args.frameworks!r}")
    if args.warmup < 0:
        ap.error(f"--warmup must be >= 0, got {args.warmup}")
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    if not names or any(n not in {c.name for c in CONFIGS} for n in names):
        ap.error(f"--configs must name some of {', '.join(c.name for c in CONFIGS)}, got {args.configs!r}")

    started = time.time()
    libs = load_frameworks(wanted)
    limits = limit_threadpools()  # noqa: F841  (kept alive: the limits hold while it exists)
    meta = machine_info(libs)
    meta["threads"] = thread_settings(libs)
    print(json.dumps(meta, indent=1), flush=True)
    res = {"meta": meta, "quick": args.quick, "p_detach": P_DETACH, "dtype": "float32",
           "tolerances": {"float64": F64_TOL, "float32": F32_TOL, "one_thread": ONE_THREAD_LIMIT},
           "ratio_names": [f"{a} / {b}" for a, b in RATIOS],
           "gradient_errors_float64": check_float64(libs), "configs": {}}
    for cfg in [c for c in (QUICK_CONFIGS if args.quick else CONFIGS) if c.name in names]:
        res["configs"][cfg.name] = bench_config(cfg, libs, 1 if args.quick else args.warmup)
    res["threads_control"] = threads_control(size=200 if args.quick else 1000)
    over = {f"{c} {v} {k}": t[k] for c, r in res["configs"].items() for v, t in r["timing"].items()
            for k in ("cpu_over_wall", "cpu_over_wall_fastest") if t[k] > ONE_THREAD_LIMIT}
    res["one_thread_each"] = not over
    if over:
        print(f"above {ONE_THREAD_LIMIT}: " + ", ".join(f"{k} {v:.2f}" for k, v in over.items()), flush=True)
    meta["loadavg_end"] = list(os.getloadavg())
    meta["seconds"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(markdown(res))
    print(f"wrote {args.out} ({meta['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
