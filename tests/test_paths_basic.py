import numpy as np

import hdetach_np as hd

from conftest import make_problem


def test_cell_plus_h_is_total_and_cell_is_p1():
    T, N, D, H = 6, 3, 2, 4
    rng, params, x, h0, c0 = make_problem(0, T, N, D, H)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    dhs = rng.standard_normal((T, N, H))
    pg = hd.gradient_paths(dhs, cache)
    cut = hd.lstm_backward(dhs, cache, h_scale=np.zeros(T))
    for f in ("Wx", "Wh", "b"):
        t, c, h = getattr(pg.total, f), getattr(pg.cell, f), getattr(pg.h, f)
        assert np.linalg.norm(c + h - t) <= 1e-10 * np.linalg.norm(t)
        np.testing.assert_array_equal(c, getattr(cut, f))
    n = pg.norms()
    assert set(n) == {"total", "cell", "h"} and n["h"]["Wh.f"] > 0
