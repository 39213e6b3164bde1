"""Two trained bias vectors (bias="two", the original's b_ih and b_hh) against one (their sum b)."""

import json

import numpy as np
import pytest

from hdetach_np.gradcheck import numerical_gradient, rel_error
from hdetach_np.training import TrainConfig, runs, train
from hdetach_np.training.model import init_model, loss_and_grads
from hdetach_np.training.optim import clip_grad_norm, global_norm
from hdetach_np.training.runs import read_history
from hdetach_np.training.task_data import make_task_data

TINY = dict(task="copying", delay=4, hidden=8, batch_size=8, n_train=64, n_valid=16, epochs=2, iterations_per_epoch=6,
            lr=1e-2, anneal_p=0)


def tiny(**kw):
    return TrainConfig.from_dict({**TINY, **kw})


def test_the_paper_settings_train_two_biases():
    assert TrainConfig.from_dict({"task": "copying"}, preset="paper").bias == "two"
    assert TrainConfig.from_dict({"task": "pixel-mnist"}, preset="paper").bias == "two"
    # the laptop preset (the default) keeps the one bias every scaled-down setting has used
    assert TrainConfig.from_dict({"task": "copying"}).bias == "one"
    assert TrainConfig.from_dict({"task": "pixel-mnist"}).bias == "one"
    with pytest.raises(ValueError, match=r"config bias must be one of 'one', 'two', got 'three'"):
        tiny(bias="three")
    # a run folder written before the option existed trained one bias
    old = {k: v for k, v in tiny(bias="one").to_dict().items() if k != "bias"}
    assert TrainConfig.from_saved(old).bias == "one"


def test_two_biases_start_from_the_same_draws():
    one = init_model(3, 5, 4, np.random.default_rng(7), np.float64)
    two = init_model(3, 5, 4, np.random.default_rng(7), np.float64, bias="two")
    assert set(two.arrays()) == {"lstm.Wx", "lstm.Wh", "lstm.b_ih", "lstm.b_hh", "readout.V", "readout.d"}
    for k in ("lstm.Wx", "lstm.Wh", "readout.V", "readout.d"):
        np.testing.assert_array_equal(one.arrays()[k], two.arrays()[k], err_msg=k)
    # init_lstm's b is the sum of the same two draws
    np.testing.assert_allclose(two.b_ih + two.b_hh, one.lstm.b, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(two.lstm.b, two.b_ih + two.b_hh)
    assert not np.array_equal(two.b_ih, two.b_hh)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_two_bias_gradients_by_finite_differences(p):
    cfg = tiny(bias="two", dtype="float64", delay=3, hidden=3, batch_size=3)
    td = make_task_data(cfg)
    model = init_model(td.input_size, 3, td.output_size, np.random.default_rng(0), np.float64, bias="two")
    x, y = td.train_batch(0, np.random.default_rng(1))
    keep = (np.arange(td.steps) % 2 == 0).astype(np.float64) if p else None
    res = loss_and_grads(model, x, y, td, h_scale=keep)
    assert res.grads["lstm.b_ih"] is not res.grads["lstm.b_hh"]
    np.testing.assert_array_equal(res.grads["lstm.b_ih"], res.grads["lstm.b_hh"])
    full = loss_and_grads(model, x, y, td)
    for k in ("lstm.b_ih", "lstm.b_hh", "lstm.Wh"):
        num = numerical_gradient(lambda: loss_and_grads(model, x, y, td).loss, model.arrays()[k])
        assert rel_error(num, full.grads[k]) < 1e-6, k


def test_the_clipping_norm_counts_the_bias_gradient_twice():
    cfg = tiny(dtype="float64")
    td = make_task_data(cfg)
    one = init_model(td.input_size, 8, td.output_size, np.random.default_rng(2), np.float64)
    two = init_model(td.input_size, 8, td.output_size, np.random.default_rng(2), np.float64, bias="two")
    two.lstm.b[...] = one.lstm.b  # the same model: b_ih + b_hh = b
    two.b_hh[...] = one.lstm.b - two.b_ih
    x, y = td.train_batch(0, np.random.default_rng(3))
    g1, g2 = loss_and_grads(one, x, y, td).grads, loss_and_grads(two, x, y, td).grads
    np.testing.assert_allclose(g2["lstm.b_ih"], g1["lstm.b"], rtol=1e-12, atol=1e-15)
    gb = float(np.sum(g1["lstm.b"] ** 2))
    assert global_norm(g2) ** 2 == pytest.approx(global_norm(g1) ** 2 + gb, rel=1e-12)
    # clipping scales both biases, by the factor of the larger norm
    norm, clipped = clip_grad_norm(g2, 1e-3)
    assert clipped and global_norm(g2) == pytest.approx(1e-3, rel=1e-5)
    np.testing.assert_array_equal(g2["lstm.b_ih"], g2["lstm.b_hh"])


def test_one_adam_step_moves_each_bias_by_hand():
    # Adam's first step is lr * g / (|g| + eps) per entry (bias corrections cancel): each bias moves
    # by it, so their sum, the b of the forward pass, moves twice as far as with one bias
    lr, eps = 1e-2, 1e-8
    cfg = tiny(bias="two", dtype="float64", clip=0.0, lr=lr, eps=eps, epochs=1)
    start = init_model(*(lambda td: (td.input_size, 8, td.output_size))(make_task_data(cfg)),
                       np.random.default_rng([cfg.seed, 1]), np.float64, bias="two")
    td = make_task_data(cfg)
    x, y = td.train_batch(0, np.random.default_rng([cfg.seed, 2]))  # train's first minibatch
    g = loss_and_grads(start, x, y, td).grads["lstm.b_ih"]
    step = lr * g / (np.abs(g) + eps)
    res = train(cfg, stop_after=1)
    after = res.model.arrays()
    np.testing.assert_allclose(after["lstm.b_ih"], start.b_ih - step, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(after["lstm.b_hh"], start.b_hh - step, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.model.lstm.b, start.lstm.b - 2 * step, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(res.model.lstm.b, after["lstm.b_ih"] + after["lstm.b_hh"])


def test_two_biases_resume_bit_exact_and_are_checkpointed(tmp_path):
    cfg = tiny(bias="two", p=0.5, log_paths_every=4)
    full = train(cfg, tmp_path / "full")
    part = train(cfg, tmp_path / "part", stop_after=5)
    params, opt, _ = runs.load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert {"lstm.b_ih", "lstm.b_hh"} <= set(params) and "lstm.b" not in params
    assert {"m/lstm.b_ih", "v/lstm.b_ih", "m/lstm.b_hh", "v/lstm.b_hh"} <= set(opt)
    assert not part.complete
    resumed = train(cfg, tmp_path / "part", resume=True)
    for k, v in full.model.arrays().items():
        np.testing.assert_array_equal(v, resumed.model.arrays()[k], err_msg=k)
    np.testing.assert_array_equal(full.model.lstm.b, resumed.model.lstm.b)
    a = runs.load_checkpoint(tmp_path / "full" / "checkpoint.npz")[1]
    b = runs.load_checkpoint(tmp_path / "part" / "checkpoint.npz")[1]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(read_history(tmp_path / "full")) == strip(read_history(tmp_path / "part"))


def test_a_run_folder_from_before_the_option_resumes_with_one_bias(tmp_path):
    cfg = tiny(bias="one")
    full = train(cfg, tmp_path / "full")
    train(cfg, tmp_path / "old", stop_after=4)
    # rewrite the folder as it was written before the option existed: no "bias" anywhere
    conf = json.loads((tmp_path / "old" / "config.json").read_text())
    del conf["bias"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(conf))
    params, opt, meta = runs.load_checkpoint(tmp_path / "old" / "checkpoint.npz")
    del meta["config"]["bias"]
    meta.pop("format")
    runs.save_checkpoint(tmp_path / "old" / "checkpoint.npz", params, meta, opt)
    resumed = train(TrainConfig.from_saved(conf), tmp_path / "old", resume=True)
    for k, v in full.model.arrays().items():
        np.testing.assert_array_equal(v, resumed.model.arrays()[k], err_msg=k)


def test_the_command_line_chooses_the_bias(tmp_path, capsys):
    from hdetach_np.cli import main

    args = ["train", "copying", "--delay", "3", "--hidden", "6", "--batch-size", "4", "--n-train", "40",
            "--n-valid", "8", "--epochs", "1", "--iterations-per-epoch", "3", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0  # the laptop preset: one bias
    assert main(args + ["--bias", "two", "--out", str(tmp_path / "two")]) == 0
    assert json.loads((tmp_path / "one" / "config.json").read_text())["bias"] == "one"
    assert json.loads((tmp_path / "two" / "config.json").read_text())["bias"] == "two"
    assert "lstm.b_hh" in runs.load_checkpoint(tmp_path / "two" / "best.npz")[0]
    assert main(args + ["--preset", "paper", "--out", str(tmp_path / "paper")]) == 0
    assert json.loads((tmp_path / "paper" / "config.json").read_text())["bias"] == "two"
    with pytest.raises(SystemExit) as bad:
        main(args + ["--bias", "three", "--out", str(tmp_path / "bad")])
    assert bad.value.code == 2 and "invalid choice: 'three'" in capsys.readouterr().err
