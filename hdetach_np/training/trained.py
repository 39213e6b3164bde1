"""Using a finished run: its model, its evaluation, and copying models tested at other delays.

    cfg, model, meta = load_run("runs/copy-T10")             # the best model (or which="last")
    evaluate_run("runs/copy-T10")                           # {split: {"loss", "accuracy", "n"}}
    transfer_copying("runs/copy-T10", [20, 50, 100])        # one row per delay
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..tasks import copying_tokens
from . import runs
from .config import TrainConfig
from .model import Model, evaluate
from .task_data import CopyingData, make_task_data, task_sizes


def load_run(run_dir, which: str = "best") -> tuple[TrainConfig, Model, dict]:
    """(config, model, checkpoint meta) of a run folder; which = "best" or "last"."""
    run = Path(run_dir)
    if not (run / runs.CONFIG).is_file():
        raise FileNotFoundError(f"{run} is not a run folder (no {runs.CONFIG})")
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    cfg = TrainConfig.from_saved(runs.read_json(run / runs.CONFIG))
    path = run / (runs.BEST if which == "best" else runs.CHECKPOINT)
    params, _, meta = runs.load_checkpoint(path)
    D, K = task_sizes(cfg)
    return cfg, Model.from_arrays(params, D, cfg.hidden, K, cfg.dtype, where=str(path), bias=cfg.bias), meta


def evaluate_run(run_dir, which: str = "best", splits=None, mnist=None, data_dir=None) -> dict:
    """Evaluate a run's best (or last) model on its splits: {split: {"loss", "accuracy", "n"}}."""
    cfg, model, meta = load_run(run_dir, which)
    task = make_task_data(cfg, mnist=mnist, data_dir=data_dir)
    splits = list(task.splits) if splits is None else list(splits)
    return {s: evaluate(model, task, s, cfg.eval_batch_size) for s in splits}


def transfer_copying(run_dir, delays, n: int = 5000, seed: int = 555, which: str = "best", log=None) -> list[dict]:
    """Evaluate a copying run's model on n fresh sequences at each delay in `delays` (seed 555 per
    delay): [{"delay", "loss", "accuracy", "n", "seed"}]. log: None or a function called with one
    line per delay."""
    cfg, model, _ = load_run(run_dir, which)
    if cfg.task != "copying":
        raise ValueError(f"transfer needs a copying run, got task {cfg.task!r}")
    out = []
    for delay in delays:
        if not isinstance(delay, int) or delay < 1:
            raise ValueError(f"every delay must be an integer >= 1, got {delay!r}")
        tokens = copying_tokens(n, np.random.default_rng(seed))
        task = CopyingData(cfg, None, delay=delay, tokens=tokens)
        ev = evaluate(model, task, "valid", cfg.eval_batch_size)
        out.append({"delay": delay, "loss": ev["loss"], "accuracy": ev["accuracy"], "n": ev["n"], "seed": seed})
        if log is not None:
            log(f"  delay {delay}: accuracy {ev['accuracy']:.4f} ({len(out)}/{len(delays)})")
    return out
