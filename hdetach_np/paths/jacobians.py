"""The two-path recursion in forward mode: explicit per-step Jacobian blocks A_t, B_t.

For a small LSTM (float64) this module writes out the maths of the paper's section 3. The state of
step t is s_t = [h_t ; c_t] (2H per example). One step's Jacobian splits into two blocks:

    ds_t/ds_{t-1} = A_t + B_t

    A_t = [[0, diag k_t],        the cell edge c_{t-1} -> c_t (and on to h_t):
           [0, diag f_t]]        k_t = o_t (1 - tanh(c_t)^2) f_t; bounded entries
    B_t = [[Psi_t,  0],          the h-edge h_{t-1} -> a_t: every entry is a product with Wh
           [Psi~_t, 0]]

    Psi~_t = dc_t/dh_{t-1} = diag(c_{t-1} f(1-f)) Wh_f^T + diag(g i(1-i)) Wh_i^T + diag(i(1-g^2)) Wh_g^T
    Psi_t  = dh_t/dh_{t-1} = diag(tanh(c_t) o(1-o)) Wh_o^T + diag(o (1 - tanh(c_t)^2)) Psi~_t

(Wh_f is the f-block of Wh (H, 4H) in this project's layout, hence the transposes.) For the
parameters theta = (Wx, Wh, b) flattened in that order (P = 4H (D + H + 1) numbers), the direct term
E_t = ds_t/dtheta at fixed s_{t-1} closes the recursion

    z_t = (A_t M_t + B_t L_t) z_{t-1} + E_t,      z_t = ds_t/dtheta (2H, P), z_0 = 0

with L_t = diag(h_scale[t] on the h half, 1 on the c half) and M_t = diag(1, c_scale[t]) the edge
factors of `lstm_backward`. With scalar factors this is the paper's `z_t = (A_t + lambda B_t) z_{t-1}`
in its augmented form [[A_t + lambda B_t, E_t], [0, 1]] acting on [z ; 1]. The cell-path part of
any product of these Jacobians is the product of the A_t alone.

`forward_mode` runs the recursion and gives dh_t/dtheta, dc_t/dtheta for every step, an independent
check of the reverse mode (`lstm_backward`) for every weight; `jacobian_products` gives the norms of
products of the step Jacobians over growing lags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import check_array
from ..lstm import LSTMParams
from ..sequence import LSTMCache, check_cache, edge_scale
from .records import json_floats

MAX_FORWARD_MODE_ENTRIES = 50_000_000  # T * N * 2H * P: forward mode is for small LSTMs


@dataclass(frozen=True, eq=False)
class StepJacobians:
    """The Jacobian blocks of one step t, for each example of the batch.

    A, B (N, 2H, 2H): ds_t/ds_{t-1} = A + B with s = [h ; c] (see the module docstring).
    E (N, 2H, P): ds_t/dtheta at fixed s_{t-1}, theta = (Wx, Wh, b) flattened in that order.
    psi, psi_tilde (N, H, H): dh_t/dh_{t-1}, dc_t/dh_{t-1}. k, f (N, H): dh_t/dc_{t-1}, dc_t/dc_{t-1}
    (diagonals). G (N, 2H, 4H): ds_t/da_t, the step's derivative with respect to its pre-activations.
    """

    A: np.ndarray
    B: np.ndarray
    E: np.ndarray | None
    psi: np.ndarray
    psi_tilde: np.ndarray
    k: np.ndarray
    f: np.ndarray
    G: np.ndarray


def _check_step(t, T, name="t"):
    if not isinstance(t, (int, np.integer)) or not 0 <= t < T:
        raise ValueError(f"{name} must be an integer step in [0, T-1={T - 1}], got {t!r}")
    return int(t)


def _state_derivatives(cache: LSTMCache, t: int):
    """G (N, 2H, 4H) = ds_t/da_t, and k, f (N, H)."""
    H = cache.params.hidden_size
    gates = cache.gates[t]
    i, f, o, g = (gates[:, k * H:(k + 1) * H] for k in range(4))
    tau, c_prev = cache.tanh_c[t], cache.c[t]
    N = gates.shape[0]
    dtau = o * (1 - tau * tau)  # dh_t/dc_t (diagonal)
    # dc_t/da_t: c = f c_prev + i g, with the sigmoid / tanh derivatives, one diagonal per gate block
    dc_da = np.zeros((N, H, 4 * H), gates.dtype)
    idx = np.arange(H)
    dc_da[:, idx, idx] = g * i * (1 - i)  # i block
    dc_da[:, idx, H + idx] = c_prev * f * (1 - f)  # f block
    dc_da[:, idx, 3 * H + idx] = i * (1 - g * g)  # g block
    # dh_t/da_t: h = o tanh(c), through o directly and through c_t
    dh_da = dtau[:, :, None] * dc_da
    dh_da[:, idx, 2 * H + idx] = tau * o * (1 - o)  # o block
    G = np.concatenate([dh_da, dc_da], axis=1)  # (N, 2H, 4H)
    return G, dtau * f, f


def step_jacobians(cache: LSTMCache, t: int, direct: bool = True) -> StepJacobians:
    """The blocks A_t, B_t, E_t of step t (0-based; step t maps s_{t-1} = (cache.h[t], cache.c[t])
    to s_t = (cache.h[t+1], cache.c[t+1])). Returns StepJacobians (see its docstring for shapes);
    with direct=False the parameter block E is skipped (None)."""
    check_cache(cache)
    T, N, D = cache.x.shape
    t = _check_step(t, T)
    p = cache.params
    H = p.hidden_size
    G, k, f = _state_derivatives(cache, t)
    dt = G.dtype
    # B: through a_t = ... + h_{t-1} Wh, so d a_t / d h_{t-1} = Wh^T (4H, H)
    dh_prev = G @ p.Wh.T  # (N, 2H, H) = [Psi ; Psi~]
    A = np.zeros((N, 2 * H, 2 * H), dt)
    B = np.zeros((N, 2 * H, 2 * H), dt)
    idx = np.arange(H)
    A[:, idx, H + idx] = k
    A[:, H + idx, H + idx] = f
    B[:, :, :H] = dh_prev
    if not direct:
        return StepJacobians(A=A, B=B, E=None, psi=dh_prev[:, :H], psi_tilde=dh_prev[:, H:], k=k, f=f, G=G)
    # E: d a_t[j] / d Wx[d, j] = x_t[d], d a_t[j] / d Wh[m, j] = h_{t-1}[m], d a_t[j] / d b[j] = 1
    x_t, h_prev = cache.x[t], cache.h[t]
    E = np.concatenate([
        (x_t[:, None, :, None] * G[:, :, None, :]).reshape(N, 2 * H, D * 4 * H),
        (h_prev[:, None, :, None] * G[:, :, None, :]).reshape(N, 2 * H, H * 4 * H),
        G,
    ], axis=2)
    return StepJacobians(A=A, B=B, E=E, psi=dh_prev[:, :H], psi_tilde=dh_prev[:, H:], k=k, f=f, G=G)


def num_params(params: LSTMParams) -> int:
    """P = 4H (D + H + 1): the number of LSTM parameters, flattened as (Wx, Wh, b)."""
    return params.Wx.size + params.Wh.size + params.b.size


def flatten_params(params) -> np.ndarray:
    """(Wx, Wh, b) -> (P,), the order used by E_t and `forward_mode` (any object with Wx, Wh, b)."""
    return np.concatenate([params.Wx.ravel(), params.Wh.ravel(), params.b.ravel()])


def unflatten_params(theta: np.ndarray, D: int, H: int) -> LSTMParams:
    """(P,) -> LSTMParams(Wx (D, 4H), Wh (H, 4H), b (4H,)), the inverse of `flatten_params`."""
    n1, n2 = D * 4 * H, D * 4 * H + H * 4 * H
    if theta.shape != (n2 + 4 * H,):
        raise ValueError(f"expected theta of shape (P={n2 + 4 * H},), got {theta.shape}")
    return LSTMParams(theta[:n1].reshape(D, 4 * H).copy(), theta[n1:n2].reshape(H, 4 * H).copy(), theta[n2:].copy())


@dataclass(frozen=True, eq=False)
class ForwardSensitivities:
    """dh_t/dtheta and dc_t/dtheta for every step, from the forward-mode recursion.

    dh, dc (T, N, H, P), step t at index t (s_t = (hs[t], cs[t])); theta = (Wx, Wh, b) flattened.
    """

    dh: np.ndarray
    dc: np.ndarray
    D: int
    H: int

    def gradient(self, dhs=None, dhT=None, dcT=None) -> LSTMParams:
        """The gradient of L = sum_t <dhs[t], h_t> + <dhT, h_T> + <dcT, c_T> (the loss whose
        adjoints `lstm_backward` takes) as LSTMParams(Wx, Wh, b)."""
        T, N, H, P = self.dh.shape
        g = np.zeros(P, self.dh.dtype)
        if dhs is not None:
            check_array("dhs", dhs, (T, N, H), letters="TNH")
            g += np.einsum("tnh,tnhp->p", dhs, self.dh)
        if dhT is not None:
            g += np.einsum("nh,nhp->p", check_array("dhT", dhT, (N, H), letters="NH"), self.dh[-1])
        if dcT is not None:
            g += np.einsum("nh,nhp->p", check_array("dcT", dcT, (N, H), letters="NH"), self.dc[-1])
        return unflatten_params(g, self.D, self.H)


def forward_mode(cache: LSTMCache, h_scale=1.0, c_scale=1.0) -> ForwardSensitivities:
    """Run z_t = (A_t M_t + B_t L_t) z_{t-1} + E_t from z_0 = 0 (h0, c0 do not depend on theta).

    h_scale, c_scale: a number, or (T,), (T, N), (T, N, H) in [0, 1] as for `lstm_backward`.
    lambda = h_scale weights every path by lambda per h-edge, exactly as in the reverse mode.
    For small LSTMs: T * N * 2H * P must stay below 5e7. Returns ForwardSensitivities.
    """
    check_cache(cache)
    T, N, D = cache.x.shape
    p = cache.params
    H, P, dt = p.hidden_size, num_params(p), p.dtype
    if T * N * 2 * H * P > MAX_FORWARD_MODE_ENTRIES:
        raise ValueError(
            f"forward mode stores T*N*2H*P = {T * N * 2 * H * P} numbers (T={T}, N={N}, H={H}, P={P}); "
            f"expected at most {MAX_FORWARD_MODE_ENTRIES}: use a smaller LSTM, batch or sequence"
        )
    h_scale = edge_scale(h_scale, "h_scale", T, N, H, dt)
    c_scale = edge_scale(c_scale, "c_scale", T, N, H, dt)
    dh = np.empty((T, N, H, P), dt)
    dc = np.empty((T, N, H, P), dt)
    z_h = np.zeros((N, H, P), dt)  # dh_{t-1}/dtheta
    z_c = np.zeros((N, H, P), dt)  # dc_{t-1}/dtheta
    for t in range(T):
        J = step_jacobians(cache, t)
        zh_in = h_scale[t][..., None] * z_h  # the h-edge factor acts on h_{t-1}
        zc_in = c_scale[t][..., None] * z_c  # the cell-edge factor acts on c_{t-1}
        z = J.A[:, :, H:] @ zc_in + J.B[:, :, :H] @ zh_in + J.E  # (N, 2H, P)
        z_h, z_c = z[:, :H], z[:, H:]
        dh[t], dc[t] = z_h, z_c
    return ForwardSensitivities(dh, dc, D, H)


# ---------------------------------------------------------------------------------------------
# Products of step Jacobians over growing lags
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class JacobianProducts:
    """Norms of Pi_k(lambda) = J_end J_{end-1} ... J_{end-k+1}, J_t = A_t + lambda B_t, at each lag k.

    lags (K,); lambdas (Lm,); end_step: the step t of J_end. Each norm is the mean over the batch of
    the per-example norm. fro, spec (Lm, K): Frobenius / spectral norm of Pi_k(lambda).
    cell_fro, cell_spec (K,): the pure cell part prod A_t (the same for every lambda).
    h_fro, h_spec (Lm, K): the rest, Pi_k(lambda) - prod A_t (every term with at least one B).
    """

    lags: np.ndarray
    lambdas: np.ndarray
    end_step: int
    fro: np.ndarray
    spec: np.ndarray
    cell_fro: np.ndarray
    cell_spec: np.ndarray
    h_fro: np.ndarray
    h_spec: np.ndarray

    def as_dict(self) -> dict:
        """JSON-ready: lists of floats (7 significant digits)."""
        out = {k: json_floats(v) for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}
        out.update(lags=self.lags.tolist(), lambdas=self.lambdas.tolist(), end_step=self.end_step)
        return out


def jacobian_products(cache: LSTMCache, lambdas=(0.0, 0.5, 1.0), max_lag: int | None = None,
                      end_step: int | None = None, lags=None, spectral: bool = True) -> JacobianProducts:
    """Norms of products of step Jacobians ending at `end_step` (default T-1), for lags 1..max_lag.

    lambdas: h-edge factors in [0, 1]. max_lag (default end_step + 1) must be in [1, end_step + 1]:
    a product cannot reach before the first step. lags: the lags at which norms are evaluated
    (default every lag 1..max_lag; all must be in [1, max_lag]). spectral=False skips the SVDs
    (spec arrays are then nan). Returns JacobianProducts.
    """
    check_cache(cache)
    T, N, _ = cache.x.shape
    H = cache.params.hidden_size
    end_step = T - 1 if end_step is None else _check_step(end_step, T, "end_step")
    if max_lag is None:
        max_lag = end_step + 1
    elif not isinstance(max_lag, (int, np.integer)) or not 1 <= max_lag <= end_step + 1:
        raise ValueError(
            f"max_lag must be an integer in [1, end_step + 1 = {end_step + 1}] (a lag beyond the "
            f"T={T} steps of the sequence has no step), got {max_lag!r}"
        )
    lam = np.atleast_1d(np.asarray(lambdas, dtype=np.float64))
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"lambdas must be a non-empty list of numbers, got {lambdas!r}")
    if not np.all((lam >= 0) & (lam <= 1)):
        raise ValueError(f"lambdas must be in [0, 1], got {lam.tolist()}")
    if lags is None:
        lags = np.arange(1, max_lag + 1)
    else:
        lags = np.unique(np.asarray(lags))
        if lags.dtype.kind not in "iu" or lags.size == 0 or lags[0] < 1 or lags[-1] > max_lag:
            raise ValueError(f"lags must be integers in [1, max_lag={max_lag}], got {np.asarray(lags).tolist()}")
    want = set(int(k) for k in lags)
    K = lags.size
    fro, spec = np.full((lam.size, K), np.nan), np.full((lam.size, K), np.nan)
    h_fro, h_spec = np.full((lam.size, K), np.nan), np.full((lam.size, K), np.nan)
    cell_fro, cell_spec = np.full(K, np.nan), np.full(K, np.nan)
    dt = cache.params.dtype
    eye = np.broadcast_to(np.eye(2 * H, dtype=dt), (N, 2 * H, 2 * H))
    prods = [eye.copy() for _ in lam]
    cell = eye.copy()

    def norms(M):
        f = float(np.mean(np.linalg.norm(M, axis=(1, 2))))
        s = float(np.mean(np.linalg.norm(M, ord=2, axis=(1, 2)))) if spectral else np.nan
        return f, s

    col = 0
    for k in range(1, max_lag + 1):
        J = step_jacobians(cache, end_step - k + 1, direct=False)
        cell = cell @ J.A
        for m, l in enumerate(lam):
            prods[m] = prods[m] @ (J.A + l * J.B)
        if k in want:
            cell_fro[col], cell_spec[col] = norms(cell)
            for m in range(lam.size):
                fro[m, col], spec[m, col] = norms(prods[m])
                h_fro[m, col], h_spec[m, col] = norms(prods[m] - cell)
            col += 1
    return JacobianProducts(lags.astype(int), lam, int(end_step), fro, spec, cell_fro, cell_spec, h_fro, h_spec)


__all__ = [
    "ForwardSensitivities", "JacobianProducts", "StepJacobians", "flatten_params", "forward_mode",
    "jacobian_products", "num_params", "step_jacobians", "unflatten_params",
]
