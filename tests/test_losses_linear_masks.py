import numpy as np
import pytest

import hdetach_np as hd
from hdetach_np.gradcheck import numerical_gradient, rel_error


@pytest.mark.parametrize("steps", ["all", "last", "mask_t", "mask_tn"])
def test_cross_entropy_gradient(steps):
    rng = np.random.default_rng(0)
    T, N, K = 4, 3, 5
    logits = rng.standard_normal((T, N, K))
    targets = rng.integers(0, K, size=(T, N))
    sel = {"all": "all", "last": "last", "mask_t": np.array([True, False, True, False]),
           "mask_tn": rng.random((T, N)) < 0.5}[steps]
    if steps == "mask_tn":
        sel[0, 0] = True
    loss, d = hd.softmax_cross_entropy(logits, targets, steps=sel)
    num = numerical_gradient(lambda: hd.softmax_cross_entropy(logits, targets, steps=sel)[0], logits)
    assert rel_error(d, num) < 1e-8


def test_cross_entropy_value_and_stability():
    logits = np.array([[[1000.0, 0.0, -1000.0]]])
    loss, d = hd.softmax_cross_entropy(logits, np.array([[1]]))
    assert np.isclose(loss, 1000.0) and np.all(np.isfinite(d))
    uniform = np.zeros((2, 3, 4))
    loss, _ = hd.softmax_cross_entropy(uniform, np.zeros((2, 3), dtype=int))
    assert np.isclose(loss, np.log(4))
    # "last" averages over the N examples of the last step only
    logits = np.random.default_rng(1).standard_normal((3, 2, 4))
    t = np.array([[0, 1], [2, 3], [1, 1]])
    l_last, _ = hd.softmax_cross_entropy(logits, t, steps="last")
    l_one, _ = hd.softmax_cross_entropy(logits[-1:], t[-1:], steps="all")
    assert np.isclose(l_last, l_one)


def test_cross_entropy_keeps_float32():
    logits = np.zeros((2, 2, 3), np.float32)
    _, d = hd.softmax_cross_entropy(logits, np.zeros((2, 2), int))
    assert d.dtype == np.float32


def test_mse_gradient():
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    for steps in ("all", "last"):
        loss, d = hd.mse_loss(pred, target, steps=steps)
        num = numerical_gradient(lambda steps=steps: hd.mse_loss(pred, target, steps=steps)[0], pred)
        assert rel_error(d, num) < 1e-8
    loss, _ = hd.mse_loss(pred, target, steps="last")
    assert np.isclose(loss, np.mean((pred[-1] - target[-1]) ** 2))


@pytest.mark.parametrize("bad,err", [
    (dict(targets=np.zeros((2, 2))), TypeError),
    (dict(targets=np.full((2, 2), 4)), ValueError),
    (dict(targets=np.zeros((3, 2), int)), ValueError),
    (dict(steps="first"), ValueError),
    (dict(steps=np.zeros(2, bool)), ValueError),
    (dict(steps=np.ones(5, bool)), ValueError),
    (dict(logits=np.full((2, 2, 3), np.nan)), ValueError),
])
def test_cross_entropy_bad_input(bad, err):
    kw = dict(logits=np.zeros((2, 2, 3)), targets=np.zeros((2, 2), int), steps="all")
    kw.update(bad)
    with pytest.raises(err):
        hd.softmax_cross_entropy(**kw)


def test_linear_gradients():
    rng = np.random.default_rng(3)
    lp = hd.init_linear(4, 3, rng, dtype=np.float64)
    h = rng.standard_normal((5, 2, 4))
    r = rng.standard_normal((5, 2, 3))
    y, cache = hd.linear_forward(lp, h)
    g = hd.linear_backward(r, cache)
    f = lambda: float(np.sum(r * hd.linear_forward(lp, h)[0]))
    for arr, grad in ((lp.V, g.V), (lp.d, g.d), (h, g.h)):
        assert rel_error(grad, numerical_gradient(f, arr)) < 1e-8
    k = 1 / np.sqrt(4)
    assert np.abs(lp.V).max() <= k and np.abs(lp.d).max() <= k


def test_linear_bad_input():
    lp = hd.init_linear(4, 3, np.random.default_rng(0), dtype=np.float64)
    with pytest.raises(ValueError, match="H=4"):
        hd.linear_forward(lp, np.zeros((2, 5)))
    with pytest.raises(TypeError, match="float32"):
        hd.linear_forward(lp, np.zeros((2, 4), np.float32))


@pytest.mark.parametrize("per,shape", [("step", (50,)), ("example", (50, 7)), ("unit", (50, 7, 3))])
def test_mask_shapes_dtype_and_determinism(per, shape):
    m = hd.sample_h_detach_mask(50, 0.3, np.random.default_rng(0), per=per, N=7, H=3)
    assert m.shape == shape and m.dtype == np.float32
    assert set(np.unique(m)) <= {0.0, 1.0}
    m2 = hd.sample_h_detach_mask(50, 0.3, np.random.default_rng(0), per=per, N=7, H=3)
    np.testing.assert_array_equal(m, m2)
    m3 = hd.sample_h_detach_mask(50, 0.3, np.random.default_rng(1), per=per, N=7, H=3)
    assert not np.array_equal(m, m3)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.9])
def test_mask_frequency_within_binomial_tolerance(p):
    n = 20000
    m = hd.sample_h_detach_mask(n, p, np.random.default_rng(42), dtype=np.float64)
    zeros = n - m.sum()
    sd = np.sqrt(n * p * (1 - p))
    assert abs(zeros - n * p) < 4 * sd  # p is the probability of DETACHING


def test_mask_extremes():
    rng = np.random.default_rng(0)
    assert hd.sample_h_detach_mask(100, 0.0, rng).all()
    assert not hd.sample_h_detach_mask(100, 1.0, rng).any()


@pytest.mark.parametrize("kw,err,match", [
    (dict(p=1.5), ValueError, r"p must be in \[0, 1\], got 1.5"),
    (dict(p=-0.1), ValueError, "p must be in"),
    (dict(p=float("nan")), ValueError, "p must be in"),
    (dict(p="a lot"), TypeError, "p must be a number"),
    (dict(per="batch"), ValueError, "unknown per 'batch'"),
    (dict(per="example"), ValueError, "needs N"),
    (dict(rng=0), TypeError, "numpy.random.Generator"),
    (dict(dtype=np.int32), TypeError, "float32 or float64"),
])
def test_mask_bad_input(kw, err, match):
    args = dict(T=5, p=0.5, rng=np.random.default_rng(0))
    args.update(kw)
    with pytest.raises(err, match=match):
        hd.sample_h_detach_mask(**args)
