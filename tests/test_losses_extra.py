"""The losses added with the package, as a Keras notebook uses them: values, names, configs, saving, bad input.

KLDivergence, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
Poisson, Hinge, SquaredHinge, CategoricalHinge, CosineSimilarity, LogCosh,
the focal cross-entropies, ``"crossentropy"``/``"ce"`` and the ``reduction``
argument. Every expected number is an independent NumPy formula written here
(checked against Keras 3.15 side by side when the losses were written; Keras
is not imported by the tests). The gradients are checked in
tests/test_grad_losses_extra.py.
"""

import json
import warnings

import numpy as np
import pytest

import nnscratch
from nnscratch import losses
from nnscratch.layers import Dense

EPS = 1e-7


def per_sample(values):
    """Keras's per-position values averaged over a sample (the mean the trainer takes over the batch)."""
    return values.reshape(len(values), -1).mean(axis=1)


def log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ------------------------------------------------------------------------ values

@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3), (6, 1)])
def test_values_of_the_regression_and_probabilistic_losses(rng, shape):
    t, p = rng.standard_normal(shape), rng.standard_normal(shape)
    with_zero = t.copy()
    with_zero.flat[0] = 0.0                                             # MAPE divides by max(|t|, 1e-7)
    np.testing.assert_allclose(losses.mean_absolute_percentage_error.per_sample(with_zero, p),
                               per_sample(100 * np.abs(with_zero - p) / np.maximum(np.abs(with_zero), EPS)),
                               rtol=1e-12)
    np.testing.assert_allclose(losses.log_cosh.per_sample(t, p), per_sample(np.log(np.cosh(p - t))),
                               rtol=1e-10, atol=1e-14)
    counts, rates = rng.poisson(2.0, shape).astype(float), rng.uniform(0.1, 3, shape)
    np.testing.assert_allclose(losses.poisson.per_sample(counts, rates),
                               per_sample(rates - counts * np.log(rates + EPS)), rtol=1e-12)
    positive = np.abs(t)
    np.testing.assert_allclose(losses.mean_squared_logarithmic_error.per_sample(positive, p),
                               per_sample((np.log(1 + np.maximum(p, EPS)) - np.log(1 + np.maximum(positive, EPS))) ** 2),
                               rtol=1e-12)
    soft = rng.dirichlet(np.ones(shape[-1]), shape[:-1])
    q = rng.dirichlet(np.ones(shape[-1]), shape[:-1])
    q.flat[0] = 0.0                                                     # clipped to 1e-7
    s, c = np.clip(soft, EPS, 1), np.clip(q, EPS, 1)
    np.testing.assert_allclose(losses.kl_divergence.per_sample(soft, q), per_sample((s * np.log(s / c)).sum(axis=-1)),
                               rtol=1e-12)
    cosine = (t * p).sum(-1) / np.linalg.norm(t, axis=-1) / np.linalg.norm(p, axis=-1)
    np.testing.assert_allclose(losses.cosine_similarity.per_sample(t, p), per_sample(-cosine), rtol=1e-12)


def test_log_cosh_is_finite_for_huge_errors():
    """log(cosh(x)) = |x| - log 2 for large x; cosh(1000) overflows, the loss does not."""
    t, p = np.zeros((1, 2)), np.array([[1000.0, -2000.0]])
    np.testing.assert_allclose(losses.log_cosh.per_sample(t, p), [(1000 + 2000) / 2 - np.log(2)], rtol=1e-15)


def test_cosine_similarity_along_another_axis(rng):
    t, p = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    cosine = (t * p).sum(1) / np.linalg.norm(t, axis=1) / np.linalg.norm(p, axis=1)     # (3, 2)
    np.testing.assert_allclose(losses.CosineSimilarity(axis=1).per_sample(t, p), -cosine.mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3)])
def test_values_of_the_hinges(rng, shape):
    signs = rng.choice([-1.0, 1.0], shape)
    p = 2 * rng.standard_normal(shape)
    for t in (signs, (signs + 1) / 2):                                  # 0/1 targets are read as -1/1
        np.testing.assert_allclose(losses.hinge.per_sample(t, p), per_sample(np.maximum(1 - signs * p, 0)),
                                   rtol=1e-12)
        np.testing.assert_allclose(losses.squared_hinge.per_sample(t, p),
                                   per_sample(np.maximum(1 - signs * p, 0) ** 2), rtol=1e-12)
    labels = rng.integers(0, shape[-1], shape[:-1])
    t = np.eye(shape[-1])[labels]
    true_score = np.take_along_axis(p, labels[..., None], axis=-1)[..., 0]
    best_other = np.where(t == 1, 0.0, p).max(axis=-1)                 # (1 - t) p: the true class counts 0
    np.testing.assert_allclose(losses.categorical_hinge.per_sample(t, p),
                               per_sample(np.maximum(best_other - true_score + 1, 0)), rtol=1e-12)


def test_hinge_converts_only_when_every_target_is_zero_or_one():
    """As Keras: -1/1 and 0/1 targets give the same loss; other targets (here 0.5) are used as they are."""
    p = np.array([[0.3, -0.6]])
    assert losses.hinge(np.array([[1.0, -1.0]]), p) == losses.hinge(np.array([[1.0, 0.0]]), p)
    np.testing.assert_allclose(losses.hinge.per_sample(np.array([[0.5, 1.0]]), p), [(0.85 + 1.6) / 2])


@pytest.mark.parametrize("gamma", [0.0, 2.0, 3.5])
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_focal_crossentropy_values(rng, gamma, from_logits):
    z = 2 * rng.standard_normal((6, 4))
    y_pred = z if from_logits else rng.uniform(0.05, 1, (6, 4))        # not normalised: the loss rescales
    t = np.eye(4)[rng.integers(0, 4, 6)]
    alpha = [0.1, 0.2, 0.3, 0.4]
    loss = losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=0.1)
    q = np.exp(log_softmax(z)) if from_logits else y_pred / y_pred.sum(axis=-1, keepdims=True)
    c = np.clip(q, EPS, 1 - EPS)
    smoothed = t * 0.9 + 0.1 / 4
    expected = (np.array(alpha) * (1 - c) ** gamma * -smoothed * np.log(c)).sum(axis=-1)
    np.testing.assert_allclose(loss.per_sample(t, y_pred), expected, rtol=1e-12)


def test_categorical_focal_with_gamma_0_and_alpha_1_is_categorical_crossentropy(rng):
    p = rng.uniform(0.05, 1, (5, 3))
    t = np.eye(3)[rng.integers(0, 3, 5)]
    focal = losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=0.0)
    np.testing.assert_allclose(focal.per_sample(t, p), losses.categorical_crossentropy.per_sample(t, p), rtol=1e-14)
    np.testing.assert_allclose(focal.gradient(t, p), losses.categorical_crossentropy.gradient(t, p), rtol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("balancing", [False, True])
def test_binary_focal_crossentropy_values(rng, gamma, balancing):
    p = rng.uniform(0.01, 0.99, (5, 3))
    p[0, 0] = 1.0                                                       # clipped in the cross-entropy, not in p_t
    t = rng.integers(0, 2, (5, 3)).astype(float)
    loss = losses.BinaryFocalCrossentropy(apply_class_balancing=balancing, alpha=0.3, gamma=gamma,
                                          label_smoothing=0.2)
    s = t * 0.8 + 0.1
    c = np.clip(p, EPS, 1 - EPS)
    bce = -(s * np.log(c) + (1 - s) * np.log(1 - c))
    p_t = s * p + (1 - s) * (1 - p)
    weight = s * 0.3 + (1 - s) * 0.7 if balancing else 1.0
    np.testing.assert_allclose(loss.per_sample(t, p), (weight * (1 - p_t) ** gamma * bce).mean(axis=-1), rtol=1e-12)
    logits = 4 * rng.standard_normal((5, 3))
    from_logits = losses.BinaryFocalCrossentropy(apply_class_balancing=balancing, alpha=0.3, gamma=gamma,
                                                 from_logits=True)
    sig = 1 / (1 + np.exp(-logits))
    bce = np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits)))
    p_t = t * sig + (1 - t) * (1 - sig)
    weight = t * 0.3 + (1 - t) * 0.7 if balancing else 1.0
    np.testing.assert_allclose(from_logits.per_sample(t, logits), (weight * (1 - p_t) ** gamma * bce).mean(axis=-1),
                               rtol=1e-12)


def test_binary_focal_with_gamma_0_is_binary_crossentropy(rng):
    p, t = rng.uniform(0.05, 0.95, (4, 2)), rng.integers(0, 2, (4, 2)).astype(float)
    focal = losses.BinaryFocalCrossentropy(gamma=0.0)
    np.testing.assert_allclose(focal.per_sample(t, p), losses.binary_crossentropy.per_sample(t, p), rtol=1e-14)
    np.testing.assert_allclose(focal.gradient(t, p), losses.binary_crossentropy.gradient(t, p), rtol=1e-12)


def test_a_saturated_sigmoid_still_learns_with_binary_focal_crossentropy():
    """After a sigmoid layer the cross-entropy comes from the logits, as Keras with TensorFlow: sigmoid(20) for a
    target 0 loses (1 - p_t)^2 * 20, not the clipped 16.1, and the kernel moves down."""
    model = nnscratch.Sequential([nnscratch.Input((1,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss=losses.BinaryFocalCrossentropy())
    model.set_weights([np.array([[20.0]], np.float32), np.zeros(1, np.float32)])
    x, y = np.ones((8, 1), np.float32), np.zeros(8)
    p = 1 / (1 + np.exp(-20.0))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(p ** 2 * 20.0, rel=1e-5)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.get_weights()[0][0, 0] < 20.0


# ---------------------------------------------------------- "crossentropy" / "ce"

@pytest.mark.parametrize("name", ["crossentropy", "ce", "CE", "Crossentropy"])
def test_crossentropy_chooses_from_the_shapes_as_keras_compile(rng, name):
    loss = losses.get(name)
    assert type(loss) is losses.AutoCrossentropy
    labels = rng.integers(0, 3, 5)
    p = rng.dirichlet(np.ones(3), 5)
    np.testing.assert_allclose(loss.per_sample(labels, p), -np.log(p[np.arange(5), labels]), rtol=1e-12)   # sparse
    np.testing.assert_allclose(loss.per_sample(labels[:, None], p), -np.log(p[np.arange(5), labels]), rtol=1e-12)
    np.testing.assert_allclose(loss.per_sample(np.eye(3)[labels], p), -np.log(p[np.arange(5), labels]), rtol=1e-12)
    b, q = rng.integers(0, 2, (5, 1)).astype(float), rng.uniform(0.1, 0.9, (5, 1))          # one unit: binary
    np.testing.assert_allclose(loss.per_sample(b, q), -(b * np.log(q) + (1 - b) * np.log(1 - q))[:, 0], rtol=1e-12)
    assert type(loss.chosen((5,), (5, 1))) is losses.BinaryCrossentropy


@pytest.mark.parametrize("activation, units, targets, chosen", [
    ("softmax", 3, lambda rng: rng.integers(0, 3, 16), "sparse_categorical_crossentropy"),
    ("softmax", 3, lambda rng: np.eye(3)[rng.integers(0, 3, 16)], "categorical_crossentropy"),
    ("sigmoid", 1, lambda rng: rng.integers(0, 2, 16), "binary_crossentropy"),
])
def test_crossentropy_in_a_model_trains_as_the_chosen_loss(activation, units, targets, chosen):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), targets(rng)
    results = []
    for loss in ("crossentropy", chosen):
        nnscratch.set_random_seed(5)
        model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(units, activation=activation)])
        model.compile(optimizer="sgd", loss=loss)
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
        results.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for ours, theirs in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------- reduction

@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None])
@pytest.mark.parametrize("weighted", [False, True])
def test_reduction_of_a_direct_call(rng, reduction, weighted):
    """Keras's reductions of the values l_i (one per sample for (N, K) outputs), weighted by w_i."""
    t, p = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    w = rng.uniform(0.2, 2, 6) if weighted else None
    values = ((p - t) ** 2).mean(axis=-1) * (1 if w is None else w)
    result = losses.MeanSquaredError(reduction=reduction)(t, p, sample_weight=w)
    expected = {"sum_over_batch_size": values.mean(), "mean": values.mean(), "sum": values.sum(),
                "mean_with_sample_weight": values.sum() / (6 if w is None else w.sum()),
                "none": values, None: values}[reduction]
    np.testing.assert_allclose(result, expected, rtol=1e-12)
    assert isinstance(result, np.ndarray if reduction in ("none", None) else float)


def test_sum_counts_every_position_of_a_sequence_output(rng):
    """For (N, T, K) outputs Keras has N * T values; their sum is T times the sum of the per-sample means."""
    t, p = rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 5, 3))
    total = losses.LogCosh(reduction="sum")(t, p)
    assert total == pytest.approx(np.log(np.cosh(p - t)).mean(axis=-1).sum(), rel=1e-10)
    assert losses.LogCosh(reduction="sum").reduction_scale((4, 5, 3)) == (20.0, 20.0)
    assert losses.LogCosh(reduction="none").reduction_scale((4, 5, 3)) == (1.0, 20.0)
    assert losses.LogCosh(reduction="mean_with_sample_weight").reduction_scale((4, 5, 3), np.zeros(4)) == (0.0, 0.0)


@pytest.mark.parametrize("value", ["auto", "SUM", "batch", 1, True])
def test_unknown_reductions_are_refused(value):
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.MeanSquaredError(reduction=value)
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.CategoricalFocalCrossentropy(reduction=value)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None])
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_applies_the_reduction_as_keras(reduction, weighted):
    """One SGD step on a linear Dense model with MSE: the logged loss and the step are Keras's for each reduction
    (batch loss sum(w l) / N, sum(w l), sum(w l) / sum(w); "none": logged sum(w l) / N, stepped along the gradient
    of sum(w l)), from the NumPy formulas."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    w = rng.uniform(0.2, 2.0, 6) if weighted else np.ones(6)
    kernel, bias = rng.standard_normal((3, 2)), rng.standard_normal(2)
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2)])
    model.compile(optimizer=nnscratch.optimizers.SGD(0.1), loss=losses.MeanSquaredError(reduction=reduction))
    model.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    history = model.fit(x.astype(np.float32), y, sample_weight=w if weighted else None, batch_size=6, epochs=1,
                        verbose=0, shuffle=False)
    e = x @ kernel + bias - y
    weighted_sum = (w * (e ** 2).mean(axis=1)).sum()
    logged, stepped = {"sum_over_batch_size": (weighted_sum / 6, 1 / 6), "mean": (weighted_sum / 6, 1 / 6),
                       "sum": (weighted_sum, 1.0), "mean_with_sample_weight": (weighted_sum / w.sum(), 1 / w.sum()),
                       "none": (weighted_sum / 6, 1.0), None: (weighted_sum / 6, 1.0)}[reduction]
    d_out = 2 * e / 2 * w[:, None] * stepped                     # d(batch loss)/d(output): 2 e / K per value
    assert history.history["loss"][0] == pytest.approx(logged, rel=1e-5)
    np.testing.assert_allclose(model.get_weights()[0], kernel - 0.1 * x.T @ d_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_weights()[1], bias - 0.1 * d_out.sum(axis=0), rtol=1e-5, atol=1e-6)


def test_mean_reduction_trains_as_the_default():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 2)).astype(np.float32), rng.standard_normal((8, 2))
    histories = []
    for reduction in ("sum_over_batch_size", "mean"):
        nnscratch.set_random_seed(1)
        model = nnscratch.Sequential([nnscratch.Input((2,)), Dense(2)])
        model.compile(optimizer="sgd", loss=losses.MeanSquaredError(reduction=reduction))
        histories.append(model.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False).history["loss"])
    assert histories[0] == histories[1]


# ------------------------------------------------------------------------ names

NEW = [
    ("kld", losses.KLDivergence), ("KLD", losses.KLDivergence), ("kl_divergence", losses.KLDivergence),
    ("KLDivergence", losses.KLDivergence),
    ("mape", losses.MeanAbsolutePercentageError), ("MAPE", losses.MeanAbsolutePercentageError),
    ("mean_absolute_percentage_error", losses.MeanAbsolutePercentageError),
    ("MeanAbsolutePercentageError", losses.MeanAbsolutePercentageError),
    ("msle", losses.MeanSquaredLogarithmicError), ("MSLE", losses.MeanSquaredLogarithmicError),
    ("mean_squared_logarithmic_error", losses.MeanSquaredLogarithmicError),
    ("MeanSquaredLogarithmicError", losses.MeanSquaredLogarithmicError),
    ("poisson", losses.Poisson), ("Poisson", losses.Poisson),
    ("hinge", losses.Hinge), ("Hinge", losses.Hinge), ("squared_hinge", losses.SquaredHinge),
    ("SquaredHinge", losses.SquaredHinge), ("categorical_hinge", losses.CategoricalHinge),
    ("CategoricalHinge", losses.CategoricalHinge),
    ("cosine_similarity", losses.CosineSimilarity), ("CosineSimilarity", losses.CosineSimilarity),
    ("log_cosh", losses.LogCosh), ("LogCosh", losses.LogCosh),
    ("categorical_focal_crossentropy", losses.CategoricalFocalCrossentropy),
    ("CategoricalFocalCrossentropy", losses.CategoricalFocalCrossentropy),
    ("binary_focal_crossentropy", losses.BinaryFocalCrossentropy),
    ("BinaryFocalCrossentropy", losses.BinaryFocalCrossentropy),
    ("crossentropy", losses.AutoCrossentropy), ("ce", losses.AutoCrossentropy),
]


@pytest.mark.parametrize("name, cls", NEW)
def test_keras_loss_names(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls
    assert loss.get_config() == cls().get_config()


@pytest.mark.parametrize("name", ["kullback_leibler_divergence", "cosine_proximity", "focal", "log_cosh_error"])
def test_names_keras_3_refuses_are_refused(name):
    with pytest.raises(ValueError, match=f"unknown loss '{name}'"):
        losses.get(name)


def test_logcosh_is_the_class_name_in_lower_case():
    """Keras 3 refuses Keras 2's "logcosh"; nnscratch takes names in any case, so it is "LogCosh"."""
    assert type(losses.get("logcosh")) is losses.LogCosh


def test_function_forms_are_default_instances():
    for name, cls in [("kl_divergence", losses.KLDivergence), ("log_cosh", losses.LogCosh),
                      ("binary_focal_crossentropy", losses.BinaryFocalCrossentropy),
                      ("categorical_hinge", losses.CategoricalHinge), ("poisson", losses.Poisson)]:
        assert type(getattr(losses, name)) is cls and name in losses.__all__


# ----------------------------------------------------------- configs and saving

CONFIGURED = [
    losses.KLDivergence(), losses.MeanAbsolutePercentageError(reduction="sum"), losses.MeanSquaredLogarithmicError(),
    losses.Poisson(reduction=None), losses.Hinge(), losses.SquaredHinge(reduction="none"), losses.CategoricalHinge(),
    losses.CosineSimilarity(axis=1), losses.LogCosh(reduction="mean"),
    losses.CategoricalFocalCrossentropy(alpha=[0.1, 0.5, 0.4], gamma=1.5, from_logits=True, label_smoothing=0.1),
    losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.4, gamma=3.0, from_logits=True,
                                   label_smoothing=0.05, reduction="mean_with_sample_weight"),
    losses.AutoCrossentropy(), losses.Huber(delta=0.5, reduction="sum"),
    losses.SparseCategoricalCrossentropy(reduction="none"),
]


@pytest.mark.parametrize("loss", CONFIGURED, ids=repr)
def test_config_round_trips(loss):
    config = json.loads(json.dumps(loss.get_config()))
    assert config["name"] == loss.name
    for rebuilt in (type(loss).from_config(config), losses.get(config),
                    losses.get(json.loads(json.dumps(losses.serialize(loss))))):
        assert type(rebuilt) is type(loss)
        assert rebuilt.get_config() == loss.get_config()
        assert vars(rebuilt) == vars(loss)


def test_config_holds_the_arguments_and_a_reduction_only_when_not_the_default():
    assert losses.KLDivergence().get_config() == {"name": "kl_divergence"}
    assert losses.LogCosh(reduction="sum").get_config() == {"name": "log_cosh", "reduction": "sum"}
    assert losses.Poisson(reduction=None).get_config() == {"name": "poisson", "reduction": None}
    assert losses.CosineSimilarity().get_config() == {"name": "cosine_similarity", "axis": -1}
    assert losses.CategoricalFocalCrossentropy().get_config() == {
        "name": "categorical_focal_crossentropy", "alpha": 0.25, "gamma": 2.0, "from_logits": False,
        "label_smoothing": 0.0}
    assert losses.BinaryFocalCrossentropy().get_config() == {
        "name": "binary_focal_crossentropy", "apply_class_balancing": False, "alpha": 0.25, "gamma": 2.0,
        "from_logits": False, "label_smoothing": 0.0}
    assert repr(losses.Huber(0.5, reduction="sum")) == "Huber(delta=0.5, reduction='sum')"


def test_a_keras_config_dict_is_accepted():
    """Keras's get_config carries reduction, and axis for the focal losses: from_config takes them."""
    keras_config = {"name": "categorical_focal_crossentropy", "reduction": "sum_over_batch_size",
                    "from_logits": False, "label_smoothing": 0.0, "axis": -1, "alpha": 0.25, "gamma": 2.0}
    loss = losses.get(keras_config)
    assert type(loss) is losses.CategoricalFocalCrossentropy
    assert loss.get_config() == losses.CategoricalFocalCrossentropy().get_config()
    assert losses.get({"class_name": "KLDivergence", "config": {"name": "kl_divergence",
                                                                "reduction": "sum"}}).reduction == "sum"


@pytest.mark.parametrize("loss, y", [
    (losses.KLDivergence(), lambda rng: rng.dirichlet(np.ones(3), 16)),
    (losses.CategoricalFocalCrossentropy(alpha=[0.2, 0.3, 0.5], gamma=1.0, from_logits=True),
     lambda rng: np.eye(3)[rng.integers(0, 3, 16)]),
    (losses.BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True),
     lambda rng: rng.integers(0, 2, (16, 3)).astype(float)),
    (losses.CosineSimilarity(), lambda rng: rng.standard_normal((16, 3))),
    (losses.Hinge(), lambda rng: rng.choice([-1.0, 1.0], (16, 3))),
    ("crossentropy", lambda rng: rng.integers(0, 3, 16)),
], ids=lambda value: "y" if getattr(value, "__name__", "") == "<lambda>" else repr(value))   # stable ids
def test_a_saved_model_keeps_its_loss(tmp_path, loss, y):
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), y(rng)
    activation = "softmax" if loss in ("crossentropy",) or isinstance(loss, losses.KLDivergence) else None
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation=activation)])
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz")
    assert type(loaded.loss) is type(model.loss) and loaded.loss.get_config() == model.loss.get_config()
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


# --------------------------------------------------------------- bad input

@pytest.mark.parametrize("loss, y, match", [
    (losses.KLDivergence(), np.full((4, 3), 1.5), r"kl_divergence targets must be probabilities in \[0, 1\]"),
    (losses.Poisson(), -np.ones((4, 3)), "poisson targets must be counts or rates >= 0"),
    (losses.MeanSquaredLogarithmicError(), -np.ones((4, 3)), "targets must be >= 0"),
    (losses.BinaryFocalCrossentropy(), np.full((4, 3), 2.0), r"targets must be in \[0, 1\]"),
    (losses.Hinge(), np.array([[-1.0, 0.0, 1.0]] * 4), r"mix 0 with \[-1.0\]"),
    (losses.SquaredHinge(), np.array([[0.5, 0.0, 1.0]] * 4), r"mix 0 with \[0.5\]"),
    (losses.CategoricalFocalCrossentropy(), np.zeros(4, int), r"one-hot targets of shape \(N, 3\).*to_categorical"),
    (losses.CategoricalFocalCrossentropy(alpha=[0.5, 0.5]), np.eye(3)[[0, 1, 2, 0]], "alpha has 2 weights"),
    (losses.CosineSimilarity(axis=3), np.zeros((4, 3)), "axis=3 is out of range"),
    (losses.LogCosh(), np.zeros((4, 2)), r"targets of shape \(N, 3\) expected"),
    (losses.CategoricalHinge(), np.full((4, 3), np.nan), "NaN or infinite"),
], ids=repr)
def test_bad_targets_are_refused_at_fit(loss, y, match):
    model = nnscratch.Sequential([nnscratch.Input((2,)), Dense(3)])
    model.compile(optimizer="sgd", loss=loss)
    with pytest.raises(ValueError, match=match):
        model.fit(np.zeros((4, 2), np.float32), y, verbose=0)


def test_categorical_focal_on_one_unit_warns_as_keras():
    with pytest.warns(UserWarning, match="num_classes > 1"):
        losses.CategoricalFocalCrossentropy().prepare_targets(np.ones((4, 1)), (1,))


@pytest.mark.parametrize("make, error, match", [
    (lambda: losses.CategoricalFocalCrossentropy(gamma=-1.0), ValueError, "gamma must be a finite number"),
    (lambda: losses.CategoricalFocalCrossentropy(alpha="0.25"), TypeError, "alpha must be a number"),
    (lambda: losses.CategoricalFocalCrossentropy(alpha=[]), ValueError, "empty sequence"),
    (lambda: losses.CategoricalFocalCrossentropy(axis=1), ValueError, "only axis=-1"),
    (lambda: losses.CategoricalFocalCrossentropy(from_logits=1), TypeError, "from_logits must be True or False"),
    (lambda: losses.CategoricalFocalCrossentropy(label_smoothing=2.0), ValueError, "label_smoothing must be in"),
    (lambda: losses.BinaryFocalCrossentropy(alpha=1.5), ValueError, r"alpha must be a finite number in \[0.0, 1.0\]"),
    (lambda: losses.BinaryFocalCrossentropy(gamma=float("nan")), ValueError, "gamma must be a finite number"),
    (lambda: losses.BinaryFocalCrossentropy(apply_class_balancing="yes"), TypeError, "apply_class_balancing"),
    (lambda: losses.BinaryFocalCrossentropy(axis=0), ValueError, "only axis=-1"),
    (lambda: losses.CosineSimilarity(axis=0), ValueError, "batch axis"),
    (lambda: losses.CosineSimilarity(axis=1.0), TypeError, "axis must be an integer"),
    (lambda: losses.KLDivergence(name="kl"), TypeError, "unexpected keyword argument 'name'"),
    (lambda: losses.MeanSquaredError()(np.zeros((3, 2)), np.zeros((3, 2)), sample_weight=np.ones(2)), ValueError,
     r"one weight per sample \(3\)"),
])
def test_bad_arguments_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_no_warning_from_the_new_losses_on_ordinary_input(rng):
    t, p = rng.uniform(0, 1, (3, 4)), rng.uniform(0.01, 1, (3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, cls in NEW[::2]:
            loss = cls()
            loss.per_sample(t, p)
            loss.gradient(t, p)
