"""Identities of the edge scales, and agreement of the step and sequence functions."""

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd


def _grads(params, x, h0, c0, dhs, **kw):
    _, cache = hd.lstm_forward(params, x, h0, c0)
    return hd.lstm_backward(dhs, cache, **kw)


FIELDS = ("Wx", "Wh", "b", "x", "h0", "c0")


@pytest.mark.parametrize("shape", ["step", "example", "unit"])
def test_all_ones_scale_equals_plain(shape):
    T, N, D, H = 5, 3, 2, 4
    rng, params, x, h0, c0 = make_problem(0, T, N, D, H)
    dhs = rng.standard_normal((T, N, H))
    ones = np.ones({"step": (T,), "example": (T, N), "unit": (T, N, H)}[shape])
    g0 = _grads(params, x, h0, c0, dhs)
    g1 = _grads(params, x, h0, c0, dhs, h_scale=ones, c_scale=ones)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(g1, f), getattr(g0, f))


def test_all_zeros_h_scale_has_no_h_path():
    """With every h-edge cut no gradient reaches h0, and the backward equals one that sees Wh = 0
    in every Jacobian (but not in the forward values): only the cell path is left."""
    T, N, D, H = 6, 2, 3, 4
    rng, params, x, h0, c0 = make_problem(1, T, N, D, H)
    g = _grads(params, x, h0, c0, rng.standard_normal((T, N, H)), h_scale=np.zeros(T))
    assert np.all(g.h0 == 0)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    zero_Wh = hd.LSTMParams(params.Wx, np.zeros_like(params.Wh), params.b)
    cache0 = hd.LSTMCache(cache.x, cache.h, cache.c, cache.gates, cache.tanh_c, zero_Wh)
    dhs = np.random.default_rng(1).standard_normal((T, N, H))
    g_cut = hd.lstm_backward(dhs, cache, h_scale=np.zeros(T))
    g_wh0 = hd.lstm_backward(dhs, cache0)
    for f in ("Wx", "Wh", "b", "x", "c0"):
        np.testing.assert_allclose(getattr(g_cut, f), getattr(g_wh0, f), rtol=1e-12, atol=1e-14)


def test_loss_at_previous_step_still_reaches_h():
    """Detaching h_{t-1} -> gates_t leaves the loss at step t-1 flowing into h_{t-1}."""
    T, N, D, H = 2, 1, 1, 2
    rng, params, x, h0, c0 = make_problem(2, T, N, D, H)
    dhs = np.zeros((T, N, H))
    dhs[0] = 1.0  # loss only at step 0
    g = _grads(params, x, h0, c0, dhs, h_scale=np.array([1.0, 0.0]))
    assert np.abs(g.Wx).sum() > 0 and np.abs(g.h0).sum() > 0


def test_fractional_scale_is_linear_in_paths():
    """Every path into h0 starts with the edge h0 -> a_1, so scaling that edge by 0.5 halves dh0."""
    T, N, D, H = 2, 2, 2, 3
    rng, params, x, h0, c0 = make_problem(3, T, N, D, H)
    dhs = np.zeros((T, N, H))
    dhs[-1] = rng.standard_normal((N, H))
    g1 = _grads(params, x, h0, c0, dhs)
    g_half = _grads(params, x, h0, c0, dhs, h_scale=np.array([0.5, 1.0]))
    np.testing.assert_allclose(g_half.h0, 0.5 * g1.h0, rtol=1e-12)


@pytest.mark.parametrize("T", [1, 5])
def test_step_functions_agree_with_sequence(T):
    N, D, H = 3, 2, 4
    rng, params, x, h0, c0 = make_problem(4, T, N, D, H)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    h, c, caches = h0, c0, []
    for t in range(T):
        h, c, sc = hd.lstm_step_forward(x[t], h, c, params)
        np.testing.assert_allclose(h, hs[t], rtol=1e-13, atol=1e-15)
        caches.append(sc)
    np.testing.assert_allclose(c, cache.cs[-1], rtol=1e-13, atol=1e-15)

    dhs = rng.standard_normal((T, N, H))
    hsc = rng.uniform(0, 1, size=(T, N, H))
    csc = rng.uniform(0, 1, size=(T, N))
    g = hd.lstm_backward(dhs, cache, h_scale=hsc, c_scale=csc)
    dh, dc = np.zeros((N, H)), np.zeros((N, H))
    acc = {k: np.zeros_like(getattr(params, k)) for k in ("Wx", "Wh", "b")}
    dx = np.zeros_like(x)
    for t in reversed(range(T)):
        sg = hd.lstm_step_backward(dh + dhs[t], dc, caches[t], h_scale=hsc[t], c_scale=csc[t])
        dh, dc, dx[t] = sg.h_prev, sg.c_prev, sg.x
        for k in acc:
            acc[k] += getattr(sg, k)
    for k in acc:
        np.testing.assert_allclose(getattr(g, k), acc[k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.x, dx, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.h0, dh, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.c0, dc, rtol=1e-12, atol=1e-14)


def test_backward_does_not_modify_inputs():
    T, N, D, H = 4, 2, 2, 3
    rng, params, x, h0, c0 = make_problem(5, T, N, D, H)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    dhs, dhT, dcT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    snapshot = [a.copy() for a in (dhs, dhT, dcT, cache.h, cache.c, cache.gates, cache.tanh_c, x)]
    hd.lstm_backward(dhs, cache, h_scale=np.array([1, 0, 0.5, 1.0]), dhT=dhT, dcT=dcT)
    for before, after in zip(snapshot, (dhs, dhT, dcT, cache.h, cache.c, cache.gates, cache.tanh_c, x)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    T, N, D, H = 3, 2, 2, 3
    rng, params, x, h0, c0 = make_problem(6, T, N, D, H, dtype=dtype)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    g = hd.lstm_backward(np.ones_like(hs), cache, h_scale=np.array([1, 0, 1]))
    assert hs.dtype == dtype
    for f in FIELDS:
        assert getattr(g, f).dtype == dtype, f


def test_float32_close_to_float64():
    T, N, D, H = 20, 4, 3, 8
    rng, p64, x, h0, c0 = make_problem(7, T, N, D, H)
    dhs = rng.standard_normal((T, N, H))
    g64 = _grads(p64, x, h0, c0, dhs)
    f32 = np.float32
    g32 = _grads(p64.astype(f32), x.astype(f32), h0.astype(f32), c0.astype(f32), dhs.astype(f32))
    for f in FIELDS:
        a, b = getattr(g32, f), getattr(g64, f)
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-5, f


def test_init_original_distribution():
    H, D = 64, 3
    p = hd.init_lstm(D, H, np.random.default_rng(0), dtype=np.float64)
    k = 1 / np.sqrt(H)
    assert p.Wx.shape == (D, 4 * H) and p.Wh.shape == (H, 4 * H) and p.b.shape == (4 * H,)
    assert np.abs(p.Wh).max() <= k and np.abs(p.Wx).max() <= k
    assert np.abs(p.b).max() <= 2 * k and np.abs(p.b).max() > k  # the sum of two draws
    # the variance of U(-k,k) is k^2/3; of the sum of two, 2k^2/3
    assert abs(p.Wh.var() / (k * k / 3) - 1) < 0.05
    assert abs(p.b.var() / (2 * k * k / 3) - 1) < 0.2
    q = hd.init_lstm(D, H, np.random.default_rng(0), dtype=np.float64, scheme="forget-bias-1")
    np.testing.assert_allclose(q.b[H:2 * H], p.b[H:2 * H] + 1)
    r = hd.init_lstm(D, H, np.random.default_rng(0), dtype=np.float64)
    np.testing.assert_array_equal(r.Wh, p.Wh)
    s = hd.init_lstm(D, H, np.random.default_rng(1), dtype=np.float64)
    assert not np.array_equal(s.Wh, p.Wh)


def test_gate_slices_order():
    sl = hd.gate_slices(3)
    assert list(sl) == ["i", "f", "o", "g"]
    assert sl["o"] == slice(6, 9)
