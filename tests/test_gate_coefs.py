"""The cell backward split into gate coefficients and their application (float64)."""

import numpy as np

import hdetach_np as hd
from hdetach_np import lstm as lstm_module

from conftest import make_problem


def _step(seed):
    rng, params, x, h0, c0 = make_problem(seed, 1, 5, 3, 7)
    _, _, sc = hd.lstm_step_forward(x[0], h0, c0, params)
    return rng, sc


def test_one_set_of_coefficients_serves_several_streams_bit_for_bit():
    """Two adjoint streams through one step with shared coefficients give exactly what two
    `_gate_grads` calls give, and the application leaves its inputs alone."""
    rng, sc = _step(21)
    H = 7
    streams = [tuple(rng.standard_normal((2, 5, H))) for _ in range(2)]
    coef = lstm_module._gate_coefs(sc.gates, sc.tanh_c, sc.c_prev)
    snapshot = [a.copy() for a in (*coef, sc.gates, sc.tanh_c, sc.c_prev)]
    for dh, dc in streams:
        da_ref = np.empty((5, 4 * H))
        dc_prev_ref = lstm_module._gate_grads(dh, dc, sc.gates, sc.tanh_c, sc.c_prev, da_ref)
        da = np.empty((5, 4 * H))
        dc_buf = dc.copy()
        dc_prev = lstm_module._apply_gate_coefs(dh, dc_buf, coef, sc.gates[:, H:2 * H], da, dc_buf)
        assert dc_prev is dc_buf
        np.testing.assert_array_equal(da, da_ref)
        np.testing.assert_array_equal(dc_prev, dc_prev_ref)
    for before, after in zip(snapshot, (*coef, sc.gates, sc.tanh_c, sc.c_prev)):
        np.testing.assert_array_equal(before, after)


def test_coefficients_match_their_definition():
    """K = [s'(a_i) g, s'(a_f) c_{t-1}, s'(a_o) tanh(c_t), tanh'(a_g) i], kc = o (1 - tanh(c_t)^2),
    also when written into unit-major arrays."""
    _, sc = _step(22)
    H = 7
    i, f, o, g = (sc.gates[:, k * H:(k + 1) * H] for k in range(4))
    K_expected = np.concatenate(
        [i * (1 - i) * g, f * (1 - f) * sc.c_prev, o * (1 - o) * sc.tanh_c, (1 - g ** 2) * i], axis=1
    )
    kc_expected = o * (1 - sc.tanh_c ** 2)
    for out in (None, lstm_module._gate_coef_work(5, H, np.float64)):
        K, kc = lstm_module._gate_coefs(sc.gates, sc.tanh_c, sc.c_prev, out)
        np.testing.assert_allclose(K, K_expected, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(kc, kc_expected, rtol=1e-13, atol=1e-15)
