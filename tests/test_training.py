"""The training engine: gradients, learning, resume bit for bit, NaN handling, checkpoints."""

import json
import os

import numpy as np
import pytest

import hdetach_np.training.model as tr
from hdetach_np.gradcheck import numerical_gradient, rel_error
from hdetach_np.training import evaluate_run, runs, train, transfer_copying
from hdetach_np.training.config import TrainConfig
from hdetach_np.training.data import MNISTData
from hdetach_np.training.model import TrainingDiverged, evaluate, init_model, loss_and_grads
from hdetach_np.training.runs import CheckpointError, read_history
from hdetach_np.training.task_data import make_task_data

TINY = dict(task="copying", delay=4, hidden=8, batch_size=8, n_train=64, n_valid=16, epochs=2, iterations_per_epoch=6,
            lr=1e-2, anneal_p=0)


def tiny(**kw):
    return TrainConfig.from_dict({**TINY, **kw})


def fake_mnist(seed=0, n=(40, 20, 20)):
    rng = np.random.default_rng(seed)
    parts = {}
    for split, m in zip(("train", "valid", "test"), n):
        parts[f"x_{split}"] = rng.integers(0, 256, size=(m, 784), dtype=np.uint8)
        parts[f"y_{split}"] = rng.integers(0, 10, size=m, dtype=np.uint8)
    return MNISTData(**parts)


MNIST_TINY = dict(task="permuted-mnist", pixels_per_step=98, hidden=6, batch_size=10, n_train=40, n_valid=20,
                  n_test=20, epochs=3, anneal_p=0)


@pytest.mark.parametrize("task", ["copying", "adding", "pixel-mnist"])
def test_loss_and_grads_gradcheck(task):
    kw = {"copying": dict(delay=3, n_train=10, n_valid=2), "adding": dict(length=5, n_valid=2),
          "pixel-mnist": dict(pixels_per_step=49, n_train=10, n_valid=2, n_test=0)}[task]
    cfg = TrainConfig.from_dict(dict(task=task, hidden=3, batch_size=3, dtype="float64", iterations_per_epoch=1, **kw))
    td = make_task_data(cfg, mnist=fake_mnist(n=(10, 5, 5)))
    model = init_model(td.input_size, 3, td.output_size, np.random.default_rng(0), np.float64)
    x, y = td.train_batch(0, np.random.default_rng(1))
    keep = np.array([1.0, 0.0] * (td.steps // 2) + [1.0] * (td.steps % 2))
    res = loss_and_grads(model, x, y, td, h_scale=keep)
    # the unmasked gradient against finite differences; a mask changes neither the loss nor the readout gradient
    full = loss_and_grads(model, x, y, td)
    for k, a in model.arrays().items():
        num = numerical_gradient(lambda: loss_and_grads(model, x, y, td).loss, a)
        assert rel_error(num, full.grads[k]) < 1e-6, k
    np.testing.assert_array_equal(res.grads["readout.V"], full.grads["readout.V"])
    assert res.loss == full.loss


def test_copying_learns():
    cfg = TrainConfig.from_dict(dict(task="copying", delay=2, one_hot=False, hidden=64, batch_size=64, lr=2e-2,
                                     n_train=10000, n_valid=500, epochs=1, iterations_per_epoch=750, anneal_p=0,
                                     seed=3))
    res = train(cfg)
    acc = res.history[-1]["accuracy"]
    assert res.history[-1]["split"] == "valid"
    assert acc > 0.35, f"validation accuracy {acc} after 750 iterations (chance is 1/8)"


def _params_equal(a, b):
    for k, v in a.arrays().items():
        np.testing.assert_array_equal(v, b.arrays()[k], err_msg=k)


def _strip(records):
    return [{k: v for k, v in r.items() if k not in ("seconds",)} for r in records]


@pytest.mark.parametrize("kind", ["copying-hdetach", "mnist", "sgd-cdetach"])
def test_resume_is_bit_exact(tmp_path, kind):
    if kind == "copying-hdetach":
        cfg, mnist, cut = tiny(p=0.5, log_paths_every=4), None, 9
    elif kind == "mnist":
        cfg, mnist, cut = TrainConfig.from_dict({**MNIST_TINY, "p": 0.25}), fake_mnist(), 6
    else:
        cfg, mnist, cut = tiny(p=0.5, detach="c", optimizer="sgd", momentum=0.9, mask_per="unit"), None, 7
    full = train(cfg, tmp_path / "full", mnist=mnist)
    part = train(cfg, tmp_path / "part", mnist=mnist, stop_after=cut)
    assert not part.complete and part.iteration == cut
    meta = runs.load_checkpoint(tmp_path / "part" / "checkpoint.npz")[2]
    assert meta["iteration"] == cut
    resumed = train(cfg, tmp_path / "part", mnist=mnist, resume=True)
    assert resumed.complete and resumed.iteration == full.iteration == cfg.total_iterations
    _params_equal(full.model, resumed.model)
    a = runs.load_checkpoint(tmp_path / "full" / "checkpoint.npz")
    b = runs.load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    for k in a[1]:
        np.testing.assert_array_equal(a[1][k], b[1][k])
    assert a[2]["rng"] == b[2]["rng"] and a[2]["best"] == b[2]["best"]
    assert _strip(read_history(tmp_path / "full")) == _strip(read_history(tmp_path / "part"))


def test_run_folder_contents(tmp_path):
    cfg = tiny(p=0.5, log_paths_every=3)
    res = train(cfg, tmp_path / "r")
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert names == {"config.json", "versions.json", "history.jsonl", "checkpoint.npz", "best.npz", "summary.json"}
    assert TrainConfig.from_json(tmp_path / "r" / "config.json") == cfg
    v = json.loads((tmp_path / "r" / "versions.json").read_text())
    assert v["numpy"] == np.__version__ and v["python"].count(".") == 2
    hist = read_history(tmp_path / "r")
    assert hist == res.history
    steps = [r for r in hist if "loss" in r and "split" not in r]
    assert [r["iteration"] for r in steps] == list(range(1, 13))
    assert all(set(r) == {"iteration", "epoch", "loss", "accuracy", "grad_norm", "clipped", "p"} for r in steps)
    paths = [r for r in hist if "paths" in r]
    assert [r["paths"]["iteration"] for r in paths] == [3, 6, 9, 12]
    norms = paths[0]["paths"]["norms"]
    assert set(norms) == {"total", "cell", "h"} and "Wh.f" in norms["cell"]
    evals = [r for r in hist if r.get("split") == "valid"]
    assert [r["iteration"] for r in evals] == [6, 12] and evals[0]["best"]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["complete"] and summary["best"] == res.best


def test_path_norms_total_is_the_lstm_gradient():
    cfg = tiny(p=0.0, log_paths_every=1, clip=0.0, epochs=1, iterations_per_epoch=2)
    res = train(cfg)
    for rec in [r for r in res.history if "paths" in r]:
        n = rec["paths"]["norms"]
        step = next(r for r in res.history if r.get("iteration") == rec["iteration"] and "grad_norm" in r)
        assert n["total"]["all"] <= step["grad_norm"] * (1 + 1e-5)  # the readout adds the rest
        assert n["h"]["all"] > 0 and n["cell"]["all"] > 0


def test_mnist_reports_test_at_best_validation():
    cfg = TrainConfig.from_dict(MNIST_TINY)
    res = train(cfg, mnist=fake_mnist())
    best = res.best
    assert {"test_loss", "test_accuracy"} <= set(best)
    tests = [r for r in res.history if r.get("split") == "test"]
    assert tests[-1]["iteration"] == best["iteration"] and tests[-1]["accuracy"] == best["test_accuracy"]
    assert cfg.iterations_per_epoch_resolved == 4
    td = make_task_data(cfg, mnist=fake_mnist())
    # each epoch is one pass over the training images
    idx = np.concatenate([td.epoch_order(1)[j * 10:(j + 1) * 10] for j in range(4)])
    np.testing.assert_array_equal(np.sort(idx), np.arange(40))


@pytest.mark.parametrize("task", ["copying", "adding", "pixel-mnist"])
def test_evaluate_matches_the_training_forward(task):
    # evaluation and training score a batch by the same rule (loss_and_accuracy); only the forward differs
    # copying: 32 steps, two evaluation windows of 16 through one reused cache
    kw = {"copying": dict(TINY, delay=12, n_valid=16), "adding": dict(task="adding", length=6, hidden=8, n_valid=16),
          "pixel-mnist": dict(task="pixel-mnist", pixels_per_step=98, hidden=8, batch_size=8, n_train=40, n_valid=16,
                          n_test=0)}[task]
    cfg = TrainConfig.from_dict(dict(kw, eval_batch_size=5, dtype="float64"))
    td = make_task_data(cfg, mnist=fake_mnist())
    model = init_model(td.input_size, cfg.hidden, td.output_size, np.random.default_rng(3), np.float64)
    ev = evaluate(model, td, "valid", batch_size=5)
    x, y = next(td.eval_batches("valid", 16))
    res = loss_and_grads(model, x, y, td)
    assert ev["n"] == 16 and ev["loss"] == pytest.approx(res.loss, rel=1e-12)
    assert ev["accuracy"] == pytest.approx(res.accuracy)


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = tr.softmax_cross_entropy

    def flaky(logits, targets, steps="all"):
        loss, d = real(logits, targets, steps)
        if logits.shape[1] != cfg.batch_size:  # an evaluation (16 validation sequences)
            return loss, d
        calls["n"] += 1
        return (float("nan"), d) if calls["n"] == 8 else (loss, d)

    monkeypatch.setattr(tr, "softmax_cross_entropy", flaky)
    cfg = tiny()
    with pytest.raises(TrainingDiverged, match=r"non-finite loss \(nan\) at iteration 8 \(epoch 2\).*"
                                               r"last good checkpoint is .*checkpoint.npz \(iteration 6\)"):
        train(cfg, tmp_path / "r")
    _, _, meta = runs.load_checkpoint(tmp_path / "r" / "checkpoint.npz")
    assert meta["iteration"] == 6
    last = read_history(tmp_path / "r")[-1]
    assert last["event"] == "diverged" and last["iteration"] == 8
    # the run can be resumed from the good checkpoint once the cause is gone
    monkeypatch.setattr(tr, "softmax_cross_entropy", real)
    assert train(cfg, tmp_path / "r", resume=True).complete


def test_nan_in_evaluation_stops(tmp_path, monkeypatch):
    real = tr.softmax_cross_entropy

    def flaky(logits, targets, steps="all"):
        loss, d = real(logits, targets, steps)
        return (float("inf"), d) if logits.shape[1] == 16 else (loss, d)  # the 16 validation sequences

    monkeypatch.setattr(tr, "softmax_cross_entropy", flaky)
    with pytest.raises(TrainingDiverged, match=r"non-finite validation loss \(inf\) at iteration 6"):
        train(tiny(), tmp_path / "r")
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_nonfinite_gradient_stops(monkeypatch):
    real = tr.lstm_backward

    def bad(*a, **kw):
        g = real(*a, **kw)
        g.Wh[0, 0] = np.inf
        return g

    monkeypatch.setattr(tr, "lstm_backward", bad)
    with pytest.raises(TrainingDiverged, match=r"non-finite gradient norm \(inf\) at iteration 1.*no checkpoint"):
        train(tiny())


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    cfg = tiny()
    train(cfg, tmp_path / "r", stop_after=3)
    ck = tmp_path / "r" / "checkpoint.npz"
    good = ck.read_bytes()
    ck.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train(cfg, tmp_path / "r", resume=True)
    ck.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train(cfg, tmp_path / "r", resume=True)
    # a checkpoint of another run (other hidden size) in this folder
    other = tiny(hidden=5)
    train(other, tmp_path / "o", stop_after=3)
    ck.write_bytes((tmp_path / "o" / "checkpoint.npz").read_bytes())
    with pytest.raises(CheckpointError, match="different config"):
        train(cfg, tmp_path / "r", resume=True)
    with pytest.raises(ValueError, match="differs from .*config.json in hidden"):
        train(other, tmp_path / "r", resume=True)
    ck.write_bytes(good)
    assert train(cfg, tmp_path / "r", resume=True).complete


def test_checkpoint_parameters_are_checked():
    arrays = init_model(1, 4, 9, np.random.default_rng(0)).arrays()
    expected = r"does not match the run config: lstm.Wx is float32 \(1, 16\), expected float32 \(1, 20\)"
    with pytest.raises(CheckpointError, match=expected):
        tr.Model.from_arrays(arrays, 1, 5, 9, np.float32, where="ckpt")
    arrays["readout.d"] = arrays["readout.d"].copy()
    arrays["readout.d"][0] = np.nan
    with pytest.raises(CheckpointError, match="readout.d contains NaN"):
        tr.Model.from_arrays(arrays, 1, 4, 9, np.float32, where="ckpt")


def test_atomic_checkpoint_write_leaves_no_partial_file(tmp_path, monkeypatch):
    cfg = tiny()
    train(cfg, tmp_path / "r", stop_after=3)
    ck = tmp_path / "r" / "checkpoint.npz"
    before, listing = ck.read_bytes(), sorted(os.listdir(tmp_path / "r"))

    def broken_savez(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        runs.save_checkpoint(ck, {"w": np.zeros(3)}, {"iteration": 99})
    assert ck.read_bytes() == before
    assert sorted(os.listdir(tmp_path / "r")) == listing  # no temporary file left behind


def test_existing_run_folder_is_not_overwritten(tmp_path):
    train(tiny(epochs=1), tmp_path / "r")
    with pytest.raises(ValueError, match="already exists and is not empty; resume it"):
        train(tiny(epochs=1), tmp_path / "r")


def test_evaluate_run_and_transfer(tmp_path):
    cfg = tiny()
    train(cfg, tmp_path / "r")
    ev = evaluate_run(tmp_path / "r")
    assert set(ev) == {"valid"} and ev["valid"]["n"] == 16
    best = json.loads((tmp_path / "r" / "summary.json").read_text())["best"]
    assert ev["valid"]["accuracy"] == pytest.approx(best["accuracy"])
    rows = transfer_copying(tmp_path / "r", [2, 7], n=30)
    assert [r["delay"] for r in rows] == [2, 7] and all(0 <= r["accuracy"] <= 1 and r["n"] == 30 for r in rows)
    with pytest.raises(ValueError, match="every delay must be an integer >= 1"):
        transfer_copying(tmp_path / "r", [0])


def test_anneal_switches_detaching_off_late():
    cfg = tiny(p=0.5, epochs=5, anneal_p=3)
    assert [cfg.p_at_epoch(e) for e in range(5)] == [0.5, 0.5, 0.5, 0.0, 0.0]
    orig = TrainConfig.from_dict({"task": "copying", "p": 0.5}, preset="paper")  # 600 epochs, anneal 40: off in 561..599
    assert orig.p_at_epoch(560) == 0.5 and orig.p_at_epoch(561) == 0.0
    res = train(cfg.__class__.from_dict({**TINY, "p": 0.5, "epochs": 5, "anneal_p": 3, "iterations_per_epoch": 2}))
    ps = [r["p"] for r in res.history if "grad_norm" in r]
    assert ps == [0.5] * 6 + [0.0] * 4


@pytest.mark.parametrize("task", ["copying", "pixel-mnist"])
def test_a_reused_cache_gives_the_same_bits(task):
    # the training loop hands each iteration's cache to the next forward pass (reuse=)
    kw = {"copying": dict(TINY), "pixel-mnist": dict(MNIST_TINY, task="pixel-mnist")}[task]
    cfg = TrainConfig.from_dict(dict(kw, p=0.5))
    td = make_task_data(cfg, mnist=fake_mnist())
    model = init_model(td.input_size, cfg.hidden, td.output_size, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x0, y0 = td.train_batch(0, rng)
    x1, y1 = td.train_batch(1, rng)
    keep = (np.arange(td.steps) % 3 != 0).astype(np.float32)
    earlier = loss_and_grads(model, x0, y0, td, h_scale=keep)
    reused = loss_and_grads(model, x1, y1, td, h_scale=keep, reuse=earlier.cache)
    fresh = loss_and_grads(model, x1, y1, td, h_scale=keep)
    assert np.shares_memory(reused.cache.gates, earlier.cache.gates)
    assert reused.loss == fresh.loss and reused.correct == fresh.correct
    for k in fresh.grads:
        np.testing.assert_array_equal(reused.grads[k], fresh.grads[k], err_msg=k)
    # evaluation keeps its window caches in `buffers` and reuses them on the next call
    buffers = {}
    first = evaluate(model, td, "valid", batch_size=7, buffers=buffers)
    assert buffers
    held = {k: v.gates for k, v in buffers.items()}
    again = evaluate(model, td, "valid", batch_size=7, buffers=buffers)
    assert all(np.shares_memory(buffers[k].gates, g) for k, g in held.items())
    assert again == first == evaluate(model, td, "valid", batch_size=7)
