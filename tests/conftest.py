import numpy as np
import pytest

import hdetach_np as hd


def make_problem(seed, T, N, D, H, dtype=np.float64):
    """A random LSTM with random non-zero biases (gates unsaturated), inputs and initial state."""
    rng = np.random.default_rng(seed)
    params = hd.init_lstm(D, H, rng, dtype=dtype)
    params.b[:] = rng.uniform(-0.5, 0.5, size=4 * H)
    x = rng.standard_normal((T, N, D)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((N, H))).astype(dtype)
    c0 = (0.5 * rng.standard_normal((N, H))).astype(dtype)
    return rng, params, x, h0, c0


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """The tests use small matrices: one BLAS thread is fastest, and much faster when the cores
    are shared with other work (threadpoolctl is in the test extra; without it, BLAS's default)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture
def problem():
    return make_problem


def pytest_report_header(config):
    """Which BLAS and kernel numpy runs: float32 results differ in their last bits between kernels."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl not installed"
    rows = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} threads={i.get('num_threads')}"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return "BLAS: " + ("; ".join(rows) or "none found")
