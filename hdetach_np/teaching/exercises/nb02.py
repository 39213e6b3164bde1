"""Checks for notebooks/02_two_paths.ipynb.

1. `check_psi_tilde(psi_tilde)`: psi_tilde(gates, c_prev, Wh) -> dc_t/dh_{t-1} (N, H, H), from the
   activated gates (N, 4H) of step t, c_{t-1} (N, H) and Wh (H, 4H).
2. `check_forward_step(forward_step)`: forward_step(J, z_prev, lam) -> z_t (N, 2H, P), one step of
   the forward-mode recursion z_t = (A_t + lam B_t) z_{t-1} + E_t for the StepJacobians J of step t.
3. `check_wh_zero(vanishing_part, wh_gradient_is_zero)`: which part of the gradient ("cell", "h",
   "both" or "neither") is zero (up to rounding) when Wh = 0, and whether dL/dWh itself is then zero.

The references are the package's `step_jacobians`, `forward_mode` and `gradient_paths` (each checked
against finite differences or the reverse mode by the test suite); the right answer of exercise 3
is computed, not stored.
"""

from __future__ import annotations

import numpy as np

from ...gradcheck import rel_error
from ...lstm import LSTMParams, init_lstm
from ...paths.jacobians import StepJacobians, forward_mode, num_params, step_jacobians
from ...paths.split import gradient_paths
from ...sequence import LSTMCache, lstm_forward
from . import ExerciseError, call_student, close, diagnose, expect_array, expect_unchanged, passed

STEP_SIZES = ((0, 3, 2, 4), (1, 2, 1, 5), (2, 1, 3, 1))  # (seed, N, D, H)
SEQUENCE_SIZES = ((3, 4, 2, 2, 3), (4, 3, 1, 1, 2))  # (seed, T, N, D, H)
LAMBDAS = (0.5, 0.0, 1.0)  # 0.5 first: there the usual mistakes give different numbers
PARTS = ("cell", "h", "both", "neither")
ZERO_TOL = 1e-12  # a part whose norm is below this fraction of the total is zero (rounding only)


def random_cache(seed, T, N, D, H, Wh_scale=1.0) -> LSTMCache:
    """An LSTMCache of a random float64 LSTM (non-zero biases, random h0, c0) on random inputs."""
    rng = np.random.default_rng(seed)
    params = init_lstm(D, H, rng, dtype=np.float64)
    params.b[:] = rng.uniform(-0.5, 0.5, size=4 * H)  # non-zero biases, gates unsaturated
    params = LSTMParams(params.Wx, Wh_scale * params.Wh, params.b)
    x = rng.standard_normal((T, N, D))
    h0, c0 = 0.5 * rng.standard_normal((N, H)), 0.5 * rng.standard_normal((N, H))
    return lstm_forward(params, x, h0, c0)[1]


# ---------------------------------------------------------------------------------------------
# Exercise 1: Psi~_t = dc_t/dh_{t-1}
# ---------------------------------------------------------------------------------------------


def _psi_tilde_terms(gates, c_prev, Wh, order="ifog", transpose=True, rows=True, f_factor=True):
    """The three terms of Psi~ (N, H, H) with some of the usual mistakes switched on, for hints."""
    H = c_prev.shape[1]
    blk = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(order)}
    i, f, g = gates[:, blk["i"]], gates[:, blk["f"]], gates[:, blk["g"]]
    W = {name: (Wh[:, blk[name]].T if transpose else Wh[:, blk[name]]) for name in "ifg"}  # (H, H)

    def diag_times(v, M):  # diag(v) M (rows scaled) or, as a mistake, M diag(v) (columns scaled)
        return v[:, :, None] * M[None] if rows else M[None] * v[:, None, :]

    return {
        "f": diag_times((c_prev if f_factor else 1.0) * f * (1 - f), W["f"]),
        "i": diag_times(g * i * (1 - i), W["i"]),
        "g": diag_times(i * (1 - g * g), W["g"]),
    }


def check_psi_tilde(psi_tilde) -> None:
    """Exercise 1: psi_tilde(gates, c_prev, Wh) must return dc_t/dh_{t-1} (N, H, H)."""
    name = "psi_tilde"
    worst = 0.0
    for seed, N, D, H in STEP_SIZES:
        cache = random_cache(seed, 2, N, D, H)
        t = 1
        gates, c_prev, Wh = cache.gates[t].copy(), cache.c[t].copy(), cache.params.Wh.copy()
        before = {"gates": gates.copy(), "c_prev": c_prev.copy(), "Wh": Wh.copy()}
        got = expect_array(name, call_student(psi_tilde, name, gates, c_prev, Wh), (N, H, H))
        expect_unchanged(name, before, {"gates": gates, "c_prev": c_prev, "Wh": Wh})
        expected = step_jacobians(cache, t, direct=False).psi_tilde
        if close(got, expected):
            worst = max(worst, rel_error(got, expected))
            continue
        terms = _psi_tilde_terms(gates, c_prev, Wh)
        hints = [
            (sum(_psi_tilde_terms(gates, c_prev, Wh, transpose=False).values()),
             "use the transposed gate blocks: with a_t = ... + h_{t-1} Wh, da_t[j]/dh_{t-1}[m] = Wh[m, j], "
             "so the Jacobian of a_f with respect to h_{t-1} is Wh[:, H:2H].T"),
            (sum(_psi_tilde_terms(gates, c_prev, Wh, rows=False).values()),
             "the gate derivatives scale the ROWS: row j of dc_t/dh_{t-1} belongs to unit j of c_t, so "
             "write diag(v) @ W.T, i.e. v[:, :, None] * W.T, not W.T * v[:, None, :]"),
            (sum(_psi_tilde_terms(gates, c_prev, Wh, order="ifgo").values()),
             "your blocks are in torch.nn.LSTM's order i, f, g, o; this package uses i, f, o, g "
             "(gates[:, 3H:4H] and Wh[:, 3H:4H] are g)"),
            (sum(_psi_tilde_terms(gates, c_prev, Wh, f_factor=False).values()),
             "the forget gate multiplies c_{t-1} (c_t = f_t * c_{t-1} + ...), so its term is "
             "diag(c_{t-1} * f * (1 - f)) Wh_f^T"),
            (expected - terms["f"], "you left out the forget-gate term diag(c_{t-1} f (1 - f)) Wh_f^T"),
            (expected - terms["i"], "you left out the input-gate term diag(g i (1 - i)) Wh_i^T"),
            (expected - terms["g"], "you left out the candidate term diag(i (1 - g^2)) Wh_g^T"),
        ]
        raise ExerciseError(diagnose(name, got, expected, hints, f"N={N}, H={H}",
                                      "c_t = f * c_{t-1} + i * g; differentiate each gate through its "
                                      "pre-activation a = ... + h_{t-1} Wh (order i, f, o, g) and add the three terms"))
    passed(f"{name} matches hdetach_np.step_jacobians(...).psi_tilde on {len(STEP_SIZES)} random steps "
           f"(largest relative error {worst:.1e}).")


# ---------------------------------------------------------------------------------------------
# Exercise 2: one step of the forward-mode recursion
# ---------------------------------------------------------------------------------------------


def check_forward_step(forward_step) -> None:
    """Exercise 2: forward_step(J, z_prev, lam) must return (A_t + lam B_t) z_prev + E_t (N, 2H, P)."""
    name = "forward_step"
    worst = 0.0
    for lam in LAMBDAS:
        for seed, T, N, D, H in SEQUENCE_SIZES:
            cache = random_cache(seed, T, N, D, H)
            P = num_params(cache.params)
            z = np.zeros((N, 2 * H, P))
            zs = np.empty((T, N, 2 * H, P))
            for t in range(T):
                J = step_jacobians(cache, t)
                before = {"z_prev": z.copy(), "J.A": J.A.copy(), "J.B": J.B.copy(), "J.E": J.E.copy()}
                got = expect_array(name, call_student(forward_step, name, J, z, lam), (N, 2 * H, P))
                expect_unchanged(name, before, {"z_prev": z, "J.A": J.A, "J.B": J.B, "J.E": J.E})
                expected = J.A @ z + lam * (J.B @ z) + J.E
                if not close(got, expected):
                    raise ExerciseError(_forward_step_hint(name, got, expected, J, z, lam, t, f"T={T}, N={N}, H={H}"))
                worst = max(worst, rel_error(got, expected))
                z = got
                zs[t] = z
            # the whole recursion, run with the student's step, against the package's forward mode
            sens = forward_mode(cache, h_scale=lam)
            ref = np.concatenate([sens.dh, sens.dc], axis=2)  # (T, N, 2H, P)
            if not close(zs, ref):  # pragma: no cover - implied by the step checks above
                raise ExerciseError(f"{name} run over {T} steps does not reproduce hdetach_np.forward_mode "
                                    f"(relative error {rel_error(zs, ref):.2g}) with lam={lam}")
    passed(f"{name} reproduces hdetach_np.forward_mode at every step for lambda in {sorted(LAMBDAS)} on "
           f"{len(SEQUENCE_SIZES)} random sequences (largest relative error {worst:.1e}).")


def _forward_step_hint(name, got, expected, J: StepJacobians, z, lam, t, dims) -> str:
    hints = [
        (J.A @ z + lam * (J.B @ z), "you left out E_t, the step's direct dependence on the parameters "
                                    "(J.E): without it z stays 0 forever"),
        (lam * (J.A @ z) + J.B @ z + J.E, "lam belongs to B_t (the h-edge h_{t-1} -> a_t, the one h-detach "
                                          "cuts), not to A_t (the cell edge)"),
        (lam * (J.B @ z) + J.E, "you left out A_t z_{t-1}: the cell edge c_{t-1} -> c_t also carries "
                                "dc_{t-1}/dtheta forward"),
        (J.A @ z + J.B @ z + J.E, "multiply B_t z_{t-1} by lam: with lam = 0 the h-edge is cut"),
        (lam * (J.A @ z + J.B @ z + J.E), "only B_t is multiplied by lam; A_t z_{t-1} and E_t are not"),
        (lam * (J.A @ z + J.B @ z) + J.E, "only B_t is multiplied by lam; A_t z_{t-1} is not"),
    ]
    where = f"{name} is not right yet at step t={t} (lam={lam}) of a sequence with {dims}"
    for candidate, hint in hints:
        if close(got, candidate):
            return f"{where}: {hint}."
    return (f"{where} (relative error {rel_error(got, expected):.2g}). Hint: z_t = (A_t + lam B_t) z_prev + "
            "E_t with J.A, J.B (N, 2H, 2H), z_prev (N, 2H, P), J.E (N, 2H, P); use batched matmul `@`.")


# ---------------------------------------------------------------------------------------------
# Exercise 3: what Wh = 0 removes
# ---------------------------------------------------------------------------------------------


def wh_zero_norms(seed=5, T=6, N=3, D=2, H=4) -> dict:
    """PathGrads.norms() of a random LSTM with Wh = 0 and a loss at every step."""
    cache = random_cache(seed, T, N, D, H, Wh_scale=0.0)
    dhs = np.random.default_rng(seed + 1).standard_normal((T, N, H))
    return gradient_paths(dhs, cache).norms()


def check_wh_zero(vanishing_part, wh_gradient_is_zero) -> None:
    """Exercise 3: vanishing_part in ("cell", "h", "both", "neither"): the part of the gradient that
    is exactly zero when Wh = 0; wh_gradient_is_zero (bool): whether dL/dWh is then zero too."""
    if not isinstance(vanishing_part, str) or vanishing_part.strip().lower() not in PARTS:
        raise ExerciseError(f"vanishing_part must be one of {', '.join(map(repr, PARTS))}, got {vanishing_part!r}")
    if not isinstance(wh_gradient_is_zero, (bool, np.bool_)):
        raise ExerciseError(f"wh_gradient_is_zero must be True or False, got {wh_gradient_is_zero!r}")
    answer = vanishing_part.strip().lower()
    n = wh_zero_norms()
    # zero up to rounding: the two parts come from two adjoint streams computed in different orders
    zero = [q for q in ("cell", "h") if n[q]["all"] <= ZERO_TOL * n["total"]["all"]]
    truth = {0: "neither", 2: "both"}.get(len(zero), zero[0] if zero else "neither")
    wh_truth = n["total"]["Wh"] <= ZERO_TOL * n["total"]["all"]
    if answer != truth:
        hints = {
            "cell": "the cell path never goes through Wh (A_t holds only f_t and k_t), so Wh = 0 cannot "
                    "remove it. Which block of the step Jacobian is a product with Wh?",
            "both": "one part survives: the cell path uses only the cell edges c_{t-1} -> c_t, whose "
                    "Jacobian A_t = [[0, diag k], [0, diag f]] does not involve Wh",
            "neither": "every term of B_t = [[Psi, 0], [Psi~, 0]] is a product with a block of Wh^T. "
                       "What is B_t when Wh = 0, and which paths use B_t?",
            "h": "look again at which block of the step Jacobian involves Wh",
        }
        raise ExerciseError(f"vanishing_part={vanishing_part!r} is not right: {hints[answer]}.")
    if bool(wh_gradient_is_zero) != wh_truth:
        raise ExerciseError(
            "wh_gradient_is_zero is not right: dL/dWh = sum_t h_{t-1}^T dL/da_t. With Wh = 0 the "
            "states h_{t-1} are still non-zero (they come from Wx and b) and dL/da_t still receives "
            "the cell path: a weight set to zero does not make its own gradient zero."
            if wh_gradient_is_zero else
            "wh_gradient_is_zero is not right: compute dL/dWh = sum_t h_{t-1}^T dL/da_t on this problem."
        )
    passed(f"With Wh = 0 every B_t is zero, so the {truth} part vanishes (||g_h|| = {n['h']['all']:.1e}, "
           f"rounding only, against ||g_cell|| = {n['cell']['all']:.3f}), while dL/dWh is not zero "
           f"(||dL/dWh|| = {n['total']['Wh']:.3f}, all of it cell path).")


__all__ = ["check_forward_step", "check_psi_tilde", "check_wh_zero", "random_cache", "wh_zero_norms"]
