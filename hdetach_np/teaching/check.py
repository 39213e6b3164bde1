"""`hdetach-np check`: the hand-derived BPTT against centred finite differences.

A small random LSTM with a linear readout and softmax cross-entropy at every step, plus a term on
the final cell state (so the gradient entering c_T is exercised), is checked in float64 for every
parameter and input, with no detach, with a sampled h-detach mask, and with fractional per-unit
h/c edge scales.

A masked gradient is checked against finite differences of a loss in which each scaled edge
carries s * h_{t-1} + (1 - s) * const, `const` being a frozen copy of h_{t-1} (its value at the
unperturbed parameters): the same forward values, and exactly the gradient h-detach defines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gradcheck import numerical_gradient, rel_error
from ..linear import LinearParams, init_linear, linear_backward, linear_forward
from ..losses import softmax_cross_entropy
from ..lstm import init_lstm
from ..masks import sample_h_detach_mask
from ..sequence import lstm_backward, lstm_forward, lstm_forward_steps

TOLERANCE = 1e-6


@dataclass
class CheckRow:
    case: str
    name: str
    error: float

    @property
    def passed(self) -> bool:
        return self.error < TOLERANCE


def _problem(seed, T, N, D, H, K):
    rng = np.random.default_rng(seed)
    params = init_lstm(D, H, rng, dtype=np.float64)
    # random non-zero biases, scaled so the gates stay unsaturated
    params.b[:] = rng.uniform(-0.5, 0.5, size=4 * H)
    readout = init_linear(H, K, rng, dtype=np.float64)
    x = rng.standard_normal((T, N, D))
    h0 = 0.5 * rng.standard_normal((N, H))
    c0 = 0.5 * rng.standard_normal((N, H))
    targets = rng.integers(0, K, size=(T, N))
    rc = rng.standard_normal((N, H))  # weights of a linear term on c_T
    return rng, params, readout, x, h0, c0, targets, rc


def check_case(case: str, params, readout: LinearParams, x, h0, c0, targets, rc, h_scale=None, c_scale=None):
    """Compare analytic and numerical gradients of every parameter and input; returns CheckRows."""
    hs, cache = lstm_forward(params, x, h0, c0)
    logits, lcache = linear_forward(readout, hs)
    _, dlogits = softmax_cross_entropy(logits, targets)
    lgrads = linear_backward(dlogits, lcache)
    grads = lstm_backward(lgrads.h, cache, h_scale=h_scale, c_scale=c_scale, dcT=rc.copy())

    def loss():
        hs_, cs_, _ = lstm_forward_steps(params, x, h0, c0, h_scale=h_scale, c_scale=c_scale, anchor=cache)
        cT = cs_[-1]
        value, _ = softmax_cross_entropy(linear_forward(readout, hs_)[0], targets)
        return value + float(np.sum(rc * cT))

    pairs = [
        ("Wx", params.Wx, grads.Wx), ("Wh", params.Wh, grads.Wh), ("b", params.b, grads.b),
        ("V", readout.V, lgrads.V), ("d", readout.d, lgrads.d),
        ("x", x, grads.x), ("h0", h0, grads.h0), ("c0", c0, grads.c0),
    ]
    return [CheckRow(case, name, rel_error(g, numerical_gradient(loss, arr))) for name, arr, g in pairs]


def run_check(seed: int = 0, T: int = 6, N: int = 3, D: int = 4, H: int = 5, K: int = 3, p: float = 0.5):
    """All cases on one small random problem. Returns a list of CheckRow."""
    rng, params, readout, x, h0, c0, targets, rc = _problem(seed, T, N, D, H, K)
    mask = sample_h_detach_mask(T, p, rng, dtype=np.float64)
    cmask = sample_h_detach_mask(T, p, rng, dtype=np.float64)
    if T >= 3:  # make sure an interior step of each kind is exercised, whatever the draw
        mask[1], mask[2], cmask[1], cmask[2] = 0.0, 1.0, 1.0, 0.0
    frac_h = rng.uniform(0.2, 0.9, size=(T, N, H))
    frac_c = rng.uniform(0.2, 0.9, size=(T, N, H))
    rows = []
    rows += check_case("plain", params, readout, x, h0, c0, targets, rc)
    rows += check_case(f"h-detach p={p}", params, readout, x, h0, c0, targets, rc, h_scale=mask)
    rows += check_case(f"c-detach p={p}", params, readout, x, h0, c0, targets, rc, c_scale=cmask)
    rows += check_case("fractional per-unit h/c", params, readout, x, h0, c0, targets, rc,
                       h_scale=frac_h, c_scale=frac_c)
    return rows


def format_rows(rows) -> str:
    lines = [f"{'case':<26} {'param':<6} {'rel. error':>11}  result", "-" * 54]
    for r in rows:
        lines.append(f"{r.case:<26} {r.name:<6} {r.error:>11.2e}  {'pass' if r.passed else 'FAIL'}")
    n_fail = sum(not r.passed for r in rows)
    lines.append("-" * 54)
    lines.append(f"{len(rows) - n_fail} passed, {n_fail} failed (tolerance {TOLERANCE:g}, float64 centred differences)")
    return "\n".join(lines)
