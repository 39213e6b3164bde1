"""Input checks shared by the package: every message names the argument, what it got and what it expected."""

from __future__ import annotations

import math

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return `dtype` as a numpy dtype if it is float32 or float64, else raise TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from err
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def check_generator(rng, name: str = "rng") -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def check_array(
    name: str,
    a,
    shape: tuple,
    dtype: np.dtype | None = None,
    letters: str | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Check that `a` is an ndarray of exactly `shape` (None entries match any size) and `dtype`.

    `letters` names the axes in messages, e.g. "TND" gives "expected x of shape (T, N, D=1)".
    No broadcasting, no silent casting.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.ndim != len(shape) or any(s is not None and s != g for s, g in zip(shape, a.shape)):
        letters = letters or "?" * len(shape)
        parts = [l if s is None else (f"{l}={s}" if l != "?" else str(s)) for l, s in zip(letters, shape)]
        raise ValueError(f"expected {name} of shape ({', '.join(parts)}), got {a.shape}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {a.dtype} but the parameters are {dtype}; "
            f"convert it with {name}.astype(np.{dtype})"
        )
    # min and max propagate NaN and show +-inf, and unlike isfinite(a) allocate no array of a's size
    if finite and a.dtype.kind == "f" and a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
        bad = int(a.size - np.isfinite(a).sum())
        raise ValueError(f"{name} contains {bad} NaN/inf value(s); expected finite numbers")
    return a


def check_probability(name: str, p) -> float:
    """A scalar in [0, 1]."""
    try:
        value = float(p)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number in [0, 1], got {p!r}") from err
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {p!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def check_int(name: str, v, lo: int) -> int:
    """An integer (not a bool) >= lo, returned as a Python int."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def check_positive(name: str, v, allow_zero: bool = False) -> float:
    """A finite number > 0 (>= 0 with allow_zero), returned as a float."""
    try:
        value = float(v)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number, got {v!r}") from err
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {v!r}")
    return value


def check_unit_interval(name: str, s: np.ndarray) -> None:
    """Raise a ValueError naming the first value of `s` outside [0, 1] (NaN included)."""
    if not np.all((s >= 0) & (s <= 1)):  # NaN fails both comparisons
        bad = s[~((s >= 0) & (s <= 1))].ravel()[0]
        raise ValueError(f"{name} values must be in [0, 1], got {float(bad)!r}")
