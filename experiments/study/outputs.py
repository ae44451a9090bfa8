"""What a run writes and prints: ``metrics.json``, ``history.csv``, the plots, the summary line.

:func:`write_outputs` writes the four files of every training script;
:func:`report` prints the result. Matplotlib is imported only when a plot is
drawn (:func:`_pyplot`, with the non-interactive Agg backend).
"""

import csv
import json
from pathlib import Path

import numpy as np

from study.settings import QUICK_TAG

__all__ = ["HISTORY_COLUMNS", "history_figure", "integer_ticks", "plot_confusion", "plot_history", "plot_title",
           "read_history", "read_json", "report", "save_figure", "summary_line", "write_history", "write_json",
           "write_outputs"]


HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def write_history(path, history):
    """One row per epoch (1-based): loss, accuracy, val_loss, val_accuracy, learning_rate, then any other key."""
    keys = [k for k in HISTORY_COLUMNS[1:] if k in history] + sorted(set(history) - set(HISTORY_COLUMNS))
    n = max((len(v) for v in history.values()), default=0)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", *keys])
        for i in range(n):
            writer.writerow([i + 1, *(repr(float(history[k][i])) if i < len(history[k]) else "" for k in keys)])


def read_history(path) -> dict:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows if row[key] != ""] for key in (rows[0] if rows else {})}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def integer_ticks(axis):
    """Only whole numbers as ticks on ``axis`` (epochs, folds), even when it spans a single value.

    ``MaxNLocator(integer=True)`` alone falls back to ticks such as 0.95 and
    1.05 when the axis holds fewer than two integers (a 1-epoch run);
    ``min_n_ticks=1`` keeps it to integers.
    """
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plot_title(metrics, what=None):
    """A plot title: the experiment, ``what`` it shows, and the quick-run mark of a ``--quick`` run."""
    title = metrics["experiment"] if what is None else f"{metrics['experiment']}: {what}"
    return f"{title}\n{QUICK_TAG}" if metrics.get("quick") else title


def save_figure(fig, path):
    """Write ``fig`` to ``path`` (PNG, 110 dpi) and free it."""
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def history_figure(history, title, best_epoch=None):
    """Loss, accuracy and learning rate per epoch (train and validation), with integer epoch ticks."""
    plt = _pyplot()
    panels = [("loss", "Loss"), ("accuracy", "Accuracy")] + (
        [("learning_rate", "Learning rate")] if history.get("learning_rate") else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        epochs = np.arange(1, len(history.get(key, [])) + 1)
        if key in history:
            ax.plot(epochs, history[key], marker="o", ms=3, label="train" if key != "learning_rate" else None)
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label="validation")
        if best_epoch and key != "learning_rate":
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {best_epoch}")
        if key == "learning_rate":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        integer_ticks(ax.xaxis)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(path, history, title, best_epoch=None):
    """training_curves.png: :func:`history_figure` saved to ``path``."""
    save_figure(history_figure(history, title, best_epoch), path)


def plot_confusion(path, matrix, title):
    """The confusion matrix with counts in the cells."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    shown = np.log1p(matrix)
    image = ax.imshow(shown, cmap="Blues")
    threshold = shown.max() / 2 if shown.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if shown[i, j] > threshold else "black")
    ticks = np.arange(matrix.shape[0])
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out, metrics, history):
    """metrics.json, history.csv, training_curves.png and confusion_matrix.png in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", metrics)
    write_history(out / "history.csv", history)
    accuracy = metrics.get("test_accuracy")
    curves = None if accuracy is None else f"test accuracy {accuracy:.2%}"
    if curves and metrics.get("best_units") is not None:  # basic_mlp: say which width won
        curves = f"n = {metrics['best_units']}, {curves}"
    plot_history(out / "training_curves.png", history, plot_title(metrics, curves), metrics.get("best_epoch"))
    plot_confusion(out / "confusion_matrix.png", metrics["confusion_matrix"],
                   plot_title(metrics, f"{metrics['errors']} errors of {metrics['n_test']:,}"))
    return out


def summary_line(metrics) -> str:
    """The one-line result of a run; a ``--quick`` run says it is a smoke test."""
    best = metrics.get("best_epoch")
    best_text = "no validation" if best is None else f"best {best}"
    line = (f"{metrics['experiment']}: test accuracy {metrics['test_accuracy']:.4f} "
            f"({metrics['errors']} errors of {metrics['n_test']}), loss {metrics['test_loss']:.4f}, "
            f"{metrics.get('epochs_run', '-')} epochs ({best_text}), wall {metrics['wall_time_s']:.1f} s, "
            f"predict {metrics['prediction_time_s']:.3f} s")
    return f"{line} [{QUICK_TAG}]" if metrics.get("quick") else line


def report(metrics, out):
    """A few lines on stdout at the end of a run."""
    print(summary_line(metrics))
    print(f"outputs in {out}")
