"""The LSTM of the original h-detach code, with a hand-derived backward pass (BPTT).

Shapes use one alphabet: N batch, T time, D input, H hidden.
Gate order is i, f, o, g, as in the original code (NOT torch.nn.LSTM's i, f, g, o):

    a_t = x_t Wx + h_{t-1} Wh + b                    (N, 4H)  pre-activations
    i_t = sigmoid(a_t[:, 0:H])                       input gate
    f_t = sigmoid(a_t[:, H:2H])                      forget gate
    o_t = sigmoid(a_t[:, 2H:3H])                     output gate
    g_t = tanh(a_t[:, 3H:4H])                        candidate cell
    c_t = f_t * c_{t-1} + i_t * g_t                  cell state
    h_t = o_t * tanh(c_t)                            hidden state

Edge scales. The backward pass takes two optional factors per step:
- `h_scale[t]` multiplies the gradient along the edge h_{t-1} -> a_t (into the gates of step t).
  0 is h-detach (h_{t-1} is replaced by a stop-gradient copy before step t), 1 keeps the edge, and
  a value lambda in between weights every backward path by lambda per h-edge it uses. The loss at
  step t-1 still reaches h_{t-1}, and Wh still gets its gradient at step t, whatever h_scale[t] is.
- `c_scale[t]` does the same for the cell edge c_{t-1} -> c_t (the paper's c-detach ablation).
Both accept shape (T,) (one factor per step, shared by the batch, as in the original code),
(T, N) (per example) or (T, N, H) (per unit), with values in [0, 1].

The forward pass never changes: a detached copy has the same value.

The step functions (`lstm_step_forward`, `lstm_step_backward`) are the maths a student reads; the
sequence functions (`lstm_forward`, `lstm_backward`) call the same per-step helpers (`_activate`,
`_cell_forward`, `_gate_grads`) inside the time loop. `_gate_grads` is `_gate_coefs` (the step's
gate-derivative coefficients, which depend on the forward pass only) followed by
`_apply_gate_coefs` (one adjoint stream); `hdetach_np.paths` applies one step's coefficients to
two streams. Speed comes from how the work is laid out, not from a second implementation:
- one matmul per step and direction: a_t = `[x_t, 1, h_{t-1}] [Wx; b; Wh]` forward (no matmul over
  the short input dimension D, no separate bias pass), [dh_{t-1}, dx_t] = da_t [Wh; Wx]^T backward,
  and dW += [x_t, 1, h_{t-1}]^T da_t for all three weight gradients at once;
- one tanh call for the four gates (sigmoid(x) = (1 + tanh(x / 2)) / 2);
- every elementwise op writes into preallocated arrays (`out=`), reused across steps;
- a detached step (h_scale[t] == 0 for the whole batch) skips its Wh product.

Memory layout. `lstm_forward` stores each step's arrays unit-major: the cache's h[t], c[t], tanh_c[t]
(N, H) and gates[t] (N, 4H) are transposed views of contiguous (H, N) and (4H, N) blocks. Each gate
block is then one contiguous slab, and every elementwise op of a step runs over contiguous memory
(with the batch-major layout each (N, H) gate block is N separate rows). Shapes and values are
those documented here; only the strides differ. Copy with np.ascontiguousarray if an array must be
C-contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._validate import check_array, check_choice, check_generator, float_dtype

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

    def __post_init__(self):
        for name in ("Wx", "Wh", "b"):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray):
                raise TypeError(f"LSTMParams.{name} must be a numpy array, got {type(a).__name__}")
        if self.Wh.ndim != 2 or self.Wh.shape[1] != 4 * self.Wh.shape[0]:
            raise ValueError(f"expected Wh of shape (H, 4H), got {self.Wh.shape}")
        H = self.Wh.shape[0]
        check_array("Wx", self.Wx, (None, 4 * H), letters=("D", "4H"))
        check_array("b", self.b, (4 * H,), letters=("4H",))
        dt = float_dtype(self.Wh.dtype, "Wh.dtype")
        for name in ("Wx", "b"):
            if getattr(self, name).dtype != dt:
                raise TypeError(
                    f"LSTMParams.{name} has dtype {getattr(self, name).dtype} but Wh is {dt}; "
                    "all parameters must share one dtype"
                )

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

    def astype(self, dtype) -> "LSTMParams":
        dt = float_dtype(dtype)
        return LSTMParams(*(a.astype(dt) for a in (self.Wx, self.Wh, self.b)))

    def copy(self) -> "LSTMParams":
        return LSTMParams(self.Wx.copy(), self.Wh.copy(), self.b.copy())


def init_lstm(input_size: int, hidden_size: int, rng: np.random.Generator,
              dtype: np.typing.DTypeLike = np.float32, scheme: str = "original") -> LSTMParams:
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


# ---------------------------------------------------------------------------------------------
# The maths of one step, shared by the step functions and the sequence functions
# ---------------------------------------------------------------------------------------------


def _stacked_weights(params: LSTMParams) -> np.ndarray:
    """W = [Wx; b; Wh] (D+1+H, 4H), so that a_t = x_t Wx + b + h_{t-1} Wh = [x_t, 1, h_{t-1}] W.

    One matmul per step then gives the pre-activations, bias included, with no matmul over a
    short inner dimension D (slow in BLAS when D is 1) and no extra pass over the gates.
    """
    return np.concatenate([params.Wx, params.b[None, :], params.Wh])


def _activate(a: np.ndarray) -> np.ndarray:
    """Pre-activations (N, 4H) -> gates [i, f, o, g] (N, 4H), IN PLACE. Returns `a`.

    sigmoid(x) = (1 + tanh(x / 2)) / 2, so one fast tanh call serves all four gates.
    """
    H = a.shape[-1] // 4
    s = a[:, :3 * H]  # the i, f, o blocks (a view)
    s *= 0.5
    np.tanh(a, out=a)  # tanh(a_ifo / 2) and g = tanh(a_g), one call for four gates
    s += 1.0
    s *= 0.5  # i, f, o = (1 + tanh(a_ifo / 2)) / 2 = sigmoid(a_ifo)
    return a


def _cell_forward(gates, c_prev, c_out, tanh_c_out, h_out, work=None):
    """c_t = f * c_{t-1} + i * g ; h_t = o * tanh(c_t). Writes into the three (N, H) outputs.

    work: optional (N, H) scratch array of the same dtype (allocated when None).
    """
    H = c_prev.shape[-1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    ig = np.multiply(i, g, out=work)
    np.multiply(f, c_prev, out=c_out)
    c_out += ig
    np.tanh(c_out, out=tanh_c_out)
    np.multiply(o, tanh_c_out, out=h_out)


class _GradWork(NamedTuple):
    """Scratch arrays for `_gate_grads`, reused across the steps of a sequence."""

    dc: np.ndarray  # (N, H): dL/dc_t, everything that reaches c_t
    coef: "_GateCoef"  # the step's gate-derivative coefficients


class _GateCoef(NamedTuple):
    """What backprop through one cell multiplies the adjoints by; depends on the forward pass only.

    With dct = dL/dc_t (everything that reaches c_t) and dh = dL/dh_t:
        dct = dc + dh * kc,                kc = o (1 - tanh(c_t)^2)               (N, H)
        dL/da_t = [dct K_i, dct K_f, dh K_o, dct K_g], K = [s'(a_i) g, s'(a_f) c_{t-1},
                                                         s'(a_o) tanh(c_t), tanh'(a_g) i]   (N, 4H)
        dL/dc_{t-1} = dct * f.
    Several adjoint streams through the same step (`hdetach_np.paths`) share one _GateCoef.
    """

    K: np.ndarray  # (N, 4H)
    kc: np.ndarray  # (N, H)


def _gate_coef_work(N: int, H: int, dtype) -> _GateCoef:
    """Arrays for `_gate_coefs`, unit-major like the cache (see "Memory layout")."""
    return _GateCoef(_unit_major(N, 4 * H, dtype), _unit_major(N, H, dtype))


def _grad_work(N: int, H: int, dtype) -> _GradWork:
    return _GradWork(_unit_major(N, H, dtype), _gate_coef_work(N, H, dtype))


def _gate_coefs(gates, tanh_c, c_prev, out: _GateCoef | None = None) -> _GateCoef:
    """The gate-derivative coefficients of one step (see `_GateCoef`), from its forward values.

    gates (N, 4H) activated i, f, o, g; tanh_c, c_prev (N, H). out: optional arrays from
    `_gate_coef_work(N, H, dtype)` (allocated when None). Inputs are not modified.
    """
    N, H = c_prev.shape
    if out is None:
        out = _gate_coef_work(N, H, gates.dtype)
    K, kc = out
    i, g, o = gates[:, :H], gates[:, 3 * H:], gates[:, 2 * H:3 * H]
    # the nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - g^2 = (1 - g)(1 + g)
    np.subtract(1.0, gates, out=K)
    K[:, :3 * H] *= gates[:, :3 * H]
    ig = np.add(g, 1.0, out=kc)  # (1 + g) i, with kc as scratch
    ig *= i
    K[:, 3 * H:] *= ig  # tanh'(a_g) i
    # the other factor of each product: a_i -> i g, a_f -> f c_{t-1}, a_o -> o tanh(c_t)
    K[:, :H] *= g
    K[:, H:2 * H] *= c_prev
    K[:, 2 * H:3 * H] *= tanh_c
    # the path c_t -> h_t = o tanh(c_t)
    np.multiply(tanh_c, tanh_c, out=kc)
    np.subtract(1.0, kc, out=kc)
    kc *= o
    return out


def _apply_gate_coefs(dh, dc, coef: _GateCoef, f, da_out, dc_prev_out=None, dct=None):
    """Backprop one adjoint stream through one cell with precomputed coefficients.

    dh: dL/dh_t (N, H); dc: dL/dc_t (N, H) from step t+1 only; coef from `_gate_coefs`; f (N, H)
    the forget gate. Writes dL/da_t into `da_out` (N, 4H) and returns dL/dc_{t-1} along the cell
    edge (before any c_scale). dc_prev_out: optional (N, H) result array, may be `dc` itself.
    dct: optional (N, H) scratch. Inputs are not modified.
    """
    K, kc = coef
    N, H = kc.shape
    dct = np.multiply(dh, kc, out=dct)  # dL/dc_t = dc + dh o (1 - tanh(c_t)^2)
    dct += dc
    # a_i and a_f in one call: dct broadcast over the two blocks
    np.multiply(dct[:, None, :], K[:, :2 * H].reshape(N, 2, H), out=da_out[:, :2 * H].reshape(N, 2, H))
    np.multiply(dh, K[:, 2 * H:3 * H], out=da_out[:, 2 * H:3 * H])
    np.multiply(dct, K[:, 3 * H:], out=da_out[:, 3 * H:])
    return np.multiply(dct, f, out=dc_prev_out)


def _gate_grads(dh, dc, gates, tanh_c, c_prev, da_out, dc_prev_out=None, work: _GradWork | None = None):
    """Backprop one cell from the adjoints at step t to its pre-activations.

    dh: dL/dh_t (N, H), everything that reaches h_t. dc: dL/dc_t (N, H) from step t+1 only (the
    path through h_t is added here). Writes dL/da_t into `da_out` (N, 4H) and returns
    dL/dc_{t-1} along the cell edge (before any c_scale). Inputs are not modified.
    dc_prev_out: optional (N, H) array for the result; it may be `dc` itself (read before written).
    work: optional scratch from `_grad_work(N, H, dtype)` (allocated when None).
    The maths is `_gate_coefs` (what depends on the forward pass) then `_apply_gate_coefs`.
    """
    H = c_prev.shape[-1]
    if work is None:
        work = _grad_work(c_prev.shape[0], H, da_out.dtype)
    coef = _gate_coefs(gates, tanh_c, c_prev, work.coef)
    return _apply_gate_coefs(dh, dc, coef, gates[:, H:2 * H], da_out, dc_prev_out, work.dc)


# ---------------------------------------------------------------------------------------------
# One step (for teaching and checking)
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
    x: np.ndarray  # (N, D)
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    Wx: np.ndarray  # (D, 4H)
    Wh: np.ndarray  # (H, 4H)
    b: np.ndarray  # (4H,)


def lstm_step_forward(x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray,
                      params: LSTMParams) -> tuple[np.ndarray, np.ndarray, StepCache]:
    """One LSTM step. x_t (N, D), h_prev (N, H), c_prev (N, H) -> h (N, H), c (N, H), StepCache."""
    dt, D, H = params.dtype, params.input_size, params.hidden_size
    check_array("x_t", x_t, (None, D), dt, letters="ND")
    N = x_t.shape[0]
    check_array("h_prev", h_prev, (N, H), dt, letters="NH")
    check_array("c_prev", c_prev, (N, H), dt, letters="NH")
    xh = np.concatenate([x_t, np.ones((N, 1), dt), h_prev], axis=1)  # (N, D+1+H) = [x_t, 1, h_{t-1}]
    a = xh @ _stacked_weights(params)  # a_t = x_t Wx + b + h_{t-1} Wh  (N, 4H)
    gates = _activate(a)
    c, tanh_c, h = (np.empty((N, H), dt) for _ in range(3))
    _cell_forward(gates, c_prev, c, tanh_c, h)
    return h, c, StepCache(x_t, h_prev, c_prev, gates, tanh_c, params)


def lstm_step_backward(dh: np.ndarray, dc: np.ndarray, cache: StepCache, h_scale: float | np.ndarray = 1.0,
                       c_scale: float | np.ndarray = 1.0) -> StepGrads:
    """Backward of one step. dh, dc (N, H): dL/dh_t and dL/dc_t from later steps.

    h_scale, c_scale: a number, (N,) or (N, H) factor on the edges h_prev -> gates and c_prev -> c.
    Returns StepGrads with dx (N, D), dh_prev, dc_prev (N, H), dWx, dWh, db.
    """
    N, H = cache.h_prev.shape
    dt = cache.params.dtype
    check_array("dh", dh, (N, H), dt, letters="NH")
    check_array("dc", dc, (N, H), dt, letters="NH")
    da = np.empty((N, 4 * H), dt)
    dc_prev = _gate_grads(dh, dc, cache.gates, cache.tanh_c, cache.c_prev, da)
    # backprop through a = x Wx + h_prev Wh + b
    dx = da @ cache.params.Wx.T
    dh_prev = (da @ cache.params.Wh.T) * _step_factor(h_scale, "h_scale", N, H, dt)
    dc_prev = dc_prev * _step_factor(c_scale, "c_scale", N, H, dt)
    return StepGrads(
        x=dx, h_prev=dh_prev, c_prev=dc_prev,
        Wx=cache.x.T @ da, Wh=cache.h_prev.T @ da, b=da.sum(axis=0),
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
    _check_unit_interval(name, s)
    return s


def _check_unit_interval(name, s):
    if not np.all((s >= 0) & (s <= 1)):  # NaN fails both comparisons
        bad = s[~((s >= 0) & (s <= 1))].ravel()[0]
        raise ValueError(f"{name} values must be in [0, 1], got {float(bad)!r}")


# ---------------------------------------------------------------------------------------------
# A whole sequence
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LSTMCache:
    """What `lstm_backward` needs from `lstm_forward`. Index 0 of `h` and `c` holds h0 and c0."""

    x: np.ndarray  # (T, N, D)
    h: np.ndarray  # (T+1, N, H): h0, h_1 .. h_T
    c: np.ndarray  # (T+1, N, H): c0, c_1 .. c_T
    gates: np.ndarray  # (T, N, 4H) activated i, f, o, g
    tanh_c: np.ndarray  # (T, N, H)
    params: LSTMParams

    @property
    def hs(self) -> np.ndarray:
        return self.h[1:]

    @property
    def cs(self) -> np.ndarray:
        return self.c[1:]


@dataclass(frozen=True, eq=False)
class LSTMGrads:
    """Gradients from `lstm_backward`."""

    Wx: np.ndarray  # (D, 4H)
    Wh: np.ndarray  # (H, 4H)
    b: np.ndarray  # (4H,)
    x: np.ndarray  # (T, N, D)
    h0: np.ndarray  # (N, H)
    c0: np.ndarray  # (N, H)

    def params(self) -> LSTMParams:
        """The parameter gradients as an LSTMParams (handy for norms and optimizers)."""
        return LSTMParams(self.Wx, self.Wh, self.b)


def _unit_major(N: int, F: int, dtype) -> np.ndarray:
    """An (N, F) array stored as its transpose: each column block (a gate, a unit) is contiguous."""
    return np.empty((F, N), dtype).T


def _cache_buffers(T: int, N: int, H: int, dt, reuse) -> tuple[np.ndarray, ...]:
    """The unit-major arrays behind a cache: h, c (T+1, H, N), gates (T, 4H, N), tanh_c (T, H, N)."""
    shapes = ((T + 1, H, N), (T + 1, H, N), (T, 4 * H, N), (T, H, N))
    if reuse is None:
        return tuple(np.empty(s, dt) for s in shapes)
    if not isinstance(reuse, LSTMCache):
        raise TypeError(f"reuse must be an LSTMCache returned by lstm_forward, got {type(reuse).__name__}")
    bufs = tuple(a.transpose(0, 2, 1) for a in (reuse.h, reuse.c, reuse.gates, reuse.tanh_c))
    for name, buf, shape in zip(("h", "c", "gates", "tanh_c"), bufs, shapes):
        if buf.shape != shape or buf.dtype != dt or not (buf.flags.c_contiguous and buf.flags.writeable):
            raise ValueError(
                f"reuse must be a cache of lstm_forward for T={T}, N={N}, H={H}, dtype {dt}; its {name} "
                f"has shape {buf.transpose(0, 2, 1).shape}, dtype {buf.dtype}"
                + ("" if buf.flags.c_contiguous else " and another memory layout")
            )
    return bufs


def lstm_forward(params: LSTMParams, x: np.ndarray, h0: np.ndarray | None = None, c0: np.ndarray | None = None,
                 reuse: LSTMCache | None = None) -> tuple[np.ndarray, LSTMCache]:
    """Run the LSTM over a sequence. x (T, N, D); h0, c0 (N, H) or None for zeros.

    Returns hs (T, N, H) and an LSTMCache for `lstm_backward`. Computes in the parameters' dtype;
    x, h0, c0 must have that dtype too (no silent casting). The cache's arrays (and hs) are
    unit-major views (see "Memory layout" in the module docstring).

    reuse: optionally the LSTMCache of an earlier call with the same T, N, H and dtype. Its arrays
    are overwritten instead of allocating new ones: in a training loop this spares the operating
    system zeroing fresh memory for every large array at every iteration. That cache, and the hs
    returned with it, are then invalid.
    """
    if not isinstance(params, LSTMParams):
        raise TypeError(f"params must be LSTMParams (see init_lstm), got {type(params).__name__}")
    dt, D, H = params.dtype, params.input_size, params.hidden_size
    check_array("x", x, (None, None, D), dt, letters="TND")
    T, N, _ = x.shape
    if T < 1 or N < 1:
        raise ValueError(f"x must have T >= 1 and N >= 1, got shape {x.shape}")
    # stored unit-major: step t of h is the contiguous (H, N) slab hT[t]; the views below are (N, H)
    hT, cT, gatesT, tanh_cT = _cache_buffers(T, N, H, dt, reuse)
    for name, v, buf in (("h0", h0, hT), ("c0", c0, cT)):
        if v is None:
            buf[0] = 0
        else:
            buf[0] = check_array(name, v, (N, H), dt, letters="NH").T
    h, c = hT.transpose(0, 2, 1), cT.transpose(0, 2, 1)  # (T+1, N, H)
    gates, tanh_c = gatesT.transpose(0, 2, 1), tanh_cT.transpose(0, 2, 1)  # (T, N, 4H), (T, N, H)

    W = _stacked_weights(params)  # (D+1+H, 4H)
    xhT = np.empty((D + 1 + H, N), dt)  # [x_t, 1, h_{t-1}] of the current step, unit-major
    xhT[D] = 1
    xhT[D + 1:] = hT[0]
    work = _unit_major(N, H, dt)
    for t in range(T):
        xhT[:D] = x[t].T
        np.matmul(xhT.T, W, out=gates[t])  # a_t = [x_t, 1, h_{t-1}] W, written into the cache
        _activate(gates[t])
        _cell_forward(gates[t], c[t], c[t + 1], tanh_c[t], h[t + 1], work)
        xhT[D + 1:] = hT[t + 1]
    return h[1:], LSTMCache(x, h, c, gates, tanh_c, params)


def edge_scale(scale, name: str, T: int, N: int, H: int, dtype) -> np.ndarray | None:
    """Validate an h_scale / c_scale and return it as (T, 1, 1), (T, N, 1) or (T, N, H); None stays None."""
    if scale is None:
        return None
    s = np.asarray(scale)
    if s.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {s.dtype}")
    shapes = {(T,): (T, 1, 1), (T, N): (T, N, 1), (T, N, H): (T, N, H)}
    if s.shape not in shapes:
        raise ValueError(
            f"expected {name} of shape (T={T},), (T={T}, N={N}) or (T={T}, N={N}, H={H}), got {s.shape}"
        )
    _check_unit_interval(name, s)
    return s.astype(dtype, copy=False).reshape(shapes[s.shape])


def lstm_backward(dhs: np.ndarray | None, cache: LSTMCache, h_scale: np.ndarray | None = None,
                  c_scale: np.ndarray | None = None, dhT: np.ndarray | None = None,
                  dcT: np.ndarray | None = None) -> LSTMGrads:
    """BPTT. dhs (T, N, H): dL/dh_t from the loss at each step (None for zeros).

    h_scale, c_scale: per-edge factors, (T,), (T, N) or (T, N, H) in [0, 1] (see the module
    docstring); None means 1 everywhere. dhT, dcT (N, H): extra gradient on the final h_T, c_T.
    Returns LSTMGrads with Wx, Wh, b, x (T, N, D), h0, c0. Any LSTMCache works; the unit-major
    ones of `lstm_forward` are the fastest.
    """
    if not isinstance(cache, LSTMCache):
        raise TypeError(f"cache must be the LSTMCache returned by lstm_forward, got {type(cache).__name__}")
    p = cache.params
    dt, H = p.dtype, p.hidden_size
    T, N, D = cache.x.shape
    if dhs is not None:
        check_array("dhs", dhs, (T, N, H), dt, letters="TNH")
    hsc = edge_scale(h_scale, "h_scale", T, N, H, dt)
    csc = edge_scale(c_scale, "c_scale", T, N, H, dt)
    # the running adjoints, unit-major like the cache; dh is the first H columns of `out`
    out = _unit_major(N, H + D, dt)  # [dL/dh_{t-1}, dL/dx_t], written by one matmul per step
    dh, dc = out[:, :H], _unit_major(N, H, dt)  # (N, H) views
    dh[...] = 0 if dhT is None else check_array("dhT", dhT, (N, H), dt, letters="NH")
    dc[...] = 0 if dcT is None else check_array("dcT", dcT, (N, H), dt, letters="NH")

    da = _unit_major(N, 4 * H, dt)  # dL/da_t (N, 4H)
    work = _grad_work(N, H, dt)
    WhxT = np.concatenate([p.Wh, p.Wx]).T  # (4H, H+D): [dh_{t-1}, dx_t] = da_t [Wh; Wx]^T
    xhT = np.empty((D + 1 + H, N), dt)  # [x_t, 1, h_{t-1}], unit-major
    xhT[D] = 1
    dW, dW_t = np.zeros((D + 1 + H, 4 * H), dt), np.empty((D + 1 + H, 4 * H), dt)  # [dWx; db; dWh]
    dx = np.empty((T, N, D), dt)
    for t in range(T - 1, -1, -1):
        if dhs is not None:
            dh += dhs[t]  # the loss at step t reaches h_t directly
        _gate_grads(dh, dc, cache.gates[t], cache.tanh_c[t], cache.c[t], da, dc, work)
        # weight gradients through a_t = [x_t, 1, h_{t-1}] W: dW += [x_t, 1, h_{t-1}]^T da_t
        xhT[:D] = cache.x[t].T
        xhT[D + 1:] = cache.h[t].T
        np.matmul(xhT, da, out=dW_t)
        dW += dW_t
        # backprop into x_t and, along the edge h_{t-1} -> a_t scaled by h_scale[t], into h_{t-1}
        if hsc is not None and hsc.shape[1:] == (1, 1) and hsc[t, 0, 0] == 0:
            np.matmul(da, WhxT[:, H:], out=out[:, H:])  # a detached step needs no Wh product
            dh.fill(0)
        else:
            np.matmul(da, WhxT, out=out)
            if hsc is not None:
                dh *= hsc[t]
        dx[t] = out[:, H:]
        # backprop into c_{t-1} along the edge c_{t-1} -> c_t, scaled by c_scale[t]
        if csc is not None:
            dc *= csc[t]
    return LSTMGrads(
        Wx=dW[:D].copy(), Wh=dW[D + 1:].copy(), b=dW[D].copy(), x=dx,
        h0=np.ascontiguousarray(dh), c0=np.ascontiguousarray(dc),
    )
