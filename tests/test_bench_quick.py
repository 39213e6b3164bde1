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
