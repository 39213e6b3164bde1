"""h-detach masks: which edges h_{t-1} -> gates_t keep their gradient.

p is the probability of BLOCKING (detaching), as in the original code. The returned mask is a KEEP
mask (1 keeps the edge, 0 detaches it), ready to pass as `h_scale` to `lstm_backward`.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_choice, check_generator, check_probability, float_dtype

PER = ("step", "example", "unit")


def sample_h_detach_mask(T: int, p: float, rng: np.random.Generator, per: str = "step",
                         N: int | None = None, H: int | None = None,
                         dtype: np.typing.DTypeLike = np.float32) -> np.ndarray:
    """Sample a 0/1 keep-mask for h-detach.

    per="step" (the original's behaviour): one Bernoulli draw per time step, shared by the whole
    minibatch, shape (T,). per="example": shape (T, N). per="unit": shape (T, N, H).
    Each entry is 0 with probability p (detach) and 1 otherwise.
    """
    check_generator(rng)
    p = check_probability("p", p)
    check_choice("per", per, PER)
    dt = float_dtype(dtype)
    shape = {"step": (T,), "example": (T, N), "unit": (T, N, H)}[per]
    for name, n in zip("TNH", shape):
        if n is None:
            raise ValueError(f"per={per!r} needs {name}, got None")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return (rng.random(shape) >= p).astype(dt)
