"""The step backward: each chain-rule step against its formula, and dL/da_t against finite differences."""

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd
from hdetach_np import lstm as lstm_module
from hdetach_np.gradcheck import numerical_gradient, rel_error

TOL = 1e-6


def _step(seed, N=5, D=3, H=7):
    rng, params, x, h0, c0 = make_problem(seed, 1, N, D, H)
    _, _, sc = hd.lstm_step_forward(x[0], h0, c0, params)
    return rng, params, x[0], h0, c0, sc


def test_split_gates_gives_views_in_gate_order():
    a = np.arange(2 * 3 * 8.0).reshape(2, 3, 8)  # (..., 4H) with H = 2
    i, f, o, g = hd.split_gates(a)
    for k, (name, v) in enumerate(zip(hd.GATES, (i, f, o, g))):
        np.testing.assert_array_equal(v, a[..., 2 * k:2 * (k + 1)], err_msg=name)
        assert np.shares_memory(v, a)
    with pytest.raises(ValueError, match=r"expected an array of shape \(\.\.\., 4H\), got \(2, 3, 7\)"):
        hd.split_gates(a[..., :7])


def test_cell_backward_matches_the_derivation():
    """dL/da_t = [dc~ g i (1-i), dc~ c_{t-1} f (1-f), dh tanh(c_t) o (1-o), dc~ i (1-g^2)] and
    dL/dc_{t-1} = dc~ f, with dc~ = dc + dh o (1 - tanh(c_t)^2), written out here independently."""
    rng, _, _, _, _, sc = _step(22)
    dh, dc = rng.standard_normal((2, 5, 7))
    i, f, o, g = (sc.gates[:, k * 7:(k + 1) * 7] for k in range(4))
    dc_all = dc + dh * o * (1 - sc.tanh_c ** 2)
    want = np.concatenate([dc_all * g * i * (1 - i), dc_all * sc.c_prev * f * (1 - f),
                           dh * sc.tanh_c * o * (1 - o), dc_all * i * (1 - g ** 2)], axis=1)
    for out in (np.empty((5, 28)), lstm_module.unit_major(5, 28, np.float64)):
        dc_prev = hd.lstm_cell_backward(dh, dc, sc.gates, sc.tanh_c, sc.c_prev, out)
        np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(dc_prev, dc_all * f, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scales", [(1.0, 1.0), (0.3, 0.6), ("per-unit", "per-example")])
def test_step_backward_gradcheck(seed, scales):
    """Every output of `lstm_step_backward`, dL/da_t included, against centred differences (float64).

    The loss is L = sum(G_h h_t) + sum(G_c c_t). An edge scale s multiplies the true derivative
    with respect to h_prev (c_prev) by s."""
    rng, params, x, h_prev, c_prev, sc = _step(seed)
    N, H = h_prev.shape
    G_h, G_c = rng.standard_normal((2, N, H))
    shapes = {"per-unit": (N, H), "per-example": (N,)}
    h_scale, c_scale = (rng.uniform(0.2, 0.9, size=shapes[s]) if isinstance(s, str) else s for s in scales)
    grads = hd.lstm_step_backward(G_h, G_c, sc, h_scale=h_scale, c_scale=c_scale)

    def loss():
        h, c, _ = hd.lstm_step_forward(x, h_prev, c_prev, params)
        return float(np.sum(G_h * h) + np.sum(G_c * c))

    def factor(s):
        s = np.asarray(s)
        return s[:, None] if s.ndim == 1 else s

    want = {"x": 1, "h_prev": factor(h_scale), "c_prev": factor(c_scale), "Wx": 1, "Wh": 1, "b": 1}
    arrays = {"x": x, "h_prev": h_prev, "c_prev": c_prev, "Wx": params.Wx, "Wh": params.Wh, "b": params.b}
    for name, s in want.items():
        err = rel_error(getattr(grads, name), s * numerical_gradient(loss, arrays[name]))
        assert err < TOL, (name, err)
    # dL/da_t: the same loss as a function of the pre-activations a_t
    a = x @ params.Wx + h_prev @ params.Wh + params.b

    def loss_of_a():
        gates = lstm_module.activate_gates(a.copy())
        c, tanh_c, h = np.empty((3, N, H))
        lstm_module.cell_forward(gates, c_prev, c, tanh_c, h)
        return float(np.sum(G_h * h) + np.sum(G_c * c))

    err = rel_error(grads.a, numerical_gradient(loss_of_a, a))
    assert err < TOL, ("a", err)
    # and the weight gradients are the pre-activation gradient carried through a_t = x Wx + h Wh + b
    np.testing.assert_allclose(grads.b, grads.a.sum(axis=0), rtol=1e-13)
