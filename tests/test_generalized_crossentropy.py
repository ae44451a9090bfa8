"""CategoricalGeneralizedCrossEntropy: the formula and its limits (cross-entropy as q -> 0, 1 - p_y at q = 1),
its gradient by central differences over generated shapes, training, saving, bad arguments.

Keras 3.15 itself was compared outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch import losses
from nnscratch.gradcheck import numerical_gradient, relative_error
from nnscratch.layers import Dense
from nnscratch.losses import CategoricalGeneralizedCrossEntropy
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import TOLERANCE, batch_sizes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import TOLERANCE, batch_sizes, rng_seeds


def probabilities(rng, shape):
    z = rng.standard_normal(shape)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@given(n=batch_sizes(), positions=st.sampled_from([(), (3,)]), classes=st.integers(2, 5),
       q=st.sampled_from([0.1, 0.5, 0.7, 0.95]), seed=rng_seeds())
def test_the_formula_and_its_gradient(n, positions, classes, q, seed):
    rng = np.random.default_rng(seed)
    p = probabilities(rng, (n, *positions, classes))
    labels = rng.integers(0, classes, (n, *positions))
    loss = CategoricalGeneralizedCrossEntropy(q=q)
    chosen = np.take_along_axis(p, labels[..., None], axis=-1)[..., 0]
    assert loss(labels, p) == pytest.approx(np.mean((1 - chosen ** q) / q), rel=1e-12)
    analytic = loss.gradient(labels, p)
    numeric = numerical_gradient(lambda: loss(labels, p), p, h=1e-7)
    assert relative_error(analytic, numeric).max(initial=0) < TOLERANCE
    others = np.ones(p.shape, bool)
    np.put_along_axis(others, labels[..., None], False, axis=-1)
    assert not analytic[others].any()                      # only the label's probability gets a gradient


def test_it_tends_to_the_cross_entropy_and_to_one_minus_p():
    rng = np.random.default_rng(1)
    p, labels = probabilities(rng, (6, 4)), rng.integers(0, 4, 6)
    chosen = p[np.arange(6), labels]
    near_zero = CategoricalGeneralizedCrossEntropy(q=1e-6)(labels, p)
    assert near_zero == pytest.approx(np.mean(-np.log(chosen)), rel=1e-5)
    assert CategoricalGeneralizedCrossEntropy(q=1 - 1e-9)(labels, p) == pytest.approx(np.mean(1 - chosen), rel=1e-7)
    assert losses.get("categorical_generalized_cross_entropy").q == 0.5


def test_a_model_trains_with_it_and_saves(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((96, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(8, activation="tanh"), Dense(2, activation="softmax")])
    model.compile(nnscratch.optimizers.Adam(0.02), CategoricalGeneralizedCrossEntropy(q=0.7), metrics=["accuracy"])
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0, seed=1).history
    assert history["loss"][-1] < 0.7 * history["loss"][0] and history["accuracy"][-1] > 0.85
    model.save(tmp_path / "gce.npz")
    loaded = load_model(tmp_path / "gce.npz")
    assert isinstance(loaded.loss, CategoricalGeneralizedCrossEntropy) and loaded.loss.q == 0.7
    with pytest.raises(ValueError, match=r"sparse labels must be in \[0, 2\)"):
        model.fit(x, y + 1, epochs=1, verbose=0)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 2.0])
def test_q_must_lie_strictly_between_0_and_1(q):
    with pytest.raises(ValueError, match=r"q must be in the interval \(0, 1\)"):
        CategoricalGeneralizedCrossEntropy(q=q)
