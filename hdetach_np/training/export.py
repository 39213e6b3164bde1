"""A run's history in the formats people already read: a CSV table, or a TensorBoard event file.

    hdetach-np export runs/copy --format csv                  # runs/copy/history.csv
    hdetach-np export runs/copy --format tensorboard          # runs/copy/tensorboard/events.out.tfevents.*
    tensorboard --logdir runs/copy/tensorboard

The history is the run folder's history.jsonl (`runs.read_history`). Its records differ by kind
(a training step, an evaluation, gradient path norms, an event; see `hdetach_np.training.runs`):

- CSV: one row per record, in the file's order; one column per key, nested keys joined by "/"
  (`paths/norms/cell/all`); a key that a record lacks is an empty cell.
- TensorBoard: every number becomes a scalar at step = the record's "iteration": a training step
  under `train/` (`train/loss`, `train/accuracy`, ...), an evaluation under its split (`valid/loss`,
  `test/accuracy`), path norms under `paths/` (`paths/cell/all`); an event's message becomes text.
  Needs the optional tensorboardX package (`pip install -e ".[export]"`).

Existing files are never overwritten unless `force` is given.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from .._atomic import atomic_write_text
from .runs import read_history

FORMATS = ("csv", "tensorboard")
CSV_NAME = "history.csv"
TENSORBOARD_DIR = "tensorboard"
EVENT_PREFIX = "events.out.tfevents."


def flatten_record(record: dict, prefix: str = "") -> dict:
    """A history record with nested dicts flattened: {"paths": {"norms": {"h": {"all": x}}}} ->
    {"paths/norms/h/all": x}. Key order is kept."""
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_record(value, prefix=f"{name}/"))
        else:
            out[name] = value
    return out


def history_csv(records: list[dict]) -> str:
    """The CSV text of a history: a header of every flattened key (in order of first appearance,
    "iteration" first), then one row per record."""
    rows = [flatten_record(r) for r in records]
    columns = {"iteration": None} if any("iteration" in r for r in rows) else {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def scalars(record: dict) -> dict[str, float]:
    """The TensorBoard scalars of one history record: {tag: value} (see the module docstring)."""
    if "event" in record:
        return {}
    if "split" in record:
        group = str(record["split"])
        values = {k: v for k, v in record.items() if k not in ("split", "iteration", "epoch")}
    elif "paths" in record:
        group = "paths"
        values = record["paths"].get("norms", {})
    else:
        group = "train"
        values = {k: v for k, v in record.items() if k not in ("iteration", "epoch")}
    out = {}
    for key, value in flatten_record(values).items():
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[f"{group}/{key}"] = float(value)
    return out


def _default_out(run: Path, fmt: str) -> Path:
    folder = run if run.is_dir() else run.parent
    return folder / (CSV_NAME if fmt == "csv" else TENSORBOARD_DIR)


def export_history(run, fmt: str, out=None, force: bool = False) -> Path:
    """Write the history of `run` (a run folder or a history.jsonl file) as `fmt`.

    Parameters
    ----------
    run : str or Path
        A run folder (holding history.jsonl) or a .jsonl history file.
    fmt : {"csv", "tensorboard"}
        A CSV file, or a folder holding one TensorBoard event file.
    out : str or Path, optional
        Where to write: the CSV file, or the TensorBoard folder (default: `RUN/history.csv`,
        `RUN/tensorboard/`).
    force : bool
        Replace an existing CSV file, or the event files already in the TensorBoard folder.

    Returns
    -------
    Path
        The file written (for TensorBoard, the event file).

    Raises
    ------
    FileExistsError
        When the output exists and `force` is False.
    ImportError
        For "tensorboard" without the tensorboardX package.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run = Path(run)
    records = read_history(run)
    out = Path(out) if out is not None else _default_out(run, fmt)
    if fmt == "csv":
        if out.is_dir():
            raise ValueError(f"--out {out} is a folder; give the CSV file's path")
        if out.exists() and not force:
            raise FileExistsError(f"{out} exists; pass --force to overwrite it")
        atomic_write_text(out, history_csv(records))
        return out
    return _write_tensorboard(records, out, force)


def _write_tensorboard(records: list[dict], out: Path, force: bool) -> Path:
    try:
        from tensorboardX import SummaryWriter
    except ImportError as err:
        raise ImportError(f"the TensorBoard export needs tensorboardX ({err}); "
                          'install it with pip install -e ".[export]"') from err
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; the TensorBoard export writes into a folder")
    previous = sorted(out.glob(f"{EVENT_PREFIX}*")) if out.is_dir() else []
    if previous and not force:
        raise FileExistsError(f"{out} already holds TensorBoard event files ({previous[0].name}); "
                              "pass --force to replace them")
    for path in previous:
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(logdir=str(out))
    try:
        for record in records:
            step = int(record.get("iteration", 0))
            for tag, value in scalars(record).items():
                writer.add_scalar(tag, value, global_step=step)
            if "event" in record:
                writer.add_text(f"event/{record['event']}", str(record.get("message", "")), global_step=step)
    finally:
        writer.close()
    written = sorted(out.glob(f"{EVENT_PREFIX}*"))
    if len(written) != 1:
        raise RuntimeError(f"expected one event file in {out}, found {len(written)}")
    return written[0]
