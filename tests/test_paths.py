"""The exact cell-path / h-path split of the gradient (float64)."""

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd
from hdetach_np.gradcheck import numerical_gradient, rel_error

FIELDS = ("Wx", "Wh", "b", "x", "h0", "c0")


def _setting(name, rng, T, N, H):
    """Backward keyword arguments of a named setting (loss terms and edge scales)."""
    dhs = rng.standard_normal((T, N, H))
    dhT, dcT = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    mask = (rng.random(T) > 0.5).astype(float)
    mask[:2] = (0.0, 1.0)
    return {
        "plain": dict(dhs=dhs),
        "final terms": dict(dhs=dhs, dhT=dhT, dcT=dcT),
        "only final terms": dict(dhs=None, dhT=dhT, dcT=dcT),
        "h-detach mask": dict(dhs=dhs, h_scale=mask),
        "per-example mask": dict(dhs=dhs, h_scale=(rng.random((T, N)) > 0.5).astype(float)),
        "fractional per-unit h and c": dict(dhs=dhs, dcT=dcT, h_scale=rng.uniform(0.2, 0.9, (T, N, H)),
                                            c_scale=rng.uniform(0.2, 0.9, (T, N, H))),
        "c-detach": dict(dhs=dhs, c_scale=mask),
    }[name]


SETTINGS = ["plain", "final terms", "only final terms", "h-detach mask", "per-example mask",
            "fractional per-unit h and c", "c-detach"]


@pytest.mark.parametrize("setting", SETTINGS)
def test_split_identities(setting):
    T, N, D, H = 7, 3, 2, 4
    rng, params, x, h0, c0 = make_problem(0, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    kw = _setting(setting, rng, T, N, H)
    dhs = kw.pop("dhs")
    pg = hd.gradient_paths(dhs, cache, **kw)
    total = hd.lstm_backward(dhs, cache, **kw)
    cut = hd.lstm_backward(dhs, cache, **{**kw, "h_scale": np.zeros(T)})
    for f in FIELDS:
        t, c, h = getattr(pg.total, f), getattr(pg.cell, f), getattr(pg.h, f)
        # cell + h == total to 1e-10 relative
        assert np.linalg.norm(c + h - t) <= 1e-10 * np.linalg.norm(t), f
        # the total is lstm_backward with the same arguments; the cell part has every h-edge cut
        assert rel_error(t, getattr(total, f)) < 1e-12, f
        assert rel_error(c, getattr(cut, f)) < 1e-12, f
        assert c.dtype == np.float64
    assert np.all(pg.cell.h0 == 0)  # every path into h0 starts with the h-edge h0 -> a_1


def test_cell_part_against_finite_differences():
    """The cell part is the derivative of a loss in which every h_{t-1} feeding the gates is a
    frozen copy (same values): checked by centred differences, independent of any backward."""
    T, N, D, H = 5, 2, 2, 3
    rng, params, x, h0, c0 = make_problem(4, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    dhs, dcT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))
    pg = hd.gradient_paths(dhs, cache, dcT=dcT)

    def loss():
        hs, cs, _ = hd.lstm_forward_steps(params, x, h0, c0, h_scale=np.zeros(T), anchor=cache)
        return float(np.sum(dhs * hs) + np.sum(dcT * cs[-1]))

    for name in ("Wx", "Wh", "b"):
        assert rel_error(getattr(pg.cell, name), numerical_gradient(loss, getattr(params, name))) < 1e-6
    assert rel_error(pg.cell.c0, numerical_gradient(loss, c0)) < 1e-6


def test_lambda_one_is_total_and_lambda_zero_is_cell():
    T, N, D, H = 6, 2, 1, 3
    rng, params, x, h0, c0 = make_problem(1, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    dhs = rng.standard_normal((T, N, H))
    plain = hd.lstm_backward(dhs, cache)
    pg1 = hd.gradient_paths(dhs, cache, h_scale=np.ones(T))
    pg0 = hd.gradient_paths(dhs, cache, h_scale=np.zeros(T))
    for f in FIELDS:
        assert rel_error(getattr(pg1.total, f), getattr(plain, f)) < 1e-12
        assert rel_error(getattr(hd.expected_h_detach_gradient(dhs, cache, 0.0), f), getattr(plain, f)) < 1e-12
        # p = 1 (lambda = 0): the gradient is its own cell part, the h part vanishes
        assert rel_error(getattr(hd.expected_h_detach_gradient(dhs, cache, 1.0), f), getattr(pg1.cell, f)) < 1e-12
        assert np.linalg.norm(getattr(pg0.h, f)) <= 1e-14 * np.linalg.norm(getattr(pg0.total, f))


def test_h_part_vanishes_when_Wh_is_zero():
    T, N, D, H = 6, 3, 2, 4
    rng, params, x, h0, c0 = make_problem(2, T, N, D, H)
    params = hd.LSTMParams(params.Wx, np.zeros_like(params.Wh), params.b)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    pg = hd.gradient_paths(rng.standard_normal((T, N, H)), cache, dcT=rng.standard_normal((N, H)))
    for f in ("Wx", "Wh", "b", "x", "c0"):
        assert np.linalg.norm(getattr(pg.h, f)) <= 1e-13 * np.linalg.norm(getattr(pg.total, f)), f
    # the control: with Wh != 0 the h part is far from zero
    _, params2, x2, h02, c02 = make_problem(2, T, N, D, H)
    pg2 = hd.gradient_paths(rng.standard_normal((T, N, H)), hd.lstm_forward(params2, x2, h02, c02)[1])
    assert np.linalg.norm(pg2.h.Wh) > 1e-3 * np.linalg.norm(pg2.total.Wh)


def test_expected_paths_share_the_cell_part():
    T, N, D, H = 6, 2, 2, 3
    rng, params, x, h0, c0 = make_problem(3, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    dhs = rng.standard_normal((T, N, H))
    plain = hd.gradient_paths(dhs, cache)
    for p in (0.25, 0.5):
        ex = hd.paths.expected_h_detach_paths(dhs, cache, p)
        g = hd.expected_h_detach_gradient(dhs, cache, p)
        via_scale = hd.lstm_backward(dhs, cache, h_scale=np.full(T, 1 - p))
        for f in FIELDS:
            assert rel_error(getattr(ex.total, f), getattr(g, f)) < 1e-12
            assert rel_error(getattr(g, f), getattr(via_scale, f)) < 1e-12
            assert rel_error(getattr(ex.cell, f), getattr(plain.cell, f)) < 1e-12
    # the h part shrinks with p
    assert (np.linalg.norm(hd.paths.expected_h_detach_paths(dhs, cache, 0.5).h.Wh)
            < np.linalg.norm(hd.paths.expected_h_detach_paths(dhs, cache, 0.25).h.Wh) < np.linalg.norm(plain.h.Wh))


def test_float32_matches_float64():
    T, N, D, H = 9, 4, 1, 5
    rng, params, x, h0, c0 = make_problem(5, T, N, D, H)
    dhs = rng.standard_normal((T, N, H))
    pg64 = hd.gradient_paths(dhs, hd.lstm_forward(params, x, h0, c0)[1])
    p32 = params.astype(np.float32)
    pg32 = hd.gradient_paths(dhs.astype(np.float32), hd.lstm_forward(p32, x.astype(np.float32),
                                                                      h0.astype(np.float32), c0.astype(np.float32))[1])
    for part in ("total", "cell"):
        for f in ("Wx", "Wh", "b"):
            a = getattr(getattr(pg32, part), f)
            assert a.dtype == np.float32
            assert rel_error(a, getattr(getattr(pg64, part), f)) < 1e-5


def test_readout_is_all_cell_and_norms_format():
    T, N, D, H, K = 5, 3, 2, 4, 3
    rng, params, x, h0, c0 = make_problem(6, T, N, D, H)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    readout = hd.init_linear(H, K, rng, dtype=np.float64)
    logits, lcache = hd.linear_forward(readout, hs)
    _, dlogits = hd.softmax_cross_entropy(logits, rng.integers(0, K, size=(T, N)))
    lg = hd.linear_backward(dlogits, lcache)
    pg = hd.gradient_paths(lg.h, cache, readout=lg)
    n = pg.norms()
    assert set(n) == {"total", "cell", "h"}
    assert set(n["total"]) == set(hd.paths.param_groups(readout=True))
    assert n["cell"]["V"] == n["total"]["V"] == np.linalg.norm(lg.V) > 0
    assert n["h"]["V"] == n["h"]["d"] == n["h"]["readout"] == 0
    for q in n:  # "all" is the LSTM parameters only; the gate blocks split each parameter
        assert np.isclose(n[q]["all"] ** 2, sum(n[q][p] ** 2 for p in ("Wx", "Wh", "b")))
        for p in ("Wx", "Wh", "b"):
            assert np.isclose(n[q][p] ** 2, sum(n[q][f"{p}.{g}"] ** 2 for g in hd.GATES))
    r = pg.ratios("Wh.f")
    assert np.isclose(r["cell/total"], n["cell"]["Wh.f"] / n["total"]["Wh.f"])
    assert np.isclose(r["cell/h"], n["cell"]["Wh.f"] / n["h"]["Wh.f"])
    assert pg.ratios("readout")["cell/total"] == 1.0
    # without a readout the norms have only the LSTM groups
    assert set(hd.gradient_paths(lg.h, cache).norms()["h"]) == set(hd.paths.param_groups())


def test_bad_inputs():
    T, N, D, H = 4, 2, 1, 3
    rng, params, x, h0, c0 = make_problem(0, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    dhs = rng.standard_normal((T, N, H))
    pg = hd.gradient_paths(dhs, cache)
    with pytest.raises(ValueError, match="unknown parameter group 'Wq'"):
        pg.ratios("Wq")
    with pytest.raises(ValueError, match="unknown parameter group 'V'"):
        pg.ratios("V")  # no readout given
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p must be in"):
            hd.expected_h_detach_gradient(dhs, cache, p)
        with pytest.raises(ValueError, match="p must be in"):
            hd.paths.expected_h_detach_paths(dhs, cache, p)
    with pytest.raises(ValueError, match=r"expected dhs of shape \(T=4, N=2, H=3\)"):
        hd.gradient_paths(dhs[:-1], cache)
    with pytest.raises(ValueError, match="h_scale values must be in"):
        hd.gradient_paths(dhs, cache, h_scale=np.full(T, 1.5))
    with pytest.raises(TypeError, match="readout must be the LinearGrads"):
        hd.gradient_paths(dhs, cache, readout=params)
    with pytest.raises(TypeError, match="cache must be the LSTMCache"):
        hd.gradient_paths(dhs, params)
    with pytest.raises(TypeError, match="dtype"):
        hd.gradient_paths(dhs.astype(np.float32), cache)
