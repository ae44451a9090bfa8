"""Metrics for fit and evaluate, as ``keras.metrics``.

Two kinds (:mod:`nnscratch.metrics.base`):

* **per-sample metrics** (:class:`Metric`): the accuracies, ``"mse"``,
  ``"mae"`` and plain functions ``fn(y_true, y_pred)`` give one value per
  sample; the training loop keeps a running mean weighted by batch size, as
  Keras does (:mod:`nnscratch.metrics.accuracy`);
* **metrics with state** (:class:`StatefulMetric`): :class:`Precision`,
  :class:`Recall`, :class:`AUC`, :class:`F1Score`, the confusion counts...
  sum counts over the batches (``update_state``) and compute their value
  from the sums (``result``); ``fit`` resets them each epoch and each
  validation (:mod:`~nnscratch.metrics.confusion`, :mod:`~nnscratch.metrics.auc`,
  :mod:`~nnscratch.metrics.fscore`), :class:`RootMeanSquaredError`,
  :class:`R2Score` (:mod:`~nnscratch.metrics.regression`), the IoU metrics
  (:mod:`~nnscratch.metrics.iou`), :class:`SensitivityAtSpecificity` and
  kin (:mod:`~nnscratch.metrics.constrained`);
* :class:`Mean` and :class:`Sum` of values, for use on their own, and
  :class:`MeanMetricWrapper` of a function (:mod:`~nnscratch.metrics.reduction`).

``compile(metrics=[...])`` takes names (``"accuracy"``, ``"precision"``,
``"auc"``, ...), metric objects and functions; :func:`get` resolves them and
:func:`serialize` is what ``model.save`` keeps.
"""

from nnscratch.metrics.accuracy import (Accuracy, BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError,
                                        MeanSquaredError, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                                        TopKCategoricalAccuracy, accuracy, binary_accuracy, categorical_accuracy,
                                        mean_absolute_error, mean_squared_error, sparse_categorical_accuracy,
                                        sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)
from nnscratch.metrics.auc import AUC
from nnscratch.metrics.base import Metric, StatefulMetric, function_metric, snake_case
from nnscratch.metrics.confusion import (FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives,
                                         TruePositives)
from nnscratch.metrics.correlation import (ConcordanceCorrelation, PearsonCorrelation, concordance_correlation,
                                           pearson_correlation)
from nnscratch.metrics.constrained import (PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity,
                                           SpecificityAtSensitivity)
from nnscratch.metrics.fscore import F1Score, FBetaScore
from nnscratch.metrics.loss_metrics import NAMES as _LOSS_METRIC_NAMES
from nnscratch.metrics.iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from nnscratch.metrics.loss_metrics import (BinaryCrossentropy, CategoricalCrossentropy, CategoricalHinge,
                                            CosineSimilarity, Hinge, KLDivergence, LogCoshError,
                                            MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Poisson,
                                            SparseCategoricalCrossentropy, SquaredHinge, categorical_hinge,
                                            cosine_similarity, hinge, kl_divergence, log_cosh_error,
                                            mean_absolute_percentage_error, mean_squared_logarithmic_error, poisson,
                                            squared_hinge)
from nnscratch.metrics.reduction import Mean, MeanMetricWrapper, Sum
from nnscratch.metrics.regression import R2Score, RootMeanSquaredError

__all__ = ["Metric", "StatefulMetric", "get", "serialize", "deserialize", "function_metric", "accuracy",
           "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "top_k_categorical_accuracy",
           "sparse_top_k_categorical_accuracy", "mean_absolute_error", "mean_squared_error", "Accuracy",
           "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError", "TruePositives",
           "FalsePositives", "TrueNegatives", "FalseNegatives", "Precision", "Recall", "AUC", "FBetaScore",
           "F1Score", "KLDivergence", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Poisson",
           "Hinge", "SquaredHinge", "CategoricalHinge", "CosineSimilarity", "LogCoshError", "Mean", "Sum",
           "MeanMetricWrapper", "RootMeanSquaredError", "R2Score", "IoU", "MeanIoU", "BinaryIoU", "OneHotIoU",
           "OneHotMeanIoU", "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall", "RecallAtPrecision",
           "PearsonCorrelation", "ConcordanceCorrelation", "pearson_correlation", "concordance_correlation",
           "function_config", "function_from_config"]

# names of per-sample functions (a Metric keeps the function: metrics.get("mse").fn is mean_squared_error)
_BY_NAME = {
    "accuracy": accuracy,
    "acc": accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error,
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
}

# names of metric classes (Keras's keras.metrics.get strings: the snake-case class names); each name makes an object
_STATEFUL = {snake_case(cls.__name__): cls for cls in (TruePositives, FalsePositives, TrueNegatives, FalseNegatives,
                                                        Precision, Recall, F1Score)}
_STATEFUL.update(auc=AUC, f_beta_score=FBetaScore, root_mean_squared_error=RootMeanSquaredError, r2_score=R2Score,
                 binary_io_u=BinaryIoU)
# the losses Keras also takes as metrics: "mape", "msle", "kl_divergence", ... (per-sample means; loss_metrics);
# objects, so that each keeps its direction (cosine similarity goes up)
_STATEFUL.update(_LOSS_METRIC_NAMES)
_STATEFUL.update(pearson_correlation=PearsonCorrelation, concordance_correlation=ConcordanceCorrelation)
# names Keras resolves to classes that need arguments (a clear error here, a missing-argument TypeError in Keras)
_NEED_ARGUMENTS = {snake_case(cls.__name__): (cls, argument) for cls, argument in (
    (IoU, "num_classes=..., target_class_ids=[...]"), (MeanIoU, "num_classes=..."),
    (OneHotIoU, "num_classes=..., target_class_ids=[...]"), (OneHotMeanIoU, "num_classes=..."),
    (SensitivityAtSpecificity, "specificity=..."), (SpecificityAtSensitivity, "sensitivity=..."),
    (PrecisionAtRecall, "recall=..."), (RecallAtPrecision, "precision=..."), (MeanMetricWrapper, "fn"))}
# Mean and Sum take values, not (y_true, y_pred): on their own only
_VALUES_ONLY = (Mean, Sum)

# classes by name, for the configs that serialize writes
_CLASSES = {cls.__name__: cls for cls in (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                          TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
                                          MeanAbsoluteError, TruePositives, FalsePositives, TrueNegatives,
                                          FalseNegatives, Precision, Recall, AUC, FBetaScore, F1Score, KLDivergence,
                                          MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Poisson, Hinge,
                                          SquaredHinge, CategoricalHinge, CosineSimilarity, LogCoshError, Mean,
                                          Sum, MeanMetricWrapper, RootMeanSquaredError, R2Score, IoU, MeanIoU,
                                          BinaryIoU, OneHotIoU, OneHotMeanIoU, BinaryCrossentropy,
                                          CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                          SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall,
                                          RecallAtPrecision, PearsonCorrelation, ConcordanceCorrelation)}

# the metric functions MeanMetricWrapper's config names (beside nnscratch.losses objects, kept as loss configs)
_FUNCTIONS = {fn.__name__: fn for fn in (accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                                         top_k_categorical_accuracy, sparse_top_k_categorical_accuracy,
                                         mean_absolute_error, mean_squared_error, kl_divergence,
                                         mean_absolute_percentage_error, mean_squared_logarithmic_error, poisson,
                                         hinge, squared_hinge, categorical_hinge, cosine_similarity, log_cosh_error,
                                         pearson_correlation, concordance_correlation)}


def function_config(fn):
    """``fn`` as a :class:`MeanMetricWrapper` config keeps it: a metric function's name, a loss's config, or None."""
    from nnscratch import losses

    if isinstance(fn, losses.Loss):
        return losses.serialize(fn)
    name = getattr(fn, "__name__", None)
    return name if _FUNCTIONS.get(name) is fn else None


def function_from_config(config):
    """The function :func:`function_config` described: a name of :mod:`nnscratch.metrics` or a loss config."""
    from nnscratch import losses

    if isinstance(config, str) and config in _FUNCTIONS:
        return _FUNCTIONS[config]
    if isinstance(config, dict):
        return losses.get(config)
    raise ValueError(f"unknown MeanMetricWrapper fn {config!r}; expected one of {sorted(_FUNCTIONS)} or a loss config")


def deserialize(config: dict) -> StatefulMetric:
    """A metric from ``{"class_name": ..., "config": {...}}`` as :func:`serialize` writes it."""
    if not isinstance(config, dict) or set(config) - {"class_name", "config"} or "class_name" not in config:
        raise ValueError(f"a metric config must be {{'class_name': ..., 'config': {{...}}}}, got {config!r}")
    cls = _CLASSES.get(config["class_name"])
    if cls is None:
        raise ValueError(f"unknown metric class {config['class_name']!r}; expected one of {sorted(_CLASSES)}")
    try:
        return cls.from_config(dict(config.get("config") or {}))
    except TypeError as error:
        raise ValueError(f"invalid config for metric {config['class_name']!r}: {error}") from None


def get(identifier) -> StatefulMetric:
    """Resolve a metric name (any case), a config dict, a function or a metric object.

    A name gives a metric that keeps the name as given, as in Keras: so
    ``metrics=["acc"]`` logs ``"acc"`` and ``"val_acc"``, ``["accuracy"]``
    logs ``"accuracy"``. ``"accuracy"``/``"acc"`` choose their kind from the
    shapes of targets and predictions (:func:`accuracy`). Class names as
    Keras spells them are accepted too (``"MeanSquaredError"``,
    ``"BinaryAccuracy"``, ``"Precision"``). The names of metrics with state
    are Keras's: ``"precision"``, ``"recall"``, ``"auc"``, ``"f1_score"``,
    ``"f_beta_score"``, ``"true_positives"``, ``"false_positives"``,
    ``"true_negatives"``, ``"false_negatives"``, ``"root_mean_squared_error"``,
    ``"r2_score"``, ``"binary_io_u"``, ``"binary_crossentropy"``/``"bce"``,
    ``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"``
    (each a new object with its default arguments). Names of classes that
    need arguments (``"mean_io_u"``, ``"sensitivity_at_specificity"``, ...) get
    a ValueError saying so; :class:`Mean` and :class:`Sum` (objects or names)
    a TypeError: they take values, not ``(y_true, y_pred)``. A dict
    ``{"class_name": "Precision", "config": {"thresholds": 0.3}}`` (what
    :func:`serialize` writes) makes that metric.
    A plain function ``fn(y_true, y_pred)`` is wrapped by
    :func:`function_metric` and logged under its snake-case name.
    """
    if isinstance(identifier, _VALUES_ONLY) or isinstance(identifier, dict) \
            and identifier.get("class_name") in ("Mean", "Sum"):
        raise TypeError("Mean and Sum take values, update_state(values, sample_weight), not targets and predictions: "
                        "use them on their own; for compile wrap a function fn(y_true, y_pred) in "
                        "MeanMetricWrapper(fn), or use Sum/Mean in a callback")
    if isinstance(identifier, StatefulMetric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, StatefulMetric):
        raise TypeError(f"pass a metric object, {identifier.__name__}(), not the class")
    if callable(identifier) and not isinstance(identifier, str):
        return function_metric(identifier)
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name, a function fn(y_true, y_pred) or a Metric, "
                        f"got {type(identifier).__name__}")
    for key in (identifier.lower(), snake_case(identifier)):
        if key in _BY_NAME:
            return Metric(identifier, _BY_NAME[key])
        if key in _STATEFUL:
            return _STATEFUL[key](name=identifier)
        if key in ("mean", "sum"):
            return get(Mean() if key == "mean" else Sum())            # refused, as above
        if key in _NEED_ARGUMENTS:
            cls, argument = _NEED_ARGUMENTS[key]
            raise ValueError(f"metric {identifier!r} needs arguments: pass {cls.__name__}({argument}), not a name")
    raise ValueError(f"unknown metric {identifier!r}; expected one of {sorted({*_BY_NAME, *_STATEFUL})} or a "
                     "function fn(y_true, y_pred)")


def serialize(metric: StatefulMetric):
    """What ``compile`` saves for ``metric``: its name, or ``{"class_name", "config"}`` for a metric class.

    A metric made from a name or a function is saved as its name
    (``load_model`` resolves it with :func:`get`, a function through
    ``custom_objects``); an object of one of the classes here (``Precision(thresholds=0.3)``,
    ``BinaryAccuracy(threshold=0.7)``) as its class and config, which :func:`get`
    turns back into the same metric.
    """
    if type(metric) is Metric:
        return metric.name
    if isinstance(metric, MeanMetricWrapper) and not metric.serializable():
        return metric.name
    if type(metric).__name__ in _CLASSES and _CLASSES[type(metric).__name__] is type(metric):
        return {"class_name": type(metric).__name__, "config": metric.get_config()}
    return metric.name
