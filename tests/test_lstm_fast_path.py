"""The fast sequence functions against the step functions, and the dtype of the float32 path.

Both directions run the same per-step maths, but the matmuls are laid out differently, so the
two paths are compared to a stated number of ulps, never bit for bit:
- forward: the sequence writes a_t = [x_t, 1, h_{t-1}] [Wx; b; Wh] into the cache's unit-major
  (transposed) block, the step function into a fresh C-ordered array. BLAS may pick another kernel
  for each (it does under OPENBLAS_CORETYPE=Haswell on an AVX-512 machine), and then sums the
  D+1+H products in another order: a few float32 ulps apart;
- backward: the sequence computes [dh_{t-1}, dx_t] = da_t [Wh; Wx]^T in one matmul where the step
  function takes da_t Wh^T and da_t Wx^T separately, and [dWx; db; dWh] = [x_t, 1, h_{t-1}]^T da_t
  in one matmul where the step function takes x^T da, h^T da and da.sum(axis=0) separately.
Bit-for-bit equality is asserted only where one call computes both results (see
test_cell_backward_workspace_aliasing_and_streams_give_the_same_bits).
"""

import dataclasses

import numpy as np
import pytest
from conftest import make_problem

import hdetach_np as hd
from hdetach_np import lstm as lstm_module

SIZES = [(1, 1, 1, 3), (5, 3, 2, 4), (7, 1, 1, 8), (4, 6, 1, 16)]  # (T, N, D, H)


def _assert_ulps(name, got, want, ulps):
    """|got - want| <= ulps * eps * max|want|: agreement to rounding error of the larger entries."""
    eps = np.finfo(want.dtype).eps
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    assert err <= ulps * eps * scale, f"{name}: max diff {err:.3g} is more than {ulps} ulps of {scale:.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T,N,D,H", SIZES)
def test_forward_matches_the_step_function_to_a_few_ulps(dtype, T, N, D, H):
    _, params, x, h0, c0 = make_problem(10, T, N, D, H, dtype=dtype)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    hs_steps, cs_steps, caches = hd.lstm_forward_steps(params, x, h0, c0)
    c_last = cs_steps[-1]
    ulps = 16 * T  # rounding differences of one matmul, carried through T steps
    _assert_ulps("hs", hs, hs_steps, ulps)
    _assert_ulps("c_T", cache.c[-1], c_last, ulps)
    for t, sc in enumerate(caches):
        _assert_ulps(f"gates[{t}]", cache.gates[t], sc.gates, ulps)
        _assert_ulps(f"tanh_c[{t}]", cache.tanh_c[t], sc.tanh_c, ulps)
        _assert_ulps(f"c[{t + 1}]", cache.c[t + 1], caches[t + 1].c_prev if t + 1 < T else c_last, ulps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T,N,D,H", SIZES)
def test_backward_matches_the_step_function_to_a_few_ulps(dtype, T, N, D, H):
    rng, params, x, h0, c0 = make_problem(11, T, N, D, H, dtype=dtype)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    _, _, caches = hd.lstm_forward_steps(params, x, h0, c0)
    dhs = rng.standard_normal((T, N, H)).astype(dtype)
    h_scale = (rng.random(T) < 0.6).astype(dtype)  # an h-detach mask (detached steps skip Wh)
    c_scale = rng.uniform(0.5, 1.0, size=(T, N)).astype(dtype)
    g = hd.lstm_backward(dhs, cache, h_scale=h_scale, c_scale=c_scale)
    want, _ = hd.lstm_backward_steps(dhs, caches, h_scale=h_scale, c_scale=c_scale)
    for name in ("Wx", "Wh", "b", "x", "h0", "c0"):
        _assert_ulps(name, getattr(g, name), getattr(want, name), ulps=16 * T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_step_cell_gradient_is_bitwise_given_the_same_gates(dtype):
    """With T = 1 no matmul is on the backward path of dL/dc_0: given the same forward values
    (the step function re-run on the sequence's own gates), both give the same bits."""
    rng, params, x, h0, c0 = make_problem(12, 1, 4, 2, 6, dtype=dtype)
    _, cache = hd.lstm_forward(params, x, h0, c0)
    _, _, caches = hd.lstm_forward_steps(params, x, h0, c0)
    dhs = rng.standard_normal((1, 4, 6)).astype(dtype)
    dcT = rng.standard_normal((4, 6)).astype(dtype)
    g = hd.lstm_backward(dhs, cache, dcT=dcT)
    same_forward = dataclasses.replace(
        caches[0], gates=np.ascontiguousarray(cache.gates[0]), tanh_c=np.ascontiguousarray(cache.tanh_c[0])
    )
    sg = hd.lstm_step_backward(dhs[0], dcT, same_forward)
    np.testing.assert_array_equal(g.c0, sg.c_prev)
    # and with the step function's own forward pass, to a few ulps (another matmul kernel)
    _assert_ulps("c0", g.c0, hd.lstm_step_backward(dhs[0], dcT, caches[0]).c_prev, 16)


def test_cell_backward_workspace_aliasing_and_streams_give_the_same_bits():
    """`lstm_cell_backward` with scratch arrays and dc_prev = dc equals the allocating call, never
    modifies its inputs, and two streams stacked in one call give each stream's own result."""
    rng, params, x, h0, c0 = make_problem(13, 1, 5, 3, 7)
    _, _, sc = hd.lstm_step_forward(x[0], h0, c0, params)
    dh, dc = rng.standard_normal((2, 5, 7))
    inputs = (dh, dc, sc.gates, sc.tanh_c, sc.c_prev)
    snapshot = [a.copy() for a in inputs]
    da1 = np.empty((5, 28))
    dc_prev1 = hd.lstm_cell_backward(dh, dc, sc.gates, sc.tanh_c, sc.c_prev, da1)
    for before, after in zip(snapshot, inputs):
        np.testing.assert_array_equal(before, after)
    da2, dc_buf = np.empty((5, 28)), dc.copy()
    work = lstm_module.cell_work(5, 7, np.float64)
    dc_prev2 = hd.lstm_cell_backward(dh, dc_buf, sc.gates, sc.tanh_c, sc.c_prev, da2, dc_buf, work)
    assert dc_prev2 is dc_buf
    np.testing.assert_array_equal(da1, da2)
    np.testing.assert_array_equal(dc_prev1, dc_prev2)
    # a second stream next to the first: one call, each stream's own bits
    dh2, dc2 = rng.standard_normal((2, 5, 7))
    da_both = np.empty((2, 5, 28))
    dc_both = hd.lstm_cell_backward(np.stack([dh, dh2]), np.stack([dc, dc2]), sc.gates, sc.tanh_c, sc.c_prev, da_both)
    da3 = np.empty((5, 28))
    dc_prev3 = hd.lstm_cell_backward(dh2, dc2, sc.gates, sc.tanh_c, sc.c_prev, da3)
    np.testing.assert_array_equal(da_both[0], da1)
    np.testing.assert_array_equal(da_both[1], da3)
    np.testing.assert_array_equal(dc_both, np.stack([dc_prev1, dc_prev3]))


def test_float32_path_never_upcasts():
    """Every array the float32 path returns is float32, also with float64 masks or scale lists."""
    T, N, D, H, K = 6, 3, 1, 4, 5
    rng, params, x, h0, c0 = make_problem(15, T, N, D, H, dtype=np.float32)
    readout = hd.init_linear(H, K, rng, dtype=np.float32)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    logits, lcache = hd.linear_forward(readout, hs)
    targets = rng.integers(0, K, size=(T, N))
    _, dlogits = hd.softmax_cross_entropy(logits, targets, steps="last")
    _, dpred = hd.mse_loss(logits, np.zeros_like(logits))
    lg = hd.linear_backward(dlogits, lcache)
    mask64 = hd.sample_h_detach_mask(T, 0.5, rng, dtype=np.float64)
    g = hd.lstm_backward(lg.h, cache, h_scale=mask64, c_scale=[1.0] * T, dhT=h0, dcT=c0)
    _, _, sc = hd.lstm_step_forward(x[0], h0, c0, params)
    sg = hd.lstm_step_backward(h0, c0, sc, h_scale=0.5, c_scale=np.float64(0.25))
    arrays = [hs, logits, dlogits, dpred, lg.V, lg.d, lg.h, sc.gates, sc.tanh_c]
    arrays += [getattr(cache, f) for f in ("h", "c", "gates", "tanh_c")]
    arrays += [getattr(g, f) for f in ("Wx", "Wh", "b", "x", "h0", "c0")]
    arrays += [getattr(sg, f) for f in ("Wx", "Wh", "b", "x", "h_prev", "c_prev", "a")]
    assert [a.dtype for a in arrays] == [np.dtype(np.float32)] * len(arrays)


def test_each_step_of_the_cache_is_one_contiguous_block():
    """The unit-major layout: every step's array, and every gate block in it, is contiguous."""
    _, params, x, h0, c0 = make_problem(16, 5, 3, 2, 4, dtype=np.float32)
    hs, cache = hd.lstm_forward(params, x, h0, c0)
    H = 4
    for t in range(5):
        for a in (hs[t], cache.h[t], cache.c[t], cache.tanh_c[t], cache.gates[t]):
            assert a.T.flags.c_contiguous
        for sl in hd.gate_slices(H).values():
            assert cache.gates[t][:, sl].T.flags.c_contiguous


def test_readout_on_unit_major_hs_equals_readout_on_a_contiguous_copy():
    T, N, D, H, K = 5, 3, 2, 4, 6
    rng, params, x, h0, c0 = make_problem(17, T, N, D, H)
    readout = hd.init_linear(H, K, rng, dtype=np.float64)
    hs, _ = hd.lstm_forward(params, x, h0, c0)
    assert not hs.flags.c_contiguous
    y1, c1 = hd.linear_forward(readout, hs)
    y2, c2 = hd.linear_forward(readout, np.ascontiguousarray(hs))
    np.testing.assert_allclose(y1, y2, rtol=1e-14, atol=1e-15)
    dy = rng.standard_normal((T, N, K))
    g1, g2 = hd.linear_backward(dy, c1), hd.linear_backward(dy, c2)
    for name in ("V", "d", "h"):
        np.testing.assert_allclose(getattr(g1, name), getattr(g2, name), rtol=1e-13, atol=1e-15, err_msg=name)


def test_forward_reusing_a_cache_gives_the_same_bits_in_the_same_memory():
    T, N, D, H = 6, 3, 2, 4
    rng, params, x, h0, c0 = make_problem(18, T, N, D, H, dtype=np.float32)
    hs_ref, ref = hd.lstm_forward(params, x, h0, c0)
    hs_ref, ref_arrays = hs_ref.copy(), {f: getattr(ref, f).copy() for f in ("h", "c", "gates", "tanh_c")}
    _, old = hd.lstm_forward(params, rng.standard_normal((T, N, D)).astype(np.float32))
    hs, cache = hd.lstm_forward(params, x, h0, c0, reuse=old)
    np.testing.assert_array_equal(hs, hs_ref)
    for f, want in ref_arrays.items():
        np.testing.assert_array_equal(getattr(cache, f), want)
        assert np.shares_memory(getattr(cache, f), getattr(old, f))
    # carrying the state over from the cache being reused (truncated BPTT) also works
    _, cont = hd.lstm_forward(params, x, h0=cache.h[-1], c0=cache.c[-1], reuse=cache)
    _, fresh = hd.lstm_forward(params, x, h0=ref_arrays["h"][-1], c0=ref_arrays["c"][-1])
    np.testing.assert_array_equal(cont.h, fresh.h)


def test_forward_rejects_a_cache_of_other_sizes_for_reuse():
    rng, params, x, h0, c0 = make_problem(19, 4, 3, 2, 5, dtype=np.float32)
    _, other = hd.lstm_forward(params, x[:3])
    with pytest.raises(ValueError, match="reuse must be a cache of lstm_forward for T=4, N=3, H=5"):
        hd.lstm_forward(params, x, reuse=other)
    _, cache64 = hd.lstm_forward(params.astype(np.float64), x.astype(np.float64))
    with pytest.raises(ValueError, match="dtype float64"):
        hd.lstm_forward(params, x, reuse=cache64)
    with pytest.raises(TypeError, match="reuse must be the LSTMCache"):
        hd.lstm_forward(params, x, reuse=object())
