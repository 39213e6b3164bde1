"""The forward-mode recursion with explicit A_t, B_t (float64): against finite differences of one
step, against the reverse mode for every weight, and the Jacobian products."""

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd
from hdetach_np.gradcheck import numerical_jacobian, rel_error
from hdetach_np.paths.jacobians import flatten_params, num_params, unflatten_params


def _cache(seed=0, T=5, N=2, D=2, H=3):
    rng, params, x, h0, c0 = make_problem(seed, T, N, D, H)
    return rng, params, x, h0, c0, hd.lstm_forward(params, x, h0, c0)[1]


@pytest.mark.parametrize("t", [0, 2, 4])
def test_A_B_E_are_finite_difference_jacobians_of_one_step(t):
    rng, params, x, h0, c0, cache = _cache()
    N, H = h0.shape
    J = hd.step_jacobians(cache, t)
    h_prev, c_prev = cache.h[t].copy(), cache.c[t].copy()
    theta = flatten_params(params)

    def step():
        p = unflatten_params(theta, params.input_size, H)
        h, c, _ = hd.lstm_step_forward(cache.x[t], h_prev, c_prev, p)
        return np.concatenate([h, c], axis=1)  # (N, 2H): s_t = [h_t ; c_t]

    dh = numerical_jacobian(step, h_prev).reshape(N, 2 * H, N, H)
    dc = numerical_jacobian(step, c_prev).reshape(N, 2 * H, N, H)
    dth = numerical_jacobian(step, theta).reshape(N, 2 * H, -1)
    for n in range(N):
        # B holds ds_t/dh_{t-1}, A holds ds_t/dc_{t-1}; the other half of each is zero
        assert rel_error(J.B[n, :, :H], dh[n, :, n]) < 1e-8
        assert rel_error(J.A[n, :, H:], dc[n, :, n]) < 1e-8
        assert np.all(J.A[n, :, :H] == 0) and np.all(J.B[n, :, H:] == 0)
        for m in range(N):  # examples do not interact
            if m != n:
                assert np.abs(dh[n, :, m]).max() < 1e-9
        assert rel_error(J.E[n], dth[n]) < 1e-8
    assert J.E.shape == (N, 2 * H, num_params(params))


def test_blocks_follow_the_paper_formulas():
    """Psi~ = diag(c f(1-f)) Wh_f^T + diag(g i(1-i)) Wh_i^T + diag(i(1-g^2)) Wh_g^T,
    Psi = diag(tau o(1-o)) Wh_o^T + diag(o(1-tau^2)) Psi~, k = o(1-tau^2) f."""
    _, params, *_, cache = _cache(seed=3)
    H = params.hidden_size
    Wi, Wf, Wo, Wg = (params.Wh[:, k * H:(k + 1) * H] for k in range(4))
    for t in (0, 3):
        J = hd.step_jacobians(cache, t)
        for n in range(cache.x.shape[1]):
            i, f, o, g = (cache.gates[t, n, k * H:(k + 1) * H] for k in range(4))
            tau, c_prev = cache.tanh_c[t, n], cache.c[t, n]
            psi_t = np.diag(c_prev * f * (1 - f)) @ Wf.T + np.diag(g * i * (1 - i)) @ Wi.T + np.diag(i * (1 - g * g)) @ Wg.T
            psi = np.diag(tau * o * (1 - o)) @ Wo.T + np.diag(o * (1 - tau * tau)) @ psi_t
            np.testing.assert_allclose(J.psi_tilde[n], psi_t, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(J.psi[n], psi, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(J.k[n], o * (1 - tau * tau) * f, rtol=1e-12)
            np.testing.assert_allclose(np.diag(J.A[n, H:, H:]), f, rtol=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_forward_mode_equals_reverse_mode_for_every_weight(lam):
    rng, params, x, h0, c0, cache = _cache(seed=1, T=6, N=2, D=2, H=3)
    T, N, _ = x.shape
    H = params.hidden_size
    dhs, dhT, dcT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    fwd = hd.forward_mode(cache, h_scale=lam).gradient(dhs, dhT, dcT)
    rev = hd.lstm_backward(dhs, cache, h_scale=np.full(T, lam), dhT=dhT, dcT=dcT)
    for name in ("Wx", "Wh", "b"):
        np.testing.assert_allclose(getattr(fwd, name), getattr(rev, name), rtol=1e-10, atol=1e-13)
    if lam == 0.0:  # lambda = 0 is the cell part
        cell = hd.gradient_paths(dhs, cache, dhT=dhT, dcT=dcT).cell
        np.testing.assert_allclose(fwd.Wh, cell.Wh, rtol=1e-10, atol=1e-13)


def test_forward_mode_with_per_unit_scales_and_sensitivities():
    rng, params, x, h0, c0, cache = _cache(seed=2, T=4, N=2, D=1, H=2)
    T, N, _ = x.shape
    H = params.hidden_size
    hs_, cs_ = rng.uniform(0.2, 0.9, (T, N, H)), rng.uniform(0.2, 0.9, (T, N))
    dhs = rng.standard_normal((T, N, H))
    fwd = hd.forward_mode(cache, h_scale=hs_, c_scale=cs_).gradient(dhs)
    rev = hd.lstm_backward(dhs, cache, h_scale=hs_, c_scale=cs_)
    for name in ("Wx", "Wh", "b"):
        np.testing.assert_allclose(getattr(fwd, name), getattr(rev, name), rtol=1e-10, atol=1e-13)
    # with lambda = 1 the sensitivities dh_t/dtheta are the plain derivatives: finite differences
    theta = flatten_params(params)
    sens = hd.forward_mode(cache)

    def hs_of_theta():
        return hd.lstm_forward(unflatten_params(theta, 1, H), x, h0, c0)[0]

    num = numerical_jacobian(hs_of_theta, theta).reshape(T, N, H, -1)
    assert rel_error(sens.dh, num) < 1e-8


def test_jacobian_products():
    rng, params, x, h0, c0, cache = _cache(seed=4, T=6, N=2, D=1, H=3)
    T, N, _ = x.shape
    H = params.hidden_size
    jp = hd.jacobian_products(cache, lambdas=(0.0, 0.5, 1.0))
    np.testing.assert_array_equal(jp.lags, np.arange(1, T + 1))
    # lambda = 0 is the pure cell part; the h part of lambda = 0 is zero
    np.testing.assert_allclose(jp.fro[0], jp.cell_fro, rtol=1e-12)
    np.testing.assert_allclose(jp.spec[0], jp.cell_spec, rtol=1e-12)
    assert np.all(jp.h_fro[0] == 0) and np.all(jp.h_fro[2] > 0)
    # the full product over the sequence at lambda = 1 is d(h_T, c_T) / d(h_0, c_0): finite differences
    h0c, c0c = h0.copy(), c0.copy()

    def final_state():
        _, cc = hd.lstm_forward(params, x, h0c, c0c)
        return np.concatenate([cc.h[-1], cc.c[-1]], axis=1)

    Jh = numerical_jacobian(final_state, h0c).reshape(N, 2 * H, N, H)
    Jc = numerical_jacobian(final_state, c0c).reshape(N, 2 * H, N, H)
    full = np.stack([np.concatenate([Jh[n, :, n], Jc[n, :, n]], axis=1) for n in range(N)])
    assert abs(jp.fro[2, -1] - np.mean(np.linalg.norm(full, axis=(1, 2)))) < 1e-7 * jp.fro[2, -1]
    assert abs(jp.spec[2, -1] - np.mean(np.linalg.norm(full, ord=2, axis=(1, 2)))) < 1e-7 * jp.spec[2, -1]
    # chosen lags, an earlier end step, and no SVD
    jp2 = hd.jacobian_products(cache, lambdas=[1.0], end_step=T - 1, lags=[2, 5], spectral=False)
    np.testing.assert_allclose(jp2.fro[0], jp.fro[2, [1, 4]], rtol=1e-12)
    assert np.all(np.isnan(jp2.spec))
    assert hd.jacobian_products(cache, end_step=2).lags[-1] == 3


def test_numerical_jacobian_of_a_linear_map():
    rng = np.random.default_rng(0)
    M, v = rng.standard_normal((4, 3)), rng.standard_normal(3)
    np.testing.assert_allclose(numerical_jacobian(lambda: M @ v, v), M, rtol=1e-9)
    with pytest.raises(TypeError, match="float64"):
        numerical_jacobian(lambda: v, v.astype(np.float32))


def test_bad_inputs():
    rng, params, x, h0, c0, cache = _cache(T=4)
    T = 4
    with pytest.raises(ValueError, match=r"max_lag must be an integer in \[1, end_step \+ 1 = 4\]"):
        hd.jacobian_products(cache, max_lag=5)
    with pytest.raises(ValueError, match=r"max_lag must be an integer in \[1, end_step \+ 1 = 2\]"):
        hd.jacobian_products(cache, end_step=1, max_lag=3)
    with pytest.raises(ValueError, match="end_step must be an integer step"):
        hd.jacobian_products(cache, end_step=T)
    with pytest.raises(ValueError, match=r"lambdas must be in \[0, 1\]"):
        hd.jacobian_products(cache, lambdas=(0.5, 1.5))
    with pytest.raises(ValueError, match="lags must be integers"):
        hd.jacobian_products(cache, lags=[0, 2])
    with pytest.raises(ValueError, match="t must be an integer step"):
        hd.step_jacobians(cache, -1)
    with pytest.raises(ValueError, match="h_scale values must be in"):
        hd.forward_mode(cache, h_scale=2.0)
    with pytest.raises(TypeError, match="cache must be the LSTMCache"):
        hd.forward_mode(params)
    big_params = hd.init_lstm(1, 64, rng, dtype=np.float64)
    big = hd.lstm_forward(big_params, np.zeros((100, 10, 1)))[1]
    with pytest.raises(ValueError, match="use a smaller LSTM"):
        hd.forward_mode(big)
