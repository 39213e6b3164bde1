"""Faults a run folder survives: signals, kill -9, a second process, bad checkpoints, full disks,
read-only folders, out of memory, divergence, corrupt data. Every test works in a temporary folder;
the ones that kill a process run the command line in a subprocess and stay under ~20 s."""

import errno
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hdetach_np import _atomic
from hdetach_np.cli import main
from hdetach_np.training import guard, runs
from hdetach_np.training.config import TrainConfig
from hdetach_np.training.loop import TrainingDiverged, init_model, train
from hdetach_np.training.runs import CheckpointError, RunFolderBusy, lock_run_folder, read_history

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(task="copying", delay=4, hidden=8, batch_size=8, n_train=64, n_valid=16, epochs=2, iterations_per_epoch=6,
            lr=1e-2, anneal_p=0)
# a command-line run long enough to be interrupted (1 epoch of 2,000 iterations, a few ms each)
LONG = ["copying", "--delay", "4", "--hidden", "8", "--batch-size", "8", "--n-train", "64", "--n-valid", "16",
        "--epochs", "1", "--iterations-per-epoch", "2000", "--lr", "0.01", "--anneal-p", "0", "--quiet"]


def tiny(**kw):
    return TrainConfig.from_dict({**TINY, **kw})


def cli(*args, timeout=60):
    """Run `python -m hdetach_np ARGS` from the repository root (one BLAS thread); the CompletedProcess."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "hdetach_np", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def start(*args):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hdetach_np", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, seconds=20.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def training_started(run: Path):
    h = run / runs.HISTORY
    return lambda: h.is_file() and h.stat().st_size > 0


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def params_of(path):
    p, o, meta = runs.load_checkpoint(path)
    return p, o, meta


def assert_same_checkpoint(a, b):
    pa, oa, ma = params_of(a)
    pb, ob, mb = params_of(b)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    for k in oa:
        np.testing.assert_array_equal(oa[k], ob[k])
    assert set(oa) == set(ob) and ma["rng"] == mb["rng"] and ma["iteration"] == mb["iteration"]


def tmp_files(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM: a checkpoint at the current iteration, one line, exit 128 + signal
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_checkpoint_and_the_resumed_run_is_exact(tmp_path, sig, status):
    run = tmp_path / "run"
    p = start("train", *LONG, "--out", run)
    wait_for(training_started(run))
    p.send_signal(sig)
    out, err = p.communicate(timeout=20)
    assert p.returncode == status, err
    line = one_line(err)
    assert f"{signal.Signals(sig).name} at iteration" in line and f"--resume {run}" in line
    _, _, meta = runs.load_checkpoint(run / runs.CHECKPOINT)
    k = meta["iteration"]
    assert 0 < k < 2000 and f"iteration {k}:" in line
    steps = [r["iteration"] for r in read_history(run) if "grad_norm" in r]
    assert steps == list(range(1, k + 1)), "the history holds every iteration up to the checkpoint"
    assert cli("train", "--resume", run, "--quiet").returncode == 0
    assert cli("train", *LONG, "--out", tmp_path / "whole").returncode == 0
    assert_same_checkpoint(run / runs.CHECKPOINT, tmp_path / "whole" / runs.CHECKPOINT)


def test_signal_handlers_are_restored_and_memory_runs_keep_keyboard_interrupt(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    train(tiny(epochs=1), tmp_path / "r")
    assert signal.getsignal(signal.SIGINT) is before
    with guard.run_guard(None, fresh=True) as g:  # no folder: nothing to checkpoint, no handler
        assert signal.getsignal(signal.SIGINT) is before and not g.stop_requested


def test_interrupt_in_process_stops_between_iterations(tmp_path, monkeypatch):
    """SIGINT raised inside iteration 5: the iteration completes, the checkpoint is at 5."""
    import hdetach_np.training.loop as loop

    real, calls = loop.clip_grad_norm, {"n": 0}

    def clip_and_signal(grads, max_norm):
        calls["n"] += 1
        if calls["n"] == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return real(grads, max_norm)

    monkeypatch.setattr(loop, "clip_grad_norm", clip_and_signal)
    with pytest.raises(guard.TrainingInterrupted, match=r"SIGINT at iteration 5: checkpoint written") as info:
        train(tiny(iterations_per_epoch=50), tmp_path / "r")
    assert isinstance(info.value, KeyboardInterrupt) and info.value.exit_status == 130
    assert runs.load_checkpoint(tmp_path / "r" / runs.CHECKPOINT)[2]["iteration"] == 5


# ---------------------------------------------------------------------------------------------
# kill -9: timed checkpoints bound the loss; a folder without a checkpoint resumes from 0
# ---------------------------------------------------------------------------------------------


def test_kill_9_loses_at_most_the_checkpoint_interval(tmp_path):
    run = tmp_path / "run"
    p = start("train", *LONG, "--out", run, "--checkpoint-minutes", "0.01")  # every 0.6 s
    wait_for(lambda: (run / runs.CHECKPOINT).is_file())
    wait_for(lambda: runs.load_checkpoint(run / runs.CHECKPOINT)[2]["iteration"] > 0)
    p.kill()
    p.wait(timeout=10)
    k = runs.load_checkpoint(run / runs.CHECKPOINT)[2]["iteration"]
    assert 0 < k < 2000, "a timed checkpoint, long before the only epoch end"
    assert cli("train", "--resume", run, "--quiet").returncode == 0
    assert cli("train", *LONG, "--out", tmp_path / "whole", "--checkpoint-minutes", "0").returncode == 0
    assert_same_checkpoint(run / runs.CHECKPOINT, tmp_path / "whole" / runs.CHECKPOINT)


def test_timed_checkpoints(tmp_path):
    clock = iter(range(0, 10_000, 7)).__next__  # 7 s per call
    timer = guard.CheckpointTimer(0.25, clock=clock)  # 15 s
    assert [timer.due() for _ in range(3)] == [False, False, True]
    timer.reset()
    assert not timer.due()
    assert not guard.CheckpointTimer(0, clock=clock).due()
    with pytest.raises(ValueError, match="checkpoint_minutes must be a number >= 0"):
        guard.CheckpointTimer(-1)


def test_folder_without_checkpoint_resumes_from_iteration_0(tmp_path):
    run = tmp_path / "run"
    p = start("train", *LONG, "--out", run, "--checkpoint-minutes", "0")
    wait_for(training_started(run))
    p.kill()
    p.wait(timeout=10)
    assert not (run / runs.CHECKPOINT).exists() and (run / runs.CONFIG).is_file()
    r = cli("train", *LONG, "--out", run)
    assert r.returncode == 2 and f"--resume {run}" in one_line(r.stderr) and "iteration 0" in r.stderr
    assert cli("train", "--resume", run, "--quiet").returncode == 0
    assert cli("train", *LONG, "--out", tmp_path / "whole").returncode == 0
    assert_same_checkpoint(run / runs.CHECKPOINT, tmp_path / "whole" / runs.CHECKPOINT)
    losses = [[r["loss"] for r in read_history(d) if "grad_norm" in r] for d in (run, tmp_path / "whole")]
    assert losses[0] == losses[1] and len(losses[0]) == 2000


# ---------------------------------------------------------------------------------------------
# One process per run folder
# ---------------------------------------------------------------------------------------------


def test_a_run_folder_in_use_is_refused(tmp_path):
    train(tiny(), tmp_path / "r", stop_after=3)
    code = "from hdetach_np.training.runs import lock_run_folder; import time; " \
           f"l = lock_run_folder({str(tmp_path / 'r')!r}); " \
           "print('locked', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusy, match="in use by another process"):
            train(tiny(), tmp_path / "r", resume=True)
        r = cli("train", "--resume", tmp_path / "r", "--quiet")
        assert r.returncode == 1 and "in use by another process" in one_line(r.stderr)
        r = cli("train", *LONG, "--out", tmp_path / "r")
        assert r.returncode == 1 and "in use by another process" in one_line(r.stderr)
    finally:
        holder.kill()
        holder.wait()
    assert train(tiny(), tmp_path / "r", resume=True).complete


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    """A sweep worker holds its run folder and calls train, which takes the same lock again."""
    train(tiny(), tmp_path / "r", stop_after=3)
    with lock_run_folder(tmp_path / "r") as outer:
        assert outer.locked
        assert train(tiny(), tmp_path / "r", resume=True).complete  # the same process: not refused
        with lock_run_folder(tmp_path / "r") as inner:
            assert inner.locked
        r = cli("train", "--resume", tmp_path / "r", "--quiet")  # another process is still refused
        assert r.returncode == 1 and "in use by another process" in one_line(r.stderr)
    r = cli("train", "--resume", tmp_path / "r", "--quiet")  # every handle released: free
    assert r.returncode == 0, r.stderr


def test_two_runs_started_together_one_wins(tmp_path):
    run = tmp_path / "run"
    procs = [start("train", *LONG, "--out", run, "--stop-after", "200") for _ in range(2)]
    results = [p.communicate(timeout=30) + (p.returncode,) for p in procs]
    assert sorted(rc for _, _, rc in results) in ([0, 1], [0, 2]), results
    steps = [r["iteration"] for r in read_history(run) if "grad_norm" in r]
    assert steps == list(range(1, 201)), "every record written once"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = "from hdetach_np.training.runs import lock_run_folder; import time; " \
           f"l = lock_run_folder({str(tmp_path)!r}); " \
           "print('locked', flush=True); time.sleep(60)"
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    with pytest.raises(RunFolderBusy):
        lock_run_folder(tmp_path)
    p.kill()
    p.wait(timeout=10)
    with lock_run_folder(tmp_path) as lock:
        assert lock.locked


# ---------------------------------------------------------------------------------------------
# Temporary files of atomic writes
# ---------------------------------------------------------------------------------------------


def test_an_interrupt_anywhere_in_an_atomic_write_leaves_no_temporary_file(tmp_path):
    """KeyboardInterrupt injected at each executed line in turn (of _atomic and what it calls)."""
    target = tmp_path / "out.txt"
    target.write_text("old")
    n = 0
    while True:
        n += 1
        seen = {"lines": 0}

        def tracer(frame, event, arg, seen=seen, n=n):
            if event == "line":
                seen["lines"] += 1
                if seen["lines"] == n:
                    raise KeyboardInterrupt
            return tracer

        sys.settrace(tracer)
        try:
            _atomic.atomic_write_text(target, "new")
        except KeyboardInterrupt:
            assert target.read_text() in ("old", "new")
            assert tmp_files(tmp_path) == [], f"a temporary file left after an interrupt at line event {n}"
            target.write_text("old")
            continue
        finally:
            sys.settrace(None)
        break
    assert target.read_text() == "new" and n > 5


def test_stale_temporary_files_are_removed_on_the_next_start(tmp_path):
    run = tmp_path / "r"
    train(tiny(), run, stop_after=3)
    stale = ["checkpoint.npz.a1b2c3d4.tmp", "history.jsonl.k9_x2zq1.tmp", "best.npz.00ff00ff.tmp"]
    mine = ["notes.tmp", "checkpoint.npz.mine.tmp", "my.checkpoint.npz.a1b2c3d4.tmp"]
    for name in stale + mine:
        (run / name).write_bytes(b"PK partial")
    assert train(tiny(), run, resume=True).complete
    assert tmp_files(run) == sorted(mine), "only the toolkit's own temporary names are removed"


# ---------------------------------------------------------------------------------------------
# Checkpoints are validated completely before anything is written
# ---------------------------------------------------------------------------------------------


def rewrite_checkpoint(path, drop=(), **meta_changes):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    meta = json.loads(str(arrays["meta"]))
    meta.update(meta_changes)
    arrays["meta"] = np.array(json.dumps(meta))
    _atomic.atomic_save_npz(path, arrays)


@pytest.mark.parametrize("change, message", [
    (dict(drop=("opt/m/lstm.Wh",)), r"lacks m/lstm.Wh after 3 step\(s\)"),
    (dict(drop=("opt/v/readout.d",)), r"lacks v/readout.d"),
    (dict(best="xyz"), r"meta field 'best' must be null or a record"),
    (dict(best={"iteration": 2, "loss": 1.0}), r"meta field 'best'"),
    (dict(seconds="soon"), r"meta field 'seconds' must be a number"),
    (dict(epoch=-1), r"meta field 'epoch' must be an integer >= 0"),
])
def test_incomplete_or_mistyped_checkpoints_are_refused_before_anything_is_written(tmp_path, change, message):
    run = tmp_path / "r"
    train(tiny(), run, stop_after=3)
    rewrite_checkpoint(run / runs.CHECKPOINT, **change)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(CheckpointError, match=message):
        train(tiny(), run, resume=True)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_an_npy_given_as_checkpoint(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match=r"w.npy is a single .npy array, not an hdetach-np checkpoint"):
        runs.load_checkpoint(tmp_path / "w.npy")


# ---------------------------------------------------------------------------------------------
# Divergence, memory, disks: one line, nothing half-written
# ---------------------------------------------------------------------------------------------


def test_overflowing_logits_are_a_divergence(tmp_path, capsys):
    """SGD at lr 1e38 without clipping: finite but huge weights overflow the readout."""
    args = ["train", "copying", "--delay", "4", "--hidden", "16", "--batch-size", "8", "--n-train", "64", "--n-valid",
            "16", "--epochs", "1", "--iterations-per-epoch", "50", "--optimizer", "sgd", "--lr", "1e38", "--clip", "0",
            "--anneal-p", "0", "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 1
    line = one_line(capsys.readouterr().err)
    assert "at iteration" in line and "no checkpoint was written before it" in line
    last = read_history(tmp_path / "r")[-1]
    assert last["event"] == "diverged" and f"at iteration {last['iteration']}" in line
    with pytest.raises(TrainingDiverged), np.errstate(over="ignore", invalid="ignore"):
        train(tiny(hidden=16, optimizer="sgd", lr=1e38, clip=0.0))


def test_out_of_memory_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    assert main(["train", "copying", "--hidden", "1000000", "--out", str(tmp_path / "big"), "--quiet"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "hidden 1000000" in line and "GiB" in line and "--hidden" in line
    assert not (tmp_path / "big").exists()
    assert main(["check", "--H", "100000"]) == 1
    assert "--H 100000" in one_line(capsys.readouterr().err)


def test_memory_estimate_is_a_lower_bound_of_the_arrays():
    cfg = tiny(hidden=32)
    model_bytes = sum(a.nbytes for a in init_model(1, 32, 9, np.random.default_rng(0)).arrays().values())
    assert guard.training_memory(cfg, 1, 9) >= 4 * model_bytes  # params, grads, Adam's m and v
    with pytest.raises(MemoryError, match="hidden 32, batch size 8 and 24 steps needs at least"):
        guard.check_memory(cfg, 1, 9, available=1000)


def test_a_memory_error_during_a_fresh_run_removes_what_it_wrote(tmp_path, monkeypatch):
    import hdetach_np.training.model as model

    def no_memory(*a, **kw):
        raise MemoryError("Unable to allocate")

    monkeypatch.setattr(model, "lstm_forward", no_memory)
    with pytest.raises(MemoryError):
        train(tiny(), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(MemoryError):
        train(tiny(), tmp_path / "mine")
    assert list((tmp_path / "mine").iterdir()) == [], "an empty folder given is left as it was"


def test_disk_full_during_a_checkpoint(tmp_path, monkeypatch, capsys):
    run = tmp_path / "r"
    train(tiny(), run, stop_after=3)
    good = (run / runs.CHECKPOINT).read_bytes()
    real = np.savez

    def full(f, **arrays):  # the disk fills up while the checkpoint is written
        if not Path(f.name).name.startswith(runs.CHECKPOINT):
            return real(f, **arrays)
        f.write(b"PK partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    assert main(["train", "--resume", str(run), "--quiet"]) == 1
    line = one_line(capsys.readouterr().err)
    assert f"cannot write {run / runs.CHECKPOINT}" in line and "No space left" in line
    assert "free disk space" in line and f"--resume {run}" in line
    assert (run / runs.CHECKPOINT).read_bytes() == good and tmp_files(run) == []
    monkeypatch.setattr(np, "savez", real)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0


@pytest.fixture
def read_only(monkeypatch):
    """make(folder): writes under `folder` fail with EACCES, as in a read-only folder (the tests run as
    root in CI, where chmod does not stop writes)."""
    import builtins
    import io

    folders = []

    def inside(path):
        if isinstance(path, int):
            return False
        path = Path(os.fsdecode(path)).absolute()
        return any(path == f or f in path.parents for f in folders)

    def deny(path):
        raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, Path.mkdir

    def fake_open(file, mode="r", *a, **kw):
        if any(c in mode for c in "wax+") and inside(file):
            deny(file)
        return real_open(file, mode, *a, **kw)

    def fake_os_open(path, flags, *a, **kw):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            deny(path)
        return real_os_open(path, flags, *a, **kw)

    def fake_mkdir(self, *a, **kw):
        if inside(self) and not self.exists():
            deny(self)
        return real_mkdir(self, *a, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(Path, "mkdir", fake_mkdir)
    return lambda folder: folders.append(Path(folder).absolute())


def test_read_only_folders_give_one_line(tmp_path, capsys, read_only):
    run = tmp_path / "r"
    train(tiny(), run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    read_only(tmp_path)
    cases = [["train", *LONG, "--out", str(tmp_path / "new")],
             ["train", "--resume", str(run), "--quiet"],
             ["transfer", str(run), "--delays", "3", "--n", "10", "--quiet"],
             ["plot", str(run)]]
    for argv in cases:
        assert main(argv) == 1, argv
        line = one_line(capsys.readouterr().err)
        assert "Permission denied" in line and "writable" in line and str(tmp_path) in line, line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert not (tmp_path / "new").exists()


def test_out_naming_a_file(tmp_path, capsys):
    (tmp_path / "results.csv").write_text("mine")
    assert main(["train", *LONG, "--out", str(tmp_path / "results.csv")]) == 2
    assert "is a file, not a run folder" in one_line(capsys.readouterr().err)
    train(tiny(), tmp_path / "r", stop_after=3)
    assert main(["plot", str(tmp_path / "r"), "--out", str(tmp_path)]) == 2
    assert "is a folder" in one_line(capsys.readouterr().err)
    assert (tmp_path / "results.csv").read_text() == "mine"


# ---------------------------------------------------------------------------------------------
# Corrupt MNIST files
# ---------------------------------------------------------------------------------------------


def test_bit_flips_in_gzipped_idx_files_never_escape_as_a_traceback(tmp_path):
    """Every single-bit flip of a gzipped IDX file gives the exact data or one DataError."""
    from hdetach_np.training import data, mnist_sources

    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, size=(8, 2, 2), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, size=8, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(3, 2, 2), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=3, dtype=np.uint8)}
    blobs = {k: gzip.compress(bytes([0, 0, 8, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
                              + a.tobytes(), mtime=0) for k, a in arrays.items()}
    split = {"x_train": arrays["train-images-idx3-ubyte"][:6].reshape(6, 4),
             "y_train": arrays["train-labels-idx1-ubyte"][:6],
             "x_valid": arrays["train-images-idx3-ubyte"][6:].reshape(2, 4),
             "y_valid": arrays["train-labels-idx1-ubyte"][6:],
             "x_test": arrays["t10k-images-idx3-ubyte"].reshape(3, 4), "y_test": arrays["t10k-labels-idx1-ubyte"]}
    spec = data.MNISTSpec(n_train=6, n_valid=2, n_test=3, pixels=4, mirrors=(),
                          content_sha256={k: data.sha256_array(v) for k, v in split.items()})
    name = "train-images-idx3-ubyte"
    good = blobs[name]
    outcomes = {"refused": 0, "exact": 0}
    for i in range(len(good)):
        for bit in (0, 3, 7):
            d = tmp_path / f"flip{i}_{bit}"
            d.mkdir()
            for k, b in blobs.items():
                (d / (k + ".gz")).write_bytes(b)
            bad = bytearray(good)
            bad[i] ^= 1 << bit
            (d / (name + ".gz")).write_bytes(bytes(bad))
            try:
                path, _ = mnist_sources.prepare_mnist(d, spec=spec, network=False)
            except data.DataError:
                outcomes["refused"] += 1
                assert not (d / data.CACHE_NAME).exists()
                continue
            got = data.read_cache(path, spec)
            for k, v in split.items():
                np.testing.assert_array_equal(getattr(got, k), v)
            outcomes["exact"] += 1
    assert outcomes["refused"] > 0
