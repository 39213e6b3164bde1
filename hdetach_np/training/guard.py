"""Keeping a run's work: the folder's lock, stops on SIGINT/SIGTERM, timed checkpoints, memory.

    with run_guard(run, fresh=True, checkpoint_minutes=3.0) as guard:   # what `train` does
        for it in range(start, stop):
            ...one iteration...
            if guard.checkpoint_due():
                checkpoint(k)                 # which calls guard.checkpoint_written()
            if guard.stop_requested:
                break                         # then: checkpoint, guard.raise_if_stopped(k, ...)

For the life of a run in a folder, `run_guard`
- holds the folder's lock (`runs.lock_run_folder`): a second process is refused at once;
- removes the temporary files that a killed atomic write of this run left behind;
- refuses a fresh run in a folder that is not empty (a folder with a config and no checkpoint
  is resumed from iteration 0 with `resume=True`);
- turns the first SIGINT (Ctrl-C) or SIGTERM into a request to stop: the loop finishes the
  iteration under way, writes a checkpoint and raises `TrainingInterrupted` (a KeyboardInterrupt)
  saying how to resume. A second signal acts at once, as it would without the guard (in a sweep's
  worker process, where `PendingStop` handles the signals outside runs, it is only remembered);
- when a fresh run fails before its first checkpoint (out of memory, disk full...), removes the
  files it wrote, so no half-made folder stays behind. A run that diverged keeps its history.
Signals are handled only in the main thread, and only for runs with a folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np

from . import runs

DEFAULT_CHECKPOINT_MINUTES = 3.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a run between two iterations, after writing a checkpoint."""

    def __init__(self, signum: int, iteration: int, run_dir):
        self.signum, self.iteration, self.run_dir = signum, iteration, Path(run_dir)
        name = signal.Signals(signum).name
        super().__init__(f"{name} at iteration {iteration}: checkpoint written to {self.run_dir / runs.CHECKPOINT}; "
                         f"resume with: hdetach-np train --resume {self.run_dir}")

    def __reduce__(self):
        # pickled by its constructor's arguments (the default would call it with the message alone),
        # so that it can travel from a worker process to a sweep's driver
        return type(self), (self.signum, self.iteration, self.run_dir)

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130, 143)."""
        return 128 + self.signum


class CheckpointTimer:
    """Says when `minutes` have passed since the last checkpoint (minutes = 0: never)."""

    def __init__(self, minutes: float, clock=time.monotonic):
        if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not minutes >= 0:
            raise ValueError(f"checkpoint_minutes must be a number >= 0 (0 = no timed checkpoints), got {minutes!r}")
        self.seconds, self.clock = 60.0 * minutes, clock
        self.last = clock()

    def due(self) -> bool:
        return self.seconds > 0 and self.clock() - self.last >= self.seconds

    def reset(self) -> None:
        self.last = self.clock()


class RunGuard:
    """What the training loop asks during a run: `stop_requested`, `checkpoint_due()`."""

    def __init__(self, run: Path | None, checkpoint_minutes: float):
        self.run = run
        self.timer = CheckpointTimer(checkpoint_minutes if run is not None else 0)
        self.stop_signal: int | None = None

    @property
    def stop_requested(self) -> bool:
        return self.stop_signal is not None

    def checkpoint_due(self) -> bool:
        return self.timer.due()

    def checkpoint_written(self) -> None:
        self.timer.reset()

    def raise_if_stopped(self, iteration: int, complete: bool) -> None:
        """Raise TrainingInterrupted if a signal asked to stop a run that is not complete."""
        if self.stop_requested and not complete:
            raise TrainingInterrupted(self.stop_signal, iteration, self.run)


@contextlib.contextmanager
def run_guard(run, *, fresh: bool, checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES, keep_on=()):
    """The guard of one run in folder `run` (None: in memory, nothing to guard). See the module docstring.

    fresh=True for a new run: the folder must be missing or empty. `keep_on`: exception types after
    which a fresh run keeps what it wrote (e.g. TrainingDiverged, whose history says where it failed).
    """
    guard = RunGuard(None if run is None else Path(run), checkpoint_minutes)
    if run is None:
        yield guard
        return
    run = guard.run
    existed = run.exists()
    with runs.lock_run_folder(run):
        if fresh and any(run.iterdir()):
            raise ValueError(_not_empty(run))
        runs.remove_stale_temp_files(run)
        try:
            with _stop_on_signals(guard):
                yield guard
        except BaseException as err:
            if fresh and not isinstance(err, keep_on) and not (run / runs.CHECKPOINT).exists():
                _remove_written(run)  # the folder was empty when this run took it
            raise
        finally:
            if not existed and not any(run.iterdir()):
                run.rmdir()


def _not_empty(run: Path) -> str:
    if (run / runs.CONFIG).is_file() and not (run / runs.CHECKPOINT).exists():
        return (f"run folder {run} holds a run that stopped before its first checkpoint; continue it from "
                f"iteration 0 with --resume {run}, or choose another folder")
    return f"run folder {run} already exists and is not empty; resume it with --resume or choose another folder"


def _remove_written(run: Path) -> None:
    for name in runs.WRITTEN:
        (run / name).unlink(missing_ok=True)
    runs.remove_stale_temp_files(run)


class PendingStop:
    """A SIGINT/SIGTERM handler that only remembers the signal: for a process that must not be cut
    between runs (a sweep's worker). `run_guard` takes a remembered signal over as its stop request,
    so a signal that arrives just before a run's loop starts stops it after its first iteration.

        pending = PendingStop().install()      # in the main thread
        ...
        signum = pending.take()                # the signal received since the last take, or None
    """

    def __init__(self):
        self.signum: int | None = None
        self.received: float | None = None  # time.monotonic() of the last signal

    def __call__(self, signum, frame) -> None:
        self.signum, self.received = signum, time.monotonic()

    def install(self) -> PendingStop:
        """Handle SIGINT and SIGTERM with this object (main thread only: elsewhere, nothing)."""
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                signal.signal(s, self)
        return self

    def take(self, since: float | None = None) -> int | None:
        """The signal remembered (received at `since` (time.monotonic()) or later), forgotten from now on."""
        signum, received = self.signum, self.received
        self.signum = self.received = None
        if signum is None or (since is not None and received < since):
            return None
        return signum


@contextlib.contextmanager
def _stop_on_signals(guard: RunGuard):
    """Route the first SIGINT/SIGTERM to `guard.stop_signal` (or the one a PendingStop it replaces
    holds); restore the handlers on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for h in before.values():
        if isinstance(h, PendingStop) and h.signum is not None:
            guard.stop_signal = h.take()  # arrived before the loop: stop after the first iteration

    def restore():
        for s, h in before.items():
            signal.signal(s, h)

    def request_stop(signum, frame):
        guard.stop_signal = signum
        restore()  # a second signal acts at once

    for s in STOP_SIGNALS:
        signal.signal(s, request_stop)
    try:
        yield
    finally:
        restore()


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def training_memory(cfg, D: int, K: int) -> int:
    """A lower bound on the bytes a training run needs: parameters, gradients, two optimizer
    buffers at most, and the forward cache of one minibatch (gates (L, N, 4H), c, h, tanh c)."""
    H, N, L = cfg.hidden, cfg.batch_size, cfg.sequence_length
    params = 4 * H * (D + H + 1) + H * K + K
    buffers = {"adam": 2, "rmsprop": 1 + (cfg.momentum > 0), "sgd": int(cfg.momentum > 0)}[cfg.optimizer]
    cache = L * N * (4 * H + 3 * H)
    return np.dtype(cfg.dtype).itemsize * ((2 + buffers) * params + cache)


def check_memory(cfg, D: int, K: int, available=None) -> None:
    """MemoryError naming the sizes if the run cannot fit in the available memory (skipped where unknown)."""
    need = training_memory(cfg, D, K)
    have = available_memory() if available is None else available
    if have is not None and need > have:
        raise MemoryError(f"a {cfg.task} run with hidden {cfg.hidden}, batch size {cfg.batch_size} and "
                          f"{cfg.sequence_length} steps needs at least {need / 2**30:.1f} GiB, more than the "
                          f"{have / 2**30:.1f} GiB of memory available; choose a smaller --hidden or --batch-size")
