"""A whole sequence: `lstm_forward` and BPTT (`lstm_backward`), over the step maths of hdetach_np.lstm.

Shapes: T time, N batch, D input, H hidden. The equations and the step backward are in
hdetach_np.lstm; this module runs them over T steps. `lstm_forward_steps` / `lstm_backward_steps`
are the plain loops over `lstm_step_forward` / `lstm_step_backward` (the definition, as a student
writes it); `lstm_forward` / `lstm_backward` compute the same with the big products laid out for
speed, and are tested against them:
- one matmul per step and direction: a_t = `[x_t, 1, h_{t-1}] [Wx; b; Wh]` forward (no matmul over
  the short input dimension D, no separate bias pass), `[dh_{t-1}, dx_t] = da_t [Wh; Wx]^T` backward,
  and `dW += da_t^T [x_t, 1, h_{t-1}]` for all three weight gradients at once;
- every elementwise op writes into arrays allocated once (`out=`) and reused across steps;
- a detached step (h_scale[t] == 0 for the whole batch) skips its Wh product.

Edge scales. The backward pass takes two optional factors per step:
- `h_scale[t]` multiplies the gradient along the edge h_{t-1} -> a_t (into the gates of step t).
  0 is h-detach (h_{t-1} is replaced by a stop-gradient copy before step t), 1 keeps the edge, and
  a value lambda in between weights every backward path by lambda per h-edge it uses. The loss at
  step t-1 still reaches h_{t-1}, and Wh still gets its gradient at step t, whatever h_scale[t] is.
- `c_scale[t]` does the same for the cell edge c_{t-1} -> c_t (the paper's c-detach ablation).
Both accept a number, shape (T,) (one factor per step, shared by the batch, as in the original
code), (T, N) (per example) or (T, N, H) (per unit), with values in [0, 1]. The forward pass never
changes: a detached copy has the same value.

One backward loop. `backward_loop` is the time loop of BPTT for several adjoint streams through
one forward pass (each with its own h_scale); `lstm_backward` runs it with one stream, and
hdetach_np.paths runs it with two (the total gradient and its cell part) for `gradient_paths` and
`temporal_credit`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._validate import check_array, check_unit_interval
from .lstm import (
    CellWork,
    LSTMParams,
    StepCache,
    StepGrads,
    activate_gates,
    cell_forward,
    cell_work,
    lstm_cell_backward,
    lstm_step_backward,
    lstm_step_forward,
    stacked_weights,
    unit_major,
)

# ---------------------------------------------------------------------------------------------
# Caches, gradients, edge scales
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
    """Gradients of a whole sequence (`lstm_backward`, `lstm_backward_steps`)."""

    Wx: np.ndarray  # (D, 4H)
    Wh: np.ndarray  # (H, 4H)
    b: np.ndarray  # (4H,)
    x: np.ndarray  # (T, N, D)
    h0: np.ndarray  # (N, H)
    c0: np.ndarray  # (N, H)

    def params(self) -> LSTMParams:
        """The parameter gradients as an LSTMParams (handy for norms and optimizers)."""
        return LSTMParams(self.Wx, self.Wh, self.b)


def check_cache(cache: object, name: str = "cache") -> LSTMCache:
    """Raise a TypeError unless `cache` is an LSTMCache (the one check of every function that takes one)."""
    if not isinstance(cache, LSTMCache):
        raise TypeError(f"{name} must be the LSTMCache returned by lstm_forward, got {type(cache).__name__}")
    return cache


def edge_scale(scale: ArrayLike | None, name: str, T: int, N: int, H: int, dtype: DTypeLike) -> np.ndarray | None:
    """Validate an h_scale / c_scale and return it as (T, 1, 1), (T, N, 1) or (T, N, H); None stays None.

    Accepted: a number (every step), (T,) (one factor per step, shared by the batch, as in the
    original code), (T, N) (per example) or (T, N, H) (per unit), with values in [0, 1].
    """
    if scale is None:
        return None
    s = np.asarray(scale)
    if s.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {s.dtype}")
    if s.ndim == 0:
        s = np.full(T, s)
    shapes = {(T,): (T, 1, 1), (T, N): (T, N, 1), (T, N, H): (T, N, H)}
    if s.shape not in shapes:
        raise ValueError(
            f"expected {name} as a number or of shape (T={T},), (T={T}, N={N}) or (T={T}, N={N}, H={H}), "
            f"got {s.shape}"
        )
    check_unit_interval(name, s)
    return s.astype(dtype, copy=False).reshape(shapes[s.shape])


def lstm_forward_steps(params: LSTMParams, x: np.ndarray, h0: np.ndarray | None = None, c0: np.ndarray | None = None,
                       *, h_scale: ArrayLike | None = None, c_scale: ArrayLike | None = None,
                       anchor: LSTMCache | None = None) -> tuple[np.ndarray, np.ndarray, list[StepCache]]:
    """The sequence forward as a loop over `lstm_step_forward`. x (T, N, D); h0, c0 (N, H) or None for zeros.

    Returns hs (T, N, H), cs (T, N, H) (c_1 .. c_T) and the list of the T StepCaches.
    For finite differences of a gradient with edge scales: with h_scale (and `anchor`, the
    LSTMCache of `lstm_forward` at the same parameters) step t reads s h_{t-1} + (1 - s) anchor.h[t],
    s = h_scale[t], where anchor.h[t] is a constant (a stop-gradient copy); c_scale likewise for
    c_{t-1}. At the anchor's parameters the values are the plain forward's; a derivative sees the
    fraction s of each edge, which is what the edge scales of `lstm_backward` mean.
    """
    T, N, _ = check_array("x", x, (None, None, params.input_size), params.dtype, letters="TND").shape
    H, dt = params.hidden_size, params.dtype
    h_scale = edge_scale(h_scale, "h_scale", T, N, H, dt)
    c_scale = edge_scale(c_scale, "c_scale", T, N, H, dt)
    if (h_scale is not None or c_scale is not None) and anchor is None:
        raise ValueError("h_scale and c_scale in a forward pass need the anchor (the LSTMCache of lstm_forward)")
    h = np.zeros((N, H), dt) if h0 is None else h0
    c = np.zeros((N, H), dt) if c0 is None else c0
    hs, cs, caches = [], [], []
    for t in range(T):
        h_in = h if h_scale is None else h_scale[t] * h + (1 - h_scale[t]) * anchor.h[t]
        c_in = c if c_scale is None else c_scale[t] * c + (1 - c_scale[t]) * anchor.c[t]
        h, c, step_cache = lstm_step_forward(x[t], h_in, c_in, params)
        hs.append(h)
        cs.append(c)
        caches.append(step_cache)
    return np.stack(hs), np.stack(cs), caches


def lstm_backward_steps(dhs: np.ndarray | None, caches: Sequence[StepCache], h_scale: ArrayLike | None = None,
                        c_scale: ArrayLike | None = None, dhT: np.ndarray | None = None,
                        dcT: np.ndarray | None = None) -> tuple[LSTMGrads, list[StepGrads]]:
    """BPTT as a loop over `lstm_step_backward`, from the StepCaches of `lstm_forward_steps`.

    dhs (T, N, H): dL/dh_t from the loss at each step (None for zeros). h_scale, c_scale: a
    number, (T,), (T, N) or (T, N, H) in [0, 1], or None (see `edge_scale`). dhT, dcT (N, H): extra
    gradient on the final h_T, c_T. Returns the LSTMGrads (what `lstm_backward` returns) and the
    list of the T StepGrads (step t's dL/dh_{t-1}, dL/dc_{t-1}, dL/da_t, ...).
    """
    T = len(caches)
    N, H = caches[0].h_prev.shape
    p = caches[0].params
    if dhs is not None:
        check_array("dhs", dhs, (T, N, H), p.dtype, letters="TNH")
    h_scale = edge_scale(h_scale, "h_scale", T, N, H, p.dtype)
    c_scale = edge_scale(c_scale, "c_scale", T, N, H, p.dtype)
    dh = np.zeros((N, H), p.dtype) if dhT is None else dhT  # nothing comes from after step T
    dc = np.zeros((N, H), p.dtype) if dcT is None else dcT
    steps = [None] * T
    for t in reversed(range(T)):
        if dhs is not None:
            dh = dh + dhs[t]  # the loss at step t reaches h_t directly
        steps[t] = lstm_step_backward(dh, dc, caches[t], _one_step(h_scale, t), _one_step(c_scale, t))
        dh, dc = steps[t].h_prev, steps[t].c_prev  # dL/dh_{t-1}, dL/dc_{t-1} through step t
    grads = LSTMGrads(  # the weights are shared by all steps: their gradients add up
        Wx=sum(g.Wx for g in steps), Wh=sum(g.Wh for g in steps), b=sum(g.b for g in steps),
        x=np.stack([g.x for g in steps]), h0=dh, c0=dc,
    )
    return grads, steps


def _one_step(scale, t):
    """Step t of an `edge_scale` result as a factor for `lstm_step_backward`: a number, (N,) or (N, H)."""
    if scale is None:
        return 1.0
    if scale.shape[1:] == (1, 1):
        return scale[t, 0, 0]
    return scale[t, :, 0] if scale.shape[2] == 1 else scale[t]


# ---------------------------------------------------------------------------------------------
# The fast forward
# ---------------------------------------------------------------------------------------------


def _cache_buffers(T: int, N: int, H: int, dt, reuse) -> tuple[np.ndarray, ...]:
    """The unit-major arrays behind a cache: h, c (T+1, H, N), gates (T, 4H, N), tanh_c (T, H, N)."""
    shapes = ((T + 1, H, N), (T + 1, H, N), (T, 4 * H, N), (T, H, N))
    if reuse is None:
        return tuple(np.empty(s, dt) for s in shapes)
    check_cache(reuse, "reuse")
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
    x, h0, c0 must have that dtype too (no silent casting).

    Memory layout: the cache's h[t], c[t], tanh_c[t] (N, H) and gates[t] (N, 4H) (and hs) are
    transposed views of contiguous (H, N) and (4H, N) blocks (`unit_major`). Each gate block is
    then one contiguous slab, and every elementwise op of a step runs over contiguous memory (with
    the batch-major layout each (N, H) gate block is N separate rows). Shapes and values are as
    documented; only the strides differ. Copy with np.ascontiguousarray if an array must be
    C-contiguous.

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

    W = stacked_weights(params)  # (D+1+H, 4H)
    inputs = np.empty((D + 1 + H, N), dt)  # [x_t, 1, h_{t-1}] of the current step, unit-major
    inputs[D] = 1
    inputs[D + 1:] = hT[0]
    work = unit_major(N, H, dt)
    for t in range(T):
        inputs[:D] = x[t].T
        np.matmul(inputs.T, W, out=gates[t])  # a_t = [x_t, 1, h_{t-1}] W, written into the cache
        activate_gates(gates[t])
        cell_forward(gates[t], c[t], c[t + 1], tanh_c[t], h[t + 1], work)
        inputs[D + 1:] = hT[t + 1]
    return h[1:], LSTMCache(x, h, c, gates, tanh_c, params)


# ---------------------------------------------------------------------------------------------
# The backward time loop, shared by lstm_backward and hdetach_np.paths
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Adjoints:
    """The running adjoints of S streams in `backward_loop`, unit-major like the cache (`unit_major`)."""

    dh: np.ndarray  # (S, N, H): dL/dh_t; after the step's edges, dL/dh_{t-1}
    dc: np.ndarray  # (S, N, H): dL/dc_t from step t+1; after the step, dL/dc_{t-1}
    da: np.ndarray  # (S, N, 4H): dL/da_t of the current step
    dx: np.ndarray  # (S, T, N, D): dL/dx_t, filled step by step
    dW: np.ndarray  # (S, 4H, D+1+H): each stream's [dWx; db; dWh] transposed, summed over the steps
    dW_step: np.ndarray  # (S, 4H, D+1+H): the current step's term of dW
    cell: CellWork  # cell.dc_t (S, N, H) is dL/dc_t, everything that reaches c_t ((N, H) if S = 1)

    def grads(self, s: int) -> LSTMGrads:
        """The LSTMGrads of stream s (after the loop)."""
        D = self.dx.shape[-1]
        dW = self.dW[s].T  # (D+1+H, 4H): [dWx; db; dWh]
        return LSTMGrads(
            Wx=np.ascontiguousarray(dW[:D]), Wh=np.ascontiguousarray(dW[D + 1:]), b=dW[D].copy(), x=self.dx[s],
            h0=np.ascontiguousarray(self.dh[s]), c0=np.ascontiguousarray(self.dc[s]),
        )


def backward_loop(dhs: np.ndarray | None, cache: LSTMCache, h_scales: Sequence[np.ndarray | None],
                  c_scale: np.ndarray | None = None, dhT: np.ndarray | None = None,
                  dcT: np.ndarray | None = None) -> Iterator[tuple[int, Adjoints]]:
    """The time loop of BPTT for S adjoint streams through one forward pass; a generator.

    dhs (T, N, H) or None: the loss at each step, the same for every stream. h_scales: one per
    stream, each None (every h-edge kept) or an `edge_scale` result; a stream whose h_scale is 0
    at every step is the cell part of the gradient. c_scale: None or an `edge_scale` result, for
    every stream. dhT, dcT (N, H) or None. Arguments are not checked here (see `lstm_backward`).

    Yields (t, adjoints) for t = T-1 .. 0, after the cell and the weight gradients of step t and
    before its edges into step t-1: then adjoints.dh is dL/dh_t, adjoints.cell.dc_t is dL/dc_t
    (everything that reaches c_t), adjoints.da is dL/da_t and adjoints.dW_step the step's term of
    the weight gradients. After the last step, adjoints.dh and
    adjoints.dc hold dL/dh_0 and dL/dc_0, and `adjoints.grads(s)` gives stream s's LSTMGrads.
    """
    p = cache.params
    T, N, D = cache.x.shape
    H, dt, S = p.hidden_size, p.dtype, len(h_scales)
    # [dh_{t-1}, dx_t] of each stream, written by one matmul per step: (S, H+D, N), unit-major
    dh_dx = np.empty((S, H + D, N), dt)
    dh, dx_t = dh_dx[:, :H].transpose(0, 2, 1), dh_dx[:, H:].transpose(0, 2, 1)  # (S, N, H), (S, N, D)
    dc = unit_major(N, H, dt, S)
    dh[...] = 0 if dhT is None else dhT  # nothing comes from after step T
    dc[...] = 0 if dcT is None else dcT
    da_rows = np.empty((S * 4 * H, N), dt)  # dL/da_t of every stream, as the rows of one matrix
    da = da_rows.reshape(S, 4 * H, N).transpose(0, 2, 1)  # (S, N, 4H)
    # the weight gradients of every stream, summed over the steps, from one matmul per step whose
    # orientation is the faster one measured (OpenBLAS): float32 da_t^T [x_t, 1, h_{t-1}]^T (4H, D+1+H),
    # float64 [x_t, 1, h_{t-1}] da_t (D+1+H, 4H)
    inputs = np.empty((D + 1 + H, N), dt)  # [x_t, 1, h_{t-1}] of the current step, unit-major
    inputs[D] = 1
    if dt == np.float32:
        left, right = da_rows, inputs.T
        dW_sum, dW_t = np.zeros((S * 4 * H, D + 1 + H), dt), np.empty((S * 4 * H, D + 1 + H), dt)
        per_stream = [a.reshape(S, 4 * H, D + 1 + H) for a in (dW_sum, dW_t)]
    else:
        left, right = inputs, da_rows.T
        dW_sum, dW_t = np.zeros((D + 1 + H, S * 4 * H), dt), np.empty((D + 1 + H, S * 4 * H), dt)
        per_stream = [a.reshape(D + 1 + H, S, 4 * H).transpose(1, 2, 0) for a in (dW_sum, dW_t)]
    adj = Adjoints(dh, dc, da, np.empty((S, T, N, D), dt), *per_stream, cell_work(N, H, dt, None if S == 1 else S))
    # the elementwise work of a step runs on all streams at once; one stream is a plain (N, H)
    # array (measured: broadcasting over a stream axis of length 1 costs more than it saves)
    dh_all, dc_all, da_all = (dh[0], dc[0], da[0]) if S == 1 else (dh, dc, da)
    Wh_Wx_T = np.concatenate([p.Wh, p.Wx]).T  # (4H, H+D) = [Wh; Wx]^T: [dh_{t-1}, dx_t] = da_t [Wh; Wx]^T
    Wx_T = Wh_Wx_T[:, H:]  # (4H, D)
    detached = [np.zeros(T, bool) if s is None or s.shape[1:] != (1, 1) else s[:, 0, 0] == 0 for s in h_scales]
    for t in range(T - 1, -1, -1):
        if dhs is not None:
            dh_all += dhs[t]  # the loss at step t reaches h_t directly (every stream)
        # backprop through the cell of step t (every stream at once): dL/da_t, and dL/dc_{t-1} into dc
        lstm_cell_backward(dh_all, dc_all, cache.gates[t], cache.tanh_c[t], cache.c[t], da_all, dc_all, adj.cell)
        # the weights, through a_t = [x_t, 1, h_{t-1}] W: dW += [x_t, 1, h_{t-1}]^T da_t
        inputs[:D] = cache.x[t].T
        inputs[D + 1:] = cache.h[t].T
        np.matmul(left, right, out=dW_t)
        dW_sum += dW_t
        yield t, adj
        # backprop into x_t and, along the edge h_{t-1} -> a_t scaled by h_scale[t], into h_{t-1}
        for s, h_scale in enumerate(h_scales):
            if detached[s][t]:
                np.matmul(da[s], Wx_T, out=dx_t[s])  # a detached step needs no Wh product
                dh[s].fill(0)
            else:
                np.matmul(da[s], Wh_Wx_T, out=dh_dx[s].T)
                if h_scale is not None:
                    dh[s] *= h_scale[t]
        adj.dx[:, t] = dx_t
        # backprop into c_{t-1} along the edge c_{t-1} -> c_t, scaled by c_scale[t]
        if c_scale is not None:
            dc_all *= c_scale[t]


def check_backward_inputs(dhs: np.ndarray | None, cache: LSTMCache, dhT: np.ndarray | None = None,
                          dcT: np.ndarray | None = None) -> tuple[int, int, int, np.dtype]:
    """Check the arguments every backward over an LSTMCache takes; returns T, N, H and the dtype."""
    check_cache(cache)
    dt, H = cache.params.dtype, cache.params.hidden_size
    T, N, _ = cache.x.shape
    if dhs is not None:
        check_array("dhs", dhs, (T, N, H), dt, letters="TNH")
    for name, v in (("dhT", dhT), ("dcT", dcT)):
        if v is not None:
            check_array(name, v, (N, H), dt, letters="NH")
    return T, N, H, dt


def lstm_backward(dhs: np.ndarray | None, cache: LSTMCache, h_scale: ArrayLike | None = None,
                  c_scale: ArrayLike | None = None, dhT: np.ndarray | None = None,
                  dcT: np.ndarray | None = None) -> LSTMGrads:
    """BPTT. dhs (T, N, H): dL/dh_t from the loss at each step (None for zeros).

    h_scale, c_scale: per-edge factors, a number, (T,), (T, N) or (T, N, H) in [0, 1] (see the
    module docstring); None means 1 everywhere. dhT, dcT (N, H): extra gradient on the final h_T,
    c_T. Returns LSTMGrads with Wx, Wh, b, x (T, N, D), h0, c0. Any LSTMCache works; the
    unit-major ones of `lstm_forward` are the fastest.
    """
    T, N, H, dt = check_backward_inputs(dhs, cache, dhT, dcT)
    h_scale = edge_scale(h_scale, "h_scale", T, N, H, dt)
    c_scale = edge_scale(c_scale, "c_scale", T, N, H, dt)
    # run the loop to its end: the final adjoints hold the gradients summed over the steps
    *_, (_, adjoints) = backward_loop(dhs, cache, (h_scale,), c_scale, dhT, dcT)
    return adjoints.grads(0)
