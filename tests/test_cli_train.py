"""The train / eval / transfer / plot / data commands on tiny configs."""

import json
import subprocess
import sys

import pytest

import hdetach_np.training.model as tr
from hdetach_np.cli import build_parser, main
from hdetach_np.training.config import TrainConfig

TINY = ["--delay", "3", "--hidden", "6", "--batch-size", "4", "--n-train", "40", "--n-valid", "8", "--epochs", "2",
        "--iterations-per-epoch", "3", "--anneal-p", "0", "--lr", "0.01"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_documents_every_config_flag_with_its_default():
    sub = build_parser()._subparsers._group_actions[0].choices
    text = sub["train"].format_help()
    for key in TrainConfig.keys():
        if key == "task":
            continue
        flag = "--T" if key == "T" else "--" + key.replace("_", "-")
        assert flag in text, flag
    actions = [a for a in sub["train"]._actions if a.option_strings and a.dest != "help"]
    for a in actions:
        assert "default" in (a.help or ""), a.option_strings
    for name in ("eval", "transfer", "plot", "data"):
        for a in sub[name]._actions:
            if a.option_strings and a.dest != "help":
                assert "(default" in (a.help or "") or "(required)" in (a.help or ""), (name, a.option_strings)


def test_train_eval_transfer_plot_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "copying", *TINY, "--p", "0.5", "--log-paths-every", "2", "--out", out)
    assert code == 0, err
    assert "epoch 2/2" in stdout and f"run folder {out}" in stdout
    cfg = TrainConfig.from_json(out / "config.json")
    assert cfg.delay == 3 and cfg.p == 0.5 and cfg.hidden == 6 and cfg.seed == 3 and cfg.clip == 1.0
    code, stdout, _ = run(capsys, "eval", out)
    assert code == 0 and stdout.splitlines()[1].startswith("valid")
    code, stdout, _ = run(capsys, "eval", out, "--json", "--which", "last")
    assert code == 0 and json.loads(stdout)["valid"]["n"] == 8
    code, stdout, _ = run(capsys, "transfer", out, "--delays", "2", "5", "--n", "20")
    assert code == 0 and len(stdout.splitlines()) == 3
    assert [r["delay"] for r in json.loads((out / "transfer.json").read_text())["results"]] == [2, 5]
    code, stdout, _ = run(capsys, "plot", out, "--paths", "--smooth", "2")
    assert code == 0 and (out / "curves.png").stat().st_size > 1000
    png = tmp_path / "both.png"
    code, _, _ = run(capsys, "plot", out, out, "--labels", "a", "b", "--out", png)
    assert code == 0 and png.exists()


def test_config_file_flags_and_resume(tmp_path, capsys):
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"task": "copying", "delay": 3, "hidden": 5, "batch_size": 4, "n_train": 40,
                                "n_valid": 8, "epochs": 2, "iterations_per_epoch": 3, "anneal_p": 0, "lr": 0.5}))
    out = tmp_path / "r"
    code, _, err = run(capsys, "train", "--config", conf, "--lr", "0.02", "--out", out, "--quiet", "--stop-after", "4")
    assert code == 0, err
    cfg = TrainConfig.from_json(out / "config.json")
    assert cfg.lr == 0.02 and cfg.hidden == 5
    assert not json.loads((out / "summary.json").read_text())["complete"]
    code, stdout, err = run(capsys, "train", "--resume", out, "--quiet")
    assert code == 0 and stdout.startswith("finished at iteration 6"), err
    code, _, err = run(capsys, "train", "--resume", out, "--lr", "0.1")
    assert code == 2 and "a resumed run keeps its config; drop --lr" in err


@pytest.mark.parametrize("argv,message", [
    (["train", "copying", "--p", "2"], "config p must be a probability in [0, 1], got 2.0"),
    (["train", "copying", "--epochs", "0"], "config epochs must be an integer >= 1, got 0"),
    (["train", "copying", "--p", "0.5", "--epochs", "5", "--anneal-p", "40"],
     "config anneal_p must be <= epochs (5) when p > 0"),
    (["train"], "give a task"),
    (["train", "pixel-mnist", "--T", "10"], "--T does not apply to pixel MNIST"),
    (["train", "adding", "--one-hot"], "config one_hot must be false for task adding"),
    (["train", "copying", "--config", "/nonexistent/c.json"], "config file /nonexistent/c.json does not exist"),
    (["train", "--resume", "/nonexistent/run"], "is not a run folder"),
    (["transfer", "/nonexistent/run", "--delays", "5"], "is not a run folder"),
    (["train", "copying", "--stop-after", "0"], "--stop-after must be an integer >= 1, got 0"),
])
def test_bad_usage_is_one_line_and_status_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("hdetach-np ")


def test_unknown_config_key(tmp_path, capsys):
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"task": "copying", "hiden": 5}))
    code, _, err = run(capsys, "train", "--config", conf)
    assert code == 2 and "unknown config key(s) 'hiden'" in err and len(err.strip().splitlines()) == 1


def test_bad_flag_values_exit_2():
    for argv in (["train", "copying", "--lr", "abc"], ["train", "nosuchtask"], ["train", "copying", "--optimizer", "x"],
                 ["plot"], ["data", "cifar"]):
        r = subprocess.run([sys.executable, "-m", "hdetach_np", *argv], capture_output=True, text=True)
        assert r.returncode == 2 and "error:" in r.stderr, argv


def test_existing_folder_and_mnist_without_data(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    assert run(capsys, "train", "copying", *TINY, "--epochs", "1", "--out", out, "--quiet")[0] == 0
    code, _, err = run(capsys, "train", "copying", *TINY, "--out", out)
    assert code == 2 and "already exists" in err
    monkeypatch.delenv("HDETACH_NP_MNIST_DIR", raising=False)
    code, _, err = run(capsys, "train", "pixel-mnist", "--data-dir", tmp_path / "none", "--out", tmp_path / "m", "--quiet")
    assert code == 1 and "run `hdetach-np data mnist --dir" in err and len(err.strip().splitlines()) == 1


def test_diverged_run_exits_1_with_one_line(tmp_path, capsys, monkeypatch):
    real = tr.softmax_cross_entropy
    monkeypatch.setattr(tr, "softmax_cross_entropy", lambda *a, **k: (float("nan"), real(*a, **k)[1]))
    code, _, err = run(capsys, "train", "copying", *TINY, "--out", tmp_path / "r", "--quiet")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "non-finite loss (nan) at iteration 1" in lines[0]
