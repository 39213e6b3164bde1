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

The modules of this package, one concern each, in reading order:

    planning.py    the plan (Run, run_name, grid_runs) and what a run folder holds (folder_state,
                   check_folders, run_outcome); the manifest's name and reader (MANIFEST, read_manifest)
    execution.py   one run in a worker process (execute), and the driver that hands the runs to
                   local worker processes or a Dask cluster and reports each one (run_many)
    stopping.py    SIGINT and SIGTERM to the driver, and the driver's death: the driver's signal
                   handler, SweepInterrupted, and the local workers that end with their driver
    progress.py    RunWatcher: where each run is while it trains, read from its history
    __init__.py    run_sweep (records the sweep in sweep.json, then run_many), and the public names
                   of the modules above, so that `from hdetach_np.training.sweep import ...` finds them
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .. import runs
from .execution import execute, run_many, scheduler_address
from .planning import (
    MANIFEST,
    STATUSES,
    Run,
    check_folders,
    folder_state,
    grid_runs,
    read_manifest,
    run_name,
    run_outcome,
)
from .progress import RunWatcher
from .stopping import DRIVER_GONE_GRACE_SECONDS, SweepInterrupted, child_pids

# private, and still found as sweep._end_with_driver (benchmarks/check_orphans.py names it)
from .stopping import _end_with_driver as _end_with_driver


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


__all__ = [
    "DRIVER_GONE_GRACE_SECONDS", "MANIFEST", "STATUSES", "Run", "RunWatcher", "SweepInterrupted", "check_folders",
    "child_pids", "execute", "folder_state", "grid_runs", "read_manifest", "run_many", "run_name", "run_outcome",
    "run_sweep", "scheduler_address",
]
