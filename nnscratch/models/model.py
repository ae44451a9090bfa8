"""The Model: a chain (or a graph) of layers with one training loop (see :mod:`trainer`).

Built from the functional API, as Keras::

    inputs = nnscratch.Input((28, 28, 1))
    x = Conv2D(32, 3, activation="relu")(inputs)
    x = Flatten()(x)
    outputs = Dense(10, activation="softmax")(x)
    model = nnscratch.Model(inputs=inputs, outputs=outputs)

or as a :class:`~nnscratch.Sequential`. Forward runs the layers in order;
backward runs them in reverse, each turning dL/d(output) into dL/d(input).

A functional model may also branch and merge (a residual block, parallel
branches joined by ``Add()([x, y])`` or ``Concatenate()([a, b])``), and take
several inputs (``Model([image, features], output)``; its data is then a list
of arrays, or a dict by the inputs' names) and several outputs
(``Model(inputs, [labels, box])``, a loss an output:
:mod:`nnscratch.models.outputs`); its layers form a graph, which
:mod:`nnscratch.models.graph` traces and runs layer by layer; gradients of a
tensor read by several layers add up. The fusions below are for chains
only: a graph runs every layer on its own, except that a BatchNormalization
whose output only a ReLU reads applies that ReLU itself (the first fusion).

Five fusions, all bit-identical to the layers one after the other:

* a BatchNormalization directly followed by a ReLU (``ReLU()`` or
  ``Activation("relu")``) runs as one step, ``bn.forward(x, training, relu=True)``,
  and the ReLU layer is skipped; two passes over the activations are saved in
  each direction. ``model.fuse_batchnorm_relu = False`` turns it off.
* in backward, a MaxPooling2D with windows that do not overlap, directly after
  a layer of its own whose activation is ReLU (``Conv2D(..., activation="relu")``),
  takes that ReLU's backward too, ``pool.backward(grad, relu=True)``, and the
  layer continues from the pre-activation gradient with
  ``backward_from_preactivation``; the forward pass is unchanged. One pass over
  the input-sized arrays instead of three. ``model.fuse_relu_maxpool = False``
  turns it off.
* in training, a BatchNormalization (with its fused ReLU, if any) directly
  followed by a MaxPooling2D runs as one step: the pooling kernel normalises
  each value it reads, so the full-size normalised images are never written,
  ``bn.forward_pooled(x, pool.window(), relu)`` and ``pool.keep_pooled``.
  ``model.fuse_batchnorm_maxpool = False`` turns it off.
* in training, a ReLU Conv2D whose MaxPooling2D takes its ReLU's backward (the
  second fusion) runs with that pooling as one step: the convolution's kernel
  pools each block of images while its output is in cache, and the full-size
  output is never written, ``conv.forward_pooled(x, pool.window())`` and
  ``pool.keep_pooled``. ``model.fuse_conv_maxpool = False`` turns it off.
* in inference (``training=False``), a Conv2D directly followed by a
  BatchNormalization (with its fused ReLU, if any) runs as one step: the
  batch norm's affine map ``x * scale + shift`` is applied by the convolution's
  kernel to each block of the output while it is in cache,
  ``conv.forward(x, affine=(*bn.inference_affine(), relu))``. One pass over the
  activations instead of two. ``model.fuse_conv_batchnorm_inference = False``
  turns it off.

A layer with an ``activity_regularizer`` ``R`` takes part in none of them
(:func:`_plain`): its own step yields its output ``y``, and the Model adds
Keras 3's penalty on it. Each forward records ``R(y) / N`` for the batch of
``N`` samples (:attr:`Model.activity_losses`, which ``fit`` and ``evaluate``
add to the loss); a training forward also records ``R'(y) / N``, which
backward adds to dL/dy before that layer's backward runs.
"""

import numbers

import numpy as np

from nnscratch import activations
from nnscratch import losses as losses_module
from nnscratch import metrics as metrics_module
from nnscratch import optimizers
from nnscratch.config import floatx
from nnscratch.layers.activated import ActivatedLayer
from nnscratch.layers.activation import Activation
from nnscratch.layers.base import SymbolicTensor, format_shape
from nnscratch.layers.batch_normalization import BatchNormalization
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.input_layer import InputLayer
from nnscratch.layers.max_pooling2d import MaxPooling2D
from nnscratch.models import graph as graph_module
from nnscratch.models import masking
from nnscratch.models import outputs as outputs_module
from nnscratch.models import summary as summary_module
from nnscratch.models.trainer import Trainer

__all__ = ["Model", "sample_shape"]

_model_counters: dict[str, int] = {}


def _default_name(prefix):
    count = _model_counters.get(prefix, 0)
    _model_counters[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def _plain(*layers) -> bool:
    """Whether no layer of ``layers`` has an activity regularizer (only such layers take part in a fusion)."""
    return all(layer.activity_regularizer is None for layer in layers)


def sample_shape(input_shape) -> tuple:
    """``input_shape`` as the shape of one sample: a leading ``None`` (the batch axis, as Keras writes it) is dropped.

    ``(None, 784)`` and ``(784,)`` both give ``(784,)``. A leading integer is
    kept as part of the sample's shape: ``(32, 784)`` means samples of 32x784.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple such as (784,) or (None, 784), got {input_shape!r}") from None
    if shape and shape[0] is None:
        shape = shape[1:]
    if any(size is None for size in shape):
        raise ValueError(f"only the batch axis (first) of input_shape may be None, got {input_shape!r}")
    return shape


def _metric_list(metrics, argument) -> list:
    """``compile``'s ``metrics`` or ``weighted_metrics`` as a list: None is empty, one name is a list of one."""
    if metrics is None:
        return []
    if isinstance(metrics, str):  # one name, as Keras accepts
        return [metrics]
    if not isinstance(metrics, (list, tuple)):
        raise TypeError(f"{argument} must be a list of names, got {type(metrics).__name__}")
    return list(metrics)


def _trace_chain(inputs: SymbolicTensor, outputs: SymbolicTensor) -> list:
    """Follow ``outputs`` back to ``inputs`` and return the layers in forward order."""
    chain, node = [], outputs
    while node is not None and node is not inputs:
        chain.append(node.layer)
        node = node.parent
    if node is None:
        raise ValueError("the outputs were not computed from the given inputs: no path connects them")
    return chain[::-1]


class Model(Trainer):
    """The layers from ``inputs`` to ``outputs`` (functional API): a chain, or a graph that branches and merges.

    One input or a list of them (a graph, whose forward takes a list of
    arrays, one per input, and whose backward returns one gradient per
    input), and one output or a list of them (a graph, whose forward returns
    a list, and whose backward starts from one gradient an output). A chain (every
    layer reads the layer before) runs with the fusions of the module
    docstring. A graph (a tensor read by several layers, merge layers) keeps
    :attr:`graph` (a :class:`~nnscratch.models.graph.Graph`) and ``layers``
    in Keras's order (:func:`~nnscratch.models.graph.trace`); forward and
    backward run it layer by layer, without fusions but BatchNormalization + ReLU.
    A layer called at several places (a shared layer: a siamese tower) makes
    a graph too; ``layers`` lists it once and :attr:`node_layers` once a call.
    """

    #: The graph of a model that branches or merges; None for a chain (and every Sequential).
    graph = None
    #: The input layers of a model with several inputs, in the order of its data; None with one input.
    _input_layers = None
    #: The indices in ``node_layers`` of the outputs of a model with several outputs, in order; None with one.
    _output_indices = None

    def __init__(self, inputs=None, outputs=None, name=None):
        self.graph = self._input_layers = self._output_indices = None
        self.name = name or _default_name("functional" if inputs is not None else "model")
        self.layers = []
        self.input_layer = None
        self.built = False
        self.stop_training = False
        self.stop_evaluating = self.stop_predicting = False  # set by a callback to stop evaluate / predict
        self.optimizer = self.loss = None
        self.metrics = []
        self.weighted_metrics = []         # weighted by sample_weight / class_weight (compile's weighted_metrics)
        self._activity_losses = {}         # {layer index: R(y) / N} of the last forward (activity regularizers)
        self._activity_gradients = {}      # {layer index: R'(y) / N} of the last training forward
        self.output_masked = False         # whether the output carries a mask (nnscratch.models.masking)
        self.output_mask = None            # the last forward's output mask (N, T), when it carries one
        self.output_masks = [None]         # the last forward's output masks, one an output
        if inputs is None and outputs is None:
            return
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        for value in [*inputs, *outputs]:
            if not isinstance(value, SymbolicTensor):
                raise TypeError(f"inputs and outputs must be tensors from nnscratch.Input(...) or a layer call, "
                                f"got {value!r}")
        if not inputs or not all(isinstance(tensor.layer, InputLayer) for tensor in inputs):
            raise ValueError("inputs must be one tensor or a list of tensors from nnscratch.Input(shape)")
        if len(set(map(id, inputs))) != len(inputs):
            raise ValueError("an input is given twice in the model's inputs")
        if not outputs or len(set(map(id, outputs))) != len(outputs):
            raise ValueError("a model needs at least one output, each given once")
        if any(isinstance(tensor.layer, InputLayer) for tensor in outputs):
            raise ValueError("an output must be computed by a layer, not be an Input itself")
        if len(inputs) == 1:
            self.input_layer = inputs[0].layer
        else:
            self._input_layers = [tensor.layer for tensor in inputs]
        self._tensors = (inputs, outputs)
        layers, sources, tensors, model_layers = graph_module.trace(inputs, outputs if len(outputs) > 1 else outputs[0],
                                                                    tensors=True)
        read = {s for source in sources for s in source}
        unread = [tensor.layer.name for k, tensor in enumerate(inputs) if graph_module.input_index(k) not in read]
        if unread:
            raise ValueError(f"the inputs {unread} are not read on the way to the outputs: every input of a model "
                             "must lead to its output")
        if len(outputs) > 1:
            index = {id(tensor): i for i, tensor in enumerate(tensors)}
            self._output_indices = [index[id(tensor)] for tensor in outputs]
        shared = len(set(map(id, layers))) != len(layers)
        if not shared and len(inputs) == 1 and len(outputs) == 1 and graph_module.is_chain(layers, sources):
            self.layers = _trace_chain(inputs[0], outputs[0])
            self.output_masked = masking.mask_flow(self.layers)
        else:
            self.layers = model_layers
            self.graph = graph_module.Graph(layers, sources, inputs=len(inputs), outputs=self._output_indices)
            self.output_masked = masking.graph_mask_flow(layers, self.graph.sources, self._output_indices)
        names = [layer.name for layer in self.all_layers()]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique within a model, got duplicates {duplicates}")
        twice = sorted({name for name in self.output_names if self.output_names.count(name) > 1})
        if twice:       # (the per-output losses, metrics and logs are named after the output layers)
            raise ValueError(f"two outputs come from calls of the same shared layer {twice}: the outputs name the "
                             "losses and logs, so give each output a layer of its own (e.g. Identity() after one)")
        self.built = True

    # ------------------------------------------------------------ structure
    #: ``(inputs, outputs)``: the tensors a functional model was made from (None until then).
    _tensors = None

    @property
    def inputs(self) -> list:
        """The input tensors, as Keras's ``model.inputs`` (for ``Model(model.inputs, layer.output)``)."""
        return list(self._symbolic_tensors()[0])

    @property
    def outputs(self) -> list:
        """The output tensors, as Keras's ``model.outputs``."""
        return list(self._symbolic_tensors()[1])

    @property
    def input(self):
        """The input tensor (a list for several), as Keras's ``model.input``."""
        inputs = self.inputs
        return inputs[0] if len(inputs) == 1 else inputs

    @property
    def output(self):
        """The output tensor (a list for several), as Keras's ``model.output``."""
        outputs = self.outputs
        return outputs[0] if len(outputs) == 1 else outputs

    def _symbolic_tensors(self) -> tuple:
        if self._tensors is None:
            raise ValueError(f"model {self.name!r} has no input tensors: build it from nnscratch.Input(...)")
        return self._tensors

    @property
    def node_layers(self) -> list:
        """The layer of each node, in the order forward runs them: ``layers`` itself unless a layer is shared.

        A shared layer (one layer object called at several places) stands
        here once for each call; the graph's indices (``graph.sources``, the
        outputs, the activity penalties) count in this list.
        """
        return self.layers if self.graph is None else self.graph.layers

    @property
    def input_layers(self) -> list:
        """The input layers, in the order of the model's data (``[input_layer]`` with one input)."""
        if self._input_layers is not None:
            return list(self._input_layers)
        return [self.input_layer] if self.input_layer is not None else []

    @property
    def input_shape(self):
        """Input shape with ``None`` for the batch axis; a list of them for several inputs (as Keras)."""
        self._require_built()
        if self._input_layers is not None:
            return [(None, *layer.input_shape) for layer in self._input_layers]
        return (None, *self.input_layer.input_shape)

    @property
    def output_shape(self):
        """Output shape with ``None`` for the batch axis; a list of them for several outputs (as Keras)."""
        self._require_built()
        if self._output_indices is not None:
            return [self.node_layers[i].output_shape for i in self._output_indices]
        return self.node_layers[-1].output_shape if self.layers else self.input_shape

    @property
    def output_layers(self) -> list:
        """The layers whose outputs are the model's, in order (``[layers[-1]]`` with one output)."""
        if self._output_indices is not None:
            return [self.node_layers[i] for i in self._output_indices]
        return self.node_layers[-1:]

    @property
    def output_names(self) -> list:
        """The output layers' names, as Keras's ``model.output_names`` (they name the per-output logs)."""
        return [layer.name for layer in self.output_layers]

    def _require_built(self):
        if not self.built:
            raise ValueError(
                f"model {self.name!r} is not built yet: give the first layer input_shape=..., start with "
                "nnscratch.Input(shape), or call build(input_shape) / fit first"
            )

    def build(self, input_shape) -> None:
        """A functional model is built by construction; check that ``input_shape`` fits it.

        ``input_shape`` is the shape of one sample, such as ``(784,)``, or
        the Keras form with the batch axis as a leading ``None``, ``(None, 784)``.
        """
        self._require_built()
        if self._input_layers is not None:
            shapes = [sample_shape(shape) for shape in input_shape] if isinstance(input_shape, list) else None
            if shapes != [layer.input_shape for layer in self._input_layers]:
                expected = ", ".join(format_shape(shape) for shape in self._input_shapes())
                raise ValueError(f"expected the input shapes [{expected}] (a list, one per input), got {input_shape!r}")
            return
        shape = sample_shape(input_shape)
        if shape != self.input_layer.input_shape:
            raise ValueError(f"expected input shape {format_shape(self.input_layer.input_shape)}, "
                             f"got {format_shape(shape)} (build takes one sample's shape, or (None, *shape))")

    def all_layers(self) -> list:
        """The input layers (if any) followed by the computing layers."""
        return self.input_layers + self.layers

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or ``layers[index]`` (give one of the two), as Keras.

        ``index`` counts in :attr:`layers`, which leaves out the input layer;
        ``name`` also finds a functional model's input layer. An unknown name
        or an index out of range raises a ValueError listing what there is.
        """
        if name is not None and index is not None:
            raise ValueError(f"give get_layer a name or an index, not both; got name={name!r}, index={index!r}")
        if index is not None:
            return self._layer_at(index)
        if name is not None:
            return self._layer_named(name)
        raise ValueError("get_layer needs a layer name or an index, e.g. get_layer('dense') or get_layer(index=0)")

    def _layer_at(self, index):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"a layer index must be an integer, got {index!r}")
        if not -len(self.layers) <= index < len(self.layers):
            raise ValueError(f"no layer at index {index}: model {self.name!r} has {len(self.layers)} layers "
                             f"{[layer.name for layer in self.layers]}")
        return self.layers[index]

    def _layer_named(self, name):
        if not isinstance(name, str):
            raise TypeError(f"a layer name must be a string, got {name!r}")
        for layer in self.all_layers():
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r} in model {self.name!r}; "
                         f"its layers are {[layer.name for layer in self.all_layers()]}")

    def parameters(self) -> list:
        """Every trainable Parameter of every layer, in layer order."""
        return [p for layer in self.layers for p in layer.params.values()]

    # ------------------------------------------------------- regularization
    @property
    def losses(self) -> list:
        """Keras's ``model.losses``: the :attr:`activity_losses`, then each layer's :attr:`Layer.losses`."""
        return self.activity_losses + [penalty for layer in self.layers for penalty in layer.losses]

    def activity_regularized(self) -> list:
        """Indices (in :attr:`node_layers`) of the layers with an ``activity_regularizer`` (``[]`` for most models)."""
        return [index for index, layer in enumerate(self.node_layers) if layer.activity_regularizer is not None]

    @property
    def activity_losses(self) -> list:
        """The activity penalties ``R(y) / N`` of the last forward, as floats in layer order (``[]`` without any)."""
        return [self._activity_losses[index] for index in sorted(self._activity_losses)]

    def activity_loss(self) -> float:
        """The sum of :attr:`activity_losses`: what ``fit`` and ``evaluate`` add to the batch's mean loss."""
        return float(sum(self._activity_losses.values()))

    def _record_activity(self, index, y, training) -> None:
        """Record layer ``index``'s penalty on its output ``y`` (and, training, the penalty's gradient)."""
        regularizer, samples = self.node_layers[index].activity_regularizer, len(y)
        self._activity_losses[index] = regularizer(y) / samples
        if training:
            self._activity_gradients[index] = regularizer.gradient(y) / y.dtype.type(samples)

    def regularized_layers(self) -> list:
        """The layers with weight regularizers (``[]`` for most models: then a training step adds nothing)."""
        return [layer for layer in self.layers if layer.weight_regularizers()]

    def regularization_loss(self) -> float:
        """The sum of every layer's weight penalties: what ``fit`` and ``evaluate`` add to each batch's loss."""
        return float(sum(layer.regularization_loss() for layer in self.regularized_layers()))

    # ---------------------------------------------------------- computation
    def _input_shapes(self) -> list:
        return [layer.input_shape for layer in self.input_layers]

    def check_input(self, x) -> None:
        """Raise a ValueError naming the expected and the received shape if they differ.

        With several inputs ``x`` must be a list of arrays, one per input, of
        the same number of samples.
        """
        if self._input_layers is None:
            expected = self.input_layer.input_shape
            if x.ndim != len(expected) + 1 or x.shape[1:] != expected:
                raise ValueError(f"expected input shape {format_shape(expected)}, got {x.shape}")
            return
        names = [layer.name for layer in self._input_layers]
        if not isinstance(x, (list, tuple)) or len(x) != len(names):
            raise ValueError(f"model {self.name!r} has {len(names)} inputs {names}: give a list of {len(names)} "
                             f"arrays, got {type(x).__name__}" + (f" of {len(x)}" if isinstance(x, (list, tuple))
                                                                  else ""))
        for name, expected, array in zip(names, self._input_shapes(), x):
            if array.ndim != len(expected) + 1 or array.shape[1:] != expected:
                raise ValueError(f"expected input {name!r} of shape {format_shape(expected)}, got {array.shape}")
        if len({len(array) for array in x}) > 1:
            raise ValueError(f"the inputs of model {self.name!r} must have the same number of samples, got "
                             f"{dict(zip(names, map(len, x)))}")

    #: Run each BatchNormalization + ReLU pair as one fused step (see the module docstring).
    fuse_batchnorm_relu = True

    def steps(self) -> list:
        """How forward runs the layers: ``(index, fused)`` pairs in order.

        ``fused`` means ``layers[index]`` is a BatchNormalization that also
        applies ``layers[index + 1]``, a ReLU, which has no step of its own.
        A graph's plan is ``(index, False)`` for each layer: it runs them one
        by one (:meth:`Graph.forward_steps <nnscratch.models.graph.Graph.forward_steps>`
        fuses a ReLU into the batch norm before it on its own).
        """
        if self.graph is not None:
            return [(index, False) for index in range(len(self.node_layers))]
        steps, index = [], 0
        while index < len(self.layers):
            fused = (self.fuse_batchnorm_relu and index + 1 < len(self.layers)
                     and isinstance(self.layers[index], BatchNormalization)
                     and isinstance(self.layers[index + 1], Activation)
                     and self.layers[index + 1].activation == "relu"
                     and _plain(self.layers[index], self.layers[index + 1]))
            steps.append((index, fused))
            index += 2 if fused else 1
        return steps

    #: In backward, let a MaxPooling2D take the ReLU's backward of the layer before it (see the module docstring).
    fuse_relu_maxpool = True

    def poolings_through_relu(self) -> set:
        """Indices of the MaxPooling2D layers whose backward also goes through the ReLU before them.

        ``layers[index]`` has windows that do not overlap, and ``layers[index -
        1]`` is a step of its own (not a ReLU fused into a batch norm) whose
        activation is ReLU; backward then calls ``layers[index].backward(grad,
        relu=True)`` and ``layers[index - 1].backward_from_preactivation``.
        """
        if not self.fuse_relu_maxpool or self.graph is not None:
            return set()
        plan = self.steps()
        return {index for (before, fused), (index, _) in zip(plan, plan[1:])
                if index == before + 1 and not fused and isinstance(self.layers[index], MaxPooling2D)
                and not self.layers[index].windows_overlap and isinstance(self.layers[before], ActivatedLayer)
                and self.layers[before].activation == "relu" and _plain(self.layers[before], self.layers[index])}

    #: In inference, let a Conv2D apply the BatchNormalization after it (see the module docstring).
    fuse_conv_batchnorm_inference = True

    def batchnorms_after_convolutions(self) -> dict:
        """``{index: relu}`` of the BatchNormalization steps an inference forward folds into the Conv2D before.

        ``layers[index - 1]`` is a Conv2D with an elementwise activation (not
        softmax) and ``layers[index]`` a BatchNormalization step over the last
        (channel) axis; ``relu`` says
        whether the ReLU after the batch norm is fused into it too.
        """
        if not self.fuse_conv_batchnorm_inference or self.graph is not None:
            return {}
        return {index: fused for index, fused in self.steps()
                if index > 0 and isinstance(self.layers[index], BatchNormalization) and self.layers[index].channels_last
                and isinstance(self.layers[index - 1], Conv2D) and self.layers[index - 1].groups == 1
                and self.layers[index - 1].activation not in activations.ROW_WISE
                and _plain(self.layers[index - 1], self.layers[index])}

    #: In training, let a BatchNormalization compute the MaxPooling2D after it (see the module docstring).
    fuse_batchnorm_maxpool = True

    def batchnorm_poolings(self) -> dict:
        """``{index: pool_index}``: BatchNormalization steps whose output only the MaxPooling2D step after them reads.

        A training forward then calls ``layers[index].forward_pooled`` and
        hands the pooled output and its argmax to ``layers[pool_index]``.
        """
        if not self.fuse_batchnorm_maxpool or self.graph is not None:
            return {}
        plan = self.steps()
        return {index: after for (index, _), (after, _) in zip(plan, plan[1:])
                if isinstance(self.layers[index], BatchNormalization) and self.layers[index].channels_last
                and isinstance(self.layers[after], MaxPooling2D) and _plain(self.layers[index], self.layers[after])}

    #: In training, let a ReLU Conv2D compute the MaxPooling2D after it (see the module docstring).
    fuse_conv_maxpool = True

    def convolution_poolings(self) -> dict:
        """``{index: pool_index}``: ReLU Conv2D steps whose pooling (``poolings_through_relu``) they compute.

        Backward never reads such a layer's output (the pooling takes the
        ReLU's backward from its window maxima), so a training forward calls
        ``layers[index].forward_pooled`` and hands the pooled output and its
        argmax to ``layers[pool_index]``.
        """
        if not self.fuse_conv_maxpool or self.graph is not None:
            return {}
        return {index - 1: index for index in self.poolings_through_relu()
                if isinstance(self.layers[index - 1], Conv2D) and self.layers[index - 1].groups == 1}

    def forward_plan(self, training=False):
        """``(steps, folded, pooled)``: the plan :meth:`forward_steps` follows, from the layers and the switches.

        ``steps`` as :meth:`steps`; in inference ``folded`` is
        :meth:`batchnorms_after_convolutions`; in training ``pooled`` merges
        :meth:`batchnorm_poolings` and :meth:`convolution_poolings`. The other
        one is empty.
        """
        if not training:
            return self.steps(), self.batchnorms_after_convolutions(), {}
        return self.steps(), {}, {**self.batchnorm_poolings(), **self.convolution_poolings()}

    #: The inference plan of the pass of inference running now (set by the trainer for the pass; layers and
    #: switches stay as they are inside it), else None: every forward makes its plan (about 7 us).
    _pass_plan = None

    def forward(self, x, training=False):
        """Run every layer in order; with ``training=True`` layers cache what backward needs.

        Returns the output, or the list of outputs of a model with several.
        """
        if self._output_indices is not None:
            wanted, outputs = set(self._output_indices), {}
            for index, y in self.forward_steps(x, training):
                if index in wanted:
                    outputs[index] = y
            return [outputs[index] for index in self._output_indices]
        for _, x in self.forward_steps(x, training):
            pass
        return x

    def forward_steps(self, x, training=False):
        """Run the forward plan one step at a time, yielding ``(index, output)`` after each.

        ``index`` is the step's first layer. Steps that a fusion folded into
        the step before them yield nothing. ``forward`` keeps the last output;
        the benchmark's per-layer breakdown times each step. A graph yields
        after every layer (:meth:`Graph.forward_steps <nnscratch.models.graph.Graph.forward_steps>`).
        The output of a layer with an activity regularizer (a step of its own)
        is penalised as it passes (:meth:`_record_activity`). Once the steps
        are done, ``output_mask`` holds the output's mask (None without one).
        """
        self.check_input(x)
        regularized = self.activity_regularized()
        self._activity_losses, self._activity_gradients = {}, {}
        self.output_mask = None
        if self.graph is not None:
            steps = self.graph.forward_steps(self.node_layers, x, training, self.fuse_batchnorm_relu)
        else:
            steps = self._chain_steps(x, training)
        for index, y in steps:
            if index in regularized:
                self._record_activity(index, y, training)
            yield index, y
        if self.graph is not None:
            self.output_mask, self.output_masks = self.graph.output_mask, self.graph.output_masks
        else:
            self.output_masks = [self.output_mask]

    def _chain_steps(self, x, training):
        """:meth:`forward_steps` of a chain: the plan's steps, with the fusions that apply."""
        plan = self._pass_plan if self._pass_plan is not None and not training else self.forward_plan(training)
        steps, folded, pooled = plan
        computed = set(pooled.values())  # poolings the step before computes
        masks = any(layer.makes_mask for layer in self.layers)   # (nnscratch.models.masking)
        mask = None
        for index, fused in steps:
            layer = self.layers[index]
            if masks:        # the mask of this layer's output, from its input's (fused steps take none)
                mask, given = layer.compute_mask(x, mask), mask
                if given is not None and layer.uses_mask:     # (a batch norm with its ReLU fused: relu=True)
                    x = layer.forward(x, training=training, mask=given, **({"relu": True} if fused else {}))
                    yield index, x
                    continue
            if index in computed:
                continue
            if index in folded:  # the Conv2D before applied it
                layer.applied_elsewhere()
                continue
            if index + 1 in folded:
                bn = self.layers[index + 1]
                x = layer.forward(x, training=False, affine=(*bn.inference_affine(), folded[index + 1]))
            elif index in pooled:
                pool = self.layers[pooled[index]]
                if isinstance(layer, Conv2D):  # its ReLU is its activation
                    x = pool.keep_pooled(*layer.forward_pooled(x, pool.window()))
                else:
                    x = pool.keep_pooled(*layer.forward_pooled(x, pool.window(), relu=fused))
            elif fused:
                x = layer.forward(x, training=training, relu=True)
            else:
                x = layer.forward(x, training=training)
            yield index, x
        self.output_mask = mask

    def backward(self, grad_output, from_layer=None, input_gradient=True, from_logits=()):
        """Run backward through the layers in reverse; return dL/d(input).

        ``from_layer`` (an index) starts below that layer, used when the last
        layer's gradient was already computed by a fused loss. With
        ``input_gradient=False`` (training) backward stops at the lowest layer
        with trainable parameters: the layers below it (Flatten, Dropout, frozen
        layers, ...) need no gradient, and that layer skips dL/d(its input)
        where it can. The return value is then None. The gradients of the
        activity penalties that the last training forward recorded join
        dL/dy of their layers on the way. A graph runs
        :meth:`Graph.backward <nnscratch.models.graph.Graph.backward>` (the
        gradients of a tensor read by several layers add up). A model with
        several outputs takes a list of gradients, one an output (None for an
        output without a loss); ``from_logits`` lists those that are
        dL/d(logits) of a fused loss (``Graph.backward``).
        """
        if self.graph is not None:
            return self.graph.backward(self.node_layers, grad_output, from_layer, input_gradient,
                                       self.fuse_batchnorm_relu,
                                       self._activity_gradients, from_logits)
        stop = len(self.layers) if from_layer is None else from_layer
        lowest = 0 if input_gradient else self._lowest_trainable_layer()
        if lowest is None:  # nothing to train: no gradient is needed at all
            return None
        through_relu = self.poolings_through_relu()
        preactivation = False  # grad_output is already dL/dz of the layer's pre-activation
        for index, fused in reversed(self.steps()):
            if index >= stop:
                continue
            if index < lowest:  # a fused ReLU has no parameters: lowest is never index + 1
                break
            if fused and index + 1 >= stop:
                raise ValueError(f"backward cannot start between {self.layers[index].name!r} and the ReLU fused "
                                 "into it; set model.fuse_batchnorm_relu = False")
            layer = self.layers[index]
            layer.skip_input_gradient = index == lowest and not input_gradient
            if index in self._activity_gradients:  # + R'(y) / N of its activity penalty (never fused: _plain)
                grad_output = grad_output + self._activity_gradients[index]
            if preactivation:  # the pooling after it took this layer's ReLU backward
                grad_output = layer.backward_from_preactivation(grad_output)
            elif index in through_relu:
                grad_output = layer.backward(grad_output, relu=True)
            else:
                grad_output = layer.backward(grad_output)  # through the fused ReLU too
            preactivation = index in through_relu
        return None if not input_gradient else grad_output

    def _lowest_trainable_layer(self):
        """Index (in :attr:`node_layers`) of the first layer with a trainable parameter (None if there is none)."""
        for index, layer in enumerate(self.node_layers):
            if any(p.trainable for p in layer.params.values()):
                return index
        return None

    def __call__(self, x, training=False):
        """The model's output for ``x``, cast first to the float type (``floatx()``), as Keras casts its inputs.

        On a symbolic tensor (building a functional model) the model's layers
        are applied one by one, shared with this model, as Keras nests a model
        (a graph's layers in its order, each on the tensors it reads). A model
        with several inputs takes a list, of tensors or of arrays.
        """
        several = self._input_layers is not None
        listed = isinstance(x, (list, tuple))
        if listed and any(isinstance(item, SymbolicTensor) for item in x):
            if not several:
                raise TypeError(f"model {self.name!r} has one input: call it on one tensor, got a list of {len(x)}")
            if len(x) != len(self._input_layers) or not all(isinstance(item, SymbolicTensor) for item in x):
                raise TypeError(f"model {self.name!r} has {len(self._input_layers)} inputs: call it on a list of "
                                f"{len(self._input_layers)} tensors, got {len(x)} items")
            for item, layer in zip(x, self._input_layers):
                if item.shape != layer.input_shape:
                    raise ValueError(f"input {layer.name!r} of model {self.name!r} has shape "
                                     f"{format_shape(layer.input_shape)}, got a tensor of shape "
                                     f"{format_shape(item.shape)}")
            return self.graph(self.node_layers, list(x))
        if isinstance(x, SymbolicTensor):
            if several:
                raise TypeError(f"model {self.name!r} has {len(self._input_layers)} inputs: call it on a list of "
                                "tensors, one per input")
            if not self.built:
                raise ValueError(f"model {self.name!r} must be built before it is called on a tensor")
            if self.graph is not None:
                return self.graph(self.node_layers, x)
            for layer in self.layers:
                x = layer(x)
            return x
        if several and listed:
            return self.forward([np.asarray(array, dtype=floatx()) for array in x], training=training)
        return self.forward(np.asarray(x, dtype=floatx()), training=training)

    # -------------------------------------------------------------- weights
    def get_weights(self) -> list:
        """All weights (parameters and buffers) of all layers, in Keras order."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        expected = sum(len(layer.get_weights()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"model {self.name!r} expects {expected} weight arrays, got {len(weights)}")
        for layer in self.layers:
            n = len(layer.weight_names())
            layer.set_weights(weights[:n])
            weights = weights[n:]

    def count_params(self) -> int:
        """Number of scalars in all weights, trainable or not (as Keras)."""
        self._require_built()
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print) -> None:
        """Print a Keras-like table of layers, output shapes and parameter counts."""
        self._require_built()
        print_fn(summary_module.format_summary(self))

    # -------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, weighted_metrics=None, loss_weights=None):
        """Choose the optimizer, the loss and the metrics (names or objects, as Keras).

        A model with several outputs takes a loss, metrics and weighted
        metrics an output (lists, or dicts by output name) and
        ``loss_weights`` (:mod:`nnscratch.models.outputs`); so does a model
        with one output given ``loss_weights``.

        ``metrics`` are plain means over the samples, even when ``fit`` or
        ``evaluate`` get sample or class weights; ``weighted_metrics`` are
        weighted means ``sum_i w_i m_i / sum_i w_i`` (plain means without
        weights), logged under their names, or ``"weighted_<name>"`` where
        ``metrics`` already has that name, as Keras (the trainer's ``_log_names``).
        """
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='categorical_crossentropy'")
        if self._output_indices is not None or loss_weights is not None:
            self._compile_heads(optimizer, loss, metrics, weighted_metrics, loss_weights)
            return
        self.heads = None
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses_module.get(loss)
        metrics, weighted_metrics = _metric_list(metrics, "metrics"), _metric_list(weighted_metrics, "weighted_metrics")
        self.metrics = [metrics_module.get(m) for m in metrics]
        self.weighted_metrics = [metrics_module.get(m) for m in weighted_metrics]
        last = self.node_layers[-1] if self.layers else None
        for layer in self.layers:
            if isinstance(layer, ActivatedLayer):  # a sigmoid output keeps its logits for the fused loss
                layer.keep_logits = layer is last and layer.activation == self.loss.fused_activation == "sigmoid"
        self.compiled_config = {
            "optimizer": optimizers.serialize(self.optimizer),
            "loss": losses_module.serialize(self.loss),
            "metrics": [metrics_module.serialize(metric) for metric in self.metrics],
        }
        if weighted_metrics:
            self.compiled_config["weighted_metrics"] = [metrics_module.serialize(metric)
                                                        for metric in self.weighted_metrics]

    def _compile_heads(self, optimizer, loss, metrics, weighted_metrics, loss_weights):
        """compile for a model with heads: one loss, weight and metric lists an output (``outputs.compile_heads``)."""
        indices = self._output_indices or [len(self.node_layers) - 1]
        readers = set() if self.graph is None else {s for source in self.graph.sources for s in source}
        shared = set() if self.graph is None else self.graph.shared     # (a shared layer keeps its last call's logits)
        heads = outputs_module.compile_heads(self.output_names, indices,
                                             [i not in readers and i not in shared for i in indices], loss,
                                             loss_weights, metrics, weighted_metrics)
        self.optimizer, self.heads = optimizers.get(optimizer), heads
        self.loss = [head.loss for head in heads] if len(heads) > 1 else heads[0].loss
        self.metrics = [metric for head in heads for metric in head.metrics]
        self.weighted_metrics = [metric for head in heads for metric in head.weighted_metrics]
        for layer in self.layers:
            if isinstance(layer, ActivatedLayer):   # a sigmoid output keeps its logits for its fused loss
                layer.keep_logits = any(layer is self.node_layers[head.index] and head.loss is not None
                                        and layer.activation == head.loss.fused_activation == "sigmoid"
                                        for head in heads)
        self.compiled_config = {
            "optimizer": optimizers.serialize(self.optimizer),
            "loss": [None if head.loss is None else losses_module.serialize(head.loss) for head in heads],
            "loss_weights": [head.loss_weight for head in heads],
            "metrics": [[metrics_module.serialize(metric) for metric in head.metrics] for head in heads],
            "weighted_metrics": [[metrics_module.serialize(metric) for metric in head.weighted_metrics]
                                 for head in heads],
        }

    # ------------------------------------------------------------- saving
    def get_config(self) -> dict:
        """The architecture; a graph's layers also name the layers they read (``inbound_layers``), and its input.

        A graph with a shared layer lists its nodes instead (``nodes``: for
        each call in order, the layer's name and the ``[name, call]`` of each
        tensor it reads, call 0 for an input) and its ``outputs`` the same way.
        """
        config = {
            "class_name": type(self).__name__,
            "name": self.name,
            "input_shape": list(self.input_layer.input_shape) if self.input_layer else None,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
        }
        inputs = self.input_layers
        if self._input_layers is not None:      # several inputs: their names and shapes, in order
            config["input_shape"] = [list(layer.input_shape) for layer in inputs]
            config["input_names"] = [layer.name for layer in inputs]
        elif self.graph is not None:
            config["input_name"] = self.input_layer.name
        if self._output_indices is not None:     # several outputs: their layers' names, in order
            config["output_names"] = self.output_names
        if self.graph is not None and self.graph.shared:
            tensor = self._tensor_names()
            config["nodes"] = [[layer.name, [tensor(s) for s in sources]]
                               for layer, sources in zip(self.node_layers, self.graph.sources)]
            config["outputs"] = [tensor(i) for i in (self._output_indices or [len(self.node_layers) - 1])]
        elif self.graph is not None:
            for entry, sources in zip(config["layers"], self.graph.sources):
                entry["inbound_layers"] = [inputs[graph_module.INPUT - s].name if s < 0 else self.layers[s].name
                                           for s in sources]
        return config

    def _tensor_names(self):
        """A function from a graph's source index to ``[layer name, call number]`` (Keras's ``dense[1][0]``)."""
        inputs, calls = self.input_layers, graph_module.call_numbers(self.node_layers)
        return lambda s: [inputs[graph_module.INPUT - s].name, 0] if s < 0 else [self.node_layers[s].name, calls[s]]

    def save(self, filepath, include_optimizer=True) -> None:
        """Save architecture, weights, compile settings and optimizer state to one ``.npz`` file (no pickle)."""
        from nnscratch.models.saving import save_model

        save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath) -> None:
        """Save only the weights, to a ``.npz`` file (no pickle)."""
        from nnscratch.models.saving import save_weights

        save_weights(self, filepath)

    def load_weights(self, filepath) -> None:
        from nnscratch.models.saving import load_weights

        load_weights(self, filepath)
