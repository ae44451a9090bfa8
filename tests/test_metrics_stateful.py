"""Metrics with state (Precision, Recall, AUC, F-scores, confusion counts) and the metric classes.

Each metric is checked against an independent formula written here (or
scikit-learn's): the counts summed over several batches give the value of
the whole data at once; ``reset_state`` forgets; sample weights weigh the
counts; ``fit``/``evaluate`` reset, update and log them (``val_`` too);
``model.save``/``load_model`` keeps their arguments.
"""

import numpy as np
import pytest
from sklearn.metrics import f1_score, fbeta_score, roc_auc_score

import nnscratch
from nnscratch import metrics
from nnscratch.callbacks import Callback
from nnscratch.layers import Dense


def _batches(rng, shape, count=3, weighted=False):
    """``count`` random batches ``(y_true 0/1, y_pred in [0, 1], weights or None)`` of one to 30 samples."""
    out = []
    for _ in range(count):
        n = int(rng.integers(1, 31))
        y_true = (rng.random((n, *shape)) < 0.4).astype(np.float32)
        y_pred = rng.random((n, *shape)).astype(np.float32)
        out.append((y_true, y_pred, rng.random(n) * 2 if weighted else None))
    return out


def _joined(batches):
    """The batches as one batch (weights 1 where there were none)."""
    y_true = np.concatenate([b[0] for b in batches])
    y_pred = np.concatenate([b[1] for b in batches])
    weights = np.concatenate([np.ones(len(b[0])) if b[2] is None else b[2] for b in batches])
    return y_true, y_pred, weights


def _feed(metric, batches):
    metric.reset_state()
    for y_true, y_pred, weights in batches:
        metric.update_state(y_true, y_pred, sample_weight=weights)
    return metric.result()


def _counts(y_true, y_pred, weights, threshold):
    """tp, fp, tn, fn of every value: positive prediction where p > threshold (float32 compare, as Keras)."""
    w = np.broadcast_to(weights.reshape(-1, *(1,) * (y_true.ndim - 1)), y_true.shape)
    positive, actual = y_pred > np.float32(threshold), y_true != 0
    return (np.sum(w * (positive & actual)), np.sum(w * (positive & ~actual)),
            np.sum(w * (~positive & ~actual)), np.sum(w * (~positive & actual)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [(1,), (3,)])
def test_confusion_counts_precision_and_recall_over_batches(seed, shape):
    rng = np.random.default_rng(seed)
    batches = _batches(rng, shape, weighted=seed % 2 == 1)
    y_true, y_pred, weights = _joined(batches)
    for thresholds in (None, 0.3, [0.7, 0.0, 0.25, 1.0], [0.0, 0.5, 1.0]):
        levels = [0.5] if thresholds is None else np.ravel(thresholds)
        expected = np.array([_counts(y_true, y_pred, weights, t) for t in levels])   # (T, 4)
        tp, fp, _, fn = expected.T
        for column, cls in enumerate((metrics.TruePositives, metrics.FalsePositives, metrics.TrueNegatives,
                                      metrics.FalseNegatives)):
            np.testing.assert_allclose(_feed(cls(thresholds=thresholds), batches), np.squeeze(expected[:, column]),
                                       rtol=1e-12, atol=1e-12)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1e-300), 0.0)
        np.testing.assert_allclose(_feed(metrics.Precision(thresholds), batches), np.squeeze(precision), rtol=1e-12)
        np.testing.assert_allclose(_feed(metrics.Recall(thresholds), batches), np.squeeze(recall), rtol=1e-12)


def test_precision_and_recall_without_positives_are_zero_and_reset_forgets():
    precision, recall = metrics.Precision(), metrics.Recall()
    zeros = np.zeros((4, 1), np.float32)
    assert precision(zeros, zeros) == 0.0 and recall(zeros, zeros) == 0.0
    precision.update_state(np.ones((2, 1)), np.array([[0.9], [0.2]]))
    recall.update_state(np.ones((2, 1)), np.array([[0.9], [0.2]]))
    assert precision.result() == 1.0 and recall.result() == 0.5
    precision.reset_state()
    assert precision.result() == 0.0
    assert isinstance(metrics.Precision(thresholds=[0.2, 0.8]).result(), np.ndarray)   # one value a threshold


@pytest.mark.parametrize("seed", range(3))
def test_precision_and_recall_of_the_top_k_and_of_one_class(seed):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((25, 5)) < 0.3).astype(np.float32)
    y_pred = rng.random((25, 5)).astype(np.float32)
    weights = rng.random(25)
    rank = np.argsort(np.argsort(-y_pred, axis=1, kind="stable"), axis=1, kind="stable")   # 0 = largest
    for k in (1, 2):
        predicted, actual, w = rank < k, y_true != 0, weights[:, None]
        tp, fp = np.sum(w * (predicted & actual)), np.sum(w * (predicted & ~actual))
        fn = np.sum(w * (~predicted & actual))
        assert metrics.Precision(top_k=k)(y_true, y_pred, weights) == pytest.approx(tp / (tp + fp), rel=1e-12)
        assert metrics.Recall(top_k=k)(y_true, y_pred, weights) == pytest.approx(tp / (tp + fn), rel=1e-12)
        # top_k with a threshold: among the top k, those above it
        predicted = (rank < k) & (y_pred > np.float32(0.6))
        tp, fp = np.sum(w * (predicted & actual)), np.sum(w * (predicted & ~actual))
        assert metrics.Precision(thresholds=0.6, top_k=k)(y_true, y_pred, weights) == pytest.approx(tp / (tp + fp))
    predicted, actual = y_pred[:, 2] > 0.5, y_true[:, 2] != 0
    expected = np.sum(predicted & actual) / np.sum(actual)
    assert metrics.Recall(class_id=2)(y_true, y_pred) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="class_id=5"):
        metrics.Recall(class_id=5)(y_true, y_pred)


def _thresholded_auc(y_true, y_pred, weights, count, curve, summation):
    """AUC at Keras's thresholds -eps, 1/(T-1), ..., 1+eps, one threshold at a time (a plain loop)."""
    thresholds = [-1e-7] + [(i + 1) / (count - 1) for i in range(count - 2)] + [1 + 1e-7]
    y_pred = np.clip(y_pred, 0, 1)
    xs, ys, points = [], [], []
    for t in thresholds:
        tp, fp, tn, fn = _counts(y_true, y_pred, weights, t)
        points.append((tp, fp, fn))
        recall = tp / (tp + fn) if tp + fn else 0.0
        if curve == "ROC":
            xs.append(fp / (fp + tn) if fp + tn else 0.0)
            ys.append(recall)
        else:
            xs.append(recall)
            ys.append(tp / (tp + fp) if tp + fp else 0.0)
    area = 0.0
    for i in range(count - 1):
        if curve == "PR" and summation == "interpolation":     # Davis & Goadrich: interpolate tp against tp + fp
            (tp0, fp0, _), (tp1, fp1, fn1) = points[i], points[i + 1]
            p0, p1 = tp0 + fp0, tp1 + fp1
            if p0 == p1 or tp1 + fn1 == 0:
                continue
            slope = (tp0 - tp1) / (p0 - p1)
            intercept = tp1 - slope * p1
            log_ratio = np.log(p0 / p1) if p0 > 0 and p1 > 0 else 0.0
            area += slope * (tp0 - tp1 + intercept * log_ratio) / (tp1 + fn1)
            continue
        height = {"interpolation": (ys[i] + ys[i + 1]) / 2, "minoring": min(ys[i], ys[i + 1]),
                  "majoring": max(ys[i], ys[i + 1])}[summation]
        area += (xs[i] - xs[i + 1]) * height
    return area


@pytest.mark.parametrize("curve", ["ROC", "PR"])
@pytest.mark.parametrize("summation", ["interpolation", "minoring", "majoring"])
def test_auc_is_the_thresholded_area_over_batches(curve, summation):
    rng = np.random.default_rng(7)
    batches = _batches(rng, (2,), weighted=True)
    y_true, y_pred, weights = _joined(batches)
    for count in (2, 7, 50):
        metric = metrics.AUC(num_thresholds=count, curve=curve, summation_method=summation)
        expected = _thresholded_auc(y_true, y_pred, weights, count, curve, summation)
        assert _feed(metric, batches) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_auc_with_many_thresholds_is_close_to_the_exact_roc_auc():
    rng = np.random.default_rng(3)
    y_true = (rng.random(400) < 0.3).astype(np.float32)
    y_pred = np.clip(0.3 * y_true + rng.random(400) * 0.7, 0, 1).astype(np.float32)
    weights = rng.random(400)
    exact = roc_auc_score(y_true, y_pred, sample_weight=weights)
    assert metrics.AUC(num_thresholds=20001)(y_true, y_pred, weights) == pytest.approx(exact, abs=2e-4)


def test_auc_multi_label_is_the_mean_of_each_columns_area_and_from_logits_takes_the_sigmoid():
    rng = np.random.default_rng(4)
    y_true = (rng.random((60, 3)) < 0.5).astype(np.float32)
    logits = (rng.standard_normal((60, 3)) * 2 + y_true).astype(np.float32)
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    ones = np.ones(60)
    per_label = [_thresholded_auc(y_true[:, j], probabilities[:, j], ones, 200, "ROC", "interpolation")
                 for j in range(3)]
    assert metrics.AUC(multi_label=True, from_logits=True)(y_true, logits) == pytest.approx(np.mean(per_label),
                                                                                           abs=1e-6)
    weighted = np.average(per_label, weights=[1.0, 0.0, 3.0])
    assert metrics.AUC(multi_label=True, label_weights=[1.0, 0.0, 3.0])(y_true, probabilities) == pytest.approx(
        weighted, abs=1e-6)
    flat = _thresholded_auc(y_true.ravel(), probabilities.ravel(), np.ones(180), 200, "ROC", "interpolation")
    assert metrics.AUC()(y_true, probabilities) == pytest.approx(flat, abs=1e-12)   # one problem of 180 values
    assert metrics.AUC()(np.zeros((3, 1)), np.full((3, 1), 0.5)) == 0.0              # no positives


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_f_scores_match_scikit_learn(average):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 80)
    y_true = np.eye(4, dtype=np.float32)[labels]
    y_pred = rng.random((80, 4)).astype(np.float32)
    batches = [(y_true[:30], y_pred[:30], None), (y_true[30:], y_pred[30:], None)]
    expected = f1_score(labels, np.argmax(y_pred, axis=1), average=average)       # threshold None: the arg-max
    np.testing.assert_allclose(_feed(metrics.F1Score(average=average), batches), expected, atol=1e-6)
    predicted = (y_pred > 0.4).astype(int)                                          # multi-label by a threshold
    expected = fbeta_score(y_true.astype(int), predicted, beta=2.0, average=average, zero_division=0)
    np.testing.assert_allclose(_feed(metrics.FBetaScore(average=average, beta=2.0, threshold=0.4), batches),
                               expected, atol=1e-6)
    weights = rng.random(80)
    expected = f1_score(labels, np.argmax(y_pred, axis=1), average=average, sample_weight=weights)
    np.testing.assert_allclose(metrics.F1Score(average=average)(y_true, y_pred, weights), expected, atol=1e-6)


def test_top_k_accuracies_count_ties_as_in():
    y_pred = np.array([[0.1, 0.5, 0.5, 0.2], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]], np.float32)
    labels = np.array([2, 3, 0])
    # label 2 ties with the best (in top 1); label 3 is 4th; every score ties: in top 1
    np.testing.assert_array_equal(metrics.sparse_top_k_categorical_accuracy(labels, y_pred, k=1), [1, 0, 1])
    np.testing.assert_array_equal(metrics.top_k_categorical_accuracy(np.eye(4)[labels], y_pred, k=3), [1, 0, 1])
    rng = np.random.default_rng(6)
    y_pred = rng.random((50, 6))
    labels = rng.integers(0, 6, 50)
    rank = np.argsort(np.argsort(-y_pred, axis=1), axis=1)[np.arange(50), labels]
    for k in (1, 2, 5):
        metric = metrics.SparseTopKCategoricalAccuracy(k=k)
        assert metric.name == "sparse_top_k_categorical_accuracy"
        assert _feed(metric, [(labels[:20], y_pred[:20], None), (labels[20:], y_pred[20:], None)]) == pytest.approx(
            np.mean(rank < k))
        hits = metrics.TopKCategoricalAccuracy(k=k)(np.eye(6)[labels], y_pred)     # per-sample values
        assert np.mean(hits) == pytest.approx(np.mean(rank < k))
        sorted_ids = np.argsort(-y_pred, axis=1, kind="stable").astype(np.float32)   # a retrieval model's output
        by_ids = metrics.SparseTopKCategoricalAccuracy(k=k, from_sorted_ids=True)
        assert _feed(by_ids, [(labels, sorted_ids, None)]) == pytest.approx(np.mean(rank < k))
        assert by_ids.get_config()["from_sorted_ids"] is True
    repeated = np.array([[3.0, 3.0, 1.0], [2.0, 0.0, 0.0]])                 # a repeated id counts once
    np.testing.assert_array_equal(metrics.sparse_top_k_categorical_accuracy([3, 0], repeated, k=2,
                                                                            from_sorted_ids=True), [1, 1])


def test_per_sample_metric_objects_are_weighted_running_means():
    y_true = np.array([[1.0], [0.0], [1.0], [0.0]])
    y_pred = np.array([[0.8], [0.6], [0.65], [0.1]])
    weights = np.array([1.0, 2.0, 3.0, 0.0])
    hits = np.array([1.0, 1.0, 0.0, 1.0])                       # threshold 0.7: only sample 2 is wrong
    metric = metrics.BinaryAccuracy(threshold=0.7)
    metric.update_state(y_true[:2], y_pred[:2], weights[:2])
    metric.update_state(y_true[2:], y_pred[2:], weights[2:])
    assert metric.result() == pytest.approx(np.sum(hits * weights) / np.sum(weights))
    np.testing.assert_array_equal(metric(y_true, y_pred), hits)   # called: per-sample values, for the trainer
    assert metrics.Accuracy()(np.array([[1.0], [2.0]]), np.array([[1.0], [2.5]])).tolist() == [1.0, 0.0]
    mse = metrics.MeanSquaredError()
    mse.update_state(np.zeros((2, 2)), np.array([[1.0, 3.0], [2.0, 0.0]]))
    assert mse.result() == pytest.approx(((1 + 9) / 2 + 4 / 2) / 2)
    mse.reset_state()
    assert mse.result() == 0.0


def test_names_and_configs_resolve_as_keras():
    assert {metrics.get(name).name for name in ("precision", "recall", "auc", "f1_score")} == {
        "precision", "recall", "auc", "f1_score"}
    assert isinstance(metrics.get("AUC"), metrics.AUC) and metrics.get("AUC").name == "AUC"
    assert isinstance(metrics.get("true_positives"), metrics.TruePositives)
    assert metrics.get("top_k_categorical_accuracy").fn is metrics.top_k_categorical_accuracy
    assert metrics.Precision().name == metrics.Precision().name == "precision"      # no process-wide counter
    for metric in (metrics.Precision(thresholds=[0.3, 0.6], class_id=1, name="p"), metrics.Recall(top_k=2),
                   metrics.AUC(curve="PR", num_thresholds=17, from_logits=True), metrics.AUC(thresholds=[0.2, 0.9]),
                   metrics.AUC(multi_label=True, num_labels=3, label_weights=[1.0, 2.0, 0.5]),
                   metrics.F1Score(average="macro", threshold=0.4), metrics.FBetaScore(beta=0.5),
                   metrics.FalseNegatives(thresholds=0.2), metrics.BinaryAccuracy(threshold=0.7),
                   metrics.SparseTopKCategoricalAccuracy(k=3)):
        config = metrics.serialize(metric)
        again = metrics.get(config)
        assert type(again) is type(metric) and again.get_config() == metric.get_config()
    assert metrics.serialize(metrics.get("precision")) == {"class_name": "Precision", "config": {
        "name": "precision", "dtype": None, "thresholds": None, "top_k": None, "class_id": None}}
    assert metrics.serialize(metrics.get("mse")) == "mse"                              # per-sample names stay names


@pytest.mark.parametrize("bad, match", [
    (lambda: metrics.Precision(thresholds=1.5), r"in \[0, 1\]"),
    (lambda: metrics.Recall(top_k=0), "top_k"),
    (lambda: metrics.AUC(num_thresholds=1), "num_thresholds"),
    (lambda: metrics.AUC(curve="ROCX"), "curve"),
    (lambda: metrics.AUC(summation_method="trapezoid"), "summation_method"),
    (lambda: metrics.AUC(num_labels=3), "multi_label"),
    (lambda: metrics.F1Score(average="binary"), "average"),
    (lambda: metrics.FBetaScore(beta=2), "beta"),
    (lambda: metrics.F1Score(threshold=0.0), "threshold"),
    (lambda: metrics.TopKCategoricalAccuracy(k=0), "k must"),
    (lambda: metrics.get({"class_name": "Nope", "config": {}}), "unknown metric class"),
    (lambda: metrics.get({"class_name": "Precision", "config": {"bogus": 1}}), "invalid config"),
    (lambda: metrics.Precision()(np.zeros((3, 2)), np.zeros((3, 4))), "same shape"),
    (lambda: metrics.F1Score()(np.zeros(3), np.zeros((3, 4))), "2D inputs"),
])
def test_bad_arguments_say_what_was_expected(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def _binary_model(seed=0):
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer=nnscratch.optimizers.SGD(learning_rate=0.0), loss="binary_crossentropy",
                  metrics=["accuracy", "precision", metrics.Precision(), metrics.AUC(num_thresholds=20)],
                  weighted_metrics=[metrics.Recall()])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((37, 3))
    y = (x[:, 0] + 0.5 * rng.standard_normal(37) > 0).astype(np.float32)
    return model, x, y, rng.random(37)


class _BatchLogs(Callback):
    def __init__(self):
        super().__init__()
        self.train, self.test = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.train.append(dict(logs))

    def on_test_batch_end(self, batch, logs=None):
        self.test.append(dict(logs))


def test_fit_and_evaluate_reset_update_and_log_metrics_with_state():
    model, x, y, weights = _binary_model()
    p = model.predict(x)                                        # the weights never change (learning rate 0)
    reference = metrics.Precision()

    def precision(upto):
        reference.reset_state()
        return reference(y[:upto, None], p[:upto])

    logs = _BatchLogs()
    history = model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0, sample_weight=weights,
                        validation_data=(x[:20], y[:20]), callbacks=[logs])
    assert list(history.history) == ["loss", "accuracy", "precision", "precision_1", "auc", "recall",
                                     "val_loss", "val_accuracy", "val_precision", "val_precision_1", "val_auc",
                                     "val_recall", "learning_rate"]
    for step in range(4):                                      # running values within the epoch, reset each epoch
        for epoch in range(2):
            assert logs.train[4 * epoch + step]["precision"] == pytest.approx(precision(10 * step + 10), abs=1e-12)
    assert history.history["precision"] == pytest.approx([precision(37)] * 2, abs=1e-12)
    assert history.history["precision_1"] == history.history["precision"]
    assert history.history["val_precision"] == pytest.approx([precision(20)] * 2, abs=1e-12)
    # weighted_metrics get the sample weights: recall = sum w [t p] / sum w [t]
    hit = (p[:, 0] > np.float32(0.5)) & (y == 1)
    assert history.history["recall"][0] == pytest.approx(np.sum(weights * hit) / np.sum(weights * (y == 1)))
    assert history.history["val_recall"][0] == pytest.approx(np.sum(hit[:20]) / np.sum(y[:20] == 1))
    auc = metrics.AUC(num_thresholds=20)(y, p)
    assert history.history["auc"] == pytest.approx([auc, auc], abs=1e-12)
    result = model.evaluate(x, y, batch_size=8, return_dict=True, sample_weight=weights)
    assert result["auc"] == pytest.approx(auc, abs=1e-12) and result["precision"] == pytest.approx(precision(37))
    assert result["recall"] == pytest.approx(history.history["recall"][0])
    # train_on_batch and test_on_batch start from zero counts at every call, as Keras 3
    first = model.train_on_batch(x[:10], y[:10], return_dict=True)
    assert first["precision"] == pytest.approx(precision(10), abs=1e-12) and first["precision"] > 0
    assert first["auc"] == pytest.approx(metrics.AUC(num_thresholds=20)(y[:10], p[:10]), abs=1e-12)
    assert model.train_on_batch(x[:10], y[:10], return_dict=True) == first
    assert model.test_on_batch(x[:10], y[:10], return_dict=True)["auc"] == first["auc"]


def test_plain_metrics_log_what_they_logged_before():
    """A stateful metric beside per-sample ones leaves their running means exactly as they were."""
    model, x, y, _ = _binary_model(1)
    with_state = model.evaluate(x, y, batch_size=8, return_dict=True)
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    plain = model.evaluate(x, y, batch_size=8, return_dict=True)
    assert with_state["loss"] == plain["loss"] and with_state["accuracy"] == plain["accuracy"]


def test_a_model_compiled_with_metric_objects_saves_and_loads_them(tmp_path):
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="softmax")])
    compiled = [metrics.Precision(thresholds=0.3, name="p30"), "auc", metrics.F1Score(average="macro"),
                metrics.TopKCategoricalAccuracy(k=2), "accuracy"]
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=compiled,
                  weighted_metrics=[metrics.AUC(curve="PR", num_thresholds=33)])
    model.save(tmp_path / "m.npz")
    loaded = nnscratch.load_model(tmp_path / "m.npz")
    assert [type(m).__name__ for m in loaded.metrics] == ["Precision", "AUC", "F1Score", "TopKCategoricalAccuracy",
                                                          "Metric"]
    assert [m.get_config() for m in loaded.metrics[:4]] == [m.get_config() for m in model.metrics[:4]]
    assert loaded.weighted_metrics[0].get_config() == model.weighted_metrics[0].get_config()
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((30, 4)), np.eye(3)[rng.integers(0, 3, 30)]
    assert loaded.evaluate(x, y, batch_size=7, return_dict=True) == model.evaluate(x, y, batch_size=7,
                                                                                  return_dict=True)


def test_duplicate_names_are_numbered_and_each_metric_keeps_its_own_mean():
    """As Keras 3: mae, mae_1; a weighted metric whose name is taken is weighted_<name> (each its own sum)."""
    model = nnscratch.Sequential([nnscratch.Input((2,)), Dense(2)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae", "mae", metrics.MeanAbsoluteError(name="mae")],
                  weighted_metrics=["mae", "mae"])
    rng = np.random.default_rng(8)
    x, y, w = rng.standard_normal((9, 2)), rng.standard_normal((9, 2)), rng.random(9)
    logs = model.evaluate(x, y, batch_size=4, sample_weight=w, return_dict=True)
    assert list(logs) == ["loss", "mae", "mae_1", "mae_2", "weighted_mae", "weighted_mae_1"]
    errors = np.abs(model.predict(x).astype(np.float64) - y).mean(axis=1)
    for name in ("mae", "mae_1", "mae_2"):
        assert logs[name] == pytest.approx(np.mean(errors), rel=1e-6)
    for name in ("weighted_mae", "weighted_mae_1"):
        assert logs[name] == pytest.approx(np.sum(w * errors) / np.sum(w), rel=1e-6)
