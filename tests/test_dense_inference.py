"""Dense layers in a pass of inference: the kernel kept packed for ``predict``, ``evaluate`` and validation.

The pass (``Layer.begin_inference`` / ``end_inference``, run by the trainer)
must give what a plain ``forward`` gives, up to float rounding; it must be
taken where it pays and only there; and the packed copy must never
outlive its pass, so that weights changed by training or ``set_weights`` are
always the ones used.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import nnscratch
from nnscratch import kernels
from nnscratch.kernels import fast
from nnscratch.layers import Dense, Dropout, Flatten, Layer
from nnscratch.layers import dense as dense_module


@pytest.fixture
def counted(monkeypatch):
    """Count the calls of the fast twin's ``FixedProduct`` as (units, inputs); let every Dense prepare its pass."""
    calls = []

    class Counted(fast.FixedProduct):
        def __call__(self, a):
            calls.append((self.shape[1], self.shape[0]))
            return super().__call__(a)

    monkeypatch.setattr(fast, "FixedProduct", Counted)
    monkeypatch.setattr(fast, "fixed_product_pays", lambda k, n: True)
    monkeypatch.setattr(dense_module, "PREPARE_FROM_SAMPLES", 0)
    kernels.set_backend("numba")
    return calls


def mlp():
    model = nnscratch.Sequential([nnscratch.Input((6, 5, 1)), Flatten(), Dense(13, activation="relu"),
                                  Dropout(0.5), Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 5, 1)).astype(np.float32), rng.integers(0, 4, n)


def dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, Dense)]


def test_predict_takes_the_packed_product_and_agrees_with_forward(counted):
    model, (x, _) = mlp(), data()
    plain = model.forward(x)  # outside a pass: x @ W through BLAS
    assert not counted
    out = model.predict(x, batch_size=16)
    assert counted == [(13, 30), (4, 13)] * 4  # both layers, all 4 batches
    np.testing.assert_allclose(out, plain, rtol=1e-5, atol=1e-7)
    assert all(layer._product is None for layer in dense_layers(model))  # dropped after the pass


def test_predict_gives_the_same_bits_for_any_batch_size(counted):
    """Every row takes the same instructions in the packed product, wherever it sits in its batch."""
    model = nnscratch.Sequential([nnscratch.Input((300,)), Dense(9, activation="relu"), Dense(5, activation="softmax")])
    x = np.random.default_rng(4).standard_normal((41, 300)).astype(np.float32)
    whole = model.predict(x, batch_size=41)
    for batch_size in (1, 2, 7, 16, 40):
        np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), whole)
    assert counted  # the packed product ran


def test_evaluate_and_validation_take_it_and_training_does_not(counted):
    model, (x, y) = mlp(), data()
    loss, accuracy = model.evaluate(x, y, batch_size=25)
    assert len(counted) == 4
    predictions = model.predict(x)
    expected = -np.mean(np.log(predictions[np.arange(len(y)), y]))
    assert loss == pytest.approx(expected, rel=1e-5)
    counted.clear()
    model.fit(x, y, epochs=2, batch_size=10, validation_data=data(20, seed=1), verbose=0)
    assert len(counted) == 2 * 2 * 2  # only the validation passes: 2 batches of 10, 2 layers, 2 epochs
    counted.clear()
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    assert not counted


def test_weights_changed_between_passes_are_used(counted):
    model, (x, y) = mlp(), data()
    before = model.predict(x)
    model.train_on_batch(x, y)  # the optimizer changes every kernel in place
    after = model.predict(x)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, model.forward(x), rtol=1e-5, atol=1e-7)
    first = dense_layers(model)[0]
    kernel = first.kernel.value * 2
    first.set_weights([kernel, first.bias.value])
    np.testing.assert_allclose(model.predict(x), model.forward(x), rtol=1e-5, atol=1e-7)


def test_the_pass_ends_when_predict_fails(counted):
    model, (x, _) = mlp(), data()

    def batches():
        yield x[:10]
        raise RuntimeError("the data source broke")

    with pytest.raises(RuntimeError, match="data source broke"):
        model.predict(batches(), steps=3)
    assert counted  # the first batch ran in the pass
    assert all(layer._product is None for layer in dense_layers(model))


def test_short_passes_keep_blas(counted, monkeypatch):
    monkeypatch.setattr(dense_module, "PREPARE_FROM_SAMPLES", 51)
    model, (x, _) = mlp(), data(50)
    model.predict(x)
    assert not counted  # 50 samples: packing is left out below PREPARE_FROM_SAMPLES
    model.predict(np.concatenate([x, x[:1]]))
    assert counted


def test_where_it_does_not_pay_blas_stays(counted, monkeypatch):
    monkeypatch.setattr(fast, "fixed_product_pays", lambda k, n: False)
    model, (x, _) = mlp(), data()
    model.predict(x)
    assert not counted
    kernels.set_backend("numpy")  # the reference never packs
    assert kernels.backend().fixed_product_pays(30, 13) is False
    np.testing.assert_allclose(model.predict(x), model.forward(x), rtol=1e-6)


@pytest.fixture
def dense_product():
    """Set ``kernels.set_dense_product`` within a test; restore the setting after it."""
    previous = kernels.get_dense_product()
    yield kernels.set_dense_product
    kernels.set_dense_product(previous)


def test_the_setting_overrides_the_twins_decision(counted, monkeypatch, dense_product):
    model, (x, _) = mlp(), data()
    dense_product("blas")  # the twin says it pays (the fixture), BLAS is asked for
    blas = model.predict(x, batch_size=16)
    assert not counted
    monkeypatch.setattr(fast, "fixed_product_pays", lambda k, n: False)
    dense_product("panels")  # the twin says it does not pay, the panels are asked for
    panels = model.predict(x, batch_size=16)
    assert counted == [(13, 30), (4, 13)] * 4
    np.testing.assert_allclose(panels, blas, rtol=1e-5, atol=1e-7)
    counted.clear()
    dense_product("auto")  # the twin decides again
    model.predict(x, batch_size=16)
    assert not counted


def test_the_panels_setting_with_the_reference_twin_agrees_with_forward(dense_product):
    kernels.set_backend("numpy")
    model, (x, _) = mlp(), data()
    dense_product("panels")
    assert kernels.use_fixed_product(30, 13) and not kernels.use_fixed_product(0, 13)
    np.testing.assert_allclose(model.predict(x), model.forward(x), rtol=1e-6)


def test_an_unknown_setting_is_refused_by_name(dense_product):
    with pytest.raises(ValueError, match="dense product must be one of .*'auto'.*got 'mkl'"):
        dense_product("mkl")
    assert kernels.get_dense_product() in kernels.DENSE_PRODUCTS


def test_the_environment_variable_sets_it_and_a_bad_one_fails_on_import():
    code = "from nnscratch import kernels; print(kernels.get_dense_product())"
    for value, expected in (("blas", "blas"), ("", "auto")):
        env = dict(os.environ, NNSCRATCH_DENSE_PRODUCT=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected
    env = dict(os.environ, NNSCRATCH_DENSE_PRODUCT="fast")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "dense product must be one of" in out.stderr


def test_the_default_decision_on_this_machine():
    """Whatever the CPU, predict agrees with forward (BLAS or the packed product, as the twin decides)."""
    model, (x, _) = mlp(), data(600)
    np.testing.assert_allclose(model.predict(x, batch_size=100), model.forward(x), rtol=1e-5, atol=1e-7)


def test_float64_models_take_it_too(counted, float64):
    model, (x, _) = mlp(), data()
    out = model.predict(x.astype(np.float64))
    assert counted and out.dtype == np.float64
    np.testing.assert_allclose(out, model.forward(x.astype(np.float64)), rtol=1e-12)


def test_layers_without_preparation_are_untouched():
    class Twice(Layer):
        def forward(self, x, training=False):
            return 2 * x

        def backward(self, grad_output):
            return 2 * grad_output

    model = nnscratch.Sequential([nnscratch.Input((3,)), Twice(), Dense(2)])
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(model.predict(x), model.forward(x), rtol=1e-6)


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_bias_and_activation_in_the_product_give_the_bits_of_separate_steps(counted, activation, use_bias):
    """The tiles add the bias and apply ReLU as they store: the same numbers as the product, then the activation."""
    layer = Dense(9, activation=activation, use_bias=use_bias)
    layer.build((21,))
    if use_bias:
        layer.bias.value[...] = np.random.default_rng(1).standard_normal(9)
    x = np.random.default_rng(2).standard_normal((33, 21)).astype(np.float32)
    layer.begin_inference(len(x))
    try:
        y = layer.forward(x)
    finally:
        layer.end_inference()
    assert counted == [(9, 21)]
    z = fast.matmul_panels(x, fast.pack_panels(layer.kernel.value), 9)
    bias = layer.bias.value if use_bias else None
    if activation == "softmax":
        expected = fast.bias_softmax(z, bias)
        np.testing.assert_array_equal(layer.logits, z)  # kept for the fused cross-entropy
    else:
        expected = fast.bias_activation(z, bias, activation)
    np.testing.assert_array_equal(y, expected)


def test_the_first_batch_packs_the_kernel_and_a_failed_one_leaves_it_to_the_next(counted):
    layer = Dense(20, activation="relu")
    layer.build((5,))
    x = np.random.default_rng(4).standard_normal((8, 5)).astype(np.float32)
    layer.begin_inference(len(x))
    try:
        product = layer._product
        assert product._w is layer.kernel.value
        with pytest.raises(ValueError, match="expected input shape"):
            layer.forward(x[:, :4])
        assert product._w is not None  # nothing packed yet
        first = layer.forward(x)
        assert product._w is None
        np.testing.assert_array_equal(product.w_p, fast.pack_panels(layer.kernel.value))
        np.testing.assert_array_equal(layer.forward(x), first)  # later batches read the packed panels
        np.testing.assert_allclose(first, np.maximum(x @ layer.kernel.value + layer.bias.value, 0), rtol=1e-6,
                                   atol=1e-7)
    finally:
        layer.end_inference()
    assert layer._product is None and counted == [(20, 5)] * 2
