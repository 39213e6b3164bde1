"""Atomic file writes: write under a temporary name in the same folder, fsync, then rename.

On any error the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def _atomic(path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save_npz(path, arrays: dict) -> None:
    """np.savez(path, **arrays), atomically (uncompressed)."""
    _atomic(path, lambda f: np.savez(f, **arrays))


def atomic_write_text(path, text: str) -> None:
    _atomic(path, lambda f: f.write(text.encode("utf-8")))
