"""Dice and Tversky: one value a sample from sums over its axes, their gradients, Tversky(0.5, 0.5) = Dice,
a segmentation model that trains and saves, and Keras's axis=None refused with the way out.

Keras 3.15 itself was compared outside the suite (docs/keras.md)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch import losses
from nnscratch.gradcheck import numerical_gradient, relative_error
from nnscratch.layers import Conv2D
from nnscratch.losses import Dice, Tversky
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, rng_seeds

shapes = st.sampled_from([(5,), (3, 4), (2, 3, 2)])


def masks(rng, n, shape):
    return (rng.random((n, *shape)) > 0.5).astype(np.float64), rng.uniform(0.05, 0.95, (n, *shape))


@given(n=batch_sizes(), shape=shapes, alpha=st.sampled_from([0.2, 0.5, 0.9]), beta=st.sampled_from([0.1, 0.5, 0.8]),
       seed=rng_seeds())
def test_values_by_the_definition_and_gradients(n, shape, alpha, beta, seed):
    t, p = masks(np.random.default_rng(seed), n, shape)
    axes = tuple(range(1, len(shape) + 1))
    rows_t, rows_p = t.reshape(n, -1), p.reshape(n, -1)
    overlap = (rows_t * rows_p).sum(axis=1)
    dice = 1 - 2 * overlap / (rows_t.sum(axis=1) + rows_p.sum(axis=1) + 1e-7)
    tversky = 1 - overlap / (overlap + alpha * ((1 - rows_p) * rows_t).sum(axis=1)
                             + beta * (rows_p * (1 - rows_t)).sum(axis=1) + 1e-7)
    for loss, expected in ((Dice(axis=axes), dice), (Tversky(alpha, beta, axis=axes), tversky)):
        assert loss(t, p) == pytest.approx(np.mean(expected), rel=1e-12)
        numeric = numerical_gradient(lambda: loss(t, p), p, h=STEP)
        assert relative_error(loss.gradient(t, p), numeric).max(initial=0) < TOLERANCE


def test_tversky_with_halves_is_dice_and_a_perfect_mask_costs_nothing():
    t, p = masks(np.random.default_rng(1), 3, (4, 4, 1))
    assert Tversky(0.5, 0.5, axis=(1, 2, 3))(t, p) == pytest.approx(Dice(axis=(1, 2, 3))(t, p), rel=1e-6)
    assert Dice(axis=(1, 2, 3))(t, t) == pytest.approx(0.0, abs=1e-7)
    assert Dice(axis=(-3, -2, -1))(t, 1 - t) == pytest.approx(1.0)                    # no overlap at all


def test_a_segmentation_model_trains_with_dice_and_saves(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.random((24, 6, 6, 1)).astype(np.float32)
    y = (x > 0.5).astype(np.float32)                                             # segment the bright pixels
    nnscratch.set_random_seed(3)
    model = nnscratch.Sequential([nnscratch.Input((6, 6, 1)), Conv2D(4, 3, padding="same", activation="relu"),
                                  Conv2D(1, 1, activation="sigmoid")])
    model.compile(nnscratch.optimizers.Adam(0.02), Dice(axis=(1, 2, 3)))
    history = model.fit(x, y, epochs=15, batch_size=8, verbose=0, seed=1).history
    assert history["loss"][-1] < 0.75 * history["loss"][0]
    model.save(tmp_path / "dice.npz")
    loaded = load_model(tmp_path / "dice.npz")
    assert isinstance(loaded.loss, Dice) and loaded.loss.axis == (1, 2, 3)
    assert isinstance(losses.get({"class_name": "Tversky", "config": {"alpha": 0.3, "axis": [1]}}), Tversky)


def test_keras_default_axis_and_partial_axes_are_refused():
    with pytest.raises(ValueError, match=r"axis=None \(Keras's default\) sums over the whole batch.*"
                                         r"Dice\(axis=\(1, 2, 3\)\)"):
        Dice()
    with pytest.raises(ValueError, match=r"axis=None \(Keras's default\)"):
        losses.get("dice")                                      # (compile(loss="dice") says the same)
    with pytest.raises(ValueError, match=r"axis must cover every axis of a sample, \(1, 2\)"):
        Tversky(axis=1)(np.ones((2, 3, 4)), np.ones((2, 3, 4)))
