"""DepthwiseConv2D: a Conv2D whose kernel is block-diagonal over the channels; gradient checks; Keras's config.

(Against Keras 3.15, once, outside the suite: 48 geometries on both kernel
twins (kernels 1x1 to 5x5, strides 1 to 3, both paddings, depth multipliers
1 and 3), predictions to 1.8e-7 and the weights after an SGD step to 1.2e-7;
a MobileNet-style block (Conv2D, DepthwiseConv2D, BatchNormalization, ReLU,
1x1 Conv2D, pooling, Dense) after three steps to 7e-8.)
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Conv2D, DepthwiseConv2D
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, float64_floatx, layer_conv_geometry, rng_seeds
    from tests.kernel_helpers import assert_twins_agree
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, float64_floatx, layer_conv_geometry, rng_seeds
    from kernel_helpers import assert_twins_agree


def built(geom, multiplier, **kwargs):
    layer = DepthwiseConv2D((geom.kh, geom.kw), strides=(geom.sh, geom.sw), padding=geom.padding,
                            depth_multiplier=multiplier, **kwargs)
    layer.build((geom.h, geom.w, geom.c))
    return layer


@settings(max_examples=30, deadline=None)
@given(geom=layer_conv_geometry(), multiplier=st.integers(1, 3), seed=rng_seeds())
def test_it_is_a_convolution_with_a_block_diagonal_kernel(geom, multiplier, seed):
    """Output channel c M + m sees input channel c only, through kernel[:, :, c, m]."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = built(geom, multiplier)
        full = Conv2D(geom.c * multiplier, (geom.kh, geom.kw), strides=(geom.sh, geom.sw), padding=geom.padding)
        full.build((geom.h, geom.w, geom.c))
    kernel, bias = rng.standard_normal(layer.kernel.shape), rng.standard_normal(geom.c * multiplier)
    layer.set_weights([kernel, bias])
    block_diagonal = np.zeros(full.kernel.shape)
    for c in range(geom.c):
        block_diagonal[:, :, c, c * multiplier:(c + 1) * multiplier] = kernel[:, :, c, :]
    full.set_weights([block_diagonal, bias])
    x = rng.standard_normal((geom.n, geom.h, geom.w, geom.c))
    np.testing.assert_allclose(layer.forward(x), full.forward(x), rtol=1e-10, atol=1e-10)
    assert layer.output_shape == full.output_shape


@settings(max_examples=30, deadline=None)
@given(geom=layer_conv_geometry(), multiplier=st.integers(1, 3), activation=st.sampled_from(["linear", "tanh"]),
       seed=rng_seeds())
def test_gradients(geom, multiplier, activation, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = built(geom, multiplier, activation=activation)
    layer.set_weights([rng.standard_normal(p.shape) for p in layer.params.values()])
    x = rng.standard_normal((geom.n, geom.h, geom.w, geom.c))
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_both_kernel_twins_give_the_same_layer(backend):
    rng = np.random.default_rng(1)
    layer = DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="relu")
    layer.build((7, 6, 3))
    layer.set_weights([rng.standard_normal(p.shape).astype(np.float32) for p in layer.params.values()])
    assert_twins_agree(layer, rng.standard_normal((2, 7, 6, 3)).astype(np.float32), backend)


def test_kerass_config_names_and_saving(tmp_path):
    layer = DepthwiseConv2D(3, depth_multiplier=2, depthwise_regularizer="l2", depthwise_constraint="non_neg",
                            depthwise_initializer="he_normal")
    config = layer.get_config()
    assert config["depthwise_initializer"] == "he_normal" and config["depthwise_regularizer"]["class_name"] == "L2"
    assert "kernel_initializer" not in config and config["depth_multiplier"] == 2
    model = nnscratch.Sequential([nnscratch.Input((6, 6, 2)), layer, nnscratch.layers.Flatten(),
                                  nnscratch.layers.Dense(2)])
    assert layer.kernel.shape == (3, 3, 2, 2) and layer.bias.shape == (4,) and layer.output_shape == (None, 4, 4, 4)
    assert set(layer.weight_regularizers()) == {"kernel"}
    model.compile("adam", "mse")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 6, 6, 2))
    model.fit(x, rng.standard_normal((8, 2)), epochs=1, verbose=0)
    assert np.all(layer.kernel.value >= 0)                            # the constraint after the step
    model.save(tmp_path / "dw.npz")
    loaded = load_model(tmp_path / "dw.npz")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[0].get_config() == layer.get_config()


@pytest.mark.parametrize("make, match", [
    (lambda: DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier must be a positive integer"),
    (lambda: DepthwiseConv2D(3, padding="causal"), "padding must be"),
])
def test_bad_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_kernel_larger_than_the_input_or_a_flat_input_is_refused_at_build():
    with pytest.raises(ValueError, match="larger than its valid-padded input"):
        nnscratch.Sequential([nnscratch.Input((2, 2, 3)), DepthwiseConv2D(3)])
    with pytest.raises(ValueError, match=r"expects images of shape \(None, height, width, channels\)"):
        nnscratch.Sequential([nnscratch.Input((5,)), DepthwiseConv2D(3)])
