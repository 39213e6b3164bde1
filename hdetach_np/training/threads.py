"""How many threads the BLAS under numpy uses: the package's one place for it.

At the sizes the toolkit trains (N ~ 100, H ~ 100-128) the per-step matmuls are small. A second
BLAS thread gains little on an idle machine and loses a lot when another process keeps a core busy,
because the BLAS's waiting thread spins and competes with the main one (benchmarks/bench_threads.py,
numbers in benchmarks/README.md). The policy `"auto"` is therefore one thread.

    import hdetach_np as hd
    with hd.training.blas_threads("auto"):     # for a block: auto, a count, or 0 (leave BLAS as it is)
        ...
    hd.training.blas_threads(1)                # or from now on

The command line takes the same values: `--threads auto` (the default), `--threads 2`, `--threads 0`.
Before Python starts, OPENBLAS_NUM_THREADS=1 (MKL: MKL_NUM_THREADS, others: OMP_NUM_THREADS) does the same.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

AUTO_THREADS = 1  # what "auto" means; measured in benchmarks/bench_threads.py


def resolve_threads(threads) -> int:
    """The BLAS thread count of a policy: "auto" -> AUTO_THREADS; an integer n >= 0 -> n (0: unchanged)."""
    if threads == "auto":
        return AUTO_THREADS
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
    counts = sorted({i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"})
    now = "/".join(map(str, counts)) or "?"
    return f"{threads} ({now} BLAS thread{'' if counts == [1] else 's'})"
