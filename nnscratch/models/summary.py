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


def _connections(model) -> list:
    """For a graph model, each row's "Connected to" entries as Keras writes them (``conv2d[0][0]``); else None.

    A shared layer's row lists what each of its calls reads (``dense[1][0]``:
    the tensor of ``dense``'s second call).
    """
    graph = getattr(model, "graph", None)
    if graph is None:
        return None
    tensor = model._tensor_names()
    rows = {id(layer): [] for layer in model.layers}
    for layer, sources in zip(model.node_layers, graph.sources):
        rows[id(layer)] += [f"{name}[{call}][0]" for name, call in map(tensor, sources)]
    rows = [["-"] for _ in model.input_layers] + [rows[id(layer)] for layer in model.layers]
    return [[entry + "," for entry in row[:-1]] + row[-1:] for row in rows]


def format_summary(model) -> str:
    """Return the summary table: one row per layer, then Total / Trainable / Non-trainable.

    Non-trainable counts the buffers (batch-norm moving statistics) and the
    parameters of frozen layers, exactly as Keras does. A model that branches
    or merges gets a fourth column, "Connected to", as Keras prints it: the
    layers each layer reads (``add[0][0]``), one per line.
    """
    labels = [f"{layer.name} ({type(layer).__name__})" for layer in model.all_layers()]
    connections = _connections(model)
    columns = (max([34] + [len(label) + 2 for label in labels]), 24, 14)
    if connections is not None:
        columns += (max([14] + [len(entry) + 2 for row in connections for entry in row]),)
    rule = "-" * sum(columns)
    header = f"{'Layer (type)':<{columns[0]}}{'Output Shape':<{columns[1]}}{'Param #':>{columns[2]}}"
    if connections is not None:
        header += f"  {'Connected to':<{columns[3] - 2}}"
    lines = [f'Model: "{model.name}"', rule, header.rstrip(), "=" * sum(columns)]
    for row, (layer, label) in enumerate(zip(model.all_layers(), labels)):
        line = f"{label:<{columns[0]}}{str(layer.output_shape):<{columns[1]}}{layer.count_params():>{columns[2]},}"
        if connections is None:
            lines.append(line)
            continue
        first, *more = connections[row]
        lines.append(f"{line}  {first}")
        lines += [f"{'':<{sum(columns[:3])}}  {entry}" for entry in more]
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
