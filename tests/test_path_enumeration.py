"""Brute force: enumerate every backward path through the computational graph of a short LSTM,
multiply its local Jacobians, and sort the paths by whether they use an h-edge h_{t-1} -> a_t.
The sums must reproduce the split computed by `gradient_paths` (float64)."""

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd


def _graph(cache, n, dhs, dcT):
    """Edges of example n's graph: {node: [(next_node, local Jacobian d next / d node, is_h_edge)]}.

    Nodes: ("a", t) the pre-activations of step t, ("c", t), ("h", t), and "L" the loss
    L = sum_t <dhs[t], h_t> + <dcT, c_T>. Local Jacobians come from the LSTM equations:
    c = f c_prev + i g, h = o tanh(c), a = x Wx + h_prev Wh + b, i, f, o = sigmoid, g = tanh.
    """
    T = cache.x.shape[0]
    H = cache.params.hidden_size
    Wh = cache.params.Wh
    edges = {}
    for t in range(T):
        i, f, o, g = (cache.gates[t, n, k * H:(k + 1) * H] for k in range(4))
        tau, c_prev = cache.tanh_c[t, n], cache.c[t, n]
        dc_da = np.hstack([np.diag(g * i * (1 - i)), np.diag(c_prev * f * (1 - f)), np.zeros((H, H)),
                           np.diag(i * (1 - g * g))])  # (H, 4H)
        dh_da = np.hstack([np.zeros((H, 2 * H)), np.diag(tau * o * (1 - o)), np.zeros((H, H))])  # through o only
        edges[("a", t)] = [(("c", t), dc_da, False), (("h", t), dh_da, False)]
        edges[("c", t)] = [(("h", t), np.diag(o * (1 - tau * tau)), False)]
        edges[("h", t)] = [("L", dhs[t, n][None, :], False)]
        if t + 1 < T:
            f_next = cache.gates[t + 1, n, H:2 * H]
            edges[("c", t)].append((("c", t + 1), np.diag(f_next), False))  # the cell edge
            edges[("h", t)].append((("a", t + 1), Wh.T, True))  # the h-edge
    edges[("c", T - 1)].append(("L", dcT[n][None, :], False))
    return edges


def _paths(edges, node):
    """Every path from `node` to "L" as (Jacobian dL/dnode along the path, number of h-edges)."""
    if node == "L":
        return [(None, 0)]
    out = []
    for nxt, J, is_h in edges[node]:
        for J_rest, k in _paths(edges, nxt):
            out.append((J if J_rest is None else J_rest @ J, k + is_h))
    return out


@pytest.mark.parametrize("T", [2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_enumerated_paths_match_the_split(T, seed):
    N, D, H = 2, 2, 3
    rng, params, x, h0, c0 = make_problem(seed, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    dhs, dcT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))
    grads = {q: {p: np.zeros_like(getattr(params, p)) for p in ("Wx", "Wh", "b")} for q in ("total", "cell", "h")}
    n_paths = {"cell": 0, "h": 0}
    for n in range(N):
        edges = _graph(cache, n, dhs, dcT)
        for t in range(T):
            da = {"total": 0, "cell": 0, "h": 0}
            for J, k in _paths(edges, ("a", t)):  # J: (1, 4H)
                q = "cell" if k == 0 else "h"
                da[q] = da[q] + J[0]
                da["total"] = da["total"] + J[0]
                n_paths[q] += 1
            for q in da:  # a_t = x_t Wx + h_{t-1} Wh + b
                grads[q]["Wx"] += np.outer(cache.x[t, n], da[q])
                grads[q]["Wh"] += np.outer(cache.h[t, n], da[q])
                grads[q]["b"] += da[q]
    pg = hd.gradient_paths(dhs, cache, dcT=dcT)
    reverse = hd.lstm_backward(dhs, cache, dcT=dcT)
    for p in ("Wx", "Wh", "b"):
        np.testing.assert_allclose(grads["total"][p], getattr(reverse, p), rtol=1e-11, atol=1e-13)
        for q in ("total", "cell", "h"):
            np.testing.assert_allclose(grads[q][p], getattr(getattr(pg, q), p), rtol=1e-11, atol=1e-13)
    assert n_paths["cell"] > 0 and n_paths["h"] > 0
    # every path uses at most one h-edge per step boundary: T - 1 h-edges at most
    assert max(k for n in range(N) for t in range(T) for _, k in _paths(_graph(cache, n, dhs, dcT), ("a", t))) == T - 1


def test_path_counts_of_a_two_step_lstm():
    """From a_1 (the first step) of a 2-step LSTM with loss at both steps and on c_2, the paths are:
    through h_1 to L (2: via o_1 or via c_1), through c_1 -> c_2 (to h_2 and to c_2's own term: 2),
    and through the h-edge h_1 -> a_2 (2 ways into h_1, times 3 ways from a_2 to L): 6 with an h-edge."""
    T, N, D, H = 2, 1, 1, 2
    rng, params, x, h0, c0 = make_problem(3, T, N, D, H)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    edges = _graph(cache, 0, rng.standard_normal((T, N, H)), rng.standard_normal((N, H)))
    ks = [k for _, k in _paths(edges, ("a", 0))]
    assert ks.count(0) == 4 and ks.count(1) == 6
