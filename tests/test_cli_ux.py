"""What the command line says: unknown flags, presets, threads, stage lines, the plot, epoch numbers."""

import json

import numpy as np
import pytest

from hdetach_np.cli import build_parser, main
from hdetach_np.training.config import PRESETS, TASKS, TrainConfig
from hdetach_np.training.progress import DurationEstimate, format_duration

TINY = ["--delay", "3", "--hidden", "6", "--batch-size", "4", "--n-train", "40", "--n-valid", "8", "--epochs", "2",
        "--iterations-per-epoch", "3", "--lr", "0.01"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, hint", [
    (["train", "--hiden", "64"], "unknown flag --hiden; did you mean --hidden?"),
    (["train", "copying", "--epoch", "3"], "unknown flag --epoch; did you mean --epochs?"),
    (["train", "copying", "--iterations", "3"], "unknown flag --iterations; did you mean --iterations-per-epoch?"),
    (["train", "copying", "--iterations=3"], "unknown flag --iterations=3; did you mean --iterations-per-epoch?"),
    (["notebooks", "strip", "nb", "--outt", "x"], "unknown flag --outt; did you mean --out?"),
    (["demo", "--sed", "1"], "unknown flag --sed; did you mean --seed?"),
    (["eval", "run", "--zzzzzz"], "unknown flag --zzzzzz; see hdetach-np eval --help"),
])
def test_unknown_flags_name_the_closest_and_are_never_abbreviations(capsys, argv, hint):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert hint in err and f"usage: hdetach-np {argv[0]}" in err


def test_no_parser_takes_abbreviations():
    parsers, todo = [], [build_parser()]
    while todo:
        p = todo.pop()
        parsers.append(p)
        for a in p._actions:
            if a.__class__.__name__ == "_SubParsersAction":
                todo += list(a.choices.values())
    assert len(parsers) >= 9 and all(p.allow_abbrev is False for p in parsers)


def test_presets_laptop_by_default_and_paper_one_flag_away():
    laptop = TrainConfig.from_dict({"task": "copying"})
    assert (laptop.delay, laptop.hidden, laptop.one_hot, laptop.lr, laptop.total_iterations) == (10, 128, True, 3e-3, 15_000)
    paper = TrainConfig.from_dict({"task": "copying"}, preset="paper")
    assert (paper.delay, paper.one_hot, paper.lr, paper.total_iterations, paper.anneal_p) == (300, False, 1e-3, 600_000, 40)
    mnist = TrainConfig.from_dict({"task": "pixel-mnist"})
    assert (mnist.sequence_length, mnist.pixels_per_step, mnist.total_iterations) == (49, 16, 8_000)
    assert TrainConfig.from_dict({"task": "pixel-mnist", "pixels_per_step": 1}).sequence_length == 784
    assert TrainConfig.from_dict({"task": "pixel-mnist"}, preset="paper").sequence_length == 784
    for preset in PRESETS:
        for task in TASKS:
            TrainConfig.from_dict({"task": task}, preset=preset)  # every preset is a valid config
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        TrainConfig.from_dict({"task": "copying"}, preset="huge")


def test_cli_preset_flag(tmp_path, capsys):
    args = build_parser().parse_args(["train", "copying", "--preset", "paper", "--epochs", "1"])
    from hdetach_np.cli.train import _config_from_args

    cfg, _ = _config_from_args(args)
    assert cfg.delay == 300 and cfg.epochs == 1 and not cfg.one_hot
    args = build_parser().parse_args(["train", "copying", "--no-one-hot"])
    assert _config_from_args(args)[0].one_hot is False


def test_duration_estimate_speaks_only_for_long_runs():
    est = DurationEstimate(start=0, stop=100_000, threshold=600)
    assert est.line(0.001, 100_000) is None  # 100 s
    line = est.line(0.5, 100_000)
    assert line.startswith("expected duration: about 13.9 h for the remaining 100,000 iterations (500 ms per iteration")
    assert "--stop-after" in line and "--epochs" in line
    always = DurationEstimate(start=5, stop=1000, threshold=-1.0)  # any duration is "long"
    lines = {k: always.after_iteration(k) for k in range(6, 60)}
    assert [k for k, x in lines.items() if x is not None] == [27]  # once, after 2 warm-up + 20 timed iterations
    assert "for the remaining 973 iterations" in lines[27]
    assert [format_duration(s) for s in (45, 600, 7200, 400_000)] == ["45 s", "10 min", "2.0 h", "4.6 days"]


def test_threads_flag(capsys):
    p = build_parser()
    assert p.parse_args(["train", "copying"]).threads == "auto"
    assert p.parse_args(["eval", "r", "--threads", "2"]).threads == 2
    with pytest.raises(SystemExit):
        p.parse_args(["transfer", "r", "--T", "3", "--threads", "two"])
    assert "--threads must be 'auto' or an integer >= 0, got 'two'" in capsys.readouterr().err


def test_epochs_are_counted_from_1_everywhere(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "copying", *TINY, "--out", out)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 2
    best = summary["best"]["epoch"]
    assert f"epoch {best}/2: " in stdout and f"(epoch {best})" in stdout
    line = [ln for ln in stdout.splitlines() if ln.startswith(f"epoch {best}/2")][0]
    assert "(best)" in line
    records = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert {r["epoch"] for r in records if "epoch" in r} == {1, 2}


def test_transfer_says_what_it_does(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(capsys, "train", "copying", *TINY, "--out", out, "--quiet")[0] == 0
    code, stdout, err = run(capsys, "transfer", out, "--delays", "2", "4", "--n", "10")
    assert code == 0
    assert err.splitlines()[0].startswith(f"evaluating {out} (best model) at 2 delay(s), 10 sequences each")
    assert [ln.split(":")[0].strip() for ln in err.splitlines()[1:]] == ["delay 2", "delay 4"]
    code, _, err = run(capsys, "transfer", out, "--delays", "2", "--n", "10", "--quiet")
    assert code == 0 and err == ""
    code, _, err = run(capsys, "transfer", out, "--T", "3", "--n", "10", "--quiet")  # the old name, with a note
    assert code == 0 and err.startswith("note: --T is the old name of --delays")
    rows = json.loads((out / "transfer.json").read_text())["results"]
    assert [r["delay"] for r in rows] == [2, 3, 4]


def test_plot_has_a_title_a_chance_line_and_no_empty_panels(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from hdetach_np.training import read_history
    from hdetach_np.training.plots import curves_figure

    out = tmp_path / "run"
    assert run(capsys, "train", "copying", *TINY, "--p", "0.5", "--log-paths-every", "2", "--out", out, "--quiet")[0] == 0
    cfg = TrainConfig.from_json(out / "config.json")
    h = read_history(out)
    fig = curves_figure({"a": h}, {"a": cfg}, smooth=2, paths=True)
    assert len(fig.axes) == 4
    assert fig._suptitle.get_text().startswith("copying, delay 3, hidden 6, adam lr 0.01, h-detach p=0.5")
    acc = fig.axes[2]
    assert any(np.allclose(ln.get_ydata(), 1 / 8) for ln in acc.lines)  # the chance level
    before_validation = [r for r in h if r.get("iteration", 0) <= 2 and "split" not in r]
    fig = curves_figure({"a": before_validation}, {"a": cfg}, smooth=1)
    assert len(fig.axes) == 1 and "no validation yet" in fig._suptitle.get_text()


def test_one_meaning_of_T_and_old_configs_still_load(tmp_path, capsys):
    copying = TrainConfig.from_dict({"task": "copying", "delay": 7})
    assert copying.sequence_length == 27 and copying.length is None and "T" not in copying.to_dict()
    adding = TrainConfig.from_dict({"task": "adding", "length": 50})
    assert adding.sequence_length == 50 and adding.delay is None
    # a config.json written when "T" was the copying delay and the adding length
    old = TrainConfig.from_dict({**copying.to_dict(), "T": 7, "delay": None} | {"delay": 7})
    assert old == copying
    legacy = {k: v for k, v in copying.to_dict().items() if k not in ("delay", "length")} | {"T": 7}
    assert TrainConfig.from_dict(legacy) == copying
    legacy = {k: v for k, v in adding.to_dict().items() if k not in ("delay", "length")} | {"T": 50}
    assert TrainConfig.from_dict(legacy) == adding
    mnist = TrainConfig.from_dict({"task": "pixel-mnist", "pixels_per_step": 16, "T": 49})
    assert mnist.sequence_length == 49
    with pytest.raises(ValueError, match="config T must be 784 / pixels_per_step = 49 for pixel MNIST, got 50"):
        TrainConfig.from_dict({"task": "pixel-mnist", "pixels_per_step": 16, "T": 50})
    with pytest.raises(ValueError, match="config length must be null for task copying"):
        TrainConfig.from_dict({"task": "copying", "length": 5})
    with pytest.raises(ValueError, match="config delay must be an integer >= 1 for task copying, got 0"):
        TrainConfig.from_dict({"task": "copying", "delay": 0})
    # the command line: --delay, and --T as the old name with a note
    from hdetach_np.cli.train import _config_from_args

    cfg, _ = _config_from_args(build_parser().parse_args(["train", "copying", "--T", "12"]))
    assert cfg.delay == 12 and "note: --T is the old name of --delay" in capsys.readouterr().err
    cfg, _ = _config_from_args(build_parser().parse_args(["train", "adding", "--T", "30"]))
    assert cfg.length == 30 and "note: --T is the old name of --length" in capsys.readouterr().err
    with pytest.raises(ValueError, match="give --delay only"):
        _config_from_args(build_parser().parse_args(["train", "copying", "--T", "12", "--delay", "3"]))
