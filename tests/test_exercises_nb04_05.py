"""The exercise checks of notebooks 04 and 05 accept right answers and reject typical wrong ones
with a useful hint; notebook 05's `notebook_data` falls back to synthetic digits without MNIST.

The right answers here are written from the definitions (docs/paper.md, sections 2-4),
independently of the functions the checks compare with.
"""

import numpy as np
import pytest

import hdetach_np as hd
from hdetach_np.teaching.exercises import ExerciseError, nb04, nb05


def not_done(*args):
    raise NotImplementedError("your code here")


# ---------------------------------------------------------------------------------------------
# Notebook 04
# ---------------------------------------------------------------------------------------------


def keep_mask(T, p, rng):
    return (rng.random(T) >= p).astype(np.float32)


def expected_gradient(dhs, cache, p):
    return hd.lstm_backward(dhs, cache, h_scale=np.full(dhs.shape[0], 1 - p))


def test_nb04_right_answers_pass(capsys):
    nb04.check_path_weight(lambda k, p: (1 - p) ** k)
    nb04.check_keep_mask(keep_mask)
    nb04.check_keep_mask(lambda T, p, rng: rng.binomial(1, 1 - p, size=T).astype(float))  # another right way
    nb04.check_expected_gradient(expected_gradient)
    assert capsys.readouterr().out.count("Correct!") == 4


@pytest.mark.parametrize("check", [nb04.check_path_weight, nb04.check_keep_mask, nb04.check_expected_gradient,
                                   nb05.check_original_permutation, nb05.check_pixel_sequence])
def test_a_stub_is_reported_as_not_done(check):
    with pytest.raises(ExerciseError, match="not implemented yet"):
        check(not_done)


def test_path_weight_mistakes_get_hints():
    with pytest.raises(ExerciseError, match="kept with probability 1 - p"):
        nb04.check_path_weight(lambda k, p: p ** k if k else 1.0)
    with pytest.raises(ExerciseError, match="a power, not a sum"):
        nb04.check_path_weight(lambda k, p: (1 - p) * k if k else 1.0)
    with pytest.raises(ExerciseError, match="at least one edge"):
        nb04.check_path_weight(lambda k, p: 1 - p ** k if k else 1.0)
    with pytest.raises(ExerciseError, match="pure cell path"):
        nb04.check_path_weight(lambda k, p: (1 - p) ** max(k, 1))
    with pytest.raises(ExerciseError, match="must return a number"):
        nb04.check_path_weight(lambda k, p: [(1 - p) ** k])


def test_keep_mask_mistakes_get_hints():
    with pytest.raises(ExerciseError, match="probability of DETACHING"):
        nb04.check_keep_mask(lambda T, p, rng: (rng.random(T) < p).astype(np.float32))
    with pytest.raises(ExerciseError, match="boolean array"):
        nb04.check_keep_mask(lambda T, p, rng: rng.random(T) >= p)
    with pytest.raises(ExerciseError, match="mean of the mask"):
        nb04.check_keep_mask(lambda T, p, rng: np.full(T, 1.0 - p))
    with pytest.raises(ExerciseError, match="generator `rng` it is given"):
        nb04.check_keep_mask(lambda T, p, rng: (np.random.default_rng(0).random(T) >= p).astype(float))
    with pytest.raises(ExerciseError, match=r"shape \(50,\)"):
        nb04.check_keep_mask(lambda T, p, rng: (rng.random((T, 1)) >= p).astype(float))


def test_expected_gradient_mistakes_get_hints():
    T_of = lambda dhs: dhs.shape[0]
    with pytest.raises(ExerciseError, match="scaled the h-edges by p"):
        nb04.check_expected_gradient(lambda dhs, cache, p: hd.lstm_backward(dhs, cache, h_scale=np.full(T_of(dhs), p)))
    with pytest.raises(ExerciseError, match="plain gradient"):
        nb04.check_expected_gradient(lambda dhs, cache, p: hd.lstm_backward(dhs, cache))

    def whole_scaled(dhs, cache, p):
        g = hd.lstm_backward(dhs, cache)
        return hd.LSTMGrads(**{f: (1 - p) * getattr(g, f) for f in nb04.GRAD_FIELDS})

    with pytest.raises(ExerciseError, match="also shrinks the cell path"):
        nb04.check_expected_gradient(whole_scaled)

    def sampled_mean(dhs, cache, p, n=200):
        rng = np.random.default_rng(0)
        gs = [hd.lstm_backward(dhs, cache, h_scale=keep_mask(T_of(dhs), p, rng).astype(np.float64)) for _ in range(n)]
        return hd.LSTMGrads(**{f: np.mean([getattr(g, f) for g in gs], axis=0) for f in nb04.GRAD_FIELDS})

    with pytest.raises(ExerciseError, match="mean over sampled masks only approaches"):
        nb04.check_expected_gradient(sampled_mean)
    with pytest.raises(ExerciseError, match="must return the LSTMGrads"):
        nb04.check_expected_gradient(lambda dhs, cache, p: expected_gradient(dhs, cache, p).Wh)


# ---------------------------------------------------------------------------------------------
# Notebook 05
# ---------------------------------------------------------------------------------------------


def pixel_sequence(images, order, k):
    n = images.shape[0]
    seen = images if order is None else images[:, order]
    return seen.reshape(n, 784 // k, k).transpose(1, 0, 2).astype(np.float32) / 255


def test_nb05_right_answers_pass(capsys):
    nb05.check_original_permutation(lambda seed: np.random.RandomState(seed).permutation(784))
    nb05.check_pixel_sequence(pixel_sequence)
    assert capsys.readouterr().out.count("Correct!") == 2


def test_the_seed_150_permutation_is_the_documented_one():
    # docs/paper.md: seed 150 starts [176 32 363 605 548 781 276 775 468 440]
    np.testing.assert_array_equal(np.random.RandomState(150).permutation(784)[:10],
                                  [176, 32, 363, 605, 548, 781, 276, 775, 468, 440])


def test_permutation_mistakes_get_hints():
    with pytest.raises(ExerciseError, match="legacy global generator"):
        nb05.check_original_permutation(lambda seed: np.random.default_rng(seed).permutation(784))
    with pytest.raises(ExerciseError, match="inverse permutation"):
        nb05.check_original_permutation(lambda seed: np.argsort(np.random.RandomState(seed).permutation(784)))
    with pytest.raises(ExerciseError, match="starts"):
        nb05.check_original_permutation(lambda seed: np.random.RandomState(150).permutation(784))  # ignores seed
    with pytest.raises(ExerciseError, match="permutation of 0..783"):
        nb05.check_original_permutation(lambda seed: np.random.RandomState(seed).randint(0, 784, 784))
    with pytest.raises(ExerciseError, match=r"shape \(784,\)"):
        nb05.check_original_permutation(lambda seed: list(range(784)))


def test_pixel_sequence_mistakes_get_hints():
    with pytest.raises(ExerciseError, match="divide by 255"):
        nb05.check_pixel_sequence(lambda im, o, k: 255 * pixel_sequence(im, o, k))
    with pytest.raises(ExerciseError, match="time-major"):
        nb05.check_pixel_sequence(lambda im, o, k: pixel_sequence(im, o, k).transpose(1, 0, 2))

    def column_major(images, order, k):
        n = images.shape[0]
        return pixel_sequence(images.reshape(n, 28, 28).transpose(0, 2, 1).reshape(n, 784), order, k)

    with pytest.raises(ExerciseError, match="column by column"):
        nb05.check_pixel_sequence(column_major)

    def inverse_order(images, order, k):
        return pixel_sequence(images, None if order is None else np.argsort(order), k)

    with pytest.raises(ExerciseError, match="inverse permutation"):
        nb05.check_pixel_sequence(inverse_order)
    with pytest.raises(ExerciseError, match="order was not applied"):
        nb05.check_pixel_sequence(lambda im, o, k: pixel_sequence(im, None, k))

    def strided(images, order, k):
        n = images.shape[0]
        seen = images if order is None else images[:, order]
        return seen.reshape(n, k, 784 // k).transpose(2, 0, 1) / 255.0

    with pytest.raises(ExerciseError, match="CONSECUTIVE pixels"):
        nb05.check_pixel_sequence(strided)


def test_notebook_data_falls_back_to_synthetic_digits(tmp_path, monkeypatch):
    monkeypatch.setenv("HDETACH_NP_MNIST_DIR", str(tmp_path))  # an empty cache folder
    nd = nb05.notebook_data(synthetic_sizes=(40, 10, 10))
    assert not nd.real
    assert "SYNTHETIC" in nd.note and "hdetach-np data mnist" in nd.note and str(tmp_path) in nd.note
    d = nd.data
    assert d.x_train.shape == (40, 784) and d.x_valid.shape == (10, 784) and d.x_test.shape == (10, 784)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.uint8
    assert set(np.unique(d.y_train)) <= set(range(10))
    # the stand-in works with the training engine as MNIST does
    cfg = hd.training.TrainConfig.from_dict(dict(task="permuted-mnist", pixels_per_step=28, hidden=8, epochs=1,
                                        n_train=40, n_valid=10, n_test=10, batch_size=20))
    result = hd.training.train(cfg, mnist=d)
    assert result.iteration == 2 and result.best is not None


def test_a_corrupt_cache_also_falls_back(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    nd = nb05.notebook_data(tmp_path, synthetic_sizes=(10, 10, 10))
    assert not nd.real and "cannot read the MNIST cache" in nd.note


def test_synthetic_digits_are_seven_segment_digits():
    images, labels = nb05.synthetic_digits(200, np.random.default_rng(1))
    lit = images.reshape(200, 28, 28) > 128
    ones, eights = lit[labels == 1], lit[labels == 8]
    assert len(ones) and len(eights)
    assert eights.sum(axis=(1, 2)).min() > ones.sum(axis=(1, 2)).max()  # 8 lights all segments, 1 only two
    a, b = nb05.synthetic_digits(5, np.random.default_rng(3)), nb05.synthetic_digits(5, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(TypeError, match="Generator"):
        nb05.synthetic_digits(5, 3)
    with pytest.raises(ValueError, match="positive integer"):
        nb05.synthetic_digits(0, np.random.default_rng(0))


def test_notebook_data_uses_real_mnist_when_cached(monkeypatch):
    monkeypatch.delenv("HDETACH_NP_MNIST_DIR", raising=False)
    if not (hd.training.data.default_data_dir() / "mnist.npz").is_file():
        pytest.skip("no MNIST cache on this machine")
    nd = nb05.notebook_data()
    assert nd.real and nd.data.x_train.shape == (50_000, 784) and "Real MNIST" in nd.note


def test_notebook_05_runs_without_the_mnist_cache(tmp_path, monkeypatch):
    """In fast mode, with HDETACH_NP_MNIST_DIR pointing at an empty folder, notebook 05 runs on the
    synthetic digits, says so, and every check passes."""
    pytest.importorskip("nbclient")
    from pathlib import Path

    from hdetach_np.teaching import notebooks as nt

    monkeypatch.setenv("HDETACH_NP_MNIST_DIR", str(tmp_path))
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    nb = nt.read_notebook(folder / "05_sequential_mnist.ipynb")
    executed = nt.execute_notebook(nb, cwd=folder, fast=True, timeout=300)
    cells = [c for c in executed["cells"] if c["cell_type"] == "code"]
    text = "".join("".join(o.get("text", "")) for c in cells for o in c["outputs"] if o["output_type"] == "stream")
    assert not [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert "SYNTHETIC stand-in" in text and "Real MNIST" not in text and "FAST=True" in text
    assert text.count("Correct!") == 2
