"""Numbers for JSON records: arrays as nested lists of rounded floats, NaN and inf as null."""

from __future__ import annotations

import numpy as np


def json_floats(a, digits: int = 7):
    """An array as nested lists of floats rounded to `digits` significant digits (nan/inf -> None)."""
    a = np.asarray(a, dtype=float)
    r = np.vectorize(lambda v: float(f"{v:.{digits}g}") if np.isfinite(v) else None, otypes=[object])(a)
    return r.tolist() if a.ndim else r.item()
