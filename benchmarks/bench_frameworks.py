"""Speed of one training-loop step: hdetach-np against TensorFlow and JAX, one thread each.

Run from the repository root; TensorFlow and JAX come with the `frameworks` extra, and each one that
is not installed is skipped with a message:

    pip install -e ".[frameworks]"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_frameworks.py   # about 3 minutes
    python benchmarks/bench_frameworks.py --quick --out /tmp/fw.json     # tiny sizes, a smoke test
    python benchmarks/bench_frameworks.py --frameworks jax                # leave TensorFlow out
    python benchmarks/bench_frameworks.py --configs copying               # one config
    python benchmarks/bench_frameworks.py --markdown benchmarks/results/bench_frameworks.json

A step (see framework_steps.py): LSTM forward, linear readout and softmax cross-entropy at every
step, backward to all parameters with an h-detach keep-mask (one Bernoulli per step shared by the
batch, p = 0.5), float32. Variants: hdetach-np, tf-cell (a graph-mode custom cell with the mask as
mask * h + (1 - mask) * stop_gradient(h) before the gates), jax-scan (jit(value_and_grad) over
lax.scan, the same mask), and, without a mask, tf-keras-lstm (Keras' LSTM) against
hdetach-np-nomask. Configs: copying (T=120, N=100, D=10, H=128, K=9), pixel-mnist (T=784, N=100,
D=1, H=128, K=10) and copying-delay10 (the README Results' setting: delay 10 = 30 steps, one-hot
D=10, N=100, H=128, K=9).

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
import hdetach_np as hd  # noqa: E402
import framework_steps as fs  # noqa: E402

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"
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
# Loading the frameworks, one thread each
# ---------------------------------------------------------------------------------------------


def load_frameworks(wanted) -> dict:
    """Import the wanted frameworks that are installed, each held to one thread. Returns
    {"tensorflow": tf, "keras": keras, "jax": jax} for those found; prints a line for each missing."""
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()  # before any import
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up log lines
    libs = {}
    if "tensorflow" in wanted:
        try:
            import tensorflow as tf
        except ImportError as e:
            print(f"TensorFlow is not installed ({e}): skipping tf-cell and tf-keras-lstm "
                  "(pip install 'hdetach-np[frameworks]')", flush=True)
        else:  # before any op runs (TensorFlow raises RuntimeError once its runtime has started)
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            import keras

            libs.update(tensorflow=tf, keras=keras)
    if "jax" in wanted:
        try:
            import jax
        except ImportError as e:
            print(f"JAX is not installed ({e}): skipping jax-scan (pip install 'hdetach-np[frameworks]')", flush=True)
        else:
            on_one_core(jax.devices)  # creates JAX's CPU client and XLA's thread pool
            libs["jax"] = jax
    return libs


def on_one_core(create) -> bool:
    """Call `create()` while this thread may run on one core only, then give it back every core.

    XLA sizes its CPU thread pool by the cores the process may use when the pool is made, and the
    threads it starts keep that one-core affinity: JAX's work then runs on one core, one thread at
    a time. Returns False where the affinity cannot be set (not Linux): then nothing is restricted.
    """
    if not hasattr(os, "sched_setaffinity"):
        create()
        return False
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        create()
    finally:
        os.sched_setaffinity(0, cores)
    return True


def one_core_threads() -> dict[str, int]:
    """{thread name: count} of this process's threads that may run on a single core only."""
    names: dict[str, int] = {}
    if not hasattr(os, "sched_getaffinity") or (os.cpu_count() or 1) < 2:
        return names
    for tid in os.listdir("/proc/self/task"):
        try:
            if len(os.sched_getaffinity(int(tid))) == 1:
                with open(f"/proc/self/task/{tid}/comm") as f:
                    name = f.read().strip()
                names[name] = names.get(name, 0) + 1
        except OSError:  # a thread that has just ended
            continue
    return names


def limit_threadpools():
    """Every thread pool threadpoolctl finds (numpy's BLAS, OpenMP runtimes) to 1; keep the result."""
    if threadpoolctl is None:
        print("threadpoolctl is not installed: numpy's BLAS uses the threads the environment sets", flush=True)
        return None
    return threadpoolctl.threadpool_limits(limits=1)


def thread_settings(libs: dict) -> dict:
    out = {"numpy": "threadpoolctl: every thread pool limited to 1" if threadpoolctl else "environment"}
    if "tensorflow" in libs:
        th = libs["tensorflow"].config.threading
        out["tensorflow"] = {"intra_op": th.get_intra_op_parallelism_threads(),
                             "inter_op": th.get_inter_op_parallelism_threads()}
    if "jax" in libs:
        out["jax"] = {"XLA_FLAGS": os.environ.get("XLA_FLAGS"), "client_created_on_one_core": True,
                      "threads_on_one_core": one_core_threads()}
    return out


def threads_control(n_threads: int = 2, size: int = 1000, calls: int = 20) -> dict | None:
    """The thread check on numpy matmuls with `n_threads` BLAS threads: what several threads look like."""
    if threadpoolctl is None:
        return None
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    matmul = fs.Step("control", lambda mask: a @ a, None, False, 0.0)
    with threadpoolctl.threadpool_limits(limits=n_threads, user_api="blas"):
        a @ a
        times = [timed_call(matmul, None) for _ in range(calls)]
    return {"blas_threads": n_threads, "matmul": f"({size}, {size}) float32", "calls": calls,
            **cpu_over_wall(times), **busy_threads(times)}


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


def thread_times() -> dict[str, tuple[int, int]]:
    """{thread id: (ns it has run on a core, ns it has waited for one)} for the threads of this
    process (Linux /proc/self/task/*/schedstat; empty elsewhere)."""
    out = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                run, wait = f.read().split()[:2]
            out[tid] = (int(run), int(wait))
        except (OSError, ValueError):  # a thread that has just ended
            continue
    return out


def timed_call(step: fs.Step, mask) -> dict:
    """One call of a step: its wall and process CPU seconds; the CPU seconds of each thread that ran
    during it, and the seconds its threads were runnable (on a core or waiting for one) summed over
    threads, over `bracket` seconds (both read outside the timed region)."""
    b0 = time.perf_counter()
    before = thread_times()
    c0, w0 = time.process_time(), time.perf_counter()
    step.run(mask if step.uses_mask else None)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    after = thread_times()
    bracket = time.perf_counter() - b0
    ran = {k: (v[0] - before.get(k, (0, 0))[0]) * 1e-9 for k, v in after.items()}
    waited = {k: (v[1] - before.get(k, (0, 0))[1]) * 1e-9 for k, v in after.items()}
    return {"wall": wall, "cpu": cpu, "threads": {k: v for k, v in ran.items() if v > 0},
            "runnable": sum(ran.values()) + sum(waited.values()) if after else None, "bracket": bracket}


def cpu_over_wall(calls: list[dict]) -> dict:
    """Process CPU time over wall time across calls, and across the fastest quarter of them (the
    calls least slowed by other jobs: on a busy machine every thread waits for a core, which lowers
    CPU / wall whatever the number of threads). And the mean number of runnable threads (on a core
    or waiting for one), which other jobs do not lower: about 1 for one thread at a time."""
    wall = np.array([c["wall"] for c in calls])
    cpu = np.array([c["cpu"] for c in calls])
    fast = wall <= np.percentile(wall, 25)
    runnable = None if any(c["runnable"] is None for c in calls) else \
        sum(c["runnable"] for c in calls) / sum(c["bracket"] for c in calls)
    return {"cpu_over_wall": float(cpu.sum() / wall.sum()),
            "cpu_over_wall_fastest": float(cpu[fast].sum() / wall[fast].sum()), "runnable_threads": runnable}


def busy_threads(calls: list[dict], share: float = 0.05) -> dict:
    """How the CPU time of the calls spread over threads: how many threads each ran more than
    `share` of it, and the busiest thread's share. Says which threads worked, not whether at once."""
    per_thread: dict[str, float] = {}
    for c in calls:
        for k, v in c["threads"].items():
            per_thread[k] = per_thread.get(k, 0.0) + v
    total = sum(per_thread.values())
    if total == 0:
        return {"threads_over_5pct": None, "busiest_thread_share": None}
    return {"threads_over_5pct": sum(v > share * total for v in per_thread.values()),
            "busiest_thread_share": max(per_thread.values()) / total}


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
    print(f"{cfg.name}: " + ", ".join(f"{k} {v['ratio_of_medians']:.3f}" for k, v in ratios.items()), flush=True)
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
                      f"{ctl['cpu_over_wall_fastest']:.2f}, runnable threads {_runnable(ctl)}, threads > 5% {_threads(ctl)}."]
    return "\n".join(lines)


def _runnable(t: dict) -> str:
    return "n/a" if t["runnable_threads"] is None else f"{t['runnable_threads']:.2f}"


def _threads(t: dict) -> str:
    """'2 (0.97)': threads with more than 5% of the CPU time, and the busiest one's share."""
    if t["threads_over_5pct"] is None:
        return "n/a"
    return f"{t['threads_over_5pct']} ({t['busiest_thread_share']:.2f})"


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
