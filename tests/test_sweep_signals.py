"""Stopping a sweep: SIGINT and SIGTERM to its driver, kill -9 of its driver, and the exceptions
that travel from a worker process to the driver. The tests that signal a sweep run the command line
in a subprocess (`python -m hdetach_np sweep`, one BLAS thread) and stay under ~30 s each."""

import os
import pickle
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_sweep import CLI, ROOT, _alive, _children, complete, histories

from hdetach_np.teaching.exercises import ExerciseError
from hdetach_np.training import guard, runs, sweep
from hdetach_np.training.config import TrainConfig
from hdetach_np.training.data import DataError
from hdetach_np.training.loop import TrainingDiverged, train
from hdetach_np.training.runs import CheckpointError, RunFolderBusy

LINUX = sys.platform.startswith("linux")
TINY = dict(task="copying", delay=2, hidden=8, n_train=200, n_valid=50, batch_size=10, one_hot=True, anneal_p=0,
            epochs=1, iterations_per_epoch=50)
# two runs of one 1,000-iteration epoch (a few ms each): long enough to be stopped mid-way
SHORT = CLI[:CLI.index("--grid")] + ["--grid", "p=0,0.5", "--epochs", "1", "--iterations-per-epoch", "1000",
                                     "--workers", "2"]
RUNS = ["p=0", "p=0.5"]


def sweep_process(args, output=subprocess.PIPE):
    """`python -m hdetach_np ARGS` started from the repository root (one BLAS thread)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hdetach_np", *map(str, args)], cwd=ROOT, env=env,
                            stdout=output, stderr=output, text=True)


def wait_for(predicate, what, seconds=120.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")


def history_records(run: Path) -> int:
    """Training records in a run's history so far (0 if none)."""
    try:
        return sum(1 for r in runs.read_history(run) if "grad_norm" in r)
    except (OSError, ValueError):
        return 0


def tmp_files(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


def assert_same_checkpoint(a, b):
    pa, oa, ma = runs.load_checkpoint(a)
    pb, ob, mb = runs.load_checkpoint(b)
    assert set(pa) == set(pb) and set(oa) == set(ob)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    for k in oa:
        np.testing.assert_array_equal(oa[k], ob[k])
    assert ma["rng"] == mb["rng"] and ma["iteration"] == mb["iteration"] and ma["best"] == mb["best"]


# ---------------------------------------------------------------------------------------------
# Exceptions that cross a process boundary keep their attributes
# ---------------------------------------------------------------------------------------------


def test_the_package_exceptions_survive_pickling(tmp_path):
    errors = [guard.TrainingInterrupted(signal.SIGTERM, 41, tmp_path / "run"),
              sweep.SweepInterrupted(signal.SIGINT, {"p=0": 12, "p=0.5": 9}, 3, "resume with: hdetach-np sweep x",
                                     " without waiting"),
              TrainingDiverged("non-finite loss (nan) at iteration 3"), CheckpointError("no checkpoint at x"),
              RunFolderBusy("run folder x is in use by another process"), DataError("cannot read x"),
              ExerciseError("lstm_step must return shape (2, 3)")]
    for err in errors:
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.args == err.args
        assert vars(back) == vars(err)
    ti, si = pickle.loads(pickle.dumps(errors[0])), pickle.loads(pickle.dumps(errors[1]))
    assert (ti.signum, ti.iteration, ti.run_dir, ti.exit_status) == (signal.SIGTERM, 41, tmp_path / "run", 143)
    assert (si.signum, si.checkpointed, si.not_started, si.exit_status) == (signal.SIGINT, {"p=0": 12, "p=0.5": 9}, 3,
                                                                            130)
    assert str(si) == ("SIGINT: the sweep stopped without waiting; 2 run(s) checkpointed at their current iteration "
                       "(p=0 at iteration 12, p=0.5 at iteration 9), 3 not started; resume with: hdetach-np sweep x")
    nothing = sweep.SweepInterrupted(signal.SIGTERM, {}, 0, "resume with: x")
    assert str(nothing) == "SIGTERM: the sweep stopped; resume with: x"


# ---------------------------------------------------------------------------------------------
# In one process: execute, the guard taking over a remembered signal
# ---------------------------------------------------------------------------------------------


def signal_at_iteration(monkeypatch, k, sig=signal.SIGINT):
    """Send `sig` to this process during iteration k of the next training."""
    import hdetach_np.training.loop as loop

    real, calls = loop.clip_grad_norm, {"n": 0}

    def clip_and_signal(grads, max_norm):
        calls["n"] += 1
        if calls["n"] == k:
            os.kill(os.getpid(), sig)
        return real(grads, max_norm)

    monkeypatch.setattr(loop, "clip_grad_norm", clip_and_signal)


def test_execute_returns_an_interrupted_run_instead_of_raising(tmp_path, monkeypatch):
    cfg = TrainConfig.from_dict(TINY).to_dict()
    signal_at_iteration(monkeypatch, 7, signal.SIGTERM)
    before = signal.getsignal(signal.SIGTERM)
    res = sweep.execute("r", cfg, tmp_path / "r")
    assert signal.getsignal(signal.SIGTERM) is before
    assert res["status"] == "interrupted" and res["signal"] == "SIGTERM" and res["iteration"] == 7
    assert f"SIGTERM at iteration 7: checkpoint written to {tmp_path / 'r' / runs.CHECKPOINT}" in res["message"]
    assert runs.load_checkpoint(tmp_path / "r" / runs.CHECKPOINT)[2]["iteration"] == 7
    assert pickle.loads(pickle.dumps(res)) == res  # a plain summary: it crosses the pool
    monkeypatch.undo()
    again = sweep.execute("r", cfg, tmp_path / "r")
    assert again["status"] == "resumed" and again["iteration"] == 50
    whole = sweep.execute("w", cfg, tmp_path / "w")
    assert_same_checkpoint(tmp_path / "r" / runs.CHECKPOINT, tmp_path / "w" / runs.CHECKPOINT)
    assert whole["status"] == "trained"


def test_a_signal_remembered_before_a_run_stops_it_after_one_iteration(tmp_path):
    cfg = TrainConfig.from_dict(TINY)
    before = {s: signal.getsignal(s) for s in guard.STOP_SIGNALS}
    pending = guard.PendingStop().install()
    try:
        os.kill(os.getpid(), signal.SIGINT)  # between runs: remembered, not raised
        assert pending.signum == signal.SIGINT
        with pytest.raises(guard.TrainingInterrupted, match="SIGINT at iteration 1:"):
            train(cfg, tmp_path / "r")
        assert pending.signum is None and signal.getsignal(signal.SIGINT) is pending  # taken over, then restored
        assert runs.load_checkpoint(tmp_path / "r" / runs.CHECKPOINT)[2]["iteration"] == 1
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    stale = guard.PendingStop()
    stale(signal.SIGTERM, None)
    assert stale.take(since=time.monotonic()) is None and stale.signum is None  # older than `since`: forgotten
    fresh = guard.PendingStop()
    fresh(signal.SIGTERM, None)
    assert fresh.take(since=time.monotonic() - 60) == signal.SIGTERM


def test_a_worker_that_got_a_signal_between_runs_does_not_start_the_next(tmp_path, monkeypatch):
    cfg = TrainConfig.from_dict(TINY).to_dict()
    pending = guard.PendingStop()
    monkeypatch.setattr(sweep.stopping, "_pending_stop", pending)  # the worker state execute() reads
    started = time.monotonic()
    pending(signal.SIGINT, None)
    res = sweep.execute("r", cfg, tmp_path / "r", sweep_started=started)
    assert res["status"] == "interrupted" and res["iteration"] is None and "before it started" in res["message"]
    assert not (tmp_path / "r").exists()
    pending(signal.SIGINT, None)  # from before this sweep (a worker reused across sweeps): ignored
    res = sweep.execute("r", cfg, tmp_path / "r", sweep_started=time.monotonic())
    assert res["status"] == "trained" and res["iteration"] == 50


@pytest.mark.skipif(not LINUX, reason="reads the process table in /proc (Linux)")
def test_child_pids_finds_this_process_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert child.pid in sweep.child_pids()
        assert os.getpid() not in sweep.child_pids() and sweep.child_pids(child.pid) == []
    finally:
        child.kill()
        child.wait()


# ---------------------------------------------------------------------------------------------
# The command line: SIGINT, SIGTERM and kill -9 to a sweep's driver
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The sweep SHORT run without interruption, by the command line."""
    out = tmp_path_factory.mktemp("whole") / "sw"
    p = sweep_process(SHORT + ["--out", out])
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    return out


@pytest.mark.skipif(not LINUX, reason="the driver finds its workers in /proc (Linux)")
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_driver_alone_checkpoints_every_run_and_the_same_command_resumes(
        tmp_path, uninterrupted, sig, status):
    out = tmp_path / "sw"
    args = SHORT + ["--out", str(out)]
    p = sweep_process(args)
    try:
        # both runs under way (their first records written), not in the driver's process group: the
        # workers get the signal only if the driver passes it on
        wait_for(lambda: all(history_records(out / n) > 0 for n in RUNS), "both runs to start")
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
        p.wait()
    name = signal.Signals(sig).name
    assert p.returncode == status, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"hdetach-np sweep: {name}: the sweep stopped; ") and "not started" not in line, err
    assert line.endswith("resume with: hdetach-np " + shlex.join(args)), line
    cut_short = []
    for n in RUNS:
        assert (out / n / runs.CHECKPOINT).is_file() and tmp_files(out / n) == [], n
        k = runs.load_checkpoint(out / n / runs.CHECKPOINT)[2]["iteration"]
        assert history_records(out / n) == k  # the history ends at the checkpoint
        if not complete(out / n):
            cut_short.append(n)
            assert f"{n} at iteration {k}" in line
    assert cut_short, "both runs had finished before the signal"
    assert f"{len(cut_short)} run(s) checkpointed" in line
    # the resume line's command, run as it says
    again = shlex.split(line.split("resume with: ", 1)[1])
    assert again[0] == "hdetach-np"
    p = sweep_process(again[1:])
    said, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert all(f"{n}: resumed" in said for n in cut_short)
    assert all(complete(out / n) for n in RUNS)
    assert histories(out, RUNS) == histories(uninterrupted, RUNS)  # bit for bit, wall-clock fields aside
    for n in RUNS:
        assert_same_checkpoint(out / n / runs.CHECKPOINT, uninterrupted / n / runs.CHECKPOINT)


@pytest.mark.skipif(not LINUX, reason="reads the process table in /proc (Linux)")
def test_kill_9_of_the_driver_makes_its_workers_checkpoint_at_their_current_iteration(tmp_path):
    out = tmp_path / "sw"
    # one epoch far longer than the test: no epoch-end checkpoint, and no timed one (3 minutes)
    args = CLI[:CLI.index("--grid")] + ["--grid", "p=0,0.5", "--epochs", "1", "--iterations-per-epoch", "100000",
                                        "--workers", "2", "--out", str(out)]
    p = sweep_process(args, output=subprocess.DEVNULL)  # the workers would hold a pipe open
    try:
        wait_for(lambda: all(history_records(out / n) >= 20 for n in RUNS), "both runs to pass iteration 20")
        workers = _children(p.pid)
        seen = {n: history_records(out / n) for n in RUNS}
        assert not any((out / n / runs.CHECKPOINT).exists() for n in RUNS), "a checkpoint before the kill"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
    finally:
        p.kill()
        p.wait()
    assert len(workers) >= 2
    wait_for(lambda: not any(_alive(w) for w in workers), "the driver's child processes to end", seconds=30)
    for n in RUNS:
        assert (out / n / runs.CHECKPOINT).is_file(), f"{n}: no checkpoint after its driver's kill -9"
        k = runs.load_checkpoint(out / n / runs.CHECKPOINT)[2]["iteration"]
        assert seen[n] <= k < 100_000 and history_records(out / n) == k
        assert not complete(out / n) and tmp_files(out / n) == []


def test_a_signal_to_a_dask_driver_stops_dispatching_and_the_cluster_finishes_its_runs(tmp_path):
    distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")
    out = tmp_path / "sw"
    with distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        args = SHORT + ["--scheduler", cluster.scheduler_address, "--out", str(out)]
        p = sweep_process(args)
        try:
            wait_for(lambda: any(history_records(out / n) > 0 for n in RUNS), "a run to start on the cluster")
            p.send_signal(signal.SIGINT)
            said, err = p.communicate(timeout=120)
        finally:
            p.kill()
            p.wait()
        assert p.returncode == 130 and "Traceback" not in err, said + err
        line = err.strip().splitlines()[-1]
        assert line.startswith("hdetach-np sweep: SIGINT: the sweep stopped (the ") and "go on there" in line, line
        assert line.endswith("resume with: hdetach-np " + shlex.join(args))
        began = [n for n in RUNS if (out / n).exists()]
        # the cluster's workers were not signalled: the runs they began end there, complete
        wait_for(lambda: all(complete(out / n) for n in began), "the cluster to finish its runs")
        assert all(not (out / n / runs.CHECKPOINT).exists() or complete(out / n) for n in RUNS)
        again = sweep_process(args)
        said, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert all(f"{n}: " not in said for n in began)  # reused silently
    assert all(complete(out / n) for n in RUNS)


def test_a_dask_cluster_of_one_thread_trains_on_the_cluster(tmp_path, monkeypatch):
    """joblib runs the tasks of a one-thread backend in the calling process; the sweep must not."""
    distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")

    def not_here(*args):
        raise AssertionError("a run of the Dask sweep trained in the driver's process")

    monkeypatch.setattr(sweep.execution, "_execute", not_here)  # the cluster's worker processes import the real one
    with distributed.LocalCluster(host="127.0.0.1", n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        lines = []
        out = sweep.run_sweep(tmp_path, TINY, {"seed": [0, 1]}, scheduler=cluster.scheduler_address, say=lines.append)
    assert "1 at a time on the Dask cluster" in lines[0]
    assert [r["status"] for r in out.values()] == ["trained", "trained"]
    assert all(complete(tmp_path / n) for n in out)
