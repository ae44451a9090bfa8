"""In training a BatchNormalization computes the MaxPooling2D after it: the same bits, no full-size output.

* the kernels: ``batchnorm_maxpool_forward_train`` equals
  ``maxpool2d_forward(batchnorm_forward_train(...))`` bit for bit in both twins
  (any window geometry, with and without the ReLU), and the twins agree;
* the model: ``batchnorm_poolings()`` finds the pairs, the layers keep what
  backward needs, and whole training runs are bit-identical with and without
  the fusion, on both backends.

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.kernels import fast, reference
from nnscratch.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D

try:
    from tests.kernel_helpers import batchnorm_inputs
    from tests.strategies import conv_geometry, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from kernel_helpers import batchnorm_inputs
    from strategies import conv_geometry, rng_seeds

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]


@settings(max_examples=40, deadline=None)
@given(geom=conv_geometry(max_channels=5), seed=rng_seeds(), dtype=st.sampled_from([np.float32, np.float64]),
       relu=st.booleans())
@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_fused_kernel_equals_batchnorm_then_maxpool_bit_for_bit(twin, geom, seed, dtype, relu):
    x, gamma, beta = batchnorm_inputs(np.random.default_rng(seed), geom.x_shape, dtype)
    window = geom.window_args
    normed, _, mean, var, inv_std = twin.batchnorm_forward_train(x.reshape(-1, geom.c), gamma, beta, 1e-3, relu=relu)
    expected = (*twin.maxpool2d_forward(normed.reshape(x.shape), *window), mean, var, inv_std)
    result = twin.batchnorm_maxpool_forward_train(x, gamma, beta, 1e-3, relu, *window)
    assert len(result) == 5
    for got, want in zip(result, expected):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()


@settings(max_examples=30, deadline=None)
@given(geom=conv_geometry(max_channels=5), seed=rng_seeds(), relu=st.booleans())
def test_fused_kernel_twins_agree(geom, seed, relu):
    x, gamma, beta = batchnorm_inputs(np.random.default_rng(seed), geom.x_shape, np.float64)
    expected = reference.batchnorm_maxpool_forward_train(x, gamma, beta, 1e-3, relu, *geom.window_args)
    result = fast.batchnorm_maxpool_forward_train(x, gamma, beta, 1e-3, relu, *geom.window_args)
    y, argmax, *stats = result
    np.testing.assert_allclose(y, expected[0], rtol=1e-10, atol=1e-10)
    # the winners agree wherever the window's maximum is unique (ReLU zeros can tie)
    unique = expected[0] > 0 if relu else np.ones(y.shape, dtype=bool)
    np.testing.assert_array_equal(argmax[unique], expected[1][unique])
    for got, want in zip(stats, expected[2:]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _model(seed):
    nnscratch.set_random_seed(seed)
    return nnscratch.Sequential([
        nnscratch.Input((9, 9, 1)),
        Conv2D(4, 3, padding="same"), BatchNormalization(), Activation("relu"), MaxPooling2D(),
        Conv2D(5, 3, padding="same"), BatchNormalization(), MaxPooling2D(pool_size=2, strides=1),
        Flatten(), Dense(3, activation="softmax"),
    ])


def test_the_model_finds_batch_norms_followed_by_a_pooling():
    model = _model(0)
    assert model.batchnorm_poolings() == {1: 3, 5: 6}
    model.fuse_batchnorm_maxpool = False
    assert model.batchnorm_poolings() == {}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_training_is_bit_identical_with_and_without_the_fusion(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((24, 9, 9, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
    previous = kernels.get_backend()
    nnscratch.set_backend(backend)
    try:
        runs = []
        for fuse in (True, False):
            model = _model(6)
            model.fuse_batchnorm_maxpool = fuse
            model.compile(optimizer="adam", loss="categorical_crossentropy")
            model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=7)
            runs.append(b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights()))
    finally:
        nnscratch.set_backend(previous)
    assert runs[0] == runs[1]


def test_the_fused_step_leaves_both_layers_ready_for_backward():
    rng = np.random.default_rng(8)
    model = _model(9)
    x = rng.standard_normal((4, 9, 9, 1)).astype(np.float32)
    out = model.forward(x, training=True)
    pool = model.layers[3]
    assert pool._argmax is not None and pool._argmax.shape == (4, 4, 4, 4)
    # the pooled output the model passed on is what the unfused layers give
    model.fuse_batchnorm_maxpool = False
    np.testing.assert_array_equal(model.forward(x, training=True), out)
