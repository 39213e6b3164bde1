import json
import subprocess
import sys
import time

import numpy as np
import pytest
import threadpoolctl

import hdetach_np as hd
from hdetach_np.cli import main
from hdetach_np.training import threads
from hdetach_np.training.threads import describe_threads, parse_threads


def blas_counts():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.parametrize("n", [-1, 1.5, True, "2", None])
def test_blas_threads_rejects_bad_counts(n):
    with pytest.raises(ValueError, match="threads must be 'auto' or an integer >= 0"):
        hd.training.blas_threads(n)


@pytest.mark.parametrize("cores, busy, expected", [
    (2, 0.0, 2), (2, 0.2, 2), (2, 0.3, 1), (2, 1.0, 1), (2, 1.9, 1), (2, 3.5, 1),  # the 2-core machines here
    (1, 0.0, 1), (8, 0.0, 2), (8, 6.3, 1), (8, 6.2, 2), (4, 2.6, 1)])  # never above AUTO_MAX_THREADS (2)
def test_auto_takes_a_thread_per_core_other_processes_leave_free(monkeypatch, cores, busy, expected):
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    assert threads.auto_threads(busy) == expected


def test_auto_is_one_thread_when_the_load_cannot_be_measured(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.2: None)
    assert threads.auto_threads() == 1 == hd.training.resolve_threads("auto")
    assert hd.training.resolve_threads(3) == 3 and hd.training.resolve_threads(0) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_busy_cores_sees_a_process_that_keeps_a_core_busy(monkeypatch):
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start spinning
        busy = threads.busy_cores(0.5)
        monkeypatch.setattr(threads, "usable_cores", lambda: 2)
        chosen = threads.auto_threads()
    finally:
        spinner.kill()
        spinner.wait()
    assert busy >= 0.7, busy  # at least the spinner (other jobs on the machine only add to it)
    assert chosen == 1


@pytest.mark.parametrize("policy, busy, expected", [("auto", 0.0, [2]), ("auto", 1.0, [1]), (1, None, [1]),
                                                     (2, None, [2])])
def test_blas_threads_limits_and_restores(monkeypatch, policy, busy, expected):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.2: busy)
    _check_limits_and_restores(policy, expected)


def _check_limits_and_restores(threads, expected):
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure the BLAS is loaded
    before = blas_counts()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    with hd.training.blas_threads(threads):
        assert blas_counts() == expected * len(before)
        assert describe_threads(threads).startswith(f"{threads} ({expected[0]} BLAS thread")
    assert blas_counts() == before


def test_zero_threads_leaves_blas_as_it_is():
    before = blas_counts()
    with hd.training.blas_threads(0):
        assert blas_counts() == before
    assert blas_counts() == before


@pytest.mark.parametrize("text, value", [("auto", "auto"), ("0", 0), ("2", 2)])
def test_parse_threads(text, value):
    assert parse_threads(text) == value


@pytest.mark.parametrize("text", ["-1", "two", "1.5", ""])
def test_parse_threads_rejects(text):
    with pytest.raises(ValueError, match="--threads must be 'auto' or an integer >= 0"):
        parse_threads(text)


def test_versions_record_the_blas_and_its_threads():
    with hd.training.blas_threads(1):
        v = hd.training.runs.versions()
    if not blas_counts():
        pytest.skip("no BLAS library visible to threadpoolctl")
    assert v["blas"]["threads"] == 1 and v["blas"]["libraries"][0]["num_threads"] == 1
    assert "architecture" in v["blas"]["libraries"][0]
    assert threads.recorded_threads(v) == 1 and threads.recorded_threads({}) is None
    assert threads.recorded_threads({"blas": {"threads": True}}) is None


def test_a_run_resumed_with_auto_keeps_the_count_it_started_with(tmp_path, capsys, monkeypatch):
    if not blas_counts():
        pytest.skip("no BLAS library visible to threadpoolctl")
    tiny = ["--delay", "3", "--hidden", "6", "--batch-size", "4", "--n-train", "40", "--n-valid", "8", "--epochs",
            "2", "--iterations-per-epoch", "3"]
    out = tmp_path / "run"
    assert main(["train", "copying", *tiny, "--threads", "2", "--out", str(out), "--stop-after", "2"]) == 0
    assert json.loads((out / "versions.json").read_text())["blas"]["threads"] == 2
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.2: 1.0)  # "auto" alone would take 1 thread now
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "threads auto (2 BLAS threads) as the run started" in first, first


def test_slowdown_watch_speaks_once_when_a_window_is_much_slower(monkeypatch):
    from hdetach_np.training import progress

    clock = {"t": 0.0}
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock["t"])

    def run_windows(watch, per_iteration_ms):
        lines, k = [watch.after_iteration(0)], 0  # the first call starts the first window
        for ms in per_iteration_ms:  # one window of 10 iterations each
            for _ in range(10):
                k += 1
                clock["t"] += ms / 1e3
                lines.append(watch.after_iteration(k))
        return [line for line in lines if line]

    watch = progress.SlowdownWatch(2, resume_hint="hdetach-np train --resume runs/x", window=10)
    lines = run_windows(watch, [20, 15, 16, 40, 90, 200, 300])  # 40 ms: 2.7x the fastest, 90 ms: 6x
    assert len(lines) == 1
    assert "now 6x slower" in lines[0] and "90 ms against 15 ms" in lines[0]
    assert "hdetach-np train --resume runs/x --threads 1" in lines[0]
    assert run_windows(progress.SlowdownWatch(1, window=10), [20, 15, 300]) == []  # one thread: nothing to say
    watch = progress.SlowdownWatch(2, window=10)
    assert run_windows(watch, [15]) == []
    clock["t"] += 100.0  # a long evaluation after the window
    watch.skip()
    assert run_windows(watch, [15, 16]) == []
