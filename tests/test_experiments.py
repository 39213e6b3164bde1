"""The experiment scripts' shared module (analysis/_common.py) and the quick modes of the scripts."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from hdetach_np.training import report, sweep

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
SCRIPTS = ("copying_convergence", "gradient_components", "transfer_copying", "ablations", "lr_robustness",
           "mnist_sequential")
if str(ROOT / "analysis") not in sys.path:  # the scripts import analysis/_common.py, as when run from the shell
    sys.path.insert(0, str(ROOT / "analysis"))
import _common as ex  # noqa: E402


def _load(name):
    spec = importlib.util.spec_from_file_location(f"analysis_{name}", ROOT / "analysis" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_first_reach_and_spread():
    hist = [{"iteration": 1, "loss": 1.0}, {"iteration": 100, "split": "valid", "accuracy": 0.4},
            {"iteration": 200, "split": "valid", "accuracy": 0.95},
            {"iteration": 300, "split": "valid", "accuracy": 0.5}]
    assert report.first_reach(hist, (0.5, 0.9, 0.99)) == {0.5: 200, 0.9: 200, 0.99: None}
    s = report.spread([100, None, 300])
    assert s == {"n": 2, "n_missing": 1, "median": 300.0, "min": 100.0, "max": 300.0}
    assert report.spread([100, None, None])["median"] is None  # most seeds never reached: no median
    assert report.spread([None])["min"] is None


def test_jobs_reject_bad_configs_and_names():
    with pytest.raises(ValueError, match="unknown config key"):
        sweep.Run("a", {"task": "copying", "nonsense": 1}, {})
    with pytest.raises(ValueError, match="run name"):
        sweep.Run("a/b", {"task": "copying"}, {})
    jobs = ex.make_jobs(ex.COPYING_QUICK, dict([ex.copying_variant(0.0), ex.copying_variant(0.5, detach="c")]), [0, 1])
    names = [j.name for js in jobs.values() for j in js]
    assert len(set(names)) == 4 and all("T2-H8" in n for n in names)
    assert list(jobs) == ["vanilla", "c-detach p=0.5"]
    with pytest.raises(ValueError, match="unique"):
        sweep.run_many(jobs["vanilla"] * 2, "unused")


def test_train_groups_reuses_complete_runs(tmp_path):
    jobs = ex.make_jobs(ex.COPYING_QUICK, dict([ex.copying_variant(0.5)]), [0])
    first = ex.train_groups(jobs, tmp_path, workers=1, say=lambda s: None)["h-detach p=0.5"]
    assert first[0]["status"] == "trained" and first[0]["history"]
    name = jobs["h-detach p=0.5"][0].name
    assert sweep.folder_state(tmp_path / name, jobs["h-detach p=0.5"][0].config)[0] == "finished"
    again = ex.train_groups(jobs, tmp_path, workers=1, say=lambda s: None)["h-detach p=0.5"]
    assert again[0]["status"] == "reused" and again[0]["history"] == first[0]["history"]


def test_every_script_quick_mode(tmp_path):
    runs = tmp_path / "runs"  # shared, as in the full runs: later scripts reuse the convergence runs
    for name in SCRIPTS:
        out = tmp_path / name
        data = _load(name).main(["--quick", "--out", str(out), "--runs", str(runs)])
        png, js, md = (out / f"{name}.{e}" for e in ("png", "json", "md"))
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
        saved = json.loads(js.read_text())
        assert saved["command"].startswith(f"python analysis/{name}.py --quick")
        assert set(saved) == set(data)
        assert md.read_text().count("|") > 10
        if name == "copying_convergence":
            stamps = {d.parent.name: d.stat().st_mtime_ns for d in runs.glob("*/summary.json")}
    conv = json.loads((tmp_path / "copying_convergence" / "copying_convergence.json").read_text())
    assert list(conv["summary"]) == ["vanilla", "h-detach p=0.25", "h-detach p=0.5"]
    for s in conv["summary"].values():
        assert [p["seed"] for p in s["per_seed"]] == [0, 1]
        assert all(p["final_iteration"] == 15 and 0 <= p["final_valid_accuracy"] <= 1 for p in s["per_seed"])
    grad = json.loads((tmp_path / "gradient_components" / "gradient_components.json").read_text())
    for s in grad["series"].values():
        assert s["iteration"] == [5.0, 10.0, 15.0]
        assert all(v > 0 for row in s["cell"] for v in row)
    tr = json.loads((tmp_path / "transfer_copying" / "transfer_copying.json").read_text())
    assert tr["eval_T"] == [2, 4, 8, 20, 40]
    abl = json.loads((tmp_path / "ablations" / "ablations.json").read_text())
    assert "c-detach p=0.5" in abl["summary"] and "vanilla, no clipping" in abl["summary"]
    lrs = json.loads((tmp_path / "lr_robustness" / "lr_robustness.json").read_text())
    own = ex.COPYING_QUICK["lr"]
    assert lrs["lrs"] == [5e-4, 1e-3, own]  # the paper's two and the setup's own
    reused = lrs["summary"][f"lr {own:g}, vanilla"]["per_seed"]
    assert all(r["status"] == "reused" for r in reused)  # at the setup's own lr: the convergence runs
    assert [dict(r, status=0) for r in reused] == [dict(r, status=0) for r in conv["summary"]["vanilla"]["per_seed"]]
    # the convergence runs were reused by the later scripts, not trained again
    assert len(stamps) == 6
    assert stamps == {d.parent.name: d.stat().st_mtime_ns for d in runs.glob("*/summary.json") if d.parent.name in stamps}


def test_shortened_and_cut_histories():
    base = dict(ex.COPYING, epochs=150, iterations_per_epoch=100)
    assert ex.shortened(base, None) == base and ex.shortened(base, None) is not base
    assert ex.shortened(base, 3000) == dict(base, epochs=30)
    for bad in (0, 50, 3050, -100, 2.5e3):
        with pytest.raises(ValueError, match="multiple of 100"):
            ex.shortened(base, bad)
    hist = [{"iteration": i} for i in range(1, 11)]
    groups = {"a": [{"history": list(hist)}], "b": [{"history": list(hist)}]}
    ex.cut_histories(groups, ["a"], 4)
    assert [h["iteration"] for h in groups["a"][0]["history"]] == [1, 2, 3, 4]
    assert groups["b"][0]["history"] == hist


def test_a_longer_run_starts_as_the_shorter_one():
    """ablations.py compares against the convergence runs cut at its own length: with detaching in
    every iteration the first K iterations of a longer run are exactly a K-iteration run."""
    import hdetach_np as hd

    def strip(h):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in h]

    short = hd.training.train(hd.training.TrainConfig.from_dict(dict(ex.COPYING_QUICK, p=0.5, epochs=2)))
    longer = hd.training.train(hd.training.TrainConfig.from_dict(dict(ex.COPYING_QUICK, p=0.5, epochs=3)))
    assert len(short.history) > 10
    assert strip(short.history) == strip([r for r in longer.history if r["iteration"] <= short.iteration])


# ---------------------------------------------------------------------------------------------
# analysis/copying_seeds.py: many seeds from a sweep folder
# ---------------------------------------------------------------------------------------------


def _p_values(data):
    """Every p-value of copying_seeds' JSON: convergence metrics and transfer delays."""
    conv = [c["p_value"] for comp in data["convergence"]["comparisons"].values() for c in comp.values()]
    return conv + [c["p_value"] for comp in data["transfer"]["comparisons"].values() for c in comp]


def test_copying_seeds_quick_and_partial_sweep(tmp_path):
    mod = _load("copying_seeds")
    out = tmp_path / "quick"
    data = mod.main(["--quick", "--out", str(out)])
    png, js, md = (out / f"copying_seeds.{e}" for e in ("png", "json", "md"))
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
    saved = json.loads(js.read_text())
    assert set(saved) == set(data) and saved["command"].startswith("python analysis/copying_seeds.py --quick")
    groups = ["p=0", "p=0.25", "p=0.5"]
    assert list(saved["convergence"]["groups"]) == groups and list(saved["transfer"]["groups"]) == groups
    assert saved["reference"] == "p=0" and list(saved["transfer"]["comparisons"]) == groups[1:]
    assert saved["sweep_grid"] == {"p": [0.0, 0.25, 0.5], "seed": [0, 1, 2]}
    assert saved["status_lines"] == [f"{g}: 3 of 3 seeds complete" for g in groups]
    ps = _p_values(saved)
    assert len(ps) == 2 * (5 + 5) and all(0 <= p <= 1 for p in ps)
    acc = saved["transfer"]["groups"]["p=0.5"]["per_seed"]
    assert sorted(acc) == ["0", "1", "2"] and all(len(a) == 5 and all(0 <= v <= 1 for v in a) for a in acc.values())
    assert saved["transfer"]["delays"]["p=0"] == [2, 4, 8, 20, 40]
    assert saved["train_seconds_total"] > 0 and md.read_text().count("|") > 50

    # a partial sweep: one run stopped early, one planned but never started
    sweep_dir = out / "sweep"
    stopped = sweep_dir / "p=0.25,seed=1"
    runs_mod = sweep.runs
    runs_mod.write_json(stopped / runs_mod.SUMMARY, {"iteration": 10, "complete": False, "seconds": 1.0})
    history = [r for r in runs_mod.read_history(stopped) if r["iteration"] <= 10]
    (stopped / runs_mod.HISTORY).write_text("".join(json.dumps(r) + "\n" for r in history))
    manifest = sweep.read_manifest(sweep_dir)
    extra = sweep.grid_runs(ex.COPYING_QUICK, {"p": [0.5], "seed": [3]})[0]
    manifest["runs"][extra.name] = {"point": extra.point, "config": extra.config}
    runs_mod.write_json(sweep_dir / sweep.MANIFEST, manifest)
    part = mod.main(["--sweep", str(sweep_dir), "--out", str(tmp_path / "part"), "--n", "20", "--factors", "1", "3",
                     "--workers", "1"])
    assert part["status_lines"] == ["p=0: 3 of 3 seeds complete",
                                    "p=0.25: 2 of 3 seeds complete; seed 1 at iteration 10 of 15 (running or stopped)",
                                    "p=0.5: 3 of 4 seeds complete; seed 3 not started"]
    assert [r["seed"] for r in part["convergence"]["groups"]["p=0.25"]["runs"]] == [0, 2]
    assert list(part["transfer"]["groups"]["p=0.25"]["per_seed"]) == [0, 2]
    assert part["transfer"]["delays"]["p=0.5"] == [2, 6]
    assert "p=0.25: 2 of 3 seeds complete" in (tmp_path / "part" / "copying_seeds.md").read_text()


def _fake_sweep(root: Path, reach90: dict, keys=("p",)) -> Path:
    """A sweep folder of finished fake copying runs, {p: [iteration first at 90% per seed]} (or, for
    a grid over several `keys`, {(value per key): [...]}): validation accuracy 0.5 every 100
    iterations up to that iteration, 0.95 from then on."""
    base = dict(ex.COPYING_QUICK, epochs=20, iterations_per_epoch=100)
    points = {(v if isinstance(v, tuple) else (v,)): firsts for v, firsts in reach90.items()}
    grid = {k: list(dict.fromkeys(pt[i] for pt in points)) for i, k in enumerate(keys)}
    manifest = {"format": 1, "runs": {}, "invocations": [{"command": "made by hand"}], "base": base,
                "grid": dict(grid, seed=list(range(max(map(len, points.values())))))}
    for values, iterations in points.items():
        for seed, first in enumerate(iterations):
            run = sweep.grid_runs(base, dict({k: [v] for k, v in zip(keys, values)}, seed=[seed]))[0]
            manifest["runs"][run.name] = {"point": run.point, "config": run.config}
            d = root / run.name
            d.mkdir(parents=True)
            sweep.runs.write_json(d / sweep.runs.CONFIG, run.config)
            sweep.runs.write_json(d / sweep.runs.SUMMARY, {"iteration": 2000, "complete": True, "seconds": 2.0})
            hist = [{"iteration": it, "split": "valid", "accuracy": 0.95 if it >= first else 0.5}
                    for it in range(100, 2001, 100)]
            (d / sweep.runs.HISTORY).write_text("".join(json.dumps(h) + "\n" for h in hist))
    sweep.runs.write_json(root / sweep.MANIFEST, manifest)
    return root


def test_copying_seeds_statistics_on_known_cases(tmp_path):
    from math import comb

    mod = _load("copying_seeds")
    # h-detach (listed first) reaches 90% before every vanilla seed: U = 0, the exact two-sided
    # Mann-Whitney p-value is its minimum 2 / C(9, 4) for 5 against 4 seeds, and r = -1
    found = mod.read_sweep(_fake_sweep(tmp_path / "sw", {0.5: [300, 400, 500, 600, 700], 0.0: [1500, 1600, 1700, 1800]}))
    assert found["reference"] == "p=0" and list(found["groups"]) == ["p=0", "p=0.5"]
    conv = report.summarize_groups(found["groups"])
    c90 = conv["comparisons"]["p=0.5"]["it_to_0.9"]
    assert (c90["U"], c90["rank_biserial"]) == (0.0, -1.0)
    assert c90["p_value"] == pytest.approx(2 / comb(9, 4), rel=1e-12)
    assert conv["groups"]["p=0.5"]["it_to_0.9"]["median"] == 500 and conv["groups"]["p=0"]["it_to_0.9"]["median"] == 1650
    assert conv["comparisons"]["p=0.5"]["it_to_0.5"]["p_value"] == 1.0  # every seed at 50% from the first evaluation
    assert found["status"]["p=0"] == {"planned": 4, "complete": [0, 1, 2, 3], "incomplete": []}

    # transfer: every seed of the group more accurate than every reference seed at the second delay
    acc = {"p=0": {0: [1.0, 0.2], 1: [1.0, 0.3], 2: [0.9, 0.25], 3: [1.0, 0.22]},
           "p=0.5": {s: [1.0, a] for s, a in enumerate([0.9, 0.8, 0.85, 0.95, 0.7])}}
    tr = mod.transfer_summary(acc, "p=0")
    first, second = tr["comparisons"]["p=0.5"]
    assert second["p_value"] == pytest.approx(2 / comb(9, 4), rel=1e-12) and second["rank_biserial"] == 1.0
    assert 0 <= first["p_value"] <= 1 and first["rank_biserial"] > 0  # ties: asymptotic p, r from U
    assert list(tr["groups"]["p=0.5"]["median"]) == [1.0, 0.85] and list(tr["groups"]["p=0"]["min"]) == [0.9, 0.2]
    table = mod.transfer_table(tr, [1, 4], {"p=0": 2, "p=0.5": 2})
    assert "delay 8 (4x)" in table and f"p {2 / comb(9, 4):.3f}, r +1.00" in table


def test_copying_seeds_errors(tmp_path):
    import subprocess

    mod = _load("copying_seeds")
    with pytest.raises(ValueError, match="not a sweep folder"):
        mod.main(["--sweep", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="--sweep SWEEP .* or --quick"):
        mod.main(["--out", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="--name must be a plain file name without folders, got '../x'"):
        mod.main(["--quick", "--out", str(tmp_path / "o"), "--name", "../x"])
    sw = _fake_sweep(tmp_path / "sw", {0.0: [300]})
    sweep.runs.write_json(sw / "p=0,seed=0" / sweep.runs.SUMMARY, {"iteration": 700, "complete": False})
    with pytest.raises(ValueError, match=r"no complete run yet \(0 of 1\)"):
        mod.main(["--sweep", str(sw), "--out", str(tmp_path / "o")])
    # from the shell: one line and exit status 1
    res = subprocess.run([sys.executable, str(ROOT / "analysis" / "copying_seeds.py"), "--sweep", str(tmp_path),
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [f"copying_seeds.py: error: {tmp_path} is not a sweep folder (no "
                                               "sweep.json); give a folder made by `hdetach-np sweep`"]


@pytest.mark.parametrize("sig, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_script_stopped_mid_training_ends_in_one_line(tmp_path, sig, status):
    """Ctrl-C (or SIGTERM) while a script trains: the run under way checkpoints, the script prints one
    line naming it and the command to go on with, and exits 128 + signal, with no traceback."""
    import signal
    import subprocess
    import time

    runs_dir = tmp_path / "runs"
    argv = [sys.executable, str(ROOT / "analysis" / "copying_convergence.py"), "--out", str(tmp_path / "o"),
            "--runs", str(runs_dir), "--seeds", "1", "--ps", "0.5", "--workers", "1"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not any(runs_dir.glob("*/history.jsonl")):  # the first run has started training
        assert p.poll() is None and time.monotonic() < deadline, "the script ended before training started"
        time.sleep(0.2)
    time.sleep(0.5)
    p.send_signal(getattr(signal, sig))
    out, err = p.communicate(timeout=60)
    assert p.returncode == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"copying_convergence.py: {sig}: the sweep stopped")
    assert "checkpointed at their current iteration" in lines[0] and "resume with: python " in lines[0]
    assert "--seeds 1" in lines[0]
    (run,) = [d for d in runs_dir.iterdir() if (d / sweep.runs.CHECKPOINT).is_file()]
    _, _, meta = sweep.runs.load_checkpoint(run / sweep.runs.CHECKPOINT)
    assert f"{run.name} at iteration {meta['iteration']}" in lines[0]


def test_script_main_turns_interrupts_and_bad_input_into_one_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["some_script.py", "--seeds", "3"])

    def stopped_between_runs():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as info:
        ex.script_main(stopped_between_runs)
    assert info.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["some_script.py: interrupted; finished runs are kept, run `python some_script.py --seeds 3` "
                   "again to go on"]

    def bad_input():
        raise ValueError("--seeds must be >= 1, got 0")

    with pytest.raises(SystemExit) as info:
        ex.script_main(bad_input)
    assert info.value.code == "some_script.py: error: --seeds must be >= 1, got 0"


def test_groups_compared_within_the_other_grid_key(tmp_path, capsys):
    """--against KEY=VALUE: in a grid over input x delay, each scalar-input group is tested against
    the one-hot group of its own delay, not against the first group."""
    from math import comb

    mod = _load("copying_seeds")
    sw = _fake_sweep(tmp_path / "sw", {(True, 2): [300, 400, 500], (False, 2): [1000, 1100, 1200],
                                       (True, 4): [1500, 1600, 1700], (False, 4): [200, 300, 400]},
                     keys=("one_hot", "delay"))
    found = mod.read_sweep(sw, ("one_hot", True))
    assert found["references"] == {"one_hot=false,delay=2": "one_hot=true,delay=2",
                                   "one_hot=false,delay=4": "one_hot=true,delay=4"}
    assert found["reference"] is None
    conv = report.summarize_groups(found["groups"], references=found["references"])
    slower = conv["comparisons"]["one_hot=false,delay=2"]["it_to_0.9"]
    faster = conv["comparisons"]["one_hot=false,delay=4"]["it_to_0.9"]
    assert (slower["rank_biserial"], faster["rank_biserial"]) == (1.0, -1.0)  # opposite signs: paired by delay
    assert slower["p_value"] == pytest.approx(2 / comb(6, 3), rel=1e-12)
    md = report.report_markdown(conv)
    assert "| group | against | metric |" in md and "| one_hot=false,delay=4 | one_hot=true,delay=4 |" in md

    # the default compares every group with the first (no p = 0 group here: the first)
    assert set(mod.read_sweep(sw)["references"].values()) == {"one_hot=true,delay=2"}
    with pytest.raises(ValueError, match="p is not a grid key of this sweep; its grid keys: delay, one_hot"):
        mod.read_sweep(sw, ("p", 0.0))
    with pytest.raises(ValueError, match=r"group one_hot=true,delay=2 has no group with delay=3 .*one_hot=true,delay=3"):
        mod.read_sweep(sw, ("delay", 3))

    # the same pairing from the command line: hdetach-np report --against
    from hdetach_np.cli import main as cli_main

    assert cli_main(["report", str(sw), "--out", str(tmp_path / "rep"), "--against", "one_hot=true"]) == 0
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["references"] == found["references"]
    assert saved["comparisons"]["one_hot=false,delay=4"]["it_to_0.9"]["rank_biserial"] == -1.0
    capsys.readouterr()
    for bad in ("one_hot", "one_hot=true,false"):
        assert cli_main(["report", str(sw), "--out", str(tmp_path / "rep"), "--against", bad]) == 2
        assert capsys.readouterr().err == (f"hdetach-np report: error: --against {bad!r}: expected one KEY=VALUE "
                                           "such as p=0 or one_hot=true\n")
