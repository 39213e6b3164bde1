"""Checks and data for notebooks/05_sequential_mnist.ipynb.

1. `check_original_permutation(original_permutation)`: original_permutation(seed) -> the (784,)
   pixel order of permuted MNIST, drawn as the original code does.
2. `check_pixel_sequence(pixel_sequence)`: pixel_sequence(images, order, k) -> x (784 / k, n, k)
   in [0, 1], the input of pixel MNIST (time-major, k pixels per step).

`notebook_data()` gives the notebook its images: the real MNIST cache when it is there
(`hdetach_np.training.load_mnist`, never downloading), else a small synthetic stand-in
(`synthetic_digits`: seven-segment digits, clearly not MNIST) so the notebook still runs, e.g. in CI.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..._validate import check_generator
from ...gradcheck import rel_error
from ...tasks import MNIST_PIXELS, mnist_permutation, pixel_sequences
from ...training.data import DataError, MNISTData, default_data_dir, load_mnist
from . import ExerciseError, call_student, expect_array, expect_unchanged, passed

SIDE = 28
PERM_SEEDS = (150, 0, 400, 12345)
SEQUENCE_CASES = ((0, 3, False, 1), (1, 2, True, 16), (2, 4, True, 28), (3, 1, False, 7))  # (seed, n, permuted, k)
SEQUENCE_TOLERANCE = 1e-6  # float32 results are accepted

# Seven-segment digits: segments a (top), b (upper right), c (lower right), d (bottom),
# e (lower left), f (upper left), g (middle).
SEGMENTS = {
    0: "abcdef", 1: "bc", 2: "abdeg", 3: "abcdg", 4: "bcfg",
    5: "acdfg", 6: "acdefg", 7: "abc", 8: "abcdefg", 9: "abcdfg",
}


# ---------------------------------------------------------------------------------------------
# The notebook's data: real MNIST when cached, a synthetic stand-in otherwise
# ---------------------------------------------------------------------------------------------


class NotebookData(NamedTuple):
    """The images for the notebook: `data` (an MNISTData), `real` (True for MNIST) and a `note`."""

    data: MNISTData
    real: bool
    note: str


def _segment_boxes(top: np.ndarray, left: np.ndarray, width: np.ndarray, height: np.ndarray,
                   thick: np.ndarray) -> dict:
    """Row and column ranges [r0, r1) x [c0, c1) of each segment, each an (n,) int array."""
    mid = top + height // 2
    bottom, right = top + height, left + width
    return {
        "a": (top, top + thick, left, right),
        "g": (mid - thick // 2, mid - thick // 2 + thick, left, right),
        "d": (bottom - thick, bottom, left, right),
        "f": (top, mid + 1, left, left + thick),
        "b": (top, mid + 1, right - thick, right),
        "e": (mid, bottom, left, left + thick),
        "c": (mid, bottom, right - thick, right),
    }


def synthetic_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n seven-segment digits on a 28 x 28 canvas, a stand-in for MNIST when it is not cached.

    Each image: a random label 0-9 drawn as its lit segments, with a random position (+-3 pixels),
    size, stroke width (2-3 pixels) and brightness, plus a little noise. Returns images (n, 784)
    uint8 (row-major, like MNIST) and labels (n,) uint8.
    """
    check_generator(rng)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    labels = rng.integers(0, 10, size=n)
    width = rng.integers(10, 15, size=n)
    height = rng.integers(16, 21, size=n)
    thick = rng.integers(2, 4, size=n)
    top = (SIDE - height) // 2 + rng.integers(-3, 4, size=n)
    left = (SIDE - width) // 2 + rng.integers(-3, 4, size=n)
    rows = np.arange(SIDE)[None, :, None]  # (1, 28, 1)
    cols = np.arange(SIDE)[None, None, :]  # (1, 1, 28)
    lit = np.zeros((n, SIDE, SIDE), dtype=bool)
    for seg, (r0, r1, c0, c1) in _segment_boxes(top, left, width, height, thick).items():
        on = np.array([seg in SEGMENTS[int(d)] for d in range(10)])[labels]  # (n,)
        box = ((rows >= r0[:, None, None]) & (rows < r1[:, None, None])
               & (cols >= c0[:, None, None]) & (cols < c1[:, None, None]))  # (n, 28, 28)
        lit |= box & on[:, None, None]
    brightness = rng.uniform(0.6, 1.0, size=(n, 1, 1))
    img = 255 * brightness * lit + rng.normal(0.0, 12.0, size=lit.shape)
    images = np.clip(np.rint(img), 0, 255).astype(np.uint8).reshape(n, MNIST_PIXELS)
    return images, labels.astype(np.uint8)


def synthetic_mnist(n_train: int = 3000, n_valid: int = 500, n_test: int = 500, seed: int = 0) -> MNISTData:
    """A small synthetic stand-in with MNIST's layout (uint8 images (n, 784), labels (n,))."""
    rng = np.random.default_rng(seed)
    parts = {}
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        parts[f"x_{split}"], parts[f"y_{split}"] = synthetic_digits(n, rng)
    return MNISTData(**parts)


def notebook_data(data_dir=None, synthetic_sizes=(3000, 500, 500), seed: int = 0) -> NotebookData:
    """Real MNIST from the cache in `data_dir` (default: `$HDETACH_NP_MNIST_DIR`, else
    `~/.cache/hdetach-np/mnist`), else a synthetic stand-in of `synthetic_sizes` (train, valid, test)
    images. Never downloads; the note says which one it is and how to get the real data."""
    where = default_data_dir() if data_dir is None else data_dir
    try:
        data = load_mnist(data_dir)
    except (DataError, FileNotFoundError) as err:
        n_train, n_valid, n_test = synthetic_sizes
        note = (f"MNIST is not available here ({err}).\n"
                f"Using a SYNTHETIC stand-in instead: {n_train}/{n_valid}/{n_test} seven-segment digits, "
                "not MNIST. Accuracies below are not MNIST results.\n"
                f"To use the real data run `hdetach-np data mnist` (cache: {where}), then rerun the notebook.")
        return NotebookData(synthetic_mnist(n_train, n_valid, n_test, seed), False, note)
    note = (f"Real MNIST from the cache in {where}: {len(data.x_train)} training, {len(data.x_valid)} "
            f"validation and {len(data.x_test)} test images.")
    return NotebookData(data, True, note)


# ---------------------------------------------------------------------------------------------
# 1. The permutation of permuted MNIST
# ---------------------------------------------------------------------------------------------


def check_original_permutation(original_permutation) -> None:
    """Exercise 1: original_permutation(seed) must return the original code's pixel order (784,)."""
    name = "original_permutation"
    for seed in PERM_SEEDS:
        got = call_student(original_permutation, name, seed)
        if not isinstance(got, np.ndarray) or got.shape != (MNIST_PIXELS,):
            shape = got.shape if isinstance(got, np.ndarray) else type(got).__name__
            raise ExerciseError(f"{name}({seed}) must return a numpy array of shape (784,), got {shape}")
        if got.dtype.kind not in "iu" or not np.array_equal(np.sort(got), np.arange(MNIST_PIXELS)):
            raise ExerciseError(f"{name}({seed}) must return a permutation of 0..783 (integers, each once)")
        expected = mnist_permutation(seed)
        if np.array_equal(got, expected):
            continue
        if np.array_equal(got, np.argsort(expected)):
            hint = ("that is the inverse permutation (argsort of the order); the order itself says which "
                    "pixel is read at each step")
        elif np.array_equal(got, np.random.default_rng(seed).permutation(MNIST_PIXELS)):
            hint = ("np.random.default_rng is the new generator and draws other numbers; the original code "
                    "seeds NumPy's legacy global generator, `np.random.seed(seed)`, then calls "
                    "`np.random.permutation(784)`. `np.random.RandomState(seed)` gives the same draw "
                    "without touching the global state")
        elif np.array_equal(got, np.random.RandomState(seed).permutation(MNIST_PIXELS)[::-1]):
            hint = "the order is reversed"
        else:
            hint = ("draw `permutation(784)` first after seeding the legacy generator with this seed "
                    "(np.random.RandomState(seed))")
        raise ExerciseError(f"{name}({seed}) is not the original's order (it starts {got[:5]}, expected "
                            f"{expected[:5]}): {hint}.")
    passed(f"{name} reproduces the original permutation for seeds {', '.join(map(str, PERM_SEEDS))} "
           f"(seed 150 starts {mnist_permutation(150)[:10]}).")


# ---------------------------------------------------------------------------------------------
# 2. Images to pixel sequences
# ---------------------------------------------------------------------------------------------


def _sequence_case(seed, n, permuted):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, MNIST_PIXELS), dtype=np.uint8)
    order = rng.permutation(MNIST_PIXELS) if permuted else None
    return images, order


def check_pixel_sequence(pixel_sequence) -> None:
    """Exercise 2: pixel_sequence(images, order, k) -> x (784 // k, n, k) floats in [0, 1]."""
    name = "pixel_sequence"
    worst = 0.0
    for seed, n, permuted, k in SEQUENCE_CASES:
        images, order = _sequence_case(seed, n, permuted)
        before = {"images": images.copy()} if order is None else {"images": images.copy(), "order": order.copy()}
        got = call_student(pixel_sequence, name, images, order, k)
        expect_unchanged(name, before, {"images": images} if order is None else {"images": images, "order": order})
        T = MNIST_PIXELS // k
        where = f"{name}(images (n={n}, 784), {'a permutation' if permuted else 'None'}, k={k})"
        if isinstance(got, np.ndarray) and got.shape in ((n, T, k), (n, T * k)) and got.shape != (T, n, k):
            raise ExerciseError(f"{where} returned shape {got.shape}: the package is time-major, "
                                f"x[t] is the input of step t for the whole batch, so the shape is (T, n, k) = "
                                f"({T}, {n}, {k}); e.g. move the batch axis with .transpose")
        got = expect_array(where, got, (T, n, k))
        expected = pixel_sequences(images, order, k, dtype=np.float64)
        err = rel_error(got, expected)
        if err < SEQUENCE_TOLERANCE:
            worst = max(worst, err)
            continue
        seen = images if order is None else images[:, order]
        candidates = [
            (255 * expected, "pixels must be in [0, 1]: divide by 255"),
            (pixel_sequences(np.ascontiguousarray(images.reshape(n, SIDE, SIDE).transpose(0, 2, 1)
                                                  .reshape(n, MNIST_PIXELS)), order, k, dtype=np.float64),
             "the pixels are read column by column; MNIST is read row by row (row-major), pixel r * 28 + c"),
            (seen.reshape(n, k, T).transpose(2, 0, 1) / 255,
             "step t must hold k CONSECUTIVE pixels (pixels t*k .. t*k+k-1 of the order): reshape to (n, T, k) "
             "before moving the batch axis"),
        ]
        if order is not None:
            candidates.append((pixel_sequences(images, np.argsort(order), k, dtype=np.float64),
                               "you applied the inverse permutation; step j reads pixel order[j]: images[:, order]"))
            candidates.append((pixel_sequences(images, None, k, dtype=np.float64),
                               "the order was not applied; permuted MNIST reads pixel order[j] at position j: "
                               "images[:, order]"))
        hint = "x[t, i, j] = images[i, order[t * k + j]] / 255 (order = identity when None)"
        for cand, text in candidates:
            if cand.shape == got.shape and rel_error(got, cand) < SEQUENCE_TOLERANCE:
                hint = text
                break
        raise ExerciseError(f"{where} is not right yet (relative error {err:.2g}): {hint}.")
    passed(f"{name} matches hdetach_np.tasks.pixel_sequences on {len(SEQUENCE_CASES)} cases (k = 1, 7, 16, 28, "
           f"with and without a permutation; largest relative error {worst:.1e}).")


__all__ = ["NotebookData", "check_original_permutation", "check_pixel_sequence", "notebook_data",
           "synthetic_digits", "synthetic_mnist"]
