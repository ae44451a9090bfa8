"""A Keras-like text table of a model's layers."""

import numpy as np

from nnscratch.config import floatx

__all__ = ["format_summary"]


def _bytes(count: int, itemsize: int = 4) -> str:
    size = count * itemsize
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def format_summary(model) -> str:
    """Return the summary table: one row per layer, then Total / Trainable / Non-trainable.

    Non-trainable counts the buffers (batch-norm moving statistics) and the
    parameters of frozen layers, exactly as Keras does.
    """
    labels = [f"{layer.name} ({type(layer).__name__})" for layer in model.all_layers()]
    columns = (max([34] + [len(label) + 2 for label in labels]), 24, 14)
    rule = "-" * sum(columns)
    lines = [f'Model: "{model.name}"', rule,
             f"{'Layer (type)':<{columns[0]}}{'Output Shape':<{columns[1]}}{'Param #':>{columns[2]}}", "=" * sum(columns)]
    for layer, label in zip(model.all_layers(), labels):
        lines.append(f"{label:<{columns[0]}}{str(layer.output_shape):<{columns[1]}}{layer.count_params():>{columns[2]},}")
    total = model.count_params()
    trainable = sum(layer.count_trainable_params() for layer in model.layers)
    weights = model.get_weights()
    itemsize = weights[0].itemsize if weights else np.dtype(floatx()).itemsize
    lines += ["=" * sum(columns),
              f"Total params: {total:,} ({_bytes(total, itemsize)})",
              f"Trainable params: {trainable:,} ({_bytes(trainable, itemsize)})",
              f"Non-trainable params: {total - trainable:,} ({_bytes(total - trainable, itemsize)})",
              rule]
    return "\n".join(lines)
