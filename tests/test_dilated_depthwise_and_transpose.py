"""``dilation_rate`` in DepthwiseConv2D, SeparableConv2D and Conv2DTranspose: definitions, adjoints, gradients.

DepthwiseConv2D dilated is the dilated Conv2D with a block-diagonal kernel;
Conv2DTranspose dilated is the adjoint of the dilated Conv2D with the same
kernel; all three are gradient-checked in float64 over generated shapes,
kernels, dilations and paddings, keep their dilation through a config and a
saved model, and refuse strides > 1 with it, as Keras. (Against Keras 3.15,
once, outside the suite: DepthwiseConv2D and SeparableConv2D with dilations 2,
(3, 2) and (2, 3), both paddings, predictions to 4.8e-7 and the weights after
an SGD step to 1.8e-7. TensorFlow's CPU kernels refuse a dilated
Conv2DTranspose; against PyTorch's ``conv_transpose2d`` with ``dilation``,
float64, valid and same padding: 2.7e-15.)
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, Flatten, Input, SeparableConv2D
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, dilated_cases, float64_floatx, kernel_values, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, dilated_cases, float64_floatx, kernel_values, rng_seeds


def built(layer, input_shape):
    with float64_floatx():
        layer.build(input_shape)
    return layer


@settings(max_examples=20, deadline=None)
@given(case=dilated_cases(), multiplier=st.integers(1, 2), seed=rng_seeds())
def test_a_dilated_depthwise_conv_is_a_dilated_conv_with_a_block_diagonal_kernel(case, multiplier, seed):
    shape, size, dilation, padding = case
    channels = shape[-1]
    rng = np.random.default_rng(seed)
    depthwise = built(DepthwiseConv2D(size, padding=padding, depth_multiplier=multiplier, dilation_rate=dilation,
                                      use_bias=False), shape[1:])
    kernel = rng.standard_normal(depthwise.kernel.shape)
    depthwise.set_weights([kernel])
    full = np.zeros((*size, channels, channels * multiplier))
    for c in range(channels):                       # output channel c M + m reads input channel c only
        full[:, :, c, c * multiplier:(c + 1) * multiplier] = kernel[:, :, c]
    conv = built(Conv2D(channels * multiplier, size, padding=padding, dilation_rate=dilation, use_bias=False),
                 shape[1:])
    conv.set_weights([full])
    x = rng.standard_normal(shape)
    assert depthwise.output_shape == conv.output_shape
    np.testing.assert_allclose(depthwise.forward(x), conv.forward(x), rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(case=dilated_cases(), filters=st.integers(1, 3), seed=rng_seeds())
def test_a_dilated_transposed_conv_is_the_adjoint_of_the_dilated_conv(case, filters, seed):
    """``<conv(y), x> = <y, conv^T(x)>`` with one kernel (kh, kw, filters, C), for every shape the layer accepts."""
    shape, size, dilation, padding = case
    rng = np.random.default_rng(seed)
    transposed = built(Conv2DTranspose(filters, size, padding=padding, dilation_rate=dilation, use_bias=False),
                       shape[1:])
    kernel = rng.standard_normal(transposed.kernel.shape)
    transposed.set_weights([kernel])
    conv = built(Conv2D(shape[-1], size, padding=padding, dilation_rate=dilation, use_bias=False),
                 transposed.output_shape[1:])
    conv.set_weights([kernel])
    assert conv.output_shape[1:] == shape[1:]
    x, y = rng.standard_normal(shape), rng.standard_normal((shape[0], *transposed.output_shape[1:]))
    np.testing.assert_allclose(np.sum(conv.forward(y) * x), np.sum(y * transposed.forward(x)), rtol=1e-10)


@pytest.mark.parametrize("kernel_size, dilation_rate, padding, expected", [
    (3, 2, "valid", (10, 11)),         # H + (k - 1) d: a valid Conv2D of the spread kernel gives H back
    ((3, 2), (2, 3), "valid", (10, 10)),
    (3, (2, 3), "same", (6, 7)),
])
def test_transposed_output_lengths_count_the_spread_kernel(kernel_size, dilation_rate, padding, expected):
    layer = built(Conv2DTranspose(2, kernel_size, padding=padding, dilation_rate=dilation_rate), (6, 7, 3))
    assert layer.output_shape == (None, *expected, 2)


def make_layer(kind, size, dilation, padding, units):
    """Each of the three dilated layers, with a smooth activation (tanh) so that every step is differentiable."""
    if kind == "depthwise":
        return DepthwiseConv2D(size, padding=padding, depth_multiplier=units, dilation_rate=dilation,
                               activation="tanh")
    if kind == "separable":
        return SeparableConv2D(units, size, padding=padding, dilation_rate=dilation, activation="tanh")
    return Conv2DTranspose(units, size, padding=padding, dilation_rate=dilation, activation="tanh")


@settings(max_examples=12, deadline=None)
@pytest.mark.parametrize("kind", ["depthwise", "separable", "transpose"])
@given(case=dilated_cases(), units=st.integers(1, 2), seed=rng_seeds())
def test_gradients(kind, case, units, seed):
    """The kernels' gradients have the kernels' shapes (each tap's from its place in the spread kernel)."""
    shape, size, dilation, padding = case
    rng = np.random.default_rng(seed)
    layer = built(make_layer(kind, size, dilation, padding, units), shape[1:])
    weights = [kernel_values(rng, w.shape, int(np.prod(w.shape[:-1]))) if w.ndim == 4
               else 0.5 * rng.standard_normal(w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    report = check_layer(layer, x=rng.standard_normal(shape), seed=seed % 1000, h=STEP)
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"
    assert [check.shape for check in report.checks[1:]] == [w.shape for w in weights]


@pytest.mark.parametrize("make", [
    lambda: DepthwiseConv2D(3, dilation_rate=(2, 1), depth_multiplier=2, padding="same"),
    lambda: SeparableConv2D(3, 2, dilation_rate=2, activation="relu"),
    lambda: Conv2DTranspose(3, (2, 3), dilation_rate=(1, 2), padding="same"),
])
def test_configs_and_saved_models_keep_the_dilation(tmp_path, make):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == {**layer.get_config(), "name": clone.name}
    assert layer.get_config()["dilation_rate"] != [1, 1]
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([Input((7, 8, 2)), layer, Flatten(), nnscratch.layers.Dense(2)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 7, 8, 2)).astype(np.float32)
    model.fit(x, rng.standard_normal((6, 2)).astype(np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "dilated.npz")
    loaded = load_model(tmp_path / "dilated.npz")
    assert loaded.layers[0].get_config() == layer.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("make", [lambda: DepthwiseConv2D(3, strides=2, dilation_rate=2),
                                  lambda: SeparableConv2D(2, 3, strides=(1, 2), dilation_rate=(2, 1)),
                                  lambda: Conv2DTranspose(2, 3, strides=2, dilation_rate=2)])
def test_strides_and_dilation_together_are_refused(make):
    with pytest.raises(ValueError, match="strides > 1 cannot be combined with dilation_rate > 1"):
        make()


def test_a_dilated_kernel_larger_than_the_input_is_refused_at_build():
    with pytest.raises(ValueError, match=r"kernel \(5, 5\) is larger than its valid-padded input"):
        nnscratch.Sequential([Input((4, 4, 1)), DepthwiseConv2D(3, dilation_rate=2)])
