"""The run folder: config, versions, history (JSON lines), checkpoints and the best model.

    RUN/config.json      the TrainConfig of the run
    RUN/versions.json    Python, numpy, scipy and hdetach-np versions, platform
    RUN/history.jsonl    one JSON record per line (see below)
    RUN/checkpoint.npz   the latest checkpoint: parameters, optimizer state, RNG state, iteration, best
    RUN/best.npz         the parameters at the best validation epoch
    RUN/summary.json     written when training stops: best validation, test at best, timing

History records all carry "iteration" (the number of parameter updates done):
    {"iteration", "epoch", "loss", "accuracy", "grad_norm", "clipped", "p"}      a training step
    {"iteration", "epoch", "split": "valid"|"test", "loss", "accuracy", "best", "seconds"}   an evaluation
    {"iteration", "paths": {"iteration", "norms": PathGrads.norms()}}           gradient path norms
    {"iteration", "event": "diverged", "message"}                             a run stopped on NaN/inf

Checkpoints are .npz files written atomically (temporary file + rename): arrays "param/<name>" and
"opt/<key>", and "meta", a JSON string with the iteration, epoch, best, RNG state and config.
"""

from __future__ import annotations

import json
import platform
import sys
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_save_npz, atomic_write_text

FORMAT = 1
CONFIG = "config.json"
VERSIONS = "versions.json"
HISTORY = "history.jsonl"
CHECKPOINT = "checkpoint.npz"
BEST = "best.npz"
SUMMARY = "summary.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not belong to the run."""


class RunFolderBusy(ValueError):
    """Another live process holds the lock of a run folder."""


def lock_run_folder(path):
    """Take the lock of run folder `path` (created if missing) for this process, or raise RunFolderBusy.

    The lock is an exclusive `fcntl.flock` on the folder itself (no file is added to it, so a new run
    can still start in it); the operating system releases it when the returned handle is closed or
    the process ends in any way, kill -9 included, so a crash never leaves a stale lock. Use it as a
    context manager or keep the handle for as long as the run is in use. Where flock is unavailable
    (Windows) or the file system cannot lock (some network file systems), the handle holds no lock.
    """
    import os

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return _FolderLock(None)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderBusy(f"run folder {path} is in use by another process; wait for it to end") from None
    except OSError:  # the file system does not support locks: go on unlocked
        os.close(fd)
        return _FolderLock(None)
    return _FolderLock(fd)


class _FolderLock:
    """The handle of `lock_run_folder`: `release()` (or leaving a `with` block) frees the lock."""

    def __init__(self, fd):
        self.fd = fd

    @property
    def locked(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        import os

        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def versions() -> dict:
    import scipy

    from .. import __version__

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "hdetach_np": __version__, "platform": platform.platform(), "executable": sys.executable}


def write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def save_checkpoint(path, params: dict, meta: dict, opt_state: dict | None = None) -> None:
    """Write parameters, optional optimizer state and JSON metadata to an .npz, atomically."""
    arrays = {f"param/{k}": v for k, v in params.items()}
    for k, v in (opt_state or {}).items():
        arrays[f"opt/{k}"] = v
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, **meta}, allow_nan=False))
    atomic_save_npz(path, arrays)


def load_checkpoint(path) -> tuple[dict, dict, dict]:
    """Read a checkpoint: (params, optimizer state, meta). CheckpointError if it is unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except KeyError:
        raise CheckpointError(f"{path} is not an hdetach-np checkpoint (no 'meta' entry)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {err}); "
                              "use an earlier copy or start a new run") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                              f"expected {FORMAT}")
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    opt = {k[len("opt/"):]: v for k, v in arrays.items() if k.startswith("opt/")}
    if not params:
        raise CheckpointError(f"{path} holds no parameters")
    return params, opt, meta


# ---------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------


def _history_path(run) -> Path:
    run = Path(run)
    return run / HISTORY if run.is_dir() else run


def read_history(run) -> list[dict]:
    """All records of a run folder's history.jsonl (or of a .jsonl file). A torn last line is skipped."""
    path = _history_path(run)
    if not path.is_file():
        raise FileNotFoundError(f"no history at {path}")
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if i == len(lines) - 1:  # a run killed mid-write
                break
            raise ValueError(f"{path} line {i + 1} is not valid JSON: {err}") from err
    return records


def truncate_history(path, iteration: int) -> list[dict]:
    """Keep the records with iteration <= `iteration` (the checkpoint's), rewrite the file atomically."""
    path = Path(path)
    kept = [r for r in read_history(path) if r.get("iteration", 0) <= iteration] if path.exists() else []
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
    return kept


class HistoryWriter:
    """Append records to history.jsonl (line buffered by `flush`) and keep them in memory."""

    def __init__(self, path=None, records: list | None = None):
        self.path = Path(path) if path is not None else None
        self.records = list(records or [])
        self._file = open(self.path, "a") if self.path is not None else None

    def write(self, record: dict) -> None:
        self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, allow_nan=False) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
