"""The rest of keras.metrics: RMSE, R2, Mean/Sum/MeanMetricWrapper, the IoUs, the cross-entropies as metrics,
the rates at a constrained threshold (SensitivityAtSpecificity, ...) and AUC(curve="PRGAIN").

Each is checked against scikit-learn or a NumPy formula written here: batches
summed give the whole data at once, ``reset_state`` forgets, sample weights
weigh; ``fit``/``evaluate`` log them; configs survive ``serialize`` and
``model.save``/``load_model``; names resolve as ``keras.metrics.get``'s.
"""

import numpy as np
import pytest
from sklearn.metrics import jaccard_score, log_loss, mean_squared_error, r2_score

import nnscratch
from nnscratch import losses, metrics
from nnscratch.layers import Dense


def _feed(metric, batches):
    """reset, ``update_state`` with every ``(y_true, y_pred, weights)`` batch, ``result()``."""
    metric.reset_state()
    for y_true, y_pred, weights in batches:
        metric.update_state(y_true, y_pred, sample_weight=weights)
    return metric.result()


def _split(rng, *arrays, weights=None):
    """The arrays (and weights, or None) cut at random rows into 1 to 3 batches."""
    n = len(arrays[0])
    cuts = np.sort(rng.choice(np.arange(1, n), size=int(rng.integers(0, 3)), replace=False))
    parts = [np.split(a, cuts) for a in arrays]
    wparts = np.split(weights, cuts) if weights is not None else [None] * (len(cuts) + 1)
    return [(*items, w) for *items, w in zip(*parts, wparts)]


@pytest.mark.parametrize("seed", range(3))
def test_root_mean_squared_error_is_the_root_of_the_weighted_mean_over_all_batches(seed):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.standard_normal((25, 3)), rng.standard_normal((25, 3))
    weights = rng.random(25) if seed else None
    metric = metrics.RootMeanSquaredError()
    expected = np.sqrt(mean_squared_error(y_true, y_pred, sample_weight=weights))
    assert _feed(metric, _split(rng, y_true, y_pred, weights=weights)) == pytest.approx(expected, rel=1e-6)
    assert metric.direction == "down" and metric.name == "root_mean_squared_error"
    metric.reset_state()
    assert metric.result() == 0.0
    # a target vector (N,) meets an (N, 1) output, as Keras's squeeze_or_expand_to_same_rank
    assert metric(y_true[:, 0], y_pred[:, :1]) == pytest.approx(np.sqrt(np.mean((y_true[:, 0] - y_pred[:, 0]) ** 2)))
    with pytest.raises(ValueError, match="same shape"):
        metric.update_state(y_true, y_pred[:, :2])


@pytest.mark.parametrize("aggregation, multioutput", [("uniform_average", "uniform_average"), (None, "raw_values"),
                                                      ("variance_weighted_average", "variance_weighted")])
@pytest.mark.parametrize("weighted", [False, True])
def test_r2_score_matches_scikit_learn_over_batches(aggregation, multioutput, weighted):
    rng = np.random.default_rng(7)
    y_true = rng.standard_normal((30, 3)) * [1, 2, 5]
    y_pred = y_true + rng.standard_normal((30, 3))
    weights = rng.random(30) + 0.1 if weighted else None
    metric = metrics.R2Score(class_aggregation=aggregation)
    result = _feed(metric, _split(rng, y_true, y_pred, weights=weights))
    expected = r2_score(y_true, y_pred, sample_weight=weights, multioutput=multioutput)
    np.testing.assert_allclose(result, expected, rtol=1e-5)
    assert isinstance(result, np.ndarray) == (aggregation is None) and metric.direction == "up"


def test_r2_score_adjusted_counts_every_value_and_a_constant_column_gives_zero():
    rng = np.random.default_rng(8)
    y_true, y_pred = rng.standard_normal((20, 2)), rng.standard_normal((20, 2))
    plain = r2_score(y_true, y_pred)
    n = y_true.size                                             # Keras's n: every value, not the rows
    assert metrics.R2Score(num_regressors=3)(y_true, y_pred) == pytest.approx(1 - (1 - plain) * (n - 1) / (n - 4))
    with pytest.warns(UserWarning, match="More independent predictors"):
        assert metrics.R2Score(num_regressors=n)(y_true, y_pred) == pytest.approx(plain)
    constant = np.column_stack([np.ones(20), y_true[:, 1]])     # no variance: that column's score is 0
    np.testing.assert_allclose(metrics.R2Score(None)(constant, y_pred),
                               [0.0, r2_score(y_true[:, 1], y_pred[:, 1])], rtol=1e-6)
    metric = metrics.R2Score()
    metric.update_state(y_true, y_pred)
    with pytest.raises(ValueError, match="built for 2 outputs"):
        metric.update_state(y_true[:, :1], y_pred[:, :1])
    with pytest.raises(ValueError, match="2D inputs"):
        metrics.R2Score().update_state(np.ones((3, 2, 2)), np.ones((3, 2, 2)))
    with pytest.raises(ValueError, match="class_aggregation"):
        metrics.R2Score("mean")


def test_mean_and_sum_of_values_on_their_own():
    mean, total = metrics.Mean(), metrics.Sum()
    assert mean([1, 3, 5, 7]) == 4.0 and total([1, 3, 5, 7]) == 16.0        # Keras's docstring examples
    mean.reset_state(), total.reset_state()
    assert mean([1, 3, 5, 7], sample_weight=[1, 1, 0, 0]) == 2.0
    assert total([1, 3, 5, 7], sample_weight=[1, 1, 0, 0]) == 4.0
    rng = np.random.default_rng(3)
    values, weights = rng.standard_normal((6, 4)), rng.random(6)
    mean.reset_state(), total.reset_state()
    mean.update_state(values[:2], weights[:2]), mean.update_state(values[2:], weights[2:])
    assert mean.result() == pytest.approx(np.sum(weights * values.mean(axis=1)) / np.sum(weights))
    assert total(values, weights) == pytest.approx(np.sum(weights * values.sum(axis=1)))
    per_value = rng.random((6, 4))                              # one weight a value: sum w v / sum w
    mean.reset_state(), total.reset_state()
    assert mean(values, per_value) == pytest.approx(np.sum(per_value * values) / np.sum(per_value))
    assert total(values, per_value) == pytest.approx(np.sum(per_value * values))
    mean.reset_state()
    mean.update_state(3.0), mean.update_state(np.array([1.0, 2.0]))         # a number counts as one sample
    assert mean.result() == pytest.approx(2.0)
    # they take values, not (y_true, y_pred): refused for compile
    model = nnscratch.Sequential([nnscratch.Input((2,)), Dense(1)])
    for bad in (metrics.Mean(), metrics.Sum(), "mean", "Sum"):
        with pytest.raises(TypeError, match="take values"):
            model.compile(loss="mse", metrics=[bad])


def test_mean_metric_wrapper_is_the_mean_of_the_function():
    def scaled_error(y_true, y_pred, scale=1.0):
        return scale * np.abs(y_true - y_pred)

    rng = np.random.default_rng(4)
    y_true, y_pred, weights = rng.standard_normal((12, 3)), rng.standard_normal((12, 3)), rng.random(12)
    metric = metrics.MeanMetricWrapper(scaled_error, scale=2.0)
    assert metric.name == "mean_metric_wrapper" and metric.direction is None
    expected = np.sum(weights * 2 * np.abs(y_true - y_pred).mean(axis=1)) / np.sum(weights)
    assert _feed(metric, _split(rng, y_true, y_pred, weights=weights)) == pytest.approx(expected)
    # a loss object gives its per-sample values and goes down
    huber = metrics.MeanMetricWrapper(losses.Huber(delta=0.5), name="huber")
    assert huber.direction == "down"
    huber.update_state(y_true, y_pred)
    error = np.abs(y_true - y_pred)
    assert huber.result() == pytest.approx(np.mean(np.where(error <= 0.5, error ** 2 / 2, 0.5 * error - 0.125)),
                                           rel=1e-6)
    # named functions and losses round-trip; an own function is saved by its name
    for wrapped in (huber, metrics.MeanMetricWrapper(metrics.mean_squared_error, name="m")):
        again = metrics.get(metrics.serialize(wrapped))
        assert again.get_config() == wrapped.get_config() and type(again) is metrics.MeanMetricWrapper
    assert metrics.serialize(metric) == "mean_metric_wrapper"


def _iou_reference(y_true, y_pred, classes, weights=None):
    """Per-class IoU of every class present (scikit-learn's jaccard_score) and their mean."""
    present = [c for c in range(classes) if np.any(y_true == c) or np.any(y_pred == c)]
    scores = jaccard_score(y_true, y_pred, labels=present, average=None, sample_weight=weights)
    return dict(zip(present, scores))


@pytest.mark.parametrize("seed", range(3))
def test_iou_and_mean_iou_match_jaccard_scores_over_batches(seed):
    rng = np.random.default_rng(seed)
    classes = 4
    y_true, y_pred = rng.integers(0, classes, 40), rng.integers(0, classes - 1, 40)  # class 3 never predicted
    y_true[y_true == 2] = 1                                                           # class 2 absent from both
    y_pred[y_pred == 2] = 0
    weights = rng.random(40) + 0.1 if seed else None
    per_class = _iou_reference(y_true, y_pred, classes, weights)
    assert 2 not in per_class
    mean_iou = metrics.MeanIoU(classes)
    assert _feed(mean_iou, _split(rng, y_true, y_pred, weights=weights)) == pytest.approx(
        np.mean(list(per_class.values())), rel=1e-6)
    iou = metrics.IoU(classes, target_class_ids=[0, 3])
    assert _feed(iou, _split(rng, y_true, y_pred, weights=weights)) == pytest.approx(
        (per_class[0] + per_class[3]) / 2, rel=1e-6)
    assert _feed(metrics.IoU(classes, [2]), [(y_true, y_pred, weights)]) == 0.0       # an absent class: 0
    assert mean_iou.name == "mean_io_u" and iou.name == "io_u" and iou.direction == "up"


def test_iou_reads_images_one_hot_and_scores_and_masks_ignored_and_out_of_range_ids():
    rng = np.random.default_rng(5)
    y_true, y_pred = rng.integers(0, 3, (4, 5, 5)), rng.integers(0, 3, (4, 5, 5))   # segmentation maps
    weights = rng.random(4) + 0.1                                                   # one weight an image
    flat_weights = np.repeat(weights, 25)
    expected = np.mean(list(_iou_reference(y_true.ravel(), y_pred.ravel(), 3, flat_weights).values()))
    assert metrics.MeanIoU(3)(y_true, y_pred, weights) == pytest.approx(expected, rel=1e-6)
    scores = np.eye(3)[y_pred] + rng.random((4, 5, 5, 3)) * 0.1                     # arg-max is y_pred
    assert metrics.MeanIoU(3, sparse_y_pred=False)(y_true, scores, weights) == pytest.approx(expected, rel=1e-6)
    assert metrics.OneHotMeanIoU(3)(np.eye(3)[y_true], scores, weights) == pytest.approx(expected, rel=1e-6)
    per_class = _iou_reference(y_true.ravel(), y_pred.ravel(), 3)
    assert metrics.OneHotIoU(3, [1])(np.eye(3)[y_true], scores) == pytest.approx(per_class[1], rel=1e-6)
    # ignore_class and ids outside [0, num_classes) count nothing
    labels = y_true.ravel().copy()
    labels[:10] = 255
    keep = labels != 255
    expected = np.mean(list(_iou_reference(labels[keep], y_pred.ravel()[keep], 3).values()))
    assert metrics.MeanIoU(3, ignore_class=255)(labels, y_pred.ravel()) == pytest.approx(expected, rel=1e-6)
    assert metrics.MeanIoU(3)(labels, y_pred.ravel()) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="class ids"):
        metrics.MeanIoU(3).update_state(y_true, scores[..., 0])                     # probabilities, not ids
    with pytest.raises(ValueError, match="out of range"):
        metrics.IoU(3, [3])


@pytest.mark.parametrize("threshold, ids", [(0.5, (0, 1)), (0.3, [1]), (0.7, [0])])
def test_binary_iou_thresholds_at_or_above(threshold, ids):
    rng = np.random.default_rng(6)
    y_true = rng.integers(0, 2, (30, 1))
    y_pred = rng.integers(0, 11, (30, 1)) / 10                  # many on the threshold: >= is class 1
    y_pred = y_pred.astype(np.float32)
    predicted = (y_pred >= np.float32(threshold)).astype(int)
    per_class = _iou_reference(y_true.ravel(), predicted.ravel(), 2)
    metric = metrics.BinaryIoU(target_class_ids=ids, threshold=threshold)
    assert _feed(metric, _split(rng, y_true, y_pred)) == pytest.approx(np.mean([per_class[i] for i in ids]),
                                                                      rel=1e-6)
    assert metric.name == "binary_io_u" and metrics.get("binary_io_u").get_config() == metrics.BinaryIoU().get_config()


def test_cross_entropy_metrics_are_the_mean_of_the_losses():
    rng = np.random.default_rng(9)
    logits = rng.standard_normal((20, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 20)
    onehot = np.eye(4)[labels]
    weights = rng.random(20)
    expected = log_loss(labels, probs, labels=range(4))
    for metric, target, prediction in ((metrics.CategoricalCrossentropy(), onehot, probs),
                                       (metrics.CategoricalCrossentropy(from_logits=True), onehot, logits),
                                       (metrics.SparseCategoricalCrossentropy(), labels, probs),
                                       (metrics.SparseCategoricalCrossentropy(from_logits=True), labels, logits),
                                       (metrics.get("categorical_crossentropy"), onehot, probs),
                                       (metrics.get("sparse_categorical_crossentropy"), labels, probs)):
        assert _feed(metric, _split(rng, target, prediction)) == pytest.approx(expected, rel=1e-6)
        assert metric.direction == "down"
        metric.reset_state()
        metric.update_state(target, prediction, weights)
        assert metric.result() == pytest.approx(log_loss(labels, probs, sample_weight=weights, labels=range(4)),
                                                rel=1e-6)
    smooth = onehot * 0.8 + 0.2 / 4
    # (calling a per-sample metric gives the per-sample values; update_state/result the running mean)
    assert _feed(metrics.CategoricalCrossentropy(label_smoothing=0.2), [(onehot, probs, None)]) == pytest.approx(
        np.mean(-np.sum(smooth * np.log(probs), axis=1)), rel=1e-6)
    y_true = rng.integers(0, 2, (20, 3)).astype(float)
    z = rng.standard_normal((20, 3)) * 3
    p = 1 / (1 + np.exp(-z))
    t = y_true * 0.9 + 0.05
    bce = np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    for metric, prediction in ((metrics.BinaryCrossentropy(label_smoothing=0.1), p),
                               (metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), z)):
        assert _feed(metric, _split(rng, y_true, prediction)) == pytest.approx(bce, rel=1e-6)
    for name in ("bce", "BCE", "binary_crossentropy", "BinaryCrossentropy"):
        assert type(metrics.get(name)) is metrics.BinaryCrossentropy and metrics.get(name).name == name
    np.testing.assert_allclose(metrics.get("bce")(y_true[:, :1], p[:, 0]),      # (N, 1) targets meet (N,) outputs
                               -np.log(np.where(y_true[:, 0] == 1, p[:, 0], 1 - p[:, 0])), rtol=1e-6)
    with pytest.raises(ValueError, match="ignore_class"):
        metrics.SparseCategoricalCrossentropy(ignore_class=0)


def _rates(y_true, y_pred, weights, thresholds):
    """Sensitivity, specificity and precision at each threshold (p > threshold positive, float32), by a loop."""
    out = []
    for threshold in thresholds:
        positive, actual = y_pred > np.float32(threshold), y_true != 0
        tp, fp = np.sum(weights * (positive & actual)), np.sum(weights * (positive & ~actual))
        tn, fn = np.sum(weights * (~positive & ~actual)), np.sum(weights * (~positive & actual))
        out.append([tp / (tp + fn) if tp + fn else 0.0, tn / (tn + fp) if tn + fp else 0.0,
                    tp / (tp + fp) if tp + fp else 0.0])
    return np.array(out).T


@pytest.mark.parametrize("num_thresholds", [1, 2, 9, 200])
@pytest.mark.parametrize("seed", range(2))
def test_rates_at_a_constrained_threshold_match_a_loop_over_thresholds(num_thresholds, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, (40, 3))
    y_pred = rng.uniform(-0.1, 1.1, (40, 3)).astype(np.float32)
    if seed:
        y_pred = np.round(y_pred * 8) / 8                      # values on the thresholds
    y_pred = y_pred.astype(np.float32)
    weights = rng.integers(0, 4, 40).astype(float)
    thresholds = [0.5] if num_thresholds == 1 else np.arange(num_thresholds) / (num_thresholds - 1)
    for class_id in (None, 2):
        t, p = (y_true, y_pred) if class_id is None else (y_true[:, 2:], y_pred[:, 2:])
        p = p if num_thresholds == 1 else np.clip(p, 0, 1)     # Keras's even thresholds: p clipped to [0, 1]
        w = np.broadcast_to(weights[:, None], t.shape)
        sensitivity, specificity, precision = _rates(t, p, w, thresholds)
        for cls, value, constrained, best in ((metrics.SensitivityAtSpecificity, 0.6, specificity, sensitivity),
                                              (metrics.SpecificityAtSensitivity, 0.6, sensitivity, specificity),
                                              (metrics.PrecisionAtRecall, 0.3, sensitivity, precision),
                                              (metrics.RecallAtPrecision, 0.5, precision, sensitivity)):
            metric = cls(value, num_thresholds=num_thresholds, class_id=class_id)
            expected = max([b for c, b in zip(constrained, best) if c >= value], default=0.0)
            assert _feed(metric, _split(rng, y_true, y_pred, weights=weights)) == pytest.approx(expected, abs=1e-12)
            assert metric.direction == "up"
    assert metrics.RecallAtPrecision(1.0)(np.zeros((3, 1)), np.ones((3, 1))) == 0.0     # unreachable: 0
    with pytest.raises(ValueError, match="must be in the range"):
        metrics.PrecisionAtRecall(1.5)
    with pytest.raises(ValueError, match="needs arguments"):
        metrics.get("sensitivity_at_specificity")


def test_auc_prgain_is_the_area_under_the_gain_curve():
    rng = np.random.default_rng(10)
    y_true = rng.integers(0, 2, 60)
    y_pred = np.clip(y_true * 0.4 + rng.random(60) * 0.7, 0, 1).astype(np.float32)
    thresholds = [-1e-7, *(np.arange(1, 19) / 19), 1 + 1e-7]
    tp, fp, tn, fn = [], [], [], []
    for threshold in thresholds:
        positive = y_pred > np.float32(threshold)
        tp.append(np.sum(positive & (y_true == 1))), fp.append(np.sum(positive & (y_true == 0)))
        tn.append(np.sum(~positive & (y_true == 0))), fn.append(np.sum(~positive & (y_true == 1)))
    tp, fp, tn, fn = map(np.array, (tp, fp, tn, fn))
    ratio = np.sum(y_true) / np.sum(1 - y_true)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(tp > 0, np.maximum(1 - ratio * fn / tp, 0), 0.0)
        y = np.where(tp > 0, 1 - ratio * fp / tp, 1.0)
    metric = metrics.AUC(num_thresholds=20, curve="PRGAIN")
    assert _feed(metric, _split(rng, y_true, y_pred)) == pytest.approx(np.sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2))
    assert metric.get_config()["curve"] == "PRGAIN"


def test_fit_and_evaluate_log_the_new_metrics():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((37, 4)).astype(np.float32)
    y = rng.integers(0, 3, 37)
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer=nnscratch.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                  metrics=[metrics.MeanIoU(3, sparse_y_pred=False), "sparse_categorical_crossentropy"],
                  weighted_metrics=[metrics.IoU(3, [1], sparse_y_pred=False, name="iou1")])
    p = model.predict(x)
    weights = rng.random(37)
    history = model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0, sample_weight=weights,
                        validation_data=(x[:20], y[:20]))
    assert list(history.history)[:4] == ["loss", "mean_io_u", "sparse_categorical_crossentropy", "iou1"]
    predicted = np.argmax(p, axis=1)
    assert history.history["mean_io_u"] == pytest.approx(
        [np.mean(list(_iou_reference(y, predicted, 3).values()))] * 2, rel=1e-6)
    assert history.history["iou1"][0] == pytest.approx(_iou_reference(y, predicted, 3, weights)[1], rel=1e-6)
    assert history.history["val_iou1"][0] == pytest.approx(_iou_reference(y[:20], predicted[:20], 3)[1], rel=1e-6)
    assert history.history["sparse_categorical_crossentropy"][0] == pytest.approx(log_loss(y, p, labels=range(3)),
                                                                                   rel=1e-5)
    regression = nnscratch.Sequential([nnscratch.Input((4,)), Dense(2)])
    regression.compile(optimizer="sgd", loss="mse", metrics=["root_mean_squared_error", "r2_score"])
    targets = rng.standard_normal((37, 2))
    logs = regression.evaluate(x, targets, batch_size=8, return_dict=True, verbose=0)
    out = regression.predict(x).astype(np.float64)
    assert logs["root_mean_squared_error"] == pytest.approx(np.sqrt(mean_squared_error(targets, out)), rel=1e-6)
    assert logs["r2_score"] == pytest.approx(r2_score(targets, out), rel=1e-5)


_OBJECTS = [metrics.RootMeanSquaredError(name="rmse"), metrics.R2Score("variance_weighted_average", 2),
            metrics.IoU(4, [1, 2], ignore_class=3, sparse_y_pred=False), metrics.MeanIoU(3, sparse_y_true=False),
            metrics.BinaryIoU([1], 0.3), metrics.OneHotIoU(3, [0]), metrics.OneHotMeanIoU(3, dtype="float64"),
            metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
            metrics.CategoricalCrossentropy(label_smoothing=0.2),
            metrics.SparseCategoricalCrossentropy(from_logits=True),
            metrics.SensitivityAtSpecificity(0.7, num_thresholds=50, class_id=1),
            metrics.SpecificityAtSensitivity(0.4), metrics.PrecisionAtRecall(0.2), metrics.RecallAtPrecision(0.9),
            metrics.AUC(curve="PRGAIN", summation_method="minoring"),
            metrics.MeanMetricWrapper(metrics.mean_absolute_error, name="mae2")]


def test_configs_round_trip_through_serialize_and_model_save(tmp_path):
    for metric in _OBJECTS:
        again = metrics.deserialize(metrics.serialize(metric))
        assert type(again) is type(metric) and again.get_config() == metric.get_config()
        assert again.name == metric.name and again.direction == metric.direction
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=[metrics.OneHotMeanIoU(3), metrics.CategoricalCrossentropy(label_smoothing=0.1),
                           metrics.RootMeanSquaredError(), "r2_score", metrics.PrecisionAtRecall(0.5, class_id=0)],
                  weighted_metrics=[metrics.OneHotIoU(3, [2], name="iou2")])
    model.save(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz")
    assert [m.get_config() for m in loaded.metrics] == [m.get_config() for m in model.metrics]
    assert loaded.weighted_metrics[0].get_config() == model.weighted_metrics[0].get_config()
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((30, 4)), np.eye(3)[rng.integers(0, 3, 30)]
    assert loaded.evaluate(x, y, batch_size=7, return_dict=True) == model.evaluate(x, y, batch_size=7,
                                                                                  return_dict=True)
