"""`hdetach-np demo --quick`: every promised file, numbers that match the JSON, valid PNGs,
determinism, reproducing commands, and clear errors for a bad --out."""

import json
import re
import shlex

import pytest

from hdetach_np.cli import build_parser, main
from hdetach_np.cli.demo import _g, run_demo, train_command
from hdetach_np.cli.train import _config_from_args
from hdetach_np.training.config import TrainConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    code = main(["demo", "--quick", "--out", str(out), "--seeds", "2", "--seed", "1"])
    assert code == 0
    return out


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _strip_seconds(obj):
    if isinstance(obj, dict):
        return {k: _strip_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_strip_seconds(v) for v in obj]
    return obj


def test_quick_demo_writes_every_file(quick):
    for name in ("config.json", "results.json", "summary.md", "suppression.png", "copying.png"):
        assert (quick / name).is_file(), name
    for name in ("suppression.png", "copying.png"):
        w, h = _png_size(quick / name)
        assert w > 400 and h > 300
    cfg = json.loads((quick / "config.json").read_text())
    assert cfg["seeds"] == [1, 2]
    assert len(cfg["copying_runs"]) == 4
    for run in cfg["copying_runs"]:
        for f in ("config.json", "history.jsonl", "checkpoint.npz", "best.npz", "summary.json", "versions.json"):
            assert (quick / "runs" / run / f).is_file(), (run, f)
        assert TrainConfig.from_json(quick / "runs" / run / "config.json").to_dict() == cfg["copying_runs"][run]


def test_summary_numbers_match_results_json(quick):
    res = json.loads((quick / "results.json").read_text())
    md = (quick / "summary.md").read_text()
    sup = res["suppression"]
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    for v in sup["variants"]:
        name = "plain gradient" if v == "plain" else f"expected h-detach {v}"
        cells = [c.strip() for c in rows[name].split("|")[2:-1]]
        assert cells == [_g(x) for x in sup["cell_share_mean"][v]]
        assert all(x > 0 for x in sup["cell_share_mean"][v])  # may exceed 1: the parts can partly cancel
    runs = [r for v in res["copying"]["variants"].values() for r in v["runs"]]
    assert len(runs) == 4
    for r in runs:
        assert 0 <= r["final_valid_accuracy"] <= r["best_valid_accuracy"] <= 1
        assert r["final_valid_accuracy"] == r["valid_accuracy"][-1]
        line = next(l for l in md.splitlines() if re.match(rf"\| [^|]+ \| {r['seed']} \| {re.escape(_g(r['final_valid_accuracy']))} \|", l))
        assert _g(r["final_train_loss"]) in line and _g(r["cell_share"][-1]) in line
        # the run's own history agrees with results.json
        hist = [json.loads(l) for l in (quick / r["run_dir"] / "history.jsonl").read_text().splitlines()]
        valid = [h["accuracy"] for h in hist if h.get("split") == "valid"]
        assert valid == r["valid_accuracy"]
        paths = [h["paths"] for h in hist if "paths" in h]
        assert [p["norms"]["cell"]["all"] / p["norms"]["total"]["all"] for p in paths] == r["cell_share"]
    for name, v in res["copying"]["variants"].items():
        assert _g(v["final_valid_accuracy_mean"]) in rows[name]
    assert _g(res["seconds"]["total"]) in md and _g(res["seconds"]["copying"]) in md
    assert "numpy " + res["versions"]["numpy"] in md


def test_summary_commands_reproduce_the_configs(quick):
    res = json.loads((quick / "results.json").read_text())
    cfg = json.loads((quick / "config.json").read_text())
    md = (quick / "summary.md").read_text()
    parser = build_parser()
    for run, command in res["copying"]["commands"].items():
        assert command in md
        args = parser.parse_args(shlex.split(command)[1:])
        assert _config_from_args(args)[0].to_dict() == cfg["copying_runs"][run]
    assert res["suppression"]["command_python"] in md
    assert "command_analysis" not in res["suppression"]  # seeds 1, 2 differ from the script's 0, 1


def test_rerun_gives_the_same_numbers(quick, tmp_path):
    res = run_demo(tmp_path / "again", quick=True, seed=1, seeds=2, progress=False)
    first = json.loads((quick / "results.json").read_text())
    again = json.loads(res.files["results"].read_text())
    for d in (first, again):
        d.pop("command")
        d["copying"].pop("commands")  # they name the run folder
        d.pop("versions")  # holds no measured numbers
    assert _strip_seconds(again) == _strip_seconds(first)


def test_train_command_round_trip():
    cfg = TrainConfig.from_dict(dict(task="copying", delay=4, hidden=8, lr=0.02, p=0.25, anneal_p=0, one_hot=True,
                                     epochs=3, n_train=300, n_valid=50, log_paths_every=5))
    args = build_parser().parse_args(shlex.split(train_command(cfg, "x"))[1:])
    assert _config_from_args(args)[0] == cfg


def test_bad_out_is_a_clear_error(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    assert main(["demo", "--quick", "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and str(f) in err and "file" in err
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        run_demo(full, quick=True)
    with pytest.raises(ValueError, match="only replaces a demo"):
        run_demo(full, quick=True, force=True)
    assert (full / "keep.txt").read_text() == "x"  # never deleted
    with pytest.raises(ValueError, match="seeds must be an integer >= 1"):
        run_demo(tmp_path / "x", seeds=0)


def test_force_replaces_an_earlier_demo(quick, tmp_path):
    out = tmp_path / "d"
    run_demo(out, quick=True, seeds=1, progress=False)
    with pytest.raises(ValueError, match="--force"):
        run_demo(out, quick=True, seeds=1, progress=False)
    (out / "extra.txt").write_text("old")
    res = run_demo(out, quick=True, seeds=1, progress=False, force=True)
    assert not (out / "extra.txt").exists() and res.files["summary"].is_file()


def test_demo_prints_its_stages_when_the_output_is_not_a_terminal(tmp_path, capfd):
    run_demo(tmp_path / "d", quick=True, seeds=1)  # progress=None, stderr captured: not a terminal
    err = capfd.readouterr().err.splitlines()
    assert err[0].startswith("stage 1/2: suppression sweep") and err[1].startswith("stage 2/2: copying")
    assert sum(line.startswith("[") for line in err) == 2 and err[-1].startswith("done in")
    assert not any("\r" in line for line in err)  # no progress bar
