"""The weight-scale sweep: the suppression trend on a fixed seed, and its configuration."""

import json
from pathlib import Path

import numpy as np
import pytest

import hdetach_np as hd
from hdetach_np.paths.suppression import SuppressionConfig, scale_params, suppression_sweep

SMALL = dict(seeds=(0,), delay=10, N=8, H=16)


@pytest.mark.parametrize("weights", ["Wh", "all"])
def test_cell_share_falls_with_the_weight_scale(weights):
    res = suppression_sweep(SuppressionConfig(scales=(0.5, 2.0, 16.0), weights=weights, **SMALL))
    for group in ("all", "Wh", "Wh.f"):
        share = res.ratio("cell/total", group)[0]
        assert share[-1] < share[0], (group, share)
        assert res.ratio("cell/h", group)[0][-1] < res.ratio("cell/h", group)[0][0]
    # h-detach raises the cell share at the largest scale, more for larger p
    plain, p25, p50 = (res.ratio("cell/total", "all", v)[0][-1] for v in ("plain", "p=0.25", "p=0.5"))
    assert plain < p25 < p50
    # the readout has no h part
    assert np.all(res.ratio("cell/total", "readout") == 1)


def test_sweep_numbers_are_gradient_paths():
    """One point of the sweep, recomputed by hand."""
    cfg = SuppressionConfig(scales=(3.0,), seeds=(1,), delay=5, N=4, H=6, ps=(0.5,))
    res = suppression_sweep(cfg)
    rng = np.random.default_rng(1)
    params = hd.init_lstm(1, 6, rng, dtype=np.float64)
    from hdetach_np.tasks import copying_data

    x, y = copying_data(4, 5, rng, dtype=np.float64)
    readout = hd.init_linear(6, 9, rng, dtype=np.float64)
    hs, cache = hd.lstm_forward(scale_params(params, 3.0, "Wh"), x)
    logits, lc = hd.linear_forward(readout, hs)
    loss, dl = hd.softmax_cross_entropy(logits, y)
    lg = hd.linear_backward(dl, lc)
    n = hd.gradient_paths(lg.h, cache).norms()
    ne = hd.paths.expected_h_detach_paths(lg.h, cache, 0.5).norms()
    assert np.isclose(res.loss[0, 0], loss)
    for g in ("all", "Wh.o"):
        assert np.isclose(res.norms["plain"]["cell"][g][0, 0], n["cell"][g], rtol=1e-12)
        assert np.isclose(res.norms["p=0.5"]["total"][g][0, 0], ne["total"][g], rtol=1e-12)
    summ = res.summary("cell/h", "Wh")
    assert set(summ) == {"plain", "p=0.5"} and np.isclose(summ["plain"]["mean"][0], n["cell"]["Wh"] / n["h"]["Wh"])
    d = res.as_dict()
    assert d["config"]["scales"] == [3.0] and "cell/total" in d["ratios"]


def test_scale_params():
    rng = np.random.default_rng(0)
    p = hd.init_lstm(2, 3, rng, dtype=np.float64)
    q = scale_params(p, 2.0, "Wh")
    assert np.array_equal(q.Wh, 2 * p.Wh) and np.array_equal(q.Wx, p.Wx) and np.array_equal(q.b, p.b)
    q = scale_params(p, 0.5, "all")
    assert np.array_equal(q.Wx, 0.5 * p.Wx) and np.array_equal(q.b, 0.5 * p.b)


def test_bad_config():
    with pytest.raises(ValueError, match="every weight scale must be a finite number > 0, got 0.0"):
        SuppressionConfig(scales=(1.0, 0.0))
    with pytest.raises(ValueError, match="weight scale must be a finite number > 0, got -1"):
        scale_params(hd.init_lstm(1, 2, np.random.default_rng(0)), -1, "Wh")
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        SuppressionConfig(ps=(0.25, 1.5))
    with pytest.raises(ValueError, match="unknown weights 'Wx'"):
        SuppressionConfig(weights="Wx")
    with pytest.raises(ValueError, match="unknown task"):
        SuppressionConfig(task="mnist")
    with pytest.raises(ValueError, match=r"unknown SuppressionConfig key\(s\) \['scale'\]"):
        SuppressionConfig.from_dict({"scale": (1.0,)})
    with pytest.raises(ValueError, match="H must be a positive integer"):
        SuppressionConfig(H=0)
    res = suppression_sweep(SuppressionConfig(scales=(1.0,), **SMALL, ps=()))
    with pytest.raises(ValueError, match="unknown parameter group 'Wh.z'"):
        res.ratio("cell/total", "Wh.z")
    with pytest.raises(ValueError, match="unknown variant 'p=0.5'"):
        res.ratio("cell/total", "all", "p=0.5")
    with pytest.raises(ValueError, match="unknown ratio kind"):
        res.ratio("total/cell", "all")
    assert SuppressionConfig.from_dict({"delay": 7}).delay == 7
    assert SuppressionConfig.from_dict({"T": 7, "N": 3}) == SuppressionConfig(delay=7, N=3)  # saved before the rename
    with pytest.raises(ValueError, match="the key \"T\" is the old name of \"delay\""):
        SuppressionConfig.from_dict({"T": 7, "delay": 8})
    with pytest.raises(TypeError):
        SuppressionConfig(T=7)  # the constructor takes the new name only


def test_committed_sweep_config_loads():
    """docs/figures/suppression.json was written when the delay was the key "T": its config still loads."""
    path = Path(__file__).resolve().parents[1] / "docs" / "figures" / "suppression.json"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    saved = json.loads(path.read_text())
    for weights in ("Wh", "all"):
        cfg = SuppressionConfig.from_dict(saved[weights]["config"])
        assert cfg.weights == weights and cfg.delay == saved[weights]["config"]["T"]
