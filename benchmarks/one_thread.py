"""Holding hdetach-np, TensorFlow and JAX to one thread each in one process, and checking it.
Used by `bench_frameworks.py` (its docstring says how and why).

    libs = load_frameworks(["tensorflow", "jax"])   # before anything runs
    limits = limit_threadpools()                    # numpy's BLAS (and any OpenMP) to 1; keep `limits`
    t = timed_call(step, mask)                      # wall, CPU, per-thread CPU, runnable time
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import numpy as np

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


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
        out["jax"] = {"XLA_FLAGS": os.environ.get("XLA_FLAGS"),
                      "client_created_on_one_core": hasattr(os, "sched_setaffinity"),
                      "threads_on_one_core": one_core_threads()}
    return out


def threads_control(n_threads: int = 2, size: int = 1000, calls: int = 20) -> dict | None:
    """The thread check on numpy matmuls with `n_threads` BLAS threads: what several threads look like."""
    if threadpoolctl is None:
        return None
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    matmul = SimpleNamespace(run=lambda mask: a @ a, uses_mask=False)
    with threadpoolctl.threadpool_limits(limits=n_threads, user_api="blas"):
        a @ a
        times = [timed_call(matmul, None) for _ in range(calls)]
    return {"blas_threads": n_threads, "matmul": f"({size}, {size}) float32", "calls": calls,
            **cpu_over_wall(times), **busy_threads(times)}


# ---------------------------------------------------------------------------------------------
# Timing one call, and what the thread check reads from it
# ---------------------------------------------------------------------------------------------


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


def timed_call(step, mask) -> dict:
    """One call of a step (anything with run(mask) and uses_mask): its wall and process CPU seconds;
    the CPU seconds of each thread that ran during it, and the seconds its threads were runnable (on
    a core or waiting for one) summed over threads, over `bracket` seconds (both read outside the timed region)."""
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
    `share` of it, how many of those may run on one core only, and the busiest thread's share.
    Says which threads worked, not whether at once."""
    per_thread: dict[str, float] = {}
    for c in calls:
        for k, v in c["threads"].items():
            per_thread[k] = per_thread.get(k, 0.0) + v
    total = sum(per_thread.values())
    if total == 0:
        return {"threads_over_5pct": None, "of_them_on_one_core": None, "busiest_thread_share": None}
    busy = [k for k, v in per_thread.items() if v > share * total]
    return {"threads_over_5pct": len(busy), "of_them_on_one_core": sum(_on_one_core(k) for k in busy),
            "busiest_thread_share": max(per_thread.values()) / total}


def _on_one_core(tid: str) -> bool:
    try:
        return len(os.sched_getaffinity(int(tid))) == 1 and (os.cpu_count() or 1) > 1
    except (OSError, AttributeError):  # a thread that has ended, or no affinity on this system
        return False
