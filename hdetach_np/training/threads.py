"""How many threads the BLAS under numpy uses: the package's one place for it.

At the sizes the toolkit trains (N ~ 100, H ~ 100-128) the per-step matmuls are small. On an idle
machine a second BLAS thread makes an iteration up to about a quarter faster; when another process
keeps a core busy it makes it many times slower, because the BLAS's waiting thread spins and
competes with the main one for that core (benchmarks/bench_threads.py, numbers in
benchmarks/README.md). So the policy `"auto"` looks before it chooses: it measures, over a fifth of
a second, how much CPU the machine's other processes are using, and takes one thread per core
they leave free, at most AUTO_MAX_THREADS (more were not measured) and at least one.

The choice is made once, when a run starts (`blas_threads("auto")`), and recorded in the run
folder's versions.json; a run resumed with "auto" takes the recorded count again, because one and
two threads can round float32 results differently in their last bits. A run that starts on an
idle machine with two threads and is then joined by another job slows down: the training progress
line shows it; `--threads 1` is the choice for a machine shared with other work.

    import hdetach_np as hd
    with hd.training.blas_threads("auto"):     # for a block: auto, a count, or 0 (leave BLAS as it is)
        ...
    hd.training.blas_threads(1)                # or from now on

The command line takes the same values: `--threads auto` (the default), `--threads 2`, `--threads 0`.
Before Python starts, OPENBLAS_NUM_THREADS=1 (MKL: MKL_NUM_THREADS, others: OMP_NUM_THREADS) does the same.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

AUTO_MAX_THREADS = 2  # "auto" never takes more threads than this (more were not measured)
# another process counts as holding a core once it uses more than this fraction of one
BUSY_CORE_THRESHOLD = 0.25


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells, else os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs since boot from /proc/stat (Linux), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])  # user nice system idle iowait irq softirq steal


def busy_cores(interval: float = 0.2) -> float | None:
    """How many cores the machine's other processes keep busy, e.g. 0.02 (idle) or 1.0 (one core
    saturated), measured over `interval` seconds while this process sleeps. Linux: from /proc/stat;
    elsewhere: the 1-minute load average (slower to react); None if neither is available."""
    before = _cpu_times()
    if before is None:
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):
            return None
    time.sleep(interval)
    after = _cpu_times()
    d_busy, d_total = after[0] - before[0], after[1] - before[1]
    if d_total <= 0:
        return None
    return max(0.0, d_busy / d_total * (os.cpu_count() or 1))


def auto_threads(busy: float | None = None) -> int:
    """The count "auto" chooses: one thread per usable core that other processes leave free (a
    process using more than BUSY_CORE_THRESHOLD of a core holds it), between 1 and
    AUTO_MAX_THREADS. `busy`: other processes' load in cores (default: measured by `busy_cores`);
    when it cannot be measured, one thread (the choice with the small worst case)."""
    if busy is None:
        busy = busy_cores()
    if busy is None:
        return 1
    held = max(0, math.ceil(busy - BUSY_CORE_THRESHOLD))  # cores other processes hold
    return max(1, min(AUTO_MAX_THREADS, usable_cores() - held))


def resolve_threads(threads) -> int:
    """The BLAS thread count of a policy: "auto" -> `auto_threads()` (measured now); an integer
    n >= 0 -> n (0: unchanged)."""
    if threads == "auto":
        return auto_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
        raise ValueError(f"threads must be 'auto' or an integer >= 0 (0 leaves BLAS as it is), got {threads!r}")
    return int(threads)


def parse_threads(text: str):
    """The `--threads` value of the command line: "auto" or an integer >= 0 (argparse `type=`)."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"--threads must be 'auto' or an integer >= 0, got {text!r}")
    return n


def blas_threads(threads="auto"):
    """Limit the BLAS libraries loaded in this process to `threads` ("auto", n >= 1, or 0 = unchanged).

    Takes effect at once and returns a threadpoolctl limiter; used as a context manager it restores
    the previous counts on exit.
    """
    n = resolve_threads(threads)
    return threadpool_limits(limits=n or None, user_api="blas")


def describe_threads(threads) -> str:
    """A line for logs: the policy and the BLAS threads in effect now, e.g. "auto (1 thread)"."""
    counts = sorted({lib["num_threads"] for lib in blas_summary()["libraries"]})
    now = "/".join(map(str, counts)) or "?"
    return f"{threads} ({now} BLAS thread{'' if counts == [1] else 's'})"


def blas_summary() -> dict:
    """The BLAS libraries loaded in this process and their thread counts now, for versions.json:
    {"threads": n (None if none is visible), "libraries": [{internal_api, version, architecture,
    num_threads}, ...]}. The architecture is the kernel family OpenBLAS runs (e.g. Haswell,
    SkylakeX), which decides the last bits of float32 results."""
    libs = [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info() if info.get("user_api") == "blas"]
    counts = {lib["num_threads"] for lib in libs}
    return {"threads": counts.pop() if len(counts) == 1 else None, "libraries": libs}


def recorded_threads(versions: dict) -> int | None:
    """The BLAS thread count a run started with, from its versions.json (None if not recorded)."""
    n = (versions.get("blas") or {}).get("threads") if isinstance(versions, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else None
