"""Kernels: the Numba twins agree with the NumPy reference, and both are right.

* property-based agreement of every kernel, float32 (rtol 1e-5) and float64
  (rtol 1e-12), with absolute tolerances scaled by the size of the terms summed;
* mathematical checks against independent formulas: im2col/col2im adjointness,
  max-pool tie rule and brute-force backward, batch-norm statistics against
  ``np.mean``/``np.var`` and its gradient against central differences, stable
  softmax cross-entropy for huge logits;
* dtype preservation, in-place semantics, argument errors;
* backend selection (``set_backend`` and ``NNSCRATCH_BACKEND``).

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numba

from nnscratch import kernels
from nnscratch.kernels import fast, reference, workspace

try:
    from tests.kernel_helpers import conv_blocks_of
    from tests.strategies import (conv_geometry, float_arrays, normal_arrays, output_size,
                                  rng_seeds, same_padding)
except ImportError:  # tests/ itself is on sys.path
    from kernel_helpers import conv_blocks_of
    from strategies import (conv_geometry, float_arrays, normal_arrays, output_size,
                            rng_seeds, same_padding)

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh"]
JIT_DISABLED = bool(numba.config.DISABLE_JIT)

few = settings(max_examples=30, deadline=None)
many = settings(max_examples=50, deadline=None)

dtypes = st.sampled_from(DTYPES)


def assert_close(actual, desired, scale=None, factor=1.0):
    """``actual`` equals ``desired`` within rounding of ``desired``'s dtype.

    The tolerance is ``RTOL * factor`` relative to each value plus the same
    relative to ``scale`` (default: the largest ``|desired|``), so that values
    that are sums of cancelling terms are judged against the terms' size.
    """
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.dtype == desired.dtype, (actual.dtype, desired.dtype)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    rtol = RTOL[desired.dtype] * factor
    if scale is None:
        scale = np.abs(desired).max(initial=0.0)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * float(scale))


def random(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ---------------------------------------------------------------------------
# the shared strategies themselves
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("in_size, k, s, out, pads", [
    (28, 3, 1, 28, (1, 1)),
    (28, 2, 2, 14, (0, 0)),
    (5, 2, 2, 3, (0, 1)),      # TF: the extra padding goes after
    (7, 4, 1, 7, (1, 2)),
    (2, 5, 1, 2, (2, 2)),      # window larger than the input
    (1, 1, 3, 1, (0, 0)),
])
def test_same_padding_follows_tensorflow(in_size, k, s, out, pads):
    assert output_size(in_size, k, s, "same") == out
    assert same_padding(in_size, k, s) == pads


def test_valid_output_size():
    assert output_size(28, 3, 1, "valid") == 26
    assert output_size(28, 2, 2, "valid") == 14
    assert output_size(7, 3, 2, "valid") == 3
    assert output_size(5, 2, 2, "valid") == 2
    with pytest.raises(ValueError):
        output_size(5, 2, 2, "full")


@many
@given(geom=conv_geometry())
def test_conv_geometry_is_valid(geom):
    assert geom.out_h >= 1 and geom.out_w >= 1
    # the last window starts inside the (top/left-padded) image
    assert (geom.out_h - 1) * geom.sh - geom.pad_top < geom.h
    assert (geom.out_w - 1) * geom.sw - geom.pad_left < geom.w


@few
@given(x=float_arrays(st.tuples(st.integers(1, 5), st.integers(1, 7)), np.float32))
def test_float_arrays_have_no_ties(x):
    assert x.dtype == np.float32
    assert np.unique(x).size == x.size
    assert np.all(np.isfinite(x))


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------

@many
@given(geom=conv_geometry(), seed=rng_seeds(), dtype=dtypes)
def test_im2col_twins_agree(geom, seed, dtype):
    x = random(np.random.default_rng(seed), geom.x_shape, dtype)
    expected = reference.im2col(x, *geom.window_args)
    cols = fast.im2col(x, *geom.window_args)
    assert cols.shape == geom.cols_shape
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, expected)  # a pure copy: exact


@many
@given(geom=conv_geometry(max_size=12, channels=1, kernel=3), seed=rng_seeds(), dtype=dtypes)
def test_im2col_of_3x3_windows_over_one_channel(geom, seed, dtype):
    """The fast twin unfolds 3x3 windows of grayscale images by scalar copies: the same matrix, padding too."""
    x = random(np.random.default_rng(seed), geom.x_shape, dtype)
    expected = reference.im2col(x, *geom.window_args)
    assert fast.im2col(x, *geom.window_args).tobytes() == expected.tobytes()
    kept = np.full(geom.cols_shape, np.nan, dtype=dtype)   # the training path unfolds into the kept matrix
    kernel = random(np.random.default_rng(seed + 1), (3, 3, 1, 2), dtype)
    fast.conv2d_forward(x, kernel, *geom.window_args, cols_out=kept)
    assert kept.tobytes() == expected.tobytes()


@many
@given(geom=conv_geometry(), seed=rng_seeds(), dtype=dtypes)
def test_col2im_twins_agree(geom, seed, dtype):
    cols = random(np.random.default_rng(seed), geom.cols_shape, dtype)
    expected = reference.col2im(cols, geom.x_shape, *geom.window_args)
    dx = fast.col2im(cols, geom.x_shape, *geom.window_args)
    # each cell sums at most kh*kw entries of cols
    assert_close(dx, expected, scale=geom.kh * geom.kw * np.abs(cols).max())


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@few
@given(geom=conv_geometry(), seed=rng_seeds())
def test_im2col_col2im_are_adjoint(twin, geom, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape)
    g = rng.standard_normal(geom.cols_shape)
    lhs = np.sum(twin.im2col(x, *geom.window_args) * g)
    rhs = np.sum(x * twin.col2im(g, geom.x_shape, *geom.window_args))
    scale = np.sum(np.abs(twin.im2col(x, *geom.window_args) * g))
    assert abs(lhs - rhs) <= 1e-12 * scale


# --- convolution: im2col + one matrix product, block by block in the fast twin

BLOCK_SIZES = pytest.mark.parametrize("block_bytes", [64, 4 << 20], ids=["one-image-blocks", "default-blocks"])


@BLOCK_SIZES
@few
@given(geom=conv_geometry(), filters=st.integers(1, 4), seed=rng_seeds(), dtype=dtypes)
def test_conv2d_forward_twins_agree(block_bytes, geom, filters, seed, dtype):
    rng = np.random.default_rng(seed)
    x = random(rng, geom.x_shape, dtype)
    kernel = random(rng, (geom.kh, geom.kw, geom.c, filters), dtype)
    expected = reference.conv2d_forward(x, kernel, *geom.window_args)
    with conv_blocks_of(block_bytes):
        z = fast.conv2d_forward(x, kernel, *geom.window_args)
    assert z.shape == (geom.cols_shape[0], filters)
    # each output sums kh*kw*c products
    assert_close(z, expected, scale=geom.cols_shape[1] * np.abs(x).max() * np.abs(kernel).max())


@BLOCK_SIZES
@few
@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@given(geom=conv_geometry(), filters=st.integers(1, 4), seed=rng_seeds(), dtype=dtypes,
       activation=st.sampled_from(["linear", "relu", "sigmoid", "tanh"]), with_bias=st.booleans())
def test_conv2d_forward_with_bias_and_activation_is_bias_activation_of_z(block_bytes, twin, geom, filters, seed,
                                                                         dtype, activation, with_bias):
    """The bias and activation fused into the (blocked) product: bit-identical to a separate pass."""
    rng = np.random.default_rng(seed)
    x = random(rng, geom.x_shape, dtype)
    kernel = random(rng, (geom.kh, geom.kw, geom.c, filters), dtype)
    bias = random(rng, (filters,), dtype) if with_bias else None
    with conv_blocks_of(block_bytes):
        expected = twin.bias_activation(twin.conv2d_forward(x, kernel, *geom.window_args), bias, activation)
        y = twin.conv2d_forward(x, kernel, *geom.window_args, bias=bias, activation=activation)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_conv2d_forward_rejects_unknown_activation(twin):
    x = np.zeros((1, 3, 3, 1))
    with pytest.raises(ValueError, match="unknown elementwise activation"):
        twin.conv2d_forward(x, np.zeros((1, 1, 1, 2)), 1, 1, 1, 1, 0, 0, 3, 3, activation="softmax")


@BLOCK_SIZES
@few
@given(geom=conv_geometry(), filters=st.integers(1, 4), seed=rng_seeds(), dtype=dtypes)
def test_conv2d_backward_twins_agree(block_bytes, geom, filters, seed, dtype):
    rng = np.random.default_rng(seed)
    x = random(rng, geom.x_shape, dtype)
    kernel = random(rng, (geom.kh, geom.kw, geom.c, filters), dtype)
    grad_z = random(rng, (geom.cols_shape[0], filters), dtype)
    dk_ref, dx_ref = reference.conv2d_backward(x, grad_z, kernel, *geom.window_args)
    with conv_blocks_of(block_bytes):
        dk, dx = fast.conv2d_backward(x, grad_z, kernel, *geom.window_args)
        dk_only, none = fast.conv2d_backward(x, grad_z, kernel, *geom.window_args, input_gradient=False)
    assert dk.shape == kernel.shape and dx.shape == x.shape
    assert_close(dk, dk_ref, scale=geom.cols_shape[0] * np.abs(x).max() * np.abs(grad_z).max())
    assert_close(dx, dx_ref, scale=geom.kh * geom.kw * filters * np.abs(kernel).max() * np.abs(grad_z).max())
    assert none is None
    np.testing.assert_array_equal(dk_only, dk)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@few
@given(geom=conv_geometry(), seed=rng_seeds())
def test_conv2d_is_im2col_times_kernel_and_its_adjoint(twin, geom, seed):
    """Forward is ``im2col(x) @ K``; backward's gradients satisfy the adjoint identities (float64)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape)
    kernel = rng.standard_normal((geom.kh, geom.kw, geom.c, 3))
    z = twin.conv2d_forward(x, kernel, *geom.window_args)
    np.testing.assert_allclose(z, reference.im2col(x, *geom.window_args) @ kernel.reshape(-1, 3), rtol=1e-12,
                               atol=1e-12 * geom.cols_shape[1])
    g = rng.standard_normal(z.shape)
    dk, dx = twin.conv2d_backward(x, g, kernel, *geom.window_args)
    # <g, conv(x, K)> is linear in x and in K: its gradients are dx and dK
    np.testing.assert_allclose(np.sum(g * z), np.sum(dk * kernel), rtol=1e-10)
    np.testing.assert_allclose(np.sum(g * z), np.sum(dx * x), rtol=1e-10)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_im2col_by_hand(twin):
    # one 3x3 single-channel image, 2x2 window, stride 1, "same" padding
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    top, _ = same_padding(3, 2, 1)  # (0, 1): padding after
    cols = twin.im2col(x, 2, 2, 1, 1, top, top, 3, 3)
    assert cols.shape == (9, 4)
    np.testing.assert_array_equal(cols[0], [1, 2, 4, 5])
    np.testing.assert_array_equal(cols[2], [3, 0, 6, 0])  # right column is padding
    np.testing.assert_array_equal(cols[8], [9, 0, 0, 0])
    # col2im of all ones counts how many windows see each pixel
    counts = twin.col2im(np.ones_like(cols), x.shape, 2, 2, 1, 1, 0, 0, 3, 3)
    np.testing.assert_array_equal(counts[0, :, :, 0], [[1, 2, 2], [2, 4, 4], [2, 4, 4]])


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------

def pool_geometry(**kw):
    kw.setdefault("max_kernel", 3)
    return conv_geometry(**kw)


def brute_force_maxpool_backward(grad_y, argmax, geom):
    dx = np.zeros(geom.x_shape, dtype=grad_y.dtype)
    n, out_h, out_w, c = grad_y.shape
    for b in range(n):
        for oy in range(out_h):
            for ox in range(out_w):
                for ch in range(c):
                    i, j = divmod(int(argmax[b, oy, ox, ch]), geom.kw)
                    r = oy * geom.sh - geom.pad_top + i
                    col = ox * geom.sw - geom.pad_left + j
                    if 0 <= r < geom.h and 0 <= col < geom.w:
                        dx[b, r, col, ch] += grad_y[b, oy, ox, ch]
    return dx


def brute_force_maxpool(x, geom):
    y = np.empty(geom.y_shape, x.dtype)
    for b, oy, ox, ch in np.ndindex(*geom.y_shape):
        best = -np.inf
        for i in range(geom.kh):
            for j in range(geom.kw):
                r = oy * geom.sh - geom.pad_top + i
                col = ox * geom.sw - geom.pad_left + j
                if 0 <= r < geom.h and 0 <= col < geom.w:
                    best = max(best, x[b, r, col, ch])
        y[b, oy, ox, ch] = best
    return y


@many
@given(data=st.data(), geom=pool_geometry(), dtype=dtypes)
def test_maxpool_forward_twins_agree(data, geom, dtype):
    x = data.draw(float_arrays(geom.x_shape, dtype))  # no ties: argmax is unique
    y_ref, a_ref = reference.maxpool2d_forward(x, *geom.window_args)
    y, a = fast.maxpool2d_forward(x, *geom.window_args)
    assert y.dtype == dtype and a.dtype == np.int32
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(a, a_ref)
    np.testing.assert_array_equal(y, brute_force_maxpool(x, geom))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_maxpool_tie_rule_first_cell_wins(twin):
    # one 2x2 window per channel; channel 0: all equal; channel 1: cells 1 and 3
    # share the maximum; channel 2: cells 2 and 3 share it
    x = np.zeros((1, 2, 2, 3))
    x[0, :, :, 1] = [[0, 5], [1, 5]]
    x[0, :, :, 2] = [[-1, -2], [7, 7]]
    y, argmax = twin.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 1, 1)
    np.testing.assert_array_equal(y[0, 0, 0], [0, 5, 7])
    np.testing.assert_array_equal(argmax[0, 0, 0], [0, 1, 2])
    # ... and only that first cell gets the gradient
    dx = twin.maxpool2d_backward(np.ones_like(y), argmax, x.shape, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 0], [0, 0]])
    np.testing.assert_array_equal(dx[0, :, :, 1], [[0, 1], [0, 0]])
    np.testing.assert_array_equal(dx[0, :, :, 2], [[0, 0], [1, 0]])


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_maxpool_padding_is_never_chosen(twin):
    # "same" 3x3 pooling of an all-negative image: padding (-inf) never wins
    x = -1.0 - np.arange(16.0).reshape(1, 4, 4, 1)
    y, argmax = twin.maxpool2d_forward(x, 3, 3, 1, 1, 1, 1, 4, 4)
    assert y[0, 0, 0, 0] == -1.0 and argmax[0, 0, 0, 0] == 4  # centre cell (1, 1)
    assert np.all(y < 0) and np.all(np.isfinite(y))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_maxpool_nan_propagates_like_argmax(twin):
    x = np.array([1.0, np.nan, 3.0, np.nan]).reshape(1, 2, 2, 1)
    y, argmax = twin.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 1, 1)
    assert np.isnan(y[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 1


@many
@given(data=st.data(), geom=pool_geometry(), dtype=dtypes)
def test_maxpool_backward_twins_agree_with_brute_force(data, geom, dtype):
    x = data.draw(float_arrays(geom.x_shape, dtype))
    grad_y = data.draw(normal_arrays(geom.y_shape, dtype))
    _, argmax = reference.maxpool2d_forward(x, *geom.window_args)
    args = (grad_y, argmax, geom.x_shape) + geom.window_args[:6]
    expected = brute_force_maxpool_backward(grad_y, argmax, geom)
    scale = geom.kh * geom.kw * np.abs(grad_y).max()  # overlapping windows add up
    for twin in TWINS:
        dx = twin.maxpool2d_backward(*args)
        assert dx.dtype == dtype
        assert_close(dx, expected, scale=scale)


@pytest.mark.parametrize("size, stride, pad, hw", [(2, 2, 0, 26), (2, 2, 0, 7), (3, 3, 1, 8), (2, 3, 0, 9)])
def test_maxpool_backward_of_disjoint_windows_is_bit_identical(size, stride, pad, hw):
    """Windows that do not overlap take a write-only path in the Numba twin: the same bits, signed zeros too."""
    rng = np.random.default_rng(size * 100 + stride * 10 + hw)
    x = rng.standard_normal((3, hw, hw + 1, 5)).astype(np.float32)
    out = ((hw + 2 * pad - size) // stride + 1, (hw + 1 + 2 * pad - size) // stride + 1)
    geometry = (size, size, stride, stride, pad, pad)
    _, argmax = reference.maxpool2d_forward(x, *geometry, *out)
    grad_y = rng.standard_normal(argmax.shape).astype(np.float32)
    grad_y[0, 0, 0, :3] = -0.0
    ours = fast.maxpool2d_backward(grad_y, argmax, x.shape, *geometry)
    assert ours.tobytes() == reference.maxpool2d_backward(grad_y, argmax, x.shape, *geometry).tobytes()


@pytest.mark.parametrize("h, w, out", [(8, 8, (4, 4)), (7, 9, (3, 4)), (7, 9, (4, 5))], ids=["covered", "valid", "same"])
def test_maxpool_backward_of_tiling_windows_writes_every_cell(h, w, out, monkeypatch):
    """2x2 / 2 windows tile dx from its corner, so the Numba twin starts from np.empty, not zeros:
    every cell must still be written, the rows and columns past the last window ("valid") too."""
    rng = np.random.default_rng(h * w)
    x = rng.standard_normal((2, h, w, 3)).astype(np.float32)
    _, argmax = reference.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, *out)
    grad_y = rng.standard_normal(argmax.shape).astype(np.float32)
    expected = reference.maxpool2d_backward(grad_y, argmax, x.shape, 2, 2, 2, 2, 0, 0)
    real_empty = np.empty

    def poisoned_empty(shape, dtype=float, order="C", **kwargs):  # memory as dirty as a reused heap block
        a = real_empty(shape, dtype, order, **kwargs)
        a.fill(np.nan if np.issubdtype(np.dtype(dtype), np.floating) else 7)
        return a

    monkeypatch.setattr(np, "empty", poisoned_empty)
    ours = fast.maxpool2d_backward(grad_y, argmax, x.shape, 2, 2, 2, 2, 0, 0)
    monkeypatch.undo()
    assert ours.tobytes() == expected.tobytes()


# ---------------------------------------------------------------------------
# bias + activation
# ---------------------------------------------------------------------------

z_shapes = st.one_of(
    st.tuples(st.integers(1, 9), st.integers(1, 7)),
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 5)),
)


@many
@given(z=normal_arrays(z_shapes, scale=3.0), seed=rng_seeds(), dtype=dtypes,
       activation=st.sampled_from(ACTIVATIONS), with_bias=st.booleans())
def test_bias_activation_twins_agree(z, seed, dtype, activation, with_bias):
    z = z.astype(dtype)
    bias = random(np.random.default_rng(seed), z.shape[-1:], dtype) if with_bias else None
    expected = reference.bias_activation(z.copy(), bias, activation)
    work = z.copy()
    out = fast.bias_activation(work, bias, activation)
    assert out is work  # in place, returned
    assert out.dtype == dtype
    assert_close(out, expected, factor=4)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_bias_activation_in_place_and_values(twin, activation):
    z = np.array([[-2.0, 0.0, 3.0], [1.0, -1.0, 0.5]])
    bias = np.array([1.0, -0.5, 0.0])
    pre = z + bias
    expected = {"linear": pre, "relu": np.maximum(pre, 0),
                "sigmoid": 1 / (1 + np.exp(-pre)), "tanh": np.tanh(pre)}[activation]
    out = twin.bias_activation(z, bias, activation)
    assert out is z
    np.testing.assert_allclose(z, expected, rtol=1e-15)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_bias_activation_strided_view_in_place(twin):
    base = np.arange(24.0).reshape(4, 6) - 12
    view = base[:, ::2]  # not contiguous
    expected = np.maximum(view + 1, 0)
    out = twin.bias_activation(view, np.ones(3), "relu")
    np.testing.assert_array_equal(base[:, ::2], expected)
    np.testing.assert_array_equal(base[:, 1::2], np.arange(24.0).reshape(4, 6)[:, 1::2] - 12)
    assert np.shares_memory(out, base)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_sigmoid_extreme_values(twin):
    for dtype in DTYPES:
        z = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
        y = twin.bias_activation(z, None, "sigmoid")
        assert np.all(np.isfinite(y)) and y.dtype == dtype
        assert y[0, 0] == 0 and y[0, 2] == 0.5 and y[0, 4] == 1


@many
@given(z=normal_arrays(z_shapes, scale=2.0), seed=rng_seeds(), dtype=dtypes,
       activation=st.sampled_from(ACTIVATIONS))
def test_activation_backward_twins_agree(z, seed, dtype, activation):
    y = reference.bias_activation(z.astype(dtype), None, activation)
    grad_y = random(np.random.default_rng(seed), y.shape, dtype)
    expected = reference.activation_backward(grad_y, y, activation)
    dz = fast.activation_backward(grad_y, y, activation)
    assert dz.dtype == dtype
    assert_close(dz, expected, factor=4)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_activation_backward_values(twin):
    y = np.array([0.0, 0.25, 0.5, 0.9])
    g = np.array([1.0, 2.0, -1.0, 4.0])
    np.testing.assert_array_equal(twin.activation_backward(g, y, "relu"), [0, 2, -1, 4])
    np.testing.assert_allclose(twin.activation_backward(g, y, "sigmoid"), g * y * (1 - y))
    np.testing.assert_allclose(twin.activation_backward(g, y, "tanh"), g * (1 - y * y))
    assert twin.activation_backward(g, y, "linear") is g


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_unknown_activation_is_rejected(twin):
    with pytest.raises(ValueError):
        twin.bias_activation(np.zeros((2, 2)), None, "swish")
    with pytest.raises(ValueError):
        twin.activation_backward(np.zeros((2, 2)), np.zeros((2, 2)), "softmax")


# ---------------------------------------------------------------------------
# batch normalisation
# ---------------------------------------------------------------------------

bn_shapes = st.tuples(st.integers(1, 64), st.integers(1, 8))


@many
@given(shape=bn_shapes, seed=rng_seeds(), dtype=dtypes, offset=st.floats(-3, 3),
       eps=st.sampled_from([1e-3, 1e-5]))
def test_batchnorm_forward_twins_agree(shape, seed, dtype, offset, eps):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    gamma = random(rng, shape[1:], dtype)
    beta = random(rng, shape[1:], dtype)
    expected = reference.batchnorm_forward_train(x, gamma, beta, eps)
    result = fast.batchnorm_forward_train(x, gamma, beta, eps)
    names = ["y", "xhat", "mean", "var", "inv_std"]
    # float32 reference sums rows one by one in float32: error ~ M * eps
    factor = 1.0 if dtype == np.float64 else 4.0
    for name, got, want in zip(names, result, expected):
        assert got.dtype == dtype, name
        scale = None
        if name in ("y", "xhat"):  # (x - mean) cancels: judge against |x| / std
            scale = (np.abs(x).max() + 1) * np.abs(expected[4]).max() * (np.abs(gamma).max() + 1)
        elif name == "mean":
            scale = np.abs(x).max()
        assert_close(got, want, scale=scale, factor=factor * 10)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@few
@given(shape=bn_shapes, seed=rng_seeds(), offset=st.floats(-100, 100))
def test_batchnorm_forward_statistics(twin, shape, seed, offset):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) + offset
    gamma = rng.standard_normal(shape[1])
    beta = rng.standard_normal(shape[1])
    y, xhat, mean, var, inv_std = twin.batchnorm_forward_train(x, gamma, beta, 1e-3)
    np.testing.assert_allclose(mean, np.mean(x, axis=0), rtol=1e-12, atol=1e-12 * abs(offset))
    np.testing.assert_allclose(var, np.var(x, axis=0), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(np.var(x, axis=0) + 1e-3), rtol=1e-10)
    np.testing.assert_allclose(xhat, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(y, gamma * xhat + beta, rtol=1e-12, atol=1e-12)


def test_batchnorm_statistics_are_accurate_in_float32_over_many_chunks():
    # 3000 x 128 float32 spans many chunks of rows; a large offset makes naive
    # one-pass sums (E[x^2] - E[x]^2) useless. Truth: float64 two-pass.
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((3000, 128)) * 0.01 + 1000.0).astype(np.float32)
    ones = np.ones(128, np.float32)
    _, _, mean, var, _ = fast.batchnorm_forward_train(x, ones, 0 * ones, 1e-3)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(0), rtol=1e-7)
    np.testing.assert_allclose(var, x64.var(0), rtol=1e-6)


@many
@given(shape=bn_shapes, seed=rng_seeds(), dtype=dtypes)
def test_batchnorm_backward_twins_agree(shape, seed, dtype):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    gamma = random(rng, shape[1:], dtype)
    _, xhat, _, _, inv_std = reference.batchnorm_forward_train(x, gamma, 0 * gamma, 1e-3)
    grad_y = random(rng, shape, dtype)
    expected = reference.batchnorm_backward(grad_y, xhat, gamma, inv_std)
    result = fast.batchnorm_backward(grad_y, xhat, gamma, inv_std)
    m = shape[0]
    g_max, x_max = np.abs(grad_y).max(), np.abs(xhat).max()
    scales = [  # the size of the terms each result sums
        np.abs(gamma * inv_std).max() * g_max * (2 + x_max ** 2),
        m * g_max * x_max,
        m * g_max,
    ]
    factor = 1.0 if dtype == np.float64 else 4.0
    for got, want, scale in zip(result, expected, scales):
        assert got.dtype == dtype
        assert_close(got, want, scale=scale, factor=factor * 10)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_batchnorm_backward_matches_central_differences(twin):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3)) * 2 + 1
    gamma = rng.standard_normal(3)
    beta = rng.standard_normal(3)
    weights = rng.standard_normal(x.shape)  # loss = sum(weights * y)

    def loss(x_, gamma_, beta_):
        return np.sum(weights * twin.batchnorm_forward_train(x_, gamma_, beta_, 1e-3)[0])

    _, xhat, _, _, inv_std = twin.batchnorm_forward_train(x, gamma, beta, 1e-3)
    dx, dgamma, dbeta = twin.batchnorm_backward(weights, xhat, gamma, inv_std)

    def numeric(f, v):
        grad = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            old = v[idx]
            v[idx] = old + 1e-6
            up = f()
            v[idx] = old - 1e-6
            down = f()
            v[idx] = old
            grad[idx] = (up - down) / 2e-6
        return grad

    np.testing.assert_allclose(dx, numeric(lambda: loss(x, gamma, beta), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dgamma, numeric(lambda: loss(x, gamma, beta), gamma), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dbeta, numeric(lambda: loss(x, gamma, beta), beta), rtol=1e-6, atol=1e-8)


@pytest.mark.skipif(JIT_DISABLED, reason="threads only exist with the JIT")
def test_batchnorm_does_not_depend_on_thread_count():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5000, 16)).astype(np.float32) + 3
    g = rng.standard_normal((5000, 16)).astype(np.float32)
    ones = np.ones(16, np.float32)
    threads = numba.get_num_threads()
    try:
        results = []
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            fwd = fast.batchnorm_forward_train(x, ones, ones, 1e-3)
            bwd = fast.batchnorm_backward(g, fwd[1], ones, fwd[4])
            results.append(fwd + bwd)
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(results[0], results[-1]):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# softmax + cross-entropy
# ---------------------------------------------------------------------------

def one_hot(rng, n, k, dtype):
    return np.eye(k, dtype=dtype)[rng.integers(0, k, n)]


@many
@given(n=st.integers(1, 12), k=st.integers(1, 10), seed=rng_seeds(), dtype=dtypes,
       scale=st.sampled_from([0.1, 3.0, 100.0]), soft=st.booleans())
def test_softmax_cross_entropy_twins_agree(n, k, seed, dtype, scale, soft):
    rng = np.random.default_rng(seed)
    logits = random(rng, (n, k), dtype, scale)
    if soft:
        labels = rng.random((n, k)).astype(dtype)
        labels /= labels.sum(axis=1, keepdims=True)
    else:
        labels = one_hot(rng, n, k, dtype)
    losses_ref, grad_ref = reference.softmax_cross_entropy(logits, labels)
    losses, grad = fast.softmax_cross_entropy(logits, labels)
    assert losses.shape == (n,) and grad.shape == (n, k)
    # log p = z - max - log(sum): judged against the size of the logits
    assert_close(losses, losses_ref, scale=4 * scale, factor=4)
    assert_close(grad, grad_ref, scale=1.0, factor=4)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_extreme_logits(twin, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [2e4, 2e4, -3e4]], dtype=dtype)
    labels = np.array([[0, 1, 0], [1, 0, 0], [1, 0, 0]], dtype=dtype)
    losses, grad = twin.softmax_cross_entropy(logits, labels)
    assert losses.dtype == dtype and grad.dtype == dtype
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(losses, [2e4, np.log(3), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(grad, [[1, -1, 0], [1 / 3 - 1, 1 / 3, 1 / 3], [-0.5, 0.5, 0]],
                               atol=1e-6)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_softmax_cross_entropy_values(twin):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((7, 4)) * 3
    labels = one_hot(rng, 7, 4, np.float64)
    losses, grad = twin.softmax_cross_entropy(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(losses, -np.log(np.sum(p * labels, axis=1)), rtol=1e-12)
    np.testing.assert_allclose(grad, p - labels, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)


# ---------------------------------------------------------------------------
# dtypes and arguments
# ---------------------------------------------------------------------------

def all_kernel_calls(dtype):
    """One call of every kernel with float arrays of ``dtype``; yields (name, outputs)."""
    rng = np.random.default_rng(0)
    x = random(rng, (2, 5, 5, 3), dtype)
    geo = (3, 3, 2, 2, 1, 1, 3, 3)
    for twin in TWINS:
        cols = twin.im2col(x, *geo)
        yield twin.__name__ + ".im2col", [cols]
        yield twin.__name__ + ".col2im", [twin.col2im(cols, x.shape, *geo)]
        y, argmax = twin.maxpool2d_forward(x, *geo)
        yield twin.__name__ + ".maxpool2d_forward", [y]
        yield twin.__name__ + ".maxpool2d_backward", [
            twin.maxpool2d_backward(y, argmax, x.shape, *geo[:6])]
        z = random(rng, (4, 3), dtype)
        b = random(rng, (3,), dtype)
        for act in ACTIVATIONS:
            yield twin.__name__ + ".bias_activation " + act, [twin.bias_activation(z.copy(), b, act)]
            yield twin.__name__ + ".activation_backward " + act, [twin.activation_backward(z, z, act)]
        fwd = twin.batchnorm_forward_train(z, b, b, 1e-3)
        yield twin.__name__ + ".batchnorm_forward_train", list(fwd)
        yield twin.__name__ + ".batchnorm_backward", list(twin.batchnorm_backward(z, fwd[1], b, fwd[4]))
        yield twin.__name__ + ".softmax_cross_entropy", list(twin.softmax_cross_entropy(z, np.abs(z)))
        z_p = twin.pack_panels(z.T)
        yield twin.__name__ + ".pack_panels", [z_p]
        yield twin.__name__ + ".matmul_panels", [twin.matmul_panels(z, z_p, 4)]
        yield twin.__name__ + ".matmul_panels relu", [twin.matmul_panels(z, z_p, 4, np.arange(4.0), "relu")]
        yield twin.__name__ + ".bias_softmax", [twin.bias_softmax(z.copy(), b)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_kernel_preserves_the_dtype(dtype):
    for name, outputs in all_kernel_calls(dtype):
        for out in outputs:
            assert out.dtype == dtype, name


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_maxpool_argmax_is_int32(twin):
    _, argmax = twin.maxpool2d_forward(np.zeros((1, 4, 4, 2), np.float32), 2, 2, 2, 2, 0, 0, 2, 2)
    assert argmax.dtype == np.int32


def test_fast_rejects_bad_geometry():
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError):
        fast.im2col(x, 0, 3, 1, 1, 0, 0, 2, 2)
    with pytest.raises(ValueError):
        fast.im2col(x, 3, 3, 0, 1, 0, 0, 2, 2)
    with pytest.raises(ValueError):
        fast.im2col(x[0], 3, 3, 1, 1, 0, 0, 2, 2)
    with pytest.raises(ValueError):
        fast.col2im(np.zeros((3, 9)), x.shape, 3, 3, 1, 1, 0, 0, 2, 2)
    with pytest.raises(ValueError):
        fast.maxpool2d_backward(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 1, 1), np.int32),
                                x.shape, 2, 2, 2, 2, 0, 0)


def test_fast_has_the_reference_signatures():
    import inspect

    for name in reference.__all__:
        assert inspect.signature(getattr(fast, name)) == inspect.signature(getattr(reference, name)), name
        assert getattr(fast, name).__doc__, name
    assert sorted(fast.__all__) == sorted(reference.__all__)


# ---------------------------------------------------------------------------
# backend selection
# ---------------------------------------------------------------------------

def test_set_backend_switches_modules():
    kernels.set_backend("numpy")
    assert kernels.get_backend() == "numpy"
    assert kernels.backend() is reference
    kernels.set_backend("numba")
    assert kernels.get_backend() == "numba"
    assert kernels.backend() is fast
    assert kernels.backend("numpy") is reference  # an explicit name wins


@pytest.mark.parametrize("name", ["torch", "NUMPY", "", None, 3])
def test_set_backend_rejects_unknown_names(name):
    before = kernels.get_backend()
    with pytest.raises(ValueError):
        kernels.set_backend(name)
    assert kernels.get_backend() == before


def run_python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("NNSCRATCH_BACKEND", "NUMBA_DISABLE_JIT")}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                          text=True, timeout=300)


SHOW_BACKEND = "from nnscratch import kernels; print(kernels.get_backend(), kernels.backend().__name__)"


@pytest.mark.parametrize("name, module", [("numpy", "nnscratch.kernels.reference"),
                                          ("numba", "nnscratch.kernels.fast")])
def test_backend_environment_variable(name, module):
    proc = run_python(SHOW_BACKEND, NNSCRATCH_BACKEND=name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [name, module]


def test_backend_environment_variable_rejects_unknown_names():
    proc = run_python(SHOW_BACKEND, NNSCRATCH_BACKEND="cupy")
    assert proc.returncode != 0
    assert "ValueError" in proc.stderr


def test_default_backend_follows_numba_disable_jit():
    assert run_python(SHOW_BACKEND).stdout.split()[0] == "numba"
    assert run_python(SHOW_BACKEND, NUMBA_DISABLE_JIT="1").stdout.split()[0] == "numpy"


def test_fast_twin_works_without_the_jit():
    code = (
        "import numpy as np\n"
        "from nnscratch.kernels import fast, reference\n"
        "x = np.random.default_rng(0).standard_normal((2, 5, 4, 3))\n"
        "assert np.array_equal(fast.im2col(x, 3, 3, 2, 1, 1, 1, 3, 4), reference.im2col(x, 3, 3, 2, 1, 1, 1, 3, 4))\n"
        "y, a = fast.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 2, 2)\n"
        "assert np.array_equal(a, reference.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 2, 2)[1])\n"
        "print(type(fast._im2col_kernel).__name__)\n"
    )
    proc = run_python(code, NUMBA_DISABLE_JIT="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "function"  # plain Python, no dispatcher


def test_conv_work_buffers_are_reused_and_per_thread():
    """The im2col block buffer survives from call to call; another thread gets its own."""
    import threading

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 6, 3)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    first = fast.conv2d_forward(x, kernel, 3, 3, 1, 1, 1, 1, 6, 6)
    buffer = workspace.scratch_space.cols
    second = fast.conv2d_forward(x, kernel, 3, 3, 1, 1, 1, 1, 6, 6)
    assert workspace.scratch_space.cols is buffer
    np.testing.assert_array_equal(first, second)
    assert not np.shares_memory(first, buffer)  # results are never views of the work space
    seen = {}

    def other():
        seen["z"] = fast.conv2d_forward(x, kernel, 3, 3, 1, 1, 1, 1, 6, 6)
        seen["buffer"] = workspace.scratch_space.cols

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen["buffer"] is not buffer
    np.testing.assert_array_equal(seen["z"], first)
    _, dx = fast.conv2d_backward(x, first, kernel, 3, 3, 1, 1, 1, 1, 6, 6)
    assert not np.shares_memory(dx, workspace.scratch_space.grad_cols)
