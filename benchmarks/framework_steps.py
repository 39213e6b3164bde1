"""One training-loop step of the same LSTM model in hdetach-np, TensorFlow and JAX, and the check
that they compute the same gradients. Used by `bench_frameworks.py` and by its test.

A step: the LSTM forward pass over x (T, N, D), the linear readout at every step, the softmax
cross-entropy at every step (the mean over the T N pairs) and the backward pass to every parameter,
with an h-detach keep-mask (T,) (1 keeps the edge h_{t-1} -> gates_t, 0 detaches it).

    hdetach-np    lstm_forward (reusing the last cache), linear_forward, softmax_cross_entropy,
                  linear_backward, lstm_backward(h_scale=mask)
    tf-cell       a tf.function (graph mode) over tf.scan; before the gates of step t,
                  h_in = mask[t] h + (1 - mask[t]) stop_gradient(h); gradients by tf.GradientTape
    tf-keras-lstm keras.layers.LSTM + Dense in a tf.function; no mask is possible (the whole
                  gradient), so it is compared with hdetach-np without a mask
    jax-scan      jax.jit(jax.value_and_grad(loss)) over lax.scan, the same mask expression

Gate order. hdetach-np stores the gates i, f, o, g: Wx (D, 4H), Wh (H, 4H), b (4H,). The tf-cell and
jax-scan cells are written here in that same order, so they take the weights as they are. Keras'
LSTM orders its gates i, f, g, o (kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,)): blocks 2
and 3 swap on the way in, and its gradients swap back (`to_keras_gates` is its own inverse).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import hdetach_np as hd

PARAM_NAMES = ("Wx", "Wh", "b", "V", "d")  # LSTM weights, then the readout's V (H, K) and d (K,)


@dataclass(frozen=True, eq=False)
class Problem:
    """Weights and data of one benchmark size, in hdetach-np's layout and one float dtype."""

    params: hd.LSTMParams  # Wx (D, 4H), Wh (H, 4H), b (4H,)
    readout: hd.LinearParams  # V (H, K), d (K,)
    x: np.ndarray  # (T, N, D): one-hot symbols when D > 1, uniform in [0, 1) when D = 1
    y: np.ndarray  # (T, N) int64 targets in [0, K)

    @property
    def weights(self) -> dict[str, np.ndarray]:
        return {**self.params.as_dict(), **self.readout.as_dict()}


def make_problem(T: int, N: int, D: int, H: int, K: int, dtype=np.float32, seed: int = 0) -> Problem:
    """Random weights (hdetach-np's initialisation, biases non-zero), inputs and targets."""
    rng = np.random.default_rng(seed)
    params = hd.init_lstm(D, H, rng, dtype=dtype)
    readout = hd.init_linear(H, K, rng, dtype=dtype)
    if D > 1:
        x = np.eye(D, dtype=dtype)[rng.integers(0, D, size=(T, N))]  # (T, N, D) one-hot
    else:
        x = rng.random((T, N, 1)).astype(dtype)  # like pixel intensities
    return Problem(params, readout, x, rng.integers(0, K, size=(T, N)))


@dataclass(frozen=True, eq=False)
class Step:
    """One library's training step, built and ready.

    run(mask) computes loss and gradients (finished: nothing left queued) and returns them in the
    library's own types; mask is a (T,) keep-mask of the problem's dtype, or None for no mask.
    to_numpy(result) -> (loss, {name: array in hdetach-np's layout}). build_s: seconds spent
    tracing and compiling before the first call (0 for hdetach-np), kept apart from the timing.
    """

    name: str
    run: Callable
    to_numpy: Callable
    uses_mask: bool
    build_s: float


def to_keras_gates(w: np.ndarray) -> np.ndarray:
    """Reorder the four gate blocks of the last axis, i f o g <-> i f g o (its own inverse)."""
    i, f, o, g = np.split(w, 4, axis=-1)
    return np.concatenate([i, f, g, o], axis=-1)


# ---------------------------------------------------------------------------------------------
# hdetach-np
# ---------------------------------------------------------------------------------------------


def hdetach_step(problem: Problem, uses_mask: bool = True) -> Step:
    """The step with hdetach-np's public functions; the forward overwrites the previous cache."""
    params, readout, x, y = problem.params, problem.readout, problem.x, problem.y
    last = {"cache": None}

    def run(mask):
        hs, cache = hd.lstm_forward(params, x, reuse=last["cache"])  # (T, N, H)
        last["cache"] = cache
        logits, lin_cache = hd.linear_forward(readout, hs)  # (T, N, K)
        loss, dlogits = hd.softmax_cross_entropy(logits, y)  # mean over the T N pairs
        dlin = hd.linear_backward(dlogits, lin_cache)
        dlstm = hd.lstm_backward(dlin.h, cache, h_scale=mask if uses_mask else None)
        return loss, {"Wx": dlstm.Wx, "Wh": dlstm.Wh, "b": dlstm.b, "V": dlin.V, "d": dlin.d}

    name = "hdetach-np" if uses_mask else "hdetach-np-nomask"
    return Step(name, run, lambda out: (float(out[0]), out[1]), uses_mask, 0.0)


# ---------------------------------------------------------------------------------------------
# TensorFlow
# ---------------------------------------------------------------------------------------------


def tf_cell_step(tf, problem: Problem) -> Step:
    """A custom LSTM cell (gates i, f, o, g) in a graph-mode tf.function over tf.scan."""
    H = problem.params.hidden_size
    dtype = tf.as_dtype(problem.x.dtype)

    def loss_and_grads(Wx, Wh, b, V, d, x, y, mask):
        weights = [Wx, Wh, b, V, d]
        with tf.GradientTape() as tape:
            tape.watch(weights)
            T, N = tf.shape(x)[0], tf.shape(x)[1]
            xw = tf.reshape(tf.reshape(x, (T * N, -1)) @ Wx + b, (T, N, 4 * H))  # (T, N, 4H), hoisted

            def cell(state, inputs):
                h, c = state
                xw_t, keep = inputs
                h_in = keep * h + (1 - keep) * tf.stop_gradient(h)  # h-detach where keep == 0
                a = xw_t + h_in @ Wh  # (N, 4H)
                i, f, o = tf.sigmoid(a[:, :H]), tf.sigmoid(a[:, H:2 * H]), tf.sigmoid(a[:, 2 * H:3 * H])
                g = tf.tanh(a[:, 3 * H:])
                c = f * c + i * g
                return o * tf.tanh(c), c

            zeros = tf.zeros((N, H), dtype)
            hs, _ = tf.scan(cell, (xw, mask), initializer=(zeros, zeros))  # (T, N, H)
            logits = tf.reshape(tf.reshape(hs, (T * N, H)) @ V + d, (T, N, -1))  # (T, N, K)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        return loss, tape.gradient(loss, weights)

    args = [tf.constant(problem.weights[k]) for k in PARAM_NAMES] + [tf.constant(problem.x), tf.constant(problem.y)]
    t0 = time.perf_counter()
    fn = tf.function(loss_and_grads).get_concrete_function(*args, tf.TensorSpec((problem.x.shape[0],), dtype))
    build_s = time.perf_counter() - t0

    def run(mask):
        return fn(*args, tf.constant(mask))

    return Step("tf-cell", run, _tf_to_numpy, True, build_s)


def tf_keras_step(tf, keras, problem: Problem) -> Step:
    """keras.layers.LSTM (return_sequences) and Dense in a tf.function; batch-major data (N, T, .)."""
    T, N, D = problem.x.shape
    H, K = problem.params.hidden_size, problem.readout.V.shape[1]
    dtype = str(problem.x.dtype)
    lstm = keras.layers.LSTM(H, return_sequences=True, dtype=dtype)
    dense = keras.layers.Dense(K, dtype=dtype)
    lstm.build((N, T, D))
    dense.build((N, T, H))
    p = problem.params
    lstm.set_weights([to_keras_gates(p.Wx), to_keras_gates(p.Wh), to_keras_gates(p.b)])
    dense.set_weights([problem.readout.V, problem.readout.d])
    cell = lstm.cell
    weights = [cell.kernel, cell.recurrent_kernel, cell.bias, dense.kernel, dense.bias]

    def loss_and_grads(xb, yb):
        with tf.GradientTape() as tape:
            logits = dense(lstm(xb))  # (N, T, K)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits))
        return loss, tape.gradient(loss, weights)

    xb = tf.constant(np.ascontiguousarray(problem.x.transpose(1, 0, 2)))  # (N, T, D)
    yb = tf.constant(np.ascontiguousarray(problem.y.T))  # (N, T)
    t0 = time.perf_counter()
    fn = tf.function(loss_and_grads).get_concrete_function(xb, yb)
    build_s = time.perf_counter() - t0

    def to_numpy(out):
        loss, grads = _tf_to_numpy(out)
        for k in ("Wx", "Wh", "b"):
            grads[k] = to_keras_gates(grads[k])
        return loss, grads

    return Step("tf-keras-lstm", lambda mask: fn(xb, yb), to_numpy, False, build_s)


def _tf_to_numpy(out):
    loss, grads = out
    return float(loss.numpy()), {k: g.numpy() for k, g in zip(PARAM_NAMES, grads)}


# ---------------------------------------------------------------------------------------------
# JAX
# ---------------------------------------------------------------------------------------------


def jax_scan_step(jax, problem: Problem) -> Step:
    """jax.jit(jax.value_and_grad(loss)) over lax.scan, the cell written with gates i, f, o, g.

    For a float64 problem, build and run it inside `jax_x64(jax)`."""
    jnp, lax = jax.numpy, jax.lax
    H = problem.params.hidden_size

    def loss(w, x, y, mask):
        xw = jnp.tensordot(x, w["Wx"], axes=1) + w["b"]  # (T, N, 4H), hoisted

        def cell(state, inputs):
            h, c = state
            xw_t, keep = inputs
            h_in = keep * h + (1 - keep) * lax.stop_gradient(h)  # h-detach where keep == 0
            a = xw_t + h_in @ w["Wh"]  # (N, 4H)
            i, f, o = jax.nn.sigmoid(a[:, :H]), jax.nn.sigmoid(a[:, H:2 * H]), jax.nn.sigmoid(a[:, 2 * H:3 * H])
            g = jnp.tanh(a[:, 3 * H:])
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((x.shape[1], H), x.dtype)
        _, hs = lax.scan(cell, (zeros, zeros), (xw, mask))  # (T, N, H)
        logp = jax.nn.log_softmax(hs @ w["V"] + w["d"])  # (T, N, K)
        return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))

    w = {k: jnp.asarray(v) for k, v in problem.weights.items()}
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
    mask0 = np.ones(problem.x.shape[0], problem.x.dtype)
    t0 = time.perf_counter()
    compiled = jax.jit(jax.value_and_grad(loss)).lower(w, x, y, mask0).compile()
    build_s = time.perf_counter() - t0

    def run(mask):
        return jax.block_until_ready(compiled(w, x, y, mask))

    def to_numpy(out):
        value, grads = out
        return float(value), {k: np.asarray(grads[k]) for k in PARAM_NAMES}

    return Step("jax-scan", run, to_numpy, True, build_s)


def jax_x64(jax):
    """The context in which JAX computes in float64."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older JAX

    return enable_x64()


# ---------------------------------------------------------------------------------------------
# The gradient check
# ---------------------------------------------------------------------------------------------


def gradient_errors(step: Step, problem: Problem, mask: np.ndarray) -> dict[str, float]:
    """Relative errors (hd.gradcheck.rel_error) of a step's loss and gradients against hdetach-np's
    with the same mask (or none, for a step that takes no mask)."""
    ref_loss, ref = hdetach_step(problem, uses_mask=step.uses_mask).run(mask)
    loss, grads = step.to_numpy(step.run(mask))
    errors = {"loss": hd.gradcheck.rel_error(np.array(loss), np.array(ref_loss))}
    for k in PARAM_NAMES:
        if grads[k].shape != ref[k].shape or grads[k].dtype != ref[k].dtype:
            raise ValueError(f"{step.name}: gradient {k} has shape {grads[k].shape} and dtype {grads[k].dtype}, "
                             f"expected {ref[k].shape} and {ref[k].dtype} as hdetach-np's")
        errors[k] = hd.gradcheck.rel_error(grads[k], ref[k])
    return errors


def mixed_mask(T: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """An h-detach keep-mask (p = 0.5) with a kept and a detached step among steps 1 .. T-1 (T >= 3);
    at step 0 the edge comes from h0 = 0, whose mask changes no parameter gradient."""
    if T < 3:
        raise ValueError(f"mixed_mask needs T >= 3, got {T}")
    while True:
        mask = hd.sample_h_detach_mask(T, 0.5, rng, dtype=dtype)
        if 0 < mask[1:].sum() < T - 1:
            return mask
