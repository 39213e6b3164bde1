"""The mean of h-detach gradients is the gradient with lambda = 1 - p on every h-edge (float64)."""

import itertools

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd


def _problem(seed=0, T=5, N=3, D=2, H=3):
    rng, params, x, h0, c0 = make_problem(seed, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    return rng, cache, rng.standard_normal((T, N, H))


def _flat(g):
    return np.concatenate([g.Wx.ravel(), g.Wh.ravel(), g.b.ravel()])


@pytest.mark.parametrize("p", [0.25, 0.5, 0.9])
def test_exact_average_over_every_mask(p):
    """Per-step masks of a 5-step sequence: the probability-weighted sum over all 2^5 masks."""
    rng, cache, dhs = _problem()
    T = cache.x.shape[0]
    mean = 0
    for keep in itertools.product((0.0, 1.0), repeat=T):
        keep = np.array(keep)
        prob = np.prod(np.where(keep == 1, 1 - p, p))
        mean = mean + prob * _flat(hd.lstm_backward(dhs, cache, h_scale=keep))
    expected = _flat(hd.expected_h_detach_gradient(dhs, cache, p))
    np.testing.assert_allclose(mean, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("per", ["step", "unit"])
def test_sample_mean_approaches_g_of_one_minus_p(per):
    """A statistical test with a fixed seed: each coordinate of the mean of M sampled gradients lies
    within 5 standard errors (from the sample variance) of g(1 - p), and the mean squared z-score
    is near 1. The same statistic rejects the plain gradient g(1), so the test can fail."""
    rng, cache, dhs = _problem(seed=1, T=6)
    T, N, _ = cache.x.shape
    H = dhs.shape[-1]
    p, M = 0.4, 400
    samples = np.stack([
        _flat(hd.lstm_backward(dhs, cache, h_scale=hd.sample_h_detach_mask(T, p, rng, per=per, N=N, H=H, dtype=np.float64)))
        for _ in range(M)
    ])
    mean, se = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(M)
    target = _flat(hd.expected_h_detach_gradient(dhs, cache, p))
    assert np.all(se > 0)
    z = (mean - target) / se
    assert np.max(np.abs(z)) < 5, np.max(np.abs(z))
    assert np.mean(z ** 2) < 2
    z_plain = (mean - _flat(hd.lstm_backward(dhs, cache))) / se
    assert np.max(np.abs(z_plain)) > 10
