"""Activity regularizers: a penalty on a layer's output, as Keras 3 adds it.

For a layer with ``activity_regularizer=R`` and a batch of ``N`` samples the
Model records ``R(y) / N`` for the layer's output ``y`` at each forward (the
loss that ``fit`` and ``evaluate`` report includes it) and, in training, adds
``R'(y) / N`` to dL/dy in backward. Such a layer takes part in no fusion. The
gradient checks run in float64 over generated shapes; values are checked
against NumPy formulas written here (and were compared with Keras 3.15 once,
outside the suite: losses and one SGD step agree to float32 rounding).
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import optimizers
from nnscratch.gradcheck import check_model
from nnscratch.layers import (Activation, Add, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D, ReLU)
from nnscratch.models.saving import load_model
from nnscratch.regularizers import L1, L1L2, L2

try:
    from tests.grad_strategies import (STEP, TOLERANCE, batch_sizes, feature_sizes, float64_floatx, kernel_values,
                                       min_abs, penalties, random_bn_weights, rng_seeds)
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import (STEP, TOLERANCE, batch_sizes, feature_sizes, float64_floatx, kernel_values,
                                 min_abs, penalties, random_bn_weights, rng_seeds)


def penalty(regularizer, y):
    """``R(y) / N`` from the regularizer's factors, in NumPy."""
    config = regularizer.get_config()
    return (config.get("l1", 0.0) * np.abs(y).sum() + config.get("l2", 0.0) * np.square(y).sum()) / len(y)


def assert_gradients_match(report):
    assert report.max_error < TOLERANCE, f"\n{report}"


# ------------------------------------------------------------------ the layers' argument
@pytest.mark.parametrize("identifier, expected", [("l1", L1(0.01)), ("l2", L2(0.01)), (L1L2(0.1, 0.2), L1L2(0.1, 0.2)),
                                                  ({"class_name": "L2", "config": {"l2": 0.3}}, L2(0.3))])
@pytest.mark.parametrize("make", [lambda r: Dense(3, activity_regularizer=r),
                                  lambda r: Conv2D(2, 3, activity_regularizer=r),
                                  lambda r: BatchNormalization(activity_regularizer=r),
                                  lambda r: MaxPooling2D(activity_regularizer=r),
                                  lambda r: ReLU(activity_regularizer=r), lambda r: Flatten(activity_regularizer=r)])
def test_every_layer_takes_an_activity_regularizer_and_its_config_keeps_it(make, identifier, expected):
    layer = make(identifier)
    assert layer.activity_regularizer == expected
    config = layer.get_config()
    assert config["activity_regularizer"]["class_name"] == type(expected).__name__
    assert type(layer).from_config(config).activity_regularizer == expected
    assert "activity_regularizer" not in type(layer).from_config({**config, "activity_regularizer": None}).get_config()


@pytest.mark.parametrize("identifier, error, match", [("l3", ValueError, "unknown regularizer 'l3'"),
                                                      (lambda y: 0.0, TypeError, "needs the penalty's gradient"),
                                                      (0.01, TypeError, "a regularizer must be")])
def test_bad_activity_regularizers_are_refused(identifier, error, match):
    with pytest.raises(error, match=match):
        Dense(3, activity_regularizer=identifier)


# ------------------------------------------------------------------ the penalties
def _mlp(kernel_regularizer=None):
    return nnscratch.Sequential([nnscratch.Input((5,)),
                                 Dense(4, activation="relu", activity_regularizer=L1(0.1),
                                       kernel_regularizer=kernel_regularizer),
                                 Dense(3, activation="softmax", activity_regularizer=L1L2(0.02, 0.3))])


def test_activity_losses_are_each_outputs_penalty_over_the_batch_and_model_losses_list_them_first():
    model = _mlp(kernel_regularizer=L2(0.05))
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    hidden = model.layers[0].forward(x)
    output = model.layers[1].forward(hidden)
    model.predict(x, batch_size=6, verbose=0)
    np.testing.assert_allclose(model.activity_losses, [penalty(L1(0.1), hidden), penalty(L1L2(0.02, 0.3), output)],
                               rtol=1e-6)
    assert model.activity_loss() == pytest.approx(sum(model.activity_losses))
    weight_penalty = 0.05 * np.square(model.layers[0].kernel.value).sum()
    np.testing.assert_allclose(model.losses, [*model.activity_losses, weight_penalty], rtol=1e-6)
    assert model.regularization_loss() == pytest.approx(weight_penalty, rel=1e-6)   # weights only
    # a model without activity regularizers records nothing
    plain = nnscratch.Sequential([nnscratch.Input((5,)), Dense(3)])
    plain.predict(x, verbose=0)
    assert plain.activity_losses == [] and plain.activity_loss() == 0.0 and plain.losses == []


def test_evaluate_and_train_on_batch_report_the_data_loss_plus_the_penalties():
    model = _mlp()
    model.compile(optimizers.SGD(0.1), "categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    probabilities = model.predict(x, verbose=0)
    data_loss = float(np.mean(-np.log(np.sum(y * probabilities, axis=1))))
    expected = data_loss + model.activity_loss()
    assert model.evaluate(x, y, batch_size=8, verbose=0) == pytest.approx(expected, rel=1e-5)
    # two batches of 4: the mean of the two batches' (loss + penalty of that batch)
    halves = [(slice(0, 4)), slice(4, 8)]
    per_batch = []
    for part in halves:
        model.predict(x[part], verbose=0)
        per_batch.append(float(np.mean(-np.log(np.sum(y[part] * probabilities[part], axis=1))))
                         + model.activity_loss())
    assert model.evaluate(x, y, batch_size=4, verbose=0) == pytest.approx(np.mean(per_batch), rel=1e-5)
    assert model.train_on_batch(x, y) == pytest.approx(expected, rel=1e-5)  # before the update, as Keras


def test_the_penalty_moves_training_it_shrinks_the_penalised_output():
    """With a large L1 on the hidden layer's output, training drives that output's size down."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]
    sizes = {}
    for factor in (0.0, 0.5):
        nnscratch.set_random_seed(3)
        model = nnscratch.Sequential([nnscratch.Input((5,)),
                                      Dense(16, activation="relu", activity_regularizer=L1(factor) if factor else None),
                                      Dense(3, activation="softmax")])
        model.compile(optimizers.SGD(0.05), "categorical_crossentropy")
        model.fit(x, y, epochs=20, batch_size=16, verbose=0, shuffle=False)
        sizes[factor] = float(np.abs(model.layers[0].forward(x)).sum(axis=1).mean())
    assert sizes[0.5] < 0.5 * sizes[0.0]


# ------------------------------------------------------------------ no fusion
def test_a_regularized_layer_takes_part_in_no_fusion():
    def cnn(**regularized):
        def reg(name):
            return L2(0.1) if name in regularized else None
        return nnscratch.Sequential([
            nnscratch.Input((8, 8, 2)),
            Conv2D(3, 3, padding="same", activation="relu", activity_regularizer=reg("conv_relu")),
            MaxPooling2D(activity_regularizer=reg("pool_a")),
            Conv2D(4, 3, padding="same", activity_regularizer=reg("conv")),
            BatchNormalization(activity_regularizer=reg("bn")),
            ReLU(activity_regularizer=reg("relu")),
            MaxPooling2D(activity_regularizer=reg("pool_b")),
            Flatten(), Dense(3, activation="softmax", activity_regularizer=reg("dense"))])

    plain = cnn()
    plain.compile("sgd", "categorical_crossentropy")
    assert plain.steps()[3] == (3, True) and plain.poolings_through_relu() == {1}
    assert plain.convolution_poolings() == {0: 1} and plain.batchnorm_poolings() == {3: 5}
    assert plain.batchnorms_after_convolutions() == {3: True} and plain._fused_output()
    for name, broken in [("conv_relu", ["relu_maxpool"]), ("pool_a", ["relu_maxpool"]), ("conv", ["conv_bn"]),
                         ("bn", ["bn_relu", "bn_maxpool", "conv_bn"]), ("relu", ["bn_relu", "bn_maxpool"]),
                         ("pool_b", ["bn_maxpool"]),
                         ("dense", ["loss"])]:
        model = cnn(**{name: True})
        model.compile("sgd", "categorical_crossentropy")
        fusions = {"relu_maxpool": model.poolings_through_relu() == set() and model.convolution_poolings() == {},
                   "conv_bn": model.batchnorms_after_convolutions() == {},
                   "bn_relu": (3, False) in model.steps(), "bn_maxpool": model.batchnorm_poolings() == {},
                   "loss": not model._fused_output()}
        assert all(fusions[fusion] for fusion in broken), (name, fusions)
        # and the fusions away from the penalised layer stay
        assert model.convolution_poolings() == ({} if "relu_maxpool" in broken else {0: 1}), name
        assert model._fused_output() == ("loss" not in broken), name


def test_fusions_on_or_off_give_the_same_penalties_and_gradients():
    nnscratch.set_random_seed(4)
    model = nnscratch.Sequential([
        nnscratch.Input((6, 6, 2)),
        Conv2D(3, 3, padding="same", activation="relu", activity_regularizer=L2(0.2)), MaxPooling2D(),
        Conv2D(4, 3, padding="same"), BatchNormalization(), ReLU(activity_regularizer=L1(0.1)), MaxPooling2D(),
        Flatten(), Dense(3, activation="softmax")])
    x = np.random.default_rng(5).standard_normal((4, 6, 6, 2)).astype(np.float32)
    results, weights = [], model.get_weights()
    for fuse in (True, False):
        model.set_weights(weights)   # the same moving statistics for both predictions
        for switch in ("fuse_batchnorm_relu", "fuse_relu_maxpool", "fuse_batchnorm_maxpool", "fuse_conv_maxpool",
                       "fuse_conv_batchnorm_inference"):
            setattr(model, switch, fuse)
        inference = model.predict(x, verbose=0), model.activity_losses
        out = model.forward(x, training=True)
        model.backward(np.ones_like(out) / out.size)
        results.append((inference, model.activity_losses, [p.grad.copy() for p in model.parameters()]))
    (inference_on, train_on, grads_on), (inference_off, train_off, grads_off) = results
    np.testing.assert_allclose(inference_on[0], inference_off[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(inference_on[1], inference_off[1], rtol=1e-5)
    np.testing.assert_allclose(train_on, train_off, rtol=1e-6)
    for on, off in zip(grads_on, grads_off):
        np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ gradient checks (float64)
@settings(max_examples=20)
@given(n=st.integers(3, 5), features=feature_sizes(), hidden=st.integers(2, 5), first=penalties(),
       bn_reg=st.none() | penalties(), relu_reg=st.none() | penalties(), last=penalties(), seed=rng_seeds())
def test_gradients_of_a_chain_with_penalties_on_dense_batchnorm_relu_and_softmax(n, features, hidden, first, bn_reg,
                                                                                  relu_reg, last, seed):
    """Dense(tanh) -> BN -> ReLU -> Dense(softmax), penalties on any of them (BN + ReLU fused when neither has one)."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        model = nnscratch.Sequential([
            nnscratch.Input((features,)), Dense(hidden, activation="tanh", activity_regularizer=first),
            BatchNormalization(activity_regularizer=bn_reg), ReLU(activity_regularizer=relu_reg),
            Dense(3, activation="softmax", activity_regularizer=last)])
    dense, bn = model.layers[0], model.layers[1]
    dense.set_weights([kernel_values(rng, (features, hidden), features), rng.uniform(-0.5, 0.5, hidden)])
    bn.set_weights(random_bn_weights(rng, hidden))
    x = rng.standard_normal((n, features))
    normalised = bn.forward(dense.forward(x, training=True), training=True)
    assume(min_abs(normalised) > 1e-3)                 # ReLU's kink, and L1's at 0 on the BN output
    assume(min_abs(dense.forward(x)) > 1e-3)           # L1's kink on the tanh output
    assert model.steps()[1] == (1, bn_reg is None and relu_reg is None)
    assert_gradients_match(check_model(model, x, seed=seed % 1000, h=STEP))


@settings(max_examples=15)
@given(n=batch_sizes(), features=feature_sizes(), regularizer=penalties(), on_branch=st.booleans(), seed=rng_seeds())
def test_gradients_of_a_residual_graph_with_a_penalised_layer(n, features, regularizer, on_branch, seed):
    """Input -> Dense(tanh) -> [Dense(tanh) branch] + skip -> Dense(linear): a penalty on the branch or on the sum."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        inputs = nnscratch.Input((features,))
        trunk = Dense(features, activation="tanh")(inputs)
        branch = Dense(features, activation="tanh", activity_regularizer=regularizer if on_branch else None)(trunk)
        total = Add(activity_regularizer=None if on_branch else regularizer)([trunk, branch])
        model = nnscratch.Model(inputs, Dense(2)(total))
    assert model.graph is not None
    for layer in model.layers:
        if layer.params:
            fan_in = layer.input_shape[-1]
            layer.set_weights([kernel_values(rng, layer.kernel.shape, fan_in), rng.uniform(-0.3, 0.3, layer.units)])
    x = rng.standard_normal((n, features))
    for _, y in model.forward_steps(x):
        assume(min_abs(y) > 1e-3)                      # L1's kink at 0
    report = check_model(model, x, seed=seed % 1000, h=STEP)
    assert_gradients_match(report)


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_gradients_of_a_cnn_whose_fusions_a_penalty_switches_off(float64, seed):
    """Conv2D(relu) -> MaxPool -> Conv2D -> BN -> ReLU -> MaxPool -> Flatten -> Dense(softmax), penalties on
    the first convolution, the batch norm and the output: the fusions around them step aside."""
    nnscratch.set_random_seed(seed)
    model = nnscratch.Sequential([
        nnscratch.Input((6, 6, 2)),
        Conv2D(3, 3, padding="same", activation="relu", activity_regularizer=L2(0.3)), MaxPooling2D(),
        Conv2D(4, 3, padding="same"), BatchNormalization(activity_regularizer=L1L2(0.05, 0.2)),
        Activation("relu"), MaxPooling2D(), Flatten(),
        Dense(3, activation="softmax", activity_regularizer=L2(0.5))])
    assert model.poolings_through_relu() == {5} and model.batchnorm_poolings() == {}
    x = np.random.default_rng(seed).standard_normal((3, 6, 6, 2))
    outputs = dict(model.forward_steps(x, training=True))
    assert min_abs(outputs[3]) > 1e-3, "pick another seed: a batch-norm output is too close to the kinks"
    assert_gradients_match(check_model(model, x, seed=seed, h=STEP))


@settings(max_examples=15)
@given(n=st.integers(3, 6), features=feature_sizes(), regularizer=penalties(), seed=rng_seeds())
def test_a_training_step_follows_the_gradient_of_the_loss_plus_the_penalties(n, features, regularizer, seed):
    """train_on_batch with SGD(1): the update is the gradient of mean cross-entropy + R(y)/N on the softmax output
    (so the fused softmax + cross-entropy gradient must not be used), checked by central differences."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        model = nnscratch.Sequential([nnscratch.Input((features,)), Dense(4, activation="tanh"),
                                      Dense(3, activation="softmax", activity_regularizer=regularizer)])
        model.compile(optimizers.SGD(1.0), "categorical_crossentropy")
    x = rng.standard_normal((n, features))
    y = np.eye(3)[rng.integers(0, 3, n)]
    before = [p.value.copy() for p in model.parameters()]

    def loss():
        probabilities = model.forward(x, training=True)
        return float(np.mean(-np.log(np.sum(y * probabilities, axis=1)))) + model.activity_loss()

    reported = model.train_on_batch(x, y)
    step = [b - p.value for b, p in zip(before, model.parameters())]
    for param, value in zip(model.parameters(), before):
        param.value[...] = value
    assert reported == pytest.approx(loss(), rel=1e-7)
    numeric = [nnscratch.gradcheck.numerical_gradient(loss, param.value, STEP) for param in model.parameters()]
    for analytic, expected in zip(step, numeric):
        np.testing.assert_allclose(analytic, expected, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ saving
def test_a_saved_model_keeps_its_activity_regularizers(tmp_path):
    model = _mlp()
    model.compile("adam", "categorical_crossentropy")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert [layer.activity_regularizer for layer in loaded.layers] == [L1(0.1), L1L2(0.02, 0.3)]
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)
