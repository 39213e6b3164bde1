import sys

import numpy as np
import pytest

import hdetach_np as hd


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_blas_threads_rejects_bad_counts(n):
    with pytest.raises(ValueError, match="n must be a positive integer number of threads"):
        hd.training.blas_threads(n)


def test_blas_threads_without_threadpoolctl_explains_the_environment_variable(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # makes the import fail
    with pytest.raises(ImportError, match="OPENBLAS_NUM_THREADS=2"):
        hd.training.blas_threads(2)


def test_blas_threads_limits_and_restores():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure the BLAS is loaded
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("no BLAS library visible to threadpoolctl")
    before = [i["num_threads"] for i in blas]
    with hd.training.blas_threads(1):
        inside = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        assert inside == [1] * len(inside)
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert after == before
