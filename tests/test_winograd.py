"""Winograd F(2x2, 3x3) and F(4x4, 3x3): equal to the im2col convolution up to rounding, in both twins and in Conv2D.

* kernels: both twins against ``reference.conv2d_forward`` over generated 3x3
  stride-1 geometries (odd and even sizes, "same" and "valid", 2 for the
  input gradient of "valid"), with bias and activation, float32 and float64,
  one block and many;
* the kernel gradient of both twins against ``reference.conv2d_backward``;
* the kernel transforms of the fast twin give the reference's bits;
* the layer: with ``set_conv_algorithm("winograd")`` (and ``"winograd4"``) Conv2D's forward,
  input gradient and kernel gradient match im2col's, its gradients pass the float64 check, and
  layers Winograd does not apply to (other sizes, strides) are untouched.

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.gradcheck import check_layer
from nnscratch.kernels import reference, winograd_fast, winograd_reference
from nnscratch.layers import Conv2D

try:
    from tests.grad_strategies import PREACTIVATION_MARGIN, STEP, TOLERANCE, float64_floatx, kernel_values, min_abs
    from tests.kernel_helpers import conv_algorithm, winograd_blocks_of
    from tests.strategies import float_dtypes, rng_seeds, winograd_geometry
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import PREACTIVATION_MARGIN, STEP, TOLERANCE, float64_floatx, kernel_values, min_abs
    from kernel_helpers import conv_algorithm, winograd_blocks_of
    from strategies import float_dtypes, rng_seeds, winograd_geometry

TWINS = [winograd_reference, winograd_fast]
TILES = winograd_reference.TILES
RTOL = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-13}
# F(4x4, 3x3)'s transforms scale by up to 8 and 1/24: its rounding error is about ten times F(2x2, 3x3)'s
TILE_ERROR = {2: 1.0, 4: 10.0}




def _close(ours, expected, dtype, terms, tile=2):
    """Each output sums ``terms`` products of standard-normal-sized numbers: scale the tolerance by that."""
    scale = np.sqrt(terms) * max(1.0, float(np.abs(expected).max())) * TILE_ERROR[tile]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=RTOL[np.dtype(dtype)] * 10 * scale)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
@pytest.mark.parametrize("tile", TILES, ids=["F2", "F4"])
@pytest.mark.parametrize("block_bytes", [64, 4 << 20], ids=["one-image-blocks", "default-blocks"])
@given(geom=winograd_geometry(), filters=st.integers(1, 5), dtype=float_dtypes(), seed=rng_seeds(),
       activation=st.sampled_from(["linear", "relu", "tanh"]), with_bias=st.booleans(),
       input_gradient_padding=st.booleans())
def test_twins_equal_the_im2col_convolution(twin, tile, block_bytes, geom, filters, dtype, seed, activation,
                                            with_bias, input_gradient_padding):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    kernel = rng.standard_normal((3, 3, geom.c, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype) if with_bias else None
    pad_top, pad_left, out_h, out_w = geom.pad_top, geom.pad_left, geom.out_h, geom.out_w
    if input_gradient_padding:  # the "full" correlation that the input gradient of a "valid" conv needs
        pad_top, pad_left, out_h, out_w = 2, 2, geom.h + 2, geom.w + 2
    linear = reference.conv2d_forward(x, kernel, 3, 3, 1, 1, pad_top, pad_left, out_h, out_w)
    expected = reference.bias_activation(linear.copy(), bias, activation)
    with winograd_blocks_of(block_bytes):
        y = twin.winograd_conv2d_forward(x, kernel, pad_top, pad_left, out_h, out_w, bias=bias,
                                         activation=activation, tile=tile)
    assert y.shape == expected.shape and y.dtype == dtype
    _close(y, expected, dtype, 9 * geom.c, tile)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
@pytest.mark.parametrize("tile", TILES, ids=["F2", "F4"])
@pytest.mark.parametrize("block_bytes", [64, 4 << 20], ids=["one-image-blocks", "default-blocks"])
@given(geom=winograd_geometry(), filters=st.integers(1, 5), dtype=float_dtypes(), seed=rng_seeds())
def test_twins_kernel_gradient_equals_im2col(twin, tile, block_bytes, geom, filters, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    grad_z = rng.standard_normal((geom.n * geom.out_h * geom.out_w, filters)).astype(dtype)
    geometry = (3, 3, 1, 1, geom.pad_top, geom.pad_left, geom.out_h, geom.out_w)
    expected, _ = reference.conv2d_backward(x, grad_z, np.zeros((3, 3, geom.c, filters), dtype), *geometry,
                                            input_gradient=False)
    with winograd_blocks_of(block_bytes):
        dk = twin.winograd_conv2d_kernel_gradient(x, grad_z, geom.pad_top, geom.pad_left, geom.out_h, geom.out_w,
                                                  tile=tile)
    assert dk.shape == (3, 3, geom.c, filters) and dk.dtype == dtype
    _close(dk, expected, dtype, geom.n * geom.out_h * geom.out_w, tile)


@pytest.mark.parametrize("tile", TILES, ids=["F2", "F4"])
@given(channels=st.integers(1, 6), filters=st.integers(1, 6), dtype=float_dtypes(), seed=rng_seeds())
def test_fast_kernel_transforms_give_the_reference_bits(tile, channels, filters, dtype, seed):
    """``G g G^T`` and ``G^T dU G``: the Numba loops sum in the einsum's order, so the bits agree."""
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((3, 3, channels, filters)).astype(dtype)
    du = rng.standard_normal(((tile + 2) ** 2, channels, filters)).astype(dtype)
    np.testing.assert_array_equal(winograd_fast.transform_kernel(kernel, tile),
                                  winograd_reference.transform_kernel(kernel, tile))
    np.testing.assert_array_equal(winograd_fast.kernel_from_transformed_gradient(du, tile),
                                  winograd_reference.kernel_from_transformed_gradient(du, tile))


@pytest.mark.parametrize("tile", TILES, ids=["F2", "F4"])
def test_one_tile_through_the_transforms_is_the_direct_correlation(tile):
    """``A^T [(G g G^T) * (B^T d B)] A`` of one tile is the 3x3 correlation of ``d`` with ``g`` (float64)."""
    bt, g, at = winograd_reference._matrices(tile)
    rng = np.random.default_rng(tile)
    d = rng.standard_normal((tile + 2, tile + 2))
    kernel = rng.standard_normal((3, 3))
    y = at @ ((g @ kernel @ g.T) * (bt @ d @ bt.T)) @ at.T
    direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * kernel) for j in range(tile)] for i in range(tile)])
    np.testing.assert_allclose(y, direct, rtol=0, atol=1e-12)


def test_fast_results_do_not_depend_on_the_number_of_threads():
    """Blocks are cut by shape alone and each dK slot is summed in block order."""
    import numba

    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 12, 12, 8)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 8, 5)).astype(np.float32)
    grad_z = rng.standard_normal((9 * 144, 5)).astype(np.float32)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            with winograd_blocks_of(64):
                for tile in TILES:
                    results.append((winograd_fast.winograd_conv2d_forward(x, kernel, 1, 1, 12, 12, tile=tile),
                                    winograd_fast.winograd_conv2d_kernel_gradient(x, grad_z, 1, 1, 12, 12,
                                                                                  tile=tile)))
    finally:
        numba.set_num_threads(previous)
    half = len(results) // 2
    for one_thread, all_threads in zip(results[:half], results[half:]):
        for ours, first in zip(all_threads, one_thread):
            np.testing.assert_array_equal(ours, first)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_bad_arguments_are_rejected(twin):
    x = np.zeros((1, 5, 5, 2), np.float32)
    with pytest.raises(ValueError, match=r"kernel must be \(3, 3, 2, F\)"):
        twin.winograd_conv2d_forward(x, np.zeros((5, 5, 2, 1), np.float32), 1, 1, 5, 5)
    with pytest.raises(ValueError, match="paddings in 0..2"):
        twin.winograd_conv2d_forward(x, np.zeros((3, 3, 2, 1), np.float32), 3, 0, 5, 5)
    with pytest.raises(ValueError, match="larger than the padded input"):
        twin.winograd_conv2d_forward(x, np.zeros((3, 3, 2, 1), np.float32), 0, 0, 8, 5)
    with pytest.raises(ValueError, match="float"):
        twin.winograd_conv2d_forward(np.zeros((1, 5, 5, 2), np.int64), np.zeros((3, 3, 2, 1)), 1, 1, 5, 5)
    with pytest.raises(ValueError, match=r"grad_z must be \(1 \* 5 \* 5, F\)"):
        twin.winograd_conv2d_kernel_gradient(x, np.zeros((24, 3), np.float32), 1, 1, 5, 5)
    with pytest.raises(ValueError, match=r"tile must be one of \(2, 4\)"):
        twin.winograd_conv2d_forward(x, np.zeros((3, 3, 2, 1), np.float32), 1, 1, 5, 5, tile=3)
    with pytest.raises(ValueError, match=r"tile must be one of \(2, 4\)"):
        twin.winograd_conv2d_kernel_gradient(x, np.zeros((25, 1), np.float32), 1, 1, 5, 5, tile=6)


def test_winograd_applies_to_3x3_stride_1_with_enough_channels_and_pixels():
    applies = winograd_reference.winograd_applies
    assert applies((3, 3, 8, 8), (1, 1), (8, 8)) and applies((3, 3, 128, 128), (1, 1), (14, 14))
    assert not applies((3, 3, 8, 8), (2, 2), (6, 6))
    assert not applies((5, 5, 8, 8), (1, 1), (6, 6))
    assert not applies((3, 1, 8, 8), (1, 1), (6, 6))
    assert not applies((3, 3, 7, 8), (1, 1), (28, 28))   # too few input channels
    assert not applies((3, 3, 64, 64), (1, 1), (5, 6))   # too small an output
    assert not applies((3, 3, 128, 128), (1, 1), (7, 7))  # the deep CNN's last block: im2col for F(2x2) ...
    assert applies((3, 3, 128, 128), (1, 1), (7, 7), tile=4)  # ... but F(4x4, 3x3) is faster there
    assert not applies((3, 3, 64, 64), (1, 1), (6, 6), tile=4)


def test_winograd_tile_follows_the_algorithm():
    tile = winograd_reference.winograd_tile
    assert winograd_fast.winograd_tile is tile
    assert tile((3, 3, 32, 32), (1, 1), (28, 28)) == 2  # the default algorithm
    assert tile((3, 3, 32, 64), (1, 1), (11, 11)) == 2
    assert kernels.CONV_ALGORITHMS == ("im2col", "winograd", "winograd-mixed", "winograd4")
    assert [tile((3, 3, 64, 128), (1, 1), (7, 7), a) for a in kernels.CONV_ALGORITHMS] == [0, 0, 4, 4]
    assert [tile((3, 3, 32, 64), (1, 1), (11, 11), a) for a in kernels.CONV_ALGORITHMS] == [0, 2, 4, 4]
    assert [tile((3, 3, 32, 32), (1, 1), (28, 28), a) for a in kernels.CONV_ALGORITHMS] == [0, 2, 2, 4]
    assert [tile((3, 3, 3, 32), (1, 1), (28, 28), a) for a in kernels.CONV_ALGORITHMS] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="algorithm must be"):
        tile((3, 3, 32, 32), (1, 1), (28, 28), "fft")


# -------------------------------------------------------------------- the layer

def layer_geometry(max_size=9, max_batch=2):
    """Geometries where Conv2D does use Winograd (both tiles): >= 8 input channels, output >= 8x8."""
    return winograd_geometry(max_batch=max_batch, max_size=max_size, max_channels=9).map(
        lambda g: g._replace(c=max(g.c, 8), h=max(g.h, 10), w=max(g.w, 10)))


WINOGRAD_ALGORITHMS = [a for a in kernels.CONV_ALGORITHMS if a != "im2col"]


def expected_tile(algorithm, out_side):
    """The tile each setting takes for an output of ``out_side`` (a layer Winograd applies to)."""
    if algorithm == "winograd-mixed":  # F(4x4) on the small layers, F(2x2) from 12x12 up
        return 4 if out_side < 12 else 2
    return {"winograd": 2, "winograd4": 4}[algorithm]


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("algorithm", WINOGRAD_ALGORITHMS)
@given(geom=layer_geometry(), filters=st.integers(1, 4), seed=rng_seeds(),
       activation=st.sampled_from(["linear", "relu", "sigmoid"]))
def test_conv2d_with_winograd_matches_im2col(backend, algorithm, geom, filters, seed, activation):
    rng = np.random.default_rng(seed)
    previous = kernels.get_backend()
    kernels.set_backend(backend)
    try:
        nnscratch.set_random_seed(seed % 1000)
        layer = Conv2D(filters, 3, padding=geom.padding, activation=activation)
        layer.build(geom.x_shape[1:])
        with conv_algorithm(algorithm):
            tile = layer._winograd()
        assert tile == expected_tile(algorithm, min(geom.out_h, geom.out_w))
        layer.set_weights([rng.standard_normal((3, 3, geom.c, filters)).astype(np.float32),
                           rng.standard_normal(filters).astype(np.float32)])
        x = rng.standard_normal(geom.x_shape).astype(np.float32)
        g = rng.standard_normal((geom.n, geom.out_h, geom.out_w, filters)).astype(np.float32)
        results = {}
        for name in (algorithm, "im2col"):
            with conv_algorithm(name):
                y = layer.forward(x, training=True)
                dx = layer.backward(g)
                results[name] = (y, dx, layer.kernel.grad.copy(), layer.bias.grad.copy())
    finally:
        kernels.set_backend(previous)
    ours, theirs = results[algorithm], results["im2col"]
    _close(ours[0], theirs[0], np.float32, 9 * geom.c, tile)
    if activation == "relu":  # a ReLU kink may flip between the two roundings: compare where it cannot
        assume(min_abs(np.where(theirs[0] > 0, theirs[0], 1.0)) > 1e-4 * TILE_ERROR[tile])
    _close(ours[1], theirs[1], np.float32, 9 * filters * 4, tile)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-4, atol=1e-4 * np.abs(theirs[2]).max())


@pytest.mark.parametrize("algorithm", WINOGRAD_ALGORITHMS)
@pytest.mark.parametrize("activation", ["linear", "tanh", "relu"])
@given(geom=layer_geometry(max_size=8, max_batch=1), filters=st.integers(1, 3),
       use_bias=st.booleans(), seed=rng_seeds())
def test_conv2d_gradients_with_winograd(algorithm, activation, geom, filters, use_bias, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Conv2D(filters, 3, padding=geom.padding, activation=activation, use_bias=use_bias)
        layer.build(geom.x_shape[1:])
    kernel = kernel_values(rng, (3, 3, geom.c, filters), 9 * geom.c)
    layer.set_weights([kernel, 0.5 * rng.standard_normal(filters)] if use_bias else [kernel])
    x = rng.standard_normal(geom.x_shape)
    with conv_algorithm(algorithm):
        assert layer._winograd()
        if activation == "relu":
            pre = layer._convolve(x, layer.bias.value if use_bias else None)
            assume(min_abs(pre) > PREACTIVATION_MARGIN)
        report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


@pytest.mark.parametrize("padding, size", [("same", 7), ("valid", 9)])
@pytest.mark.parametrize("algorithm", ["winograd-mixed", "winograd4"])
def test_f4_takes_7x7_outputs_and_matches_im2col(padding, size, algorithm):
    """F(4x4, 3x3) also applies to a 7x7 output (the deep CNN's last block), F(2x2, 3x3) does not."""
    rng = np.random.default_rng(7)
    layer = Conv2D(5, 3, padding=padding, activation="relu")
    layer.build((size, size, 8))
    with conv_algorithm("winograd"):
        assert layer._winograd() == 0
    layer.set_weights([rng.standard_normal((3, 3, 8, 5)).astype(np.float32),
                       rng.standard_normal(5).astype(np.float32)])
    x = rng.standard_normal((3, size, size, 8)).astype(np.float32)
    g = rng.standard_normal((3, 7, 7, 5)).astype(np.float32)
    results = {}
    for name in (algorithm, "im2col"):
        with conv_algorithm(name):
            assert layer._winograd() == (0 if name == "im2col" else 4)
            y = layer.forward(x, training=True)
            results[name] = (y, layer.backward(g), layer.kernel.grad.copy())
    ours, theirs = results[algorithm], results["im2col"]
    _close(ours[0], theirs[0], np.float32, 9 * 8, 4)
    assert min_abs(np.where(theirs[0] > 0, theirs[0], 1.0)) > 1e-4 * TILE_ERROR[4]  # no ReLU kink flipped
    _close(ours[1], theirs[1], np.float32, 9 * 5 * 4, 4)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-4, atol=1e-4 * np.abs(theirs[2]).max())


@pytest.mark.parametrize("out_side, tiles", [
    (6, (0, 0, 0)), (7, (0, 4, 4)), (8, (2, 4, 4)), (11, (2, 4, 4)), (12, (2, 2, 4)), (14, (2, 2, 4)),
    (28, (2, 2, 4))])
def test_which_tile_each_setting_takes(out_side, tiles):
    """The mixed setting takes F(4x4) from 7x7 to 11x11 and F(2x2) from 12x12 (the study's layers: 28, 14, 11, 7)."""
    layer = Conv2D(4, 3, padding="same")
    layer.build((out_side, out_side, 8))
    for algorithm, tile in zip(("winograd", "winograd-mixed", "winograd4"), tiles):
        with conv_algorithm(algorithm):
            assert layer._winograd() == tile, algorithm
    with conv_algorithm("im2col"):
        assert layer._winograd() == 0
    few_channels = Conv2D(4, 3, padding="same")
    few_channels.build((out_side, out_side, 7))
    assert few_channels._winograd() == 0  # below MIN_CHANNELS input channels: im2col under every setting


@pytest.mark.parametrize("kernel_size, strides, channels, size", [
    (5, 1, 8, 8), (3, 2, 8, 12), ((3, 1), 1, 8, 8), (3, 1, 3, 8), (3, 1, 8, 5)])
def test_layers_winograd_does_not_fit_are_unchanged(kernel_size, strides, channels, size):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, size, size, channels)).astype(np.float32)
    layer = Conv2D(4, kernel_size, strides=strides, padding="same", activation="relu")
    layer.build(x.shape[1:])
    with conv_algorithm("im2col"):
        expected = layer.forward(x)
    for algorithm in WINOGRAD_ALGORITHMS:
        with conv_algorithm(algorithm):
            assert not layer._winograd()
            np.testing.assert_array_equal(layer.forward(x), expected)


def test_conv_algorithm_setting_and_environment():
    assert kernels.get_conv_algorithm() == "winograd"  # the default
    with pytest.raises(ValueError, match="conv algorithm must be one of"):
        kernels.set_conv_algorithm("fft")
    code = "import nnscratch.kernels as k; print(k.get_conv_algorithm())"
    env = {**os.environ, "NNSCRATCH_CONV_ALGORITHM": "im2col"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "im2col"
    env["NNSCRATCH_CONV_ALGORITHM"] = "bogus"
    failed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and "conv algorithm must be one of" in failed.stderr


def test_a_small_cnn_trains_with_winograd():
    """End to end: the same model, both algorithms, losses close after a few steps."""
    from nnscratch.layers import Dense, Flatten, MaxPooling2D

    rng = np.random.default_rng(0)
    x = rng.random((32, 10, 10, 1), dtype=np.float32)
    y = (x.reshape(32, -1).mean(axis=1) > 0.5).astype(int)
    losses = {}
    for algorithm in kernels.CONV_ALGORITHMS:
        nnscratch.set_random_seed(1)
        model = nnscratch.Sequential([nnscratch.Input((10, 10, 1)), Conv2D(8, 3, padding="same", activation="relu"),
                                      Conv2D(8, 3, activation="relu"), MaxPooling2D(), Flatten(),
                                      Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        with conv_algorithm(algorithm):
            assert model.layers[1]._winograd() == {"im2col": 0, "winograd": 2, "winograd-mixed": 4,
                                                   "winograd4": 4}[algorithm]
            assert not model.layers[0]._winograd()
            history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, seed=2)
        losses[algorithm] = history.history["loss"]
    np.testing.assert_allclose(losses["winograd"], losses["im2col"], rtol=1e-3)
    np.testing.assert_allclose(losses["winograd-mixed"], losses["im2col"], rtol=1e-3)
    np.testing.assert_allclose(losses["winograd4"], losses["im2col"], rtol=1e-3)
