"""nnscratch.kernels.workspace: reusable scratch buffers and the one-BLAS-thread switch."""

import threading

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba calls: loaded before "before" is read)
from threadpoolctl import threadpool_info, threadpool_limits

from nnscratch.kernels import workspace


def blas_threads():
    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_one_blas_thread_sets_every_blas_to_one_and_restores_it():
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with workspace.one_blas_thread():
            inside = blas_threads()
        assert blas_threads() == before
    assert set(inside) >= set(before) and set(inside.values()) == {1}  # SciPy's BLAS is loaded too


def test_one_blas_thread_is_shared_by_threads_until_the_last_leaves():
    """Two threads inside at once: the first to leave must not restore the count under the other.

    The main thread sets limits first (``threadpool_limits``), which makes it
    threadpoolctl's "controlling" thread; the worker thread must still get its
    one BLAS thread.
    """
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        first_in, first_out, seen = threading.Event(), threading.Event(), {}

        def first():
            with workspace.one_blas_thread():
                seen["inside the worker"] = blas_threads()
                first_in.set()
                first_out.wait(10)

        thread = threading.Thread(target=first)
        thread.start()
        first_in.wait(10)
        with workspace.one_blas_thread():
            first_out.set()
            thread.join(10)
            seen["after the worker left"] = blas_threads()
        assert set(seen["inside the worker"].values()) == {1}
        assert set(seen["after the worker left"].values()) == {1}
        assert blas_threads() == before


def test_scratch_buffers_grow_and_are_reused():
    small = workspace.scratch("test_buffer", (3, 4), np.float32)
    assert small.shape == (3, 4) and small.dtype == np.float32
    base = workspace.scratch_space.test_buffer
    again = workspace.scratch("test_buffer", (2, 5), np.float64)   # 80 bytes: the 48-byte buffer grows
    assert workspace.scratch_space.test_buffer is not base and again.shape == (2, 5)
    grown = workspace.scratch_space.test_buffer
    workspace.scratch("test_buffer", (4,), np.float32)              # fits: the same buffer
    assert workspace.scratch_space.test_buffer is grown
