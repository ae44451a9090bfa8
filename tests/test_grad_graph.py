"""Gradient checks of functional models that branch and merge, in float64.

:func:`nnscratch.gradcheck.check_model` compares a graph model's backward
pass (input and every parameter) with central differences of a random
projection of its output: a residual Dense block, a residual
Conv2D + BatchNormalization block, two branches joined by Concatenate, and a
tensor read by three layers (its gradient is the sum of three).
"""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_model
from nnscratch.layers import (Activation, Add, Average, BatchNormalization, Concatenate, Conv2D, Dense, Flatten,
                              Maximum, Multiply, ReLU, Subtract)

try:
    from tests.grad_strategies import (PREACTIVATION_MARGIN, STEP, TOLERANCE, batch_sizes, feature_sizes,
                                       float64_floatx, kernel_values, min_abs, random_bn_weights, rng_seeds)
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import (PREACTIVATION_MARGIN, STEP, TOLERANCE, batch_sizes, feature_sizes,
                                 float64_floatx, kernel_values, min_abs, random_bn_weights, rng_seeds)


def assert_gradients_match(report):
    assert report.max_error < TOLERANCE, f"\n{report}"


def _randomize(model, rng):
    """Kernels bounded away from 0, biases and batch-norm weights away from their defaults."""
    for layer in model.layers:
        if isinstance(layer, (Dense, Conv2D)):
            kernel = layer.params["kernel"].value
            weights = [kernel_values(rng, kernel.shape, int(np.prod(kernel.shape[:-1])))]
            if "bias" in layer.params:
                weights.append(0.3 * rng.standard_normal(layer.params["bias"].value.shape))
            layer.set_weights(weights)
        elif isinstance(layer, BatchNormalization):
            layer.set_weights(random_bn_weights(rng, layer.params["gamma"].value.shape[0]))


def _outputs_of(model, x, names):
    """The outputs of the layers called ``names`` in a training forward (the graph drops them after use)."""
    wanted = {model.layers.index(model.get_layer(name)): name for name in names}
    return {wanted[index]: y.copy() for index, y in model.forward_steps(x, training=True) if index in wanted}


@given(n=batch_sizes(), features=feature_sizes(), hidden=st.integers(1, 5), seed=rng_seeds())
@settings(max_examples=8)
def test_residual_dense_block(n, features, hidden, seed):
    """x -> Dense(tanh) -> Dense -> + x -> tanh -> Dense: the input's gradient goes around and through the block."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        inputs = nnscratch.Input((features,))
        y = Dense(hidden, activation="tanh")(inputs)
        y = Dense(features)(y)
        x = Activation("tanh")(Add()([inputs, y]))
        model = nnscratch.Model(inputs, Dense(2)(x))
    assert model.graph is not None
    _randomize(model, rng)
    assert_gradients_match(check_model(model, rng.standard_normal((n, features)), seed=seed, h=STEP))


@given(n=st.integers(1, 2), size=st.integers(2, 4), channels=st.integers(1, 2), seed=rng_seeds())
@settings(max_examples=6)
def test_residual_conv_batchnorm_block(n, size, channels, seed):
    """As a ResNet block: x = Conv2D(relu)(in); y = BN(Conv2D(x)); out = ReLU(x + y); then a Dense head."""
    assume(n * size * size >= 3)  # batch normalisation: at least 3 values per channel (see grad_strategies)
    rng = np.random.default_rng(seed)
    with float64_floatx():
        inputs = nnscratch.Input((size, size, 2))
        x = Conv2D(channels, 3, padding="same", activation="relu", name="conv_a")(inputs)
        y = Conv2D(channels, 3, padding="same", name="conv_b")(x)
        y = BatchNormalization()(y)
        x = ReLU(name="after_add")(Add(name="sum")([x, y]))
        model = nnscratch.Model(inputs, Dense(3)(Flatten()(x)))
    _randomize(model, rng)
    data = rng.standard_normal((n, size, size, 2))
    conv_a = model.get_layer("conv_a")
    with float64_floatx():
        linear = Conv2D(channels, 3, padding="same")
        linear.build((size, size, 2))
    linear.set_weights(conv_a.get_weights())
    assume(min_abs(linear.forward(data)) > PREACTIVATION_MARGIN)                           # conv_a's ReLU
    assume(min_abs(_outputs_of(model, data, ["sum"])["sum"]) > PREACTIVATION_MARGIN)      # the ReLU after the sum
    assert_gradients_match(check_model(model, data, seed=seed, h=STEP))


@given(n=batch_sizes(), features=feature_sizes(), left=st.integers(1, 4), right=st.integers(1, 4), seed=rng_seeds())
@settings(max_examples=8)
def test_two_branches_joined_by_concatenate(n, features, left, right, seed):
    rng = np.random.default_rng(seed)
    with float64_floatx():
        inputs = nnscratch.Input((features,))
        a = Dense(left, activation="tanh")(inputs)
        b = Dense(right, activation="sigmoid")(Dense(3, activation="tanh")(inputs))
        model = nnscratch.Model(inputs, Dense(2, activation="softmax")(Concatenate()([a, b])))
    _randomize(model, rng)
    assert_gradients_match(check_model(model, rng.standard_normal((n, features)), seed=seed, h=STEP))


@given(n=batch_sizes(), features=feature_sizes(), seed=rng_seeds(), merge=st.sampled_from([Add, Average, Multiply]))
@settings(max_examples=8)
def test_a_tensor_read_by_three_layers(n, features, seed, merge):
    """h feeds three Dense layers, merged again: dL/dh is the sum of the three gradients."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        inputs = nnscratch.Input((features,))
        h = Dense(4, activation="tanh")(inputs)
        branches = [Dense(3, activation=act)(h) for act in ("tanh", "sigmoid", "linear")]
        model = nnscratch.Model(inputs, Dense(2)(merge()(branches)))
    _randomize(model, rng)
    assert [len(model.graph.sources[i]) for i in range(len(model.layers))].count(3) == 1
    assert_gradients_match(check_model(model, rng.standard_normal((n, features)), seed=seed, h=STEP))


@given(n=batch_sizes(), features=feature_sizes(), seed=rng_seeds())
@settings(max_examples=10)
def test_the_input_read_twice_by_one_merge_and_by_subtract_and_maximum(n, features, seed):
    """Add()([x, x]) reads one tensor twice; Subtract and Maximum split their gradient between branches."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        inputs = nnscratch.Input((features,))
        a = Dense(features, activation="tanh")(inputs)
        doubled = Add()([a, a])
        b = Subtract()([doubled, Dense(features)(inputs)])
        c = Maximum()([b, Dense(features, activation="tanh")(a)])
        model = nnscratch.Model(inputs, Dense(2)(c))
    _randomize(model, rng)
    data = rng.standard_normal((n, features))
    values = []
    for index, y in model.forward_steps(data, training=True):  # Maximum's two inputs: keep them apart (no tie)
        if isinstance(model.layers[index], Maximum):
            break
        values.append(y.copy())
    maximum = model.layers[index]
    first, second = (values[s] for s in model.graph.sources[index])
    assume(min_abs(first - second) > 1e-3)
    assert isinstance(maximum, Maximum)
    assert_gradients_match(check_model(model, data, seed=seed, h=STEP))
