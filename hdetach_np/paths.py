"""The exact split of the LSTM gradient into its cell-state path and its h path.

- cell part: every backward path that uses no edge h_{t-1} -> gates_t; equal to the gradient with
  every h-edge cut (h-detach with p = 1, `h_scale = 0`).
- h part: total minus cell, every path that uses at least one h-edge.

For a gradient taken with an h-detach mask or fractional `h_scale`, the total is that gradient and
the cell part is the same as for the plain gradient (it uses no h-edge).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lstm import GATES, LSTMCache, LSTMGrads, gate_slices, lstm_backward

PARAM_NAMES = ("Wx", "Wh", "b")


@dataclass(frozen=True, eq=False)
class PathGrads:
    """Total, cell-path and h-path gradients (each an LSTMGrads); total = cell + h exactly."""

    total: LSTMGrads
    cell: LSTMGrads
    h: LSTMGrads

    def norms(self) -> dict[str, dict[str, float]]:
        """Euclidean norms per part: {"total"|"cell"|"h": {"Wx", "Wh", "b", "all", "Wx.i", ...}}."""
        return {part: _norms(getattr(self, part)) for part in ("total", "cell", "h")}


def _norms(g: LSTMGrads) -> dict[str, float]:
    H = g.Wh.shape[0]
    out = {}
    for name in PARAM_NAMES:
        a = getattr(g, name)
        out[name] = float(np.linalg.norm(a))
        for gate, sl in gate_slices(H).items():
            out[f"{name}.{gate}"] = float(np.linalg.norm(a[..., sl]))
    out["all"] = float(np.sqrt(sum(out[n] ** 2 for n in PARAM_NAMES)))
    return out


def _difference(a: LSTMGrads, b: LSTMGrads) -> LSTMGrads:
    return LSTMGrads(*(getattr(a, f) - getattr(b, f) for f in ("Wx", "Wh", "b", "x", "h0", "c0")))


def gradient_paths(dhs, cache: LSTMCache, h_scale=None, c_scale=None, dhT=None, dcT=None) -> PathGrads:
    """Split the gradient of `lstm_backward(dhs, cache, h_scale, c_scale, dhT, dcT)` into its
    cell-path and h-path parts. Arguments as for `lstm_backward`."""
    T = cache.x.shape[0]
    total = lstm_backward(dhs, cache, h_scale=h_scale, c_scale=c_scale, dhT=dhT, dcT=dcT)
    cell = lstm_backward(dhs, cache, h_scale=np.zeros(T), c_scale=c_scale, dhT=dhT, dcT=dcT)
    return PathGrads(total, cell, _difference(total, cell))


__all__ = ["GATES", "PathGrads", "gradient_paths"]
