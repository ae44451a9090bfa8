"""``FixedProduct``: the product by one fixed matrix, prepared once for a pass of inference.

* the same bits as ``matmul_panels`` on the packed matrix, call after call,
  over generated shapes (narrow matrices whose rows are split between
  threads, wide ones packed by the threads inside the first call, rows in
  several chunks, the serial and the parallel compilation), every
  elementwise activation, float32 and float64, both twins;
* a softmax: the logits of ``matmul_panels`` and the probabilities of
  ``bias_softmax`` on them, bit for bit, whether the tiles compute it (one
  panel of columns) or ``bias_softmax`` does (wider rows);
* the first call packs the matrix, the later ones read the panels; a
  call that fails before the kernel runs leaves the packing to the next;
* another dtype, empty shapes; argument errors at construction and at call.

Runs with and without ``NUMBA_DISABLE_JIT=1`` (the shapes stay small).
"""

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
ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax"]


def operands(seed, m, k, n, dtype):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype),
            rng.standard_normal(n).astype(dtype))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@given(m=st.integers(1, 11), k=st.integers(1, 30), n=st.integers(1, 40), seed=rng_seeds(), dtype=float_dtypes(),
       activation=st.sampled_from(ACTIVATIONS), use_bias=st.booleans(),
       chunk_bytes=st.sampled_from([1, 100, matmul_fast.CHUNK_BYTES]),
       parallel_from=st.sampled_from([0, matmul_fast.PARALLEL_FROM_MACS]))
def test_every_call_gives_the_bits_of_matmul_panels(twin, m, k, n, seed, dtype, activation, use_bias, chunk_bytes,
                                                    parallel_from):
    a, w, bias = operands(seed, m, k, n, dtype)
    bias = bias if use_bias else None
    later = np.random.default_rng(seed + 1).standard_normal((m + 3, k)).astype(dtype)
    w_p = twin.pack_panels(w)

    def expected(x):
        if activation != "softmax":
            return twin.matmul_panels(x, w_p, n, bias, activation), None
        logits = twin.matmul_panels(x, w_p, n, bias)
        return twin.bias_softmax(logits.copy(), None), logits

    with module_value(matmul_fast, "CHUNK_BYTES", chunk_bytes), \
            module_value(matmul_fast, "PARALLEL_FROM_MACS", parallel_from):
        product = twin.FixedProduct(w, bias, activation)
        for x in (a, later):
            y, logits = expected(x)
            np.testing.assert_array_equal(product(x), y)
            if logits is None:
                assert product.logits is None
            else:
                np.testing.assert_array_equal(product.logits, logits)
                assert product.logits.shape == (len(x), n) and product.logits.dtype == dtype
    np.testing.assert_array_equal(product.w_p, w_p)  # packed by the first call, every panel
    assert product(a).dtype == dtype and product(a).shape == (m, n)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_later_calls_read_the_panels_not_w(twin):
    """The first call packs ``w``; changing ``w`` afterwards (which a pass never does) shows what is read."""
    a, w, bias = operands(3, 5, 7, 20, np.float32)
    product = twin.FixedProduct(w, bias, "relu")
    first = product(a)
    w[...] = 0
    np.testing.assert_array_equal(product(a), first)
    np.testing.assert_array_equal(first, twin.matmul_panels(a, product.w_p, 20, bias, "relu"))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_a_failed_call_leaves_the_packing_to_the_next(twin):
    a, w, bias = operands(4, 6, 5, 20, np.float32)
    product = twin.FixedProduct(w, bias)
    with pytest.raises(ValueError, match=r"expects a of shape \(m, 5\), got \(6, 4\)"):
        product(a[:, :4])
    np.testing.assert_array_equal(product(a), twin.matmul_panels(a, twin.pack_panels(w), 20, bias))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_another_dtype_and_empty_shapes(twin):
    a, w, bias = operands(5, 4, 6, 3, np.float32)
    wide = a.astype(np.float64)
    out = twin.FixedProduct(w, bias, "tanh")(wide)  # NumPy's product, float64 as a @ w
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np.tanh(wide @ w + bias), rtol=1e-6)
    softmax = twin.FixedProduct(w, bias, "softmax")
    np.testing.assert_allclose(softmax(wide), twin.bias_softmax(wide @ w + bias, None), rtol=1e-6)
    np.testing.assert_allclose(softmax.logits, wide @ w + bias, rtol=1e-6)
    assert softmax.logits.dtype == np.float64
    assert twin.FixedProduct(w, bias)(a[:0]).shape == softmax(a[:0]).shape == (0, 3)
    empty = twin.FixedProduct(np.ones((0, 3), np.float32), bias, "relu")(np.ones((2, 0), np.float32))
    np.testing.assert_array_equal(empty, np.maximum(np.tile(bias, (2, 1)), 0))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_arguments_are_checked(twin):
    w = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"2-D float32 or float64 array.*int64"):
        twin.FixedProduct(np.ones((3, 4), np.int64))
    with pytest.raises(ValueError, match=r"2-D float32 or float64 array.*\(12,\)"):
        twin.FixedProduct(w.reshape(-1))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\).*\(3,\)"):
        twin.FixedProduct(w, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        twin.FixedProduct(w, None, "swish")
    product = twin.FixedProduct(w)
    with pytest.raises(ValueError, match=r"expects a of shape \(m, 3\), got \(3,\)"):
        product(np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"expects a of shape \(m, 3\)"):
        product([[1.0, 2.0, 3.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_softmax_of_the_tiles_handles_what_bias_softmax_handles(dtype):
    """Logits in the thousands (exp would overflow without the largest one taken off), NaN and infinity."""
    a, w, bias = operands(6, 9, 12, 10, dtype)
    a[1] *= 1e3
    a[3, 5] = np.nan
    a[5, 2] = np.inf
    a[7, 0] = -np.inf
    product = fast.FixedProduct(w, bias, "softmax")
    with np.errstate(invalid="ignore"):  # the NumPy twin of the simd operations, without the JIT
        y = product(a)
        logits = fast.matmul_panels(a, fast.pack_panels(w), 10, bias)
        np.testing.assert_array_equal(product.logits, logits)
        np.testing.assert_array_equal(y, fast.bias_softmax(logits, None))
    assert np.isfinite(y[[0, 1, 2, 4, 6, 8]]).all() and np.isnan(y[3]).all()
