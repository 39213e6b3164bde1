"""Sweeps: training runs over a grid of config values, on local processes or a Dask cluster.

    from hdetach_np.training.sweep import run_sweep
    results = run_sweep("runs/copy-d10", base={"task": "copying", "delay": 10, "epochs": 20},
                        grid={"p": [0.0, 0.25, 0.5], "seed": range(5)}, workers=2)
    results["p=0.25,seed=3"]["status"]          # "trained", "resumed", "reused", "diverged", ...

The sweep folder (the command line: `hdetach-np sweep`, then `hdetach-np report SWEEP`):

    SWEEP/sweep.json       the manifest: base config, grid, every run's name, grid point and config,
                           and each invocation's command, time and versions
    SWEEP/p=0.25,seed=3/   one run folder per grid point (see runs.py), named by its grid values

joblib runs the trainings: local worker processes (its default "loky" backend), or the workers of
a Dask cluster through joblib's "dask" backend when a scheduler address is given (`scheduler=`,
or the environment variable DASK_SCHEDULER_ADDRESS). Every training limits BLAS to one thread. Each
worker writes its run folder itself, so on a cluster the sweep folder must be on a file system
that every worker sees at the same path; only a small summary of each run travels back.

Nothing is ever deleted. For each planned run, the folder decides what happens:

    missing or empty                    train
    same config, finished               reuse ("reused")
    same config, stopped on NaN/inf     report it again ("diverged"); training again would diverge again
    same config, with a checkpoint      resume from it, bit for bit ("resumed")
    same config, killed before its first checkpoint: moved aside as NAME.stale-K, trained again
    another config                      kept and reported ("kept"); replace=True moves it aside as
                                        NAME.replaced-K and trains the new config
    anything else (not a run folder)    the sweep is refused, with one line naming the folder
    in use by another live process      reported ("busy"), see runs.lock_run_folder

Stopping a sweep (see `run_many`): the first SIGINT (Ctrl-C) or SIGTERM to the driver starts no
new run, has every run under way write a checkpoint at its current iteration, waits for them and
raises `SweepInterrupted`, whose one-line message says how to resume: run the same sweep again. A
second signal stops at once. A local worker whose driver dies (even by kill -9) also writes a
checkpoint at its current iteration and ends within about a second of it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import runs
from .config import TrainConfig
from .guard import STOP_SIGNALS, PendingStop, TrainingInterrupted

MANIFEST = "sweep.json"
STATUSES = ("trained", "resumed", "reused", "diverged", "interrupted", "kept", "busy", "failed")
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


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: its folder name, its full config dict and its grid point."""

    name: str
    config: dict
    point: dict

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"run name must be a folder name without '/' and not starting with '.', got {self.name!r}")
        object.__setattr__(self, "config", TrainConfig.from_dict(self.config).to_dict())


def _text(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    return f"{v:g}" if isinstance(v, float) else str(v)


def run_name(point: dict) -> str:
    """The folder name of a grid point: 'key=value' joined by ',', seed last ('p=0.25,seed=3')."""
    keys = [k for k in point if k != "seed"] + (["seed"] if "seed" in point else [])
    return ",".join(f"{k}={_text(point[k])}" for k in keys) or "run"


def grid_runs(base: dict, grid: dict) -> list[Run]:
    """Every point of `grid` ({config key: list of values}) on top of `base` (config values).

    The order interleaves the seeds (every point at seed 0 first, then at seed 1, ...), so a sweep
    cut short has every setting at its first seeds."""
    if not isinstance(base, dict) or not isinstance(grid, dict):
        raise TypeError("base and grid must be dicts")
    keys = TrainConfig.keys()
    for k, values in grid.items():
        if k not in keys:
            raise ValueError(f"grid key {k!r} is not a config key; expected keys among: {', '.join(keys)}")
        values = list(values) if not isinstance(values, (str, bytes)) else None
        if not values:
            raise ValueError(f"grid key {k!r} needs a non-empty list of values, got {grid[k]!r}")
    TrainConfig.from_dict(base)  # bad base values fail here, naming the key
    order = sorted(grid, key=lambda k: k == "seed", reverse=True)  # seed outermost
    out, names = [], {}
    for combo in itertools.product(*(list(grid[k]) for k in order)):
        given = dict(zip(order, combo))
        cfg = TrainConfig.from_dict({**base, **given}).to_dict()
        point = {k: cfg[k] for k in grid}  # normalised values (0 -> 0.0 for a float field)
        run = Run(run_name(point), cfg, point)
        if run.name in names:
            raise ValueError(f"grid points {names[run.name]} and {point} give the same run name {run.name!r}")
        names[run.name] = point
        out.append(run)
    return out


# ---------------------------------------------------------------------------------------------
# The state of a run folder
# ---------------------------------------------------------------------------------------------


def folder_state(run_dir, config: dict) -> tuple[str, str]:
    """(state, detail) of a run folder for a config: "new", "finished", "diverged", "checkpoint",
    "started" (no checkpoint yet), "other" (another config; detail names the keys that differ)
    or "foreign" (not a run folder; detail says why)."""
    run = Path(run_dir)
    if not run.exists() or (run.is_dir() and not any(run.iterdir())):
        return "new", ""
    if not run.is_dir():
        return "foreign", "it is a file, not a run folder"
    if not (run / runs.CONFIG).is_file():
        return "foreign", f"it is not a run folder (no {runs.CONFIG})"
    try:
        saved = TrainConfig.from_saved(runs.read_json(run / runs.CONFIG)).to_dict()
    except (OSError, ValueError, TypeError) as err:
        return "foreign", f"its {runs.CONFIG} is not a run config ({err})"
    if saved != config:
        return "other", ", ".join(k for k in config if saved.get(k) != config[k])
    try:
        if runs.read_json(run / runs.SUMMARY).get("complete"):
            return "finished", ""
    except (OSError, ValueError):
        pass
    try:
        history = runs.read_history(run)
    except (OSError, ValueError):
        history = []
    if history and history[-1].get("event") == "diverged":
        return "diverged", history[-1].get("message", "")
    if (run / runs.CHECKPOINT).is_file():
        return "checkpoint", ""
    return "started", ""


def _aside(run: Path, why: str) -> Path:
    """Rename `run` to the first free NAME.<why>-K (K = 1, 2, ...) and return the new path."""
    for k in itertools.count(1):
        new = run.with_name(f"{run.name}.{why}-{k}")
        if not new.exists():
            run.rename(new)
            return new


# ---------------------------------------------------------------------------------------------
# One run, in a worker process
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
    _between_runs.clear()
    try:
        return _execute(name, config, run_dir, replace, data_dir, mnist, sweep_started)
    finally:
        _between_runs.set()


def _execute(name, config, run_dir, replace, data_dir, mnist, sweep_started) -> dict:
    """The body of `execute`."""
    from threadpoolctl import threadpool_limits

    from . import TrainingDiverged, train  # the package's public names

    t0 = time.perf_counter()
    run = Path(run_dir)
    out, notes = {"name": name, "status": "failed", "signal": None}, []
    signum = _pending_stop.take(since=sweep_started) if _pending_stop is not None else None
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


def run_outcome(run_dir) -> dict:
    """iteration, train_seconds, best and final validation accuracy of a run folder (None if absent)."""
    if run_dir is None:
        return {"iteration": None, "train_seconds": None, "best_accuracy": None, "best_iteration": None,
                "final_accuracy": None}
    run = Path(run_dir)
    try:
        summary = runs.read_json(run / runs.SUMMARY)
    except (OSError, ValueError):
        summary = {}
    try:
        evals = [r for r in runs.read_history(run) if r.get("split") == "valid"]
    except (OSError, ValueError):
        evals = []
    best = summary.get("best") or {}
    return {"iteration": summary.get("iteration"), "train_seconds": summary.get("seconds"),
            "best_accuracy": best.get("accuracy"), "best_iteration": best.get("iteration"),
            "final_accuracy": evals[-1].get("accuracy") if evals else None}


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


def check_folders(plan, root) -> list[tuple[str, str]]:
    """folder_state of each run's folder in `root`; ValueError naming the first one that is not a
    run folder (nothing is changed then)."""
    states = [folder_state(Path(root) / r.name, r.config) for r in plan]
    for r, (state, detail) in zip(plan, states):
        if state == "foreign":
            raise ValueError(f"{Path(root) / r.name} is in the way of run {r.name}: {detail}; move it elsewhere")
    return states


def run_many(plan, root, *, workers: int = 2, scheduler: str | None = None, replace: bool = False,
             data_dir=None, mnist=None, say=print, progress: bool | None = None, command: str | None = None) -> dict:
    """Train every Run of `plan` in its folder root/NAME (see the module docstring for what an
    existing folder means), at most `workers` at once (or on the Dask cluster at `scheduler`).

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


def read_manifest(sweep_dir) -> dict:
    """The manifest of a sweep folder; FileNotFoundError if it has none."""
    path = Path(sweep_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep folder (no {MANIFEST})")
    return runs.read_json(path)


def run_sweep(sweep_dir, base: dict, grid: dict, *, command: str | None = None, **run_kw) -> dict:
    """Record the sweep in SWEEP/sweep.json (runs of earlier grids stay listed), then `run_many`
    its grid runs in SWEEP. `run_kw`: workers, scheduler, replace, data_dir, mnist, say, progress.
    A folder that exists, is not empty and has no manifest is refused."""
    sweep = Path(sweep_dir)
    plan = grid_runs(base, grid)
    if sweep.exists() and not (sweep / MANIFEST).is_file():
        if not sweep.is_dir() or any(sweep.iterdir()):
            raise ValueError(f"{sweep} exists and is not a sweep folder (no {MANIFEST}); choose another folder")
    check_folders(plan, sweep)
    manifest = read_manifest(sweep) if (sweep / MANIFEST).is_file() else {"format": 1, "runs": {}, "invocations": []}
    grid = {k: list(dict.fromkeys(r.point[k] for r in plan)) for k in grid}  # normalised values
    manifest.update(base=dict(base), grid=grid)
    manifest["runs"].update({r.name: {"point": r.point, "config": r.config} for r in plan})
    manifest["invocations"].append({"command": command or " ".join(sys.argv),
                                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                    "grid": grid, "base": dict(base), "versions": runs.versions()})
    sweep.mkdir(parents=True, exist_ok=True)
    runs.write_json(sweep / MANIFEST, manifest)
    return run_many(plan, sweep, command=command, **run_kw)
