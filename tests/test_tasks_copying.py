import numpy as np
import pytest

from hdetach_np.tasks import copying_data


def test_copying_layout():
    T, n = 7, 5
    x, y = copying_data(n, T, np.random.default_rng(0))
    assert x.shape == (T + 20, n, 1) and x.dtype == np.float32 and y.shape == (T + 20, n)
    tokens = x[:10, :, 0]
    assert tokens.min() >= 1 and tokens.max() <= 8
    np.testing.assert_array_equal(x[10:10 + T - 1], 0)
    np.testing.assert_array_equal(x[10 + T - 1], 9)
    np.testing.assert_array_equal(x[10 + T:], 0)
    np.testing.assert_array_equal(y[:T + 10], 0)
    np.testing.assert_array_equal(y[T + 10:], tokens.astype(int))


def test_copying_one_hot_and_determinism():
    x1, y1 = copying_data(4, 3, np.random.default_rng(1), one_hot=True, dtype=np.float64)
    x2, _ = copying_data(4, 3, np.random.default_rng(1))
    assert x1.shape == (23, 4, 10) and np.all(x1.sum(-1) == 1)
    np.testing.assert_array_equal(x1.argmax(-1), x2[..., 0])


@pytest.mark.parametrize("kw,match", [(dict(delay=0), "delay must be"), (dict(n=-1), "n must be"), (dict(rng=3), "Generator")])
def test_copying_bad_input(kw, match):
    args = dict(n=2, delay=3, rng=np.random.default_rng(0))
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        copying_data(**args)
