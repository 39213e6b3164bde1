"""`hdetach-np demo --quick`: every promised file, numbers that match the JSON, valid PNGs,
determinism, reproducing commands, and clear errors for a bad --out."""

import json
import shlex

import pytest

from hdetach_np.cli import build_parser, main
from hdetach_np.cli.demo import run_demo, train_command
from hdetach_np.cli.demo_report import fmt as _g
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
    assert sorted(cfg["copying_runs"]) == ["p=0,seed=1", "p=0,seed=2", "p=0.5,seed=1", "p=0.5,seed=2"]
    manifest = json.loads((quick / "runs" / "sweep.json").read_text())
    assert set(manifest["runs"]) == set(cfg["copying_runs"])
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
    cop = res["copying"]
    assert cop["delays"] == [2, 4, 8]
    runs = [r for v in cop["variants"].values() for r in v["runs"]]
    assert len(runs) == 4
    for name, v in cop["variants"].items():
        for r in v["runs"]:
            assert 0 <= r["final_valid_accuracy"] <= r["best_valid_accuracy"] <= 1
            assert r["final_valid_accuracy"] == r["valid_accuracy"][-1]
            assert all(0 <= a <= 1 for a in r["transfer_accuracy"])
            cells = [_g(r["final_valid_accuracy"]), f"{_g(r['best_valid_accuracy'])} ({r['best_iteration']})"]
            cells += [_g(a) for a in r["transfer_accuracy"]]
            assert f"| {name} | {r['seed']} | " + " | ".join(cells) + " | " in md
            # the run's own history agrees with results.json
            hist = [json.loads(l) for l in (quick / r["run_dir"] / "history.jsonl").read_text().splitlines()]
            assert [h["accuracy"] for h in hist if h.get("split") == "valid"] == r["valid_accuracy"]
        mean = [sum(col) / len(col) for col in zip(*(r["transfer_accuracy"] for r in v["runs"]))]
        assert mean == pytest.approx(v["transfer_accuracy_mean"], abs=1e-12)
    assert _g(res["seconds"]["total"]) in md and _g(res["seconds"]["training"]) in md
    assert "numpy " + res["versions"]["numpy"] in md


def test_summary_states_what_the_numbers_give(quick):
    """The sentence comparing the variants follows the numbers in results.json (nothing assumed)."""
    res = json.loads((quick / "results.json").read_text())
    md = (quick / "summary.md").read_text()
    cop, cmp_ = res["copying"], res["comparison"]
    van, hd = cop["variants"]["vanilla"], cop["variants"]["h-detach p=0.5"]
    for d, delay, a, b in zip(cmp_["transfer_difference"], cop["delays"], hd["transfer_accuracy_mean"],
                              van["transfer_accuracy_mean"]):
        assert d == pytest.approx(a - b, abs=1e-12)
        word = "equal to" if d == 0 else f"{_g(abs(d))} {'above' if d > 0 else 'below'}"
        assert f"{word} vanilla's at delay {delay}" in md
    its = van["runs"][0]["valid_iterations"]
    late = [i for i, it in enumerate(its) if it >= cmp_["from_iteration"]]
    mean = lambda v, i: sum(r["valid_accuracy"][i] for r in v["runs"]) / len(v["runs"])
    assert cmp_["hdetach_ahead"] == sum(mean(hd, i) > mean(van, i) for i in late)
    assert f"at {cmp_['hdetach_ahead']} of {len(late)} evaluations" in md


def test_summary_commands_reproduce_the_configs(quick):
    from hdetach_np.cli.sweep import sweep_spec
    from hdetach_np.training.sweep import grid_runs

    res = json.loads((quick / "results.json").read_text())
    cfg = json.loads((quick / "config.json").read_text())
    md = (quick / "summary.md").read_text()
    parser = build_parser()
    for run, command in res["copying"]["train_commands"].items():
        assert command in md
        args = parser.parse_args(shlex.split(command)[1:])
        assert _config_from_args(args)[0].to_dict() == cfg["copying_runs"][run]
    command = res["copying"]["sweep_command"]
    assert command in md
    base, grid = sweep_spec(parser.parse_args(shlex.split(command)[1:]))
    assert {r.name: r.config for r in grid_runs(base, grid)} == cfg["copying_runs"]
    for command in res["copying"]["transfer_commands"]:
        assert command in md
        parser.parse_args(shlex.split(command)[1:])
    assert res["suppression"]["command_python"] in md


def test_rerun_gives_the_same_numbers(quick, tmp_path):
    res = run_demo(tmp_path / "again", quick=True, seed=1, seeds=2, progress=False)
    first = json.loads((quick / "results.json").read_text())
    again = json.loads(res.files["results"].read_text())
    for d in (first, again):
        d.pop("command")
        for k in ("sweep_command", "train_commands", "transfer_commands"):
            d["copying"].pop(k)  # they name the run folder
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


def test_force_replaces_only_an_earlier_demo(tmp_path):
    out = tmp_path / "d"
    run_demo(out, quick=True, seeds=1, progress=False)
    with pytest.raises(ValueError, match="--force"):
        run_demo(out, quick=True, seeds=1, progress=False)
    (out / "summary.md").write_text("old")
    res = run_demo(out, quick=True, seeds=1, progress=False, force=True)
    assert res.files["summary"].read_text() != "old"
    # a file the demo did not write, at the top or among the runs: --force refuses and keeps all
    for extra in (out / "notes.txt", out / "runs" / "mine"):
        extra.write_text("mine")
        with pytest.raises(ValueError, match="only replaces a demo"):
            run_demo(out, quick=True, seeds=1, progress=False, force=True)
        assert extra.read_text() == "mine" and (out / "summary.md").is_file()
        extra.unlink()


def test_demo_prints_its_stages_when_the_output_is_not_a_terminal(tmp_path, capfd):
    run_demo(tmp_path / "d", quick=True, seeds=1)  # progress=None, stderr captured: not a terminal
    err = capfd.readouterr().err.splitlines()
    assert err[0].startswith("stage 1/2: suppression sweep") and err[1].startswith("stage 2/2: copying")
    assert sum(line.startswith("p=") for line in err) == 2  # a line per finished run
    assert any(line.startswith("transfer:") for line in err) and err[-1].startswith("done in")
    assert not any("\r" in line for line in err)  # no progress bar
