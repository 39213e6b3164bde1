"""Tasks and their data. Time-major arrays: inputs x (T, N, D), targets y (T, N) or (N,).

Copying task (as in the original code), with a delay (the paper's T): a sequence of T = delay + 20
steps holds 10 tokens drawn uniformly from {1..8}, then delay - 1 blanks (0), one delimiter (9),
then 10 blanks. The target is delay + 10 blanks (0) followed by the 10 tokens. The input is one
scalar per step, the raw token value as a float (or one-hot over the 10 symbols with
`one_hot=True`); there are 9 output classes (0-8). The loss is the cross-entropy at every step;
the accuracy is taken over the last 10 steps only.

A fixed copying data set is stored compactly as its tokens (10, n) and expanded into sequences
batch by batch (`copying_sequences`), so 100,000 sequences at delay 300 cost 1 MB, not 0.4 GB.

Adding task (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015): two input channels per
step, a value uniform in [0, 1) and a marker that is 1 at exactly two steps (one in the first half of
the sequence, one in the second) and 0 elsewhere. The target is the sum of the two marked values;
the loss is the mean squared error at the last step.

Pixel MNIST: one pixel per step (row-major, 784 steps; or `pixels_per_step` consecutive pixels per
step), values in [0, 1] (pixel / 255, no normalisation), the loss at the last step. Permuted MNIST
applies one fixed permutation of the 784 pixel positions, drawn as the original code does
(`mnist_permutation`).
"""

from __future__ import annotations

import numpy as np

from ._validate import check_generator, check_int, float_dtype

COPY_TOKENS = 10  # tokens to remember
COPY_CLASSES = 9  # blank + 8 token values
COPY_DELIMITER = 9
COPY_INPUTS = COPY_DELIMITER + 1  # symbols 0..9, the one-hot input size

MNIST_PIXELS = 784
MNIST_CLASSES = 10


# ---------------------------------------------------------------------------------------------
# Copying
# ---------------------------------------------------------------------------------------------


def copying_tokens(n: int, rng: np.random.Generator) -> np.ndarray:
    """The 10 tokens of n copying sequences: (10, n) int64, uniform in {1..8}."""
    check_generator(rng)
    n = check_int("n", n, 1)
    return rng.integers(1, COPY_CLASSES, size=(COPY_TOKENS, n))


def copying_sequences(tokens: np.ndarray, delay: int, one_hot: bool = False,
                      dtype: np.typing.DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Expand tokens (10, n) into copying sequences with the given delay (the paper's T).

    Returns x (T, n, D) with T = delay + 20 steps and D = 1 (raw token values) or D = 10 (one-hot),
    and y (T, n) int64.
    """
    dt = float_dtype(dtype)
    delay = check_int("delay", delay, 1)
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[0] != COPY_TOKENS or tokens.dtype.kind not in "iu":
        raise ValueError(f"expected integer tokens of shape (10, n), got {tokens.dtype} {tokens.shape}")
    if tokens.size and (tokens.min() < 1 or tokens.max() > COPY_CLASSES - 1):
        raise ValueError(f"tokens must be in [1, 8], got values in [{tokens.min()}, {tokens.max()}]")
    n = tokens.shape[1]
    L = delay + 2 * COPY_TOKENS
    seq = np.zeros((L, n), dtype=np.int64)
    seq[:COPY_TOKENS] = tokens
    seq[COPY_TOKENS + delay - 1] = COPY_DELIMITER
    y = np.zeros((L, n), dtype=np.int64)
    y[-COPY_TOKENS:] = tokens
    if one_hot:
        x = np.zeros((L, n, COPY_INPUTS), dtype=dt)
        np.put_along_axis(x, seq[..., None], 1, axis=-1)
    else:
        x = seq[..., None].astype(dt)
    return x, y


def copying_data(n: int, delay: int, rng: np.random.Generator, one_hot: bool = False,
                 dtype: np.typing.DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """n fresh copying sequences with the given delay (the paper's T).

    Returns x (T, n, D) with T = delay + 20 steps and D = 1 (raw token values) or D = 10 (one-hot),
    and y (T, n) int64.
    """
    check_generator(rng)
    float_dtype(dtype)
    n = check_int("n", n, 1)
    delay = check_int("delay", delay, 1)
    return copying_sequences(copying_tokens(n, rng), delay, one_hot=one_hot, dtype=dtype)


def copying_sets(n_train: int, n_valid: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The fixed training and validation sets of the copying task, as tokens.

    As the original, the training set is drawn first and the validation set second from the same
    stream (100,000 and 5,000 sequences there). Returns (train (10, n_train), valid (10, n_valid)),
    int64 tokens to expand with `copying_sequences` (the delay is applied there).
    """
    check_generator(rng)
    return copying_tokens(n_train, rng), copying_tokens(n_valid, rng)


def copying_accuracy_steps(delay: int) -> np.ndarray:
    """Boolean mask (T,), T = delay + 20, of the steps where copying accuracy is measured: the last 10."""
    delay = check_int("delay", delay, 1)
    mask = np.zeros(delay + 2 * COPY_TOKENS, dtype=bool)
    mask[-COPY_TOKENS:] = True
    return mask


def transfer_copying_data(delay: int, n: int = 5000, seed: int = 555, one_hot: bool = False,
                          dtype: np.typing.DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Fresh copying sequences at `delay` for evaluating a model trained at another delay.

    Each delay gets its own generator seeded with `seed` (555 as in the original's transfer script,
    which was run once per delay with that seed), 5,000 sequences by default.
    Returns x (T, n, D), y (T, n) with T = delay + 20.
    """
    seed = check_int("seed", seed, 0)
    return copying_data(n, delay, np.random.default_rng(seed), one_hot=one_hot, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Adding
# ---------------------------------------------------------------------------------------------


def adding_data(n: int, T: int, rng: np.random.Generator,
                dtype: np.typing.DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """n adding-task sequences of length T (T >= 2).

    Returns x (T, n, 2) (channel 0: values U[0, 1), channel 1: markers 0/1) and y (n,) the sum of
    the two marked values. One marker is uniform over the first floor(T/2) steps, the other over the
    remaining steps.
    """
    check_generator(rng)
    dt = float_dtype(dtype)
    n = check_int("n", n, 1)
    T = check_int("T", T, 2)
    half = T // 2
    values = rng.random((T, n))  # (T, n)
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, T, size=n)
    markers = np.zeros((T, n))
    cols = np.arange(n)
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    x = np.stack([values, markers], axis=-1).astype(dt)  # (T, n, 2)
    y = (values[first, cols] + values[second, cols]).astype(dt)
    return x, y


# ---------------------------------------------------------------------------------------------
# Pixel MNIST
# ---------------------------------------------------------------------------------------------


def mnist_permutation(seed: int) -> np.ndarray:
    """The permuted-MNIST pixel order of the original code for `seed`: (784,) int.

    The original seeds numpy's legacy global generator with the run's seed and draws
    `np.random.permutation(784)` first; a fresh `RandomState(seed)` gives the same draw.
    """
    seed = check_int("seed", seed, 0)
    return np.random.RandomState(seed).permutation(MNIST_PIXELS)


def pixel_sequences(images: np.ndarray, order: np.ndarray | None = None, pixels_per_step: int = 1,
                    dtype: np.typing.DTypeLike = np.float32) -> np.ndarray:
    """MNIST images (n, 784) uint8 -> pixel sequences x (784 / k, n, k) in [0, 1] (pixel / 255).

    `order` (784,) permutes the pixel positions (permuted MNIST); k = `pixels_per_step` consecutive
    pixels of that order are fed per step (k = 1 is the original task; k must divide 784).
    """
    dt = float_dtype(dtype)
    k = check_int("pixels_per_step", pixels_per_step, 1)
    if MNIST_PIXELS % k:
        raise ValueError(f"pixels_per_step must divide 784 (1, 2, 4, 7, 8, 14, 16, 28, ...), got {k}")
    if not isinstance(images, np.ndarray) or images.ndim != 2 or images.shape[1] != MNIST_PIXELS:
        got = images.shape if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"expected images of shape (n, 784), got {got}")
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 images (0-255), got dtype {images.dtype}")
    if order is not None:
        order = np.asarray(order)
        if order.shape != (MNIST_PIXELS,) or not np.array_equal(np.sort(order), np.arange(MNIST_PIXELS)):
            raise ValueError(f"order must be a permutation of range(784), got shape {order.shape}")
        images = images[:, order]
    n = images.shape[0]
    x = np.ascontiguousarray(images.T.reshape(MNIST_PIXELS // k, k, n).transpose(0, 2, 1), dtype=dt)  # (T, n, k)
    x /= dt.type(255)  # as torchvision's ToTensor: float(pixel) / 255
    return x


def mnist_sequence_length(pixels_per_step: int = 1) -> int:
    """Number of steps of a pixel-MNIST sequence: 784 / pixels_per_step."""
    k = check_int("pixels_per_step", pixels_per_step, 1)
    if MNIST_PIXELS % k:
        raise ValueError(f"pixels_per_step must divide 784 (1, 2, 4, 7, 8, 14, 16, 28, ...), got {k}")
    return MNIST_PIXELS // k
