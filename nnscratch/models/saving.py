"""Save and load models as one ``.npz`` file: weights as arrays, the rest as JSON.

Nothing is pickled, so loading a file can never run code. The JSON (stored
in the archive as the bytes of the entry ``__config__``) holds the
architecture, the compile settings and a SHA-256 of the weights, so a
truncated or tampered file is refused with a clear error instead of
silently giving other predictions.

Weights are the entries ``w0, w1, ...``. A compiled model also saves its
optimizer's state (as Keras does): the step count in the JSON and the slot
arrays (Adam's moments, ...) as ``o0, o1, ...``, with their own SHA-256, so
that a loaded model resumes training exactly where the saved one stopped.

Keras's own files (a ``.keras`` zip, an HDF5 ``.h5``) cannot be read; they
are recognised and refused with a note on how to copy their weights over.
"""

import hashlib
import json
import os
import zipfile

import numpy as np

from nnscratch import layers as layers_module
from nnscratch import losses as losses_module
from nnscratch import metrics as metrics_module
from nnscratch import optimizers

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]

FORMAT = "nnscratch-model"
VERSION = 1


def _digest(weights) -> str:
    h = hashlib.sha256()
    for w in weights:
        h.update(str((w.shape, w.dtype.str)).encode())
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _write(filepath, config: dict, weights, optimizer_arrays=()) -> None:
    """Write exactly ``filepath`` (np.savez would append '.npz'), via a temporary file."""
    filepath = os.fspath(filepath)
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    arrays.update({f"o{i}": a for i, a in enumerate(optimizer_arrays)})
    arrays["__config__"] = np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)
    tmp = f"{filepath}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, filepath)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


#: Members of a Keras 3 ``.keras`` archive (a zip, as nnscratch's ``.npz``).
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
#: The first bytes of an HDF5 file (Keras's ``.weights.h5`` and older ``.h5`` models).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MOVE_WEIGHTS = ("nnscratch cannot read Keras files. To move the weights over, build the same architecture in "
                 "nnscratch, load the file with Keras and copy them: model.set_weights(keras_model.get_weights()) "
                 "(this works when the layers and their shapes match)")


def _refuse_keras_file(filepath) -> None:
    """Raise a ValueError that says so if ``filepath`` is a Keras file (a ``.keras`` zip or an HDF5 file)."""
    try:
        with open(filepath, "rb") as f:
            start = f.read(len(HDF5_SIGNATURE))
    except OSError:
        return  # not a readable file: _read says what is wrong
    if start == HDF5_SIGNATURE:
        raise ValueError(f"{filepath!r} is an HDF5 file (a Keras .h5 or .weights.h5 file?), not an nnscratch "
                         f"file. {_MOVE_WEIGHTS}")
    try:
        with zipfile.ZipFile(filepath) as archive:
            members = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return  # not a readable zip: _read says what is wrong
    if "__config__.npy" not in members and any(name in members for name in KERAS_MEMBERS):
        raise ValueError(f"{filepath!r} is a Keras model file (.keras: a zip of {', '.join(KERAS_MEMBERS)}), not "
                         f"an nnscratch file. {_MOVE_WEIGHTS}")


def _read(filepath, expected_kind: str):
    """Return (config, weights, optimizer arrays) from a file written by :func:`_write`, or raise ValueError."""
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"no model file at {filepath!r}")
    _refuse_keras_file(filepath)
    try:
        archive = np.load(filepath, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive")
        with archive:
            config = json.loads(archive["__config__"].tobytes().decode("utf-8"))
            weights = [archive[f"w{i}"] for i in range(len(config["weights"]))]
            state = config.get("optimizer_state") or {}
            optimizer_arrays = [archive[f"o{i}"] for i in range(len(state.get("arrays", [])))]
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{filepath!r} is not a readable nnscratch file (truncated or corrupted?): {error}") from None
    if config.get("format") != FORMAT or config.get("kind") != expected_kind:
        raise ValueError(f"{filepath!r} is not an nnscratch {expected_kind} file "
                         f"(format {config.get('format')!r}, kind {config.get('kind')!r})")
    if _digest(weights) != config.get("sha256"):
        raise ValueError(f"{filepath!r}: the weights do not match their recorded SHA-256; the file was modified")
    if optimizer_arrays and _digest(optimizer_arrays) != state.get("sha256"):
        raise ValueError(f"{filepath!r}: the optimizer state does not match its recorded SHA-256; "
                         "the file was modified")
    return config, weights, optimizer_arrays


def save_model(model, filepath, include_optimizer=True) -> None:
    """Save architecture, weights and compile settings of ``model`` to ``filepath``.

    With ``include_optimizer`` (and a compiled model) the optimizer's current
    hyperparameters (a learning rate lowered by ReduceLROnPlateau included),
    step count and slots are saved too.
    """
    weights = model.get_weights()
    compiled = getattr(model, "compiled_config", None)
    optimizer = getattr(model, "optimizer", None)
    state, optimizer_arrays = None, []
    if compiled and optimizer is not None:
        compiled = {**compiled, "optimizer": optimizers.serialize(optimizer)}
        if include_optimizer:
            state, optimizer_arrays = optimizer.get_state(model.parameters())
            state.update(arrays=[list(a.shape) for a in optimizer_arrays], sha256=_digest(optimizer_arrays))
    config = {
        "format": FORMAT, "version": VERSION, "kind": "model",
        "model": model.get_config(),
        "compile": compiled,
        "weights": [list(w.shape) for w in weights],
        "sha256": _digest(weights),
        "optimizer_state": state,
    }
    _write(filepath, config, weights, optimizer_arrays)


def _layer_from_config(entry, custom=None):
    """The layer of a description entry: a class of ``custom`` (load_model's ``custom_objects``) or the library's."""
    name, custom = entry["class_name"], custom or {}
    cls = custom.get(name)
    if cls is None:
        cls = layers_module.get(name)
    elif not (isinstance(cls, type) and issubclass(cls, layers_module.Layer)):
        raise TypeError(f"custom_objects[{name!r}] must be a Layer subclass, got {cls!r}")
    return cls.from_config(entry["config"])


def _graph_from_config(spec, inputs, custom=None):
    """Rebuild a model that branches or merges: each layer entry names the layers it reads (``inbound_layers``).

    ``inputs``: the model's input tensors, in order. The entries come in the
    model's order, so each reads an input (by its name, ``spec["input_name"]``
    or ``spec["input_names"]``) or layers before it; the last is the output.
    Anything else (an unknown or later name, a layer nobody reads) raises a
    ValueError, which :func:`load_model` prefixes with the file's name.
    """
    from nnscratch.models.model import Model

    tensors = {tensor.layer.name: tensor for tensor in inputs}
    for entry in spec["layers"]:
        inbound = entry["inbound_layers"]
        if not isinstance(inbound, list) or not inbound or not all(isinstance(name, str) for name in inbound):
            raise ValueError(f"layer entry {entry['config'].get('name')!r} must name the layers it reads, "
                             f"got inbound_layers={inbound!r}")
        unknown = [name for name in inbound if name not in tensors]
        if unknown:
            raise ValueError(f"layer {entry['config'].get('name')!r} reads {unknown}, which come neither from an "
                             "input nor from a layer before it")
        layer = _layer_from_config(entry, custom)
        if not layer.takes_list and len(inbound) != 1:
            raise ValueError(f"layer {layer.name!r} reads one tensor, but the description gives it {inbound}")
        parents = [tensors[name] for name in inbound]
        tensors[layer.name] = output = layer(parents if layer.takes_list else parents[0])
    if "output_names" in spec:           # several outputs
        unknown = [name for name in spec["output_names"] if name not in tensors]
        if unknown:
            raise ValueError(f"the outputs {unknown} are not layers of the description")
        output = [tensors[name] for name in spec["output_names"]]
    model = Model(inputs=inputs if len(inputs) > 1 else inputs[0], outputs=output, name=spec["name"])
    if len(model.layers) != len(spec["layers"]):
        raise ValueError(f"the description lists {len(spec['layers'])} layers but only {len(model.layers)} lead "
                         "to the output")
    return model


def _nodes_from_config(spec, inputs, custom=None):
    """Rebuild a graph with a shared layer from its ``nodes``: each call's layer and the tensors it reads, in order.

    A tensor is ``[layer name, call number]`` (an input's is ``[name, 0]``),
    and each node reads tensors made before it. Anything else raises a
    ValueError, which :func:`load_model` prefixes with the file's name.
    """
    from nnscratch.models.model import Model

    layers = {}
    for entry in spec["layers"]:
        layer = _layer_from_config(entry, custom)
        layers[layer.name] = layer
    tensors = {(tensor.layer.name, 0): tensor for tensor in inputs}
    calls = {}

    def find(reference):
        if not (isinstance(reference, list) and len(reference) == 2 and isinstance(reference[0], str)
                and isinstance(reference[1], int)) or tuple(reference) not in tensors:
            raise ValueError(f"{reference!r} is not [name, call] of an input or of a call made before")
        return tensors[tuple(reference)]

    for node in spec["nodes"]:
        if not (isinstance(node, list) and len(node) == 2 and node[0] in layers and isinstance(node[1], list)
                and node[1]):
            raise ValueError(f"a node must be [layer name, [[name, call], ...]] of a listed layer, got {node!r}")
        layer, parents = layers[node[0]], [find(reference) for reference in node[1]]
        if not layer.takes_list and len(parents) != 1:
            raise ValueError(f"layer {layer.name!r} reads one tensor, but a node gives it {node[1]}")
        calls[layer.name] = call = calls.get(layer.name, -1) + 1
        tensors[(layer.name, call)] = layer(parents if layer.takes_list else parents[0])
    outputs = [find(reference) for reference in spec["outputs"]]
    unused = sorted(set(layers) - set(calls))
    if unused:
        raise ValueError(f"the layers {unused} are never called in the nodes")
    return Model(inputs=inputs if len(inputs) > 1 else inputs[0], outputs=outputs if len(outputs) > 1 else outputs[0],
                 name=spec["name"])


def _saved_loss(entry, custom):
    """A loss as ``compile`` saved it (``losses.serialize``, or an older file's config): a class of ``custom`` first.

    A list (one an output) is looked up item by item; ``None`` (an output without a loss) stays None.
    """
    if isinstance(entry, list):
        return [_saved_loss(item, custom) for item in entry]
    if not isinstance(entry, dict):
        return entry
    name = entry.get("class_name", entry.get("name"))
    cls = custom.get(name)
    if cls is None:
        return entry
    if not (isinstance(cls, type) and issubclass(cls, losses_module.Loss)):
        raise TypeError(f"custom_objects[{name!r}] must be a Loss subclass, got {cls!r}")
    return cls.from_config(entry.get("config", entry))


def _saved_metric(entry, custom):
    """A metric as ``compile`` saved it: a name (looked up in ``custom_objects`` first) or a config dict."""
    return custom.get(entry, entry) if isinstance(entry, str) else metrics_module.get(entry)


def load_model(filepath, custom_objects=None, compile=True):
    """Load a model saved by ``model.save(filepath)``: same architecture, weights and predictions.

    With ``compile`` the model is compiled as it was saved, and its optimizer
    gets the saved step count and slots back: training goes on as if it had
    never stopped. A model compiled with a metric function (saved by its
    name) needs ``custom_objects={"name": function}``, as in Keras, and a
    model with a layer of your own its class, ``custom_objects={"MyLayer":
    MyLayer}`` (rebuilt by its ``from_config(get_config())``; docs/custom_layers.md).
    """
    from nnscratch.layers.input_layer import Input
    from nnscratch.models.model import Model
    from nnscratch.models.sequential import Sequential

    config, weights, optimizer_arrays = _read(filepath, "model")
    spec = config["model"]
    try:
        if spec["class_name"] != "Sequential" and ("nodes" in spec or any("inbound_layers" in entry
                                                                           for entry in spec["layers"])):
            try:
                if "input_names" in spec:        # several inputs
                    inputs = [Input(tuple(shape), name=name) for shape, name in zip(spec["input_shape"],
                                                                                    spec["input_names"], strict=True)]
                else:
                    inputs = [Input(tuple(spec["input_shape"]), name=spec["input_name"])]
                build = _nodes_from_config if "nodes" in spec else _graph_from_config
                model = build(spec, inputs, custom_objects)
            except ValueError as error:
                raise ValueError(f"{os.fspath(filepath)!r}: the model description is invalid ({error})") from None
        elif spec["class_name"] == "Sequential":
            model = Sequential(name=spec["name"])
            if spec["input_shape"] is not None:
                model.add(Input(tuple(spec["input_shape"])))
            for layer in [_layer_from_config(entry, custom_objects) for entry in spec["layers"]]:
                model.add(layer)
        else:
            inputs = x = Input(tuple(spec["input_shape"]))
            for layer in [_layer_from_config(entry, custom_objects) for entry in spec["layers"]]:
                x = layer(x)
            model = Model(inputs=inputs, outputs=x, name=spec["name"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"{os.fspath(filepath)!r}: the model description is invalid ({error!r})") from None
    model.set_weights(weights)
    if compile and config.get("compile"):
        settings, custom = config["compile"], dict(custom_objects or {})
        optimizer = optimizers.get(settings["optimizer"])
        try:
            if "loss_weights" in settings:   # compiled with a loss an output (nnscratch.models.outputs)
                model.compile(optimizer=optimizer, loss=_saved_loss(settings["loss"], custom),
                              loss_weights=settings["loss_weights"],
                              metrics=[[_saved_metric(m, custom) for m in group] for group in settings["metrics"]],
                              weighted_metrics=[[_saved_metric(m, custom) for m in group]
                                                for group in settings["weighted_metrics"]])
            else:
                model.compile(optimizer=optimizer, loss=_saved_loss(settings["loss"], custom),
                              metrics=[_saved_metric(m, custom) for m in settings["metrics"]],
                              weighted_metrics=[_saved_metric(m, custom)
                                                for m in settings.get("weighted_metrics", [])])
        except (ValueError, TypeError) as error:
            raise ValueError(f"{os.fspath(filepath)!r}: {error}; a model compiled with a metric function or a loss "
                             "of your own needs load_model(..., custom_objects={'name': function or class}) or "
                             "compile=False") from None
        if config.get("optimizer_state"):
            try:
                model.optimizer.set_state(model.parameters(), config["optimizer_state"], optimizer_arrays)
            except ValueError as error:
                raise ValueError(f"{os.fspath(filepath)!r}: {error}") from None
    return model


def save_weights(model, filepath) -> None:
    weights = model.get_weights()
    config = {"format": FORMAT, "version": VERSION, "kind": "weights",
              "weights": [list(w.shape) for w in weights], "sha256": _digest(weights)}
    _write(filepath, config, weights)


def load_weights(model, filepath) -> None:
    _, weights, _ = _read(filepath, "weights")
    model.set_weights(weights)
