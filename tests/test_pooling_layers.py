"""AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Reshape, ZeroPadding2D and UpSampling2D:
Keras 3's semantics (written out here as NumPy formulas), shapes in summary(), configs that survive
save/load, clear errors, and a small model that trains.
"""

import re

import numpy as np
import pytest
from hypothesis import given

import nnscratch
from nnscratch import kernels
from nnscratch.layers import (AveragePooling2D, AvgPool2D, Conv2D, Dense, Flatten, GlobalAveragePooling2D,
                              GlobalAvgPool2D, GlobalMaxPool2D, GlobalMaxPooling2D, Reshape, UpSampling2D,
                              ZeroPadding2D)

try:
    from tests.grad_strategies import pool_geometry, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import pool_geometry, rng_seeds


def keras_average(x, pool, strides, padding):
    """Keras/TensorFlow's average pooling, from its definition: "same" gives ceil(size / stride) outputs, the
    padding is split with the odd cell after, and each window averages only the input cells it covers."""
    n, h, w, c = x.shape
    out, before = [], []
    for size, k, s in ((h, pool[0], strides[0]), (w, pool[1], strides[1])):
        o = -(-size // s) if padding == "same" else (size - k) // s + 1
        out.append(o)
        before.append(max((o - 1) * s + k - size, 0) // 2 if padding == "same" else 0)
    y = np.zeros((n, *out, c))
    for oy in range(out[0]):
        for ox in range(out[1]):
            r, q = oy * strides[0] - before[0], ox * strides[1] - before[1]
            inside = x[:, max(r, 0):r + pool[0], max(q, 0):q + pool[1], :]
            y[:, oy, ox, :] = inside.sum(axis=(1, 2)) / (inside.shape[1] * inside.shape[2])
    return y


# ------------------------------------------------------------------ Keras semantics

@pytest.mark.parametrize("backend", kernels.BACKENDS)
@given(geom=pool_geometry(), seed=rng_seeds())
def test_average_pooling_is_keras_average_pooling(backend, geom, seed):
    nnscratch.set_backend(backend)
    x = np.random.default_rng(seed).standard_normal(geom.x_shape).astype(np.float32)
    pool, strides = (geom.kh, geom.kw), (geom.sh, geom.sw)
    y = AveragePooling2D(pool, strides=strides, padding=geom.padding)(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, keras_average(x.astype(np.float64), pool, strides, geom.padding), rtol=1e-6,
                               atol=1e-6)


def test_same_padding_is_left_out_of_the_average_not_counted_as_zeros():
    """Keras 3: AveragePooling2D(3, strides=1, padding="same") on a 3x3 image of ones gives ones, not 4/9 at a
    corner; the corner of arange(9) averages 0, 1, 3, 4."""
    layer = AveragePooling2D(3, strides=1, padding="same")
    np.testing.assert_array_equal(layer(np.ones((1, 3, 3, 1))), np.ones((1, 3, 3, 1)))
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    y = layer(x)[0, :, :, 0]
    assert y[0, 0] == (0 + 1 + 3 + 4) / 4 and y[1, 1] == 4.0 and y[0, 1] == (0 + 1 + 2 + 3 + 4 + 5) / 6
    # odd size, stride 2, "same": one row of padding after, so the last window holds 1 row
    y = AveragePooling2D(2, padding="same")(np.arange(9.0).reshape(1, 3, 3, 1))[0, :, :, 0]
    np.testing.assert_array_equal(y, [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8.0]])


def test_average_pooling_backward_spreads_by_the_counts():
    layer = AveragePooling2D(2, padding="same")
    layer.build((3, 3, 1))
    layer.forward(np.zeros((1, 3, 3, 1)), training=True)
    dx = layer.backward(np.ones((1, 2, 2, 1)))[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]])


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_poolings_are_means_and_maxima_over_the_pixels(keepdims):
    x = np.random.default_rng(0).standard_normal((3, 5, 4, 2)).astype(np.float32)
    mean = GlobalAveragePooling2D(keepdims=keepdims)(x)
    top = GlobalMaxPooling2D(keepdims=keepdims)(x)
    assert mean.shape == top.shape == ((3, 1, 1, 2) if keepdims else (3, 2))
    assert mean.dtype == top.dtype == np.float32
    np.testing.assert_allclose(mean, x.mean(axis=(1, 2), keepdims=keepdims), rtol=1e-6)
    np.testing.assert_array_equal(top, x.max(axis=(1, 2), keepdims=keepdims))


def test_global_max_backward_goes_to_the_first_maximum():
    layer = GlobalMaxPooling2D()
    layer.build((2, 2, 1))
    x = np.array([[[[1.0], [3.0]], [[3.0], [0.0]]]])
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.array([[2.0]]))[0, :, :, 0], [[0.0, 2.0], [0.0, 0.0]])


@pytest.mark.parametrize("target, expected", [((4, -1), (4, 6)), ((-1,), (24,)), ((2, 3, 4), (2, 3, 4)),
                                              ([-1, 2, 2], (6, 2, 2))])
def test_reshape_infers_the_minus_one_and_keeps_c_order(target, expected):
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    layer = Reshape(target)
    y = layer(x)
    assert layer.output_shape == (None, *expected)
    np.testing.assert_array_equal(y, x.reshape(2, *expected))
    np.testing.assert_array_equal(layer.backward(y), x)


@pytest.mark.parametrize("padding, widths", [(1, ((1, 1), (1, 1))), ((1, 2), ((1, 1), (2, 2))),
                                             (((1, 2), (3, 0)), ((1, 2), (3, 0))), (((0, 1), 2), ((0, 1), (2, 2)))])
def test_zero_padding_forms(padding, widths):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 2)).astype(np.float32)
    layer = ZeroPadding2D(padding)
    y = layer(x)
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), *widths, (0, 0))))
    assert layer.padding == widths
    np.testing.assert_array_equal(layer.backward(y), x)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("size", [2, (1, 3), (3, 2)])
def test_up_sampling_repeats_pixels(backend, size):
    nnscratch.set_backend(backend)
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 2)).astype(np.float32)
    layer = UpSampling2D(size)
    a, b = layer.size
    y = layer(x)
    for r in range(3 * a):
        for s in range(4 * b):
            np.testing.assert_array_equal(y[:, r, s, :], x[:, r // a, s // b, :])
    g = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    expected = g.astype(np.float64).reshape(2, 3, a, 4, b, 2).sum(axis=(2, 4))
    np.testing.assert_allclose(layer.backward(g), expected, rtol=1e-6, atol=1e-6)


def test_keras_aliases_and_default_names():
    assert AvgPool2D is AveragePooling2D
    assert GlobalAvgPool2D is GlobalAveragePooling2D and GlobalMaxPool2D is GlobalMaxPooling2D
    for cls, prefix in [(AveragePooling2D, "average_pooling2d"), (GlobalAveragePooling2D, "global_average_pooling2d"),
                        (GlobalMaxPooling2D, "global_max_pooling2d"), (ZeroPadding2D, "zero_padding2d"),
                        (UpSampling2D, "up_sampling2d")]:
        assert re.fullmatch(rf"{prefix}(_\d+)?", cls().name)
    assert re.fullmatch(r"reshape(_\d+)?", Reshape((-1,)).name)
    layer = AveragePooling2D()
    assert layer.pool_size == layer.strides == (2, 2) and layer.padding == "valid"
    assert UpSampling2D(interpolation="NEAREST").interpolation == "nearest"


# ------------------------------------------------------------------ shapes, summary, saving

def every_layer_model():
    return nnscratch.Sequential([
        nnscratch.Input((9, 7, 2)),
        ZeroPadding2D(((1, 0), (2, 1))),                     # (10, 10, 2)
        AveragePooling2D(3, strides=2, padding="same"),     # (5, 5, 2)
        UpSampling2D((2, 1)),                               # (10, 5, 2)
        Conv2D(4, 3, padding="same", activation="relu"),    # (10, 5, 4)
        AvgPool2D(2, strides=1),                            # (9, 4, 4)
        GlobalMaxPooling2D(keepdims=True),                  # (1, 1, 4)
        Reshape((2, -1)),                                   # (2, 2)
        Flatten(),                                          # (4,)
        Reshape((4, 1, 1)),                                 # (4, 1, 1)
        GlobalAveragePooling2D(),                           # (1,)
        Dense(3, activation="softmax"),
    ])


EXPECTED_SHAPES = [(10, 10, 2), (5, 5, 2), (10, 5, 2), (10, 5, 4), (9, 4, 4), (1, 1, 4), (2, 2), (4,), (4, 1, 1),
                   (1,), (3,)]


def test_output_shapes_at_build_and_in_summary():
    model = every_layer_model()
    assert [layer.output_shape for layer in model.layers] == [(None, *s) for s in EXPECTED_SHAPES]
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for layer, shape in zip(model.layers, EXPECTED_SHAPES):
        assert re.search(rf"^{layer.name} \({type(layer).__name__}\)\s+{re.escape(str((None, *shape)))}\s+\d",
                         text, flags=re.MULTILINE), f"{layer.name} {shape} not in\n{text}"
    x = np.random.default_rng(0).standard_normal((2, 9, 7, 2)).astype(np.float32)
    assert model.predict(x, verbose=0).shape == (2, 3)


@pytest.mark.parametrize("layer", [
    AveragePooling2D((2, 3), strides=(1, 2), padding="same", name="avg_cfg"),
    GlobalAveragePooling2D(keepdims=True, name="gap_cfg"),
    GlobalMaxPooling2D(name="gmp_cfg"),
    Reshape((3, -1), name="reshape_cfg"),
    ZeroPadding2D(((1, 2), (0, 3)), name="pad_cfg"),
    UpSampling2D((2, 3), name="up_cfg"),
])
def test_get_config_round_trips(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.name == layer.name


def test_model_with_every_new_layer_saves_and_loads(tmp_path):
    model = every_layer_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 9, 7, 2)).astype(np.float32)
    model.fit(x, rng.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "pooling.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert [(type(a), a.get_config()) for a in loaded.layers] == [(type(b), b.get_config()) for b in model.layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# ------------------------------------------------------------------ errors

def test_pool_larger_than_a_valid_input_is_refused_at_build():
    with pytest.raises(ValueError, match=r"AveragePooling2D layer .* pool \(3, 3\) is larger than .*\(None, 2, 2, 1\)"):
        AveragePooling2D(3).build((2, 2, 1))
    AveragePooling2D(3, padding="same").build((2, 2, 1))  # "same" pads instead


@pytest.mark.parametrize("make", [lambda: AveragePooling2D(2, padding="full"), lambda: AveragePooling2D(2, padding=1)])
def test_bad_padding_is_refused_at_construction(make):
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        make()


@pytest.mark.parametrize("make", [lambda: AveragePooling2D(2), lambda: GlobalAveragePooling2D(),
                                  lambda: GlobalMaxPooling2D(), lambda: ZeroPadding2D(1), lambda: UpSampling2D(2)])
@pytest.mark.parametrize("shape", [(8, 8), (4, 4, 4, 1)])
def test_non_image_inputs_are_refused_at_build(make, shape):
    layer = make()
    with pytest.raises(ValueError, match=r"expects images of shape \(None, height, width, channels\)"):
        layer.build(shape)


def test_non_image_input_in_a_model_names_the_layer():
    with pytest.raises(ValueError, match="GlobalAveragePooling2D layer 'gap'"):
        nnscratch.Sequential([nnscratch.Input((16,)), GlobalAveragePooling2D(name="gap")])


def test_reshape_errors():
    with pytest.raises(ValueError, match=r"cannot reshape \(None, 3, 4, 2\) \(24 values a sample\) to \(None, 5, 5\)"):
        Reshape((5, 5)).build((3, 4, 2))
    with pytest.raises(ValueError, match="24 is not a multiple of 5"):
        Reshape((5, -1)).build((3, 4, 2))
    with pytest.raises(ValueError, match="at most one -1"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match="positive sizes"):
        Reshape((0, 24))
    with pytest.raises(TypeError, match="tuple of ints"):
        Reshape(24)


@pytest.mark.parametrize("padding, error", [(-1, ValueError), (((1, -2), (0, 0)), ValueError), ((1, 2, 3), TypeError),
                                            (((1, 2), (3,)), TypeError), (1.5, TypeError)])
def test_zero_padding_errors(padding, error):
    with pytest.raises(error, match="padding"):
        ZeroPadding2D(padding)


def test_up_sampling_errors():
    with pytest.raises(ValueError, match="'bicubic' is not supported by nnscratch; only 'nearest'"):
        UpSampling2D(2, interpolation="bicubic")
    with pytest.raises(ValueError, match="'cubic' is not an interpolation"):
        UpSampling2D(2, interpolation="cubic")
    with pytest.raises(ValueError, match="size must be positive"):
        UpSampling2D(0)


def test_keepdims_must_be_a_bool():
    with pytest.raises(TypeError, match="keepdims must be True or False"):
        GlobalMaxPooling2D(keepdims=1)


@pytest.mark.parametrize("layer", [AveragePooling2D(2), GlobalAveragePooling2D(), GlobalMaxPooling2D()])
def test_backward_needs_a_training_forward(layer):
    layer.build((4, 4, 1))
    layer.forward(np.zeros((1, 4, 4, 1)), training=False)
    with pytest.raises(RuntimeError, match="backward called without forward"):
        layer.backward(np.zeros((1, *layer.output_shape[1:])))


# ------------------------------------------------------------------ end to end

def test_conv_avgpool_gap_dense_model_learns():
    """Conv2D -> AveragePooling2D -> GlobalAveragePooling2D -> Dense on synthetic images whose class is which
    quadrant is bright: the training loss falls by half in a few epochs (to 0.17 from 1.40 when written)."""
    nnscratch.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 96)
    x = rng.normal(0.0, 0.3, (96, 8, 8, 1)).astype(np.float32)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 4 * r:4 * r + 4, 4 * c:4 * c + 4, 0] += 1.0
    model = nnscratch.Sequential([
        nnscratch.Input((8, 8, 1)),
        Conv2D(8, 3, padding="same", activation="relu"),
        AveragePooling2D(2),
        Conv2D(8, 3, padding="same", activation="relu"),
        GlobalAveragePooling2D(),
        Dense(4, activation="softmax"),
    ])
    model.compile(optimizer=nnscratch.optimizers.Adam(learning_rate=0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] > 0.8    # 4 classes: chance is 0.25
