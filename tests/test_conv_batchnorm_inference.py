"""In inference a Conv2D applies the BatchNormalization after it: the same bits, one sweep less.

* the kernels: ``conv2d_forward(..., affine=(scale, shift, relu))`` (im2col,
  with row- and column-major kept matrices) and ``winograd_conv2d_forward(...,
  affine=...)`` (F(2x2) and F(4x4)) equal ``batchnorm_inference`` after the
  convolution bit for bit, in both twins, and the twins agree to rounding;
* the model: ``batchnorms_after_convolutions()`` finds the pairs, and
  ``predict`` gives the same bits with and without the fusion, on both
  backends; training never uses it; a batch norm the convolution applied
  refuses a backward pass with a clear error.

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.kernels import fast, reference, winograd_fast, winograd_reference
from nnscratch.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D

try:
    from tests.kernel_helpers import conv_algorithm, conv_blocks_of
    from tests.strategies import conv_geometry, rng_seeds, winograd_geometry
except ImportError:  # tests/ itself is on sys.path
    from kernel_helpers import conv_algorithm, conv_blocks_of
    from strategies import conv_geometry, rng_seeds, winograd_geometry

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]
ACTIVATIONS = ["linear", "relu", "tanh"]


def _affine(rng, filters, dtype, relu):
    scale = (rng.uniform(0.5, 2.0, filters) * np.where(rng.random(filters) < 0.3, -1, 1)).astype(dtype)
    return scale, rng.uniform(-1.0, 1.0, filters).astype(dtype), relu


@settings(max_examples=40, deadline=None)
@given(geom=conv_geometry(), filters=st.integers(1, 5), seed=rng_seeds(), dtype=st.sampled_from([np.float32, np.float64]),
       activation=st.sampled_from(ACTIVATIONS), relu=st.booleans(), layout=st.sampled_from([None, "C", "F"]),
       block_bytes=st.sampled_from([64, 1 << 20]))
@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_conv_with_affine_equals_conv_then_batchnorm_inference(twin, geom, filters, seed, dtype, activation, relu,
                                                                layout, block_bytes):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    kernel = rng.standard_normal((geom.kh, geom.kw, geom.c, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    affine = _affine(rng, filters, dtype, relu)
    args = geom.window_args
    cols = [None if layout is None else np.empty(geom.cols_shape, dtype=dtype, order=layout) for _ in range(2)]
    with conv_blocks_of(block_bytes):
        y = twin.conv2d_forward(x, kernel, *args, bias=bias, activation=activation, cols_out=cols[0])
        expected = twin.batchnorm_inference(y, *affine)
        fused = twin.conv2d_forward(x, kernel, *args, bias=bias, activation=activation, cols_out=cols[1],
                                    affine=affine)
    assert fused.dtype == dtype
    assert fused.tobytes() == expected.tobytes()


@settings(max_examples=40, deadline=None)
@given(geom=winograd_geometry(), filters=st.integers(1, 5), seed=rng_seeds(),
       dtype=st.sampled_from([np.float32, np.float64]), relu=st.booleans(), tile=st.sampled_from([2, 4]))
@pytest.mark.parametrize("twin", [winograd_reference, winograd_fast], ids=TWIN_IDS)
def test_winograd_with_affine_equals_winograd_then_batchnorm_inference(twin, geom, filters, seed, dtype, relu, tile):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    kernel = rng.standard_normal((3, 3, geom.c, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    affine = _affine(rng, filters, dtype, relu)
    args = (geom.pad_top, geom.pad_left, geom.out_h, geom.out_w)
    y = twin.winograd_conv2d_forward(x, kernel, *args, bias=bias, tile=tile)
    expected = reference.batchnorm_inference(y, *affine)
    fused = twin.winograd_conv2d_forward(x, kernel, *args, bias=bias, tile=tile, affine=affine)
    assert fused.tobytes() == expected.tobytes()


@settings(max_examples=30, deadline=None)
@given(geom=conv_geometry(), filters=st.integers(1, 5), seed=rng_seeds(), relu=st.booleans())
def test_conv_with_affine_twins_agree(geom, filters, seed, relu):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape)
    kernel = rng.standard_normal((geom.kh, geom.kw, geom.c, filters))
    affine = _affine(rng, filters, np.float64, relu)
    expected = reference.conv2d_forward(x, kernel, *geom.window_args, affine=affine)
    np.testing.assert_allclose(fast.conv2d_forward(x, kernel, *geom.window_args, affine=affine), expected,
                               rtol=1e-10, atol=1e-10)


def _model(seed):
    """Conv2D -> BN -> ReLU (1 channel, column-major in inference), a relu Conv2D -> BN, a Winograd Conv2D -> BN."""
    nnscratch.set_random_seed(seed)
    return nnscratch.Sequential([
        nnscratch.Input((10, 10, 1)),
        Conv2D(8, 3, padding="same"), BatchNormalization(), Activation("relu"),
        Conv2D(8, 3, padding="same", activation="relu"), BatchNormalization(),
        Conv2D(9, 3, padding="same"), BatchNormalization(), Activation("relu"),
        MaxPooling2D(), Flatten(), Dense(4, activation="softmax"),
    ])


def test_the_model_finds_the_convolutions_followed_by_batch_norm():
    model = _model(0)
    assert model.batchnorms_after_convolutions() == {1: True, 4: False, 6: True}
    model.fuse_conv_batchnorm_inference = False
    assert model.batchnorms_after_convolutions() == {}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("algorithm", ["winograd", "winograd-mixed", "winograd4", "im2col"])
def test_predict_is_bit_identical_with_and_without_the_fusion(backend, algorithm):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 10, 10, 1)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 40)]
    with _backend(backend), conv_algorithm(algorithm):
        model = _model(2)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)   # moving statistics away from 0 and 1
        fused = model.predict(x, batch_size=16, verbose=0)
        model.fuse_conv_batchnorm_inference = False
        plain = model.predict(x, batch_size=16, verbose=0)
    assert fused.tobytes() == plain.tobytes()


class _backend:
    """Run with ``nnscratch.set_backend(name)``, then restore the previous backend."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.previous = kernels.get_backend()
        nnscratch.set_backend(self.name)

    def __exit__(self, *exc):
        nnscratch.set_backend(self.previous)


def test_training_does_not_fold_and_a_folded_batch_norm_refuses_backward():
    rng = np.random.default_rng(3)
    model = _model(4)
    x = rng.standard_normal((6, 10, 10, 1)).astype(np.float32)
    bn = model.layers[1]
    model.forward(x, training=True)
    assert bn._x2d is not None                          # training ran the batch norm itself
    model.forward(x, training=False)
    with pytest.raises(RuntimeError, match="without a forward pass"):
        bn.backward(np.ones((6, 10, 10, 8), dtype=np.float32))
    conv = model.layers[0]
    with pytest.raises(ValueError, match="affine= is for inference"):
        conv.forward(x, training=True, affine=bn.inference_affine() + (True,))
