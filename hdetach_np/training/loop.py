"""The training engine: an LSTM with a linear readout, trained on a task, with h-detach.

    cfg = TrainConfig.from_dict({"task": "copying", "delay": 10, "hidden": 32, "lr": 1e-2, "epochs": 3,
                                 "iterations_per_epoch": 100, "n_train": 1000, "n_valid": 200})
    result = train(cfg, run_dir="runs/copy-T10")        # run_dir=None trains in memory only
    result.history[-1], result.best                     # records (see runs.py), best validation
    train(cfg, run_dir="runs/copy-T10", resume=True)    # continue from the last checkpoint

One iteration: draw a minibatch, run the LSTM forward, apply the readout (at every step for the
copying task, only at the last step for adding and MNIST), take the loss, back-propagate with this
iteration's h-detach mask (one Bernoulli(p) draw per step, shared by the batch: the edge
h_{t-1} -> gates_t is cut with probability p; `detach="c"` cuts c_{t-1} -> c_t instead), clip the
global gradient norm over all parameters including the readout, and take an optimizer step.
At each epoch end the model is evaluated on the validation set (and on the test set when the
validation result is the best so far), the best model is saved and a checkpoint is written.

Random streams (all from the config seed): data sets [seed, 0], initialisation [seed, 1],
minibatches and masks [seed, 2] (its state is checkpointed), MNIST epoch order [seed, 3, epoch].
Resuming from a checkpoint continues bit for bit as the uninterrupted run would.

A non-finite loss, gradient or parameter stops the run with `TrainingDiverged`; the last checkpoint
written before it is kept.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import runs
from .config import TrainConfig
from .guard import DEFAULT_CHECKPOINT_MINUTES, check_memory, run_guard
from ..linear import LinearParams, init_linear, linear_backward, linear_forward
from ..losses import mse_loss, softmax_cross_entropy
from ..lstm import LSTMParams, init_lstm, lstm_step_forward
from ..sequence import lstm_backward, lstm_forward
from ..masks import sample_h_detach_mask
from .optim import Optimizer, clip_grad_norm, make_optimizer
from .progress import DurationEstimate
from ..paths.split import gradient_paths
from ..tasks import (COPY_CLASSES, COPY_INPUTS, MNIST_CLASSES, adding_data, copying_accuracy_steps,
                    copying_sequences, copying_sets, copying_tokens, mnist_permutation, pixel_sequences)

PARAM_NAMES = ("lstm.Wx", "lstm.Wh", "lstm.b", "readout.V", "readout.d")


class TrainingDiverged(RuntimeError):
    """The loss, the gradient or the parameters became NaN or infinite."""


# ---------------------------------------------------------------------------------------------
# The model: LSTM + linear readout
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Model:
    """An LSTM (D -> H) and a linear readout (H -> K)."""

    lstm: LSTMParams
    readout: LinearParams

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameter arrays by name (the arrays themselves: updating them updates the model)."""
        return {"lstm.Wx": self.lstm.Wx, "lstm.Wh": self.lstm.Wh, "lstm.b": self.lstm.b,
                "readout.V": self.readout.V, "readout.d": self.readout.d}

    @classmethod
    def from_arrays(cls, arrays: dict, D: int, H: int, K: int, dtype, where: str = "parameters") -> "Model":
        """Rebuild from `arrays()` output, checking every name, shape and dtype against (D, H, K, dtype)."""
        dt = np.dtype(dtype)
        shapes = {"lstm.Wx": (D, 4 * H), "lstm.Wh": (H, 4 * H), "lstm.b": (4 * H,), "readout.V": (H, K), "readout.d": (K,)}
        if set(arrays) != set(shapes):
            raise runs.CheckpointError(f"{where} holds {sorted(arrays)}, expected {sorted(shapes)}")
        for k, shape in shapes.items():
            a = arrays[k]
            if a.shape != shape or a.dtype != dt:
                raise runs.CheckpointError(f"{where} does not match the run config: {k} is {a.dtype} {a.shape}, "
                                           f"expected {dt} {shape}")
            if not np.isfinite(a).all():
                raise runs.CheckpointError(f"{where}: {k} contains NaN/inf")
        c = {k: np.array(v, copy=True) for k, v in arrays.items()}
        return cls(LSTMParams(c["lstm.Wx"], c["lstm.Wh"], c["lstm.b"]), LinearParams(c["readout.V"], c["readout.d"]))


def init_model(D: int, H: int, K: int, rng: np.random.Generator, dtype=np.float32, scheme="original") -> Model:
    """LSTM and readout initialised as the original code (U(-1/sqrt(H), 1/sqrt(H)))."""
    return Model(init_lstm(D, H, rng, dtype=dtype, scheme=scheme), init_linear(H, K, rng, dtype=dtype))


# ---------------------------------------------------------------------------------------------
# Task data
# ---------------------------------------------------------------------------------------------


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
        self.T = cfg.delay if delay is None else delay  # the copying delay
        self.one_hot, self.dtype, self.N = cfg.one_hot, np.dtype(cfg.dtype), cfg.batch_size
        self.input_size = COPY_INPUTS if cfg.one_hot else 1
        self.output_size = COPY_CLASSES
        self.steps = self.T + 20
        self.acc_steps = copying_accuracy_steps(self.T)
        if tokens is None:
            self.train_tokens, self.valid_tokens = copying_sets(cfg.n_train, cfg.n_valid, data_rng)
            self.splits = {"valid": cfg.n_valid}
        else:  # evaluation-only data (transfer)
            self.train_tokens, self.valid_tokens = None, tokens
            self.splits = {"valid": tokens.shape[1]}

    def train_batch(self, iteration, rng):
        idx = rng.integers(0, self.train_tokens.shape[1], size=self.N)
        return copying_sequences(self.train_tokens[:, idx], self.T, self.one_hot, self.dtype)

    def eval_batches(self, split, batch_size):
        tokens = self.valid_tokens
        for a in range(0, tokens.shape[1], batch_size):
            yield copying_sequences(tokens[:, a:a + batch_size], self.T, self.one_hot, self.dtype)


class AddingData(TaskData):
    """Fresh training sequences every iteration; a fixed validation set."""

    classify, last_only = False, True

    def __init__(self, cfg: TrainConfig, data_rng: np.random.Generator):
        self.T, self.N, self.dtype = cfg.length, cfg.batch_size, np.dtype(cfg.dtype)
        self.input_size, self.output_size, self.steps = 2, 1, cfg.length
        self.valid = adding_data(cfg.n_valid, cfg.length, data_rng, dtype=self.dtype)
        self.splits = {"valid": cfg.n_valid}

    def train_batch(self, iteration, rng):
        return adding_data(self.N, self.T, rng, dtype=self.dtype)

    def eval_batches(self, split, batch_size):
        x, y = self.valid
        for a in range(0, x.shape[1], batch_size):
            yield x[:, a:a + batch_size], y[a:a + batch_size]


class MNISTData(TaskData):
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
    return MNISTData(cfg, mnist)


# ---------------------------------------------------------------------------------------------
# One minibatch: loss, accuracy and gradients
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BatchResult:
    """Loss, accuracy counts and gradients (by parameter name) of one minibatch."""

    loss: float
    correct: int
    count: int  # predictions counted for accuracy (0 for regression)
    grads: dict
    dhs: np.ndarray | None  # (T, N, H) dL/dh_t from the readout (None for last-step losses)
    dhT: np.ndarray | None  # (N, H) dL/dh_T for last-step losses
    cache: object  # the LSTMCache of the forward pass

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count else None


def _nonfinite(what: str):
    raise TrainingDiverged(f"non-finite {what}")


def loss_and_grads(model: Model, x, y, task: TaskData, h_scale=None, c_scale=None) -> BatchResult:
    """Forward, loss and backward for one minibatch x (T, N, D), y (T, N) or (N,).

    h_scale / c_scale are the h-detach / c-detach keep masks for `lstm_backward`.
    Raises TrainingDiverged if the hidden states or the loss are not finite.
    """
    hs, cache = lstm_forward(model.lstm, x)  # (T, N, H)
    out = hs[-1:] if task.last_only else hs  # the readout sees (1, N, H) or (T, N, H)
    if not np.isfinite(out).all():
        _nonfinite("hidden state")
    logits, lcache = linear_forward(model.readout, out)  # (1 or T, N, K)
    if not np.isfinite(logits).all():  # finite but huge parameters overflow here
        _nonfinite("readout output (logits)")
    correct = count = 0
    if task.classify:
        targets = y[None] if task.last_only else y  # (1 or T, N)
        loss, dlogits = softmax_cross_entropy(logits, targets)
        pred = logits.argmax(-1)
        if task.last_only:
            correct, count = int((pred[0] == y).sum()), len(y)
        else:
            sel = task.acc_steps
            correct, count = int((pred[sel] == y[sel]).sum()), int(sel.sum()) * y.shape[1]
    else:
        loss, dlogits = mse_loss(logits, y.reshape(1, -1, 1).astype(logits.dtype, copy=False))
    if not math.isfinite(loss):
        _nonfinite(f"loss ({loss})")
    lg = linear_backward(dlogits, lcache)
    if task.last_only:
        dhs, dhT = None, lg.h[0]
        g = lstm_backward(None, cache, h_scale=h_scale, c_scale=c_scale, dhT=dhT)
    else:
        dhs, dhT = lg.h, None
        g = lstm_backward(dhs, cache, h_scale=h_scale, c_scale=c_scale)
    grads = {"lstm.Wx": g.Wx, "lstm.Wh": g.Wh, "lstm.b": g.b, "readout.V": lg.V, "readout.d": lg.d}
    return BatchResult(loss, correct, count, grads, dhs, dhT, cache)


def path_norms(res: BatchResult) -> dict:
    """Norms of the cell-path and h-path parts of the full (unmasked) LSTM gradient of a minibatch."""
    dhs = res.dhs
    if dhs is None:  # last-step loss: dL/dh_t is zero except at the last step
        dhs = np.zeros(res.cache.h[1:].shape, res.dhT.dtype)
        dhs[-1] = res.dhT
    return gradient_paths(dhs, res.cache).norms()


def _check_eval_logits(logits):
    if not np.isfinite(logits).all():
        _nonfinite("readout output (logits) in evaluation")


def evaluate(model: Model, task: TaskData, split: str = "valid", batch_size: int = 1000) -> dict:
    """Loss and accuracy on a split, in chunks of `batch_size` sequences, without storing caches.

    Copying: loss averaged over all steps, accuracy over the last 10. Adding: MSE at the last step.
    MNIST: loss and accuracy at the last step. Returns {"loss", "accuracy" (None for regression), "n"}.
    Raises TrainingDiverged if the model's output overflows.
    """
    if split not in task.splits:
        raise ValueError(f"unknown split {split!r} for this task; expected one of {', '.join(map(repr, task.splits))}")
    total = 0.0
    correct = count = n_total = 0
    H, dt = model.lstm.hidden_size, model.lstm.dtype
    for x, y in task.eval_batches(split, batch_size):
        T, n, _ = x.shape
        h, c = np.zeros((n, H), dt), np.zeros((n, H), dt)
        step_loss = 0.0
        for t in range(T):
            h, c, _ = lstm_step_forward(x[t], h, c, model.lstm)
            if not task.last_only:
                logits, _ = linear_forward(model.readout, h[None])  # (1, n, K)
                _check_eval_logits(logits)
                step_loss += softmax_cross_entropy(logits, y[t][None])[0]
                if task.acc_steps[t]:
                    correct += int((logits[0].argmax(-1) == y[t]).sum())
                    count += n
        if task.last_only:
            logits, _ = linear_forward(model.readout, h[None])  # (1, n, K)
            _check_eval_logits(logits)
            if task.classify:
                step_loss = softmax_cross_entropy(logits, y[None])[0]
                correct += int((logits[0].argmax(-1) == y).sum())
                count += n
            else:
                step_loss = mse_loss(logits, y.reshape(1, n, 1).astype(dt, copy=False))[0]
        else:
            step_loss /= T
        total += step_loss * n
        n_total += n
    return {"loss": total / n_total, "accuracy": correct / count if count else None, "n": n_total}


# ---------------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What `train` returns: the final model, the whole history, the best validation record."""

    model: Model
    history: list
    best: dict | None
    iteration: int
    complete: bool
    run_dir: Path | None


def _better(task: TaskData, ev: dict, best: dict | None) -> bool:
    """Higher validation accuracy wins (ties: lower loss); regression: lower loss."""
    if best is None:
        return True
    if task.classify:
        return ev["accuracy"] > best["accuracy"] or (ev["accuracy"] == best["accuracy"] and ev["loss"] < best["loss"])
    return ev["loss"] < best["loss"]


def _new_optimizer(cfg: TrainConfig, model: Model) -> Optimizer:
    return make_optimizer(cfg.optimizer, model.arrays(), cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                          momentum=cfg.momentum, alpha=cfg.alpha, weight_decay=cfg.weight_decay)


def _restore_rng(state: dict, where: str) -> np.random.Generator:
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name != "PCG64":
        raise runs.CheckpointError(f"{where}: expected a PCG64 generator state, got {name!r}")
    bg = np.random.PCG64()
    try:
        bg.state = state
    except (TypeError, ValueError, KeyError) as err:
        raise runs.CheckpointError(f"{where}: invalid generator state ({err})") from err
    return np.random.Generator(bg)


def train(config: TrainConfig, run_dir=None, *, resume: bool = False, stop_after: int | None = None,
          quiet: bool = True, mnist=None, data_dir=None,
          checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES) -> TrainResult:
    """Train a model as `config` says; write the run folder `run_dir` (None: in memory only).

    resume=True continues the run in `run_dir` from its checkpoint (its config.json must equal
    `config`; a folder with a config and no checkpoint starts from iteration 0). stop_after=K stops
    after iteration K with a checkpoint. Checkpoints are written at each epoch end, every
    `config.checkpoint_every` iterations, and after `checkpoint_minutes` of training since the last
    one (0: never). quiet=False shows a tqdm progress bar on a terminal and prints one line per
    epoch. `mnist` (an `data.MNISTData`) overrides the MNIST cache in `data_dir`.

    Raises TrainingDiverged on NaN/inf; TrainingInterrupted (a KeyboardInterrupt) after writing a
    checkpoint when SIGINT or SIGTERM arrives; runs.RunFolderBusy if another process trains in
    `run_dir`; MemoryError before anything is written if the model cannot fit in memory.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if stop_after is not None and (not isinstance(stop_after, int) or stop_after < 1):
        raise ValueError(f"stop_after must be a positive integer, got {stop_after!r}")
    if resume and run_dir is None:
        raise ValueError("resume needs a run_dir")
    check_memory(config, *task_sizes(config))
    with run_guard(run_dir, fresh=not resume, checkpoint_minutes=checkpoint_minutes,
                   keep_on=(TrainingDiverged,)) as guard:
        return _train(config, run_dir, guard, resume=resume, stop_after=stop_after, quiet=quiet, mnist=mnist,
                      data_dir=data_dir)


def task_sizes(cfg: TrainConfig) -> tuple[int, int]:
    """(input size D, output size K) of the model for a config's task."""
    D = {"copying": COPY_INPUTS if cfg.one_hot else 1, "adding": 2}.get(cfg.task, cfg.pixels_per_step)
    K = {"copying": COPY_CLASSES, "adding": 1}.get(cfg.task, MNIST_CLASSES)
    return D, K


def _train(cfg: TrainConfig, run_dir, guard, *, resume, stop_after, quiet, mnist, data_dir) -> TrainResult:
    """The body of `train`, run under its `guard` (the folder's lock, signals, timed checkpoints)."""
    run = Path(run_dir) if run_dir is not None else None
    task = make_task_data(cfg, mnist=mnist, data_dir=data_dir)
    D, H, K, dt = task.input_size, cfg.hidden, task.output_size, np.dtype(cfg.dtype)
    ckpt_path = run / runs.CHECKPOINT if run is not None else None

    seconds_before, fresh = 0.0, not resume
    if resume:
        saved = TrainConfig.from_dict(runs.read_json(run / runs.CONFIG))
        if saved != cfg:
            diff = [k for k in cfg.keys() if getattr(saved, k) != getattr(cfg, k)]
            raise ValueError(f"the config differs from {run / runs.CONFIG} in {', '.join(diff)}; "
                             "a resumed run keeps its config")
    if resume and not ckpt_path.exists():  # stopped before its first checkpoint: start again at iteration 0
        resume = False
        runs.truncate_history(run / runs.HISTORY, 0)
    if resume:
        params, opt_state, meta = runs.load_checkpoint(ckpt_path)
        if meta.get("config") != cfg.to_dict():
            raise runs.CheckpointError(f"{ckpt_path} was written by a different config than {run / runs.CONFIG}")
        model = Model.from_arrays(params, D, H, K, dt, where=str(ckpt_path))
        opt = _new_optimizer(cfg, model)
        try:
            opt.load_state_dict(opt_state)
        except ValueError as err:
            raise runs.CheckpointError(f"{ckpt_path}: {err}") from err
        rng = _restore_rng(meta.get("rng"), str(ckpt_path))
        start, best = meta.get("iteration"), meta.get("best")
        if not isinstance(start, int) or not 0 <= start <= cfg.total_iterations:
            raise runs.CheckpointError(f"{ckpt_path}: invalid iteration {start!r}")
        seconds_before = float(meta.get("seconds", 0.0))
        history = runs.HistoryWriter(run / runs.HISTORY, runs.truncate_history(run / runs.HISTORY, start))
    else:
        model = init_model(D, H, K, np.random.default_rng([cfg.seed, 1]), dt, cfg.init)
        opt = _new_optimizer(cfg, model)
        rng = np.random.default_rng([cfg.seed, 2])
        start, best = 0, None
        if run is not None and fresh:  # the guard made sure the folder is empty
            runs.write_json(run / runs.CONFIG, cfg.to_dict())
            runs.write_json(run / runs.VERSIONS, runs.versions())
        history = runs.HistoryWriter(run / runs.HISTORY if run is not None else None)

    if resume and not quiet and (run / runs.VERSIONS).is_file():
        then, now = runs.read_json(run / runs.VERSIONS), runs.versions()
        changed = [f"{k} {then.get(k)} -> {now[k]}" for k in ("python", "numpy") if then.get(k) != now[k]]
        if changed:
            print(f"warning: resuming with {', '.join(changed)}; the continuation may differ in the last bits",
                  file=sys.stderr)
    ipe, total = cfg.iterations_per_epoch_resolved, cfg.total_iterations
    stop = total if stop_after is None else min(total, max(stop_after, start))
    last_ckpt = start if resume else None
    t0 = time.perf_counter()
    bar = _progress(cfg, start, total, quiet)
    estimate = DurationEstimate(start, stop)
    say = (bar.write if bar is not None else lambda s: print(s, flush=True)) if not quiet else (lambda s: None)

    def seconds():
        return seconds_before + time.perf_counter() - t0

    def checkpoint(k):
        nonlocal last_ckpt
        if ckpt_path is None:
            return
        meta = {"iteration": k, "epochs_completed": k // ipe, "best": best, "rng": rng.bit_generator.state,
                "config": cfg.to_dict(), "seconds": seconds(), "optimizer": cfg.optimizer}
        history.flush()
        runs.save_checkpoint(ckpt_path, model.arrays(), meta, opt.state_dict())
        last_ckpt = k
        guard.checkpoint_written()

    def diverged(k, epoch, what):
        where = (f"the last good checkpoint is {ckpt_path} (iteration {last_ckpt})" if last_ckpt is not None
                 else "no checkpoint was written before it")
        msg = (f"{what} at iteration {k} (epoch {epoch + 1}); training stopped, {where}. "
               "Try a smaller --lr or gradient clipping (--clip 1)")
        history.write({"iteration": k, "event": "diverged", "message": msg})
        history.flush()
        raise TrainingDiverged(msg)

    L, N = task.steps, cfg.batch_size
    k = start
    try:
        for it in range(start, stop):
            k = it + 1  # updates done after this iteration
            epoch = it // ipe
            p = cfg.p_at_epoch(epoch)
            x, y = task.train_batch(it, rng)
            h_scale = c_scale = None
            if p > 0:
                keep = sample_h_detach_mask(L, p, rng, per=cfg.mask_per, N=N, H=H, dtype=dt)
                h_scale, c_scale = (keep, None) if cfg.detach == "h" else (None, keep)
            try:
                res = loss_and_grads(model, x, y, task, h_scale, c_scale)
            except TrainingDiverged as err:
                diverged(k, epoch, str(err))
            if cfg.log_paths_every and k % cfg.log_paths_every == 0:
                paths = {"iteration": k, "norms": path_norms(res)}  # before the update: the cache holds the params
            else:
                paths = None
            norm, clipped = clip_grad_norm(res.grads, cfg.clip)
            if not math.isfinite(norm):
                diverged(k, epoch, f"non-finite gradient norm ({norm})")
            opt.step(res.grads)
            if not all(np.isfinite(a).all() for a in model.arrays().values()):
                diverged(k, epoch, "non-finite parameters after the update")
            if k % cfg.log_every == 0:
                history.write({"iteration": k, "epoch": epoch + 1, "loss": res.loss, "accuracy": res.accuracy,
                               "grad_norm": norm, "clipped": clipped, "p": p})
            if paths is not None:
                history.write({"iteration": k, "paths": paths})
            note = estimate.after_iteration(k)
            if note:
                say(note)
            if bar is not None:
                bar.update(1)
                if k % 10 == 0 or k == stop:
                    bar.set_postfix(_postfix(res, best), refresh=False)
            if k % ipe == 0:
                try:
                    best = _end_of_epoch(cfg, model, task, run, history, k, epoch, best, seconds(), say)
                except TrainingDiverged as err:
                    diverged(k, epoch, str(err))
                checkpoint(k)
            elif (cfg.checkpoint_every and k % cfg.checkpoint_every == 0) or guard.checkpoint_due():
                checkpoint(k)
            if guard.stop_requested:  # SIGINT/SIGTERM: stop between iterations, checkpoint below
                break
        k = max(k, start)
        if last_ckpt != k:
            checkpoint(k)
    finally:
        if bar is not None:
            bar.close()
        history.flush()
        history.close()
    complete = k >= total
    if run is not None:
        runs.write_json(run / runs.SUMMARY, {
            "iteration": k, "epochs_completed": k / ipe, "complete": complete, "best": best, "seconds": seconds(),
            "seconds_per_iteration_this_session": (time.perf_counter() - t0) / max(k - start, 1),
        })
    guard.raise_if_stopped(k, complete)
    return TrainResult(model, history.records, best, k, complete, run)


def _end_of_epoch(cfg, model, task, run, history, k, epoch, best, secs, say):
    ev = evaluate(model, task, "valid", cfg.eval_batch_size)
    if not math.isfinite(ev["loss"]):
        raise TrainingDiverged(f"non-finite validation loss ({ev['loss']})")
    improved = _better(task, ev, best)
    history.write({"iteration": k, "epoch": epoch + 1, "split": "valid", "loss": ev["loss"], "accuracy": ev["accuracy"],
                   "best": improved, "seconds": secs})
    line = f"epoch {epoch + 1}/{cfg.epochs}: valid loss {ev['loss']:.4f}"
    if ev["accuracy"] is not None:
        line += f", accuracy {ev['accuracy']:.4f}"
    if improved:
        best = {"iteration": k, "epoch": epoch + 1, "loss": ev["loss"], "accuracy": ev["accuracy"]}
        if "test" in task.splits:
            te = evaluate(model, task, "test", cfg.eval_batch_size)
            if not math.isfinite(te["loss"]):
                raise TrainingDiverged(f"non-finite test loss ({te['loss']})")
            history.write({"iteration": k, "epoch": epoch + 1, "split": "test", "loss": te["loss"],
                           "accuracy": te["accuracy"], "best": True, "seconds": secs})
            best.update(test_loss=te["loss"], test_accuracy=te["accuracy"])
            line += f" (best; test accuracy {te['accuracy']:.4f})"
        else:
            line += " (best)"
        if run is not None:
            runs.save_checkpoint(run / runs.BEST, model.arrays(), {"iteration": k, "epoch": epoch + 1, "best": best,
                                                                   "config": cfg.to_dict()})
    say(line)
    return best


def _postfix(res: BatchResult, best):
    out = {"loss": f"{res.loss:.4f}"}
    if res.accuracy is not None:
        out["acc"] = f"{res.accuracy:.3f}"
    if best is not None and best.get("accuracy") is not None:
        out["best"] = f"{best['accuracy']:.3f}"
    return out


def _progress(cfg, start, total, quiet):
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc=cfg.task, unit="it", dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------
# Using a finished run
# ---------------------------------------------------------------------------------------------


def load_run(run_dir, which: str = "best") -> tuple[TrainConfig, Model, dict]:
    """(config, model, checkpoint meta) of a run folder; which = "best" or "last"."""
    run = Path(run_dir)
    if not (run / runs.CONFIG).is_file():
        raise FileNotFoundError(f"{run} is not a run folder (no {runs.CONFIG})")
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    cfg = TrainConfig.from_dict(runs.read_json(run / runs.CONFIG))
    path = run / (runs.BEST if which == "best" else runs.CHECKPOINT)
    params, _, meta = runs.load_checkpoint(path)
    D, K = task_sizes(cfg)
    return cfg, Model.from_arrays(params, D, cfg.hidden, K, cfg.dtype, where=str(path)), meta


def evaluate_run(run_dir, which: str = "best", splits=None, mnist=None, data_dir=None) -> dict:
    """Evaluate a run's best (or last) model on its splits: {split: {"loss", "accuracy", "n"}}."""
    cfg, model, meta = load_run(run_dir, which)
    task = make_task_data(cfg, mnist=mnist, data_dir=data_dir)
    splits = list(task.splits) if splits is None else list(splits)
    return {s: evaluate(model, task, s, cfg.eval_batch_size) for s in splits}


def transfer_copying(run_dir, Ts, n: int = 5000, seed: int = 555, which: str = "best", log=None) -> list[dict]:
    """Evaluate a copying run's model on n fresh sequences at each delay in Ts (seed 555 per delay):
    [{"delay", "loss", "accuracy", "n", "seed"}]. log: None or a function called with one line per delay."""
    cfg, model, _ = load_run(run_dir, which)
    if cfg.task != "copying":
        raise ValueError(f"transfer needs a copying run, got task {cfg.task!r}")
    out = []
    for T in Ts:
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"every delay must be an integer >= 1, got {T!r}")
        tokens = copying_tokens(n, np.random.default_rng(seed))
        task = CopyingData(cfg, None, delay=T, tokens=tokens)
        ev = evaluate(model, task, "valid", cfg.eval_batch_size)
        out.append({"delay": T, "loss": ev["loss"], "accuracy": ev["accuracy"], "n": ev["n"], "seed": seed})
        if log is not None:
            log(f"  delay {T}: accuracy {ev['accuracy']:.4f} ({len(out)}/{len(Ts)})")
    return out
