"""The training loop: an LSTM with a linear readout (model.py), trained on a task (task_data.py), with h-detach.

    cfg = TrainConfig.from_dict({"task": "copying", "delay": 10, "hidden": 32, "lr": 1e-2, "epochs": 3,
                                 "iterations_per_epoch": 100, "n_train": 1000, "n_valid": 200})
    result = train(cfg, run_dir="runs/copy-T10")        # run_dir=None trains in memory only
    result.history[-1], result.best                     # records (see runs.py), best validation
    train(cfg, run_dir="runs/copy-T10", resume=True)    # continue from the last checkpoint

One iteration: draw a minibatch, run the LSTM forward, apply the readout (at every step for the
copying task, only at the last step for adding and MNIST), take the loss, back-propagate with this
iteration's h-detach mask (one Bernoulli(p) draw per step, shared by the batch: the edge
h_{t-1} -> gates_t is cut with probability p; `detach="c"` cuts c_{t-1} -> c_t instead), clip the
global gradient norm over all parameters including the readout (both biases with bias="two"), and
take an optimizer step.
At each epoch end the model is evaluated on the validation set (and on the test set when the
validation result is the best so far), the best model is saved and a checkpoint is written.

Random streams (all from the config seed): data sets [seed, 0], initialisation [seed, 1],
minibatches and masks [seed, 2] (its state is checkpointed), MNIST epoch order [seed, 3, epoch].
Resuming from a checkpoint continues bit for bit as the uninterrupted run would.

A non-finite loss, gradient or parameter stops the run with `TrainingDiverged`; the last checkpoint
written before it is kept. The run's `guard` (guard.py) holds the folder's lock, turns SIGINT and
SIGTERM into a stop between iterations with a checkpoint, and asks for timed checkpoints.

`train` reads top to bottom as one iteration does; what persists between iterations is a
`TrainState` (what a checkpoint holds) and a `RunLog` (history, checkpoints, progress, clock).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..masks import sample_h_detach_mask
from . import runs
from .config import ADDED_KEYS, TrainConfig
from .guard import DEFAULT_CHECKPOINT_MINUTES, check_memory, run_guard
from .model import Model, TrainingDiverged, evaluate, init_model, loss_and_grads, path_norms
from .optim import Optimizer, clip_grad_norm, make_optimizer
from .progress import DurationEstimate, SlowdownWatch
from .task_data import TaskData, make_task_data, task_sizes
from .threads import blas_summary


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What `train` returns: the final model, the whole history, the best validation record."""

    model: Model
    history: list
    best: dict | None
    iteration: int
    complete: bool
    run_dir: Path | None


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
    cfg, run = _check_arguments(config, run_dir, resume, stop_after)
    check_memory(cfg, *task_sizes(cfg))
    with run_guard(run, fresh=not resume, checkpoint_minutes=checkpoint_minutes,
                   keep_on=(TrainingDiverged,)) as guard:
        return _train(cfg, run, guard, resume=resume, stop_after=stop_after, quiet=quiet, mnist=mnist,
                      data_dir=data_dir)


def _train(cfg: TrainConfig, run: Path | None, guard, *, resume, stop_after, quiet, mnist, data_dir) -> TrainResult:
    """The body of `train`, run under its `guard` (the folder's lock, signals, timed checkpoints)."""
    # -- the task's data, then the model, optimizer and random stream: new, or from the checkpoint
    task = make_task_data(cfg, mnist=mnist, data_dir=data_dir)
    fresh = not resume
    if resume and not (run / runs.CHECKPOINT).exists():  # stopped before its first checkpoint: start at 0
        _check_saved_config(cfg, run)
        resume = False
        runs.truncate_history(run / runs.HISTORY, 0)
    state = resume_state(cfg, task, run, quiet) if resume else new_state(cfg, task, run, write_config=fresh)
    log = RunLog(cfg, run, state, resume, quiet, guard)
    ipe, total = cfg.iterations_per_epoch_resolved, cfg.total_iterations
    stop = total if stop_after is None else min(total, max(stop_after, state.iteration))
    estimate = DurationEstimate(state.iteration, stop)  # one line if the run will take long
    slowdown = SlowdownWatch(blas_summary()["threads"],  # one line if a second BLAS thread starts to hurt
                             resume_hint=f"hdetach-np train --resume {run}" if run is not None else None)
    cache, eval_buffers = None, {}  # memory reused by every iteration and every evaluation
    k = epoch = None
    try:
        while state.iteration < stop:
            k = state.iteration + 1  # updates done after this iteration
            epoch = (k - 1) // ipe
            p = cfg.p_at_epoch(epoch)
            # -- a minibatch and this iteration's mask (one Bernoulli(p) draw per step, or finer)
            x, y = task.train_batch(k - 1, state.rng)
            keep = None
            if p > 0:
                keep = sample_h_detach_mask(task.steps, p, state.rng, per=cfg.mask_per, N=cfg.batch_size,
                                            H=cfg.hidden, dtype=np.dtype(cfg.dtype))
            h_scale, c_scale = (keep, None) if cfg.detach == "h" else (None, keep)
            # -- forward, readout, loss and backward
            res = loss_and_grads(state.model, x, y, task, h_scale, c_scale, reuse=cache)
            cache = res.cache
            # -- the cell-path / h-path split of the unmasked gradient (the cache holds this iteration's parameters)
            paths = path_norms(res) if cfg.log_paths_every and k % cfg.log_paths_every == 0 else None
            # -- clip the global gradient norm, update the parameters
            norm, clipped = clip_grad_norm(res.grads, cfg.clip)
            if not math.isfinite(norm):
                raise TrainingDiverged(f"non-finite gradient norm ({norm})")
            state.opt.step(res.grads)
            state.model.sum_biases()  # two biases: lstm.b = b_ih + b_hh again
            if not all(np.isfinite(a).all() for a in state.model.arrays().values()):
                raise TrainingDiverged("non-finite parameters after the update")
            state.iteration = k
            # -- the run log
            if k % cfg.log_every == 0:
                log.write({"iteration": k, "epoch": epoch + 1, "loss": res.loss, "accuracy": res.accuracy,
                           "grad_norm": norm, "clipped": clipped, "p": p})
            if paths is not None:
                log.write({"iteration": k, "paths": {"iteration": k, "norms": paths}})
            log.progress(k, stop, res, state.best)
            for note in (estimate.after_iteration(k), slowdown.after_iteration(k)):
                if note:
                    log.say(note)
            # -- at an epoch's end: evaluate, keep the best model, checkpoint
            if k % ipe == 0:
                state.best = end_of_epoch(cfg, task, state, run, log, eval_buffers)
                log.checkpoint(state)
                slowdown.skip()  # evaluations and checkpoints are not training iterations
            elif (cfg.checkpoint_every and k % cfg.checkpoint_every == 0) or guard.checkpoint_due():
                log.checkpoint(state)
                slowdown.skip()
            if guard.stop_requested:  # SIGINT/SIGTERM: stop between iterations, checkpoint below
                break
        if log.last_checkpoint != state.iteration:
            log.checkpoint(state)
    except TrainingDiverged as err:
        raise log.diverged(err, k, epoch) from err
    finally:
        log.close()
    # -- the summary of this session
    complete = state.iteration >= total
    if run is not None:
        runs.write_json(run / runs.SUMMARY, {
            "iteration": state.iteration, "epochs_completed": state.iteration / ipe, "complete": complete,
            "best": state.best,
            "seconds": log.seconds(), "seconds_per_iteration_this_session": log.seconds_per_iteration(state),
        })
    guard.raise_if_stopped(state.iteration, complete)
    return TrainResult(state.model, log.history.records, state.best, state.iteration, complete, run)


def _check_arguments(config, run_dir, resume, stop_after) -> tuple[TrainConfig, Path | None]:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if stop_after is not None and (not isinstance(stop_after, int) or stop_after < 1):
        raise ValueError(f"stop_after must be a positive integer, got {stop_after!r}")
    if resume and run_dir is None:
        raise ValueError("resume needs a run_dir")
    return config, (Path(run_dir) if run_dir is not None else None)


def end_of_epoch(cfg: TrainConfig, task: TaskData, state: TrainState, run, log: RunLog,
                 buffers: dict | None = None) -> dict | None:
    """Evaluate on the validation set (and the test set at a new best); save the best model. Returns the best.

    buffers: the evaluation's memory, kept for the next epoch (see `evaluate`)."""
    k, best = state.iteration, state.best
    epoch = (k - 1) // cfg.iterations_per_epoch_resolved + 1  # counted from 1
    ev = evaluate(state.model, task, "valid", cfg.eval_batch_size, buffers)
    if not math.isfinite(ev["loss"]):
        raise TrainingDiverged(f"non-finite validation loss ({ev['loss']})")
    improved = _better(task, ev, best)
    log.write({"iteration": k, "epoch": epoch, "split": "valid", "loss": ev["loss"], "accuracy": ev["accuracy"],
               "best": improved, "seconds": log.seconds()})
    line = f"epoch {epoch}/{cfg.epochs}: valid loss {ev['loss']:.4f}"
    if ev["accuracy"] is not None:
        line += f", accuracy {ev['accuracy']:.4f}"
    if improved:
        best = {"iteration": k, "epoch": epoch, "loss": ev["loss"], "accuracy": ev["accuracy"]}
        if "test" in task.splits:
            te = evaluate(state.model, task, "test", cfg.eval_batch_size, buffers)
            if not math.isfinite(te["loss"]):
                raise TrainingDiverged(f"non-finite test loss ({te['loss']})")
            log.write({"iteration": k, "epoch": epoch, "split": "test", "loss": te["loss"],
                       "accuracy": te["accuracy"], "best": True, "seconds": log.seconds()})
            best.update(test_loss=te["loss"], test_accuracy=te["accuracy"])
            line += f" (best; test accuracy {te['accuracy']:.4f})"
        else:
            line += " (best)"
        if run is not None:
            runs.save_checkpoint(run / runs.BEST, state.model.arrays(),
                                 {"iteration": k, "epoch": epoch, "best": best, "config": cfg.to_dict()})
    log.say(line)
    return best


def _better(task: TaskData, ev: dict, best: dict | None) -> bool:
    """Higher validation accuracy wins (ties: lower loss); regression: lower loss."""
    if best is None:
        return True
    if task.classify:
        return ev["accuracy"] > best["accuracy"] or (ev["accuracy"] == best["accuracy"] and ev["loss"] < best["loss"])
    return ev["loss"] < best["loss"]


# ---------------------------------------------------------------------------------------------
# The training state: what a checkpoint holds
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class TrainState:
    """The model, its optimizer, the minibatch-and-mask random stream and the progress of a run."""

    model: Model
    opt: Optimizer
    rng: np.random.Generator  # minibatches and masks, stream [seed, 2]
    iteration: int  # parameter updates done
    best: dict | None  # the best validation record so far
    seconds_before: float  # training time of earlier sessions of this run


def _new_optimizer(cfg: TrainConfig, model: Model) -> Optimizer:
    return make_optimizer(cfg.optimizer, model.arrays(), cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                          momentum=cfg.momentum, alpha=cfg.alpha, weight_decay=cfg.weight_decay)


def new_state(cfg: TrainConfig, task: TaskData, run: Path | None, write_config: bool = True) -> TrainState:
    """A new run's state: the model initialised; with write_config, config.json and versions.json
    written into the run folder (which `run_guard` has made sure is new or empty)."""
    if run is not None and write_config:
        runs.write_json(run / runs.CONFIG, cfg.to_dict())
        runs.write_json(run / runs.VERSIONS, runs.versions())
    model = init_model(task.input_size, cfg.hidden, task.output_size, np.random.default_rng([cfg.seed, 1]),
                       np.dtype(cfg.dtype), cfg.init, cfg.bias)
    return TrainState(model, _new_optimizer(cfg, model), np.random.default_rng([cfg.seed, 2]), 0, None, 0.0)


def _check_saved_config(cfg: TrainConfig, run: Path) -> None:
    saved = TrainConfig.from_saved(runs.read_json(run / runs.CONFIG))
    if saved != cfg:
        diff = [k for k in cfg.keys() if getattr(saved, k) != getattr(cfg, k)]
        raise ValueError(f"the config differs from {run / runs.CONFIG} in {', '.join(diff)}; "
                         "a resumed run keeps its config")


def resume_state(cfg: TrainConfig, task: TaskData, run: Path, quiet: bool = True) -> TrainState:
    """The state saved in the run folder's checkpoint, checked against `cfg` and the task."""
    _check_saved_config(cfg, run)
    path = run / runs.CHECKPOINT
    params, opt_state, meta = runs.load_checkpoint(path)
    written_by = meta.get("config")
    if not isinstance(written_by, dict) or {**ADDED_KEYS, **written_by} != cfg.to_dict():
        raise runs.CheckpointError(f"{path} was written by a different config than {run / runs.CONFIG}")
    model = Model.from_arrays(params, task.input_size, cfg.hidden, task.output_size, cfg.dtype, where=str(path),
                              bias=cfg.bias)
    opt = _new_optimizer(cfg, model)
    try:
        opt.load_state_dict(opt_state)
    except ValueError as err:
        raise runs.CheckpointError(f"{path}: {err}") from err
    rng = _restore_rng(meta.get("rng"), str(path))
    start = meta.get("iteration")
    if not isinstance(start, int) or not 0 <= start <= cfg.total_iterations:
        raise runs.CheckpointError(f"{path}: invalid iteration {start!r}")
    if not quiet and (run / runs.VERSIONS).is_file():
        then, now = runs.read_json(run / runs.VERSIONS), runs.versions()
        changed = [f"{k} {then.get(k)} -> {now[k]}" for k in ("python", "numpy") if then.get(k) != now[k]]
        if "blas" in then:  # versions.json of runs started before it recorded the BLAS has none
            def kernel(blas):
                return "/".join(str(lib.get("architecture")) for lib in blas.get("libraries", []))

            for what, value in (("BLAS threads", lambda b: b.get("threads")), ("BLAS kernel", kernel)):
                if value(then["blas"]) != value(now["blas"]):
                    changed.append(f"{what} {value(then['blas'])} -> {value(now['blas'])}")
        if changed:
            print(f"warning: resuming with {', '.join(changed)}; the continuation may differ in the last bits",
                  file=sys.stderr)
    return TrainState(model, opt, rng, start, meta.get("best"), float(meta.get("seconds", 0.0)))


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


# ---------------------------------------------------------------------------------------------
# The run log: history, checkpoints, progress, clock
# ---------------------------------------------------------------------------------------------


class RunLog:
    """Where a run reports: history.jsonl (and the records in memory), checkpoints, a progress bar
    and one line per epoch (quiet=False), and the clock of the run."""

    def __init__(self, cfg: TrainConfig, run: Path | None, state: TrainState, resume: bool, quiet: bool,
                 guard=None):
        self.cfg, self.run, self.guard = cfg, run, guard
        path = run / runs.HISTORY if run is not None else None
        kept = runs.truncate_history(path, state.iteration) if resume else None
        self.history = runs.HistoryWriter(path, kept)
        self.last_checkpoint = state.iteration if resume else None  # iteration of the last checkpoint written
        self.start, self.seconds_before, self.t0 = state.iteration, state.seconds_before, time.perf_counter()
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=cfg.total_iterations, initial=state.iteration, desc=cfg.task, unit="it",
                            dynamic_ncols=True)
        self.quiet = quiet

    def seconds(self) -> float:
        """Training time of the run so far, earlier sessions included."""
        return self.seconds_before + time.perf_counter() - self.t0

    def seconds_per_iteration(self, state: TrainState) -> float:
        return (time.perf_counter() - self.t0) / max(state.iteration - self.start, 1)

    def write(self, record: dict) -> None:
        self.history.write(record)

    def say(self, line: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def progress(self, k: int, stop: int, res, best: dict | None) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if k % 10 == 0 or k == stop:
            post = {"loss": f"{res.loss:.4f}"}
            if res.accuracy is not None:
                post["acc"] = f"{res.accuracy:.3f}"
            if best is not None and best.get("accuracy") is not None:
                post["best"] = f"{best['accuracy']:.3f}"
            self.bar.set_postfix(post, refresh=False)

    def checkpoint(self, state: TrainState) -> None:
        """Write the checkpoint (in memory-only runs: nothing)."""
        if self.run is None:
            return
        k = state.iteration
        meta = {"iteration": k, "epochs_completed": k // self.cfg.iterations_per_epoch_resolved, "best": state.best,
                "rng": state.rng.bit_generator.state, "config": self.cfg.to_dict(), "seconds": self.seconds(),
                "optimizer": self.cfg.optimizer}
        self.history.flush()
        runs.save_checkpoint(self.run / runs.CHECKPOINT, state.model.arrays(), meta, state.opt.state_dict())
        self.last_checkpoint = k
        if self.guard is not None:
            self.guard.checkpoint_written()

    def diverged(self, err: TrainingDiverged, k: int, epoch: int) -> TrainingDiverged:
        """Record a divergence at iteration k; returns the error to raise, naming the last checkpoint."""
        if self.last_checkpoint is not None and self.run is not None:
            where = f"the last good checkpoint is {self.run / runs.CHECKPOINT} (iteration {self.last_checkpoint})"
        else:
            where = "no checkpoint was written before it"
        msg = (f"{err} at iteration {k} (epoch {epoch + 1}); training stopped, {where}. "
               "Try a smaller --lr or gradient clipping (--clip 1)")
        self.write({"iteration": k, "event": "diverged", "message": msg})
        self.history.flush()
        return TrainingDiverged(msg)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.history.flush()
        self.history.close()
