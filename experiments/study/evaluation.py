"""The evaluation report on the test set: loss, accuracy, per-class metrics, prediction time."""

import time

import numpy as np

from study.data import targets
from study.settings import NUM_CLASSES, PREDICT_BATCH_SIZE

__all__ = ["classification_metrics", "evaluate_model", "predict_timed"]


def predict_timed(model, x, batch_size=PREDICT_BATCH_SIZE):
    """``model.predict(x)`` and its wall time (after a one-batch warm-up, so no JIT compile is timed)."""
    model.predict(x[:batch_size], batch_size=batch_size)
    start = time.perf_counter()
    probabilities = model.predict(x, batch_size=batch_size)
    return probabilities, time.perf_counter() - start


def classification_metrics(y_true, y_pred, labels=range(NUM_CLASSES)) -> dict:
    """Accuracy, errors, macro precision/recall/F1, scikit-learn's per-class report, confusion matrix."""
    from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

    labels = list(labels)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                               zero_division=0)
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0, digits=4)
    return {
        "test_accuracy": float(np.mean(y_true == y_pred)),
        "errors": int(np.sum(y_true != y_pred)),
        "n_test": int(len(y_true)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "classification_report": report,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def evaluate_model(model, test, batch_size=PREDICT_BATCH_SIZE) -> dict:
    """The evaluation report on ``test``: loss, accuracy, per-class metrics, prediction time."""
    probabilities, seconds = predict_timed(model, test.x, batch_size)
    prepared = model.loss.prepare_targets(targets(model, test.y), model.output_shape[1:])
    loss = float(np.mean(model.loss.per_sample(prepared, probabilities)))
    report = classification_metrics(test.y, np.argmax(probabilities, axis=1))
    report.update({"test_loss": loss, "prediction_time_s": seconds, "prediction_batch_size": batch_size})
    return report
