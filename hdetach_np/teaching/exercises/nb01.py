"""Checks for notebooks/01_lstm_forward_backward.ipynb.

1. `check_forget_gate_grad(forget_gate_grad)`: forget_gate_grad(dh, dc, cache) -> dL/da_f (N, H).
2. `check_gate_grads(gate_grads)`: gate_grads(dh, dc, cache) -> dL/da (N, 4H), blocks i, f, o, g.
3. `check_cell_path_c0_grad(cell_path_c0_grad)`: cell_path_c0_grad(dh_T, cache) -> dL/dc_0 (N, H)
   for a loss that reaches only h_T, with every edge h_{t-1} -> gates_t cut.

The reference for dL/da is the package's step backward (`lstm_step_backward(...).a`).
"""

from __future__ import annotations

import numpy as np

from ...gradcheck import rel_error
from ...lstm import GATES, StepCache, init_lstm, lstm_step_backward, lstm_step_forward
from ...sequence import LSTMCache, lstm_backward, lstm_forward
from . import ExerciseError, call_student, close, diagnose, expect_array, expect_unchanged, passed

STEP_SIZES = ((0, 3, 2, 4), (1, 2, 3, 5), (2, 1, 1, 1))  # (seed, N, D, H)
SEQUENCE_SIZES = ((3, 5, 3, 2, 4), (4, 1, 2, 1, 3))  # (seed, T, N, D, H)


def _random_lstm(rng, D, H):
    params = init_lstm(D, H, rng, dtype=np.float64)
    params.b[:] = rng.uniform(-0.5, 0.5, size=4 * H)  # non-zero biases, gates unsaturated
    return params


def _step_problem(seed, N, D, H):
    """A random step: its StepCache and random upstream gradients dh, dc (N, H)."""
    rng = np.random.default_rng(seed)
    params = _random_lstm(rng, D, H)
    x = rng.standard_normal((N, D))
    h_prev, c_prev = 0.5 * rng.standard_normal((N, H)), 0.5 * rng.standard_normal((N, H))
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    _, _, cache = lstm_step_forward(x, h_prev, c_prev, params)
    return dh, dc, cache


def reference_gate_grads(dh, dc, cache: StepCache) -> np.ndarray:
    """dL/da (N, 4H) from `lstm_step_backward`."""
    return lstm_step_backward(dh, dc, cache).a


def _snapshot(dh, dc, cache: StepCache) -> dict:
    return {"dh": dh.copy(), "dc": dc.copy(), "cache.gates": cache.gates.copy(),
            "cache.tanh_c": cache.tanh_c.copy(), "cache.c_prev": cache.c_prev.copy()}


def _current(dh, dc, cache: StepCache) -> dict:
    return {"dh": dh, "dc": dc, "cache.gates": cache.gates, "cache.tanh_c": cache.tanh_c,
            "cache.c_prev": cache.c_prev}


def check_forget_gate_grad(forget_gate_grad) -> None:
    """Exercise 1: forget_gate_grad(dh, dc, cache) must return dL/da_f (N, H)."""
    name = "forget_gate_grad"
    worst = 0.0
    for seed, N, D, H in STEP_SIZES:
        dh, dc, cache = _step_problem(seed, N, D, H)
        before = _snapshot(dh, dc, cache)
        got = expect_array(name, call_student(forget_gate_grad, name, dh, dc, cache), (N, H))
        expect_unchanged(name, before, _current(dh, dc, cache))
        f_block = slice(H, 2 * H)
        expected = reference_gate_grads(dh, dc, cache)[:, f_block]
        if close(got, expected):
            worst = max(worst, rel_error(got, expected))
            continue
        f = cache.gates[:, f_block]
        hints = [
            (reference_gate_grads(np.zeros_like(dh), dc, cache)[:, f_block],
             "you left out the path through h_t: c_t also reaches the loss through h_t = o_t * tanh(c_t), "
             "so add dh * o * (1 - tanh(c_t)**2) to dc before multiplying by c_{t-1}"),
            (expected / (f * (1 - f)),
             "that is dL/df_t; multiply by the derivative of the sigmoid, f * (1 - f), to reach the pre-activation"),
        ]
        raise ExerciseError(diagnose(name, got, expected, hints, f"N={N}, D={D}, H={H}",
                                      "the forget gate is cache.gates[:, H:2*H] (order i, f, o, g)"))
    passed(f"{name} matches hdetach_np.lstm_step_backward on {len(STEP_SIZES)} random problems "
           f"(largest relative error {worst:.1e}).")


def check_gate_grads(gate_grads) -> None:
    """Exercise 2: gate_grads(dh, dc, cache) must return dL/da (N, 4H) in gate order i, f, o, g."""
    name = "gate_grads"
    worst = 0.0
    for seed, N, D, H in STEP_SIZES:
        dh, dc, cache = _step_problem(seed, N, D, H)
        before = _snapshot(dh, dc, cache)
        got = expect_array(name, call_student(gate_grads, name, dh, dc, cache), (N, 4 * H))
        expect_unchanged(name, before, _current(dh, dc, cache))
        expected = reference_gate_grads(dh, dc, cache)
        if close(got, expected):
            worst = max(worst, rel_error(got, expected))
            continue
        blocks = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(GATES)}
        wrong = [g for g in GATES if not close(got[:, blocks[g]], expected[:, blocks[g]])]
        torch_order = np.concatenate([expected[:, blocks[g]] for g in ("i", "f", "g", "o")], axis=1)
        if close(got, torch_order):
            hint = ("your blocks are in torch.nn.LSTM's order i, f, g, o; this package uses i, f, o, g "
                    "(columns [0:H]=i, [H:2H]=f, [2H:3H]=o, [3H:4H]=g)")
        else:
            hint = (f"the block(s) of gate {', '.join(wrong)} are wrong (columns "
                    + ", ".join(f"[{blocks[g].start}:{blocks[g].stop}]" for g in wrong)
                    + f" for H={H}); the others are right")
        raise ExerciseError(f"{name} is not right yet on a problem with N={N}, D={D}, H={H}: {hint}.")
    passed(f"{name} matches hdetach_np.lstm_step_backward on {len(STEP_SIZES)} random problems "
           f"(largest relative error {worst:.1e}).")


def _sequence_problem(seed, T, N, D, H):
    rng = np.random.default_rng(seed)
    params = _random_lstm(rng, D, H)
    x = rng.standard_normal((T, N, D))
    h0, c0 = 0.5 * rng.standard_normal((N, H)), 0.5 * rng.standard_normal((N, H))
    _, cache = lstm_forward(params, x, h0, c0)
    return rng.standard_normal((N, H)), cache


def reference_cell_path_c0_grad(dh_T, cache: LSTMCache) -> np.ndarray:
    """dL/dc_0 from `lstm_backward` with the loss only at h_T and every h-edge cut (h_scale = 0)."""
    T, N, _ = cache.x.shape
    dhs = np.zeros((T,) + dh_T.shape)
    dhs[-1] = dh_T
    return lstm_backward(dhs, cache, h_scale=np.zeros(T)).c0


def check_cell_path_c0_grad(cell_path_c0_grad) -> None:
    """Exercise 3: cell_path_c0_grad(dh_T, cache) must return dL/dc_0 (N, H) along the cell path."""
    name = "cell_path_c0_grad"
    worst = 0.0
    for seed, T, N, D, H in SEQUENCE_SIZES:
        dh_T, cache = _sequence_problem(seed, T, N, D, H)
        before = {"dh_T": dh_T.copy(), "cache.gates": cache.gates.copy(), "cache.tanh_c": cache.tanh_c.copy(),
                  "cache.c": cache.c.copy()}
        got = expect_array(name, call_student(cell_path_c0_grad, name, dh_T, cache), (N, H))
        expect_unchanged(name, before, {"dh_T": dh_T, "cache.gates": cache.gates,
                                        "cache.tanh_c": cache.tanh_c, "cache.c": cache.c})
        expected = reference_cell_path_c0_grad(dh_T, cache)
        if close(got, expected):
            worst = max(worst, rel_error(got, expected))
            continue
        f = cache.gates[:, :, H:2 * H]  # (T, N, H)
        o_T, tanh_T = cache.gates[-1, :, 2 * H:3 * H], cache.tanh_c[-1]
        hints = [
            (expected / f[0], "the product must include f_1, the forget gate of the first step (cache.gates[0])"),
            (expected / f[-1], "the product must include f_T, the forget gate of the last step (cache.gates[T-1])"),
            (expected / (o_T * (1 - tanh_T ** 2)),
             "dh_T first reaches c_T through h_T = o_T * tanh(c_T): multiply by o_T * (1 - tanh(c_T)**2)"),
        ]
        raise ExerciseError(diagnose(name, got, expected, hints, f"T={T}, N={N}, D={D}, H={H}",
                                      "dL/dc_0 = dh_T * o_T * (1 - tanh(c_T)^2) * f_T * ... * f_1"))
    passed(f"{name} matches hdetach_np.lstm_backward(..., h_scale=0) on {len(SEQUENCE_SIZES)} random "
           f"sequences (largest relative error {worst:.1e}).")


__all__ = ["check_cell_path_c0_grad", "check_forget_gate_grad", "check_gate_grads",
           "reference_cell_path_c0_grad", "reference_gate_grads"]
