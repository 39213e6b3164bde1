"""The LSTM of the original h-detach code: one step forward and backward, derived by hand.

Shapes use one alphabet: N batch, T time, D input, H hidden.
Gate order is i, f, o, g, as in the original code (NOT torch.nn.LSTM's i, f, g, o):

    a_t = x_t Wx + h_{t-1} Wh + b                    (N, 4H)  pre-activations
    i_t = sigmoid(a_t[:, 0:H])                       input gate
    f_t = sigmoid(a_t[:, H:2H])                      forget gate
    o_t = sigmoid(a_t[:, 2H:3H])                     output gate
    g_t = tanh(a_t[:, 3H:4H])                        candidate cell
    c_t = f_t * c_{t-1} + i_t * g_t                  cell state
    h_t = o_t * tanh(c_t)                            hidden state

The backward of one step, in the notation of notebook 01 (dv = dL/dv, same shape as v):

    dc~_t = dc_t + dh_t * o_t * (1 - tanh(c_t)^2)    everything that reaches c_t
    do = dh_t * tanh(c_t);  di = dc~_t * g_t;  df = dc~_t * c_{t-1};  dg = dc~_t * i_t
    da_t = [di i (1 - i), df f (1 - f), do o (1 - o), dg (1 - g^2)]      (N, 4H)
    dc_{t-1} = dc~_t * f_t                           the cell path
    dh_{t-1} = da_t Wh^T,  dx_t = da_t Wx^T,  dWx = x_t^T da_t,  dWh = h_{t-1}^T da_t,  db = sum_n da_t

`split_gates` gives the views i, f, o, g of any (..., 4H) array; `lstm_cell_backward` is the
derivation above line by line, and the one place it is computed: `lstm_step_backward` calls it, and
so does the time loop of `lstm_backward`. A whole sequence (`lstm_forward`, `lstm_backward`, edge
scales, and `lstm_forward_steps` / `lstm_backward_steps`, the plain loops over the step functions)
is in hdetach_np.sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._validate import check_array, check_choice, check_generator, check_unit_interval, float_dtype

GATES = ("i", "f", "o", "g")
INIT_SCHEMES = ("original", "forget-bias-1")


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LSTMParams:
    """LSTM weights. Wx (D, 4H), Wh (H, 4H), b (4H,), one float dtype; columns in gate order i, f, o, g."""

    Wx: np.ndarray
    Wh: np.ndarray
    b: np.ndarray

    def __post_init__(self) -> None:
        for name in ("Wx", "Wh", "b"):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray):
                raise TypeError(f"LSTMParams.{name} must be a numpy array, got {type(a).__name__}")
        if self.Wh.ndim != 2 or self.Wh.shape[1] != 4 * self.Wh.shape[0]:
            raise ValueError(f"expected Wh of shape (H, 4H), got {self.Wh.shape}")
        H = self.Wh.shape[0]
        dt = float_dtype(self.Wh.dtype, "Wh.dtype")
        for name in ("Wx", "b"):
            if getattr(self, name).dtype != dt:
                raise TypeError(
                    f"LSTMParams.{name} has dtype {getattr(self, name).dtype} but Wh is {dt}; "
                    "all parameters must share one dtype"
                )
        # shapes and finite values, the same check for all three
        check_array("Wx", self.Wx, (None, 4 * H), letters=("D", "4H"))
        check_array("Wh", self.Wh, (H, 4 * H), letters=("H", "4H"))
        check_array("b", self.b, (4 * H,), letters=("4H",))

    @property
    def input_size(self) -> int:
        return self.Wx.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.Wh.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.Wh.dtype

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"Wx": self.Wx, "Wh": self.Wh, "b": self.b}

    def astype(self, dtype: DTypeLike) -> LSTMParams:
        dt = float_dtype(dtype)
        return LSTMParams(*(a.astype(dt) for a in (self.Wx, self.Wh, self.b)))

    def copy(self) -> LSTMParams:
        return LSTMParams(self.Wx.copy(), self.Wh.copy(), self.b.copy())


def init_lstm(input_size: int, hidden_size: int, rng: np.random.Generator,
              dtype: DTypeLike = np.float32, scheme: str = "original") -> LSTMParams:
    """Random LSTM parameters: Wx (D, 4H), Wh (H, 4H), b (4H,).

    scheme="original" reproduces the original code: every weight U(-k, k) with k = 1/sqrt(H), and
    b the sum of the input-to-hidden and hidden-to-hidden biases, each U(-k, k). "forget-bias-1"
    adds 1 to the forget-gate bias. Draw order: Wx, Wh, b_ih, b_hh.
    """
    check_generator(rng)
    check_choice("scheme", scheme, INIT_SCHEMES)
    dt = float_dtype(dtype)
    for name, n in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    D, H = int(input_size), int(hidden_size)
    k = 1.0 / np.sqrt(H)
    Wx = rng.uniform(-k, k, size=(D, 4 * H))
    Wh = rng.uniform(-k, k, size=(H, 4 * H))
    b = rng.uniform(-k, k, size=4 * H) + rng.uniform(-k, k, size=4 * H)
    if scheme == "forget-bias-1":
        b[H:2 * H] += 1.0
    return LSTMParams(Wx.astype(dt), Wh.astype(dt), b.astype(dt))


def gate_slices(H: int) -> dict[str, slice]:
    """Column slices of each gate block in a (.., 4H) array: {'i': 0:H, 'f': H:2H, 'o': 2H:3H, 'g': 3H:4H}."""
    return {name: slice(k * H, (k + 1) * H) for k, name in enumerate(GATES)}


def split_gates(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Views i, f, o, g (each (..., H)) of the four gate blocks of a (..., 4H) array.

    Views, not copies: writing into them writes into `a` (the backward writes dL/da_t this way).
    """
    H, rest = divmod(a.shape[-1], 4)
    if rest:
        raise ValueError(f"expected an array of shape (..., 4H), got {a.shape}")
    return a[..., :H], a[..., H:2 * H], a[..., 2 * H:3 * H], a[..., 3 * H:]


# ---------------------------------------------------------------------------------------------
# The maths of one step, shared by the step functions and the sequence functions
# ---------------------------------------------------------------------------------------------


def stacked_weights(params: LSTMParams) -> np.ndarray:
    """W = [Wx; b; Wh] (D+1+H, 4H), so that a_t = x_t Wx + b + h_{t-1} Wh = [x_t, 1, h_{t-1}] W.

    One matmul per step then gives the pre-activations, bias included, with no matmul over a
    short inner dimension D (slow in BLAS when D is 1) and no extra pass over the gates.
    """
    return np.concatenate([params.Wx, params.b[None, :], params.Wh])


def activate_gates(a: np.ndarray) -> np.ndarray:
    """Pre-activations (N, 4H) -> gates [i, f, o, g] (N, 4H), IN PLACE. Returns `a`.

    sigmoid(x) = (1 + tanh(x / 2)) / 2, so one tanh call serves all four gates.
    """
    H = a.shape[-1] // 4
    ifo = a[:, :3 * H]  # the three sigmoid gates i, f, o side by side (a view)
    ifo *= 0.5
    np.tanh(a, out=a)  # tanh(a_ifo / 2) and g = tanh(a_g), one call for four gates
    ifo += 1.0
    ifo *= 0.5  # i, f, o = (1 + tanh(a_ifo / 2)) / 2 = sigmoid(a_ifo)
    return a


def cell_forward(gates: np.ndarray, c_prev: np.ndarray, c_out: np.ndarray, tanh_c_out: np.ndarray, h_out: np.ndarray,
                 work: np.ndarray | None = None) -> None:
    """c_t = f * c_{t-1} + i * g ; h_t = o * tanh(c_t). Writes into the three (N, H) outputs.

    gates (N, 4H) activated; c_prev (N, H). work: optional (N, H) scratch (allocated when None).
    """
    i, f, o, g = split_gates(gates)
    ig = np.multiply(i, g, out=work)
    np.multiply(f, c_prev, out=c_out)
    c_out += ig
    np.tanh(c_out, out=tanh_c_out)
    np.multiply(o, tanh_c_out, out=h_out)


class CellWork(NamedTuple):
    """Scratch arrays of `lstm_cell_backward`, reused across the steps of a sequence."""

    dc_t: np.ndarray  # (..., N, H): dL/dc_t, everything that reaches c_t (one per adjoint stream)
    slope: np.ndarray  # (N, H): a derivative of the forward pass (tanh', sigmoid')


def cell_work(N: int, H: int, dtype: DTypeLike, streams: int | None = None) -> CellWork:
    """Scratch for `lstm_cell_backward`; with `streams` S, dc_t is (S, N, H) for S adjoint streams.

    Stored unit-major (each unit a contiguous row of N numbers), like the cache of `lstm_forward`.
    """
    dc_t = unit_major(N, H, dtype) if streams is None else unit_major(N, H, dtype, streams)
    return CellWork(dc_t, unit_major(N, H, dtype))


def unit_major(N: int, F: int, dtype: DTypeLike, streams: int | None = None) -> np.ndarray:
    """An (N, F) array (or (S, N, F) with S streams) stored as its transpose (F, N): each column
    (a unit of a gate) is one contiguous row of N numbers, so elementwise ops over a gate block run
    over contiguous memory."""
    if streams is None:
        return np.empty((F, N), dtype).T
    return np.empty((streams, F, N), dtype).transpose(0, 2, 1)


def lstm_cell_backward(dh: np.ndarray, dc: np.ndarray, gates: np.ndarray, tanh_c: np.ndarray, c_prev: np.ndarray,
                       da: np.ndarray, dc_prev: np.ndarray | None = None,
                       work: CellWork | None = None) -> np.ndarray:
    """Backprop one cell from dL/dh_t, dL/dc_t to dL/da_t and dL/dc_{t-1} (the module docstring's maths).

    dh: dL/dh_t (N, H), everything that reaches h_t. dc: dL/dc_t (N, H) from step t+1 only (the
    path through h_t is added here). gates (N, 4H) activated i, f, o, g; tanh_c, c_prev (N, H) from
    the forward pass. Writes dL/da_t into `da` (N, 4H) and returns dL/dc_{t-1} along the cell edge
    (before any c_scale), in `dc_prev` if given (it may be `dc` itself: dc is read first).
    Several adjoint streams go through one call with dh, dc, da, dc_prev of shape (S, N, H) /
    (S, N, 4H). work: scratch from `cell_work` (allocated when None). Inputs are not modified.
    """
    if work is None:
        work = cell_work(c_prev.shape[0], c_prev.shape[1], da.dtype, None if dh.ndim == 2 else dh.shape[0])
    dc_t, slope = work
    i, f, o, g = split_gates(gates)
    da_i, da_f, da_o, da_g = split_gates(da)  # the four blocks of dL/da_t, written in place
    # backprop into c_t: from step t+1, and through h_t = o tanh(c_t): dc~_t = dc + dh o (1 - tanh(c_t)^2)
    np.multiply(dh, o, out=dc_t)
    dc_t *= tanh_slope(tanh_c, slope)
    dc_t += dc
    # backprop into o through h_t = o tanh(c_t): do = dh tanh(c_t)
    np.multiply(dh, tanh_c, out=da_o)
    # backprop into i, f, g through c_t = f c_{t-1} + i g: di = dc~ g, df = dc~ c_{t-1}, dg = dc~ i
    np.multiply(dc_t, g, out=da_i)
    np.multiply(dc_t, c_prev, out=da_f)
    np.multiply(dc_t, i, out=da_g)
    # backprop into c_{t-1}, the cell path: dc_{t-1} = dc~_t f
    dc_prev = np.multiply(dc_t, f, out=dc_prev)
    # backprop through the nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - g^2
    da_i *= sigmoid_slope(i, slope)  # da_i = di i (1 - i)
    da_f *= sigmoid_slope(f, slope)  # da_f = df f (1 - f)
    da_o *= sigmoid_slope(o, slope)  # da_o = do o (1 - o)
    da_g *= tanh_slope(g, slope)  # da_g = dg (1 - g^2)
    return dc_prev


def sigmoid_slope(s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigmoid'(a) = s (1 - s) from s = sigmoid(a); written into `out` if given."""
    out = np.subtract(1.0, s, out=out)
    out *= s
    return out


def tanh_slope(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """tanh'(a) = 1 - y^2 from y = tanh(a); written into `out` if given."""
    out = np.multiply(y, y, out=out)
    np.subtract(1.0, out, out=out)
    return out


# ---------------------------------------------------------------------------------------------
# One step (the functions a student reads; the sequence functions call the same maths)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class StepCache:
    """What `lstm_step_backward` needs from `lstm_step_forward`."""

    x: np.ndarray  # (N, D)
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    gates: np.ndarray  # (N, 4H) activated i, f, o, g
    tanh_c: np.ndarray  # (N, H)
    params: LSTMParams


@dataclass(frozen=True, eq=False)
class StepGrads:
    """Gradients from `lstm_step_backward`, named after what they are the gradient of."""

    x: np.ndarray  # (N, D)
    h_prev: np.ndarray  # (N, H), times h_scale
    c_prev: np.ndarray  # (N, H), times c_scale
    Wx: np.ndarray  # (D, 4H)
    Wh: np.ndarray  # (H, 4H)
    b: np.ndarray  # (4H,)
    a: np.ndarray  # (N, 4H): dL/da_t, blocks i, f, o, g


def lstm_step_forward(x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray,
                      params: LSTMParams) -> tuple[np.ndarray, np.ndarray, StepCache]:
    """One LSTM step. x_t (N, D), h_prev (N, H), c_prev (N, H) -> h (N, H), c (N, H), StepCache."""
    dt, D, H = params.dtype, params.input_size, params.hidden_size
    check_array("x_t", x_t, (None, D), dt, letters="ND")
    N = x_t.shape[0]
    check_array("h_prev", h_prev, (N, H), dt, letters="NH")
    check_array("c_prev", c_prev, (N, H), dt, letters="NH")
    xh = np.concatenate([x_t, np.ones((N, 1), dt), h_prev], axis=1)  # (N, D+1+H) = [x_t, 1, h_{t-1}]
    a = xh @ stacked_weights(params)  # a_t = x_t Wx + b + h_{t-1} Wh  (N, 4H)
    gates = activate_gates(a)
    c, tanh_c, h = (np.empty((N, H), dt) for _ in range(3))
    cell_forward(gates, c_prev, c, tanh_c, h)
    return h, c, StepCache(x_t, h_prev, c_prev, gates, tanh_c, params)


def lstm_step_backward(dh: np.ndarray, dc: np.ndarray, cache: StepCache, h_scale: ArrayLike = 1.0,
                       c_scale: ArrayLike = 1.0) -> StepGrads:
    """Backward of one step. dh, dc (N, H): dL/dh_t and dL/dc_t from later steps.

    h_scale, c_scale: a number, (N,) or (N, H) factor on the edges h_prev -> gates and c_prev -> c.
    Returns StepGrads with x (N, D), h_prev, c_prev (N, H), Wx, Wh, b and a = dL/da_t (N, 4H).
    """
    if not isinstance(cache, StepCache):
        raise TypeError(f"cache must be the StepCache returned by lstm_step_forward, got {type(cache).__name__}")
    N, H = cache.h_prev.shape
    p = cache.params
    check_array("dh", dh, (N, H), p.dtype, letters="NH")
    check_array("dc", dc, (N, H), p.dtype, letters="NH")
    da = np.empty((N, 4 * H), p.dtype)
    # backprop through the cell: dL/da_t and dL/dc_{t-1}
    dc_prev = lstm_cell_backward(dh, dc, cache.gates, cache.tanh_c, cache.c_prev, da)
    return StepGrads(
        x=da @ p.Wx.T,  # backprop into x_t through a_t = x_t Wx + h_{t-1} Wh + b
        h_prev=(da @ p.Wh.T) * _step_factor(h_scale, "h_scale", N, H, p.dtype),  # the h-edge, scaled
        c_prev=dc_prev * _step_factor(c_scale, "c_scale", N, H, p.dtype),  # the cell edge, scaled
        Wx=cache.x.T @ da, Wh=cache.h_prev.T @ da, b=da.sum(axis=0),  # the weights, shared by all steps
        a=da,
    )


def _step_factor(scale, name, N, H, dt):
    s = np.asarray(scale, dtype=dt)
    if s.ndim == 1:
        if s.shape != (N,):
            raise ValueError(f"expected {name} of shape (N={N},) for a per-example factor, got {s.shape}")
        s = s[:, None]
    elif s.ndim == 2 and s.shape != (N, H):
        raise ValueError(f"expected {name} of shape (N={N}, H={H}), got {s.shape}")
    elif s.ndim > 2:
        raise ValueError(f"{name} must be a number, (N,) or (N, H), got shape {s.shape}")
    check_unit_interval(name, s)
    return s
