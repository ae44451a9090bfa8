"""The layer base class: the lifecycle every layer shares.

A layer is built once for an input shape, then maps a batch forward and a
gradient backward::

    layer.build((28, 28, 1))            # shapes never include the batch axis
    y = layer.forward(x, training=True) # caches what backward needs
    dx = layer.backward(dy)             # writes layer.params[...].grad, returns dL/dx

Trainable weights live in ``layer.params`` (name -> :class:`Parameter`);
state that no optimizer may touch (batch-norm moving statistics) lives in
``layer.buffers``. ``backward`` never changes weights: that is the optimizer's job.

A layer with weight regularizers (``Dense(..., kernel_regularizer="l2")``)
names them in :meth:`Layer.weight_regularizers`; it reports their penalties
(:attr:`Layer.losses`, :meth:`Layer.regularization_loss`) and adds their
gradients to its parameters' ``.grad``
(:meth:`Layer.add_regularization_gradients`), which the training step calls
after backward and before the optimizer (see :mod:`nnscratch.regularizers`).
A penalty on the layer's output (``activity_regularizer``) is the Model's to
add (:mod:`nnscratch.models.model`): it depends on the batch, not only on
the weights.
"""

import abc
import itertools
import re

import numpy as np

from nnscratch import constraints, initializers, regularizers, rng
from nnscratch.config import floatx
from nnscratch.parameter import Parameter

__all__ = ["Layer", "SymbolicTensor", "format_shape"]

_name_counters: dict[str, itertools.count] = {}


def _unique_name(prefix: str) -> str:
    counter = _name_counters.setdefault(prefix, itertools.count())
    index = next(counter)
    return prefix if index == 0 else f"{prefix}_{index}"


def _snake_case(name: str) -> str:
    """Keras's layer-name rule: ``MaxPooling2D`` -> ``max_pooling2d``, ``ReLU`` -> ``re_lu``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def format_shape(shape) -> str:
    """Format a shape with ``None`` for the batch axis, e.g. ``(None, 8, 8, 1)``."""
    return str((None, *shape))


class SymbolicTensor:
    """A placeholder for data in the functional API: a shape and the layer that made it.

    ``x = Dense(64)(Input((784,)))`` builds the Dense layer for shape ``(784,)``
    and returns a SymbolicTensor of shape ``(64,)`` remembering ``layer`` and
    the tensors it was called on (``parents``), so that :class:`nnscratch.Model`
    can later trace the graph of layers from its inputs to its outputs.

    ``parents`` is a tuple: empty for ``Input(...)``, one tensor for an
    ordinary layer, the list a merge layer was called on for ``Add()([a, b])``
    (in order, a tensor twice if it was given twice). ``parent`` is the one
    parent of a single-input layer's tensor (None for ``Input`` and for merge
    layers).
    """

    def __init__(self, shape, layer, parent=None, parents=None):
        self.shape = tuple(shape)
        self.layer = layer
        if parents is None:
            parents = () if parent is None else (parent,)
        self.parents = tuple(parents)
        self.parent = self.parents[0] if len(self.parents) == 1 and not getattr(layer, "takes_list", False) else None
        if getattr(layer, "_symbolic_output", None) is None:   # the layer's first call: its ``output`` (Keras's node 0)
            layer._symbolic_output = self

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={format_shape(self.shape)} from {self.layer.name!r}>"


class Layer(abc.ABC):
    """Base class of all layers.

    Parameters
    ----------
    name : str, optional
        Unique name; defaults to the snake-case class name plus a counter.
    input_shape : tuple, optional
        Shape without the batch axis. On the first layer of a
        :class:`~nnscratch.Sequential` it fixes the model's input shape (as Keras).
    trainable : bool
        ``False`` freezes the layer's parameters (optimizers skip them, and
        their regularizers add nothing, as in Keras). This is independent of
        training mode (``forward(x, training=...)``).
    activity_regularizer : str, Regularizer or dict, optional
        A penalty on the layer's output ``y`` (``"l1"``, ``L2(1e-4)``...), as
        Keras 3: ``R(y) / N`` for a batch of ``N`` samples joins the loss that
        ``fit`` and ``evaluate`` report, and its gradient ``R'(y) / N`` joins
        dL/dy in backward. The Model computes both (a layer called on its own
        adds nothing): see :mod:`nnscratch.models.model`. Such a layer takes
        part in no fusion, so that its output is there to penalise.
    """

    def __init__(self, name=None, input_shape=None, trainable=True, activity_regularizer=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.name = name or _unique_name(_snake_case(type(self).__name__))
        self.input_shape_arg = None if input_shape is None else self._check_shape(input_shape)
        self._trainable = bool(trainable)
        self.params: dict[str, Parameter] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._added_regularizers = {}   # {weight name: Regularizer} of the weights add_weight made
        self.built = False
        self.input_shape = None
        self._output_shape = None
        # Set by a Model on its first layer while training: nobody needs dL/d(model input),
        # so layers that can (Dense, Conv2D) skip that product and backward returns None.
        self.skip_input_gradient = False

    # ------------------------------------------------------------ lifecycle
    @staticmethod
    def _check_shape(shape) -> tuple:
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and d > 0 for d in shape
        ):
            raise ValueError(f"a shape must be a tuple of positive integers (no batch axis), got {shape!r}")
        return tuple(int(d) for d in shape)

    def build(self, input_shape) -> None:
        """Create the weights for inputs of ``input_shape`` (no batch axis).

        Subclasses create their parameters, then call ``super().build(input_shape)``.
        Shape errors (e.g. a kernel larger than its input) are raised here.
        """
        self.input_shape = self._check_shape(input_shape)
        self._output_shape = tuple(self.compute_output_shape(self.input_shape))
        self.built = True

    def compute_output_shape(self, input_shape) -> tuple:
        """Output shape (no batch axis) for ``input_shape``; identity by default."""
        return tuple(input_shape)

    @property
    def output(self) -> "SymbolicTensor":
        """The tensor this layer made when it was first called on one (Keras's ``layer.output``).

        ``nnscratch.Model(model.inputs, model.get_layer("hidden").output)``
        is a model that shares ``model``'s layers and stops at that layer (its
        activations, for a feature extractor or a picture of what it learned).
        """
        tensor = getattr(self, "_symbolic_output", None)
        if tensor is None:
            raise AttributeError(f"layer {self.name!r} has not been called on a tensor yet (nnscratch.Input(...) "
                                 "or another layer's output), so it has no output tensor")
        return tensor

    @property
    def input(self):
        """The tensor (a list for a merge layer) this layer was first called on (Keras's ``layer.input``)."""
        parents = self.output.parents
        if not parents:         # an Input: its own tensor
            return self.output
        return list(parents) if getattr(self, "takes_list", False) else parents[0]

    @property
    def output_shape(self) -> tuple:
        """Output shape with ``None`` for the batch axis, as Keras shows it."""
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet, so it has no output shape")
        return (None, *self._output_shape)

    @abc.abstractmethod
    def forward(self, x, training=False):
        """Map a batch ``x`` to the layer's output; cache what backward needs when training."""

    @abc.abstractmethod
    def backward(self, grad_output):
        """Given dL/dy, set ``params[...].grad`` and return dL/dx."""

    def begin_inference(self, samples=None) -> None:
        """Prepare for a pass of ``forward(x, training=False)`` calls during which the weights stay fixed.

        ``predict``, ``evaluate`` and ``fit``'s validation call this before
        their batches and :meth:`end_inference` after them. ``samples``: how
        many samples the pass will see (None: unknown). A layer may lay out
        its weights once here for faster inference (Dense keeps its kernel
        transposed); it must give the same results, up to float rounding.
        Nothing by default.
        """

    def end_inference(self) -> None:
        """End the pass begun by :meth:`begin_inference`: drop whatever it prepared."""

    def sublayers(self) -> list:
        """The layers this one runs inside itself (a wrapper's), for tools that visit every layer; none by default."""
        return []

    def check_input(self, x) -> None:
        """Raise a ValueError unless ``x`` is a batch of the shape this layer was built for."""
        if not self.built:
            raise RuntimeError(f"layer {self.name!r} is not built: call build(input_shape) or call the layer first")
        if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
            raise ValueError(
                f"layer {self.name!r}: expected input shape {format_shape(self.input_shape)}, got {x.shape}"
            )

    #: Whether the layer is called on a list of tensors (merge layers: ``Add()([a, b])``) instead of one.
    takes_list = False

    # ------------------------------------------------------------ masks (nnscratch.models.masking)
    #: Whether a mask on the input passes to the output (Keras's ``supports_masking``); a layer that does not
    #: drop it (the model warns, as Keras). A mask (N, T) of booleans marks the steps of a sequence that count.
    supports_masking = False
    #: Whether the layer makes a mask of its own from its input (``Masking``, ``Embedding(mask_zero=True)``).
    makes_mask = False
    #: Whether ``forward`` reads the mask: the model then calls ``forward(x, training, mask=mask)``.
    uses_mask = False

    #: Why the layer refuses a masked input (a ValueError when the model is built), or None.
    mask_refusal = None

    def compute_mask(self, inputs, mask):
        """The mask of this layer's output, from its input ``inputs`` and the input's ``mask`` (or None)."""
        return mask if self.supports_masking else None

    def checked_mask(self, mask, x) -> np.ndarray:
        """``mask`` as an array, after a ValueError unless it is booleans (N, T) for the batch ``x`` (N, T, ...)."""
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != x.shape[:2]:
            raise ValueError(f"layer {self.name!r}: a mask must be booleans of shape {x.shape[:2]} (batch, "
                             f"timesteps), got {mask.dtype} {mask.shape}")
        return mask

    def output_masked(self, input_masked: bool) -> bool:
        """Whether the output carries a mask, given whether the input does (what :meth:`compute_mask` will do)."""
        return self.makes_mask or (input_masked and self.supports_masking)

    def __call__(self, x, training=False):
        """Call on a SymbolicTensor (functional API) or run forward on an array.

        Ordinary layers take one tensor: a list of symbolic tensors raises a
        TypeError (branches are joined by a merge layer,
        :mod:`nnscratch.layers.merge`); a nested list of numbers is an array.
        """
        if isinstance(x, (list, tuple)) and any(isinstance(item, SymbolicTensor) for item in x):
            raise TypeError(f"layer {self.name!r} ({type(self).__name__}) takes one tensor, got a list of {len(x)}; "
                            "join branches first with a merge layer, e.g. Add()([a, b]) or Concatenate()([a, b])")
        if isinstance(x, SymbolicTensor):
            if not self.built:
                self.build(x.shape)
            elif x.shape != self.input_shape:
                raise ValueError(
                    f"layer {self.name!r} was built for input shape {format_shape(self.input_shape)}, "
                    f"got {format_shape(x.shape)}"
                )
            return SymbolicTensor(self._output_shape, self, parents=(x,))
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        return self.forward(x, training=training)

    # ------------------------------------------------------------- weights
    def new_parameter(self, name: str, value: np.ndarray, constraint=None) -> Parameter:
        """Register a trainable parameter (in ``floatx()``) under its Keras name, with its constraint if any."""
        value = np.asarray(value, dtype=floatx())          # (a scalar weight, shape (), stays one, as Keras's)
        param = Parameter(value if value.flags.c_contiguous else np.ascontiguousarray(value), name,
                          trainable=self._trainable, constraint=constraint, path=f"{self.name}/{name}")
        self.params[name] = param
        return param

    def add_weight(self, shape=(), initializer=None, dtype=None, trainable=True, regularizer=None, constraint=None,
                   name=None):
        """Keras's ``add_weight`` for a layer of your own (docs/custom_layers.md): a weight of ``shape``.

        ``initializer`` is a name (``"glorot_uniform"``, the default, as
        Keras's for a float weight; ``"zeros"``, ``"he_normal"``, ...) or a
        function ``(shape, generator) -> array``, drawn from the library's
        seeded generator. A trainable weight becomes a :class:`Parameter`
        in ``params`` (backward writes its ``.grad``, the optimizer updates
        it, ``regularizer`` and ``constraint`` apply to it); with
        ``trainable=False`` it is a buffer in ``buffers`` (an array the layer
        itself may update, which no optimizer sees), returned as the array.
        """
        if dtype not in (None, "float32", "float64", np.float32, np.float64):
            raise TypeError(f"layer {self.name!r}: add_weight makes float weights (floatx()), got dtype={dtype!r}")
        name = name or f"variable_{len(self.params) + len(self.buffers)}"
        if name in self.params or name in self.buffers:
            raise ValueError(f"layer {self.name!r} already has a weight named {name!r}")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        value = initializers.get("glorot_uniform" if initializer is None else initializer)(shape, rng.new_generator())
        if not trainable:
            if regularizer is not None or constraint is not None:
                raise ValueError(f"layer {self.name!r}: a non-trainable weight ({name!r}) takes no regularizer or "
                                 "constraint")
            self.buffers[name] = np.array(value, dtype=floatx())
            return self.buffers[name]
        if regularizer is not None:
            self._added_regularizers[name] = regularizers.get(regularizer)
        return self.new_parameter(name, value, constraint=constraints.get(constraint))

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for param in self.params.values():
            param.trainable = self._trainable

    def weight_names(self) -> list[str]:
        """Names of the weights in Keras order: parameters, then buffers."""
        return list(self.params) + list(self.buffers)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights in Keras order (e.g. gamma, beta, moving_mean, moving_variance)."""
        return [p.value.copy() for p in self.params.values()] + [b.copy() for b in self.buffers.values()]

    def set_weights(self, weights) -> None:
        """Replace the weights (same order and shapes as :meth:`get_weights`), in place."""
        targets = [p.value for p in self.params.values()] + list(self.buffers.values())
        if len(weights) != len(targets):
            raise ValueError(
                f"layer {self.name!r} expects {len(targets)} weight arrays "
                f"({', '.join(self.weight_names())}), got {len(weights)}"
            )
        for name, target, new in zip(self.weight_names(), targets, weights):
            new = np.asarray(new)
            if new.shape != target.shape:
                raise ValueError(
                    f"layer {self.name!r}, weight {name!r}: expected shape {target.shape}, got {new.shape}"
                )
            target[...] = new

    # ------------------------------------------------------ regularization
    def weight_regularizers(self) -> dict:
        """``{parameter name: Regularizer}`` for this layer's penalised weights; by default those of ``add_weight``.

        Dense and Conv2D return their ``kernel_regularizer`` and
        ``bias_regularizer`` (those that are set).
        """
        return dict(self._added_regularizers)

    def _regularized_params(self):
        """``(parameter, regularizer)`` of the trainable parameters with a regularizer (Keras skips frozen ones)."""
        return [(self.params[name], regularizer) for name, regularizer in self.weight_regularizers().items()
                if self.params[name].trainable]

    @property
    def losses(self) -> list:
        """The regularization penalties of this layer's trainable weights, as floats (``[]`` if none), as Keras.

        One entry per regularized weight, in weight order (kernel, then bias).
        """
        return [regularizer(param.value) for param, regularizer in self._regularized_params()]

    def regularization_loss(self) -> float:
        """The sum of :attr:`losses`: what this layer adds to the training loss (0.0 without regularizers)."""
        return float(sum(self.losses))

    def add_regularization_gradients(self) -> None:
        """Add the gradient of :meth:`regularization_loss` to the parameters' ``.grad``, in place.

        Called after :meth:`backward` (which sets ``.grad`` to the loss's
        gradient) and before the optimizer step. Changes no weight.
        """
        for param, regularizer in self._regularized_params():
            regularizer.add_gradient(param.value, param.grad)

    def count_params(self) -> int:
        """Number of scalars in all weights, trainable or not (as Keras)."""
        return sum(p.size for p in self.params.values()) + sum(b.size for b in self.buffers.values())

    def count_trainable_params(self) -> int:
        return sum(p.size for p in self.params.values() if p.trainable)

    # -------------------------------------------------------------- config
    def get_config(self) -> dict:
        """JSON-serialisable constructor arguments (subclasses add theirs)."""
        config = {"name": self.name, "trainable": self._trainable}
        if self.input_shape_arg is not None:
            config["input_shape"] = list(self.input_shape_arg)
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"
