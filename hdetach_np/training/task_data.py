"""What the training engine needs from a task: sizes, the loss rule, training batches, evaluation sets.

    task = make_task_data(cfg)                  # CopyingData, AddingData or MNISTTask, per cfg.task
    x, y = task.train_batch(iteration, rng)     # x (T, N, D), y (T, N) or (N,)
    for x, y in task.eval_batches("valid", 1000): ...

The sequences themselves come from `hdetach_np.tasks` (copying, adding, pixel sequences); these
adapters hold the fixed data sets of a run and draw its minibatches.
"""

from __future__ import annotations

import numpy as np

from ..tasks import (
    COPY_CLASSES,
    COPY_INPUTS,
    MNIST_CLASSES,
    adding_data,
    copying_accuracy_steps,
    copying_sequences,
    copying_sets,
    mnist_permutation,
    pixel_sequences,
)
from .config import TrainConfig


class TaskData:
    """What the engine needs from a task.

    input_size D, output_size K, steps (sequence length), classify (cross-entropy, accuracy) or
    regression (MSE), last_only (loss at the last step; y (N,)) or every step (y (T, N)),
    acc_steps (bool (T,), where accuracy counts, for every-step tasks), splits {name: size}.
    """

    input_size: int
    output_size: int
    steps: int
    classify: bool
    last_only: bool
    acc_steps: np.ndarray | None = None
    splits: dict

    def train_batch(self, iteration: int, rng: np.random.Generator):  # pragma: no cover - interface
        raise NotImplementedError

    def eval_batches(self, split: str, batch_size: int):  # pragma: no cover - interface
        raise NotImplementedError


class CopyingData(TaskData):
    """Fixed training and validation sets; minibatches drawn with replacement, as the original."""

    classify, last_only = True, False

    def __init__(self, cfg: TrainConfig, data_rng: np.random.Generator, delay: int | None = None, tokens=None):
        self.delay = cfg.delay if delay is None else delay  # blank steps between the tokens and the marker
        self.one_hot, self.dtype, self.N = cfg.one_hot, np.dtype(cfg.dtype), cfg.batch_size
        self.input_size = COPY_INPUTS if cfg.one_hot else 1
        self.output_size = COPY_CLASSES
        self.steps = self.delay + 20
        self.acc_steps = copying_accuracy_steps(self.delay)
        if tokens is None:
            self.train_tokens, self.valid_tokens = copying_sets(cfg.n_train, cfg.n_valid, data_rng)
            self.splits = {"valid": cfg.n_valid}
        else:  # evaluation-only data (transfer)
            self.train_tokens, self.valid_tokens = None, tokens
            self.splits = {"valid": tokens.shape[1]}

    def train_batch(self, iteration, rng):
        idx = rng.integers(0, self.train_tokens.shape[1], size=self.N)
        return copying_sequences(self.train_tokens[:, idx], self.delay, self.one_hot, self.dtype)

    def eval_batches(self, split, batch_size):
        tokens = self.valid_tokens
        for a in range(0, tokens.shape[1], batch_size):
            yield copying_sequences(tokens[:, a:a + batch_size], self.delay, self.one_hot, self.dtype)


class AddingData(TaskData):
    """Fresh training sequences every iteration; a fixed validation set."""

    classify, last_only = False, True

    def __init__(self, cfg: TrainConfig, data_rng: np.random.Generator):
        self.length, self.N, self.dtype = cfg.length, cfg.batch_size, np.dtype(cfg.dtype)
        self.input_size, self.output_size, self.steps = 2, 1, cfg.length
        self.valid = adding_data(cfg.n_valid, cfg.length, data_rng, dtype=self.dtype)
        self.splits = {"valid": cfg.n_valid}

    def train_batch(self, iteration, rng):
        return adding_data(self.N, self.length, rng, dtype=self.dtype)

    def eval_batches(self, split, batch_size):
        x, y = self.valid
        for a in range(0, x.shape[1], batch_size):
            yield x[:, a:a + batch_size], y[a:a + batch_size]


class MNISTTask(TaskData):
    """Pixel / permuted MNIST: each epoch is one pass over a fresh random order of the training images."""

    classify, last_only = True, True

    def __init__(self, cfg: TrainConfig, mnist):
        self.cfg, self.N, self.dtype = cfg, cfg.batch_size, np.dtype(cfg.dtype)
        self.k = cfg.pixels_per_step
        self.input_size, self.output_size, self.steps = self.k, MNIST_CLASSES, cfg.sequence_length
        self.order = None
        if cfg.task == "permuted-mnist":
            self.order = mnist_permutation(cfg.seed if cfg.perm_seed is None else cfg.perm_seed)
        want = {"train": cfg.n_train, "valid": cfg.n_valid, "test": cfg.n_test}
        self.data = {}
        for split, n in want.items():
            x, y = getattr(mnist, f"x_{split}"), getattr(mnist, f"y_{split}")
            if n > len(x):
                raise ValueError(f"config n_{split}={n} but the MNIST data has only {len(x)} {split} images")
            self.data[split] = (x[:n], y[:n].astype(np.int64))
        self.splits = {s: n for s, n in want.items() if s != "train" and n > 0}
        self._epoch, self._perm = None, None

    def epoch_order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            rng = np.random.default_rng([self.cfg.seed, 3, epoch])
            self._epoch, self._perm = epoch, rng.permutation(self.cfg.n_train)
        return self._perm

    def train_batch(self, iteration, rng):
        ipe = self.cfg.iterations_per_epoch_resolved
        epoch, j = divmod(iteration, ipe)
        idx = self.epoch_order(epoch)[j * self.N:(j + 1) * self.N]
        x, y = self.data["train"]
        return pixel_sequences(x[idx], self.order, self.k, self.dtype), y[idx]

    def eval_batches(self, split, batch_size):
        x, y = self.data[split]
        for a in range(0, len(x), batch_size):
            yield pixel_sequences(x[a:a + batch_size], self.order, self.k, self.dtype), y[a:a + batch_size]


def make_task_data(cfg: TrainConfig, mnist=None, data_dir=None) -> TaskData:
    """The task's data for a config. MNIST comes from `mnist` (an MNISTData of data.py) or the cache."""
    data_rng = np.random.default_rng([cfg.seed, 0])
    if cfg.task == "copying":
        return CopyingData(cfg, data_rng)
    if cfg.task == "adding":
        return AddingData(cfg, data_rng)
    if mnist is None:
        from .data import load_mnist

        mnist = load_mnist(data_dir)
    return MNISTTask(cfg, mnist)


def task_sizes(cfg: TrainConfig) -> tuple[int, int]:
    """(input size D, output size K) of the model for a config, without loading any data."""
    if cfg.task == "copying":
        return (COPY_INPUTS if cfg.one_hot else 1), COPY_CLASSES
    if cfg.task == "adding":
        return 2, 1
    return cfg.pixels_per_step, MNIST_CLASSES
