"""Activations in layers: Dense, Conv2D and Activation with every Keras name, and the layers LeakyReLU, ELU, ReLU's
arguments and Softmax(axis).

Forward values are compared with formulas written here; what training keeps for backward (the pre-activation
only for gelu, silu, mish, hard_silu, tanh_shrink and hard_tanh), the inference paths that lay weights out once
(``FixedProduct``, the batch-norm fold of a Conv2D), Keras's defaults and argument errors, configs and a save/load round trip. The gradients themselves
are checked in ``tests/test_grad_activations.py``.
"""

import warnings

import numpy as np
import pytest
from scipy.special import erf, expit

import nnscratch
from nnscratch import kernels
from nnscratch.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D, ReLU
from nnscratch.layers.activation import ELU, LeakyReLU, Softmax

NEW = ["elu", "selu", "softplus", "softsign", "leaky_relu", "gelu", "silu", "hard_sigmoid", "exponential", "relu6"]
NEWER = ["celu", "hard_silu", "hard_tanh", "log_sigmoid", "mish", "soft_shrink", "hard_shrink", "sparse_plus",
         "sparse_sigmoid", "squareplus", "tanh_shrink"]
ALL = NEW + NEWER
FROM_Z = ["gelu", "silu", "mish", "hard_silu", "tanh_shrink", "hard_tanh"]   # backward reads z, not y
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
SELU_ALPHA, SELU_SCALE = 1.67326324235437728481, 1.05070098735548049342


def formula(name, x, alpha=None):
    """``f(x)`` from Keras 3's definitions, in float64."""
    x = np.asarray(x, dtype=np.float64)
    exp_negative = np.exp(np.minimum(x, 0))
    return {
        "elu": lambda: np.where(x > 0, x, (1.0 if alpha is None else alpha) * (exp_negative - 1)),
        "selu": lambda: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (exp_negative - 1)),
        "softplus": lambda: np.logaddexp(0.0, x),
        "softsign": lambda: x / (1 + np.abs(x)),
        "leaky_relu": lambda: np.where(x > 0, x, (0.2 if alpha is None else alpha) * x),
        "gelu": lambda: 0.5 * x * (1 + erf(x / np.sqrt(2))),
        "silu": lambda: x * expit(x),
        "hard_sigmoid": lambda: np.clip(x / 6 + 0.5, 0, 1),
        "exponential": lambda: np.exp(x),
        "relu6": lambda: np.clip(x, 0, 6),
        "relu": lambda: np.maximum(x, 0),
        "celu": lambda: np.maximum(x, 0) + np.minimum(exp_negative - 1, 0),
        "hard_silu": lambda: x * np.clip(x / 6 + 0.5, 0, 1),
        "hard_tanh": lambda: np.clip(x, -1, 1),
        "log_sigmoid": lambda: -np.logaddexp(0.0, -x),
        "mish": lambda: x * np.tanh(np.logaddexp(0.0, x)),
        "soft_shrink": lambda: np.sign(x) * np.maximum(np.abs(x) - 0.5, 0),
        "hard_shrink": lambda: x * (np.abs(x) > 0.5),
        "sparse_plus": lambda: np.where(x >= 1, x, np.clip(x + 1, 0, 2) ** 2 / 4),
        "sparse_sigmoid": lambda: np.clip((x + 1) / 2, 0, 1),
        "squareplus": lambda: (x + np.sqrt(x * x + 4)) / 2,
        "tanh_shrink": lambda: x - np.tanh(x),
    }[name]()


@pytest.fixture(params=kernels.BACKENDS)
def backend(request):
    kernels.set_backend(request.param)
    return request.param


def close(actual, desired, rtol=2e-5):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * max(1.0, float(np.abs(desired).max())))


def close_to_formula(actual, name, pre):
    """``close(actual, formula(name, pre))``, but where hard_shrink jumps (``|pre|`` within 1e-4 of 0.5) a product
    rounded otherwise than ``pre`` may land on the other side: those are left out."""
    desired = formula(name, pre)
    if name == "hard_shrink":
        sure = np.abs(np.abs(pre) - 0.5) > 1e-4
        assert sure.mean() > 0.99
        actual, desired = np.where(sure, actual, 0), np.where(sure, desired, 0)
    close(actual, desired)


# ---------------------------------------------------------------------------
# Activation, Dense, Conv2D with every name
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL + list(ALIASES))
def test_activation_layer(backend, name):
    x = np.random.default_rng(0).normal(0, 3, (4, 5, 3)).astype(np.float32)
    layer = Activation(name)
    y = layer(x)
    assert y.dtype == np.float32 and layer.activation == ALIASES.get(name, name)
    close(y, formula(layer.activation, x))
    np.testing.assert_array_equal(x, np.random.default_rng(0).normal(0, 3, (4, 5, 3)).astype(np.float32))


@pytest.mark.parametrize("name", ALL)
def test_dense_training_and_inference(backend, name, monkeypatch):
    """Training, inference, and the inference product that packs the kernel once (forced here on every host)."""
    rng = np.random.default_rng(1)
    layer = Dense(19, activation=name)
    layer.build((13,))
    layer.set_weights([0.4 * rng.standard_normal((13, 19)), rng.standard_normal(19)])
    x = rng.standard_normal((600, 13)).astype(np.float32)
    pre = x @ layer.kernel.value + layer.bias.value
    close_to_formula(layer.forward(x, training=True), name, pre)
    close_to_formula(layer.forward(x), name, pre)
    twin = kernels.backend()
    monkeypatch.setattr(twin, "fixed_product_pays", lambda k, n: True)
    layer.begin_inference(samples=len(x))
    assert layer._product is not None
    try:
        close_to_formula(layer.forward(x[:300]), name, pre[:300])
        close_to_formula(layer.forward(x[300:]), name, pre[300:])
    finally:
        layer.end_inference()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape, filters, algorithm", [((6, 6, 2), 3, "im2col"), ((9, 9, 8), 4, "winograd")],
                         ids=["im2col", "winograd"])
def test_conv2d_training_and_inference(backend, name, shape, filters, algorithm):
    rng = np.random.default_rng(2)
    layer = Conv2D(filters, 3, padding="same", activation=name)
    linear = Conv2D(filters, 3, padding="same")
    layer.build(shape)
    linear.build(shape)
    weights = [0.3 * rng.standard_normal((3, 3, shape[-1], filters)), rng.standard_normal(filters)]
    layer.set_weights(weights)
    linear.set_weights(weights)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    assert bool(layer._winograd()) == (algorithm == "winograd")
    pre = linear.forward(x)
    close_to_formula(layer.forward(x, training=True), name, pre)
    close_to_formula(layer.forward(x), name, pre)


@pytest.mark.parametrize("name", ["elu", "gelu", "hard_sigmoid", "mish", "squareplus"])
def test_conv2d_batchnorm_fold_in_inference(backend, name):
    """A Model folds an inference batch norm (and its ReLU) into the Conv2D before it, whatever its activation."""
    rng = np.random.default_rng(3)
    model = nnscratch.Sequential([nnscratch.Input((5, 5, 2)), Conv2D(3, 3, padding="same", activation=name),
                                  BatchNormalization(), ReLU()])
    model.layers[1].set_weights([rng.uniform(0.5, 2, 3), rng.standard_normal(3), rng.standard_normal(3),
                                 rng.uniform(0.5, 2, 3)])
    x = rng.standard_normal((4, 5, 5, 2)).astype(np.float32)
    assert model.batchnorms_after_convolutions() == {1: True}
    steps = x
    for layer in model.layers:
        steps = layer.forward(steps)
    close(model.predict(x, verbose=0), steps)


def test_what_training_keeps(backend):
    """gelu, silu, mish, hard_silu, tanh_shrink and hard_tanh keep z + b in training (an Activation: its input
    itself); no other activation keeps it."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    for name in ["relu", "sigmoid", "tanh"] + [n for n in ALL if n not in FROM_Z]:
        for layer in (Dense(2, activation=name), Activation(name)):
            layer(x)
            layer.forward(x, training=True)
            assert layer._z is None and layer.logits is None, name
    for name in FROM_Z:
        dense, activation = Dense(2, activation=name), Activation(name)
        dense(x)
        y = dense.forward(x, training=True)
        np.testing.assert_array_equal(dense._z, x @ dense.kernel.value + dense.bias.value)
        assert not np.shares_memory(dense._z, y)
        activation(x)
        activation.forward(x, training=True)
        assert activation._z is x
        dense.forward(x)
        activation.forward(x)
        assert dense._z is None and activation._z is None     # inference keeps nothing


def test_backward_needs_a_kept_preactivation():
    layer = Dense(2, activation="gelu")
    x = np.ones((1, 3), np.float32)
    layer(x)
    y = layer.forward(x, training=True)
    layer._keep(y, True)      # as a kernel that fused the activation would leave it
    with pytest.raises(RuntimeError, match="derivative of gelu needs the pre-activation"):
        layer.backward(np.ones((1, 2), np.float32))


# ---------------------------------------------------------------------------
# LeakyReLU, ELU, ReLU's arguments
# ---------------------------------------------------------------------------

X = np.array([[-4.0, -1.0, -0.25, 0.5, 3.0, 7.0]], np.float32)


def test_leaky_relu_layer():
    assert LeakyReLU().negative_slope == 0.3           # Keras 3's layer default (its function's is 0.2)
    close(LeakyReLU()(X), formula("leaky_relu", X, 0.3))
    close(LeakyReLU(negative_slope=0.05)(X), formula("leaky_relu", X, 0.05))
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        layer = LeakyReLU(alpha=0.1)                     # Keras 2's name, as Keras 3 takes it
    assert layer.negative_slope == 0.1 and layer.get_config()["negative_slope"] == 0.1
    assert "activation" not in layer.get_config()
    with pytest.raises(ValueError, match="negative_slope cannot be negative, got -0.1"):
        LeakyReLU(-0.1)
    with pytest.raises(ValueError, match="negative_slope cannot be None"):
        LeakyReLU(None)
    with pytest.raises(TypeError, match="negative_slope must be a number, got '0.1'"):
        LeakyReLU("0.1")


def test_elu_layer():
    assert ELU().alpha == 1.0
    close(ELU()(X), formula("elu", X))
    close(ELU(alpha=0.5)(X), formula("elu", X, 0.5))
    assert ELU(0.5).get_config()["alpha"] == 0.5 and "activation" not in ELU().get_config()
    with pytest.raises(ValueError, match="alpha must be >= 0 in nnscratch"):
        ELU(alpha=-1.0)
    with pytest.raises(TypeError, match="alpha must be a number"):
        ELU(alpha=[1.0])


def test_relu_arguments():
    assert ReLU().activation == "relu"
    layer = ReLU(max_value=6.0)
    assert layer.activation == "relu6"
    close(layer(X), np.clip(X, 0, 6))
    layer = ReLU(negative_slope=0.1)
    assert layer.activation == "leaky_relu"
    close(layer(X), formula("leaky_relu", X, 0.1))
    assert ReLU(negative_slope=0.1).get_config()["negative_slope"] == 0.1
    assert {k: ReLU().get_config()[k] for k in ("max_value", "negative_slope", "threshold")} == \
        {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}
    for kwargs, message in [({"max_value": -1}, "max_value cannot be negative"),
                            ({"negative_slope": -1}, "negative_slope cannot be negative"),
                            ({"threshold": -1}, "threshold cannot be negative"),
                            ({"negative_slope": None}, "negative_slope cannot be None")]:
        with pytest.raises(ValueError, match=message):
            ReLU(**kwargs)
    for kwargs in ({"threshold": 0.5}, {"max_value": 3.0}, {"max_value": 6, "negative_slope": 0.1}):
        assert ReLU(**kwargs).activation == "relu_with"          # Keras's general formula (test_relu_arguments.py)


def test_only_a_plain_relu_is_fused_into_batch_norm():
    """The Model fuses BatchNormalization + ReLU only for ReLU(); a leaky or capped one runs as a layer of its own."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    for relu, fused in [(ReLU(), True), (ReLU(negative_slope=0.2), False), (ReLU(max_value=6), False),
                        (LeakyReLU(), False)]:
        model = nnscratch.Sequential([nnscratch.Input((3,)), BatchNormalization(), relu])
        assert model.steps()[0] == (0, fused)
        model.layers[0].set_weights([rng.uniform(0.5, 2, 3), rng.standard_normal(3), rng.standard_normal(3),
                                     rng.uniform(0.5, 2, 3)])
        normalised = model.layers[0].forward(x)
        close(model.predict(x, verbose=0), relu.forward(normalised))


# ---------------------------------------------------------------------------
# Softmax(axis)
# ---------------------------------------------------------------------------

def test_softmax_layer_axes(backend):
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for axis in (-1, 3, 1, 2, -2, -3, [2]):
        layer = Softmax(axis=axis)
        y = layer(x)
        a = axis[0] if isinstance(axis, list) else axis
        e = np.exp(x - x.max(axis=a, keepdims=True))
        close(y, e / e.sum(axis=a, keepdims=True))
        assert y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_array_equal(Softmax()(x), Activation("softmax")(x))
    assert Softmax(axis=2).get_config()["axis"] == 2 and "activation" not in Softmax().get_config()


def test_softmax_layer_errors():
    with pytest.raises(ValueError, match="axis=0 is not an axis of a sample.*batch axis 0 is not supported"):
        Softmax(axis=0).build((4, 5))
    with pytest.raises(ValueError, match="axis=3 is not an axis of a sample"):
        Softmax(axis=3).build((4, 5))
    with pytest.raises(ValueError, match="axis=-4 is not an axis of a sample"):
        Softmax(axis=-4).build((4, 5))
    with pytest.raises(TypeError, match="axis must be one integer.*several axes are not supported"):
        Softmax(axis=(1, 2))
    with pytest.raises(TypeError, match="axis must be one integer"):
        Softmax(axis=1.0)


def test_softmax_layer_trains_as_the_softmax_activation():
    """As the last layer it is fused with categorical cross-entropy exactly as Activation("softmax") is."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    weights = None
    results = []
    for last in (Activation("softmax"), Softmax()):
        nnscratch.set_random_seed(0)
        model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3), last])
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        history = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        results.append((history.history["loss"], model.get_weights()))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# names, saving
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: Dense(3, activation="glu"), lambda: Conv2D(2, 3, activation="glu"),
                                  lambda: Activation("threshold"), lambda: Activation("sparse_max")])
def test_unknown_activation_names(make):
    with pytest.raises(ValueError, match=r"unknown activation '(glu|threshold|sparse_max)'; "
                                         r"expected one of .*'elu'.*'mish'"):
        make()


def test_aliases_are_saved_by_keras_names():
    assert Dense(2, activation="swish").get_config()["activation"] == "silu"       # as Keras's config
    assert Conv2D(2, 3, activation="hard_swish").get_config()["activation"] == "hard_silu"
    assert Activation("HARD_SWISH").get_config()["activation"] == "hard_silu"


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((24, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    model = nnscratch.Sequential([
        nnscratch.Input((6, 6, 1)),
        Conv2D(4, 3, padding="same", activation="gelu"), LeakyReLU(0.1), MaxPooling2D(),
        Conv2D(4, 3, padding="same", activation="selu"), ELU(alpha=0.5), ReLU(max_value=6.0),
        Flatten(), Dense(8, activation="swish"), Dense(8, activation="hard_sigmoid"),
        Activation("softsign"), Dense(8, activation="mish"), Activation("hard_swish"), Dense(8, activation="celu"),
        Activation("squareplus"), Dense(3), Softmax(),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "activations.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert [(type(l).__name__, l.get_config()) for l in loaded.layers] == \
        [(type(l).__name__, l.get_config()) for l in model.layers]
    assert loaded.layers[1].negative_slope == 0.1 and loaded.layers[4].alpha == 0.5
    assert loaded.layers[5].activation == "relu6" and loaded.layers[7].activation == "silu"
    assert [l.activation for l in loaded.layers[10:14]] == ["mish", "hard_silu", "celu", "squareplus"]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)     # training goes on as it would have
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
