"""Losses over chosen time steps, each returning (loss, gradient).

`steps` selects where the loss is taken: "all" (every step), "last" (the last step only), or a
boolean mask of shape (T,) or (T, N). The loss is the mean over the selected (step, example) pairs.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_array


def step_weights(steps, T: int, N: int, dtype) -> np.ndarray:
    """Weights (T, N) that average over the selected (step, example) pairs."""
    if isinstance(steps, str):
        if steps == "all":
            mask = np.ones((T, N), dtype=bool)
        elif steps == "last":
            mask = np.zeros((T, N), dtype=bool)
            mask[-1] = True
        else:
            raise ValueError(f"unknown steps {steps!r}; expected 'all', 'last' or a boolean mask")
    else:
        mask = np.asarray(steps)
        if mask.dtype != bool:
            raise TypeError(f"a steps mask must be boolean, got dtype {mask.dtype}")
        if mask.shape == (T,):
            mask = np.broadcast_to(mask[:, None], (T, N))
        elif mask.shape != (T, N):
            raise ValueError(f"expected a steps mask of shape (T={T},) or (T={T}, N={N}), got {mask.shape}")
    count = int(mask.sum())
    if count == 0:
        raise ValueError("the steps mask selects no step; expected at least one True")
    return mask.astype(dtype) / dtype.type(count)


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray,
                          steps: str | np.ndarray = "all") -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer targets over the selected steps.

    logits (T, N, K) float, targets (T, N) integers in [0, K). Returns (loss: float, dlogits (T, N, K)).
    Numerically stable (log-sum-exp with the max subtracted).
    """
    check_array("logits", logits, (None, None, None), letters="TNK")
    T, N, K = logits.shape
    targets = np.asarray(targets)
    if targets.shape != (T, N):
        raise ValueError(f"expected targets of shape (T={T}, N={N}), got {targets.shape}")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be integers (class indices), got dtype {targets.dtype}")
    if targets.size and (targets.min() < 0 or targets.max() >= K):
        raise ValueError(f"targets must be in [0, K={K}), got values in [{targets.min()}, {targets.max()}]")
    w = step_weights(steps, T, N, logits.dtype)  # (T, N)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=-1)  # (T, N)
    picked = np.take_along_axis(shifted, targets[..., None], axis=-1)[..., 0]
    loss = float(np.sum(w * (np.log(sum_exp) - picked), dtype=np.float64))
    # dloss/dlogits = w * (softmax - onehot)
    dlogits = exp / sum_exp[..., None]
    np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], -1) - 1, -1)
    dlogits *= w[..., None]
    return loss, dlogits


def mse_loss(pred: np.ndarray, target: np.ndarray, steps: str | np.ndarray = "all") -> tuple[float, np.ndarray]:
    """Mean squared error over the selected steps. pred, target (T, N, K). Returns (loss, dpred).

    The mean runs over the selected (step, example) pairs and the K outputs.
    """
    check_array("pred", pred, (None, None, None), letters="TNK")
    check_array("target", target, pred.shape, pred.dtype)
    T, N, K = pred.shape
    w = step_weights(steps, T, N, pred.dtype)[..., None] / pred.dtype.type(K)  # (T, N, 1)
    diff = pred - target
    loss = float(np.sum(w * diff * diff, dtype=np.float64))
    return loss, 2 * w * diff
