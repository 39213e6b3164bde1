"""Plot functions (Agg backend) and the quick modes of the analysis scripts."""

import importlib.util
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import make_problem  # noqa: E402

import hdetach_np as hd  # noqa: E402
from hdetach_np.paths import plots  # noqa: E402
from hdetach_np.paths.suppression import SuppressionConfig, suppression_sweep  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def _credit():
    T, N, D, H = 8, 2, 1, 3
    rng, params, x, h0, c0 = make_problem(0, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    return hd.temporal_credit(rng.standard_normal((T, N, H)), cache), cache


def test_ratio_plots(ax):
    res = suppression_sweep(SuppressionConfig(scales=(0.5, 2.0, 8.0), seeds=(0, 1), delay=5, N=4, H=4))
    assert plots.plot_ratio_vs_scale(ax, res, "cell/h", "Wh.f") is ax
    assert ax.get_xscale() == "log" and len(ax.lines) == len(res.variants)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), res.ratio("cell/h", "Wh.f").mean(0))
    fig, (ax2, ax3) = plt.subplots(1, 2)
    assert plots.plot_group_ratios_vs_scale(ax2, res, ("Wh.i", "Wh.f")) is ax2 and len(ax2.lines) == 2
    assert plots.plot_norms_vs_scale(ax3, res, "Wh", "p=0.5") is ax3 and len(ax3.lines) == 3
    gm = np.exp(np.log(res.norms["p=0.5"]["cell"]["Wh"]).mean(0))
    np.testing.assert_allclose(ax3.lines[1].get_ydata(), gm)
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown variant"):
        plots.plot_norms_vs_scale(ax, res, "Wh", "p=0.3")
    with pytest.raises(ValueError, match="unknown parameter group 'Wz'"):
        plots.plot_ratio_vs_scale(ax, res, group="Wz")
    with pytest.raises(ValueError, match="unknown band"):
        plots.plot_ratio_vs_scale(ax, res, band="iqr")


@pytest.mark.parametrize("quantity", ["dh", "dc", "da", "weights"])
@pytest.mark.parametrize("yscale", ["log", "symlog"])
def test_credit_plot(ax, quantity, yscale):
    tc, _ = _credit()
    assert plots.plot_credit_vs_lag(ax, tc, quantity=quantity, group="Wh", yscale=yscale) is ax
    assert len(ax.lines) == 3 and ax.get_yscale() == yscale
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), tc.lags)


def test_jacobian_and_history_plots(ax):
    _, cache = _credit()
    jp = hd.jacobian_products(cache, lambdas=(0.0, 1.0))
    assert plots.plot_jacobian_products(ax, jp, norm="fro") is ax
    assert len(ax.lines) == 3  # lambda=1 full and h part, and the cell part (= lambda 0)
    with pytest.raises(ValueError, match="unknown norm"):
        plots.plot_jacobian_products(ax, jp, norm="nuc")
    # a training history: records {"iteration", "norms": PathGrads.norms()}
    rng = np.random.default_rng(0)
    records = []
    for it in (0, 10, 20):
        T, N, D, H = 4, 2, 1, 3
        _, params, x, h0, c0 = make_problem(it, T, N, D, H)
        pg = hd.gradient_paths(rng.standard_normal((T, N, H)), hd.lstm_forward(params, x, h0, c0)[1])
        records.append({"iteration": it, "norms": pg.norms()})
    fig, ax2 = plt.subplots()
    assert plots.plot_path_norms_history(ax2, records[::-1], group="Wh.f") is ax2
    assert list(ax2.lines[0].get_xdata()) == [0, 10, 20]
    assert plots.plot_path_norms_history(ax2, records, ratio=True) is ax2
    plt.close(fig)
    with pytest.raises(ValueError, match="records is empty"):
        plots.plot_path_norms_history(ax, [])
    with pytest.raises(ValueError, match="unknown parameter group"):
        plots.plot_path_norms_history(ax, records, group="W")
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plots.plot_path_norms_history(None, records)


def _load(name):
    if str(ROOT / "analysis") not in sys.path:  # the scripts import analysis/_common.py, as when run from the shell
        sys.path.insert(0, str(ROOT / "analysis"))
    spec = importlib.util.spec_from_file_location(f"analysis_{name}", ROOT / "analysis" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _check_outputs(tmp_path, stem):
    png, js = tmp_path / f"{stem}.png", tmp_path / f"{stem}.json"
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
    return json.loads(js.read_text())


def test_analysis_suppression_quick(tmp_path):
    out = _load("suppression").main(["--quick", "--out", str(tmp_path)])
    data = _check_outputs(tmp_path, "suppression")
    assert data == json.loads(json.dumps(out))
    for w in ("Wh", "all"):
        assert data[w]["config"]["delay"] == 10 and "T" not in data[w]["config"]
        r = data[w]["ratios"]["cell/total"]["all"]
        assert set(r) == {"plain", "p=0.25", "p=0.5"}
        mean = np.array(r["plain"]["mean"])
        assert np.all(mean > 0) and mean[-1] < mean[0]  # the suppression trend
        assert r["p=0.5"]["mean"][-1] > mean[-1]  # h-detach raises the cell share at the largest scale


def test_analysis_delay_option():
    """The weight-scale scripts take --delay; --T, its old name, still works and is not in the help."""
    for name in ("suppression", "temporal_credit", "jacobian_products"):
        parser = _load(name).build_parser()
        assert parser.parse_args(["--out", "o"]).delay == 100
        assert parser.parse_args(["--out", "o", "--delay", "7"]).delay == 7
        assert parser.parse_args(["--out", "o", "--T", "7"]).delay == 7
        assert "--delay" in parser.format_help() and "--T" not in parser.format_help()


def test_analysis_temporal_credit_quick(tmp_path):
    _load("temporal_credit").main(["--quick", "--out", str(tmp_path)])
    data = _check_outputs(tmp_path, "temporal_credit")
    L = data["L"]
    assert data["delay"] == 12 and L == data["delay"] + 20 and "T" not in data
    for run in data["runs"].values():
        c = run["credit"]
        assert c["lags"] == list(range(L)) and c["ref_step"] == L - 1
        assert all(v is not None and v >= 0 for v in c["dc"]["total"])
        share = run["input_steps"]["cell_share"]
        assert share is not None and share > 0


def test_analysis_jacobian_products_quick(tmp_path):
    _load("jacobian_products").main(["--quick", "--out", str(tmp_path)])
    data = _check_outputs(tmp_path, "jacobian_products")
    assert data["delay"] == 10 and data["L"] == data["delay"] + 20 and "T" not in data
    for run in data["runs"].values():
        assert run["lambdas"] == [0.0, 0.5, 1.0]
        spec, cell = np.array(run["spec"], float), np.array(run["cell_spec"], float)
        assert np.all(spec > 0) and np.allclose(spec[0], cell)
