"""The linear readout y = h V + d, applied to every step given. Shapes: (..., H) -> (..., K)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_array, check_generator, float_dtype


@dataclass(frozen=True, eq=False)
class LinearParams:
    """Readout weights V (H, K) and bias d (K,), one float dtype."""

    V: np.ndarray
    d: np.ndarray

    def __post_init__(self):
        check_array("V", self.V, (None, None), letters="HK")
        check_array("d", self.d, (self.V.shape[1],), letters="K")
        dt = float_dtype(self.V.dtype, "V.dtype")
        if self.d.dtype != dt:
            raise TypeError(f"LinearParams.d has dtype {self.d.dtype} but V is {dt}")

    @property
    def dtype(self) -> np.dtype:
        return self.V.dtype

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"V": self.V, "d": self.d}

    def astype(self, dtype) -> LinearParams:
        dt = float_dtype(dtype)
        return LinearParams(self.V.astype(dt), self.d.astype(dt))

    def copy(self) -> LinearParams:
        return LinearParams(self.V.copy(), self.d.copy())


@dataclass(frozen=True, eq=False)
class LinearCache:
    h: np.ndarray  # (..., H)
    params: LinearParams


@dataclass(frozen=True, eq=False)
class LinearGrads:
    V: np.ndarray  # (H, K)
    d: np.ndarray  # (K,)
    h: np.ndarray  # (..., H)


def init_linear(hidden_size: int, output_size: int, rng: np.random.Generator,
                dtype: np.typing.DTypeLike = np.float32) -> LinearParams:
    """V (H, K) and d (K,), both U(-1/sqrt(H), 1/sqrt(H)) as in the original code. Draw order: V, d."""
    check_generator(rng)
    dt = float_dtype(dtype)
    for name, n in (("hidden_size", hidden_size), ("output_size", output_size)):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    k = 1.0 / np.sqrt(hidden_size)
    V = rng.uniform(-k, k, size=(hidden_size, output_size))
    d = rng.uniform(-k, k, size=output_size)
    return LinearParams(V.astype(dt), d.astype(dt))


def linear_forward(params: LinearParams, h: np.ndarray) -> tuple[np.ndarray, LinearCache]:
    """h (..., H) -> y (..., K), LinearCache."""
    H, K = params.V.shape
    if not isinstance(h, np.ndarray) or h.ndim < 1 or h.shape[-1] != H:
        got = h.shape if isinstance(h, np.ndarray) else type(h).__name__
        raise ValueError(f"expected h of shape (..., H={H}), got {got}")
    check_array("h", h, h.shape, params.dtype)
    y = np.matmul(h, params.V)  # (..., K); any memory layout of h (e.g. lstm_forward's), no copy
    y += params.d
    return y, LinearCache(h, params)


def linear_backward(dy: np.ndarray, cache: LinearCache) -> LinearGrads:
    """dy (..., K) -> LinearGrads with V (H, K), d (K,), h (..., H)."""
    H, K = cache.params.V.shape
    check_array("dy", dy, cache.h.shape[:-1] + (K,), cache.params.dtype)
    h = cache.h
    if h.ndim <= 2 or h.flags.c_contiguous:
        dV = h.reshape(-1, H).T @ dy.reshape(-1, K)  # one matmul over all rows
    else:  # one matmul per leading index: reshaping a non-contiguous h would copy it
        dV = np.matmul(h.swapaxes(-1, -2), dy).reshape(-1, H, K).sum(axis=0)
    dh = np.matmul(dy, cache.params.V.T, out=np.empty_like(h))  # laid out in memory like h
    return LinearGrads(V=dV, d=dy.reshape(-1, K).sum(axis=0), h=dh)
