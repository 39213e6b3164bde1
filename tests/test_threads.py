import numpy as np
import pytest
import threadpoolctl

import hdetach_np as hd
from hdetach_np.training.threads import describe_threads, parse_threads


def blas_counts():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.parametrize("n", [-1, 1.5, True, "2", None])
def test_blas_threads_rejects_bad_counts(n):
    with pytest.raises(ValueError, match="threads must be 'auto' or an integer >= 0"):
        hd.training.blas_threads(n)


def test_auto_is_the_measured_policy():
    assert hd.training.resolve_threads("auto") == hd.training.AUTO_THREADS == 1
    assert hd.training.resolve_threads(3) == 3 and hd.training.resolve_threads(0) == 0


@pytest.mark.parametrize("threads, expected", [("auto", [1]), (1, [1]), (2, [2])])
def test_blas_threads_limits_and_restores(threads, expected):
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure the BLAS is loaded
    before = blas_counts()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    with hd.training.blas_threads(threads):
        assert blas_counts() == expected * len(before)
        assert describe_threads(threads).startswith(f"{threads} ({expected[0]} BLAS thread")
    assert blas_counts() == before


def test_zero_threads_leaves_blas_as_it_is():
    before = blas_counts()
    with hd.training.blas_threads(0):
        assert blas_counts() == before
    assert blas_counts() == before


@pytest.mark.parametrize("text, value", [("auto", "auto"), ("0", 0), ("2", 2)])
def test_parse_threads(text, value):
    assert parse_threads(text) == value


@pytest.mark.parametrize("text", ["-1", "two", "1.5", ""])
def test_parse_threads_rejects(text):
    with pytest.raises(ValueError, match="--threads must be 'auto' or an integer >= 0"):
        parse_threads(text)
