"""Embedding: the lookup, its gradient (repeated indices add up), index checks, and a model that learns with it.

The embeddings' gradient is checked by central differences in float64 (the
indices themselves have no gradient, so ``check_layer``, which also perturbs
the input, does not apply). Against Keras 3.15, once, outside the suite:
Embedding -> LSTM -> Dense softmax agree after an SGD step to 4e-8.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import optimizers
from nnscratch.gradcheck import numerical_gradient
from nnscratch.layers import Dense, Embedding, Flatten, GlobalAveragePooling1D
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, float64_floatx, rng_seeds


def test_forward_looks_up_rows_for_any_input_rank_and_integer_valued_floats():
    layer = Embedding(10, 3)
    layer.build((2, 4))
    table = layer.embeddings.value
    x = np.array([[[1, 2, 3, 4], [0, 9, 9, 1]]])
    y = layer.forward(x)
    assert y.shape == (1, 2, 4, 3) and layer.output_shape == (None, 2, 4, 3)
    np.testing.assert_array_equal(y[0, 1, 1], table[9])
    np.testing.assert_array_equal(layer.forward(x.astype(np.float32)), y)   # a model's float32 input
    assert np.abs(table).max() <= 0.05                                        # Keras's "uniform" default


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 4), length=st.integers(1, 6), vocabulary=st.integers(1, 6), width=st.integers(1, 4),
       seed=rng_seeds())
def test_gradient_of_the_table_by_central_differences(n, length, vocabulary, width, seed):
    """Small vocabularies: indices repeat, and their rows' gradients must add up."""
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = Embedding(vocabulary, width)
        layer.build((length,))
    x = rng.integers(0, vocabulary, (n, length))
    projection = rng.standard_normal((n, length, width))

    def loss():
        return float(np.sum(projection * layer.forward(x)))

    layer.forward(x, training=True)
    grad_x = layer.backward(projection)
    np.testing.assert_array_equal(grad_x, np.zeros((n, length)))             # indices have no gradient
    numeric = numerical_gradient(loss, layer.embeddings.value, STEP)
    np.testing.assert_allclose(layer.embeddings.grad, numeric, rtol=1e-8, atol=1e-9)
    counts = np.bincount(x.ravel(), minlength=vocabulary)
    assert np.all(layer.embeddings.grad[counts == 0] == 0)                   # unused rows get nothing


@pytest.mark.parametrize("bad, shown", [(10, "10"), (-1, "-1"), (2.5, "2.5")])
def test_indices_outside_the_table_or_not_integers_are_refused(bad, shown):
    layer = Embedding(10, 3)
    layer.build((3,))
    with pytest.raises(ValueError, match=rf"integer indices in \[0, 10\), got {shown} \(sample 1\)"):
        layer.forward(np.array([[1, 2, 3], [4, bad, 6]], dtype=np.float64))
    model = nnscratch.Sequential([nnscratch.Input((3,)), Embedding(10, 3), Flatten(), Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="integer indices"):
        model.fit(np.array([[1, 2, 3], [4, bad, 6]]), np.zeros((2, 1)), verbose=0)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"input_dim": 0, "output_dim": 3}, ValueError, "input_dim must be a positive integer"),
    ({"input_dim": 5, "output_dim": 2.0}, ValueError, "output_dim must be a positive integer"),
    ({"input_dim": 5, "output_dim": 2, "mask_zero": 1}, TypeError, "mask_zero must be True or False"),
    ({"input_dim": 5, "output_dim": 2, "embeddings_initializer": "eye"}, ValueError, "unknown initializer"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        Embedding(**kwargs)


def test_a_bag_of_words_model_learns_and_saves(tmp_path):
    """Sequences of 8 word indices; the class is whether word 3 occurs. Embedding -> mean over words -> Dense."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 20, (600, 8))
    x[x == 3] = 4
    positive = rng.random(600) < 0.5
    x[positive, rng.integers(0, 8, positive.sum())] = 3
    y = positive.astype(np.float32)[:, None]
    nnscratch.set_random_seed(8)
    model = nnscratch.Sequential([nnscratch.Input((8,)), Embedding(20, 4, embeddings_regularizer="l2"),
                                  GlobalAveragePooling1D(), Dense(1, activation="sigmoid")])
    model.compile(optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    model.fit(x[:500], y[:500], epochs=20, batch_size=50, verbose=0)
    assert model.evaluate(x[500:], y[500:], verbose=0, return_dict=True)["accuracy"] > 0.95
    model.save(tmp_path / "bag.npz")
    loaded = load_model(tmp_path / "bag.npz")
    np.testing.assert_array_equal(loaded.predict(x[:10], verbose=0), model.predict(x[:10], verbose=0))
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    assert model.layers[0].weight_regularizers() and model.losses
