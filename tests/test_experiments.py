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
