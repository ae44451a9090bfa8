"""Conv2D keeps a small im2col matrix from forward to backward instead of rebuilding it.

``conv2d_forward(..., cols_out=M)`` writes ``im2col(x)`` into ``M`` and
``conv2d_backward(..., cols=M)`` reads it instead of unfolding ``x`` again.
With a row-major ``M`` the products see the same numbers in the same blocks, so
every result is the same bit for bit as without the matrix; these tests hold
both twins to that. A column-major ``M`` (layers with few input channels) is
filled column by column and multiplied in one product: the same matrix, and
results equal up to rounding.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
import nnscratch.layers.conv2d as conv2d_module
from nnscratch.kernels import fast, reference
from nnscratch.layers import Conv2D

try:
    from tests.kernel_helpers import conv_algorithm, conv_blocks_of
    from tests.strategies import conv_geometry, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from kernel_helpers import conv_algorithm, conv_blocks_of
    from strategies import conv_geometry, rng_seeds

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]


@pytest.mark.parametrize("block_bytes", [64, 4 << 20], ids=["one-image-blocks", "default-blocks"])
@settings(max_examples=30, deadline=None)
@given(geom=conv_geometry(), filters=st.integers(1, 4), seed=rng_seeds(),
       dtype=st.sampled_from([np.float32, np.float64]))
@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_kept_cols_give_the_same_bits(block_bytes, twin, geom, filters, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    kernel = rng.standard_normal((geom.kh, geom.kw, geom.c, filters)).astype(dtype)
    grad = rng.standard_normal((geom.cols_shape[0], filters)).astype(dtype)
    args = geom.window_args
    cols = np.full(geom.cols_shape, np.nan, dtype=dtype)
    with conv_blocks_of(block_bytes):
        z_kept = twin.conv2d_forward(x, kernel, *args, cols_out=cols)
        z = twin.conv2d_forward(x, kernel, *args)
        np.testing.assert_array_equal(cols, reference.im2col(x, *args))     # every row written
        assert z_kept.tobytes() == z.tobytes()
        for input_gradient in (False, True):
            dk_kept, dx_kept = twin.conv2d_backward(x, grad, kernel, *args, input_gradient=input_gradient, cols=cols)
            dk, dx = twin.conv2d_backward(x, grad, kernel, *args, input_gradient=input_gradient)
            assert dk_kept.tobytes() == dk.tobytes()
            assert (dx is None and dx_kept is None) or dx_kept.tobytes() == dx.tobytes()


@settings(max_examples=40, deadline=None)
@given(geom=conv_geometry(), filters=st.integers(1, 4), seed=rng_seeds(),
       dtype=st.sampled_from([np.float32, np.float64]))
@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_a_column_major_matrix_holds_im2col_and_gives_the_same_results(twin, geom, filters, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    kernel = rng.standard_normal((geom.kh, geom.kw, geom.c, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    grad = rng.standard_normal((geom.cols_shape[0], filters)).astype(dtype)
    args = geom.window_args
    cols = np.full(geom.cols_shape, np.nan, dtype=dtype, order="F")
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}
    y_kept = twin.conv2d_forward(x, kernel, *args, bias=bias, activation="tanh", cols_out=cols)
    np.testing.assert_array_equal(cols, reference.im2col(x, *args))          # every cell written, exactly
    assert y_kept.dtype == dtype
    np.testing.assert_allclose(y_kept, reference.conv2d_forward(x, kernel, *args, bias=bias, activation="tanh"), **tol)
    for input_gradient in (False, True):
        dk_kept, dx_kept = twin.conv2d_backward(x, grad, kernel, *args, input_gradient=input_gradient, cols=cols)
        dk, dx = reference.conv2d_backward(x, grad, kernel, *args, input_gradient=input_gradient)
        assert dk_kept.dtype == dtype and dk_kept.shape == kernel.shape
        np.testing.assert_allclose(dk_kept, dk, **tol)
        if input_gradient:
            np.testing.assert_allclose(dx_kept, dx, **tol)
        else:
            assert dx_kept is None


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_backward_reads_the_kept_matrix(twin):
    """The kept matrix is really used: a changed matrix changes the kernel gradient."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 5, 1)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 1, 4)).astype(np.float32)
    grad = rng.standard_normal((2 * 9, 4)).astype(np.float32)
    args = (3, 3, 1, 1, 0, 0, 3, 3)
    cols = np.empty((18, 9), np.float32)
    twin.conv2d_forward(x, kernel, *args, cols_out=cols)
    dk, _ = twin.conv2d_backward(x, grad, kernel, *args, input_gradient=False, cols=2 * cols)
    np.testing.assert_allclose(dk, 2 * reference.conv2d_backward(x, grad, kernel, *args, input_gradient=False)[0],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_a_wrong_matrix_is_refused(twin):
    x = np.zeros((2, 5, 5, 1), np.float32)
    kernel = np.zeros((3, 3, 1, 4), np.float32)
    args = (3, 3, 1, 1, 0, 0, 3, 3)
    for bad in (np.empty((18, 8), np.float32), np.empty((18, 9), np.float64), np.empty((18, 18), np.float32)[:, ::2]):
        with pytest.raises(ValueError, match="cols_out must be a C- or F-contiguous float32 array of shape"):
            twin.conv2d_forward(x, kernel, *args, cols_out=bad)
        with pytest.raises(ValueError, match="cols must be a C- or F-contiguous float32 array of shape"):
            twin.conv2d_backward(x, np.zeros((18, 4), np.float32), kernel, *args, cols=bad)


def _trained_weights(keep_bytes, monkeypatch, column_major_channels=0, in_training=False):
    monkeypatch.setattr(conv2d_module, "KEEP_COLS_BYTES", keep_bytes)
    monkeypatch.setattr(conv2d_module, "COLUMN_MAJOR_CHANNELS", column_major_channels)
    monkeypatch.setattr(conv2d_module, "COLUMN_MAJOR_IN_TRAINING", in_training)
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([
        nnscratch.Input((10, 10, 1)),
        Conv2D(6, 3, activation="relu"),                     # 1 channel: kept
        Conv2D(5, 3, padding="same", activation="tanh"),     # 54 numbers a window: kept, input gradient too
        nnscratch.layers.Flatten(),
        nnscratch.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.random((24, 10, 10, 1), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=2)
    kept = [_layout(layer._cols) for layer in model.layers if isinstance(layer, Conv2D)]
    return model.get_weights(), kept


def _layout(cols):
    """How a layer kept its im2col matrix: None (rebuilt in backward), "C" (row-major) or "F" (column-major)."""
    return None if cols is None else ("F" if cols.flags.f_contiguous and not cols.flags.c_contiguous else "C")


def test_training_is_bit_identical_with_and_without_kept_matrices(monkeypatch):
    with_kept, kept = _trained_weights(4 << 20, monkeypatch)
    without, rebuilt = _trained_weights(0, monkeypatch)
    assert kept == ["C", "C"] and rebuilt == [None, None]
    for a, b in zip(with_kept, without):
        assert a.tobytes() == b.tobytes()


def test_default_training_keeps_the_row_major_bits(monkeypatch):
    """By default training is bit for bit the row-major blocks' (column-major is for inference)."""
    default, kept = _trained_weights(4 << 20, monkeypatch, column_major_channels=3)
    row_major, _ = _trained_weights(4 << 20, monkeypatch, column_major_channels=0)
    assert kept == ["C", "C"]
    for a, b in zip(default, row_major):
        assert a.tobytes() == b.tobytes()


def test_training_with_a_column_major_matrix_matches(monkeypatch):
    """The one-channel first layer's matrix column-major in training: the same training, up to rounding."""
    column_major, kept = _trained_weights(4 << 20, monkeypatch, column_major_channels=3, in_training=True)
    row_major, kept_row_major = _trained_weights(4 << 20, monkeypatch, column_major_channels=0)
    # really the other path; whether its bits differ is up to BLAS's kernels (they did not on Zen 5's Haswell ones)
    assert kept == ["F", "C"] and kept_row_major == ["C", "C"]
    for a, b in zip(column_major, row_major):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("in_training", [False, True])
def test_few_channels_unfold_column_major(monkeypatch, in_training):
    seen = []
    original = fast.conv2d_forward

    def spy(*args, cols_out=None, **kwargs):
        seen.append(None if cols_out is None else ("F" if cols_out.flags.f_contiguous else "C"))
        return original(*args, cols_out=cols_out, **kwargs)

    monkeypatch.setattr(fast, "conv2d_forward", spy)
    monkeypatch.setattr(conv2d_module, "COLUMN_MAJOR_IN_TRAINING", in_training)
    nnscratch.set_backend("numba")                       # (the test fixture restores the backend)
    rgb = Conv2D(4, 3)
    rgb.build((8, 8, 3))
    wide = Conv2D(4, 3)
    wide.build((8, 8, 4))
    x3, x4 = np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 8, 8, 4), np.float32)
    rgb.forward(x3, training=True)
    rgb.forward(x3, training=False)
    wide.forward(x4, training=True)
    wide.forward(x4, training=False)
    assert seen == ["F" if in_training else "C", "F", "C", None]
    assert rgb._cols is None and wide._cols is None      # inference keeps nothing


def test_large_layers_and_inference_keep_nothing():
    layer = Conv2D(8, 3, padding="same")
    layer.build((28, 28, 32))                     # 28*28*288 floats per image: rebuilt block by block
    x = np.zeros((64, 28, 28, 32), np.float32)
    with conv_algorithm("im2col"):
        layer.forward(x, training=True)
    assert layer._cols is None
    small = Conv2D(4, 3)
    small.build((8, 8, 1))
    small.forward(np.zeros((4, 8, 8, 1), np.float32), training=True)
    assert small._cols is not None and small._cols.shape == (4 * 36, 9)
    small.forward(np.zeros((4, 8, 8, 1), np.float32), training=False)
    assert small._cols is None
