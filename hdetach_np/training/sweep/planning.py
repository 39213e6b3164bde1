"""A sweep's plan and its folders: which runs there are, and what each run's folder holds.

Nothing here trains or starts a process; everything is plain data and file reads (and one rename).

- `Run`, `run_name`, `grid_runs`: the plan. A grid ({config key: list of values}) on top of a base
  config gives one Run per grid point, named by its grid values ('p=0.25,seed=3').
- `folder_state`, `check_folders`: what a run's folder holds ("new", "finished", "diverged",
  "checkpoint", "started", "other" or "foreign"); `execution.execute` decides from it whether to
  train, resume, reuse or keep (the table in the package docstring, `hdetach_np.training.sweep`).
- `_aside`: moves a folder aside (NAME.stale-K, NAME.replaced-K) instead of deleting it.
- `run_outcome`: the numbers of a run folder that travel back to the driver (iteration, accuracies).
- `MANIFEST`, `read_manifest`: the sweep folder's sweep.json (written by `run_sweep`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from .. import runs
from ..config import TrainConfig

MANIFEST = "sweep.json"
STATUSES = ("trained", "resumed", "reused", "diverged", "interrupted", "kept", "busy", "failed")


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


def check_folders(plan, root) -> list[tuple[str, str]]:
    """folder_state of each run's folder in `root`; ValueError naming the first one that is not a
    run folder (nothing is changed then)."""
    states = [folder_state(Path(root) / r.name, r.config) for r in plan]
    for r, (state, detail) in zip(plan, states):
        if state == "foreign":
            raise ValueError(f"{Path(root) / r.name} is in the way of run {r.name}: {detail}; move it elsewhere")
    return states


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
# The sweep folder's manifest
# ---------------------------------------------------------------------------------------------


def read_manifest(sweep_dir) -> dict:
    """The manifest of a sweep folder; FileNotFoundError if it has none."""
    path = Path(sweep_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep folder (no {MANIFEST})")
    return runs.read_json(path)
