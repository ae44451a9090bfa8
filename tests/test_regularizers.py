"""Weight regularizers (nnscratch.regularizers) and what Dense, Conv2D and the training loop do with them.

Keras 3's semantics, checked here against NumPy formulas written in the test:
``L2(l2)`` is ``l2 * sum(w**2)`` (no 1/2), ``L1(l1)`` is ``l1 * sum(|w|)``
with gradient ``l1 * sign(w)`` (0 at w = 0); the penalties of the trainable
weights are added to the loss that fit, evaluate, train_on_batch and
test_on_batch report, and their gradients to the weights' gradients.
(Penalties on layers' outputs: tests/test_activity_regularizers.py.)
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnscratch
from nnscratch import kernels, optimizers, regularizers
from nnscratch.layers import Conv2D, Dense, Flatten, MaxPooling2D
from nnscratch.regularizers import L1, L1L2, L2

weights = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), elements=st.floats(-3, 3))


# ------------------------------------------------------------ the penalties
@given(w=weights, l1=st.floats(0, 2), l2=st.floats(0, 2))
def test_penalties_and_gradients_are_kerass_formulas(w, l1, l2):
    assert L1(l1)(w) == pytest.approx(l1 * np.abs(w).sum(), rel=1e-12, abs=1e-12)
    assert L2(l2)(w) == pytest.approx(l2 * (w ** 2).sum(), rel=1e-12, abs=1e-12)
    assert L1L2(l1, l2)(w) == pytest.approx(l1 * np.abs(w).sum() + l2 * (w ** 2).sum(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(L1(l1).gradient(w), l1 * np.sign(w), rtol=1e-12)
    np.testing.assert_allclose(L2(l2).gradient(w), 2 * l2 * w, rtol=1e-12)
    np.testing.assert_allclose(L1L2(l1, l2).gradient(w), l1 * np.sign(w) + 2 * l2 * w, rtol=1e-12, atol=1e-15)
    grad = np.ones_like(w)
    L1L2(l1, l2).add_gradient(w, grad)   # in place, added
    np.testing.assert_allclose(grad, 1 + l1 * np.sign(w) + 2 * l2 * w, rtol=1e-12, atol=1e-15)


def test_l1_gradient_at_exactly_zero_is_zero_as_tensorflows():
    w = np.array([0.0, -0.0, 2.0, -3.0], dtype=np.float32)
    grad = L1(0.5).gradient(w)
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.5, -0.5])


def test_defaults_and_configs_are_kerass():
    assert L1().get_config() == {"l1": 0.01}
    assert L2().get_config() == {"l2": 0.01}
    assert L1L2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert L1(None).l1 == 0.01 and L1L2(None, None).l2 == 0.0
    assert L1L2()(np.ones(3)) == 0.0


@pytest.mark.parametrize("identifier, expected", [
    ("l1", L1(0.01)), ("l2", L2(0.01)), ("l1_l2", L1L2(0.01, 0.01)),
    ("L1", L1(0.01)), ("L2", L2(0.01)), ("L1L2", L1L2(0.0, 0.0)), ("l1l2", L1L2(0.0, 0.0)),
    ({"class_name": "L2", "config": {"l2": 0.3}}, L2(0.3)),
    ({"module": "keras.regularizers", "class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2},
      "registered_name": None}, L1L2(0.1, 0.2)),
])
def test_get_by_name_and_dict(identifier, expected):
    got = regularizers.get(identifier)
    assert type(got) is type(expected) and got.get_config() == expected.get_config()


def test_lower_case_aliases_are_the_classes_as_keras():
    assert regularizers.l2(1e-4) == L2(1e-4) and regularizers.l1(0.5) == L1(0.5)
    assert regularizers.l1_l2(l1=0.1, l2=0.2) == L1L2(0.1, 0.2)
    assert regularizers.l1_l2().get_config() == {"l1": 0.0, "l2": 0.0}   # Keras 3's L1L2 defaults


def test_get_passes_instances_and_none_through_and_serialize_round_trips():
    instance = L2(0.5)
    assert regularizers.get(instance) is instance
    assert regularizers.get(None) is None and regularizers.serialize(None) is None
    for reg in (L1(0.2), L2(0.3), L1L2(0.1, 0.4)):
        assert regularizers.get(regularizers.serialize(reg)) == reg


@pytest.mark.parametrize("make", [lambda: L1(-0.1), lambda: L2(float("nan")), lambda: L1L2(0.1, float("inf")),
                                  lambda: L2(True), lambda: L1("0.1")])
def test_bad_factors_are_refused(make):
    with pytest.raises(ValueError, match="finite number >= 0"):
        make()


@pytest.mark.parametrize("identifier, error, match", [
    ("l3", ValueError, "unknown regularizer 'l3'"),
    ({"l2": 0.3}, ValueError, "class_name"),
    ({"class_name": "Orthogonal", "config": {}}, ValueError, "unknown regularizer class"),
    ({"class_name": "L2", "config": {"l1": 0.3}}, ValueError, "invalid config"),
    (lambda w: 0.01 * np.sum(w), TypeError, "gradient"),
    (0.01, TypeError, "a regularizer must be"),
])
def test_bad_identifiers_are_refused(identifier, error, match):
    with pytest.raises(error, match=match):
        regularizers.get(identifier)
    with pytest.raises(error, match=match):
        Dense(3, kernel_regularizer=identifier)


# ------------------------------------------------------------------ layers
def test_layer_losses_are_the_trainable_weights_penalties():
    conv = Conv2D(2, 3, kernel_regularizer="l1", bias_regularizer=L2(0.5))
    conv.build((5, 5, 1))
    conv.set_weights([np.full((3, 3, 1, 2), -0.5), np.array([1.0, 2.0])])
    assert conv.losses == pytest.approx([0.01 * 9 * 2 * 0.5, 0.5 * 5.0])
    assert conv.regularization_loss() == pytest.approx(0.09 + 2.5)
    conv.trainable = False   # Keras penalises trainable weights only
    assert conv.losses == [] and conv.regularization_loss() == 0.0
    plain = Dense(3)
    plain.build((2,))
    assert plain.losses == [] and plain.weight_regularizers() == {}


def test_a_bias_regularizer_without_a_bias_is_ignored():
    layer = Dense(2, use_bias=False, kernel_regularizer=L2(1.0), bias_regularizer=L2(1.0))
    layer.build((3,))
    assert list(layer.weight_regularizers()) == ["kernel"]


def test_add_regularization_gradients_adds_to_grad_and_changes_no_weight():
    layer = Dense(2, kernel_regularizer=L1L2(0.5, 0.25), bias_regularizer=L1(0.1))
    layer.build((3,))
    layer.set_weights([np.arange(6.0).reshape(3, 2) - 2.5, np.array([0.0, -1.0])])
    before = layer.get_weights()
    layer.kernel.grad[...] = 1.0
    layer.bias.grad[...] = 1.0
    layer.add_regularization_gradients()
    kernel = before[0]
    np.testing.assert_allclose(layer.kernel.grad, 1 + 0.5 * np.sign(kernel) + 0.5 * kernel, rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad, [1.0, 0.9], rtol=1e-6)
    for w0, w1 in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(w0, w1)


# ------------------------------------------------------------ the training loop
def _mlp(kernel_reg=None, bias_reg=None, lr=0.1):
    nnscratch.set_random_seed(5)
    model = nnscratch.Sequential([nnscratch.Input((4,)),
                                  Dense(5, activation="tanh", kernel_regularizer=kernel_reg, bias_regularizer=bias_reg),
                                  Dense(3, activation="softmax", kernel_regularizer=kernel_reg)])
    model.compile(optimizer=optimizers.SGD(learning_rate=lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype("float32"), rng.integers(0, 3, n)


def _penalty(model_weights, l1, l2, bias_l1):
    k1, b1, k2, _ = model_weights
    return sum(l1 * np.abs(k).sum() + l2 * (k ** 2).sum() for k in (k1, k2)) + bias_l1 * np.abs(b1).sum()


def test_reported_losses_add_the_penalty_and_metrics_do_not():
    x, y = _data()
    reg, plain = _mlp(L1L2(0.01, 0.02), L1(0.03)), _mlp()
    plain.set_weights(reg.get_weights())
    penalty = _penalty(reg.get_weights(), 0.01, 0.02, 0.03)
    assert sum(reg.losses) == pytest.approx(penalty, rel=1e-5)
    assert reg.regularization_loss() == pytest.approx(penalty, rel=1e-5)
    loss, acc = plain.test_on_batch(x, y)
    assert reg.test_on_batch(x, y) == pytest.approx([loss + penalty, acc], rel=1e-5)
    assert reg.evaluate(x, y, batch_size=5) == pytest.approx([plain.evaluate(x, y, batch_size=5)[0] + penalty, acc],
                                                             rel=1e-5)
    assert reg.train_on_batch(x, y) == pytest.approx([loss + penalty, acc], rel=1e-5)   # before the update


def test_fit_logs_the_penalised_loss_per_epoch():
    """With a learning rate of 0 the weights stay put: every epoch's loss is evaluate's plus the penalty."""
    x, y = _data(30)
    reg, plain = _mlp(L2(0.05), L1(0.02), lr=0.0), _mlp(lr=0.0)
    plain.set_weights(reg.get_weights())
    penalty = _penalty(reg.get_weights(), 0.0, 0.05, 0.02)
    history = reg.fit(x, y, batch_size=7, epochs=2, verbose=0, validation_data=(x[:9], y[:9])).history
    assert history["loss"] == pytest.approx([plain.evaluate(x, y)[0] + penalty] * 2, rel=1e-5)
    assert history["val_loss"] == pytest.approx([plain.evaluate(x[:9], y[:9])[0] + penalty] * 2, rel=1e-5)
    assert history["accuracy"] == pytest.approx([plain.evaluate(x, y)[1]] * 2)


def test_a_step_adds_the_penalty_gradient_to_the_data_gradient():
    """SGD: w_reg' = w - lr (g + dR/dw) = w_plain' - lr dR/dw, with dR/dw = l1 sign(w) + 2 l2 w."""
    x, y = _data()
    reg, plain = _mlp(L1L2(0.01, 0.02), L1(0.03)), _mlp()
    w = reg.get_weights()
    w[0][0, :2] = 0.0   # L1 at exactly 0: no push
    reg.set_weights(w)
    plain.set_weights(w)
    reg.train_on_batch(x, y)
    plain.train_on_batch(x, y)
    extra = [0.01 * np.sign(w[0]) + 0.04 * w[0], 0.03 * np.sign(w[1]), 0.01 * np.sign(w[2]) + 0.04 * w[2],
             np.zeros_like(w[3])]
    for after, plain_after, d in zip(reg.get_weights(), plain.get_weights(), extra):
        np.testing.assert_allclose(after, plain_after - 0.1 * d, rtol=1e-5, atol=1e-7)


def test_a_frozen_regularized_layer_adds_nothing():
    x, y = _data()
    reg, plain = _mlp(L2(0.5)), _mlp()
    plain.set_weights(reg.get_weights())
    for model in (reg, plain):
        model.layers[0].trainable = False
    penalty = 0.5 * (reg.get_weights()[2] ** 2).sum()
    assert reg.test_on_batch(x, y)[0] == pytest.approx(plain.test_on_batch(x, y)[0] + penalty, rel=1e-5)
    reg.train_on_batch(x, y)
    plain.train_on_batch(x, y)
    np.testing.assert_array_equal(reg.get_weights()[0], plain.get_weights()[0])


def test_evaluate_of_a_long_pass_adds_the_penalty_to_the_inference_path():
    """600 samples: Dense may multiply by its packed kernel (FixedProduct); the penalty is still added once a batch."""
    x, y = _data(600, seed=2)
    reg, plain = _mlp(L2(0.05)), _mlp()
    plain.set_weights(reg.get_weights())
    probs = plain.predict(x, batch_size=600)
    reference = -np.log(np.clip(probs[np.arange(600), y], 1e-7, 1)).mean()
    penalty = _penalty(reg.get_weights(), 0.0, 0.05, 0.0)

    class Spy(nnscratch.callbacks.Callback):
        def on_test_batch_begin(self, batch, logs=None):
            products.append(reg.layers[0]._product is not None)

    products = []
    assert reg.evaluate(x, y, batch_size=600, callbacks=[Spy()])[0] == pytest.approx(reference + penalty, rel=1e-5)
    assert products == [kernels.backend().fixed_product_pays(4, 6)]   # the packed product where it pays
    assert reg.evaluate(x, y, batch_size=100)[0] == pytest.approx(reference + penalty, rel=1e-5)


def test_conv_regularizers_train_in_a_cnn():
    """A CNN whose Conv2D has a strong L2: its kernel shrinks towards 0 faster than the unregularized one's."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 6, 6, 1)).astype("float32"), rng.integers(0, 2, 16)

    def cnn(reg):
        nnscratch.set_random_seed(1)
        model = nnscratch.Sequential([nnscratch.Input((6, 6, 1)),
                                      Conv2D(3, 3, activation="relu", kernel_regularizer=reg),
                                      MaxPooling2D(), Flatten(), Dense(2, activation="softmax")])
        model.compile(optimizer=optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
        return model

    reg, plain = cnn(L2(1.0)), cnn(None)
    reg.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False)
    plain.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False)
    assert np.abs(reg.get_weights()[0]).sum() < 0.8 * np.abs(plain.get_weights()[0]).sum()


# ------------------------------------------------------------------ saving
def test_configs_carry_the_regularizers_and_a_saved_model_keeps_them(tmp_path):
    _, y = _data()
    model = nnscratch.Sequential([nnscratch.Input((6, 6, 1)),
                                  Conv2D(2, 3, kernel_regularizer=L1L2(0.01, 0.02), bias_regularizer="l1"),
                                  Flatten(), Dense(3, activation="softmax", kernel_regularizer=L2(0.3))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    conv, dense = model.layers[0], model.layers[2]
    assert conv.get_config()["kernel_regularizer"] == {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.02}}
    assert conv.get_config()["bias_regularizer"] == {"class_name": "L1", "config": {"l1": 0.01}}
    assert dense.get_config()["bias_regularizer"] is None
    assert type(dense).from_config(dense.get_config()).kernel_regularizer == L2(0.3)
    images = np.random.default_rng(1).standard_normal((5, 6, 6, 1)).astype("float32")
    path = tmp_path / "regularized.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert loaded.layers[0].kernel_regularizer == L1L2(0.01, 0.02)
    assert loaded.layers[0].bias_regularizer == L1(0.01)
    assert loaded.layers[2].kernel_regularizer == L2(0.3) and loaded.layers[2].bias_regularizer is None
    assert loaded.losses == model.losses
    labels = y[:5]
    assert loaded.test_on_batch(images, labels) == model.test_on_batch(images, labels)
