"""How many threads the BLAS under numpy uses.

At the sizes of the h-detach experiments (N ~ 100, H ~ 128) the per-step matmuls are small: on a
2-core machine two BLAS threads gain little when the machine is idle and lose a lot when another
process is busy (see benchmarks/README.md). Choose the count in one of two ways:

    OPENBLAS_NUM_THREADS=1 python train.py     # before Python starts; needs no extra package
                                               # (MKL builds: MKL_NUM_THREADS, others: OMP_NUM_THREADS)

    import hdetach_np as hd                    # inside Python, with the optional threadpoolctl
    with hd.training.blas_threads(1):                   # for a block
        ...
    hd.training.blas_threads(1)                         # or from now on

threadpoolctl is not a dependency of hdetach-np: `blas_threads` imports it when called.
"""

from __future__ import annotations

import numpy as np


def blas_threads(n: int):
    """Limit the BLAS libraries loaded in this process to `n` threads.

    Takes effect at once and returns a threadpoolctl limiter; used as a context manager it restores
    the previous counts on exit. Needs the optional package threadpoolctl.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of threads, got {n!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as err:
        raise ImportError(
            "blas_threads needs the optional package threadpoolctl (pip install threadpoolctl); "
            f"without it, set OPENBLAS_NUM_THREADS={int(n)} (MKL: MKL_NUM_THREADS, other BLAS: "
            "OMP_NUM_THREADS) in the environment before starting Python"
        ) from err
    return threadpool_limits(limits=int(n), user_api="blas")
