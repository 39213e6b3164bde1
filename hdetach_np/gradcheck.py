"""Centred finite differences and relative errors, in float64: the one numerical-gradient helper
used by the tests, the notebooks and `hdetach-np check`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """dF/dx by centred differences, (f(x + eps) - f(x - eps)) / (2 eps), one entry at a time.

    `f` takes no arguments and reads `x`, which is perturbed in place and restored exactly.
    `x` must be a float64 array: differences in float32 cannot reach the precision we check.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"numerical_gradient needs a float64 array, got {got}")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        f_plus = f()
        flat[k] = old - eps
        f_minus = f()
        flat[k] = old
        gflat[k] = (f_plus - f_minus) / (2 * eps)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a||, ||b||) (Euclidean norms); 0 when both are exactly zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs equal shapes, got {a.shape} and {b.shape}")
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def check_gradient(f: Callable[[], float], x: np.ndarray, analytic: np.ndarray, eps: float = 1e-5) -> float:
    """Relative error between an analytic gradient and centred differences of `f` at `x`."""
    return rel_error(analytic, numerical_gradient(f, x, eps))


def numerical_jacobian(f: Callable[[], np.ndarray], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """The Jacobian d f / d x by centred differences, shape (f().size, x.size): entry [i, k] is
    (f_i(x + eps e_k) - f_i(x - eps e_k)) / (2 eps).

    `f` takes no arguments, reads `x` (perturbed in place and restored exactly) and returns an array;
    both are flattened in C order. `x` must be a contiguous float64 array.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"numerical_jacobian needs a float64 array, got {got}")
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    m = np.asarray(f(), dtype=np.float64).size
    jac = np.zeros((m, flat.size))
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        f_plus = np.array(f(), dtype=np.float64).reshape(-1)
        flat[k] = old - eps
        f_minus = np.array(f(), dtype=np.float64).reshape(-1)
        flat[k] = old
        jac[:, k] = (f_plus - f_minus) / (2 * eps)
    return jac
