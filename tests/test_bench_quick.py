"""The benchmark script runs end to end in quick mode and writes the documented JSON (no timing checks)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_lstm_quick_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_lstm.py"), "--quick", "--no-torch", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert set(res) >= {"meta", "quick", "configs", "threads", "detach_sweep", "scaling", "targets"}
    assert res["quick"] is True
    assert set(res["configs"]) == {"copying", "pixel-mnist"}
    copying = res["configs"]["copying"]
    for name in ("ours-f32-p0", "ours-f32-p0.25", "ours-f64-p0", "ours-f64-p0.25",
                 "floor-f32", "floor-gemm-f32", "floor-f64", "floor-gemm-f64"):
        t = copying["timing"][name]
        assert t["n"] == copying["repeats"] and 0 < t["q1"] <= t["median"] <= t["q3"]
    assert "ours-f32-p0 / floor-f32" in copying["ratios"]
    assert res["detach_sweep"]["p"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(res["detach_sweep"]["seconds"]) == 5
    row = res["scaling"][0]
    assert set(row) >= {"T", "H", "N", "seconds", "seconds_per_step", "cache_bytes", "peak_bytes",
                        "minimum_bytes", "cache_ratio", "peak_ratio", "per_step_bytes", "per_step_ratio"}
    assert row["minimum_bytes"] == row["T"] * row["N"] * 6 * row["H"] * 4
    assert {"cpu_count", "numpy", "env", "threads"} <= set(res["meta"])
    assert "copying: ours f32 / floor f32" in res["targets"]


def run_quick(script: str, out: Path, *extra) -> dict:
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out), *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


def test_bench_threads_quick_records_the_choice_of_auto_in_each_condition(tmp_path):
    res = run_quick("bench_threads.py", tmp_path / "threads.json")
    assert set(res["conditions"]) == {"idle", "busy"}
    for cond in res["conditions"].values():
        assert cond["auto"] in res["counts"]
        assert cond["busy_cores_at_start"] is None or cond["busy_cores_at_start"] >= 0
        for size in cond["sizes"].values():
            assert min(size["ratio_to_best"].values()) == 1.0 and str(cond["auto"]) in size["seconds"]
    busy = res["conditions"]["busy"]["busy_cores_at_start"]
    if busy is not None:  # the spinner holds a core: auto must not take a second thread then
        assert busy >= 0.7 and res["conditions"]["busy"]["auto"] == 1


def test_bench_mnist_steps_quick_extrapolates_from_its_own_measurements(tmp_path):
    res = run_quick("bench_mnist_steps.py", tmp_path / "steps.json")
    assert [r["steps"] for r in res["rows"]] == [49, 98]
    for r in res["rows"]:
        per_it = max(r["seconds_per_iteration_p0"], r["seconds_per_iteration_p0.25"])
        assert per_it > 0 and r["seconds_per_sequence"] > 0
        want = per_it * 16 * 500 + r["seconds_per_sequence"] * (16 * 5_000 + 10_000)
        assert abs(r["laptop_run_seconds"] - want) <= 1e-9 * want
        assert r["sweep_seconds"]["1"] == 20 * r["laptop_run_seconds"]
        assert r["sweep_seconds"]["64"] == r["laptop_run_seconds"]
