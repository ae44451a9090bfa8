r"""Functional models that branch and merge: tracing the graph, and forward / backward node by node.

A functional model's layers form a directed acyclic graph: a tensor may be
read by several layers (a *fan-out*: the input of a residual block goes
into its convolutions and around them), and merge layers (``Add``,
``Concatenate``, ...) read several tensors. :func:`trace` follows the
outputs back to the inputs; a graph in which every layer reads one tensor
is a chain and :class:`~nnscratch.Model` runs it as before (all fusions).
Otherwise the model keeps a :class:`Graph`, which runs the layers one by
one in :func:`trace`'s order, *without the chain's fusions* but one: a
BatchNormalization whose output only a ReLU reads applies that ReLU itself
(``bn.forward(x, training, relu=True)``, as in a chain), unless
``model.fuse_batchnorm_relu`` is False.

Backward through a fan-out: if a tensor :math:`h` is read by layers
:math:`c_1, \dots, c_m`, the loss depends on :math:`h` through each of them,
so by the chain rule

.. math:: \frac{\partial L}{\partial h} = \sum_{j=1}^{m} \frac{\partial L}{\partial h}\Big|_{\text{through } c_j},

the *sum* of the gradients their backward passes return. Backward runs the
layers in reverse order, so every reader of a tensor has run before the
layer that made it, and the sum is complete when that layer needs it.

Shared layers: one layer object may be called at several places (a
siamese network runs two inputs through the same tower). Each call is a
*node* of the graph, and the nodes, not the layers, are what runs:
``layers[i]`` is the layer of node ``i``, the same object at each of its
calls. Its weights :math:`W` enter the loss once per call, so their
gradient is again a sum, over the calls,

.. math:: \frac{\partial L}{\partial W} = \sum_{j} \frac{\partial L}{\partial W}\Big|_{\text{call } j},

which backward adds up from what each call's backward wrote into the
parameters' ``grad``. A layer keeps what its backward needs in its own
attributes, one set for one call; so when training, the graph keeps a copy
of those attributes after each call of a shared layer (a shallow copy: the
arrays forward made, never the parameters) and puts the call's copy back
before that call's backward.
"""

from nnscratch.layers.activation import Activation
from nnscratch.layers.batch_normalization import BatchNormalization

__all__ = ["INPUT", "Graph", "input_index", "trace", "is_chain", "call_numbers", "unique_layers"]

#: The index that stands for the model's (first) input in :attr:`Graph.sources`.
INPUT = -1


def input_index(k: int) -> int:
    """The index of the model's input number ``k`` in :attr:`Graph.sources`: -1, -2, ... (layers count from 0)."""
    return INPUT - k


def trace(inputs, outputs, tensors=False):
    """``(layers, sources)`` of the graph from the tensor ``inputs`` (or a list) to the tensor ``outputs`` (or a list).

    ``layers`` are the computing layers in Keras's order: by *depth*, the
    longest path from a layer to the output (deepest first), and among
    layers of one depth in the order a depth-first walk from the output
    (through each layer's inputs in order) first meets them. This is what
    Keras 3's ``Functional`` lists (``keras.src.ops.function.map_graph``),
    so ``model.layers`` and the weights come in the same order. With one
    output, the output layer is last; with several, the walk starts from
    each output in turn, as Keras's. ``sources[i]`` is the tuple of the indices of the layers
    whose outputs ``layers[i]`` reads, :func:`input_index` ``(k)`` for the
    model's input ``k`` (:data:`INPUT` for the first).

    A layer called at several places (a shared layer) stands in ``layers``
    once for each call: ``layers`` lists the *nodes*, then in the order
    Keras 3 runs them (:func:`keras_node_order`), which decides which call
    of a shared batch norm updates its moving statistics first. With
    ``tensors=True`` two more values come: the computed tensors, one a node,
    in that order, and the layers once each, in Keras's ``model.layers`` order.

    Raises a ValueError if the outputs were not computed from ``inputs``
    (another ``Input`` is reached).
    """
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    given = {id(tensor): input_index(k) for k, tensor in enumerate(inputs)}
    order, depth, visited = [], {}, {}   # order: tensors in first-visit (pre-order) order
    finished = []                        # tensors after their parents (post-order): a topological order
    stack = [(output, False) for output in reversed(outputs)]     # the first output's walk first
    while stack:
        tensor, done = stack.pop()
        if done:
            finished.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited[id(tensor)] = len(order)
        order.append(tensor)
        if id(tensor) in given:
            finished.append(tensor)
            continue
        if not tensor.parents:
            raise ValueError(f"the outputs were not computed from the given inputs: they also read the input "
                             f"{tensor.layer.name!r}, which is not among the model's inputs, or no path connects "
                             "them")
        stack.append((tensor, True))
        stack.extend((parent, False) for parent in reversed(tensor.parents))
    # depth: longest path to an output, over the readers (which come later in `finished`)
    for tensor in reversed(finished):
        here = depth.setdefault(id(tensor), 0)
        if id(tensor) in given:
            continue
        for parent in tensor.parents:
            depth[id(parent)] = max(depth.get(id(parent), 0), here + 1)
    computed = [tensor for tensor in order if id(tensor) not in given]
    computed.sort(key=lambda tensor: (-depth[id(tensor)], visited[id(tensor)]))
    model_layers = [tensor.layer for tensor in computed]
    if len(set(map(id, model_layers))) < len(model_layers):       # a shared layer
        computed, model_layers = keras_node_order(finished, given, visited)
    layers = [tensor.layer for tensor in computed]
    index = {**{id(tensor): i for i, tensor in enumerate(computed)}, **given}
    sources = [tuple(index[id(parent)] for parent in tensor.parents) for tensor in computed]
    return (layers, sources, computed, model_layers) if tensors else (layers, sources)


def keras_node_order(finished, given, visited) -> tuple:
    """``(tensors, layers)``: the order Keras 3 runs the calls of a graph with shared layers, and lists its layers.

    Keras's ``map_graph`` walks the tensors from the outputs back
    (``finished`` reversed: each after all its readers) giving each a depth
    one more than its deepest reader, and a shared layer's later-walked calls
    at least the depth of its earlier ones; it then runs the calls deepest
    first, and among one depth in the order the walk first met them (a
    reader meets its inputs in order). ``model.layers`` is each layer at its
    deepest call, and among one depth in the order of the first visit
    (``visited``) of any of its calls. Without shared layers the calls of one
    depth are independent (each layer draws from its own generator), and
    :func:`trace` keeps its own order.
    """
    node_depth, layer_depth = {}, {}
    for tensor in reversed(finished):
        here = max(node_depth.setdefault(id(tensor), 0), layer_depth.get(id(tensor.layer), 0))
        layer_depth[id(tensor.layer)] = node_depth[id(tensor)] = here
        if id(tensor) not in given:
            for parent in tensor.parents:
                node_depth[id(parent)] = max(here + 1, node_depth.get(id(parent), 0))
    by_id = {id(tensor): tensor for tensor in finished}
    tensors = sorted((by_id[key] for key in node_depth if key not in given), key=lambda t: -node_depth[id(t)])
    first_visit = {}
    for tensor in tensors:
        first_visit[id(tensor.layer)] = min(first_visit.get(id(tensor.layer), visited[id(tensor)]), visited[id(tensor)])
    layers = sorted(unique_layers([tensor.layer for tensor in tensors]),
                    key=lambda layer: (-layer_depth[id(layer)], first_visit[id(layer)]))
    return tensors, layers


def call_numbers(layers) -> list:
    """``numbers[i]``: which call of its layer node ``i`` is, 0 for the first (Keras's node index, ``dense[1][0]``)."""
    seen, numbers = {}, []
    for layer in layers:
        numbers.append(seen.get(id(layer), 0))
        seen[id(layer)] = numbers[-1] + 1
    return numbers


def unique_layers(layers) -> list:
    """The layers of the nodes ``layers``, each once, in the order of their first call (Keras's ``model.layers``)."""
    return list({id(layer): layer for layer in layers}.values())


def is_chain(layers, sources) -> bool:
    """Whether every layer reads one tensor, the previous layer's output (then the model runs as a chain)."""
    return all(not layer.takes_list and len(source) == 1 and source[0] == i - 1
               for i, (layer, source) in enumerate(zip(layers, sources)))


class Graph:
    """How a branching model runs its layers: what each reads, and when a tensor is no longer needed.

    Parameters
    ----------
    layers : list of Layer
        In a topological order (:func:`trace`'s), the output layer last.
    sources : list of tuple of int
        ``sources[i]``: the indices of the layers whose outputs ``layers[i]``
        reads (:func:`input_index` ``(k)``: the model's input ``k``), in the order of its inputs.
    inputs : int
        How many inputs the model has (each must be read).
    outputs : list of int, optional
        The indices of the layers whose outputs are the model's, in its order
        (default: the last layer). Every other layer must be read by a later one.

    ``last_reader[t]`` is the index of the last layer that reads tensor
    ``t``; forward drops each tensor once that layer ran (the layers cache
    themselves what their backward needs), so inference holds only the
    tensors still to be read. ``shared`` are the nodes whose layer is called
    at other nodes too (module docstring).
    """

    def __init__(self, layers, sources, inputs=1, outputs=None):
        if len(sources) != len(layers):
            raise ValueError(f"a graph needs one source list per layer, got {len(sources)} for {len(layers)} layers")
        self.inputs = inputs
        self.outputs = [len(layers) - 1] if outputs is None else list(outputs)
        self.output_masks = [None] * len(self.outputs)   # the masks of the last forward's outputs
        self.sources = [tuple(source) for source in sources]
        self.layers = list(layers)     # the layer of each node (a shared layer once a call)
        calls = call_numbers(layers)
        last_call = {id(layer): number for layer, number in zip(layers, calls)}
        self.shared = {i for i, layer in enumerate(layers) if last_call[id(layer)] > 0}
        self._calls = {}               # {node: the layer's attributes after that call}, while training
        self.output_mask = None        # the mask of the last forward's output (forward_steps)
        self.last_reader = {}
        for i, (layer, source) in enumerate(zip(layers, self.sources)):
            if not source or any(not input_index(inputs - 1) <= s < i for s in source):
                raise ValueError(f"layer {layer.name!r} (number {i}) must read the input or earlier layers, "
                                 f"got sources {source}")
            if not layer.takes_list and len(source) != 1:
                raise ValueError(f"layer {layer.name!r} reads one tensor, got {len(source)} sources")
            for s in source:
                self.last_reader[s] = i
        unread = [layers[i].name for i in range(len(layers)) if i not in self.last_reader and i not in self.outputs]
        unread += [f"input {k}" for k in range(inputs) if input_index(k) not in self.last_reader]
        if unread:
            raise ValueError(f"every layer but the outputs must be read by a later one, and every input too; "
                             f"unread: {unread}")

    def _input_values(self, x) -> dict:
        """``{input_index(k): x[k]}``: the model's input ``x`` (a list of them when it has several)."""
        if self.inputs == 1:
            return {INPUT: x}
        return {input_index(k): value for k, value in enumerate(x)}

    def __call__(self, layers, x):
        """Apply the layers to the symbolic tensor ``x`` (a list of them for several inputs); return the output
        (a list for several outputs)."""
        values = self._input_values(x)
        for i, layer in enumerate(layers):
            inputs = [values[s] for s in self.sources[i]]
            values[i] = layer(inputs if layer.takes_list else inputs[0])
        return values[self.outputs[0]] if len(self.outputs) == 1 else [values[i] for i in self.outputs]

    def batchnorm_relus(self, layers) -> dict:
        """``{relu_index: bn_index}``: each ReLU (``ReLU()``, ``Activation("relu")``) that alone reads a batch norm.

        Such a batch norm runs ``forward(x, training, relu=True)`` and its
        backward goes through the ReLU too; the ReLU's step passes the
        output on and its backward passes the gradient on, as in a chain.
        """
        readers = {}
        for source in self.sources:
            for s in source:
                readers[s] = readers.get(s, 0) + 1
        return {i: source[0] for i, (layer, source) in enumerate(zip(layers, self.sources))
                if isinstance(layer, Activation) and layer.activation == "relu" and source[0] >= 0
                and isinstance(layers[source[0]], BatchNormalization) and readers[source[0]] == 1
                and source[0] not in self.outputs          # (a model's output keeps its values before the ReLU)
                and layer.activity_regularizer is None and layers[source[0]].activity_regularizer is None}

    def forward_steps(self, layers, x, training=False, fuse_batchnorm_relu=True):
        """Run the layers in order on the batch ``x``, yielding ``(index, output)`` after each.

        Each layer gets the outputs it reads (a list for merge layers); a
        tensor is dropped as soon as its last reader ran. A ReLU fused into
        the batch norm before it (:meth:`batchnorm_relus`) yields that
        batch norm's output, which already went through the ReLU. When a
        layer makes a mask, each tensor's mask goes along with it
        (``Layer.compute_mask``; a list of masks for a merge layer) and a
        layer that reads masks gets its input's; ``output_mask`` keeps the
        output's once the steps are done (``output_masks``: each output's).
        An output is kept to the end even where later layers read it.
        """
        fused = self.batchnorm_relus(layers) if fuse_batchnorm_relu else {}
        applies_relu = set(fused.values())
        self._calls = {}
        values = self._input_values(x)
        masks = dict.fromkeys(values)
        tracks_masks = any(layer.makes_mask for layer in layers)
        self.output_mask = None
        for i, layer in enumerate(layers):
            source = self.sources[i]
            if i in fused:      # the ReLU fused into the batch norm before it: its output, and its mask
                values[i] = y = values.pop(source[0])
                masks[i] = masks.pop(source[0])
                yield i, y
                continue
            inputs = [values[s] for s in source]
            given = [masks[s] for s in source] if layer.takes_list else masks[source[0]]
            masked = any(m is not None for m in given) if layer.takes_list else given is not None
            if i in applies_relu:      # a batch norm, which reads a mask
                y = layer.forward(inputs[0], training=training, relu=True, mask=given)
            elif masked and layer.uses_mask:
                y = layer.forward(inputs if layer.takes_list else inputs[0], training=training, mask=given)
            else:
                y = layer.forward(inputs if layer.takes_list else inputs[0], training=training)
            if training and i in self.shared:      # this call's cache, for this call's backward
                self._calls[i] = dict(vars(layer))
            masks[i] = layer.compute_mask(inputs if layer.takes_list else inputs[0], given) if tracks_masks else None
            del inputs  # (this frame must not keep them alive either)
            for s in set(source):
                if self.last_reader[s] == i and s not in self.outputs:
                    del values[s]
                    masks.pop(s, None)
            values[i] = y
            yield i, y
        self.output_masks = [masks.get(i) for i in self.outputs]
        self.output_mask = self.output_masks[0]

    def trainable_below(self, layers) -> list:
        """``below[i]``: whether some layer that ``layers[i]`` depends on (an ancestor) has a trainable parameter."""
        trainable = [any(p.trainable for p in layer.params.values()) for layer in layers]
        below = []
        for source in self.sources:
            below.append(any(s >= 0 and (trainable[s] or below[s]) for s in source))
        return below

    def backward(self, layers, grad_output, from_layer=None, input_gradient=True, fuse_batchnorm_relu=True,
                 activity_gradients=None, from_logits=()):
        """Run backward through the layers in reverse order; return dL/d(input) (None when not asked).

        With several inputs, a list of dL/d(input k), one per input.
        The gradient of a tensor read by several layers is the sum of what
        their backward passes return (module docstring); a merge layer's
        backward returns one gradient per input. ``from_layer=len(layers) -
        1`` means ``grad_output`` is already dL/d(input of the output layer)
        (the trainer's fused softmax/sigmoid loss). With
        ``input_gradient=False`` (training) a layer runs only if it or an
        ancestor has trainable parameters, and a layer none of whose ancestors
        is trainable skips dL/d(its input) (``skip_input_gradient``). A shared
        layer gets each call's cache back before that call's backward, and its
        parameters' ``grad`` the sum over its calls (module docstring). A ReLU
        fused into its batch norm (``fuse_batchnorm_relu``, as in the forward
        that ran) passes its gradient on: the batch norm's backward takes it.
        ``activity_gradients`` (``{i: R'(y) / N}``, the Model's activity
        penalties) join the gradients of those layers' outputs.

        Several outputs: ``grad_output`` is a list, one gradient an output
        (None for an output without one: the layers only it depends on are
        skipped); ``from_logits`` lists the outputs whose gradient is
        dL/d(logits) of their activation (a fused loss), for which the output
        layer runs ``backward_from_preactivation`` (only for an output no
        other layer reads).
        """
        activity_gradients = activity_gradients or {}
        count = len(layers)
        fused = self.batchnorm_relus(layers) if fuse_batchnorm_relu else {}
        logits = {}
        if from_layer == count - 1 and from_layer in fused:
            raise ValueError(f"backward cannot start between {layers[fused[from_layer]].name!r} and the ReLU fused "
                             "into it; set model.fuse_batchnorm_relu = False")
        if len(self.outputs) > 1:
            if from_layer is not None or len(grad_output) != len(self.outputs):
                raise ValueError(f"a model with {len(self.outputs)} outputs starts backward from a list of as many "
                                 f"gradients (None for an output without one), got {grad_output!r:.60}")
            grads, stop = {}, count
            for k, (i, g) in enumerate(zip(self.outputs, grad_output)):
                if g is not None:
                    (logits if k in from_logits else grads)[i] = g
        elif from_layer is None or from_layer == count:
            grads, stop = {count - 1: grad_output}, count
        elif from_layer == count - 1 and not layers[from_layer].takes_list:
            grads, stop = {self.sources[from_layer][0]: grad_output}, from_layer
        else:
            raise ValueError(f"a branching model's backward starts at its output (from_layer=None) or at its output "
                             f"layer's input (from_layer={count - 1}); got from_layer={from_layer!r}")
        below = self.trainable_below(layers)
        if not input_gradient and not any(any(p.trainable for p in layer.params.values()) for layer in layers):
            return None  # nothing to train: no gradient is needed at all
        totals = {}      # {id(shared layer): (its parameters, the sums of their gradients over the calls so far)}
        if stop < count and stop in self.shared:      # the output node's backward already ran (a fused loss)
            self._add_up(layers[stop], totals)
        for i in reversed(range(stop)):
            layer = layers[i]
            grad = grads.pop(i, None)
            if not input_gradient and not below[i] and not any(p.trainable for p in layer.params.values()):
                continue  # neither it nor anything below it trains
            if i in activity_gradients:  # never a ReLU fused into its batch norm (batchnorm_relus)
                grad = activity_gradients[i] if grad is None else grad + activity_gradients[i]
            if grad is None and i not in logits:
                continue  # no loss depends on this layer's output (an output without a loss, and what only it reads)
            if i in fused:  # the batch norm's backward goes through this ReLU
                grads[fused[i]] = grad
                continue
            if i in self._calls:          # a shared layer: this call's cache
                vars(layer).update(self._calls[i])
            layer.skip_input_gradient = not input_gradient and not below[i]
            result = layer.backward_from_preactivation(logits[i]) if i in logits else layer.backward(grad)
            if i in self.shared:
                self._add_up(layer, totals)
            if layer.skip_input_gradient:
                continue
            for s, g in zip(self.sources[i], result if layer.takes_list else [result]):
                grads[s] = g if s not in grads else grads[s] + g  # a fan-out: the readers' gradients add up
        self._finish_shared(layers, totals)
        if not input_gradient:
            return None
        if self.inputs == 1:
            return grads.pop(INPUT)
        return [grads.pop(input_index(k), None) for k in range(self.inputs)]   # (None: no loss depends on it)

    @staticmethod
    def _add_up(layer, totals) -> None:
        """Add what a call's backward wrote into a shared layer's ``grad`` to the sums over its calls."""
        params = list(layer.params.values())
        if id(layer) not in totals:
            totals[id(layer)] = (params, [p.grad.copy() for p in params])
            return
        for total, p in zip(totals[id(layer)][1], params):
            total += p.grad

    def _finish_shared(self, layers, totals) -> None:
        """Write the sums over the calls into the shared layers' ``grad``; leave each layer as its last call left it."""
        for params, sums in totals.values():
            for p, total in zip(params, sums):
                p.grad[...] = total
        for i in sorted(self._calls):         # the last call of each layer comes last
            vars(layers[i]).update(self._calls[i])
        self._calls = {}
