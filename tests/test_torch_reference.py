"""PyTorch autograd as an independent reference (float64), with the original code's cell written in
torch, h-detach applied by .detach(), and the gate order mapped explicitly. Skipped without torch."""

import numpy as np
import pytest

import hdetach_np as hd

torch = pytest.importorskip("torch")


def _torch_original_cell(x, h0, c0, Wx, Wh, b, h_keep=None, c_keep=None):
    """The original code's LSTM cell (gates i, f, o, g), stepped in Python; detach where keep == 0."""
    T, H = x.shape[0], h0.shape[1]
    h, c, hs = h0, c0, []
    for t in range(T):
        h_in = h.detach() if h_keep is not None and h_keep[t] == 0 else h
        c_in = c.detach() if c_keep is not None and c_keep[t] == 0 else c
        a = x[t] @ Wx + h_in @ Wh + b
        i = torch.sigmoid(a[:, :H])
        f = torch.sigmoid(a[:, H:2 * H])
        o = torch.sigmoid(a[:, 2 * H:3 * H])
        g = torch.tanh(a[:, 3 * H:])
        c = f * c_in + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs), c


def _problem(seed, T=7, N=3, D=2, H=5, K=4):
    rng = np.random.default_rng(seed)
    params = hd.init_lstm(D, H, rng, dtype=np.float64)
    readout = hd.init_linear(H, K, rng, dtype=np.float64)
    x = rng.standard_normal((T, N, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    targets = rng.integers(0, K, size=(T, N))
    return rng, params, readout, x, h0, c0, targets


def _ours(params, readout, x, h0, c0, targets, h_scale=None, c_scale=None):
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    logits, lc = hd.linear_forward(readout, hs)
    loss, dlogits = hd.softmax_cross_entropy(logits, targets)
    lg = hd.linear_backward(dlogits, lc)
    g = hd.lstm_backward(lg.h, cache, h_scale=h_scale, c_scale=c_scale)
    return loss, {"Wx": g.Wx, "Wh": g.Wh, "b": g.b, "V": lg.V, "d": lg.d, "x": g.x, "h0": g.h0, "c0": g.c0}


def _theirs(params, readout, x, h0, c0, targets, h_keep=None, c_keep=None):
    ts = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in dict(
        Wx=params.Wx, Wh=params.Wh, b=params.b, V=readout.V, d=readout.d, x=x, h0=h0, c0=c0).items()}
    hs, _ = _torch_original_cell(ts["x"], ts["h0"], ts["c0"], ts["Wx"], ts["Wh"], ts["b"], h_keep, c_keep)
    logits = hs @ ts["V"] + ts["d"]
    K = logits.shape[-1]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, K), torch.tensor(targets.reshape(-1)))
    loss.backward()
    # a tensor that no path reaches (h0 when the first step is detached) has grad None: zero
    return float(loss.detach()), {k: np.zeros(v.shape) if v.grad is None else v.grad.numpy() for k, v in ts.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_torch_autograd(seed):
    _, params, readout, x, h0, c0, targets = _problem(seed)
    l1, ours = _ours(params, readout, x, h0, c0, targets)
    l2, theirs = _theirs(params, readout, x, h0, c0, targets)
    assert abs(l1 - l2) < 1e-12
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("seed", [0, 1])
def test_h_and_c_detach_match_torch(seed):
    rng, params, readout, x, h0, c0, targets = _problem(seed)
    T = x.shape[0]
    h_keep = hd.sample_h_detach_mask(T, 0.5, rng, dtype=np.float64)
    h_keep[2], h_keep[3] = 0, 1
    c_keep = hd.sample_h_detach_mask(T, 0.5, rng, dtype=np.float64)
    c_keep[4] = 0
    for hk, ck in ((h_keep, None), (None, c_keep), (h_keep, c_keep)):
        _, ours = _ours(params, readout, x, h0, c0, targets, h_scale=hk, c_scale=ck)
        _, theirs = _theirs(params, readout, x, h0, c0, targets, h_keep=hk, c_keep=ck)
        for k in ours:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-13, err_msg=k)
    # and the detach really changed something
    _, plain = _ours(params, readout, x, h0, c0, targets)
    _, masked = _ours(params, readout, x, h0, c0, targets, h_scale=h_keep)
    assert not np.allclose(plain["Wh"], masked["Wh"])


def test_to_torch_lstm_gives_the_same_outputs_and_gradients():
    """`to_torch_lstm` maps the gate order (ours i, f, o, g; torch i, f, g, o) and the bias (b in
    bias_ih, zeros in bias_hh): nn.LSTM's outputs and autograd gradients equal ours (float64)."""
    rng, params, _, x, h0, c0, _ = _problem(5)
    params.b[:] = rng.uniform(-0.5, 0.5, size=params.b.shape)  # non-zero biases
    lstm = hd.to_torch_lstm(params)
    assert lstm.weight_ih_l0.dtype == torch.float64 and not lstm.bias_hh_l0.detach().any()
    G_h, G_c = rng.standard_normal(x.shape[:2] + h0.shape[1:]), rng.standard_normal(h0.shape)  # dL/dh_t, dL/dc_T
    xt, h0t, c0t = (torch.tensor(v, requires_grad=True) for v in (x, h0, c0))
    out, (_, cT) = lstm(xt, (h0t[None], c0t[None]))
    (torch.sum(torch.tensor(G_h) * out) + torch.sum(torch.tensor(G_c) * cT[0])).backward()
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    np.testing.assert_allclose(hs, out.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = hd.lstm_backward(G_h, cache, dcT=G_c)
    # torch's gradients, read back into our layout by the inverse map (both biases get db)
    np.testing.assert_allclose(lstm.bias_ih_l0.grad.numpy(), lstm.bias_hh_l0.grad.numpy(), rtol=1e-13, atol=1e-15)
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_(p.grad)
        lstm.bias_hh_l0.zero_()
    theirs = hd.from_torch_lstm(lstm)
    for name in ("Wx", "Wh", "b"):
        np.testing.assert_allclose(getattr(g, name), getattr(theirs, name), rtol=1e-10, atol=1e-13, err_msg=name)
    for name, t in (("x", xt), ("h0", h0t), ("c0", c0t)):
        np.testing.assert_allclose(getattr(g, name), t.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_torch_lstm_sums_the_two_biases_and_round_trips(dtype):
    rng, params, _, x, h0, c0, _ = _problem(6)
    params = params.astype(dtype)
    back = hd.from_torch_lstm(hd.to_torch_lstm(params))
    for name in ("Wx", "Wh", "b"):
        np.testing.assert_array_equal(getattr(back, name), getattr(params, name))
        assert getattr(back, name).dtype == dtype
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(params.input_size, params.hidden_size).double()  # two non-zero biases
    ours = hd.from_torch_lstm(lstm)
    with torch.no_grad():
        out, _ = lstm(torch.tensor(x), (torch.tensor(h0)[None], torch.tensor(c0)[None]))
    hs, _ = hd.lstm_forward(ours, x, h0, c0)
    np.testing.assert_allclose(hs, out.numpy(), rtol=1e-12, atol=1e-14)


def test_from_torch_lstm_rejects_what_it_cannot_map():
    with pytest.raises(ValueError, match="num_layers=2"):
        hd.from_torch_lstm(torch.nn.LSTM(2, 3, num_layers=2))
    with pytest.raises(TypeError, match="module must be a torch.nn.LSTM, got GRU"):
        hd.from_torch_lstm(torch.nn.GRU(2, 3))
    with pytest.raises(TypeError, match="params must be LSTMParams"):
        hd.to_torch_lstm({"Wx": 1})
