"""The run folder: config, versions, history (JSON lines), checkpoints and the best model.

    RUN/config.json      the TrainConfig of the run
    RUN/versions.json    Python, numpy, scipy and hdetach-np versions, platform
    RUN/history.jsonl    one JSON record per line (see below)
    RUN/checkpoint.npz   the latest checkpoint: parameters, optimizer state, RNG state, iteration, best
    RUN/best.npz         the parameters at the best validation epoch
    RUN/summary.json     written when training stops: best validation, test at best, timing

History records all carry "iteration" (the number of parameter updates done); "epoch" is the
epoch number counted from 1, as the console prints it (older run folders
count from 0); summary.json's "epochs_completed" is iteration / iterations per epoch:
    {"iteration", "epoch", "loss", "accuracy", "grad_norm", "clipped", "p"}      a training step
    {"iteration", "epoch", "split": "valid"|"test", "loss", "accuracy", "best", "seconds"}   an evaluation
    {"iteration", "paths": {"iteration", "norms": PathGrads.norms()}}           gradient path norms
    {"iteration", "event": "diverged", "message"}                             a run stopped on NaN/inf

Checkpoints are .npz files written atomically (temporary file + rename): arrays "param/<name>" and
"opt/<key>", and "meta", a JSON string with the iteration, epochs completed, best, RNG state and config.

One process at a time works in a run folder: `lock_run_folder` holds an OS lock on the folder for
the life of the run, which the operating system drops when the process ends in any way.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_save_npz, atomic_write_text
from .._atomic import remove_stale_temp_files as _remove_temp

FORMAT = 1
CONFIG = "config.json"
VERSIONS = "versions.json"
HISTORY = "history.jsonl"
CHECKPOINT = "checkpoint.npz"
BEST = "best.npz"
SUMMARY = "summary.json"
WRITTEN = (CONFIG, VERSIONS, HISTORY, CHECKPOINT, BEST, SUMMARY)  # the files `train` writes, atomically


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not belong to the run."""


class RunFolderBusy(ValueError):
    """Another live process holds the lock of a run folder."""


# ---------------------------------------------------------------------------------------------
# One process per run folder
# ---------------------------------------------------------------------------------------------


def lock_run_folder(path):
    """Take the lock of run folder `path` (created if missing) for this process, or raise RunFolderBusy.

    The lock is an exclusive `fcntl.flock` on the folder itself (no file is added to it); the
    operating system releases it when the last handle is released or the process ends in any
    way, kill -9 included, so a crash never leaves a stale lock. Use it as a context manager:

        with lock_run_folder("runs/a"):
            ...                               # no other process can take runs/a meanwhile

    Within one process the lock is re-entrant: a sweep worker that holds a folder can call `train`,
    which takes the same folder's lock again; the folder is free once every handle is released.
    Where flock is unavailable (Windows) or the file system cannot lock (some network file
    systems), the handle holds no lock (`handle.locked` is False).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a run folder; choose a folder name")
    path.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return FolderLock(None)
    st = os.stat(path)
    key = (os.getpid(), st.st_dev, st.st_ino)  # this process's lock on this folder, whatever its name
    if key in _HELD:
        _HELD[key][1] += 1
        return FolderLock(key)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderBusy(f"run folder {path} is in use by another process; wait for it to end "
                            "or choose another folder") from None
    except OSError:  # pragma: no cover - the file system cannot lock: go on unlocked
        os.close(fd)
        return FolderLock(None)
    _HELD[key] = [fd, 1]
    return FolderLock(key)


_HELD: dict = {}  # (pid, device, inode) of a locked folder -> [descriptor, handles not yet released]


class FolderLock:
    """The handle of `lock_run_folder`: `release()` (or leaving a `with` block) frees the lock."""

    def __init__(self, key):
        self.key = key

    @property
    def locked(self) -> bool:
        return self.key is not None

    def release(self) -> None:
        if self.key is None:
            return
        held = _HELD[self.key]
        held[1] -= 1
        if held[1] == 0:
            os.close(held[0])  # closing the descriptor drops the flock
            del _HELD[self.key]
        self.key = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def remove_stale_temp_files(run) -> list[Path]:
    """Remove the temporary files that killed writes of this run's files left in `run` (hold its lock)."""
    return _remove_temp(run, WRITTEN)


def versions() -> dict:
    """What a run's results depend on besides its config: Python, numpy, scipy, this package, the
    platform, and the BLAS (library, kernel family, thread count); written to versions.json."""
    import scipy

    from .. import __version__
    from .threads import blas_summary

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "hdetach_np": __version__, "platform": platform.platform(), "executable": sys.executable,
            "blas": blas_summary()}


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
    """Read a checkpoint: (params, optimizer state, meta). CheckpointError if it is unreadable.

    Every meta field present is checked for its type here, so a bad checkpoint is refused before
    anything is written; the caller checks the arrays against the run's config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} is a single .npy array, not an hdetach-np checkpoint "
                                  f"(an .npz such as RUN/{CHECKPOINT} or RUN/{BEST})")
        with z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except KeyError:
        raise CheckpointError(f"{path} is not an hdetach-np checkpoint (no 'meta' entry)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {err}); "
                              "use an earlier copy or start a new run") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise CheckpointError(f"{path} has checkpoint format {found!r}, expected {FORMAT}")
    _check_meta(meta, path)
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    opt = {k[len("opt/"):]: v for k, v in arrays.items() if k.startswith("opt/")}
    if not params:
        raise CheckpointError(f"{path} holds no parameters")
    return params, opt, meta


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# the best validation record: {"iteration", "epoch", "loss", "accuracy"[, "test_loss", "test_accuracy"]}
_BEST_FIELDS = {"iteration": _is_int, "epoch": _is_int, "loss": _is_number,
                "accuracy": lambda v: v is None or _is_number(v)}
_BEST_OPTIONAL = {"test_loss": _is_number, "test_accuracy": lambda v: v is None or _is_number(v)}
_META_FIELDS = {"iteration": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
                "epoch": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
                "best": (lambda v: v is None or _valid_best(v), "null or a record {iteration, epoch, loss, accuracy}"),
                "rng": (lambda v: isinstance(v, dict), "a generator state (an object)"),
                "config": (lambda v: isinstance(v, dict), "a config (an object)"),
                "seconds": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
                "optimizer": (lambda v: isinstance(v, str), "an optimizer name")}


def _valid_best(v) -> bool:
    return (isinstance(v, dict) and set(_BEST_FIELDS) <= set(v) <= set(_BEST_FIELDS) | set(_BEST_OPTIONAL)
            and all({**_BEST_FIELDS, **_BEST_OPTIONAL}[k](x) for k, x in v.items()))


def _check_meta(meta: dict, path) -> None:
    for name, (ok, expected) in _META_FIELDS.items():
        if name in meta and not ok(meta[name]):
            raise CheckpointError(f"{path}: meta field {name!r} must be {expected}, got {meta[name]!r}")


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


@contextlib.contextmanager
def _naming(path):
    """Re-raise a failed write (disk full) as an OSError that names the file."""
    try:
        yield
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}") from err


class HistoryWriter:
    """Append records to history.jsonl (line buffered by `flush`) and keep them in memory."""

    def __init__(self, path=None, records: list | None = None):
        self.path = Path(path) if path is not None else None
        self.records = list(records or [])
        self._file = open(self.path, "a") if self.path is not None else None

    def write(self, record: dict) -> None:
        self.records.append(record)
        if self._file is not None:
            with _naming(self.path):
                self._file.write(json.dumps(record, allow_nan=False) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            with _naming(self.path):
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
