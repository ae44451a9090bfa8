"""In training a ReLU Conv2D computes the MaxPooling2D after it: the same bits, the full output never written.

* the kernels: ``conv2d_maxpool_forward`` of each twin is bit for bit that
  twin's ``conv2d_forward`` followed by its ``maxpool2d_forward`` (kept or
  rebuilt im2col matrices, one block or many, float32 and float64), and the
  twins agree to rounding;
* the layer: ``Conv2D.forward_pooled`` gives what ``forward`` and the pooling
  give (im2col and Winograd layers), keeps no output, refuses other activations;
* the model: ``convolution_poolings()`` finds the pairs, and training gives
  the same weights with and without the fusion.

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels, zoo
from nnscratch.kernels import fast, reference
from nnscratch.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D

try:
    from tests.kernel_helpers import conv_algorithm, conv_blocks_of
    from tests.strategies import conv_geometry, output_size, padding, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from kernel_helpers import conv_algorithm, conv_blocks_of
    from strategies import conv_geometry, output_size, padding, rng_seeds

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]


@st.composite
def pool_windows(draw, conv_h, conv_w):
    """A pooling window over a (conv_h, conv_w) output: 1-3 cells a side, strides 1-3, "valid" or "same"."""
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    mode = "same" if min(conv_h, conv_w) < k else draw(st.sampled_from(["valid", "same"]))
    out_h, out_w = output_size(conv_h, k, s, mode), output_size(conv_w, k, s, mode)
    return (k, k, s, s, padding(conv_h, k, s, mode)[0], padding(conv_w, k, s, mode)[0], out_h, out_w)


def _case(data, dtype):
    geom = data.draw(conv_geometry(max_batch=4, max_size=8, max_channels=3, max_kernel=3, max_stride=2))
    pool = data.draw(pool_windows(geom.out_h, geom.out_w))
    rng = np.random.default_rng(data.draw(rng_seeds()))
    filters = data.draw(st.integers(1, 5))
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    kernel = rng.standard_normal((geom.kh, geom.kw, geom.c, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    return geom, pool, x, kernel, bias


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block_bytes", [64, 1 << 20], ids=["image-blocks", "one-block"])
@settings(max_examples=25, deadline=None)
@given(data=st.data(), kept=st.booleans(), activation=st.sampled_from(["relu", "linear", "tanh"]))
def test_fused_kernel_is_the_convolution_then_the_pooling(twin, dtype, block_bytes, data, kept, activation):
    geom, pool, x, kernel, bias = _case(data, dtype)
    cols = [np.empty(geom.cols_shape, dtype) if kept else None
            for _ in range(2)]
    with conv_blocks_of(block_bytes):
        y, argmax = twin.conv2d_maxpool_forward(x, kernel, *geom.window_args, pool, bias=bias,
                                                activation=activation, cols_out=cols[0])
        z = twin.conv2d_forward(x, kernel, *geom.window_args, bias=bias, activation=activation, cols_out=cols[1])
        expected, expected_argmax = twin.maxpool2d_forward(z.reshape(geom.n, geom.out_h, geom.out_w, -1), *pool)
    assert y.dtype == dtype and y.shape == (geom.n, pool[6], pool[7], kernel.shape[-1])
    assert y.tobytes() == expected.tobytes()
    assert argmax.dtype == np.int32 and np.array_equal(argmax, expected_argmax)
    if kept:  # the im2col matrix is kept for backward, as conv2d_forward keeps it
        assert cols[0].tobytes() == cols[1].tobytes()


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_the_twins_agree(data):
    geom, pool, x, kernel, bias = _case(data, np.float64)
    with conv_blocks_of(64):
        ours, _ = fast.conv2d_maxpool_forward(x, kernel, *geom.window_args, pool, bias=bias, activation="relu")
    theirs, _ = reference.conv2d_maxpool_forward(x, kernel, *geom.window_args, pool, bias=bias, activation="relu")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_the_simple_cnn_first_layer_in_blocks_is_bit_identical():
    """The study's shapes: 28x28x1 -> 26x26x32, 2x2 pooling; many blocks, kept im2col matrix."""
    rng = np.random.default_rng(3)
    x = rng.random((64, 28, 28, 1), dtype=np.float32)
    kernel = rng.standard_normal((3, 3, 1, 32)).astype(np.float32)
    bias = rng.standard_normal(32).astype(np.float32) * 0.1
    geometry, pool = (3, 3, 1, 1, 0, 0, 26, 26), (2, 2, 2, 2, 0, 0, 13, 13)
    cols = np.empty((64 * 676, 9), np.float32)
    y, argmax = fast.conv2d_maxpool_forward(x, kernel, *geometry, pool, bias=bias, activation="relu", cols_out=cols)
    z = fast.conv2d_forward(x, kernel, *geometry, bias=bias, activation="relu")
    expected, expected_argmax = fast.maxpool2d_forward(z.reshape(64, 26, 26, 32), *pool)
    assert y.tobytes() == expected.tobytes() and np.array_equal(argmax, expected_argmax)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_bad_arguments(twin):
    x = np.zeros((1, 4, 4, 1), np.float32)
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    with pytest.raises(ValueError, match="pool must be"):
        twin.conv2d_maxpool_forward(x, kernel, 3, 3, 1, 1, 0, 0, 2, 2, (2, 2, 2, 2))
    with pytest.raises(ValueError, match="activation"):
        twin.conv2d_maxpool_forward(x, kernel, 3, 3, 1, 1, 0, 0, 2, 2, (2, 2, 2, 2, 0, 0, 1, 1), activation="swish")


# ------------------------------------------------------------------ the layer

@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("channels, size", [(1, 9), (8, 10)], ids=["im2col", "winograd"])
def test_forward_pooled_is_forward_then_the_pooling(backend, channels, size):
    rng = np.random.default_rng(channels)
    previous = kernels.get_backend()
    kernels.set_backend(backend)
    try:
        layer = Conv2D(5, 3, activation="relu")
        layer.build((size, size, channels))
        pool = MaxPooling2D()
        pool.build(layer.compute_output_shape((size, size, channels)))
        layer.set_weights([rng.standard_normal((3, 3, channels, 5)).astype(np.float32),
                           rng.standard_normal(5).astype(np.float32)])
        assert bool(layer._winograd()) == (channels == 8)
        x = rng.standard_normal((3, size, size, channels)).astype(np.float32)
        y, argmax = layer.forward_pooled(x, pool.window())
        with pytest.raises(RuntimeError, match="without forward"):  # no output kept: backward needs the pooling
            layer.backward(np.ones((3, *layer.compute_output_shape(x.shape[1:])), np.float32))
        expected, expected_argmax = kernels.backend().maxpool2d_forward(layer.forward(x, training=True),
                                                                        *pool.window())
    finally:
        kernels.set_backend(previous)
    assert y.tobytes() == expected.tobytes() and np.array_equal(argmax, expected_argmax)


def test_forward_pooled_needs_a_relu():
    layer = Conv2D(2, 3, activation="tanh")
    layer.build((5, 5, 1))
    with pytest.raises(ValueError, match="activation='relu'"):
        layer.forward_pooled(np.zeros((1, 5, 5, 1), np.float32), (2, 2, 2, 2, 0, 0, 1, 1))


# ------------------------------------------------------------------ the model

def _model(fuse):
    nnscratch.set_random_seed(5)
    model = nnscratch.Sequential([
        nnscratch.Input((20, 20, 1)),
        Conv2D(8, 3, activation="relu"), MaxPooling2D(),                  # im2col: pooled in its blocks
        Conv2D(4, 3, padding="same", activation="relu"), MaxPooling2D(),  # 9x9x8: Winograd, then pooled
        Conv2D(3, 2, padding="same", activation="tanh"), MaxPooling2D(),  # not a ReLU: not fused
        Flatten(), Dense(3, activation="softmax"),
    ])
    model.fuse_conv_maxpool = fuse
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def test_the_model_finds_the_pairs():
    assert _model(True).convolution_poolings() == {0: 1, 2: 3}
    assert _model(False).convolution_poolings() == {}
    unfused_relu = _model(True)
    unfused_relu.fuse_relu_maxpool = False  # the pooling's backward then needs the layer's output
    assert unfused_relu.convolution_poolings() == {}
    overlapping = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Conv2D(2, 3, activation="relu"),
                                        MaxPooling2D(3, strides=1), Flatten(), Dense(2)])
    assert overlapping.convolution_poolings() == {}
    activation_layer = nnscratch.Sequential([nnscratch.Input((8, 8, 1)), Conv2D(2, 3), Activation("relu"),
                                             MaxPooling2D(), Flatten(), Dense(2)])
    assert activation_layer.convolution_poolings() == {}  # the ReLU is a layer of its own
    assert zoo.simple_cnn().convolution_poolings() == {0: 1, 2: 3}
    assert zoo.deep_cnn().convolution_poolings() == {}  # its poolings follow batch norms


@pytest.mark.parametrize("algorithm", ["winograd", "im2col"])
def test_training_is_bit_identical_with_and_without_the_fusion(algorithm, monkeypatch):
    calls = []
    original = Conv2D.forward_pooled

    def spy(self, x, window):
        calls.append(self.name)
        return original(self, x, window)

    monkeypatch.setattr(Conv2D, "forward_pooled", spy)
    rng = np.random.default_rng(1)
    x = rng.random((24, 20, 20, 1), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
    results = []
    with conv_algorithm(algorithm):
        for fuse in (True, False):
            model = _model(fuse)
            assert bool(model.layers[2]._winograd()) == (algorithm == "winograd")
            history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=3)
            results.append((model.get_weights(), history.history["loss"], model.predict(x, verbose=0)))
            assert len(calls) == (2 * 3 * 2 if fuse else 0)  # two layers, three steps an epoch, two epochs
            calls.clear()
    (weights, losses, predictions), (weights_off, losses_off, predictions_off) = results
    assert all(a.tobytes() == b.tobytes() for a, b in zip(weights, weights_off))
    assert losses == losses_off and predictions.tobytes() == predictions_off.tobytes()
