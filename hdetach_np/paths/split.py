"""The exact split of the LSTM gradient into its cell-state path and its h path.

Every backward path from the loss to a weight is a chain of local derivatives. It either uses no
edge h_{t-1} -> a_t (the gates of step t) at all, or it uses at least one:

- **cell part** `g_cell`: every path that uses no h-edge. Equal to the gradient with every h-edge
  cut (`h_scale = 0`, h-detach with p = 1). Inside the LSTM it travels only along the cell edges
  c_{t-1} -> c_t, entering each step's gates from c_t.
- **h part** `g_h = g_total - g_cell`: every path with at least one h-edge (each such edge is a
  product with Wh, which is why this part grows with the recurrent weights).

`gradient_paths` computes both in ONE backward pass that carries two adjoint streams together:

    total stream:  dL/dh_t, dL/dc_t as in `lstm_backward` (edge scales applied)
    cell stream:   dL/dh_t = the loss at step t only (no h-edge brings anything back), and
                   dL/dc_{t-1} = f_t * (dL/dc_t + dL/dh_t * o_t * (1 - tanh(c_t)^2))  (cell edge only)

The cell stream is the total stream with every h-edge cut, so both run through the one backward
loop of `lstm_backward` (`hdetach_np.sequence.backward_loop`), stacked: each elementwise op of the
step backward and the weight-gradient matmul serve both streams in one call, and the cell stream
needs no Wh product. No (T, N, 4H) array is stored.

A gradient taken with an h-detach mask or fractional `h_scale` (for instance the expected h-detach
gradient `g(lambda = 1 - p)`, `expected_h_detach_gradient`) is split the same way: its total is that
gradient, and its cell part is the plain cell part (it uses no h-edge, so no mask touches it).

The readout y_t = h_t V + d reaches the loss directly, without any recurrent edge: its cell part is
its total and its h part is zero. `gradient_paths(..., readout=...)` records it that way.

`temporal_credit` reports, step by step, how much of the gradient reaches each earlier step through
each path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .._validate import check_probability
from ..linear import LinearGrads
from ..lstm import GATES, gate_slices
from ..sequence import (
    LSTMCache,
    LSTMGrads,
    backward_loop,
    check_backward_inputs,
    check_cache,
    edge_scale,
    lstm_backward,
)
from .records import json_floats

PARAM_NAMES = ("Wx", "Wh", "b")
READOUT_NAMES = ("V", "d")
PARTS = ("total", "cell", "h")


def param_groups(H: int | None = None, readout: bool = False) -> tuple[str, ...]:
    """Names of the parameter groups reported by `PathGrads.norms()`.

    "Wx", "Wh", "b", "all" (the three LSTM parameters together, never the readout), one entry per
    gate block "Wx.i" .. "b.g", and with `readout=True` also "V", "d" and "readout" (V and d).
    """
    names = [*PARAM_NAMES, "all"] + [f"{p}.{g}" for p in PARAM_NAMES for g in GATES]
    if readout:
        names += [*READOUT_NAMES, "readout"]
    return tuple(names)


def check_group(group: str, norms: dict[str, float]) -> str:
    """Raise a ValueError naming the known groups if `group` is not one of `norms`' keys."""
    if group not in norms:
        raise ValueError(
            f"unknown parameter group {group!r}; expected one of {', '.join(map(repr, norms))}"
        )
    return group


@dataclass(frozen=True, eq=False)
class PathGrads:
    """Total, cell-path and h-path gradients (each an LSTMGrads); total = cell + h exactly.

    `readout` (optional) is the readout's LinearGrads: the readout uses no recurrent edge, so its
    cell part equals its total and its h part is zero.
    """

    total: LSTMGrads
    cell: LSTMGrads
    h: LSTMGrads
    readout: LinearGrads | None = None

    def norms(self) -> dict[str, dict[str, float]]:
        """Euclidean norms per part: {"total"|"cell"|"h": {"Wx", "Wh", "b", "all", "Wx.i", ...}}.

        "all" covers the LSTM parameters Wx, Wh, b. With a readout, "V", "d" and "readout" are
        added (equal in "total" and "cell", zero in "h").
        """
        out = {part: _norms(getattr(self, part)) for part in PARTS}
        if self.readout is not None:
            nV, nd = float(np.linalg.norm(self.readout.V)), float(np.linalg.norm(self.readout.d))
            both = float(np.hypot(nV, nd))
            for part in ("total", "cell"):
                out[part].update(V=nV, d=nd, readout=both)
            out["h"].update(V=0.0, d=0.0, readout=0.0)
        return out

    def ratios(self, group: str = "all") -> dict[str, float]:
        """{"cell/total", "cell/h", "h/total"}: norm ratios for one parameter group (nan for 0/0,
        inf for x/0)."""
        n = self.norms()
        check_group(group, n["total"])
        return path_ratios(n, group)


def path_ratios(norms: dict[str, dict[str, float]], group: str = "all") -> dict[str, float]:
    """Norm ratios of one group from a `PathGrads.norms()` dict."""
    check_group(group, norms["total"])
    t, c, h = (norms[p][group] for p in PARTS)
    return {"cell/total": _ratio(c, t), "cell/h": _ratio(c, h), "h/total": _ratio(h, t)}


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return float("nan") if a == 0 else float("inf")
    return a / b


def _norms(g: LSTMGrads) -> dict[str, float]:
    H = g.Wh.shape[0]
    out = {}
    for name in PARAM_NAMES:
        out[name] = float(np.linalg.norm(getattr(g, name)))
    out["all"] = float(np.sqrt(sum(out[n] ** 2 for n in PARAM_NAMES)))
    for name in PARAM_NAMES:
        a = getattr(g, name)
        for gate, sl in gate_slices(H).items():
            out[f"{name}.{gate}"] = float(np.linalg.norm(a[..., sl]))
    return out


def _difference(a: LSTMGrads, b: LSTMGrads) -> LSTMGrads:
    return LSTMGrads(*(getattr(a, f) - getattr(b, f) for f in ("Wx", "Wh", "b", "x", "h0", "c0")))


def gradient_paths(dhs: np.ndarray | None, cache: LSTMCache, h_scale: ArrayLike | None = None,
                   c_scale: ArrayLike | None = None, dhT: np.ndarray | None = None, dcT: np.ndarray | None = None,
                   *, readout: LinearGrads | None = None) -> PathGrads:
    """Split the gradient of `lstm_backward(dhs, cache, h_scale, c_scale, dhT, dcT)` into its
    cell-path and h-path parts, in one backward pass.

    Arguments as for `lstm_backward`: dhs (T, N, H) or None, h_scale / c_scale a number, (T,),
    (T, N) or (T, N, H) in [0, 1] or None, dhT, dcT (N, H) or None. `readout`: the readout's
    LinearGrads, to be reported with the split (its cell part is its total, see the module docstring).

    Returns PathGrads(total, cell, h[, readout]); each of total, cell, h is an LSTMGrads with Wx
    (D, 4H), Wh (H, 4H), b (4H,), x (T, N, D), h0, c0 (N, H). The cell part uses no h-edge, so its
    h0 is zero; with c_scale the cell edges are scaled in both streams.
    """
    T, N, H, dt = check_backward_inputs(dhs, cache, dhT, dcT)
    if readout is not None and not isinstance(readout, LinearGrads):
        raise TypeError("readout must be the LinearGrads of the readout (linear_backward), "
                        f"got {type(readout).__name__}")
    if readout is not None and readout.V.shape[0] != H:
        raise ValueError(f"expected readout gradients with V of shape (H={H}, K), got {readout.V.shape}")
    streams = _total_and_cell(edge_scale(h_scale, "h_scale", T, N, H, dt), T, dt)
    # run the loop to its end: the final adjoints hold the gradients summed over the steps
    *_, (_, adjoints) = backward_loop(dhs, cache, streams, edge_scale(c_scale, "c_scale", T, N, H, dt), dhT, dcT)
    total, cell = adjoints.grads(0), adjoints.grads(1)
    return PathGrads(total, cell, _difference(total, cell), readout)


def _total_and_cell(h_scale, T, dtype):
    """The h_scales of the two streams: the total gradient's, and every h-edge cut (the cell part)."""
    return (h_scale, np.zeros((T, 1, 1), dtype))


def gradient_paths_reference(dhs: np.ndarray | None, cache: LSTMCache, h_scale: ArrayLike | None = None,
                             c_scale: ArrayLike | None = None, dhT: np.ndarray | None = None,
                             dcT: np.ndarray | None = None) -> PathGrads:
    """The same split from two plain `lstm_backward` calls (total, and cell = every h-edge cut).

    Slower; kept as the definition that `gradient_paths` is tested against."""
    T = cache.x.shape[0]
    total = lstm_backward(dhs, cache, h_scale=h_scale, c_scale=c_scale, dhT=dhT, dcT=dcT)
    cell = lstm_backward(dhs, cache, h_scale=np.zeros(T), c_scale=c_scale, dhT=dhT, dcT=dcT)
    return PathGrads(total, cell, _difference(total, cell))


# ---------------------------------------------------------------------------------------------
# h-detach in expectation
# ---------------------------------------------------------------------------------------------


def h_detach_lambda(T: int, p: float, dtype: DTypeLike = np.float64) -> np.ndarray:
    """The h_scale (T,) of the expected h-detach gradient: lambda = 1 - p on every h-edge."""
    p = check_probability("p", p)
    return np.full(T, 1.0 - p, dtype=dtype)


def expected_h_detach_gradient(dhs: np.ndarray | None, cache: LSTMCache, p: float, c_scale: ArrayLike | None = None,
                               dhT: np.ndarray | None = None, dcT: np.ndarray | None = None) -> LSTMGrads:
    """E[g] over h-detach masks with blocking probability p, computed exactly.

    A mask cuts each h-edge independently with probability p and leaves the forward pass alone; the
    gradient is multilinear in the per-step edge factors, so its expectation is the gradient with
    every factor at its mean: `lstm_backward(dhs, cache, h_scale=full(T, 1 - p))`. Every backward
    path with k h-edges is weighted (1 - p)^k; the pure cell path keeps weight 1.
    dhs (T, N, H) or None; returns LSTMGrads.
    """
    T = check_cache(cache).x.shape[0]
    lam = h_detach_lambda(T, p, cache.params.dtype)
    return lstm_backward(dhs, cache, h_scale=lam, c_scale=c_scale, dhT=dhT, dcT=dcT)


def expected_h_detach_paths(dhs: np.ndarray | None, cache: LSTMCache, p: float, c_scale: ArrayLike | None = None,
                            dhT: np.ndarray | None = None, dcT: np.ndarray | None = None, *,
                            readout: LinearGrads | None = None) -> PathGrads:
    """The expected h-detach gradient g(1 - p) split into its cell part and its h part.

    The cell part is the same as for the plain gradient (no mask touches it); the h part is
    weighted (1 - p)^k per path with k h-edges. Returns PathGrads.
    """
    T = check_cache(cache).x.shape[0]
    lam = h_detach_lambda(T, p, cache.params.dtype)
    return gradient_paths(dhs, cache, h_scale=lam, c_scale=c_scale, dhT=dhT, dcT=dcT, readout=readout)


# ---------------------------------------------------------------------------------------------
# Temporal credit: what reaches each earlier step, by path
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TemporalCredit:
    """Per-lag norms of what reaches earlier steps, for the total, cell and h parts.

    Entry k of every array is step t = ref_step - k (lag k; steps are 0-based, step t produces
    h_t = hs[t]). Norms are Euclidean over the batch and units.

    dh[part] (L,): ||dL/dh_t||, everything reaching h_t (its own loss and later steps).
    dc[part] (L,): ||dL/dc_t||, everything reaching c_t (through h_t and through c_{t+1}).
    da[part] (L,): ||dL/da_t||, what reaches the gate pre-activations of step t.
    `weights[part][group]` (L,): norm of step t's term in the gradient of a parameter group
        ("Wx", "Wh", "b", "all", "Wh.f", ...), i.e. [h_{t-1} | x_t | 1]^T dL/da_t.
    The cell part of dh is the loss at step t only: no path without an h-edge reaches h_t from
    a later step.
    """

    ref_step: int
    lags: np.ndarray  # (L,) 0 .. max_lag
    dh: dict
    dc: dict
    da: dict
    weights: dict

    @property
    def steps(self) -> np.ndarray:
        return self.ref_step - self.lags

    def as_dict(self, groups: tuple[str, ...] = ("all", "Wx", "Wh", "b", "Wh.i", "Wh.f", "Wh.o", "Wh.g"),
                digits: int = 7) -> dict:
        """JSON-ready (lists of floats with `digits` significant digits); weight terms for
        `groups` only (None: every group)."""
        groups = tuple(self.weights["total"]) if groups is None else tuple(groups)
        for g in groups:
            check_group(g, self.weights["total"])
        return {
            "ref_step": int(self.ref_step), "lags": self.lags.tolist(),
            "dh": {q: json_floats(v, digits) for q, v in self.dh.items()},
            "dc": {q: json_floats(v, digits) for q, v in self.dc.items()},
            "da": {q: json_floats(v, digits) for q, v in self.da.items()},
            "weights": {q: {g: json_floats(d[g], digits) for g in groups} for q, d in self.weights.items()},
        }


def _last_loss_step(dhs, T, dhT, dcT) -> int:
    if dhT is not None or dcT is not None or dhs is None:
        return T - 1
    active = np.flatnonzero(np.any(dhs != 0, axis=(1, 2)))
    if active.size == 0:
        raise ValueError("dhs is zero at every step and no dhT/dcT is given: no loss to assign credit for")
    return int(active[-1])


def temporal_credit(dhs: np.ndarray | None, cache: LSTMCache, h_scale: ArrayLike | None = None,
                    c_scale: ArrayLike | None = None, dhT: np.ndarray | None = None, dcT: np.ndarray | None = None,
                    *, ref_step: int | None = None, max_lag: int | None = None) -> TemporalCredit:
    """How much gradient reaches each earlier step, through the cell path and through the h path.

    Arguments as for `lstm_backward`. `ref_step` (default: the last step where dhs is non-zero, or
    T-1 with dhT/dcT) is where lag 0 is; `max_lag` (default ref_step) limits the lags reported and
    must satisfy 0 <= max_lag <= ref_step < T. Returns TemporalCredit (arrays indexed by lag).

    The same backward loop as `gradient_paths` (two streams, total and cell), read at every step;
    the sum of its per-step weight terms equals `gradient_paths`.
    """
    T, N, H, dt = check_backward_inputs(dhs, cache, dhT, dcT)
    if ref_step is None:
        ref_step = _last_loss_step(dhs, T, dhT, dcT)
    elif not isinstance(ref_step, (int, np.integer)) or not 0 <= ref_step < T:
        raise ValueError(f"ref_step must be an integer step in [0, T-1={T - 1}], got {ref_step!r}")
    if max_lag is None:
        max_lag = ref_step
    elif not isinstance(max_lag, (int, np.integer)) or not 0 <= max_lag <= ref_step:
        raise ValueError(
            f"max_lag must be an integer in [0, ref_step={ref_step}] (a lag beyond the start of the "
            f"sequence of T={T} steps has no step), got {max_lag!r}"
        )
    streams = _total_and_cell(edge_scale(h_scale, "h_scale", T, N, H, dt), T, dt)
    c_scale = edge_scale(c_scale, "c_scale", T, N, H, dt)
    D = cache.params.input_size
    L = int(max_lag) + 1
    groups = param_groups()
    dh_n = {q: np.zeros(L) for q in PARTS}
    dc_n = {q: np.zeros(L) for q in PARTS}
    da_n = {q: np.zeros(L) for q in PARTS}
    w_n = {q: {g: np.zeros(L) for g in groups} for q in PARTS}
    for t, adj in backward_loop(dhs, cache, streams, c_scale, dhT, dcT):
        k = ref_step - t
        if not 0 <= k < L:
            continue
        # what reaches h_t, c_t (everything: from later steps and through h_t) and a_t, per part
        for norms, (total, cell) in ((dh_n, adj.dh), (dc_n, adj.cell.dc_t), (da_n, adj.da)):
            for q, v in (("total", total), ("cell", cell), ("h", total - cell)):
                norms[q][k] = np.linalg.norm(v)
        # step t's term in each weight gradient, [x_t, 1, h_{t-1}]^T dL/da_t, from the loop
        total, cell = adj.dW_step  # each (4H, D+1+H): [dWx; db; dWh] transposed
        for q, term in (("total", total), ("cell", cell), ("h", total - cell)):
            step_grads = LSTMGrads(Wx=term[:, :D].T, Wh=term[:, D + 1:].T, b=term[:, D], x=None, h0=None, c0=None)
            for g, v in _norms(step_grads).items():
                w_n[q][g][k] = v
    return TemporalCredit(int(ref_step), np.arange(L), dh_n, dc_n, da_n, w_n)


__all__ = [
    "GATES", "PARTS", "PathGrads", "TemporalCredit", "check_group", "expected_h_detach_gradient",
    "expected_h_detach_paths", "gradient_paths", "gradient_paths_reference", "h_detach_lambda",
    "param_groups", "path_ratios", "temporal_credit",
]
