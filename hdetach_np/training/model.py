"""The model of the training engine: an LSTM (D -> H) with a linear readout (H -> K), and its loss.

    model = init_model(D, H, K, rng)                       # as the original code initialises it
    res = loss_and_grads(model, x, y, task, h_scale=keep)  # forward, readout, loss, backward
    res.loss, res.accuracy, res.grads["lstm.Wh"]

`loss_and_accuracy` is the one rule for the loss and the accuracy of a batch of readout outputs:
training (`loss_and_grads`) and evaluation (`evaluate`) both use it. The task says where the
loss is taken (`task.last_only`: the last step only, else every step), whether it is a
cross-entropy with an accuracy (`task.classify`) or a mean squared error, and at which steps the
accuracy counts (`task.acc_steps`, for every-step tasks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..linear import LinearParams, init_linear, linear_backward, linear_forward
from ..losses import mse_loss, softmax_cross_entropy
from ..lstm import LSTMParams, init_lstm
from ..paths.split import gradient_paths
from ..sequence import LSTMCache, lstm_backward, lstm_forward
from . import runs
from .config import BIASES


class TrainingDiverged(RuntimeError):
    """The loss, the gradient or the parameters became NaN or infinite."""


@dataclass(frozen=True, eq=False)
class Model:
    """An LSTM (D -> H) and a linear readout (H -> K).

    Bias parametrisation: with one bias (b_ih = b_hh = None) the LSTM's b (4H,) is a parameter.
    With two (the original's input-to-hidden and hidden-to-hidden biases, each (4H,)) b_ih and b_hh
    are the parameters and `lstm.b` holds their sum for the forward pass, refreshed by
    `sum_biases()`. The forward pass, and the gradient with respect to b, are the same either way;
    dL/db_ih = dL/db_hh = dL/db.
    """

    lstm: LSTMParams
    readout: LinearParams
    b_ih: np.ndarray | None = None
    b_hh: np.ndarray | None = None

    @property
    def bias(self) -> str:
        return "one" if self.b_ih is None else "two"

    def sum_biases(self) -> None:
        """Two biases: write b_ih + b_hh into lstm.b (call after changing either). One bias: nothing."""
        if self.b_ih is not None:
            np.add(self.b_ih, self.b_hh, out=self.lstm.b)

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameter arrays by name (the arrays themselves: updating them updates the model)."""
        if self.b_ih is None:
            biases = {"lstm.b": self.lstm.b}
        else:
            biases = {"lstm.b_ih": self.b_ih, "lstm.b_hh": self.b_hh}
        return {"lstm.Wx": self.lstm.Wx, "lstm.Wh": self.lstm.Wh, **biases,
                "readout.V": self.readout.V, "readout.d": self.readout.d}

    @classmethod
    def from_arrays(cls, arrays: dict, D: int, H: int, K: int, dtype, where: str = "parameters",
                    bias: str = "one") -> Model:
        """Rebuild from `arrays()` output, checking every name, shape and dtype against (D, H, K, dtype, bias)."""
        dt = np.dtype(dtype)
        if bias not in BIASES:
            raise ValueError(f"bias must be one of {', '.join(map(repr, BIASES))}, got {bias!r}")
        biases = ("lstm.b",) if bias == "one" else ("lstm.b_ih", "lstm.b_hh")
        shapes = {"lstm.Wx": (D, 4 * H), "lstm.Wh": (H, 4 * H), **{b: (4 * H,) for b in biases},
                  "readout.V": (H, K), "readout.d": (K,)}
        if set(arrays) != set(shapes):
            raise runs.CheckpointError(f"{where} holds {sorted(arrays)}, expected {sorted(shapes)} (bias {bias!r})")
        for k, shape in shapes.items():
            a = arrays[k]
            if a.shape != shape or a.dtype != dt:
                raise runs.CheckpointError(f"{where} does not match the run config: {k} is {a.dtype} {a.shape}, "
                                           f"expected {dt} {shape}")
            if not np.isfinite(a).all():
                raise runs.CheckpointError(f"{where}: {k} contains NaN/inf")
        c = {k: np.array(v, copy=True) for k, v in arrays.items()}
        readout = LinearParams(c["readout.V"], c["readout.d"])
        if bias == "one":
            return cls(LSTMParams(c["lstm.Wx"], c["lstm.Wh"], c["lstm.b"]), readout)
        b = c["lstm.b_ih"] + c["lstm.b_hh"]  # the forward pass's bias
        return cls(LSTMParams(c["lstm.Wx"], c["lstm.Wh"], b), readout, c["lstm.b_ih"], c["lstm.b_hh"])


def init_model(D: int, H: int, K: int, rng: np.random.Generator, dtype=np.float32, scheme="original",
               bias: str = "one") -> Model:
    """LSTM and readout initialised as the original code (U(-1/sqrt(H), 1/sqrt(H))).

    bias="two" keeps the two bias vectors apart: the same draws as `init_lstm` (Wx, Wh, b_ih,
    b_hh, each uniform; "forget-bias-1" adds 1 to b_ih's forget block), then the readout.
    """
    if bias not in BIASES:
        raise ValueError(f"bias must be one of {', '.join(map(repr, BIASES))}, got {bias!r}")
    twin = np.random.Generator(type(rng.bit_generator)())  # replays init_lstm's draws to keep the biases
    twin.bit_generator.state = rng.bit_generator.state
    lstm = init_lstm(D, H, rng, dtype=dtype, scheme=scheme)
    readout = init_linear(H, K, rng, dtype=dtype)
    if bias == "one":
        return Model(lstm, readout)
    k = 1.0 / np.sqrt(H)
    twin.uniform(-k, k, size=(D + H) * 4 * H)  # Wx and Wh, as init_lstm drew them
    b_ih, b_hh = twin.uniform(-k, k, size=4 * H), twin.uniform(-k, k, size=4 * H)
    if scheme == "forget-bias-1":
        b_ih[H:2 * H] += 1.0
    model = Model(lstm, readout, b_ih.astype(lstm.dtype), b_hh.astype(lstm.dtype))
    model.sum_biases()
    return model


# ---------------------------------------------------------------------------------------------
# The loss of a batch: one rule for training and evaluation
# ---------------------------------------------------------------------------------------------


def loss_and_accuracy(logits: np.ndarray, y: np.ndarray, task) -> tuple[float, np.ndarray, int, int]:
    """Loss, its gradient and the accuracy counts of readout outputs `logits` against targets `y`.

    logits (T, N, K) for every-step tasks with y (T, N), or (1, N, K) for last-step tasks with
    y (N,). Cross-entropy averaged over the (step, example) pairs for a classification task, mean
    squared error otherwise. Returns (loss, dlogits like logits, correct, count): `count`
    predictions were scored (at the steps `task.acc_steps`, or the last step), `correct` of them
    right; count is 0 for regression.
    """
    if not task.classify:
        loss, dlogits = mse_loss(logits, y.reshape(1, -1, 1).astype(logits.dtype, copy=False))
        return loss, dlogits, 0, 0
    targets = y[None] if task.last_only else y  # (1 or T, N)
    loss, dlogits = softmax_cross_entropy(logits, targets)
    scored = slice(None) if task.last_only else task.acc_steps  # the steps where accuracy counts
    hits = logits[scored].argmax(-1) == targets[scored]  # (steps scored, N)
    return loss, dlogits, int(hits.sum()), hits.size


@dataclass(frozen=True, eq=False)
class BatchResult:
    """Loss, accuracy counts and gradients (by parameter name) of one minibatch."""

    loss: float
    correct: int
    count: int  # predictions counted for accuracy (0 for regression)
    grads: dict
    dhs: np.ndarray | None  # (T, N, H) dL/dh_t from the readout (None for last-step losses)
    dhT: np.ndarray | None  # (N, H) dL/dh_T for last-step losses
    cache: LSTMCache  # the cache of the forward pass

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count else None


def loss_and_grads(model: Model, x, y, task, h_scale=None, c_scale=None, reuse: LSTMCache | None = None) -> BatchResult:
    """Forward, loss and backward for one minibatch x (T, N, D), y (T, N) or (N,).

    h_scale / c_scale are the h-detach / c-detach keep masks for `lstm_backward`. reuse: the cache
    of an earlier call with the same shapes, overwritten by this forward pass (see `lstm_forward`).
    Raises TrainingDiverged if the hidden states or the loss are not finite.
    """
    model.sum_biases()  # two biases: b = b_ih + b_hh
    hs, cache = lstm_forward(model.lstm, x, reuse=reuse)  # (T, N, H)
    out = hs[-1:] if task.last_only else hs  # the readout sees (1, N, H) or (T, N, H)
    if not np.isfinite(out).all():
        raise TrainingDiverged("non-finite hidden state")
    logits, lcache = linear_forward(model.readout, out)  # (1 or T, N, K)
    if not np.isfinite(logits).all():  # finite but huge parameters overflow here
        raise TrainingDiverged("non-finite readout output (logits)")
    loss, dlogits, correct, count = loss_and_accuracy(logits, y, task)
    if not math.isfinite(loss):
        raise TrainingDiverged(f"non-finite loss ({loss})")
    # backprop into the readout and the hidden states it saw
    lg = linear_backward(dlogits, lcache)
    # backprop through time, with this iteration's edge masks
    if task.last_only:
        dhs, dhT = None, lg.h[0]
        g = lstm_backward(None, cache, h_scale=h_scale, c_scale=c_scale, dhT=dhT)
    else:
        dhs, dhT = lg.h, None
        g = lstm_backward(dhs, cache, h_scale=h_scale, c_scale=c_scale)
    if model.bias == "one":
        biases = {"lstm.b": g.b}
    else:  # b = b_ih + b_hh: each gets dL/db (two arrays: clipping scales each in place)
        biases = {"lstm.b_ih": g.b, "lstm.b_hh": g.b.copy()}
    grads = {"lstm.Wx": g.Wx, "lstm.Wh": g.Wh, **biases, "readout.V": lg.V, "readout.d": lg.d}
    return BatchResult(loss, correct, count, grads, dhs, dhT, cache)


def path_norms(res: BatchResult) -> dict:
    """Norms of the cell-path and h-path parts of the full (unmasked) LSTM gradient of a minibatch."""
    return gradient_paths(res.dhs, res.cache, dhT=res.dhT).norms()  # one of dhs, dhT is None


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


EVAL_WINDOW = 16  # steps per forward call in evaluation: the cache then holds 16 steps, not the sequence


def evaluate(model: Model, task, split: str = "valid", batch_size: int = 1000, buffers: dict | None = None) -> dict:
    """Loss and accuracy on a split, in chunks of `batch_size` sequences, by `loss_and_accuracy`.

    The forward pass runs `lstm_forward` over windows of EVAL_WINDOW steps, carrying (h, c) from
    one window to the next, and keeps only the hidden states the readout sees (every step, or the
    last). buffers: a dict (empty at first) in which the window caches are kept for the next call,
    so that repeated evaluations reuse their memory. Returns {"loss" (mean over the sequences),
    "accuracy" (None for regression), "n"}. Raises TrainingDiverged if the model's output overflows.
    """
    if split not in task.splits:
        raise ValueError(f"unknown split {split!r} for this task; expected one of {', '.join(map(repr, task.splits))}")
    buffers = {} if buffers is None else buffers
    model.sum_biases()
    total = 0.0
    correct = count = n_total = 0
    H, dt = model.lstm.hidden_size, model.lstm.dtype
    for x, y in task.eval_batches(split, batch_size):
        T, n, _ = x.shape
        seen = np.empty((1 if task.last_only else T, n, H), dt)  # the hidden states the readout sees
        h = c = None  # zeros at the start
        for a in range(0, T, EVAL_WINDOW):
            window = x[a:a + EVAL_WINDOW]  # (W, n, D)
            key = (dt.str, window.shape[0], n, H)
            hs, cache = lstm_forward(model.lstm, window, h, c, reuse=buffers.get(key))  # (W, n, H)
            buffers[key] = cache
            if not task.last_only:
                seen[a:a + len(window)] = hs
            h, c = cache.h[-1], cache.c[-1]  # the state at the window's end starts the next window
        if task.last_only:
            seen[0] = h
        logits, _ = linear_forward(model.readout, seen)  # (1 or T, n, K)
        if not np.isfinite(logits).all():
            raise TrainingDiverged("non-finite readout output (logits) in evaluation")
        loss, _, right, scored = loss_and_accuracy(logits, y, task)
        total += loss * n
        correct, count, n_total = correct + right, count + scored, n_total + n
    return {"loss": total / n_total, "accuracy": correct / count if count else None, "n": n_total}
