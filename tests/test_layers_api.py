"""The layer API: build, shapes, parameter counts, weights, params/buffers, freezing, backward."""

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D,
                              ReLU)
from nnscratch.parameter import Parameter


def _data(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(nnscratch.floatx())


# ------------------------------------------------------------------ build and shapes
def test_build_creates_keras_shaped_weights():
    dense = Dense(7)
    assert not dense.built and dense.params == {}
    dense.build((5,))
    assert dense.built
    assert dense.input_shape == (5,)
    assert dense.params["kernel"].shape == (5, 7)            # (in, out) as Keras
    assert dense.params["bias"].shape == (7,)

    conv = Conv2D(6, 3)
    conv.build((10, 9, 4))
    assert conv.params["kernel"].shape == (3, 3, 4, 6)       # (kh, kw, in, out) as Keras
    assert conv.params["bias"].shape == (6,)


def test_tuple_kernel_size_and_strides():
    conv = Conv2D(2, (3, 2), strides=(1, 2))
    conv.build((8, 9, 3))
    assert conv.params["kernel"].shape == (3, 2, 3, 2)
    # valid: rows (8-3)//1+1 = 6, cols (9-2)//2+1 = 4
    assert conv.output_shape == (None, 6, 4, 2)
    y = conv.forward(_data(5, 8, 9, 3))
    assert y.shape == (5, 6, 4, 2)


@pytest.mark.parametrize("layer, input_shape, expected", [
    (Dense(3), (4,), (None, 3)),
    (Conv2D(5, 3), (8, 8, 2), (None, 6, 6, 5)),
    (Conv2D(5, 3, padding="same"), (8, 8, 2), (None, 8, 8, 5)),
    (Conv2D(5, 3, strides=2, padding="same"), (7, 7, 2), (None, 4, 4, 5)),
    (MaxPooling2D(), (8, 8, 3), (None, 4, 4, 3)),
    (MaxPooling2D((2, 1)), (8, 8, 3), (None, 4, 8, 3)),
    (MaxPooling2D(3, strides=1), (5, 6, 2), (None, 3, 4, 2)),
    (Flatten(), (3, 4, 5), (None, 60)),
    (BatchNormalization(), (4, 4, 6), (None, 4, 4, 6)),
    (Dropout(0.5), (7,), (None, 7)),
    (ReLU(), (2, 3), (None, 2, 3)),
    (Activation("tanh"), (9,), (None, 9)),
])
def test_output_shape_has_none_batch_axis_and_matches_forward(layer, input_shape, expected):
    layer.build(input_shape)
    assert layer.output_shape == expected
    y = layer.forward(_data(3, *input_shape))
    assert y.shape == (3, *expected[1:])


def test_output_shape_before_build_raises():
    with pytest.raises(ValueError, match="not built"):
        Dense(3).output_shape


def test_forward_before_build_raises():
    with pytest.raises(RuntimeError, match="not built"):
        Dense(3).forward(np.ones((2, 4), dtype="float32"))


def test_calling_a_layer_on_an_array_builds_it_from_the_data():
    dense = Dense(3)
    y = dense(_data(6, 11))
    assert dense.built and dense.input_shape == (11,)
    assert y.shape == (6, 3)


def test_forward_rejects_a_batch_of_another_shape():
    dense = Dense(3)
    dense.build((4,))
    with pytest.raises(ValueError, match=r"expected input shape \(None, 4\), got \(2, 5\)"):
        dense.forward(np.ones((2, 5), dtype="float32"))


# ------------------------------------------------------------------ parameter counts
@pytest.mark.parametrize("layer, input_shape, expected", [
    (Dense(3), (4,), 4 * 3 + 3),
    (Dense(3, use_bias=False), (4,), 4 * 3),
    (Conv2D(5, 3), (8, 8, 2), 3 * 3 * 2 * 5 + 5),
    (Conv2D(5, (3, 2), use_bias=False), (8, 8, 2), 3 * 2 * 2 * 5),
    (BatchNormalization(), (6,), 4 * 6),
    (BatchNormalization(), (4, 4, 6), 4 * 6),
    (MaxPooling2D(), (8, 8, 3), 0),
    (Flatten(), (8, 8, 3), 0),
    (Dropout(0.3), (8,), 0),
])
def test_count_params(layer, input_shape, expected):
    layer.build(input_shape)
    assert layer.count_params() == expected
    assert layer.count_params() == sum(w.size for w in layer.get_weights())


# ------------------------------------------------------------------ params and buffers
def test_params_are_keyed_by_keras_names_and_hold_value_and_grad():
    dense = Dense(3)
    dense.build((4,))
    assert list(dense.params) == ["kernel", "bias"]
    for name, param in dense.params.items():
        assert isinstance(param, Parameter)
        assert param.name == name
        assert param.value.dtype == np.float32
        assert param.grad.shape == param.value.shape

    conv = Conv2D(2, 3, use_bias=False)
    conv.build((5, 5, 1))
    assert list(conv.params) == ["kernel"]

    bn = BatchNormalization()
    bn.build((5,))
    assert list(bn.params) == ["gamma", "beta"]


def test_batchnorm_moving_statistics_are_buffers_not_params():
    bn = BatchNormalization()
    bn.build((4, 4, 3))
    assert set(bn.buffers) == {"moving_mean", "moving_variance"}
    assert "moving_mean" not in bn.params and "moving_variance" not in bn.params
    for buffer in bn.buffers.values():
        assert isinstance(buffer, np.ndarray) and not isinstance(buffer, Parameter)
    model = nnscratch.Sequential([nnscratch.Input((4, 4, 3)), bn])
    assert {id(p) for p in model.parameters()} == {id(bn.params["gamma"]), id(bn.params["beta"])}
    assert bn.count_trainable_params() == 6 and bn.count_params() == 12


def test_get_weights_order_dense_and_conv():
    dense = Dense(3)
    dense.build((4,))
    kernel, bias = dense.get_weights()
    np.testing.assert_array_equal(kernel, dense.params["kernel"].value)
    np.testing.assert_array_equal(bias, dense.params["bias"].value)

    conv = Conv2D(2, 3)
    conv.build((5, 5, 1))
    assert [w.shape for w in conv.get_weights()] == [(3, 3, 1, 2), (2,)]


def test_batchnorm_weight_order_is_gamma_beta_moving_mean_moving_variance():
    bn = BatchNormalization(epsilon=1e-3)
    bn.build((3,))
    gamma, beta = np.array([1.5, 2.0, 0.5]), np.array([0.1, -0.2, 0.3])
    mean, var = np.array([1.0, -1.0, 2.0]), np.array([4.0, 0.25, 9.0])
    bn.set_weights([gamma, beta, mean, var])
    np.testing.assert_array_equal(bn.params["gamma"].value, gamma.astype("float32"))
    np.testing.assert_array_equal(bn.params["beta"].value, beta.astype("float32"))
    np.testing.assert_array_equal(bn.buffers["moving_mean"], mean.astype("float32"))
    np.testing.assert_array_equal(bn.buffers["moving_variance"], var.astype("float32"))
    for got, want in zip(bn.get_weights(), [gamma, beta, mean, var]):
        np.testing.assert_allclose(got, want)
    # and inference really uses them in that role
    x = _data(5, 3)
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(bn.forward(x, training=False), expected, rtol=1e-5, atol=1e-6)


def test_get_weights_returns_copies_and_set_weights_writes_in_place():
    dense = Dense(2)
    dense.build((3,))
    kernel_param = dense.params["kernel"]
    weights = dense.get_weights()
    weights[0][...] = 123.0
    assert not np.any(dense.params["kernel"].value == 123.0)
    dense.set_weights([np.full((3, 2), 7.0), np.zeros(2)])
    assert dense.params["kernel"] is kernel_param                # same Parameter, same array
    np.testing.assert_array_equal(kernel_param.value, np.full((3, 2), 7.0, dtype="float32"))


def test_set_weights_rejects_wrong_count_and_shape():
    dense = Dense(2)
    dense.build((3,))
    with pytest.raises(ValueError, match="expects 2 weight arrays"):
        dense.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"'kernel': expected shape \(3, 2\), got \(2, 3\)"):
        dense.set_weights([np.zeros((2, 3)), np.zeros(2)])


# ------------------------------------------------------------------ backward
def test_dense_backward_writes_grads_and_leaves_weights_alone():
    dense = Dense(3)                                   # linear activation
    dense.build((4,))
    before = dense.get_weights()
    x, g = _data(5, 4, seed=1), _data(5, 3, seed=2)
    dense.forward(x, training=True)
    dx = dense.backward(g)
    kernel = dense.params["kernel"].value
    np.testing.assert_allclose(dense.params["kernel"].grad, x.T @ g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense.params["bias"].grad, g.sum(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, g @ kernel.T, rtol=1e-5, atol=1e-6)
    for b, a in zip(before, dense.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_conv_and_batchnorm_backward_write_grads_and_leave_weights_alone():
    model = nnscratch.Sequential([nnscratch.Input((6, 6, 2)), Conv2D(3, 3, activation="relu"),
                                  BatchNormalization(), Flatten(), Dense(2)])
    before = model.get_weights()
    for p in model.parameters():
        p.grad[...] = 0
    y = model.forward(_data(4, 6, 6, 2), training=True)
    dx = model.backward(_data(*y.shape, seed=3))
    assert dx.shape == (4, 6, 6, 2)
    for p in model.parameters():
        assert np.any(p.grad != 0), p
    after = model.get_weights()
    # parameters unchanged; only BN's moving statistics (buffers) moved, in the forward pass
    conv_k, conv_b, gamma, beta, _, _, dense_k, dense_b = range(8)
    for i in (conv_k, conv_b, gamma, beta, dense_k, dense_b):
        np.testing.assert_array_equal(after[i], before[i])


def test_conv_kernel_gradient_matches_a_finite_difference(float64):
    conv = Conv2D(2, (3, 2), strides=(2, 1), padding="same")
    conv.build((5, 4, 2))
    x, g = _data(2, 5, 4, 2, seed=4), None
    y = conv.forward(x, training=True)
    g = _data(*y.shape, seed=5)
    conv.backward(g)
    kernel = conv.params["kernel"].value
    h = 1e-6
    for index in [(0, 0, 0, 0), (2, 1, 1, 1), (1, 0, 1, 0)]:
        kernel[index] += h
        up = np.sum(conv.forward(x) * g)
        kernel[index] -= 2 * h
        down = np.sum(conv.forward(x) * g)
        kernel[index] += h
        assert conv.params["kernel"].grad[index] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-8)


# ------------------------------------------------------------------ trainable=False
def _frozen_model():
    model = nnscratch.Sequential([
        nnscratch.Input((6,)),
        Dense(8, activation="relu", name="frozen_dense", trainable=False),
        BatchNormalization(name="frozen_bn", trainable=False),
        Dense(3, activation="softmax", name="head"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_trainable_false_freezes_params_but_not_the_rest():
    model = _frozen_model()
    frozen_dense, frozen_bn, head = model.layers
    assert all(not p.trainable for p in frozen_dense.params.values())
    assert all(not p.trainable for p in frozen_bn.params.values())
    assert frozen_dense.count_trainable_params() == 0
    before = model.get_weights()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6)), rng.integers(0, 3, size=64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = model.get_weights()
    for i in range(4):                       # frozen kernel, bias, gamma, beta
        np.testing.assert_array_equal(after[i], before[i])
    # fit skips the backward of frozen layers at the bottom (nothing there to train), but
    # an explicit backward still computes their gradients: freezing is the optimizer's business
    frozen_dense.params["kernel"].grad[...] = 0
    model.forward(x[:4].astype("float32"), training=True)
    model.backward(rng.normal(size=(4, 3)).astype("float32"))
    assert np.any(frozen_dense.params["kernel"].grad != 0)
    assert not np.array_equal(after[6], before[6])          # head kernel trained


def test_setting_trainable_after_construction_freezes_existing_params():
    dense = Dense(3)
    dense.build((2,))
    dense.trainable = False
    assert not dense.trainable
    assert all(not p.trainable for p in dense.params.values())
    dense.trainable = True
    assert all(p.trainable for p in dense.params.values())


def test_frozen_batchnorm_still_uses_batch_statistics_in_training_mode():
    bn = BatchNormalization(trainable=False, epsilon=1e-3)
    bn.build((3,))
    x = _data(200, 3) * np.array([2.0, 0.5, 3.0], dtype="float32") + np.array([5.0, -1.0, 0.0], dtype="float32")
    mean, var = bn.buffers["moving_mean"].copy(), bn.buffers["moving_variance"].copy()
    y_train = bn.forward(x, training=True)
    expected_train = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-3)
    np.testing.assert_allclose(y_train, expected_train, rtol=1e-4, atol=1e-4)
    # inference mode uses the moving statistics instead
    y_eval = bn.forward(x, training=False)
    mean, var = bn.buffers["moving_mean"], bn.buffers["moving_variance"]
    np.testing.assert_allclose(y_eval, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)
    assert not np.allclose(y_train, y_eval, atol=0.1)


def test_frozen_layers_count_as_non_trainable_in_summary():
    model = _frozen_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    total = (6 * 8 + 8) + 4 * 8 + (8 * 3 + 3)
    trainable = 8 * 3 + 3
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {trainable:,}" in text
    assert f"Non-trainable params: {total - trainable:,}" in text


# ------------------------------------------------------------------ config
@pytest.mark.parametrize("layer", [
    Dense(4, activation="tanh", use_bias=False, name="d_cfg"),
    Conv2D(3, (3, 2), strides=(2, 1), padding="same", activation="relu", name="c_cfg"),
    MaxPooling2D((2, 3), strides=(1, 2), padding="same", name="p_cfg"),
    BatchNormalization(momentum=0.9, epsilon=1e-4, name="b_cfg"),
    Dropout(0.3, name="drop_cfg"),
])
def test_get_config_round_trips(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.name == layer.name
