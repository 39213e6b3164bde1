import numpy as np
import pytest

from hdetach_np.tasks import (
    adding_data,
    copying_accuracy_steps,
    copying_data,
    copying_sequences,
    copying_sets,
    copying_tokens,
    mnist_permutation,
    mnist_sequence_length,
    pixel_sequences,
    transfer_copying_data,
)


def test_copying_sets_are_train_then_valid_from_one_stream():
    train, valid = copying_sets(7, 3, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(train, copying_tokens(7, rng))
    np.testing.assert_array_equal(valid, copying_tokens(3, rng))
    assert train.shape == (10, 7) and train.min() >= 1 and train.max() <= 8


def test_copying_sequences_match_copying_data():
    x1, y1 = copying_data(6, 4, np.random.default_rng(2), one_hot=True)
    x2, y2 = copying_sequences(copying_tokens(6, np.random.default_rng(2)), 4, one_hot=True)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_copying_accuracy_steps_are_the_last_ten():
    m = copying_accuracy_steps(7)
    assert m.shape == (27,) and m.sum() == 10 and m[-10:].all()


def test_copying_sequences_bad_tokens():
    with pytest.raises(ValueError, match=r"tokens must be in \[1, 8\]"):
        copying_sequences(np.zeros((10, 2), dtype=int), 3)
    with pytest.raises(ValueError, match=r"shape \(10, n\)"):
        copying_sequences(np.ones((9, 2), dtype=int), 3)


def test_transfer_data_is_fresh_per_T_from_the_seed():
    xa, ya = transfer_copying_data(5, n=4, seed=555)
    xb, yb = transfer_copying_data(9, n=4, seed=555)
    np.testing.assert_array_equal(xa[:10], xb[:10])  # each T starts a new generator seeded 555
    np.testing.assert_array_equal(ya[-10:], yb[-10:])
    xc, _ = copying_data(4, 5, np.random.default_rng(555))
    np.testing.assert_array_equal(xa, xc)
    xd, _ = transfer_copying_data(5, n=4, seed=1)
    assert not np.array_equal(xa, xd)


def test_adding_data():
    T, n = 11, 50
    x, y = adding_data(n, T, np.random.default_rng(0), dtype=np.float64)
    assert x.shape == (T, n, 2) and y.shape == (n,)
    marks = x[..., 1]
    assert np.all(marks.sum(0) == 2) and set(np.unique(marks)) == {0.0, 1.0}
    assert np.all(marks[:T // 2].sum(0) == 1) and np.all(marks[T // 2:].sum(0) == 1)
    np.testing.assert_allclose(y, (x[..., 0] * marks).sum(0))
    assert x[..., 0].min() >= 0 and x[..., 0].max() < 1
    with pytest.raises(ValueError, match="T must be an integer >= 2"):
        adding_data(3, 1, np.random.default_rng(0))


def test_mnist_permutation_reproduces_the_original():
    order = mnist_permutation(150)
    np.testing.assert_array_equal(order[:10], [176, 32, 363, 605, 548, 781, 276, 775, 468, 440])
    np.testing.assert_array_equal(np.sort(order), np.arange(784))
    assert not np.array_equal(mnist_permutation(250), order)


@pytest.mark.parametrize("k", [1, 4, 28])
def test_pixel_sequences(k):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 784), dtype=np.uint8)
    order = mnist_permutation(7)
    x = pixel_sequences(images, order, pixels_per_step=k)
    T = mnist_sequence_length(k)
    assert x.shape == (T, 3, k) and x.dtype == np.float32 and T * k == 784
    assert x.flags.c_contiguous
    permuted = images[:, order].astype(np.float32) / np.float32(255)
    for n in range(3):
        np.testing.assert_array_equal(x[:, n, :].reshape(-1), permuted[n])
    plain = pixel_sequences(images, None, 1, dtype=np.float64)
    np.testing.assert_allclose(plain[:, 1, 0], images[1] / 255.0)
    assert plain.max() <= 1 and plain.min() >= 0


def test_pixel_sequences_bad_input():
    img = np.zeros((2, 784), np.uint8)
    with pytest.raises(ValueError, match="pixels_per_step must divide 784"):
        pixel_sequences(img, pixels_per_step=5)
    with pytest.raises(TypeError, match="uint8"):
        pixel_sequences(img.astype(float))
    with pytest.raises(ValueError, match=r"shape \(n, 784\)"):
        pixel_sequences(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="permutation"):
        pixel_sequences(img, order=np.zeros(784, int))
