"""The framework benchmark's gradient check at a tiny size: TensorFlow's graph-mode cell and Keras
LSTM, and JAX's jit over lax.scan, give hdetach-np's loss and gradients (gate order mapped, the
h-detach mask applied the same way). Skipped when TensorFlow or JAX is not installed."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import hdetach_np as hd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (the frameworks extra)")
keras = pytest.importorskip("keras", reason="Keras is not installed (comes with TensorFlow)")
jax = pytest.importorskip("jax", reason="JAX is not installed (the frameworks extra)")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import framework_steps as fs  # noqa: E402

SIZES = [dict(T=7, N=3, D=2, H=5, K=4), dict(T=9, N=2, D=1, H=4, K=3)]


def _steps(problem):
    return [fs.tf_cell_step(tf, problem), fs.tf_keras_step(tf, keras, problem)]


@pytest.mark.parametrize("size", SIZES)
def test_frameworks_match_hdetach_np_in_float64(size):
    problem = fs.make_problem(**size, dtype=np.float64, seed=4)
    mask = fs.mixed_mask(size["T"], np.random.default_rng(5), np.float64)
    with fs.jax_x64(jax):
        steps = _steps(problem) + [fs.jax_scan_step(jax, problem)]
        for step in steps:
            errors = fs.gradient_errors(step, problem, mask)
            assert max(errors.values()) < 1e-12, (step.name, errors)


def test_frameworks_match_hdetach_np_in_float32():
    size = SIZES[0]
    problem = fs.make_problem(**size, dtype=np.float32, seed=6)
    mask = fs.mixed_mask(size["T"], np.random.default_rng(7), np.float32)
    for step in _steps(problem) + [fs.jax_scan_step(jax, problem)]:
        errors = fs.gradient_errors(step, problem, mask)
        assert max(errors.values()) < 1e-5, (step.name, errors)


def test_the_check_sees_a_wrong_mask_and_a_wrong_gate_order():
    """The check can fail: the masked cell against hdetach-np without the mask, and Keras with its
    gate order left unmapped, are far off."""
    size = SIZES[0]
    problem = fs.make_problem(**size, dtype=np.float64, seed=8)
    mask = np.array([1, 1, 0, 1, 0, 1, 1], dtype=np.float64)  # detaches two steps in the middle
    _, unmasked = fs.hdetach_step(problem, uses_mask=False).run(None)
    tf_cell = fs.tf_cell_step(tf, problem)
    _, grads = tf_cell.to_numpy(tf_cell.run(mask))
    for k in ("Wx", "Wh", "b"):
        assert hd.gradcheck.rel_error(grads[k], unmasked[k]) > 1e-3, k
    keras_step = fs.tf_keras_step(tf, keras, problem)
    _, grads = keras_step.to_numpy(keras_step.run(None))
    for k in ("Wx", "Wh", "b"):
        assert hd.gradcheck.rel_error(grads[k], unmasked[k]) < 1e-12, k
        assert hd.gradcheck.rel_error(fs.to_keras_gates(grads[k]), unmasked[k]) > 1e-3, k
