"""Tasks and their data. Time-major arrays: inputs x (T, N, D), integer targets y (T, N).

Copying task (as in the original code): a sequence of length T + 20 holds 10 tokens drawn uniformly
from {1..8}, then T - 1 blanks (0), one delimiter (9), then 10 blanks. The target is T + 10 blanks
(0) followed by the 10 tokens. The input is one scalar per step, the raw token value as a float
(or one-hot over the 10 symbols with `one_hot=True`); there are 9 output classes (0-8).
"""

from __future__ import annotations

import numpy as np

from ._validate import check_generator, float_dtype

COPY_TOKENS = 10  # tokens to remember
COPY_CLASSES = 9  # blank + 8 token values
COPY_DELIMITER = 9


def copying_data(n: int, T: int, rng: np.random.Generator, one_hot: bool = False, dtype=np.float32):
    """n copying sequences with delay T.

    Returns x (T+20, n, D) with D = 1 (raw token values) or D = 10 (one-hot), and y (T+20, n) int64.
    """
    check_generator(rng)
    dt = float_dtype(dtype)
    for name, v, lo in (("n", n, 1), ("T", T, 1)):
        if not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    L = T + 2 * COPY_TOKENS
    tokens = rng.integers(1, COPY_CLASSES, size=(COPY_TOKENS, n))  # (10, n) in {1..8}
    seq = np.zeros((L, n), dtype=np.int64)
    seq[:COPY_TOKENS] = tokens
    seq[COPY_TOKENS + T - 1] = COPY_DELIMITER
    y = np.zeros((L, n), dtype=np.int64)
    y[-COPY_TOKENS:] = tokens
    if one_hot:
        x = np.zeros((L, n, COPY_DELIMITER + 1), dtype=dt)
        np.put_along_axis(x, seq[..., None], 1, axis=-1)
    else:
        x = seq[..., None].astype(dt)
    return x, y
