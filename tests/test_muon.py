"""Muon: the Newton-Schulz orthogonalisation, which weights take the Muon step and which AdamW's, both steps
against Keras 3.15's rules restated, the two weight decays, a model that trains (saving: test_saving_optimizer)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch import optimizers
from nnscratch.layers import Conv2D, Dense, Embedding, Flatten
from nnscratch.optimizers.muon import newton_schulz5
from nnscratch.parameter import Parameter

try:
    from tests.strategies import rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import rng_seeds


def param(value, path, grad=None, dtype=np.float64):
    p = Parameter(np.array(value, dtype=dtype), path.split("/")[-1], path=path)
    if grad is not None:
        p.grad[...] = grad
    return p


@given(rows=st.integers(1, 12), cols=st.integers(1, 12), seed=rng_seeds())
def test_newton_schulz_keeps_the_singular_vectors_and_pulls_the_singular_values_towards_one(rows, cols, seed):
    x = np.random.default_rng(seed).standard_normal((rows, cols))
    u, sigma, vt = np.linalg.svd(x, full_matrices=False)
    y = newton_schulz5(x)
    np.testing.assert_allclose(newton_schulz5(x.T), y.T, rtol=1e-12, atol=1e-12)          # a tall one is transposed
    inner = u.T @ y @ vt.T                                  # U^T NS(x) V: diagonal, as NS(x) = U f(Sigma) V^T
    np.testing.assert_allclose(inner, np.diag(np.diag(inner)), atol=1e-9)
    s = sigma / (np.linalg.norm(x) + 1e-7)                  # each singular value goes through the quintic alone
    for _ in range(5):
        s = 3.4445 * s - 4.7750 * s ** 3 + 2.0315 * s ** 5
    np.testing.assert_allclose(np.diag(inner), s, atol=1e-9)
    pulled = sigma / np.linalg.norm(x) >= 0.01              # from 1/100 of the norm up: within [0.68, 1.14]
    assert ((s[pulled] > 0.68) & (s[pulled] < 1.14)).all()


def test_which_weights_take_the_muon_step():
    muon = optimizers.Muon(exclude_layers=["^head/"])
    kernel, bias = param(np.ones((3, 4)), "dense/kernel"), param(np.ones(4), "dense/bias")
    conv, table = param(np.ones((3, 3, 1, 2)), "conv2d/kernel"), param(np.ones((5, 2)), "embedding/embeddings")
    head = param(np.ones((4, 2)), "head/kernel")
    assert [muon.uses_adamw(p) for p in (kernel, bias, conv, table, head)] == [False, True, True, True, True]
    assert not optimizers.Muon(exclude_embeddings=False).uses_adamw(table)
    assert muon.get_slots(kernel)["velocity"].shape == (0,) and muon.get_slots(bias)["velocity"].shape == (4,)
    layer = Dense(3, name="features")                       # a layer gives its weights their paths
    layer.build((2,))
    assert layer.kernel.path == "features/kernel" and layer.bias.path == "features/bias"


def keras_muon_steps(w, grads, lr, momentum=0.95, nesterov=True, rms_rate=0.2, steps=5):
    """Keras 3.15's ``_muon_update_step`` restated: m += g + m (mu - 1); u = g + mu m; w -= lr_adjust(lr NS(u))."""
    w, m = w.copy(), np.zeros_like(w)
    for g in grads:
        m += g + m * (momentum - 1)
        u = g + momentum * m if nesterov else m
        update = lr * newton_schulz5(u, steps)
        w -= update if rms_rate is None else update * np.sqrt(max(w.shape)) * rms_rate
    return w


@pytest.mark.parametrize("nesterov, rms_rate", [(True, 0.2), (False, None), (True, None)])
def test_the_muon_step_as_keras(nesterov, rms_rate):
    rng = np.random.default_rng(1)
    w0, grads = rng.standard_normal((4, 6)), [rng.standard_normal((4, 6)) for _ in range(4)]
    p = param(w0, "dense/kernel")
    opt = optimizers.Muon(learning_rate=0.05, nesterov=nesterov, rms_rate=rms_rate, weight_decay=None)
    for g in grads:
        p.grad[...] = g
        opt.apply_gradients([p])
    np.testing.assert_allclose(p.value, keras_muon_steps(w0, grads, 0.05, nesterov=nesterov, rms_rate=rms_rate),
                               rtol=1e-12, atol=1e-14)


def test_the_other_weights_take_keras_adamw_step_with_its_own_rate_and_decay():
    rng = np.random.default_rng(2)
    w0, grads = rng.standard_normal(5), [rng.standard_normal(5) for _ in range(3)]
    p = param(w0, "dense/bias")
    opt = optimizers.Muon(learning_rate=0.1, adam_lr_ratio=0.5, adam_weight_decay=0.2, weight_decay=0.9,
                          adam_beta_1=0.8, adam_beta_2=0.9, epsilon=1e-6)
    w, m, v = w0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):
        p.grad[...] = g
        opt.apply_gradients([p])
        w -= w * 0.1 * 0.2                                       # adam_weight_decay, times the learning rate
        m += (g - m) * 0.2
        v += (g * g - v) * 0.1
        w -= m * (0.1 * 0.5 * np.sqrt(1 - 0.9 ** t) / (1 - 0.8 ** t)) / (np.sqrt(v) + 1e-6)
    np.testing.assert_allclose(p.value, w, rtol=1e-12)


def test_the_muon_weights_decay_by_weight_decay_and_exclusions_hold():
    kernel, bias = param(np.full((2, 3), 2.0), "dense/kernel"), param(np.full(3, 2.0), "dense/bias")
    opt = optimizers.Muon(learning_rate=0.1, weight_decay=0.5, adam_weight_decay=0.25)
    opt.apply_weight_decay([kernel, bias])
    np.testing.assert_allclose(kernel.value, 2.0 * (1 - 0.1 * 0.5))
    np.testing.assert_allclose(bias.value, 2.0 * (1 - 0.1 * 0.25))
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply_weight_decay([bias])
    np.testing.assert_allclose(bias.value, 2.0 * (1 - 0.1 * 0.25))


def test_a_model_trains_in_float32_with_it_and_its_config_round_trips():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 8, (64, 5))
    y = (x.sum(axis=1) > 17).astype(np.int64)
    nnscratch.set_random_seed(4)
    model = nnscratch.Sequential([nnscratch.Input((5,)), Embedding(8, 4), Flatten(), Dense(16, activation="relu"),
                                  Dense(2, activation="softmax")])
    model.compile(optimizers.Muon(learning_rate=0.02), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0, seed=1).history
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert all(p.value.dtype == np.float32 for p in model.parameters())
    opt = optimizers.Muon(exclude_layers=["out"], rms_rate=None, nesterov=False, ns_steps=3)
    again = optimizers.get(optimizers.serialize(opt))
    assert isinstance(again, optimizers.Muon) and again.get_config() == opt.get_config()
    images = nnscratch.Sequential([nnscratch.Input((5, 5, 1)), Conv2D(2, 3), Flatten(), Dense(2)])
    images.compile(optimizers.Muon(), "mse")
    images.train_on_batch(rng.standard_normal((4, 5, 5, 1)).astype(np.float32), np.zeros((4, 2), np.float32))
    assert images.optimizer.get_slots(images.layers[0].kernel)["velocity"].shape == (3, 3, 1, 2)   # AdamW: 4-D


@pytest.mark.parametrize("kwargs, match", [({"momentum": 1.0}, "momentum"), ({"ns_steps": 0}, "ns_steps"),
                                           ({"adam_beta_1": 1.0}, "adam_beta_1"), ({"rms_rate": -1}, "rms_rate"),
                                           ({"exclude_layers": "dense"}, "exclude_layers")])
def test_bad_hyperparameters_are_refused(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        optimizers.Muon(**kwargs)
