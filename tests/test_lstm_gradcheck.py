"""Finite-difference checks of the hand-derived BPTT (float64, relative error < 1e-6)."""

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd
from hdetach_np.gradcheck import numerical_gradient, rel_error
from hdetach_np.teaching.check import check_case, run_check

TOL = 1e-6
SIZES = [  # (T, N, D, H)
    (1, 1, 1, 1),
    (1, 3, 2, 4),
    (4, 2, 3, 5),
    (7, 3, 1, 3),
]


def _loss_problem(seed, T, N, D, H, K=3):
    rng, params, x, h0, c0 = make_problem(seed, T, N, D, H)
    readout = hd.init_linear(H, K, rng, dtype=np.float64)
    targets = rng.integers(0, K, size=(T, N))
    rc = rng.standard_normal((N, H))
    return rng, params, readout, x, h0, c0, targets, rc


def _assert_rows(rows):
    bad = [(r.case, r.name, r.error) for r in rows if not r.error < TOL]
    assert not bad, bad


@pytest.mark.parametrize("T,N,D,H", SIZES)
@pytest.mark.parametrize("seed", [0, 1])
def test_plain_gradients(seed, T, N, D, H):
    _, params, readout, x, h0, c0, targets, rc = _loss_problem(seed, T, N, D, H)
    _assert_rows(check_case("plain", params, readout, x, h0, c0, targets, rc))


@pytest.mark.parametrize("T,N,D,H", SIZES)
@pytest.mark.parametrize("per", ["step", "example", "unit"])
def test_h_detach_mask_gradients(T, N, D, H, per):
    rng, params, readout, x, h0, c0, targets, rc = _loss_problem(3, T, N, D, H)
    mask = hd.sample_h_detach_mask(T, 0.5, rng, per=per, N=N, H=H, dtype=np.float64)
    _assert_rows(check_case(per, params, readout, x, h0, c0, targets, rc, h_scale=mask))


@pytest.mark.parametrize("T,N,D,H", SIZES)
def test_c_detach_mask_gradients(T, N, D, H):
    rng, params, readout, x, h0, c0, targets, rc = _loss_problem(4, T, N, D, H)
    mask = hd.sample_h_detach_mask(T, 0.5, rng, dtype=np.float64)
    _assert_rows(check_case("c", params, readout, x, h0, c0, targets, rc, c_scale=mask))


@pytest.mark.parametrize("shape_kind", ["step", "example", "unit"])
def test_fractional_scales(shape_kind):
    T, N, D, H = 5, 3, 2, 4
    rng, params, readout, x, h0, c0, targets, rc = _loss_problem(5, T, N, D, H)
    shape = {"step": (T,), "example": (T, N), "unit": (T, N, H)}[shape_kind]
    hsc = rng.uniform(0.1, 0.9, size=shape)
    csc = rng.uniform(0.1, 0.9, size=shape)
    _assert_rows(check_case("frac", params, readout, x, h0, c0, targets, rc, h_scale=hsc, c_scale=csc))


def test_a_wrong_gradient_is_caught():
    """The check is not vacuous: the masked backward against the unmasked loss must fail."""
    T, N, D, H = 5, 2, 2, 3
    _, params, readout, x, h0, c0, targets, rc = _loss_problem(6, T, N, D, H)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    logits, lc = hd.linear_forward(readout, hs)
    _, dlogits = hd.softmax_cross_entropy(logits, targets)
    mask = np.array([1, 0, 1, 0, 1], dtype=np.float64)
    grads = hd.lstm_backward(hd.linear_backward(dlogits, lc).h, cache, h_scale=mask)

    def plain_loss():
        return hd.softmax_cross_entropy(hd.linear_forward(readout, hd.lstm_forward(params, x, h0, c0)[0])[0], targets)[0]

    assert rel_error(grads.Wh, numerical_gradient(plain_loss, params.Wh)) > 1e-3


def test_dhT_and_dcT_gradients(problem):
    T, N, D, H = 4, 2, 3, 3
    rng, params, x, h0, c0 = problem(7, T, N, D, H)
    rh, rc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    grads = hd.lstm_backward(None, cache, dhT=rh, dcT=rc)

    def loss():
        hs_, cache_ = hd.lstm_forward(params, x, h0, c0)
        return float(np.sum(rh * hs_[-1]) + np.sum(rc * cache_.cs[-1]))

    for name in ("Wx", "Wh", "b"):
        assert rel_error(getattr(grads, name), numerical_gradient(loss, getattr(params, name))) < TOL
    for name, arr in (("x", x), ("h0", h0), ("c0", c0)):
        assert rel_error(getattr(grads, name), numerical_gradient(loss, arr)) < TOL


def test_run_check_passes():
    rows = run_check(seed=2)
    assert len(rows) == 32
    _assert_rows(rows)


def test_reference_forward_matches_fast_forward(problem):
    _, params, x, h0, c0 = problem(8, 6, 3, 2, 4)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    mask = np.array([0, 1, 0, 0, 1, 1.0])
    hs_ref, cs_ref, _ = hd.lstm_forward_steps(params, x, h0, c0, h_scale=mask, c_scale=mask[::-1], anchor=cache)
    cT = cs_ref[-1]
    np.testing.assert_allclose(hs_ref, hs, rtol=0, atol=1e-14)
    np.testing.assert_allclose(cT, cache.cs[-1], rtol=0, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1])
def test_backward_steps_gradcheck(seed):
    """`lstm_backward_steps` (the loop over the step functions) against centred differences, with
    a fractional h_scale and an h-detach c_scale; the loss is linear in every h_t and in c_T."""
    T, N, D, H = 4, 3, 2, 3
    rng, params, x, h0, c0 = make_problem(30 + seed, T, N, D, H)
    dhs, dcT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))
    h_scale, c_scale = rng.uniform(0.2, 0.9, size=(T, N)), np.array([1.0, 0.0, 1.0, 1.0])
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    _, _, caches = hd.lstm_forward_steps(params, x, h0, c0)
    grads, steps = hd.lstm_backward_steps(dhs, caches, h_scale=h_scale, c_scale=c_scale, dcT=dcT)
    assert len(steps) == T

    def loss():
        hs_, cs_, _ = hd.lstm_forward_steps(params, x, h0, c0, h_scale=h_scale, c_scale=c_scale, anchor=cache)
        return float(np.sum(dhs * hs_) + np.sum(dcT * cs_[-1]))

    for name, arr in (("Wx", params.Wx), ("Wh", params.Wh), ("b", params.b), ("x", x), ("h0", h0), ("c0", c0)):
        assert rel_error(getattr(grads, name), numerical_gradient(loss, arr)) < TOL, name
