r"""Models with several outputs: a loss and metrics an output, as Keras's ``compile``, and their training step.

A functional model may end in several outputs, ``Model(inputs, [labels,
box])``. ``compile`` then takes, as Keras 3:

* ``loss``: one loss for every output, a list (one an output, None for an
  output that is not trained), or a dict by output name (the output
  layer's name; an output left out has no loss);
* ``loss_weights``: a list or a dict of numbers (1 for an output left out);
* ``metrics`` / ``weighted_metrics``: a list with a list of metrics an
  output, or a dict by output name (a flat list is ambiguous and refused,
  as Keras refuses it).

The model's loss is the weighted sum of the outputs' losses,

.. math:: L = \sum_k \lambda_k L_k, \qquad
    \frac{\partial L}{\partial y_k} = \lambda_k \frac{\partial L_k}{\partial y_k},

each :math:`L_k` reduced over the batch as a single output's loss is (its
masks, sample weights and reduction), so backward starts from one gradient
an output (:meth:`Graph.backward <nnscratch.models.graph.Graph.backward>`;
a softmax or sigmoid output with a cross-entropy still gives its gradient
at the logits). The logs are ``loss``, each output's unweighted loss
``<output>_loss`` (when two outputs or more have one) and each output's
metrics ``<output>_<metric>``, in that order, as Keras 3.15 logs them.
Targets and sample weights are a list (one an output) or a dict by output
name; one array of sample weights weighs every output. ``class_weight`` is
refused with several outputs, as in Keras.

A model with one output takes this path too when ``compile`` gets
``loss_weights``; its logs keep the single output's names.
"""

import numpy as np

from nnscratch import losses as losses_module
from nnscratch import metrics as metrics_module
from nnscratch.losses.base import check_positions
from nnscratch.metrics import Metric
from nnscratch.models.data_adapter import check_sample_weight, class_weight_to_sample_weight, num_samples

__all__ = ["OutputHead", "compile_heads", "by_output", "unique_metric_names", "scale_rows", "HeadsTraining"]


def unique_metric_names(metrics, weighted_metrics):
    """The log names of ``metrics`` and ``weighted_metrics``, made unique as Keras 3's ``CompileMetrics.result``.

    A repeated name gets ``_1``, ``_2``, ... (``["precision", Precision()]``
    logs ``precision`` and ``precision_1``); a weighted metric whose name is
    taken is ``weighted_<name>`` (then numbered the same way).
    """
    taken = {"loss": 1}
    names = []

    def numbered(name):
        if name not in taken:
            taken[name] = 1
            return name
        index = taken[name]
        taken[name] += 1
        return f"{name}_{index}"

    for metric in metrics:
        names.append(numbered(metric.name))
    for metric in weighted_metrics:
        names.append(numbered(metric.name if metric.name not in taken else f"weighted_{metric.name}"))
    return names


def scale_rows(grad, sample_weight):
    """``grad`` with row ``i`` (sample ``i``, whatever its shape) multiplied by ``sample_weight[i]``."""
    return grad * sample_weight.reshape(-1, *(1,) * (grad.ndim - 1)).astype(grad.dtype, copy=False)


def by_output(value, names, what, single_ok=True):
    """``value`` given for every output (a list, a tuple, a dict by output name, or one value) as a list.

    A dict may leave outputs out (None for them); a list must have one entry
    an output. ``single_ok=False`` refuses one value for several outputs.
    """
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names), key=str)
        if unknown:
            raise ValueError(f"{what} names outputs {unknown} that the model does not have; its outputs are {names}")
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{what} must give one entry an output ({len(names)}: {names}), in their order, or be a "
                             f"dict by output name; got {len(value)} entries")
        return list(value)
    if not single_ok and len(names) > 1:
        raise ValueError(f"{what} of a model with outputs {names} must be a list (one entry an output) or a dict by "
                         f"output name, got {value!r}")
    return [value] * len(names)


class OutputHead:
    """What ``compile`` set for one output: its name, layer index, loss, loss weight, metrics and weighted metrics.

    ``mask`` is the output's mask of the last forward (None without one);
    ``fusable`` whether no other layer reads the output layer (a fused loss may then start at its logits).
    """

    def __init__(self, name, index, loss, loss_weight, metrics, weighted_metrics, fusable):
        self.name, self.index, self.loss, self.loss_weight = name, index, loss, loss_weight
        self.metrics, self.weighted_metrics, self.fusable = metrics, weighted_metrics, fusable
        self.mask = None

    def log_prefix(self, several) -> str:
        return f"{self.name}_" if several else ""


def _metric_lists(metrics, names, what):
    if metrics is None:
        return [[] for _ in names]
    entries = by_output(metrics, names, what, single_ok=False)
    lists = []
    for entry in entries:
        entry = [] if entry is None else [entry] if isinstance(entry, str) or not isinstance(entry, (list, tuple)) \
            else list(entry)
        lists.append([metrics_module.get(metric) for metric in entry])
    return lists


def compile_heads(names, indices, fusable, loss, loss_weights, metrics, weighted_metrics):
    """One :class:`OutputHead` an output from ``compile``'s arguments (module docstring)."""
    if len(names) == 1:   # one output: a flat list of metrics is its list, as Keras (a list of lists is by output)
        def nested(value):
            return isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (list, tuple))
        metrics = metrics if metrics is None or nested(metrics) else [metrics]
        weighted_metrics = weighted_metrics if weighted_metrics is None or nested(weighted_metrics) else [
            weighted_metrics]
    output_losses = [None if entry is None else losses_module.get(entry) for entry in by_output(loss, names, "loss")]
    if all(entry is None for entry in output_losses):
        raise ValueError(f"compile needs a loss for at least one of the outputs {names}")
    weights = by_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights")
    weights = [1.0 if weight is None else weight for weight in weights]
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not np.isfinite(weight):
            raise ValueError(f"loss_weights must be finite numbers, got {loss_weights!r}")
    plain = _metric_lists(metrics, names, "metrics")
    weighted = _metric_lists(weighted_metrics, names, "weighted_metrics")
    for name, output_loss, *lists in zip(names, output_losses, plain, weighted):
        if output_loss is None and any(lists):
            raise ValueError(f"output {name!r} has metrics but no loss: give it a loss (its targets are read "
                             "through the loss), or leave its metrics out")
    return [OutputHead(*entries) for entries in zip(names, indices, output_losses, map(float, weights), plain,
                                                    weighted, fusable)]


class _OutputMeans:
    """Running means of the logs of a model with heads: each log's batch sums over its own weight.

    ``update(n, values, weights)``: a batch of ``n`` samples, one sum a log
    and its weight (None: ``n``). The metrics with state (``stateful``: log
    name -> metric) keep their own counts, reset when the tracker is made.
    """

    def __init__(self, names, stateful):
        self.names, self.stateful = names, stateful
        self.sums = dict.fromkeys(names, 0.0)
        self.weights = dict.fromkeys(names, 0.0)
        for metric in stateful.values():
            metric.reset_state()

    def update(self, n, values, weights):
        for name, value, weight in zip(self.names, values, weights):
            self.sums[name] += value
            self.weights[name] += n if weight is None else weight

    def result(self) -> dict:
        means = {name: self.sums[name] / self.weights[name] if self.weights[name] else 0.0 for name in self.names}
        for name, metric in self.stateful.items():
            means[name] = metric.result()
        return means


class HeadsTraining:
    """The Trainer's side for models with heads (``self.heads``): targets, weights, one step, the logs."""

    heads = None

    def _heads_several(self) -> bool:
        return len(self.heads) > 1

    def _heads_targets(self, y, samples, name):
        """The targets as a list, one an output (None for an output without a loss), each checked."""
        names = [head.name for head in self.heads]
        if self._heads_several() and not isinstance(y, (list, tuple, dict)):
            raise ValueError(f"the model has {len(names)} outputs {names}: y must be a list of {len(names)} arrays "
                             f"or a dict by output name, got {type(y).__name__}")
        if self._heads_several():
            targets = by_output(y, names, "y")
        else:          # one output: its targets, or a list of one array (Keras's structure, or already prepared)
            targets = y if isinstance(y, list) and len(y) == 1 and isinstance(y[0], np.ndarray) else [y]
        prepared = []
        for head, target, shape in zip(self.heads, targets, self._head_shapes()):
            if head.loss is None:
                prepared.append(None)
                continue
            if target is None:
                raise ValueError(f"targets y are required for output {head.name!r} (it has a loss)")
            if len(target) != samples:
                raise ValueError(f"{name} and y for output {head.name!r} must have the same number of samples, got "
                                 f"{samples} and {len(target)}")
            prepared.append(head.loss.prepare_targets(target, shape[1:]))
        return prepared

    def _head_shapes(self):
        shapes = self.output_shape
        return shapes if self._heads_several() else [shapes]

    def _heads_sample_weights(self, sample_weight, class_weight, y, samples, name):
        """One checked array of weights an output (or None), from one array for all or a list / dict."""
        if class_weight is not None:
            if self._heads_several():
                raise ValueError("class_weight is only supported for models with a single output (as Keras); give "
                                 "sample_weight, one array an output, instead")
            if sample_weight is not None:
                raise ValueError("give class_weight or sample weights, not both")
            return [class_weight_to_sample_weight(y[0], class_weight, tuple(self._head_shapes()[0][1:-1]))]
        if sample_weight is None:
            return None
        names = [head.name for head in self.heads]
        listed = isinstance(sample_weight, dict) or (isinstance(sample_weight, (list, tuple)) and len(names) > 1
                                                     and not np.isscalar(sample_weight[0]))
        given = by_output(sample_weight, names, name) if listed else [sample_weight] * len(names)
        return [None if weight is None else check_sample_weight(weight, samples, name, tuple(shape[1:-1]))
                for weight, shape in zip(given, self._head_shapes())]

    def _heads_log_names(self):
        several = self._heads_several()
        names = ["loss"]
        trained = [head for head in self.heads if head.loss is not None]
        if len(trained) > 1:
            names += [f"{head.name}_loss" for head in trained]
        for head in self.heads:
            names += [head.log_prefix(several) + metric for metric in unique_metric_names(head.metrics,
                                                                                          head.weighted_metrics)]
        return names

    def _heads_tracker(self):
        names = self._heads_log_names()
        metrics = [metric for head in self.heads for metric in [*head.metrics, *head.weighted_metrics]]
        stateful = {name: metric for name, metric in zip(names[len(names) - len(metrics):], metrics)
                    if not isinstance(metric, Metric)}
        return _OutputMeans(names, stateful)

    def _head_loss(self, head, y, y_pred, sample_weight, backward):
        """The output's loss summed over the batch (times its reduction's scale), and dL_k/dy_k (or None).

        The third value says whether the gradient is at the output layer's logits (a fused loss).
        """
        loss = head.loss
        weights = self._position_weights(y, y_pred, sample_weight, head)
        if weights is not None:
            values = check_positions(loss.per_position(y, y_pred), y_pred.shape, loss.name)
            grad = loss.weighted_gradient(y, y_pred, weights) if backward else None
            total = len(y_pred) * float(np.mean(values * weights)) * loss.reduction_scale(y_pred.shape, weights)[0]
            return total, grad, False
        loss_scale, gradient_scale = loss.reduction_scale(y_pred.shape, sample_weight)
        layer = self.node_layers[head.index]
        fused = head.fusable and self._fused_output(loss, layer)
        grad = None
        if fused:
            losses, grad = loss.fused(y, layer.logits)
        else:
            losses = loss.per_sample(y, y_pred)
            if backward:
                grad = loss.gradient(y, y_pred).astype(y_pred.dtype, copy=False)
        if backward:
            if gradient_scale != 1:
                grad = grad * gradient_scale
            if sample_weight is not None:
                grad = scale_rows(grad, sample_weight)
        total = float(np.sum(losses if sample_weight is None else losses * sample_weight)) * loss_scale
        return total, grad, fused

    def _heads_step(self, x, ys, training, sample_weights=None):
        """One batch of a model with heads: each output's loss and gradient, one backward, the update.

        Returns each log's batch sum and its weight (None: the batch size), for :class:`_OutputMeans`.
        """
        outputs = self.forward(x, training=training)
        outputs = outputs if self._heads_several() else [outputs]
        samples = num_samples(x)
        sample_weights = sample_weights or [None] * len(self.heads)
        total, losses, grads, from_logits = 0.0, [], [], []
        for k, (head, y, y_pred, weight) in enumerate(zip(self.heads, ys, outputs, sample_weights)):
            head.mask = self.output_masks[k]
            if head.loss is None:
                grads.append(None)
                continue
            value, grad, fused = self._head_loss(head, y, y_pred, weight, training)
            losses.append(value)
            total += head.loss_weight * value
            grads.append(grad if grad is None or head.loss_weight == 1 else grad * grad.dtype.type(head.loss_weight))
            if fused:
                from_logits.append(k)
        if self._activity_losses:
            total += samples * self.activity_loss()
        regularized = self.regularized_layers()
        if regularized:
            total += samples * sum(layer.regularization_loss() for layer in regularized)
        if training:
            if self._heads_several():
                self.backward(grads, input_gradient=False, from_logits=from_logits)
            elif from_logits:
                self._backward_from_logits(grads[0])
            else:
                self.backward(grads[0], input_gradient=False)
            for layer in regularized:
                layer.add_regularization_gradients()
            self.optimizer.apply_gradients(self.parameters())
        values, weights = [total], [None]
        if len(losses) > 1:
            values += losses
            weights += [None] * len(losses)
        for head, y, y_pred, weight in zip(self.heads, ys, outputs, sample_weights):
            sums, plain, weighted = self._metric_sums(y, y_pred, weight, head)
            values += sums
            weights += [plain] * len(head.metrics) + [weighted] * len(head.weighted_metrics)
        return values, weights
