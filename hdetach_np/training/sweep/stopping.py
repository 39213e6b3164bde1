"""How a sweep stops: SIGINT or SIGTERM to its driver, and the death of its driver.

The driver (the process that called `run_many` in `execution`):

- `_handling(handler)` puts `handler` on SIGINT and SIGTERM for the length of a `with` block.
- `_DriverStop` is that handler while workers train. The first signal is remembered (`.signum`) and
  passed on to every child process (`child_pids`), and no new run is dispatched. A second signal
  raises `_StopNow` to stop without waiting. Its one line goes to stderr through `_write_stderr`,
  which is safe inside a signal handler.
- `_interrupted` counts what became of each run and builds the `SweepInterrupted` that `run_many`
  raises: one line naming the signal, the runs checkpointed and how to resume.

A local worker process (one of joblib's loky workers, a child of the driver):

- `_local_worker(driver_pid)` is joblib's initializer of each worker. It installs a `PendingStop`
  (`_pending_stop`): a signal that arrives between runs is remembered, and `execution.execute`
  does not start the next run.
- `_end_with_driver` watches the parent. When the driver dies (even by kill -9), it sends SIGTERM
  to its own process, so the run under way writes a checkpoint, then ends the process once no run
  is under way (`_between_runs`, cleared and set by `execute`) or after
  DRIVER_GONE_GRACE_SECONDS.

During a run, the run's own guard (`hdetach_np.training.guard`) takes the signal and writes the
checkpoint at the current iteration. This module only decides who gets the signal and when the
sweep ends.

`_local_worker` rebinds `_pending_stop`, so other modules read it as `stopping._pending_stop`. A
`from .stopping import _pending_stop` would keep its first value, None.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ..guard import STOP_SIGNALS, PendingStop

DRIVER_GONE_GRACE_SECONDS = 60.0  # a worker whose driver died ends this long after, checkpoint written or not


class SweepInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a sweep. `.signum`; `.checkpointed`: {run name: iteration of the
    checkpoint it wrote when stopped}; `.not_started`: how many planned runs did not start; `.resume`:
    how to go on; `.exit_status`: 128 + signum. The message is one line."""

    def __init__(self, signum: int, checkpointed: dict, not_started: int, resume: str, note: str = ""):
        self.signum, self.checkpointed, self.not_started = signum, dict(checkpointed), not_started
        self.resume, self.note = resume, note
        parts = []
        if self.checkpointed:
            where = ", ".join(f"{n} at iteration {k}" for n, k in self.checkpointed.items())
            parts.append(f"{len(self.checkpointed)} run(s) checkpointed at their current iteration ({where})")
        if not_started:
            parts.append(f"{not_started} not started")
        parts = ", ".join(parts) + "; " if parts else ""
        super().__init__(f"{signal.Signals(signum).name}: the sweep stopped{note}; {parts}{resume}")

    def __reduce__(self):  # pickled by its constructor's arguments (the default passes the message alone)
        return type(self), (self.signum, self.checkpointed, self.not_started, self.resume, self.note)

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130, 143)."""
        return 128 + self.signum


# ---------------------------------------------------------------------------------------------
# In a local worker process
# ---------------------------------------------------------------------------------------------


# In a local worker process: its SIGINT/SIGTERM handler between runs (None elsewhere), and whether
# it is between runs (execute() is not running)
_pending_stop: PendingStop | None = None
_between_runs = threading.Event()
_between_runs.set()


def _local_worker(driver_pid: int) -> None:
    """Make this process a local worker of the driver process `driver_pid` (joblib's initializer of
    each worker, and again at each run, where it changes nothing). Nothing in the driver itself.

    - SIGINT and SIGTERM between runs are remembered (`PendingStop`), not fatal: a worker waiting for
      its next run survives a Ctrl-C; one that got a signal since the sweep started does not start
      its next run (see `execute`). During a run, the run's guard takes the signal and writes a
      checkpoint at the current iteration.
    - The worker ends with its driver (see `_end_with_driver`).
    """
    global _pending_stop
    if os.getppid() != driver_pid:
        return
    if _pending_stop is None and threading.current_thread() is threading.main_thread():
        _pending_stop = PendingStop().install()
    _end_with_driver(driver_pid)


def _end_with_driver(driver_pid: int, grace: float = DRIVER_GONE_GRACE_SECONDS) -> None:
    """In a local worker process (a child of the driver), end this process soon after the driver's
    death (joblib's workers would otherwise train on, orphaned): within about half a second of it,
    send SIGTERM to this process, so the run under way writes a checkpoint at its current iteration
    and returns; end the process as soon as no run is under way, or after `grace` seconds at most."""
    if os.getppid() != driver_pid or getattr(_end_with_driver, "watching", False):
        return

    def watch():
        while os.getppid() == driver_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # the run's guard: stop after this iteration, with a checkpoint
        _between_runs.wait(grace)
        os._exit(1)  # the run's lock goes with the process; its checkpoint stays

    _end_with_driver.watching = True
    threading.Thread(target=watch, name="end-with-driver", daemon=True).start()


# ---------------------------------------------------------------------------------------------
# In the driver
# ---------------------------------------------------------------------------------------------


class _StopNow(KeyboardInterrupt):
    """Raised by the driver's signal handler to stop without waiting (joblib then ends its workers)."""


@contextlib.contextmanager
def _handling(handler):
    """Handle SIGINT and SIGTERM with `handler` inside the block (in the main thread; elsewhere
    nothing changes), then restore the handlers from before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


class _DriverStop:
    """The driver's SIGINT/SIGTERM handler while local workers or a Dask cluster train (see
    `run_many`): `signum` of the first signal (None before)."""

    def __init__(self, local: bool):
        self.local = local
        self.signum: int | None = None

    def __call__(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if not self.local:  # a Dask cluster: its workers are not ours to signal; stop dispatching now
            self.signum = signum
            raise _StopNow
        if self.signum is not None:  # a second signal: give up waiting
            raise _StopNow
        self.signum = signum
        for pid in child_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)  # workers: a checkpoint at the current iteration; helpers ignore it
        _write_stderr(f"{name}: stopping the sweep: no new run starts, the runs under way write a checkpoint "
                      f"at their current iteration ({name} again to stop at once)\n")


def _write_stderr(text: str) -> None:
    """Write to stderr from a signal handler (unbuffered: no reentrant call into a stream being written)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.write(sys.stderr.fileno(), text.encode())


def child_pids(pid: int | None = None) -> list[int]:
    """The pids of the child processes of process `pid` (default: this one), from Linux's /proc
    (the task's `children` lists, else every process's parent); [] where /proc is missing."""
    pid = os.getpid() if pid is None else pid
    lists = list(Path(f"/proc/{pid}/task").glob("*/children"))
    found = set()
    if lists:
        for f in lists:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(c) for c in f.read_text().split())
        return sorted(found)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:  # field 4: the parent's pid
                found.add(int(stat.parent.name))
    return sorted(found)


def _interrupted(stop, broken, todo, started, results, scheduler, command) -> SweepInterrupted:
    """The SweepInterrupted of a sweep stopped by `stop.signum`, counting what became of each run."""
    mine = [results[r.name] for r in todo if r.name in results]  # returned in this invocation
    checkpointed = {res["name"]: res["iteration"] for res in mine
                    if res["status"] == "interrupted" and res["iteration"] is not None}
    not_started = len(todo) - len(started) + sum(res["status"] == "interrupted" and res["iteration"] is None
                                                 for res in mine)
    cut = len(started) - len(mine)  # under way, left without waiting for them
    name = signal.Signals(stop.signum).name
    note = ""
    if broken is not None:
        note = (f" ({type(broken).__name__}: a worker process ended without returning its run; the "
                f"{cut} run(s) under way keep their last checkpoint)")
    elif scheduler is not None and cut:
        note = (f" (the {cut} run(s) under way on the Dask cluster at {scheduler} go on there until they end; "
                "the next invocation reuses them, or reports them busy while they still run)")
    elif cut:
        note = f" without waiting for the {cut} run(s) under way ({name} again: they keep their last checkpoint)"
    resume = f"resume with: {command}" if command else "resume by running the same sweep again"
    return SweepInterrupted(stop.signum, checkpointed, not_started, resume, note)
