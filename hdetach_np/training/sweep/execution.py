"""Running a sweep: one run in a worker process (`execute`), and the driver that hands the runs out
(`run_many`).

- `execute(name, config, run_dir, ...)` trains, resumes or reuses one run in its folder, under the
  folder's lock and with one BLAS thread, and returns a small summary dict (status, message,
  iteration, accuracies). It never raises for a run's failure. `_execute` is its body; `execute`
  around it marks the process as busy with a run (for `stopping._end_with_driver`).
- `run_many(plan, root, ...)` is the driver. It checks every planned folder first
  (`planning.check_folders`), reports the runs that need no training, and hands the others to
  joblib: local worker processes (loky) or the workers of a Dask cluster (`_backend`,
  `scheduler_address`); with one local worker they train one after another in this process
  (`_run_here`). It says one line per finished run (`_accuracy_text`, `_duration`) and shows a
  tqdm bar. What SIGINT and SIGTERM do is in `stopping`.

What travels to a worker: `execute` (pickled by reference, as
hdetach_np.training.sweep.execution.execute) with plain arguments (strings, dicts, numbers), and
`stopping._local_worker` as the initializer of loky's workers. What travels back: the summary.
`run_many` reads `execute` and `_local_worker` from this module each time it runs, and `execute`
reads `_execute` here too, so replacing them on this module takes effect (as
benchmarks/check_orphans.py does).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from .. import runs
from ..config import TrainConfig
from ..guard import PendingStop, TrainingInterrupted
from . import stopping
from .planning import Run, _aside, check_folders, folder_state, run_outcome
from .stopping import _DriverStop, _handling, _interrupted, _local_worker, _StopNow

# ---------------------------------------------------------------------------------------------
# One run, in a worker process
# ---------------------------------------------------------------------------------------------


def execute(name: str, config: dict, run_dir, replace: bool = False, data_dir=None, mnist=None,
            driver_pid: int | None = None, sweep_started: float | None = None) -> dict:
    """Train, resume or reuse one run in `run_dir` (under its lock, with one BLAS thread) and
    return a small summary: name, status, message, signal, seconds (this call), iteration,
    train_seconds, best and final validation accuracy.

    SIGINT/SIGTERM during the training (in the main thread) stop it after the iteration under way
    with a checkpoint: status "interrupted", `signal` the signal's name, `iteration` the checkpoint's,
    and the message says where it was written. In a local worker (`driver_pid`: the driver's pid),
    a signal the worker received between runs since `sweep_started` (the driver's time.monotonic()
    at the start of the sweep) keeps the run from starting: "interrupted" with iteration None.
    Nothing is raised for a run's failure: the status and message say it.
    """
    if driver_pid is not None:
        _local_worker(driver_pid)
    stopping._between_runs.clear()
    try:
        return _execute(name, config, run_dir, replace, data_dir, mnist, sweep_started)
    finally:
        stopping._between_runs.set()


def _execute(name, config, run_dir, replace, data_dir, mnist, sweep_started) -> dict:
    """The body of `execute`."""
    from threadpoolctl import threadpool_limits

    from .. import TrainingDiverged, train  # the public names of hdetach_np.training

    t0 = time.perf_counter()
    run = Path(run_dir)
    out, notes = {"name": name, "status": "failed", "signal": None}, []
    pending = stopping._pending_stop  # set in a local worker by _local_worker (None elsewhere)
    signum = pending.take(since=sweep_started) if pending is not None else None
    if signum is not None:  # the sweep is stopping: this run waits for the next invocation
        name_ = signal.Signals(signum).name
        return {**out, "status": "interrupted", "signal": name_, "seconds": 0.0, **run_outcome(None),
                "message": f"{name_} before it started; it starts when the sweep is run again"}
    try:
        lock = runs.lock_run_folder(run)
    except runs.RunFolderBusy as err:
        return {**out, "status": "busy", "message": str(err), "seconds": 0.0, **run_outcome(None)}
    except OSError as err:  # e.g. a folder this process may not write
        return {**out, "message": f"{type(err).__name__}: {err}", "seconds": 0.0, **run_outcome(None)}
    try:
        state, detail = folder_state(run, config)
        if state == "other" and replace:
            notes.append(f"the run with another config ({detail}) was moved to {_aside(run, 'replaced').name}")
        elif state == "started":
            notes.append(f"killed before its first checkpoint, moved to {_aside(run, 'stale').name}")
        if notes:  # a fresh folder under a fresh lock
            lock.release()
            lock = runs.lock_run_folder(run)
            state = "new"
        cfg = TrainConfig.from_dict(config)
        with threadpool_limits(limits=1, user_api="blas"):
            if state in ("new", "checkpoint"):
                try:
                    train(cfg, run, resume=state == "checkpoint", data_dir=data_dir, mnist=mnist)
                    out["status"] = "trained" if state == "new" else "resumed"
                except TrainingDiverged as err:
                    out["status"] = "diverged"
                    notes.append(str(err))
                except TrainingInterrupted as err:  # a KeyboardInterrupt: it must not cross the pool
                    out.update(status="interrupted", signal=signal.Signals(err.signum).name)
                    notes.append(f"{out['signal']} at iteration {err.iteration}: checkpoint written to "
                                 f"{run / runs.CHECKPOINT}; it resumes when the sweep is run again")
            elif state == "finished":
                out["status"] = "reused"
            elif state == "diverged":
                out["status"] = "diverged"
                notes.append(detail)
            elif state == "other":
                out["status"] = "kept"
                notes.append(f"a run with another config (differs in {detail}) is kept; "
                             "pass --replace to move it aside and train this one")
            else:
                notes.append(f"{run} is not a run folder: {detail}")
    except Exception as err:  # recorded, and the sweep goes on
        out["status"] = "failed"
        notes.append(f"{type(err).__name__}: {err}")
    finally:
        lock.release()
    own = out["status"] in ("trained", "resumed", "reused", "diverged", "interrupted")  # else not this run's folder
    return {**out, "message": "; ".join(notes), "seconds": time.perf_counter() - t0,
            **run_outcome(run if own else None)}


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------


def scheduler_address(scheduler: str | None = None) -> str | None:
    """The Dask scheduler to use: `scheduler`, else $DASK_SCHEDULER_ADDRESS, else None (local)."""
    return scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None


def _backend(workers: int, scheduler: str | None):
    """(joblib parallel_config kwargs, number of runs at once, closer) for local processes or Dask."""
    if scheduler is None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        return {"backend": "loky", "n_jobs": workers}, workers, lambda: None
    try:
        from dask.distributed import Client
    except ImportError:
        raise ValueError("a Dask scheduler needs dask.distributed: pip install 'hdetach-np[dask]'") from None
    try:
        client = Client(scheduler, set_as_default=False, timeout="30s")
    except OSError as err:
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    slots = sum(client.nthreads().values())
    if slots < 1:
        client.close()
        raise ValueError(f"the Dask scheduler at {scheduler} has no workers; start some with `dask worker {scheduler}`")
    return {"backend": "dask", "client": client, "n_jobs": slots}, slots, client.close


def run_many(plan, root, *, workers: int = 2, scheduler: str | None = None, replace: bool = False,
             data_dir=None, mnist=None, say=print, progress: bool | None = None, command: str | None = None) -> dict:
    """Train every Run of `plan` in its folder root/NAME (see the package docstring,
    hdetach_np.training.sweep, for what an existing folder means), at most `workers` at once (or on
    the Dask cluster at `scheduler`).

    Returns {name: summary} in plan order (see `execute`). Raises ValueError, before any training,
    when a planned folder is not a run folder. `say` gets one line per finished run; progress
    (None: when stderr is a terminal) shows a tqdm bar of the runs done.

    SIGINT and SIGTERM (when called in the main thread; the handlers before are restored at the end):
    - local workers: the first signal starts no new run and reaches every child process of this one
      (the workers, and joblib's helpers, which ignore it): from a terminal they have it already, but
      not when it was sent to this process alone (on Linux, where /proc lists the children). Each
      run under way writes a checkpoint at its current iteration and returns "interrupted"; once they
      all returned, SweepInterrupted is raised: one line naming the signal, the runs checkpointed and
      how to resume (`command`, the command that runs this sweep again, else "run the same sweep
      again"). A second signal while waiting stops at once: joblib ends the workers, and their runs
      keep their last checkpoint. With workers=1 the runs train in this process, with the same result.
    - a Dask scheduler: the first signal raises SweepInterrupted at once. The cluster's workers are
      not this process's to signal: the runs they started go on there until they end; the next
      invocation reuses them (or reports them busy while they run).
    """
    from joblib import Parallel, delayed, parallel_config
    from tqdm import tqdm

    plan = list(plan)
    if not all(isinstance(r, Run) for r in plan):
        raise TypeError("plan must be a list of sweep.Run")
    names = [r.name for r in plan]
    if len(set(names)) != len(names):
        raise ValueError(f"run names must be unique, got duplicates in {names}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    results, todo = {}, []
    for r, (state, _detail) in zip(plan, check_folders(plan, root)):
        if state in ("finished", "diverged") or (state == "other" and not replace):
            results[r.name] = execute(r.name, r.config, root / r.name)  # reports; trains nothing
            if state != "finished":
                say(f"{r.name}: {results[r.name]['status']}: {results[r.name]['message']}")
        else:
            todo.append(r)
    if not todo:
        return {n: results[n] for n in names}
    scheduler = scheduler_address(scheduler)
    config, slots, close = _backend(workers, scheduler)
    where = f"on the Dask cluster at {scheduler}" if scheduler else "in local processes"
    say(f"{len(todo)} run(s) to train in {root} ({len(plan) - len(todo)} done before), {min(slots, len(todo))} "
        f"at a time {where}")
    bar = tqdm(total=len(plan), initial=len(plan) - len(todo), unit="run", desc="sweep", file=sys.stderr,
               disable=not (sys.stderr.isatty() if progress is None else progress))
    t0, finished, started = time.perf_counter(), 0, set()  # started: the names of the runs dispatched
    driver = os.getpid() if scheduler is None else None
    stop = _DriverStop(local=scheduler is None)

    def report(res: dict) -> None:
        """Keep a run's summary and say one line about it."""
        nonlocal finished
        results[res["name"]] = res
        finished += 1
        left = len(todo) - finished
        elapsed = time.perf_counter() - t0
        bar.update(1)
        line = f"{res['name']}: {res['status']} in {_duration(res['seconds'])}"
        line += _accuracy_text(res) + (f" ({res['message']})" if res["message"] else "")
        if stop.signum is None:
            running = min(slots, left)
            eta = f", about {_duration(elapsed / finished * left)} left" if left else ""
            line += f" [{finished}/{len(todo)} done, {running} running, {left - running} waiting{eta}]"
        else:
            running = len(started) - finished
            line += f" [stopping: {running} still running]"
        bar.set_postfix(running=running, left=left, refresh=True)
        (bar.write if not bar.disable else say)(line)

    def calls():
        """The runs to dispatch, until a stop signal."""
        sweep_started = time.monotonic()
        for r in todo:
            if stop.signum is not None:
                return
            started.add(r.name)
            yield delayed(execute)(r.name, r.config, str(root / r.name), replace, data_dir, mnist, driver,
                                   sweep_started)

    broken = None  # the error of a worker pool that broke after a stop signal
    try:
        if scheduler is None and slots == 1:  # one after another, in this process
            _run_here(todo, root, replace, data_dir, mnist, report, started, stop)
        else:
            config = dict(config, initializer=_local_worker, initargs=(driver,)) if driver else config
            try:
                with _handling(stop), parallel_config(**config):
                    if scheduler is not None and slots == 1:  # joblib would run them in this process
                        for fn, args, kwargs in calls():
                            report(config["client"].submit(fn, *args, pure=False, **kwargs).result())
                    else:
                        for res in Parallel(return_as="generator_unordered", batch_size=1,
                                            pre_dispatch="n_jobs")(calls()):
                            report(res)
            except _StopNow:
                pass
            except Exception as err:  # e.g. a worker that died of the signal before it could take it
                if stop.signum is None:
                    raise
                broken = err
    finally:
        bar.close()
        close()
    if stop.signum is not None:
        raise _interrupted(stop, broken, todo, started, results, scheduler, command)
    return {n: results[n] for n in names}


def _run_here(todo, root, replace, data_dir, mnist, report, started: set, stop: _DriverStop) -> None:
    """Train `todo` one after another in this process until SIGINT or SIGTERM (then `stop.signum`).
    While a run trains, its guard takes the signal and writes a checkpoint at the current iteration;
    between runs a PendingStop remembers it."""
    pending = PendingStop()
    with _handling(pending):
        for r in todo:
            stop.signum = pending.take()
            if stop.signum is not None:
                return
            started.add(r.name)
            res = execute(r.name, r.config, root / r.name, replace, data_dir, mnist)
            if res["status"] == "interrupted":
                stop.signum = signal.Signals[res["signal"]]
            report(res)
            if stop.signum is not None:
                return
        stop.signum = pending.take()


def _accuracy_text(res: dict) -> str:
    if res.get("best_accuracy") is None:
        return ""
    return (f", best valid accuracy {res['best_accuracy']:.4f} at iteration {res.get('best_iteration')} "
            f"(stopped at {res['iteration']})")


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"

