"""nnscratch.kernels.workspace: reusable scratch buffers, the one-BLAS-thread switch, small work serial."""

import threading

import numba
import numpy as np
import pytest
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba calls: loaded before "before" is read)
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

from nnscratch.kernels import elementwise_fast, fast, workspace


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


@pytest.fixture
def two_numba_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("the machine has one core: Numba has a single thread")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


JIT = not numba.config.DISABLE_JIT


def test_for_size_runs_small_work_serial_and_large_work_parallel(two_numba_threads):
    kernel = elementwise_fast._relu_backward
    small = workspace.for_size(kernel, workspace.SERIAL_BELOW - 1)
    large = workspace.for_size(kernel, workspace.SERIAL_BELOW)
    assert large is kernel
    if not JIT:  # plain Python functions: nothing to choose between
        assert small is kernel
        return
    assert small is workspace.serial_twin(kernel) and small is not kernel
    assert kernel.targetoptions.get("parallel") and not small.targetoptions.get("parallel")
    numba.set_num_threads(1)   # this thread asked for one Numba thread: serial whatever the size
    assert workspace.for_size(kernel, 10 * workspace.SERIAL_BELOW) is small


def test_the_serial_twin_is_cached_under_a_name_of_its_own():
    kernel = elementwise_fast._bias_relu
    if not JIT:  # NUMBA_DISABLE_JIT: no compilation to twin, the function runs as it is
        assert workspace.for_size(kernel, 0) is kernel
        return
    twin = workspace.serial_twin(kernel)
    assert workspace.serial_twin(kernel) is twin   # compiled once
    # Numba names cache files after the qualified name: the same name would let
    # the two compilations overwrite each other's entries
    assert twin.py_func.__qualname__ == kernel.py_func.__qualname__ + "_serial"
    assert twin.py_func.__code__ is kernel.py_func.__code__
    assert twin._cache._cache_file._index_name != kernel._cache._cache_file._index_name  # (Numba internals)
    z, bias = np.array([[-1.0, 2.0]], np.float32), np.array([0.5, -3.0], np.float32)
    twin(z, bias)
    assert z.tolist() == [[0.0, 0.0]]


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _reciprocals(x, out):
    for i in numba.prange(x.shape[0]):
        out[i] = 1.0 / x[i]


def test_the_serial_twin_keeps_the_kernels_other_options():
    """``error_model="numpy"``: 1 / 0 is inf, where Numba's default (Python's) raises ZeroDivisionError."""
    x, out = np.array([2.0, 0.0]), np.zeros(2)
    with np.errstate(divide="ignore"):  # NUMBA_DISABLE_JIT=1: NumPy's scalars divide, and would warn
        workspace.for_size(_reciprocals, 0)(x, out)  # below SERIAL_BELOW: the serial twin (the kernel without JIT)
    assert out.tolist() == [0.5, np.inf]


def test_small_kernels_give_the_same_bits_on_one_thread_or_two(two_numba_threads, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 64)).astype(np.float32)
    gamma, beta = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    images = rng.standard_normal((4, 6, 6, 16)).astype(np.float32)

    def run():
        y, xhat, _, _, inv_std = fast.batchnorm_forward_train(x, gamma, beta, 1e-3, relu=True)
        dx, dgamma, dbeta = fast.batchnorm_backward(x, xhat, gamma, inv_std, beta, relu=True)
        pooled, argmax = fast.maxpool2d_forward(images, 2, 2, 2, 2, 0, 0, 3, 3)
        losses, grad = fast.softmax_cross_entropy(x[:, :10], np.eye(10, dtype=np.float32)[np.arange(300) % 10])
        unpooled = fast.maxpool2d_backward(pooled * 3, argmax, images.shape, 2, 2, 2, 2, 0, 0)
        dropped, mask = fast.dropout_forward(x, np.linspace(0, 1, x.size, dtype=np.float32).reshape(x.shape), 0.3)
        return [y, dx, dgamma, dbeta, pooled, argmax, losses, grad, unpooled, dropped, mask,
                fast.batchnorm_inference(x, gamma, beta, relu=True),
                fast.bias_activation(x.copy(), beta, "tanh"), fast.activation_backward(x, y, "relu")]

    serial = run()
    monkeypatch.setattr(workspace, "SERIAL_BELOW", 0)   # everything on two threads
    parallel = run()
    assert all(a.tobytes() == b.tobytes() for a, b in zip(serial, parallel))


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 300), bytes_per_image=st.integers(1, 5000), budget=st.integers(1, 50_000))
def test_image_blocks_cover_the_batch_evenly_in_an_even_number_of_blocks(n, bytes_per_image, budget):
    blocks, largest, workers = workspace.image_blocks(n, bytes_per_image, budget)
    bounds = [workspace.block_bounds(b, blocks, n) for b in range(blocks)]
    assert [start for start, _ in bounds] == [0] + [stop for _, stop in bounds[:-1]]  # contiguous, in order
    assert bounds[-1][1] == n
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) == largest and max(sizes) - min(sizes) <= 1  # as even as a count allows
    assert blocks == 1 or (blocks % 2 == 0 or blocks == n)
    assert blocks <= max(n, 1)
    most = max(1, budget // bytes_per_image)  # images a block may hold (one at least)
    assert largest <= most
    if n:
        assert 1 <= workers <= min(blocks, numba.get_num_threads())


def test_image_blocks_do_not_depend_on_the_thread_count(two_numba_threads):
    """The blocks decide the partial sums, so they must not follow the threads (docs/kernels.md, rule 3)."""
    cases = [(64, 24336), (64, 20736), (100, 147456), (64, 200704), (128, 28224), (7, 1000)]
    with_two = [workspace.image_blocks(n, b, 1 << 20)[:2] for n, b in cases]
    numba.set_num_threads(1)
    try:
        with_one = [workspace.image_blocks(n, b, 1 << 20) for n, b in cases]
    finally:
        numba.set_num_threads(2)
    assert [r[:2] for r in with_one] == with_two
    assert {r[2] for r in with_one} == {1}
    # the simple CNN's first and third layers at batch 64: two blocks of 32 (were 43 + 21 and 50 + 14)
    assert with_two[0] == (2, 32) and with_two[1] == (2, 32)
    assert with_two[2] == (16, 7)  # 100 images, at most 7 a block: 16 blocks of 6 or 7 (were 14 of 7 and one of 2)
