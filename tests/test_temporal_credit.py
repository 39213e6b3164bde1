"""Temporal credit: the per-lag norms against suffix backward passes (float64)."""

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd
from hdetach_np.paths.split import _norms


def _suffix_grads(cache, dhs, t, h_scale=None, dcT=None):
    """lstm_backward of steps t .. T-1 alone, started from the stored (h_{t-1}, c_{t-1})."""
    p = cache.params
    _, sub = hd.lstm_forward(p, cache.x[t:], cache.h[t], cache.c[t])
    return hd.lstm_backward(dhs[t:], sub, h_scale=None if h_scale is None else h_scale[t:], dcT=dcT)


@pytest.mark.parametrize("h_scale", [None, "lambda"])
def test_credit_matches_suffix_passes(h_scale):
    T, N, D, H = 6, 2, 2, 3
    rng, params, x, h0, c0 = make_problem(0, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    dhs = rng.standard_normal((T, N, H))
    dhs[-1] = 0  # the last loss is at step T-2: lag 0 is step T-2
    dcT = None
    hsc = None if h_scale is None else np.full(T, 0.5)
    tc = hd.temporal_credit(dhs, cache, h_scale=hsc)
    assert tc.ref_step == T - 2 and list(tc.steps) == list(range(T - 2, -1, -1))
    zeros = np.zeros(T)
    for k, t in zip(tc.lags, tc.steps):
        # dL/dh_t and dL/dc_t from the suffix starting at step t+1 (total and with every h-edge cut)
        o = cache.gates[t, :, 2 * H:3 * H]
        dpath = o * (1 - cache.tanh_c[t] ** 2)
        for part, scale in (("total", hsc), ("cell", zeros)):
            if t + 1 < T:
                g = _suffix_grads(cache, dhs, t + 1, scale, dcT)
                dh_later, dc_later = g.h0, g.c0  # h0 already carries the h-edge factor of step t+1
            else:
                dh_later, dc_later = 0, 0
            dh_t = dhs[t] + dh_later
            assert np.isclose(tc.dh[part][k], np.linalg.norm(dh_t), rtol=1e-10), (part, t)
            assert np.isclose(tc.dc[part][k], np.linalg.norm(dc_later + dh_t * dpath), rtol=1e-10), (part, t)
        # step t's term in the weight gradient: suffix(t) - suffix(t + 1)
        for part, scale in (("total", hsc), ("cell", zeros)):
            g_t = _suffix_grads(cache, dhs, t, scale)
            if t + 1 < T:
                g_next = _suffix_grads(cache, dhs, t + 1, scale)
                term = hd.LSTMGrads(g_t.Wx - g_next.Wx, g_t.Wh - g_next.Wh, g_t.b - g_next.b, None, None, None)
            else:
                term = g_t
            for group, v in _norms(term).items():
                assert np.isclose(tc.weights[part][group][k], v, rtol=1e-8, atol=1e-14), (part, group, t)
    # the cell stream brings nothing back to h_t from later steps: its dh is the loss at t alone
    np.testing.assert_allclose(tc.dh["cell"], np.linalg.norm(dhs[tc.steps], axis=(1, 2)), rtol=1e-12)
    assert tc.dh["h"][0] == 0  # at lag 0 only the step's own loss reaches h_t


def test_credit_single_step_equals_gradient_paths():
    T, N, D, H = 1, 3, 2, 4
    rng, params, x, h0, c0 = make_problem(1, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    dhs = rng.standard_normal((T, N, H))
    tc = hd.temporal_credit(dhs, cache)
    n = hd.gradient_paths(dhs, cache).norms()
    for part in ("total", "cell", "h"):
        for group in ("all", "Wh", "Wx.f"):
            assert np.isclose(tc.weights[part][group][0], n[part][group], rtol=1e-12, atol=1e-15)


def test_credit_bad_inputs_and_json():
    T, N, D, H = 5, 2, 1, 3
    rng, params, x, h0, c0 = make_problem(2, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    dhs = rng.standard_normal((T, N, H))
    with pytest.raises(ValueError, match=r"max_lag must be an integer in \[0, ref_step=4\]"):
        hd.temporal_credit(dhs, cache, max_lag=5)
    with pytest.raises(ValueError, match=r"ref_step must be an integer step in \[0, T-1=4\]"):
        hd.temporal_credit(dhs, cache, ref_step=5)
    with pytest.raises(ValueError, match="zero at every step"):
        hd.temporal_credit(np.zeros_like(dhs), cache)
    with pytest.raises(ValueError, match="unknown parameter group 'Wy'"):
        hd.temporal_credit(dhs, cache).as_dict(groups=("Wy",))
    tc = hd.temporal_credit(dhs, cache, ref_step=3, max_lag=2)
    d = tc.as_dict()
    assert d["lags"] == [0, 1, 2] and len(d["weights"]["cell"]["Wh.f"]) == 3 and d["ref_step"] == 3
