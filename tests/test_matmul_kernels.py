"""The product by a matrix packed in panels (``pack_panels``, ``matmul_panels``): twins agree and are right.

* property-based agreement with ``a @ w`` over generated shapes (row counts
  that are not a multiple of the 6-row tile, column counts that are not a
  multiple of the panel, rows cut into several chunks, the parallel and the
  serial compilation), float32 and float64;
* exact results where the arithmetic is exact (small integers), so that a
  wrong index cannot hide inside a tolerance;
* the same bits on any number of threads; dtype fallback, empty shapes,
  argument errors; ``fixed_product_pays``;
* the bias and activation applied as the tiles are stored: the bits of the
  product followed by ``bias_activation``;
* the packed layout itself, the same from both twins; narrow products whose
  rows are split between threads: the same bits;
* a row's bits do not depend on the batch it sits in (the rows left over
  below the last whole tile included), nor a column's on the columns beside
  it (the padded last panel included).

Runs with and without ``NUMBA_DISABLE_JIT=1`` (the shapes stay small).
"""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnscratch.kernels import fast, matmul_fast, reference

try:
    from tests.kernel_helpers import module_value
    from tests.strategies import float_dtypes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from kernel_helpers import module_value
    from strategies import float_dtypes, rng_seeds

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def operands(seed, m, k, n, dtype):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


def assert_product_close(out, a, w):
    """``out`` is ``a @ w`` up to the rounding of a sum of ``k`` terms."""
    exact = a.astype(np.float64) @ w.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(w).astype(np.float64)  # bounds each sum's rounding
    assert out.shape == exact.shape and out.dtype == a.dtype
    assert np.all(np.abs(out - exact) <= RTOL[a.dtype.type] * (scale + 1e-30)), np.abs(out - exact).max()


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@given(m=st.integers(1, 9), k=st.integers(1, 40), n=st.integers(1, 13), seed=rng_seeds(), dtype=float_dtypes(),
       chunk_bytes=st.sampled_from([1, 100, matmul_fast.CHUNK_BYTES]),
       parallel_from=st.sampled_from([0, matmul_fast.PARALLEL_FROM_MACS]))
def test_matmul_panels_is_the_product(twin, m, k, n, seed, dtype, chunk_bytes, parallel_from):
    a, w = operands(seed, m, k, n, dtype)
    with module_value(matmul_fast, "CHUNK_BYTES", chunk_bytes), \
            module_value(matmul_fast, "PARALLEL_FROM_MACS", parallel_from):
        out = twin.matmul_panels(a, twin.pack_panels(w), n)
    assert_product_close(out, a, w)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@given(k=st.integers(1, 30), n=st.integers(1, 40), seed=rng_seeds(), dtype=float_dtypes())
def test_pack_panels_puts_each_number_in_its_place(twin, k, n, seed, dtype):
    w = operands(seed, 1, k, n, dtype)[1]
    w_p = twin.pack_panels(w)
    width = twin.panel_width(dtype)
    assert width == 64 // np.dtype(dtype).itemsize
    assert w_p.shape == (-(-n // width), k, width) and w_p.dtype == dtype and w_p.flags.c_contiguous
    for q, p, c in [(0, 0, 0), ((n - 1) // width, k - 1, (n - 1) % width), ((n - 1) // width, k // 2, 0)]:
        assert w_p[q, p, c] == w[p, q * width + c]
    padded = np.concatenate([w, np.zeros((k, w_p.shape[0] * width - n), dtype)], axis=1)
    np.testing.assert_array_equal(w_p, padded.reshape(k, -1, width).transpose(1, 0, 2))  # zeros past n
    np.testing.assert_array_equal(w_p, reference.pack_panels(w))
    w_p[0, 0, 0] += 1  # a copy, never a view of the kernel
    assert w[0, 0] != w_p[0, 0, 0]


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_other_dtypes_are_packed_as_float64(twin):
    w_p = twin.pack_panels(np.arange(6).reshape(2, 3))
    assert w_p.dtype == np.float64 and w_p.shape == (1, 2, 8)
    np.testing.assert_array_equal(w_p[0, :, :3], [[0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (2, 3, 4), (7, 33, 9), (12, 64, 16), (5, 17, 6)])
def test_exact_where_the_arithmetic_is_exact(m, k, n, dtype):
    """Small integers: every product and sum is exact, so any order gives the same bits."""
    rng = np.random.default_rng(m * 100 + k + n)
    a = rng.integers(-8, 9, (m, k)).astype(dtype)
    w = rng.integers(-8, 9, (k, n)).astype(dtype)
    for chunk_bytes in (1, matmul_fast.CHUNK_BYTES):
        with module_value(matmul_fast, "CHUNK_BYTES", chunk_bytes), \
                module_value(matmul_fast, "PARALLEL_FROM_MACS", 0):
            np.testing.assert_array_equal(fast.matmul_panels(a, fast.pack_panels(w), n), a @ w)


def test_the_same_bits_on_any_number_of_threads():
    a, w = operands(5, 37, 300, 70, np.float32)
    w_p = fast.pack_panels(w)
    threads = numba.get_num_threads()
    try:
        results = []
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            with module_value(matmul_fast, "PARALLEL_FROM_MACS", 0):
                results.append(fast.matmul_panels(a, w_p, 70))
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(results[0], results[-1])


def test_strided_rows_are_read_correctly():
    a, w = operands(3, 10, 12, 6, np.float32)
    view = a[::2, 1:]  # neither C-contiguous nor starting at the buffer's start
    assert_product_close(fast.matmul_panels(view, fast.pack_panels(w[1:]), 6), view, w[1:])


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_mixed_dtypes_follow_numpy(twin):
    a, w = operands(1, 4, 5, 3, np.float32)
    out = twin.matmul_panels(a, twin.pack_panels(w.astype(np.float64)), 3)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, a @ w.astype(np.float64), rtol=1e-12)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("m, k, n", [(0, 3, 4), (3, 0, 4), (3, 4, 0)])
def test_empty_shapes(twin, m, k, n):
    a, w = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
    out = twin.matmul_panels(a, twin.pack_panels(w), n)
    assert out.shape == (m, n) and out.dtype == np.float32
    assert not out.any()


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_bad_shapes_are_rejected(twin):
    w_p = twin.pack_panels(np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"\(m, k\) and w_p .* from pack_panels, with n = 4; got \(2, 3\)"):
        twin.matmul_panels(np.ones((2, 3)), w_p, 4)
    with pytest.raises(ValueError, match="w_p"):
        twin.matmul_panels(np.ones(5), w_p, 4)
    with pytest.raises(ValueError, match="with n = 9"):  # 9 columns need 2 panels of 8 float64
        twin.matmul_panels(np.ones((2, 5)), w_p, 9)
    with pytest.raises(ValueError, match="w_p"):  # not packed: a plain (k, n) matrix
        twin.matmul_panels(np.ones((2, 5)), np.ones((5, 4)), 4)
    with pytest.raises(ValueError, match="w_p"):  # float32 panels are 16 wide
        twin.matmul_panels(np.ones((2, 5), np.float32), w_p.astype(np.float32), 4)
    with pytest.raises(ValueError, match="2-D"):
        twin.pack_panels(np.ones(3))


def test_reference_never_prefers_its_own_product():
    assert reference.fixed_product_pays(784, 512) is False


def test_fast_prefers_its_product_where_it_was_measured(monkeypatch):
    monkeypatch.setattr(matmul_fast, "HOST_AVX2_ONLY", True)
    assert fast.fixed_product_pays(784, 512)
    assert fast.fixed_product_pays(4096, 10)
    assert not fast.fixed_product_pays(0, 10)
    assert not fast.fixed_product_pays(10, 0)
    monkeypatch.setattr(matmul_fast, "HOST_AVX2_ONLY", False)
    assert not fast.fixed_product_pays(784, 512)  # AVX-512 or another processor: not measured, BLAS kept


def test_the_host_check_reads_llvms_feature_list(monkeypatch):
    import llvmlite.binding as llvm

    for features, expected in [({"avx2": True, "fma": True, "avx512f": False}, True),
                               ({"avx2": True, "fma": True, "avx512f": True}, False),
                               ({"avx2": False, "fma": False}, False),  # older x86 or ARM (no such keys)
                               ({"neon": True}, False)]:
        monkeypatch.setattr(llvm, "get_host_cpu_features", lambda features=features: features)
        assert matmul_fast._host_is_avx2_only() is expected, features


ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh"]


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@given(m=st.integers(1, 9), k=st.integers(1, 40), n=st.integers(1, 13), seed=rng_seeds(), dtype=float_dtypes(),
       activation=st.sampled_from(ACTIVATIONS), with_bias=st.booleans(),
       parallel_from=st.sampled_from([0, matmul_fast.PARALLEL_FROM_MACS]))
def test_bias_and_activation_give_the_bits_of_separate_steps(twin, m, k, n, seed, dtype, activation, with_bias,
                                                             parallel_from):
    a, w = operands(seed, m, k, n, dtype)
    bias = np.random.default_rng(seed + 1).standard_normal(n).astype(dtype) if with_bias else None
    w_p = twin.pack_panels(w)
    with module_value(matmul_fast, "PARALLEL_FROM_MACS", parallel_from):
        fused = twin.matmul_panels(a, w_p, n, bias, activation)
        separate = twin.bias_activation(twin.matmul_panels(a, w_p, n), bias, activation)
    np.testing.assert_array_equal(fused, separate)
    if activation == "relu":
        assert (fused >= 0).all()
    exact = reference.bias_activation(a.astype(np.float64) @ w.astype(np.float64), bias, activation)
    np.testing.assert_allclose(fused, exact, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-4 * np.sqrt(k) if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_relu_keeps_nan_as_np_maximum_does(twin):
    a, w = operands(2, 4, 6, 5, np.float32)
    a[1, 2] = np.nan
    out = twin.matmul_panels(a, twin.pack_panels(w), 5, np.zeros(5, np.float32), "relu")
    assert np.isnan(out[1]).all() and not np.isnan(np.delete(out, 1, axis=0)).any()


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_a_bias_of_another_dtype_or_a_list_is_cast(twin):
    a, w = operands(4, 6, 7, 3, np.float32)
    w_p = twin.pack_panels(w)
    expected = twin.matmul_panels(a, w_p, 3, np.array([0.5, -1, 2], np.float32))
    for bias in ([0.5, -1, 2], np.array([0.5, -1, 2], np.float64), np.array([9, 0.5, 9, -1, 9, 2])[1::2]):
        out = twin.matmul_panels(a, w_p, 3, bias)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_a_bad_bias_or_activation_is_rejected(twin):
    a, w_p = np.ones((2, 3), np.float32), twin.pack_panels(np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\).*\(3,\)"):
        twin.matmul_panels(a, w_p, 4, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="activation 'softmax'"):
        twin.matmul_panels(a, w_p, 4, None, "softmax")  # needs whole rows: not an elementwise activation


@given(m=st.integers(1, 40), k=st.integers(1, 30), n=st.integers(1, 40), seed=rng_seeds())
def test_rows_split_between_threads_give_the_same_bits(m, k, n, seed):
    """A narrow ``w`` (fewer than ``NARROW_PANELS`` panels) splits the batch's rows, too."""
    a, w = operands(seed, m, k, n, np.float32)
    w_p = fast.pack_panels(w)
    with module_value(matmul_fast, "PARALLEL_FROM_MACS", 0):
        split = fast.matmul_panels(a, w_p, n)
        with module_value(matmul_fast, "NARROW_PANELS", 1):
            whole = fast.matmul_panels(a, w_p, n)
    np.testing.assert_array_equal(split, whole)
    assert_product_close(split, a, w)


@given(m=st.integers(1, 24), k=st.integers(1, 300), n=st.integers(1, 13), seed=rng_seeds(), dtype=float_dtypes(),
       cut=st.integers(0, 24), parallel_from=st.sampled_from([0, matmul_fast.PARALLEL_FROM_MACS]))
def test_a_rows_bits_do_not_depend_on_the_batch_it_sits_in(m, k, n, seed, dtype, cut, parallel_from):
    """Every row takes the same instructions: any of a tile's 6 rows, or a row left over below the last tile.

    So ``predict`` gives the same bits for a sample whatever the batch size
    (and where it falls in its batch). Long rows (``k`` up to 300), where
    another order of the sum would show.
    """
    a, w = operands(seed, m, k, n, dtype)
    w_p = fast.pack_panels(w)
    cut = min(cut, m)
    with module_value(matmul_fast, "PARALLEL_FROM_MACS", parallel_from):
        whole = fast.matmul_panels(a, w_p, n)
        parts = [fast.matmul_panels(a[:cut], w_p, n), fast.matmul_panels(a[cut:], w_p, n)]
        one_by_one = [fast.matmul_panels(a[i:i + 1], w_p, n) for i in range(m)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(np.concatenate(one_by_one), whole)


@given(m=st.integers(1, 9), k=st.integers(1, 300), n=st.integers(1, 40), seed=rng_seeds(), dtype=float_dtypes(),
       start=st.integers(0, 39), width=st.integers(1, 40))
def test_a_columns_bits_do_not_depend_on_the_columns_beside_it(m, k, n, seed, dtype, start, width):
    """A column gives the same bits in any panel and at any place in it, the padded last panel included."""
    a, w = operands(seed, m, k, n, dtype)
    start = min(start, n - 1)
    stop = min(start + width, n)
    whole = fast.matmul_panels(a, fast.pack_panels(w), n)
    part = fast.matmul_panels(a, fast.pack_panels(w[:, start:stop]), stop - start)
    np.testing.assert_array_equal(part, whole[:, start:stop])


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@given(m=st.integers(1, 9), k=st.integers(1, 40), n=st.integers(1, 40), seed=rng_seeds(), dtype=float_dtypes(),
       chunk_bytes=st.sampled_from([1, 100, matmul_fast.CHUNK_BYTES]),
       parallel_from=st.sampled_from([0, matmul_fast.PARALLEL_FROM_MACS]))
def test_packing_w_inside_the_product_gives_its_panels_and_the_same_bits(twin, m, k, n, seed, dtype, chunk_bytes,
                                                                          parallel_from):
    a, w = operands(seed, m, k, n, dtype)
    bias = np.random.default_rng(seed).standard_normal(n).astype(dtype)
    w_p = np.full(twin.pack_panels(w).shape, np.nan, dtype)
    with module_value(matmul_fast, "CHUNK_BYTES", chunk_bytes), \
            module_value(matmul_fast, "PARALLEL_FROM_MACS", parallel_from):
        out = twin.matmul_panels(a, w_p, n, bias, "relu", w=w)
        np.testing.assert_array_equal(w_p, twin.pack_panels(w))  # every panel packed, whichever thread used it
        np.testing.assert_array_equal(out, twin.matmul_panels(a, twin.pack_panels(w), n, bias, "relu"))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_a_w_that_cannot_be_packed_is_rejected(twin):
    a, w = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    w_p = twin.pack_panels(w)
    with pytest.raises(ValueError, match=r"w must be a float32 array of shape \(3, 4\).*float64"):
        twin.matmul_panels(a, w_p, 4, w=w.astype(np.float64))
    with pytest.raises(ValueError, match=r"shape \(3, 4\).*\(4, 3\)"):
        twin.matmul_panels(a, w_p, 4, w=w.T)
    frozen = w_p.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writable C-contiguous"):
        twin.matmul_panels(a, frozen, 4, w=w)
    strided = np.empty((1, 3, 32), np.float32)[:, :, ::2]
    with pytest.raises(ValueError, match="writable C-contiguous"):
        twin.matmul_panels(a, strided, 4, w=w)


@given(m=st.integers(1, 14), k=st.integers(1, 20), n=st.integers(1, 40), seed=rng_seeds(), dtype=float_dtypes(),
       with_bias=st.booleans())
def test_panels_product_on_the_calling_thread_is_matmul_panels(m, k, n, seed, dtype, with_bias):
    """The serial building block of the recurrent kernels: ``a @ w + bias`` with matmul_panels's bits."""
    a, w = operands(seed, m, k, n, dtype)
    bias = np.random.default_rng(seed + 1).standard_normal(n).astype(dtype) if with_bias else None
    w_p = fast.pack_panels(w)
    padded = np.zeros(w_p.shape[0] * w_p.shape[2], dtype)
    if with_bias:
        padded[:n] = bias
    out = np.full((m, n), np.nan, dtype)
    matmul_fast.panels_product(a, w_p, out, padded, dtype(0))
    np.testing.assert_array_equal(out, fast.matmul_panels(a, w_p, n, bias))
    if with_bias:   # a @ w + bias is the product of [a, 1] by [w; bias]
        a, w = np.hstack([a, np.ones((m, 1), dtype)]), np.vstack([w, bias])
    assert_product_close(out, a, w)
