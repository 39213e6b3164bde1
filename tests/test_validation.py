"""Bad input gets a clear error naming the argument, what was given and what was expected."""

import numpy as np
import pytest

import hdetach_np as hd


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    params = hd.init_lstm(1, 4, rng, dtype=np.float32)
    x = rng.standard_normal((6, 3, 1)).astype(np.float32)
    return params, x


def test_x_wrong_rank(setup):
    params, _ = setup
    with pytest.raises(ValueError, match=r"expected x of shape \(T, N, D=1\), got \(784, 100\)"):
        hd.lstm_forward(params, np.zeros((784, 100), np.float32))


def test_x_wrong_input_size(setup):
    params, _ = setup
    with pytest.raises(ValueError, match=r"D=1\), got \(5, 2, 3\)"):
        hd.lstm_forward(params, np.zeros((5, 2, 3), np.float32))


def test_dtype_mix_is_refused(setup):
    params, x = setup
    with pytest.raises(TypeError, match="x has dtype float64 but the parameters are float32"):
        hd.lstm_forward(params, x.astype(np.float64))
    with pytest.raises(TypeError, match="h0"):
        hd.lstm_forward(params, x, h0=np.zeros((3, 4)))


def test_non_finite_input(setup):
    params, x = setup
    x = x.copy()
    x[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN/inf"):
        hd.lstm_forward(params, x)
    with pytest.raises(ValueError, match="c0 contains"):
        hd.lstm_forward(params, setup[1], c0=np.full((3, 4), np.inf, np.float32))


def test_h0_wrong_shape(setup):
    params, x = setup
    with pytest.raises(ValueError, match=r"expected h0 of shape \(N=3, H=4\), got \(4, 3\)"):
        hd.lstm_forward(params, x, h0=np.zeros((4, 3), np.float32))


@pytest.mark.parametrize("name", ["h_scale", "c_scale"])
@pytest.mark.parametrize("value,err,match", [
    (np.full(6, 1.5), ValueError, r"values must be in \[0, 1\], got 1.5"),
    (np.full(6, -0.5), ValueError, r"in \[0, 1\]"),
    (np.full(6, np.nan), ValueError, r"in \[0, 1\]"),
    (np.ones(5), ValueError, r"expected .* as a number or of shape \(T=6,\), \(T=6, N=3\) or \(T=6, N=3, H=4\), got \(5,\)"),
    (1.5, ValueError, r"values must be in \[0, 1\], got 1.5"),
    (np.ones((6, 4)), ValueError, "got \\(6, 4\\)"),  # (T, H) must not broadcast silently
    (np.array(["a"] * 6), TypeError, "numeric"),
])
def test_bad_scales(setup, name, value, err, match):
    params, x = setup
    hs, cache = hd.lstm_forward(params, x)
    with pytest.raises(err, match=match):
        hd.lstm_backward(np.zeros_like(hs), cache, **{name: value})


def test_bad_dhs(setup):
    params, x = setup
    hs, cache = hd.lstm_forward(params, x)
    with pytest.raises(ValueError, match=r"expected dhs of shape \(T=6, N=3, H=4\)"):
        hd.lstm_backward(np.zeros((6, 3, 5), np.float32), cache)
    with pytest.raises(TypeError, match="dhs has dtype float64"):
        hd.lstm_backward(np.zeros((6, 3, 4)), cache)
    with pytest.raises(TypeError, match="LSTMCache"):
        hd.lstm_backward(np.zeros_like(hs), (1, 2, 3))


def test_bad_params():
    with pytest.raises(ValueError, match=r"expected Wh of shape \(H, 4H\)"):
        hd.LSTMParams(np.zeros((2, 8)), np.zeros((2, 7)), np.zeros(8))
    with pytest.raises(TypeError, match="share one dtype"):
        hd.LSTMParams(np.zeros((2, 8)), np.zeros((2, 8), np.float32), np.zeros(8, np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        hd.LSTMParams(np.zeros((2, 8), int), np.zeros((2, 8), int), np.zeros(8, int))
    with pytest.raises(TypeError, match="LSTMParams"):
        hd.lstm_forward({"Wx": 1}, np.zeros((1, 1, 1)))


@pytest.mark.parametrize("kw,err,match", [
    (dict(scheme="xavier"), ValueError, "unknown scheme 'xavier'"),
    (dict(rng=np.random.RandomState(0)), TypeError, "Generator"),
    (dict(dtype=np.float16), TypeError, "float32 or float64"),
    (dict(hidden_size=0), ValueError, "hidden_size must be a positive integer, got 0"),
])
def test_bad_init(kw, err, match):
    args = dict(input_size=2, hidden_size=3, rng=np.random.default_rng(0))
    args.update(kw)
    with pytest.raises(err, match=match):
        hd.init_lstm(**args)


def test_step_scale_shape():
    rng = np.random.default_rng(0)
    params = hd.init_lstm(2, 3, rng, dtype=np.float64)
    h, c, cache = hd.lstm_step_forward(np.zeros((4, 2)), np.zeros((4, 3)), np.zeros((4, 3)), params)
    with pytest.raises(ValueError, match=r"expected h_scale of shape \(N=4,\)"):
        hd.lstm_step_backward(np.ones((4, 3)), np.zeros((4, 3)), cache, h_scale=np.ones(3))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        hd.lstm_step_backward(np.ones((4, 3)), np.zeros((4, 3)), cache, c_scale=2.0)


@pytest.mark.parametrize("name", ["Wx", "Wh", "b"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_params_reject_non_finite_values_in_every_array(setup, name, bad):
    params, _ = setup
    arrays = {k: v.copy() for k, v in params.as_dict().items()}
    arrays[name].flat[3] = bad
    with pytest.raises(ValueError, match=f"^{name} contains 1 NaN/inf value\\(s\\); expected finite numbers$"):
        hd.LSTMParams(**arrays)


@pytest.mark.parametrize("name", ["h_scale", "c_scale"])
def test_a_number_is_an_edge_scale_for_every_step(setup, name):
    """A number means the same factor at every step, in every function that takes edge scales."""
    params, x = setup
    T = x.shape[0]
    hs, cache = hd.lstm_forward(params, x)
    dhs = np.ones_like(hs)
    same = {name: np.full(T, 0.5)}
    for fn in (hd.lstm_backward, hd.gradient_paths, hd.temporal_credit):
        a, b = fn(dhs, cache, **{name: 0.5}), fn(dhs, cache, **same)
        if fn is hd.lstm_backward:
            np.testing.assert_array_equal(a.Wh, b.Wh)
        elif fn is hd.gradient_paths:
            np.testing.assert_array_equal(a.h.Wh, b.h.Wh)
        else:
            np.testing.assert_array_equal(a.dh["h"], b.dh["h"])
    hs_s, _, caches = hd.lstm_forward_steps(params, x)
    a, _ = hd.lstm_backward_steps(dhs, caches, **{name: 0.5})
    b, _ = hd.lstm_backward_steps(dhs, caches, **same)
    np.testing.assert_array_equal(a.Wh, b.Wh)
