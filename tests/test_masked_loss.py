"""Losses and metrics weighted a position: an output mask, sample weights (N, T), class weights a step.

A model whose output carries a mask (``Embedding(mask_zero=True)`` or
``Masking`` before recurrent layers with ``return_sequences``) trains on the
positions that count, as Keras 3: the batch's loss is ``sum(w l) / valid``
for the mean reductions, and the metrics are means over the valid
positions. These tests check the losses' values a position against their
values a sample, the weighted gradient against central differences of the
weighted loss (float64, generated shapes), the training loop against the
formulas written out, and the shapes and errors of the weights. Keras 3.15
itself was compared outside the suite (docs/keras.md).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import losses
from nnscratch.gradcheck import numerical_gradient, relative_error
from nnscratch.layers import LSTM, Dense, Embedding, Masking
from nnscratch.metrics import Precision
from nnscratch.models.data_adapter import check_sample_weight, class_weight_to_sample_weight

try:
    from tests.grad_strategies import TOLERANCE, batch_sizes, rng_seeds
    from tests.strategies import padded_indices
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import TOLERANCE, batch_sizes, rng_seeds
    from strategies import padded_indices


def targets_for(loss, rng, shape):
    """Targets that ``loss`` takes for predictions of ``shape`` (N, ..., K)."""
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        return rng.integers(0, shape[-1], shape[:-1])
    if isinstance(loss, (losses.CategoricalCrossentropy, losses.CategoricalFocalCrossentropy, losses.KLDivergence,
                         losses.CategoricalHinge)):
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    return (rng.random(shape) < 0.5).astype(np.float64)


#: Every loss, with arguments where they change the arithmetic.
EVERY_LOSS = [
    losses.CategoricalCrossentropy(), losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
    losses.SparseCategoricalCrossentropy(), losses.SparseCategoricalCrossentropy(from_logits=True),
    losses.BinaryCrossentropy(), losses.BinaryCrossentropy(from_logits=True),
    losses.CategoricalFocalCrossentropy(), losses.BinaryFocalCrossentropy(apply_class_balancing=True),
    losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber(0.3), losses.MeanAbsolutePercentageError(),
    losses.MeanSquaredLogarithmicError(), losses.LogCosh(), losses.CosineSimilarity(), losses.KLDivergence(),
    losses.Poisson(), losses.Hinge(), losses.SquaredHinge(), losses.CategoricalHinge(),
]

sequence_shapes = st.tuples(batch_sizes(), st.integers(1, 4), st.integers(2, 4))


@pytest.mark.parametrize("loss", EVERY_LOSS, ids=repr)
@settings(max_examples=10, deadline=None)
@given(shape=sequence_shapes, seed=rng_seeds())
def test_a_loss_a_sample_is_the_mean_of_its_losses_a_position(loss, shape, seed):
    rng = np.random.default_rng(seed)
    y_pred, y_true = rng.uniform(0.05, 0.95, shape), targets_for(loss, rng, shape)
    values = loss.per_position(y_true, y_pred)
    assert values.shape == shape[:-1]
    np.testing.assert_allclose(loss.per_sample(y_true, y_pred), values.mean(axis=1), rtol=1e-12)
    for t in range(shape[1]):         # a position's loss is that of the position alone, as an output (N, K)
        np.testing.assert_allclose(values[:, t], loss.per_position(y_true[:, t], y_pred[:, t]), rtol=1e-12)


#: Smooth losses (no kink near the generated values), for the gradient checks.
SMOOTH = [losses.CategoricalCrossentropy(), losses.SparseCategoricalCrossentropy(from_logits=True),
          losses.BinaryCrossentropy(), losses.MeanSquaredError(), losses.LogCosh(), losses.Poisson()]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
@pytest.mark.parametrize("prototype", SMOOTH, ids=repr)
@settings(max_examples=10, deadline=None)
@given(shape=sequence_shapes, seed=rng_seeds(), weights=st.sampled_from(["mask", "mask+sample", "step", "mask+step"]))
def test_the_weighted_gradient_is_the_gradient_of_the_weighted_loss(prototype, reduction, shape, seed, weights):
    """Weights a position: a mask, sample weights a step, or both; a sample's weight with a mask.

    (Sample weights (N,) without a mask take the path of the losses a sample, as in Keras, whose
    ``"mean_with_sample_weight"`` then divides by the sum of the N weights, not of N T.)
    """
    loss = type(prototype).from_config({**prototype.get_config(), "reduction": reduction})
    rng = np.random.default_rng(seed)
    y_pred, y_true = rng.uniform(0.05, 0.95, shape), targets_for(loss, rng, shape)
    mask = rng.random(shape[:-1]) < 0.7 if weights.startswith("mask") else None
    sample_weight = {"mask+sample": rng.uniform(0.1, 2, shape[0]), "step": rng.uniform(0.1, 2, shape[:-1]),
                     "mask+step": rng.uniform(0.1, 2, shape[:-1]), "mask": None}[weights]
    w = loss.position_weights(mask, sample_weight, shape[:-1])
    analytic = loss.weighted_gradient(y_true, y_pred, w)
    numeric = numerical_gradient(lambda: loss(y_true, y_pred, sample_weight=sample_weight, mask=mask), y_pred, 1e-6)
    assert relative_error(analytic, numeric).max() < TOLERANCE
    if mask is not None:
        assert not analytic[~mask].any()           # a masked position gets no gradient


def test_a_masked_loss_is_the_mean_over_the_valid_positions_in_each_reduction():
    rng = np.random.default_rng(1)
    y_pred, y_true = rng.uniform(0.1, 0.9, (3, 4, 2)), rng.uniform(0, 1, (3, 4, 2))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    sw = rng.uniform(0.5, 2, (3, 4))
    values = ((y_pred - y_true) ** 2).mean(axis=-1)
    assert losses.MeanSquaredError()(y_true, y_pred, mask=mask) == pytest.approx(values[mask].mean(), rel=1e-12)
    weighted = losses.MeanSquaredError()(y_true, y_pred, sample_weight=sw, mask=mask)
    assert weighted == pytest.approx((values * sw)[mask].sum() / mask.sum(), rel=1e-12)
    assert losses.MeanSquaredError(reduction="sum")(y_true, y_pred, sw, mask) == pytest.approx(
        (values * sw)[mask].sum(), rel=1e-12)
    assert losses.MeanSquaredError(reduction="mean_with_sample_weight")(y_true, y_pred, sw, mask) == pytest.approx(
        (values * sw)[mask].sum() / sw[mask].sum(), rel=1e-12)
    np.testing.assert_allclose(losses.MeanSquaredError(reduction="none")(y_true, y_pred, mask=mask),
                               values * mask, rtol=1e-12)
    assert losses.MeanSquaredError()(y_true, y_pred, mask=np.zeros((3, 4), bool)) == 0.0   # Keras's divide_no_nan


def tagger(units=3, activation="softmax"):
    """A sequence tagger: a padded sequence of 5 indices in, ``units`` values a step out, its output masked."""
    return nnscratch.Sequential([nnscratch.Input((5,)), Embedding(7, 4, mask_zero=True),
                                 LSTM(5, return_sequences=True), Dense(units, activation=activation)])


def twin_taggers():
    """Two taggers with the same weights."""
    first, second = tagger(), tagger()
    second.set_weights(first.get_weights())
    return first, second


def test_evaluate_of_a_masked_output_averages_the_loss_and_metrics_over_the_valid_steps():
    rng = np.random.default_rng(2)
    x, y = padded_indices(rng, n=10, steps=5, vocabulary=7), rng.integers(0, 3, (10, 5))
    sw = rng.uniform(0.2, 2, (10, 5))
    model = tagger()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    logs = model.evaluate(x, y, batch_size=4, sample_weight=sw, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    mask, hits = x != 0, (p.argmax(-1) == y)
    l = -np.log(np.take_along_axis(p, y[..., None], -1)[..., 0])
    batches = [slice(0, 4), slice(4, 8), slice(8, 10)]      # Keras: each batch's masked mean, weighed by its size
    loss = sum(len(x[b]) * (l[b] * sw[b])[mask[b]].sum() / mask[b].sum() for b in batches) / len(x)
    assert logs["loss"] == pytest.approx(loss, rel=1e-5)
    assert logs["accuracy"] == pytest.approx(hits[mask].mean(), rel=1e-12)
    assert logs["weighted_accuracy"] == pytest.approx((hits * sw)[mask].sum() / sw[mask].sum(), rel=1e-6)


def test_targets_and_inputs_at_masked_steps_change_nothing_in_training():
    rng = np.random.default_rng(3)
    x, y = padded_indices(rng, n=10, steps=5, vocabulary=7), rng.integers(0, 3, (10, 5))
    other = np.where(x == 0, (y + 1) % 3, y)             # other labels at the padded steps only
    trained = []
    for labels, model in zip((y, other), twin_taggers()):
        model.compile(nnscratch.optimizers.SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
        logs = model.fit(x, labels, batch_size=4, epochs=2, shuffle=False, verbose=0).history
        trained.append((model.get_weights(), logs))
    for a, b in zip(trained[0][0], trained[1][0]):
        np.testing.assert_array_equal(a, b)
    assert trained[0][1] == trained[1][1]


def test_a_mask_trains_as_sample_weights_a_step_of_total_over_valid_on_an_unmasked_model():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 4, 3))
    x[0, 2:] = 0
    x[3, 1:] = 0
    y = rng.standard_normal((6, 4, 2))
    mask = np.any(x != 0, axis=-1)
    models = []
    for layers in ([Masking(), Dense(2)], [Dense(2)]):      # Dense passes the mask on without reading it
        model = nnscratch.Sequential([nnscratch.Input((4, 3)), *layers])
        model.compile(nnscratch.optimizers.SGD(0.2), "mse")
        model.set_weights(models[0].get_weights() if models else model.get_weights())
        models.append(model)
    masked, plain = models
    masked.train_on_batch(x, y)
    plain.train_on_batch(x, y, sample_weight=mask * mask.size / mask.sum())
    for a, b in zip(masked.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_class_weights_of_sequence_labels_weigh_each_step_by_its_class():
    rng = np.random.default_rng(5)
    x, y = padded_indices(rng, n=10, steps=5, vocabulary=7), rng.integers(0, 3, (10, 5))
    table = {0: 2.0, 2: 0.5}
    weights = class_weight_to_sample_weight(y, table, positions=(5,))
    np.testing.assert_array_equal(weights, np.choose(y, [2.0, 1.0, 0.5]))
    np.testing.assert_array_equal(class_weight_to_sample_weight(np.eye(3)[y], table, positions=(5,)), weights)
    trained = []
    for kwargs, model in zip(({"class_weight": table}, {"sample_weight": weights}), twin_taggers()):
        model.compile(nnscratch.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
        model.train_on_batch(x, y, **kwargs)
        trained.append(model.get_weights())
    for a, b in zip(*trained):
        np.testing.assert_array_equal(a, b)


def test_sample_weights_a_step_are_checked_against_the_output():
    assert check_sample_weight(np.ones((4, 5)), 4, positions=(5,)).shape == (4, 5)
    assert check_sample_weight(np.ones((4, 1)), 4, positions=(5,)).shape == (4,)
    with pytest.raises(ValueError, match=r"one a position of the output, \(4, 5\), got shape \(4, 6\)"):
        check_sample_weight(np.ones((4, 6)), 4, positions=(5,))
    with pytest.raises(ValueError, match=r"shape \(4,\) or \(4, 1\), got shape \(4, 5\)"):
        check_sample_weight(np.ones((4, 5)), 4)
    with pytest.raises(ValueError, match="must be >= 0"):
        check_sample_weight(-np.ones((4, 5)), 4, positions=(5,))
    model = tagger()
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="one a position of the output"):
        model.fit(np.ones((4, 5), int), np.zeros((4, 5), int), sample_weight=np.ones((4, 3)), verbose=0)


class PerSampleOnly(losses.Loss):
    """A custom loss written before ``per_position``: values a sample only."""

    def per_sample(self, y_true, y_pred):
        return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).mean(axis=1)

    def gradient(self, y_true, y_pred):
        return 2 * (y_pred - y_true) / y_pred.size


def test_a_loss_with_values_a_sample_only_trains_unmasked_models_and_says_what_a_mask_needs():
    x, y = np.ones((4, 5), int), np.zeros((4, 5, 3))
    plain = nnscratch.Sequential([nnscratch.Input((5,)), Embedding(7, 4), LSTM(5, return_sequences=True), Dense(3)])
    plain.compile("sgd", PerSampleOnly())
    plain.fit(x, y, verbose=0)
    masked = tagger()
    masked.compile("sgd", PerSampleOnly())
    with pytest.raises(NotImplementedError, match="defines no per_position"):
        masked.fit(x, y, verbose=0)


def test_metrics_with_state_see_every_step_as_in_keras_and_per_sample_metrics_say_they_have_no_steps():
    x = np.array([[1, 2, 0, 0, 0]])
    model = tagger(units=1, activation="sigmoid")
    model.compile("sgd", "binary_crossentropy", metrics=[Precision(thresholds=0.0)])
    logs = model.evaluate(x, np.ones((1, 5, 1)), verbose=0, return_dict=True)
    assert logs["precision"] == 1.0                    # 5 steps predicted positive, all 5 targets 1
    model.compile("sgd", "binary_crossentropy", metrics=[lambda t, p: np.ones(len(p))])
    with pytest.raises(ValueError, match="need one value a position"):
        model.evaluate(x, np.ones((1, 5, 1)), verbose=0)
