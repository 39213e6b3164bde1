"""Checks for notebooks/03_suppression.ipynb.

1. `check_ratio_at_scale_4(ratio_at_4, config)`: a prediction of ||g_cell|| / ||g_total|| (all LSTM
   parameters, plain gradient, mean over the seeds of the SuppressionConfig `config`) with the
   weights of `config.weights` multiplied by 4. The check runs `suppression_sweep` at that one
   scale and accepts a prediction within a factor `RATIO_FACTOR` of the computed value.
2. `check_cell_jacobian_product(cell_jacobian_product)`: cell_jacobian_product(cache, end_step, k)
   -> (N, 2H, 2H), the product A_end A_{end-1} ... A_{end-k+1} of the cell blocks of k step
   Jacobians, written from the gates without any matrix product. The reference multiplies the
   A_t of `step_jacobians` (checked against finite differences by the test suite).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from numbers import Real

import numpy as np

from ...gradcheck import rel_error
from ...lstm import init_lstm
from ...paths.jacobians import step_jacobians
from ...paths.suppression import SuppressionConfig, suppression_sweep
from ...sequence import LSTMCache, lstm_forward
from . import ExerciseError, call_student, close, diagnose, expect_array, expect_unchanged, passed

SCALE = 4.0
RATIO_FACTOR = 1.5  # a prediction within this factor of the computed ratio is accepted
HDETACH_P = 0.5  # the h-detach variant computed alongside, to recognise it in a wrong answer
HDETACH_FACTOR = 1.05  # ... when the prediction is this close to it
SEQUENCE_SIZES = ((0, 5, 3, 2, 4), (1, 3, 2, 1, 2))  # (seed, T, N, D, H)


# ---------------------------------------------------------------------------------------------
# Exercise 1: predict the cell share at scale 4
# ---------------------------------------------------------------------------------------------


def ratios_at_scale(config: SuppressionConfig, scale: float = SCALE) -> dict:
    """{"plain", "p=0.5"}: the mean over seeds of ||g_cell|| / ||g_total|| ("all") at one weight
    scale, for the sweep `config` (its scales and ps are replaced)."""
    return dict(_ratios_at_scale(config, float(scale)))


@lru_cache(maxsize=8)  # a check cell run twice does not repeat the sweep
def _ratios_at_scale(config: SuppressionConfig, scale: float) -> tuple:
    cfg = dataclasses.replace(config, scales=(scale,), ps=(HDETACH_P,))
    res = suppression_sweep(cfg)
    return tuple((v, float(np.mean(res.ratio("cell/total", "all", v)[:, 0]))) for v in res.variants)


def check_ratio_at_scale_4(ratio_at_4, config) -> None:
    """Exercise 1: ratio_at_4 (a number) must be within a factor RATIO_FACTOR of the mean over the
    seeds of `config` of ||g_cell|| / ||g_total|| with the weights scaled by 4."""
    name = "ratio_at_4"
    if not isinstance(config, SuppressionConfig):
        raise ExerciseError("pass the SuppressionConfig of your sweep as the second argument, "
                            f"got {type(config).__name__}")
    if isinstance(ratio_at_4, np.ndarray) and ratio_at_4.size == 1:
        ratio_at_4 = ratio_at_4.item()
    if isinstance(ratio_at_4, (bool, np.bool_)) or not isinstance(ratio_at_4, Real):
        raise ExerciseError(f"{name} must be one number, got {type(ratio_at_4).__name__}")
    pred = float(ratio_at_4)
    if not np.isfinite(pred) or pred <= 0:
        raise ExerciseError(f"{name} must be a positive number (a ratio of two norms), got {pred!r}")
    ratios = ratios_at_scale(config)
    actual = ratios["plain"]
    what = f"{'Wh' if config.weights == 'Wh' else 'Wx, Wh, b'} multiplied by {SCALE:g}"
    if 1 / RATIO_FACTOR <= pred / actual <= RATIO_FACTOR:
        passed(f"With {what}, the computed ||g_cell|| / ||g_total|| is {actual:.3g} (mean over "
               f"{len(config.seeds)} seed(s)); your prediction {pred:.3g} is within a factor {RATIO_FACTOR:g}.")
        return
    hd_ratio = ratios[f"p={HDETACH_P:g}"]
    if 1 / HDETACH_FACTOR <= pred / hd_ratio <= HDETACH_FACTOR:
        hint = (f"that is close to the share of the expected h-detach gradient (p = {HDETACH_P:g}); the "
                "exercise asks for the plain gradient (the line labelled 'plain gradient')")
    elif pred > actual:
        hint = ("too high: the cell share falls faster and faster as s grows, because the h part "
                "grows faster and faster; interpolate between the two nearest scales on the log-log plot")
    else:
        hint = ("too low: between the two scales around 4 the cell share falls, but not yet as "
                "steeply as beyond; interpolate log(ratio) linearly in log(s) between the two nearest scales")
    raise ExerciseError(f"{name} = {pred:.3g} is not within a factor {RATIO_FACTOR:g} of the value computed "
                        f"with {what}: {hint}.")


# ---------------------------------------------------------------------------------------------
# Exercise 2: the product of the cell blocks A_t
# ---------------------------------------------------------------------------------------------


def random_cache(seed, T, N, D, H) -> LSTMCache:
    """An LSTMCache of a random float64 LSTM (non-zero biases, random h0, c0) on random inputs."""
    rng = np.random.default_rng(seed)
    params = init_lstm(D, H, rng, dtype=np.float64)
    params.b[:] = rng.uniform(-0.5, 0.5, size=4 * H)
    x = rng.standard_normal((T, N, D))
    h0, c0 = 0.5 * rng.standard_normal((N, H)), 0.5 * rng.standard_normal((N, H))
    return lstm_forward(params, x, h0, c0)[1]


def reference_cell_product(cache: LSTMCache, end_step: int, k: int) -> np.ndarray:
    """A_end A_{end-1} ... A_{end-k+1} (N, 2H, 2H), multiplying the A_t of `step_jacobians`."""
    T, N, _ = cache.x.shape
    H = cache.params.hidden_size
    prod = np.broadcast_to(np.eye(2 * H), (N, 2 * H, 2 * H)).copy()
    for t in range(end_step, end_step - k, -1):
        prod = prod @ step_jacobians(cache, t, direct=False).A
    return prod


def _closed_form(cache: LSTMCache, end_step: int, first: int, top: str = "k_last") -> np.ndarray:
    """[[0, diag(top block)], [0, diag(prod f)]] over steps first..end_step (for the hints).

    top="k_last": k_end times the other forget gates (the right answer when first = end_step - k + 1);
    "k_first": k taken at the first step instead; "f": the product of the forget gates.
    """
    H = cache.params.hidden_size
    N = cache.x.shape[1]
    f = cache.gates[:, :, H:2 * H]  # (T, N, H)
    o = cache.gates[:, :, 2 * H:3 * H]
    kk = o * (1 - cache.tanh_c ** 2) * f  # (T, N, H): dh_t/dc_{t-1}
    steps = list(range(first, end_step + 1))
    prod_f = lambda ts: np.prod([f[t] for t in ts], axis=0) if ts else np.ones((N, H))
    if top == "f":
        top_block = prod_f(steps)
    else:
        at = end_step if top == "k_last" else first
        top_block = kk[at] * prod_f([t for t in steps if t != at])
    out = np.zeros((N, 2 * H, 2 * H))
    idx = np.arange(H)
    out[:, idx, H + idx] = top_block
    out[:, H + idx, H + idx] = prod_f(steps)
    return out


def check_cell_jacobian_product(cell_jacobian_product) -> None:
    """Exercise 2: cell_jacobian_product(cache, end_step, k) must return A_end ... A_{end-k+1}
    (N, 2H, 2H) for end_step in [0, T-1] and 1 <= k <= end_step + 1."""
    name = "cell_jacobian_product"
    worst, cases = 0.0, 0
    for seed, T, N, D, H in SEQUENCE_SIZES:
        cache = random_cache(seed, T, N, D, H)
        for end_step, k in ((T - 1, 1), (T - 1, 2), (T - 2, T - 2), (T - 1, T)):
            before = {"cache.gates": cache.gates.copy(), "cache.tanh_c": cache.tanh_c.copy(), "cache.c": cache.c.copy()}
            got = expect_array(name, call_student(cell_jacobian_product, name, cache, end_step, k), (N, 2 * H, 2 * H))
            after = {"cache.gates": cache.gates, "cache.tanh_c": cache.tanh_c, "cache.c": cache.c}
            expect_unchanged(name, before, after)
            expected = reference_cell_product(cache, end_step, k)
            cases += 1
            if close(got, expected):
                worst = max(worst, rel_error(got, expected))
                continue
            first = end_step - k + 1
            hints = [
                (_closed_form(cache, end_step, first, top="f"),
                 "the top-right block is dh_end/dc_{first-1}: its last factor is k_end = o (1 - tanh(c)^2) f "
                 "of step end_step (through h_end = o tanh(c_end)), not f_end"),
                (_closed_form(cache, end_step, first, top="k_first"),
                 "k belongs to the LAST step of the product (end_step, where the path leaves c for h), "
                 "not to the first"),
                (np.swapaxes(expected, 1, 2),
                 "you returned the transpose: rows index the state s_end = [h ; c] at end_step, columns "
                 "the state at the start, so the non-zero blocks sit in the right half of the columns"),
            ]
            if first >= 1:
                hints.append((_closed_form(cache, end_step, first - 1),
                              "the product has exactly k factors, steps end_step-k+1 .. end_step; you used k+1"))
            if k >= 2:
                hints.append((_closed_form(cache, end_step, first + 1),
                              "the product has exactly k factors, steps end_step-k+1 .. end_step; you used k-1"))
            raise ExerciseError(diagnose(name, got, expected, hints,
                                          f"T={T}, N={N}, H={H}, end_step={end_step}, k={k}",
                                          "A_t = [[0, diag k_t], [0, diag f_t]]: multiply two of them by hand "
                                          "to see the pattern (k_t = o_t (1 - tanh(c_t)^2) f_t)"))
    passed(f"{name} matches the product of the A_t of hdetach_np.step_jacobians in {cases} cases "
           f"(largest relative error {worst:.1e}).")


__all__ = ["check_cell_jacobian_product", "check_ratio_at_scale_4", "random_cache", "ratios_at_scale",
           "reference_cell_product"]
