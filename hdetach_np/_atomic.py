"""Atomic file writes: write under a temporary name in the same folder, fsync, then rename.

The temporary file is `<name>.<8 hex digits>.tmp` beside the target. Its name is chosen before
the file exists and the file is created inside the `try`, so an exception at any point (an error,
or KeyboardInterrupt from Ctrl-C) removes it and leaves the target as it was. Only a process
killed outright (kill -9, power loss) can leave one behind; `remove_stale_temp_files` removes
those, matching only this module's own names.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import numpy as np

TEMP_SUFFIX = ".tmp"
# `<name>.<8 characters>.tmp`: 8 hex digits here; 8 of [a-z0-9_] from tempfile.mkstemp in earlier versions
_TEMP_TAIL = r"\.[a-z0-9_]{8}\.tmp"


def temp_name(path: Path) -> Path:
    """A fresh temporary name beside `path`, matching `is_temp_of(path.name, ...)`."""
    return path.with_name(f"{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp_of(name: str, filename: str) -> bool:
    """True if `filename` is a temporary file that an atomic write of `name` creates."""
    return re.fullmatch(re.escape(name) + _TEMP_TAIL, filename) is not None


def _atomic(path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with open(tmp, "xb") as f:  # "x": never an existing file
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # name the target: a bare "[Errno 28] No space left on device" says too little
        if err.errno is None:
            raise OSError(f"cannot write {path}: {err}") from err
        raise OSError(err.errno, f"cannot write {path}: {err.strerror}") from err  # the subclass follows errno
    finally:
        tmp.unlink(missing_ok=True)  # after os.replace there is nothing left to remove


def remove_stale_temp_files(folder, names) -> list[Path]:
    """Delete the temporary files of atomic writes of `names` left in `folder` by a killed process.

    Only files named `<name>.<8 characters>.tmp` for a name in `names` are removed. Call it only
    while no other process writes in `folder` (under its lock). Returns the paths removed.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if p.is_file() and any(is_temp_of(n, p.name) for n in names):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def atomic_write(path, write) -> None:
    """Call write(f) on a binary file that becomes `path` only once write returns."""
    _atomic(path, write)


def atomic_save_npz(path, arrays: dict) -> None:
    """np.savez(path, **arrays), atomically (uncompressed)."""
    _atomic(path, lambda f: np.savez(f, **arrays))


def atomic_write_text(path, text: str) -> None:
    _atomic(path, lambda f: f.write(text.encode("utf-8")))
