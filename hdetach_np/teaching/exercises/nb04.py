"""Checks for notebooks/04_h_detach.ipynb.

1. `check_path_weight(path_weight)`: path_weight(k, p) -> (1 - p)**k, the probability that a
   backward path with k edges h_{t-1} -> gates_t survives an h-detach mask (its weight in E[g]).
2. `check_keep_mask(keep_mask)`: keep_mask(T, p, rng) -> a (T,) float 0/1 keep mask, each entry 0
   (detach) with probability p, drawn from `rng`.
3. `check_expected_gradient(expected_gradient)`: expected_gradient(dhs, cache, p) -> the LSTMGrads of
   E[g] over h-detach masks, from a single `lstm_backward` call.

p is always the probability of BLOCKING (detaching) an edge, as in the package and the original code.
"""

from __future__ import annotations

import numpy as np

from ...gradcheck import rel_error
from ...lstm import init_lstm
from ...paths.split import expected_h_detach_gradient
from ...sequence import LSTMGrads, lstm_backward, lstm_forward
from . import ExerciseError, call_student, close, expect_array, expect_unchanged, passed

WEIGHT_GRID = tuple((k, p) for k in (0, 1, 2, 3, 7) for p in (0.0, 0.25, 0.5, 0.9, 1.0))
MASK_T = 20_000  # entries drawn to check the detach frequency
MASK_P = 0.3
MASK_SIGMAS = 6.0  # the frequency must lie within this many standard deviations of p
EXPECTED_SIZES = ((0, 6, 3, 2, 4, 0.25), (1, 4, 2, 3, 3, 0.6), (2, 3, 1, 1, 2, 1.0))  # (seed, T, N, D, H, p)
GRAD_FIELDS = ("Wx", "Wh", "b", "x", "h0", "c0")
FLIPPED = ("you detach with probability 1 - p; p is the probability of DETACHING, so an entry is 0 "
           "with probability p (e.g. keep where rng.random(T) >= p)")


# ---------------------------------------------------------------------------------------------
# 1. The weight of a path
# ---------------------------------------------------------------------------------------------


def _as_number(name, got) -> float:
    if isinstance(got, np.ndarray) and got.shape == ():
        got = got[()]
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
        raise ExerciseError(f"{name} must return a number, got {type(got).__name__}")
    value = float(got)
    if not np.isfinite(value):
        raise ExerciseError(f"{name} returned {value}")
    return value


def check_path_weight(path_weight) -> None:
    """Exercise 1: path_weight(k, p) must return (1 - p)**k for k >= 0 edges and p in [0, 1]."""
    name = "path_weight"
    for k, p in WEIGHT_GRID:
        got = _as_number(name, call_student(path_weight, name, k, p))
        expected = (1.0 - p) ** k
        if abs(got - expected) <= 1e-12:
            continue
        where = f"{name}({k}, {p}) returned {got:.6g}, expected {expected:.6g}"
        if k == 0:
            hint = ("a path with no h-edge is the pure cell path: no mask can cut it, so its weight is 1 "
                    "for every p")
        elif abs(got - p ** k) <= 1e-12:
            hint = ("p is the probability of cutting (detaching) an edge; an edge is kept with probability "
                    "1 - p, and the path survives only if all k of its edges are kept")
        elif abs(got - (1 - p) * k) <= 1e-12 or abs(got - (1 - p * k)) <= 1e-12:
            hint = ("the k edges are cut independently (one draw per step), so the probabilities of keeping "
                    "them multiply: a power, not a sum")
        elif abs(got - (1 - p ** k)) <= 1e-12:
            hint = "1 - p**k is the probability that at least one edge is kept; all k must be kept"
        else:
            hint = "each of the k h-edges is kept independently with probability 1 - p"
        raise ExerciseError(f"{where}: {hint}.")
    passed(f"{name} gives (1 - p)**k on {len(WEIGHT_GRID)} pairs (k, p), including k = 0 and p = 0 and 1.")


# ---------------------------------------------------------------------------------------------
# 2. A keep mask
# ---------------------------------------------------------------------------------------------


def _mask(keep_mask, name, T, p, seed) -> np.ndarray:
    got = call_student(keep_mask, name, T, p, np.random.default_rng(seed))
    if isinstance(got, np.ndarray) and got.dtype == bool:
        raise ExerciseError(f"{name} returned a boolean array; lstm_backward multiplies the gradient by the "
                            "mask, so return floats: e.g. `(...).astype(np.float32)`")
    got = expect_array(name, got, (T,))
    values = np.unique(got)
    if not np.isin(values, (0.0, 1.0)).all():
        if np.allclose(got, 1 - p):
            raise ExerciseError(f"{name}({T}, {p}, rng) returned 1 - p everywhere: that is the mean of the mask "
                                "(the factor of the expected gradient); sample each entry as 0 or 1 instead")
        raise ExerciseError(f"{name} must return 0 (detach) and 1 (keep) only, got values such as "
                            f"{values[~np.isin(values, (0.0, 1.0))][:3]}")
    return got


def check_keep_mask(keep_mask) -> None:
    """Exercise 2: keep_mask(T, p, rng) -> (T,) floats in {0, 1}, 0 with probability p, drawn from rng."""
    name = "keep_mask"
    for p, want in ((0.0, 1.0), (1.0, 0.0)):
        got = _mask(keep_mask, name, 50, p, 0)
        if (got == 1 - want).all():
            raise ExerciseError(f"{name}(50, {p}, rng) returned all {1 - want:g}: {FLIPPED}.")
        if not (got == want).all():
            raise ExerciseError(f"{name}(50, {p}, rng) must be all {want:g} (p = {p} "
                                f"{'never' if p == 0 else 'always'} detaches), got {int((got != want).sum())} "
                                f"entries equal to {1 - want:g}")
    got = _mask(keep_mask, name, MASK_T, MASK_P, 1)
    detached = float(np.mean(got == 0))
    sd = np.sqrt(MASK_P * (1 - MASK_P) / MASK_T)
    if abs(detached - MASK_P) > MASK_SIGMAS * sd:
        if abs(detached - (1 - MASK_P)) <= MASK_SIGMAS * sd:
            hint = FLIPPED
        else:
            hint = "each entry must be 0 with probability p, independently"
        raise ExerciseError(f"{name}({MASK_T}, {MASK_P}, rng) detached {detached:.3f} of the steps, expected "
                            f"about {MASK_P} (+- {MASK_SIGMAS * sd:.3f}): {hint}.")
    a, b = _mask(keep_mask, name, 200, 0.5, 2), _mask(keep_mask, name, 200, 0.5, 2)
    c = _mask(keep_mask, name, 200, 0.5, 3)
    if not np.array_equal(a, b) or np.array_equal(a, c):
        raise ExerciseError(f"{name} must draw its random numbers from the generator `rng` it is given "
                            "(e.g. rng.random(T)), so that the same seed gives the same mask and another "
                            "seed another mask; do not use np.random.* directly")
    passed(f"{name} returns 0/1 float masks; with p = {MASK_P} it detached {detached:.3f} of {MASK_T} steps, "
           "and it draws from the rng it is given.")


# ---------------------------------------------------------------------------------------------
# 3. The expected gradient in one backward pass
# ---------------------------------------------------------------------------------------------


def _expected_problem(seed, T, N, D, H):
    rng = np.random.default_rng(seed)
    params = init_lstm(D, H, rng, dtype=np.float64)
    params.b[:] = rng.uniform(-0.5, 0.5, size=4 * H)
    params.Wh[:] *= 3.0  # larger recurrent weights: the h paths matter
    _, cache = lstm_forward(params, rng.standard_normal((T, N, D)))
    return rng.standard_normal((T, N, H)), cache


def _all_close(got: LSTMGrads, expected: LSTMGrads) -> bool:
    return all(close(getattr(got, f), getattr(expected, f)) for f in GRAD_FIELDS)


def check_expected_gradient(expected_gradient) -> None:
    """Exercise 3: expected_gradient(dhs, cache, p) must return E[g] (an LSTMGrads) over h-detach masks."""
    name = "expected_gradient"
    worst = 0.0
    for seed, T, N, D, H, p in EXPECTED_SIZES:
        dhs, cache = _expected_problem(seed, T, N, D, H)
        before = {"dhs": dhs.copy(), "cache.h": cache.h.copy(), "cache.gates": cache.gates.copy()}
        got = call_student(expected_gradient, name, dhs, cache, p)
        expect_unchanged(name, before, {"dhs": dhs, "cache.h": cache.h, "cache.gates": cache.gates})
        if not isinstance(got, LSTMGrads):
            raise ExerciseError(f"{name} must return the LSTMGrads of lstm_backward, got {type(got).__name__}")
        shapes = {"Wx": (D, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,), "x": (T, N, D), "h0": (N, H), "c0": (N, H)}
        for f in GRAD_FIELDS:
            expect_array(f"{name}(...).{f}", getattr(got, f), shapes[f])
        expected = expected_h_detach_gradient(dhs, cache, p)
        if _all_close(got, expected):
            worst = max(worst, max(rel_error(getattr(got, f), getattr(expected, f)) for f in GRAD_FIELDS))
            continue
        plain = lstm_backward(dhs, cache)
        scaled = LSTMGrads(**{f: (1 - p) * getattr(plain, f) for f in GRAD_FIELDS})
        hints = [
            (lstm_backward(dhs, cache, h_scale=np.full(T, p)),
             "you scaled the h-edges by p, the probability of cutting them; an edge is kept with probability "
             "1 - p, so its mean factor is 1 - p"),
            (plain, "that is the plain gradient (every edge kept); scale every h-edge by its mean keep factor"),
            (scaled, "multiplying the whole gradient by 1 - p also shrinks the cell path, which no mask ever "
                     "cuts; scale only the h-edges: lstm_backward(dhs, cache, h_scale=...)"),
            (lstm_backward(dhs, cache, h_scale=np.zeros(T)), "that is the cell path alone (p = 1)"),
        ]
        hint = "one call lstm_backward(dhs, cache, h_scale=np.full(T, 1 - p)) gives E[g] exactly"
        for candidate, text in hints:
            if _all_close(got, candidate):
                hint = text
                break
        else:
            if rel_error(got.Wh, expected.Wh) < 0.3:
                hint = ("your answer is close but not exact: a mean over sampled masks only approaches E[g]; "
                        "the gradient is linear in each step's edge factor, so put the mean factor 1 - p on "
                        "every h-edge instead")
        raise ExerciseError(f"{name} is not right yet on a problem with T={T}, N={N}, D={D}, H={H}, p={p} "
                            f"(relative error of Wh {rel_error(got.Wh, expected.Wh):.2g}): {hint}.")
    passed(f"{name} matches hdetach_np.expected_h_detach_gradient on {len(EXPECTED_SIZES)} problems "
           f"(largest relative error {worst:.1e}).")


__all__ = ["check_expected_gradient", "check_keep_mask", "check_path_weight"]
