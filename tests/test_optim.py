"""Optimizer updates against hand-computed steps (and torch.optim in float64 when installed)."""

import math

import numpy as np
import pytest

from hdetach_np.training.optim import SGD, Adam, RMSprop, clip_grad_norm, global_norm, make_optimizer


def one(v):
    return {"w": np.array([v], dtype=np.float64)}


def test_adam_two_steps_by_hand():
    params = one(1.0)
    opt = Adam(params, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    opt.step(one(0.5))
    # m = 0.05, v = 0.00025; step size 0.1 / (1 - 0.9) = 1; denom = sqrt(v) / sqrt(1 - 0.999) + eps = 0.5 + 1e-8
    m1, v1 = 0.05, 0.00025
    p1 = 1.0 - (0.1 / 0.1) * m1 / (math.sqrt(v1) / math.sqrt(0.001) + 1e-8)
    assert params["w"][0] == pytest.approx(p1, rel=1e-15, abs=0)
    opt.step(one(-2.0))
    m2, v2 = 0.9 * m1 + 0.1 * -2.0, 0.999 * v1 + 0.001 * 4.0
    p2 = p1 - (0.1 / (1 - 0.9 ** 2)) * m2 / (math.sqrt(v2) / math.sqrt(1 - 0.999 ** 2) + 1e-8)
    assert params["w"][0] == pytest.approx(p2, rel=1e-15, abs=0)
    st = opt.state_dict()
    assert int(st["steps"]) == 2 and st["m/w"][0] == pytest.approx(m2) and st["v/w"][0] == pytest.approx(v2)


def test_sgd_momentum_and_nesterov_by_hand():
    params = one(1.0)
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step(one(2.0))  # first step: buf = g
    assert params["w"][0] == pytest.approx(1.0 - 0.1 * 2.0, rel=1e-15)
    opt.step(one(1.0))  # buf = 0.9 * 2 + 1 = 2.8
    assert params["w"][0] == pytest.approx(0.8 - 0.1 * 2.8, rel=1e-15)
    params = one(1.0)
    opt = SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    opt.step(one(2.0))  # buf = 2, step with g + 0.9 buf = 3.8
    assert params["w"][0] == pytest.approx(1.0 - 0.38, rel=1e-15)
    params = one(1.0)
    SGD(params, lr=0.5).step(one(3.0))
    assert params["w"][0] == -0.5


def test_rmsprop_by_hand():
    params = one(1.0)
    opt = RMSprop(params, lr=0.01, alpha=0.99, eps=1e-8)
    opt.step(one(2.0))  # s = 0.01 * 4 = 0.04, avg = 0.2 + 1e-8
    assert params["w"][0] == pytest.approx(1.0 - 0.01 * 2.0 / (0.2 + 1e-8), rel=1e-15)
    params = one(1.0)
    opt = RMSprop(params, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.5)
    opt.step(one(2.0))
    b1 = 2.0 / (0.2 + 1e-8)
    opt.step(one(1.0))
    s2 = 0.99 * 0.04 + 0.01 * 1.0
    b2 = 0.5 * b1 + 1.0 / (math.sqrt(s2) + 1e-8)
    assert params["w"][0] == pytest.approx(1.0 - 0.01 * b1 - 0.01 * b2, rel=1e-14)


def test_weight_decay_adds_to_the_gradient():
    params = one(2.0)
    SGD(params, lr=0.1, weight_decay=0.5).step(one(1.0))  # g = 1 + 0.5 * 2 = 2
    assert params["w"][0] == pytest.approx(1.8, rel=1e-15)


def test_float32_stays_float32():
    params = {"w": np.ones((2, 3), np.float32)}
    opt = Adam(params, lr=1e-3)
    opt.step({"w": np.full((2, 3), 0.5, np.float32)})
    assert params["w"].dtype == np.float32 and opt.state["m/w"].dtype == np.float32


def test_clip_grad_norm():
    g = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    assert global_norm(g) == 5.0
    norm, clipped = clip_grad_norm(g, 1.0)
    assert norm == 5.0 and clipped
    np.testing.assert_allclose([g["a"][0], g["b"][0, 0]], np.array([3.0, 4.0]) / (5.0 + 1e-6), rtol=1e-15)
    g = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert clip_grad_norm(g, 10.0) == (5.0, False) and g["a"][0] == 3.0
    assert clip_grad_norm(g, 0.0) == (5.0, False)  # 0 turns clipping off
    g = {"a": np.array([np.inf])}
    norm, clipped = clip_grad_norm(g, 1.0)
    assert math.isinf(norm) and not clipped
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm(g, -1)


@pytest.mark.parametrize("kind", ["adam", "sgd", "rmsprop"])
def test_state_dict_roundtrip_is_exact(kind):
    rng = np.random.default_rng(0)
    p1 = {"a": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(5).astype(np.float32)}
    p2 = {k: v.copy() for k, v in p1.items()}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p1.items()} for _ in range(6)]
    o1 = make_optimizer(kind, p1, 1e-2, momentum=0.9)
    for g in grads[:3]:
        o1.step(g)
    o2 = make_optimizer(kind, p2, 1e-2, momentum=0.9)
    for g in grads[:3]:
        o2.step(g)
    o3 = make_optimizer(kind, {k: v.copy() for k, v in p2.items()}, 1e-2, momentum=0.9)
    o3.load_state_dict(o2.state_dict())
    for g in grads[3:]:
        o1.step(g)
        o3.step(g)
    for k in p1:
        np.testing.assert_array_equal(p1[k], o3.params[k])


def test_bad_optimizer_input():
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'"):
        make_optimizer("adagrad", one(1.0), 0.1)
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        Adam(one(1.0), lr=0)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0, 1\)"):
        Adam(one(1.0), betas=(0.9, 1.0))
    opt = Adam(one(1.0))
    with pytest.raises(ValueError, match="gradient 'w' is float64 \\(2,\\), expected float64 \\(1,\\)"):
        opt.step({"w": np.zeros(2)})
    with pytest.raises(ValueError, match="names no parameter"):
        opt.load_state_dict({"steps": np.array(1), "m/zz": np.zeros(1)})


@pytest.mark.parametrize("kind", ["adam", "sgd", "sgd-nesterov", "rmsprop", "rmsprop-momentum"])
def test_against_torch_optim(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    shapes = {"a": (3, 4), "b": (5,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    tparams = [torch.tensor(params[k].copy(), requires_grad=True) for k in shapes]
    lr, wd = 0.05, 0.01
    if kind == "adam":
        ours = Adam(params, lr, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
        theirs = torch.optim.Adam(tparams, lr, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    elif kind.startswith("sgd"):
        nest = kind.endswith("nesterov")
        ours = SGD(params, lr, momentum=0.9, nesterov=nest, weight_decay=wd)
        theirs = torch.optim.SGD(tparams, lr, momentum=0.9, nesterov=nest, weight_decay=wd)
    else:
        mom = 0.7 if kind.endswith("momentum") else 0.0
        ours = RMSprop(params, lr, alpha=0.9, eps=1e-6, momentum=mom, weight_decay=wd)
        theirs = torch.optim.RMSprop(tparams, lr, alpha=0.9, eps=1e-6, momentum=mom, weight_decay=wd)
    for _ in range(5):
        grads = {k: 3 * rng.standard_normal(s) for k, s in shapes.items()}
        for tp, k in zip(tparams, shapes):
            tp.grad = torch.tensor(grads[k].copy())
        tnorm = torch.nn.utils.clip_grad_norm_(tparams, 1.0)
        norm, _ = clip_grad_norm(grads, 1.0)
        assert norm == pytest.approx(float(tnorm), rel=1e-12)
        for tp, k in zip(tparams, shapes):
            np.testing.assert_allclose(grads[k], tp.grad.numpy(), rtol=1e-12, atol=0)
        ours.step(grads)
        theirs.step()
        for tp, k in zip(tparams, shapes):
            np.testing.assert_allclose(params[k], tp.detach().numpy(), rtol=1e-12, atol=1e-15)
