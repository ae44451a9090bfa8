"""The training loop shared by :class:`Model` and :class:`Sequential`.

One training step is the whole of backpropagation::

    y_pred = model.forward(x, training=True)      # every layer caches what it needs
    grad = loss.gradient(y, y_pred)                # dL/dy_pred
    model.backward(grad)                           # every layer fills its params' .grad
    layer.add_regularization_gradients()           # (layers with regularizers) += dR/dw
    optimizer.apply_gradients(model.parameters())  # only here do weights change

When the last layer is a softmax and the loss a cross-entropy (or a sigmoid
and binary cross-entropy), the loss gives dL/dlogits = (p - t)/N directly
(stable for any logits) and backward starts just below that activation.

Sample weights (``sample_weight``, or ``class_weight`` turned into them) weigh
each sample's loss as Keras's ``"sum_over_batch_size"`` reduction does: the
batch's loss is ``sum_i w_i l_i / N`` (``N`` the batch size, not the sum of
the weights), so row ``i`` of the loss's gradient is scaled by ``w_i``. The
``metrics`` stay unweighted and the ``weighted_metrics`` are
``sum_i w_i m_i / sum_i w_i``, as in Keras.

Metrics with state (``Precision``, ``Recall``, ``AUC``, ``F1Score``...: not
means of per-sample values) keep their own counts: each batch goes to their
``update_state`` (with the sample weights for ``weighted_metrics``), they are
reset at the start of each epoch, evaluation and ``train_on_batch`` /
``test_on_batch`` call, and the logs carry their ``result()``.
"""

from contextlib import contextmanager

import numpy as np
from tqdm.auto import tqdm

from nnscratch import rng
from nnscratch.callbacks import CallbackList
from nnscratch.layers.activated import ActivatedLayer
from nnscratch.losses.base import check_positions
from nnscratch.metrics import Metric
from nnscratch.models.data_adapter import (adapt, check_class_weight, check_features, check_sample_weight,
                                           class_weight_to_sample_weight, is_batch_source, num_samples, take)
from nnscratch.models.outputs import HeadsTraining, scale_rows, unique_metric_names

__all__ = ["Trainer"]


class _RunningMeans:
    """Running means of the loss and metrics over one epoch, as Keras keeps them.

    The loss and the metrics are means over the samples (each batch weighs
    its size, so the loss is ``sum_i w_i l_i / samples``); the last
    ``weighted`` names, the weighted metrics, are ``sum_i w_i m_i / sum_i w_i``
    (0 while the weights sum to 0, as Keras). With an output mask the
    metrics are means over the positions that count: a batch adds
    ``sum m v / T`` and weighs ``sum m / T`` (``T`` positions a sample). The metrics with state
    (``stateful``: log name -> metric object) keep their own counts: the
    tracker resets them when it is made and logs their ``result()``.
    """

    def __init__(self, names, weighted=0, stateful=None):
        self.names = names
        self.plain = len(names) - weighted
        self.sums = dict.fromkeys(names, 0.0)
        self.count = 0
        self.plain_weight = 0.0
        self.weight = 0.0
        self.stateful = stateful or {}
        for metric in self.stateful.values():
            metric.reset_state()

    def update(self, n, values, plain=None, weight=None):
        """Add a batch of ``n`` samples: its sums of ``values``, the weight of its metrics (None: ``n``) and that
        of its weighted metrics (the sum of its sample weights; None: ``n``)."""
        self.count += n
        self.plain_weight += n if plain is None else plain
        self.weight += n if weight is None else weight
        for name, value in zip(self.names, values):
            self.sums[name] += value

    def result(self) -> dict:
        means = {"loss": self.sums["loss"] / max(self.count, 1)}
        for name in self.names[1:self.plain]:
            means[name] = self.sums[name] / self.plain_weight if self.plain_weight else 0.0
        for name in self.names[self.plain:]:
            means[name] = self.sums[name] / self.weight if self.weight else 0.0
        for name, metric in self.stateful.items():
            means[name] = metric.result()
        return means


def _weight_sum(sample_weight):
    """The sum of a batch's sample weights (None without weights: the tracker counts the samples)."""
    return None if sample_weight is None else float(np.sum(sample_weight, dtype=np.float64))


def _progress(batches, verbose, desc):
    """One epoch of ``batches``, through a tqdm progress bar when ``verbose`` (a hidden bar costs ~30 us a pass)."""
    if not verbose:
        return batches.epoch()
    return tqdm(batches.epoch(), total=len(batches), desc=desc)


def _unpack_validation_data(validation_data):
    """fit's ``validation_data`` as ``(x_val, y_val, sample_weight_val)``.

    ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)`` (None allowed
    as the weights), or a Sequence or generator (which yields its own
    weights, if any) with ``y_val`` and the weights None.
    """
    if is_batch_source(validation_data):
        return validation_data, None, None
    if not isinstance(validation_data, (tuple, list)):
        raise TypeError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val), "
                        f"a batch Sequence or a generator, got {type(validation_data).__name__}")
    if len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight_val), got a "
                         f"{type(validation_data).__name__} of {len(validation_data)} elements")
    x_val, y_val, *weights = validation_data
    return x_val, y_val, weights[0] if weights else None


class Trainer(HeadsTraining):
    """fit / evaluate / predict / train_on_batch / test_on_batch, as Keras.

    A model with several outputs (or ``loss_weights``) has ``heads``, one an
    output, and takes their path (:mod:`nnscratch.models.outputs`).
    """

    # ---------------------------------------------------------------- checks
    def _require_compiled(self):
        if self.loss is None:
            raise ValueError(f"model {self.name!r} must be compiled before training or evaluation: call compile()")

    def _prepare_x(self, x, name="x"):
        if self._input_layers is not None:           # a model with several inputs (Model.input_layers)
            x = [check_features(array, f"{name} for input {layer.name!r}")
                 for array, layer in zip(self._input_list(x, name), self._input_layers)]
        else:
            if isinstance(x, dict):                  # {input name: array}, as Keras takes it for one input too
                expected = [self.input_layer.name] if self.input_layer is not None else []
                if list(x) != expected:
                    raise ValueError(f"{name} is a dict, so its keys must be the names of the model's inputs "
                                     f"{expected}; got {sorted(x, key=str)}")
                x = x[expected[0]]
            x = check_features(x, name)
            if not self.built:
                self.build(x.shape[1:])
        self.check_input(x)
        return x

    def _input_list(self, x, name):
        """The data of a model with several inputs as a list in the inputs' order: from a list, a tuple, or a
        dict by the inputs' names (as Keras)."""
        names = [layer.name for layer in self._input_layers]
        if isinstance(x, dict):
            if set(x) != set(names):
                raise ValueError(f"{name} is a dict, so its keys must be the names of the model's inputs {names}; "
                                 f"got {sorted(x, key=str)}")
            return [x[key] for key in names]
        if not isinstance(x, (list, tuple)) or len(x) != len(names):
            got = f"a {type(x).__name__} of {len(x)}" if isinstance(x, (list, tuple)) else type(x).__name__
            raise ValueError(f"model {self.name!r} has {len(names)} inputs {names}: {name} must be a list of "
                             f"{len(names)} arrays (or a dict by input name), got {got}")
        return list(x)

    def _prepare_xy(self, x, y, name="x"):
        x = self._prepare_x(x, name)
        if y is None:
            raise ValueError(f"targets y are required together with {name}")
        if self.heads is not None:
            return x, self._heads_targets(y, num_samples(x), name)
        if num_samples(x) != len(y):
            raise ValueError(f"{name} and y must have the same number of samples, got {num_samples(x)} and "
                             f"{len(y)}")
        return x, self.loss.prepare_targets(y, self.output_shape[1:])

    def _fused_output(self, loss=None, last=None) -> bool:
        """Whether the loss takes the last layer's logits (softmax + cross-entropy, sigmoid + binary cross-entropy).

        The last layer (or ``last``, an output layer) is an ``ActivatedLayer``
        with a 2-D output whose activation is the loss's (or ``loss``'s)
        ``fused_activation``; a sigmoid layer must keep its logits
        (``compile`` sets ``keep_logits`` on it).
        """
        loss = self.loss if loss is None else loss
        if last is None:
            last = self.node_layers[-1] if self.layers else None
        return (loss.fused_activation is not None and isinstance(last, ActivatedLayer)
                and last.activity_regularizer is None     # its output's gradient gets R'(y) / N added
                and last.activation == loss.fused_activation and len(last.output_shape) == 2
                and (last.activation == "softmax" or last.keep_logits))

    def _backward_from_logits(self, grad_logits):
        """Backward from dL/d(logits) of the last layer's activation: through that layer, then from below it."""
        last = self.node_layers[-1]
        lowest = self._lowest_trainable_layer()
        last.skip_input_gradient = lowest is None or lowest == len(self.node_layers) - 1
        self.backward(last.backward_from_preactivation(grad_logits), from_layer=len(self.node_layers) - 1,
                      input_gradient=False)

    # ----------------------------------------------------------------- steps
    def _loss_and_backward(self, y, y_pred, backward, sample_weight=None):
        """Per-sample losses (unweighted); with ``backward`` also run backpropagation.

        With ``sample_weight`` the loss differentiated is ``sum_i w_i l_i / N``:
        the gradient of the batch mean, ``dl_i / N`` in row ``i``, scaled row by
        row by ``w_i`` (each sample's loss depends on its own row only).
        """
        _, gradient_scale = self.loss.reduction_scale(y_pred.shape, sample_weight)   # Keras's reduction
        if self._fused_output():
            last = self.node_layers[-1]
            losses, grad_logits = self.loss.fused(y, last.logits)
            if backward:
                if gradient_scale != 1:
                    grad_logits = grad_logits * gradient_scale
                if sample_weight is not None:
                    grad_logits = scale_rows(grad_logits, sample_weight)
                self._backward_from_logits(grad_logits)
            return losses
        if backward:
            grad = self.loss.gradient(y, y_pred).astype(y_pred.dtype, copy=False)
            if gradient_scale != 1:
                grad = grad * gradient_scale
            if sample_weight is not None:
                grad = scale_rows(grad, sample_weight)
            self.backward(grad, input_gradient=False)
        return self.loss.per_sample(y, y_pred)

    def _position_weights(self, y, y_pred, sample_weight, head=None):
        """The loss's weights a position (``Loss.position_weights``), or None when one a sample will do.

        They are needed when the output carries a mask, the loss leaves
        positions out (``ignore_class``: ``Loss.target_mask``, joined with the
        output's mask), or the sample weights are one a position (``(N, T)``
        for an output ``(N, T, K)``). ``head``: the output's loss and mask (a
        model with heads).
        """
        mask = self.output_mask if head is None else head.mask
        loss = self.loss if head is None else head.loss
        target = loss.target_mask(y, y_pred.shape[:-1])
        if target is not None:
            mask = target if mask is None else mask & target
        if mask is None and (sample_weight is None or sample_weight.ndim == 1):
            return None
        return loss.position_weights(mask, sample_weight, y_pred.shape[:-1])

    def _position_loss_and_backward(self, y, y_pred, backward, weights):
        """The losses a position times their ``weights``; with ``backward`` also run backpropagation.

        The loss differentiated is ``mean(w l)`` over all positions (times
        the reduction's scale, :meth:`Loss.weighted_gradient
        <nnscratch.losses.Loss.weighted_gradient>`).
        """
        values = check_positions(self.loss.per_position(y, y_pred), y_pred.shape, self.loss.name)
        if backward:
            self.backward(self.loss.weighted_gradient(y, y_pred, weights), input_gradient=False)
        return values * weights

    def _metric_sums(self, y, y_pred, sample_weight, head=None):
        """Each metric's sum over the batch, then the weights of the metrics and of the weighted metrics.

        Without a mask: ``sum_i m_i`` and ``sum_i w_i m_i``, weighing the
        batch size and ``sum_i w_i`` (None: the batch size). With a mask
        ``m`` (or sample weights a position), the per-sample metrics count the
        positions: ``sum m v / T`` and ``sum m w v / T``, weighing ``sum m /
        T`` and ``sum m w / T`` (``T`` positions a sample; Keras's
        ``MeanMetricWrapper`` with the mask as weights). The metrics with
        state see every position, as in Keras. ``head``: the output's metrics
        and mask (a model with heads).
        """
        mask = self.output_mask if head is None else head.mask
        metrics, weighted_metrics = (self.metrics, self.weighted_metrics) if head is None else (
            head.metrics, head.weighted_metrics)
        by_position = mask is not None or (sample_weight is not None and sample_weight.ndim > 1)
        plain_w = weighted_w = plain = None
        weighted = _weight_sum(sample_weight)
        if by_position:                 # each position's weight, divided by the positions of a sample
            positions = y_pred.shape[:-1]
            plain_w = (np.ones(positions) if mask is None else mask.astype(np.float64)) / np.prod(positions[1:])
            weighted_w = plain_w if sample_weight is None else plain_w * (
                sample_weight if sample_weight.ndim > 1 else sample_weight.reshape(-1, *(1,) * (len(positions) - 1)))
            plain, weighted = float(np.sum(plain_w)), float(np.sum(weighted_w))
        sums = []
        for group, weights, position_weights in ((metrics, None, plain_w),
                                                 (weighted_metrics, sample_weight, weighted_w)):
            for metric in group:
                if not isinstance(metric, Metric):          # a metric with state counts the batch itself
                    metric.update_state(y, y_pred, weights)
                    sums.append(0.0)
                elif by_position:
                    values = check_positions(metric.per_position(y, y_pred), y_pred.shape, metric.name)
                    sums.append(float(np.sum(values * position_weights)))
                else:
                    values = metric(y, y_pred)
                    sums.append(float(np.sum(values if weights is None else values * weights)))
        return sums, plain, weighted

    def _step(self, x, y, training, sample_weight=None):
        """One batch: forward (and backward + update when training). Returns loss and metric sums, and weights.

        The sums are ``sum_i w_i l_i`` (``sum_i l_i`` without weights), each
        metric's ``sum_i m_i``, and each weighted metric's ``sum_i w_i m_i``
        (:meth:`_metric_sums`, which gives the two weights the tracker divides
        the metrics' sums by). With an output mask, or sample weights a
        position, the loss's sum is ``N mean(w l)`` over all positions, with
        Keras's weights ``w`` (:meth:`Loss.position_weights
        <nnscratch.losses.Loss.position_weights>`).
        The loss sum includes ``len(x)`` times the layers' regularization
        penalty (so the batch's mean loss is the loss's mean plus the penalty,
        as Keras), computed from the weights the batch saw, before the update;
        the penalties' gradients are added after backward. Likewise for the
        activity penalties ``R(y) / N`` that the forward recorded (their
        gradients joined backward). Without
        regularizers and weights nothing of this runs.
        """
        if self.heads is not None:
            return self._heads_step(x, y, training, sample_weight)
        y_pred = self.forward(x, training=training)
        weights = self._position_weights(y, y_pred, sample_weight)
        if weights is None:
            losses = self._loss_and_backward(y, y_pred, backward=training, sample_weight=sample_weight)
            total = float(np.sum(losses if sample_weight is None else losses * sample_weight))
            loss_scale, _ = self.loss.reduction_scale(y_pred.shape, sample_weight)     # Keras's reduction
        else:
            total = num_samples(x) * float(np.mean(self._position_loss_and_backward(y, y_pred, training,
                                                                                      weights)))
            loss_scale, _ = self.loss.reduction_scale(y_pred.shape, weights)
        total *= loss_scale
        if self._activity_losses:               # the activity penalties R(y) / N of this forward
            total += num_samples(x) * self.activity_loss()
        regularized = self.regularized_layers()
        if regularized:
            total += num_samples(x) * sum(layer.regularization_loss() for layer in regularized)
            if training:
                for layer in regularized:
                    layer.add_regularization_gradients()
        if training:
            self.optimizer.apply_gradients(self.parameters())
        sums, plain, weighted = self._metric_sums(y, y_pred, sample_weight)
        return [total, *sums], plain, weighted

    def _log_names(self):
        if self.heads is not None:
            return self._heads_log_names()
        return ["loss"] + unique_metric_names(self.metrics, self.weighted_metrics)

    def _tracker(self):
        """Running means for the logs of :meth:`_log_names` (the weighted metrics weighted).

        The metrics with state are reset here: at each epoch's start, each
        evaluation or validation, and each ``train_on_batch``/``test_on_batch``
        call (as Keras 3, which has no ``reset_metrics=False``).
        """
        if self.heads is not None:
            return self._heads_tracker()
        names = self._log_names()
        stateful = {name: metric for name, metric in zip(names[1:], [*self.metrics, *self.weighted_metrics])
                    if not isinstance(metric, Metric)}
        return _RunningMeans(names, weighted=len(self.weighted_metrics), stateful=stateful)

    def _sample_weights(self, sample_weight, class_weight, y, samples, name="sample_weight"):
        """The checked weights of ``samples`` samples with targets ``y``: from ``sample_weight`` or
        ``class_weight`` (a checked dict), or None when neither is given. Both at once is an error, as Keras.
        A model with heads gets a list, one array (or None) an output."""
        if self.heads is not None:
            return self._heads_sample_weights(sample_weight, class_weight, y, samples, name)
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError("give class_weight or sample weights, not both (as Keras: \"You cannot "
                                 "`class_weight` and `sample_weight` at the same time\")")
            return class_weight_to_sample_weight(y, class_weight, self._positions())
        return None if sample_weight is None else check_sample_weight(sample_weight, samples, name, self._positions())

    def _positions(self) -> tuple:
        """The positions of a sample's output, ``(T,)`` for an output ``(N, T, K)``, ``()`` for ``(N, K)``."""
        return tuple(self.output_shape[1:-1])

    def _check_class_weight(self, class_weight):
        """``class_weight`` checked against the model's classes (its output units; 2 for a single unit)."""
        if class_weight is None:
            return None
        if self.heads is not None and self._heads_several():
            raise ValueError("class_weight is only supported for models with a single output (as Keras); give "
                             "sample_weight, one array an output, instead")
        units = (self._head_shapes()[0] if self.heads is not None else self.output_shape)[-1] if self.built else None
        return check_class_weight(class_weight, None if units is None or units == 1 else units)

    def _batches(self, x, y, batch_size, shuffle=False, generator=None, steps=None, name="x", sample_weight=None,
                 class_weight=None, weight_name="sample_weight"):
        """A batch source, with arrays checked once up front and other sources per batch.

        Arrays get their weights here (``sample_weight``, or ``class_weight``
        turned into one weight a sample); a Sequence or generator yields its
        own, and ``class_weight`` is applied batch by batch (:meth:`_checked`).
        """
        if is_batch_source(x):
            return adapt(x, y, batch_size, shuffle=shuffle, generator=generator, steps=steps,
                         sample_weight=sample_weight), True
        x, y = self._prepare_xy(x, y, name)
        weights = self._sample_weights(sample_weight, self._check_class_weight(class_weight), y, num_samples(x),
                                       weight_name)
        return adapt(x, y, batch_size, shuffle=shuffle, generator=generator, steps=steps, sample_weight=weights), False

    def _checked(self, xb, yb, wb, check, class_weight=None):
        """A batch ``(x, y, sample_weight)`` checked and converted, where its source was not checked up front."""
        if check:
            xb, yb = self._prepare_xy(xb, yb)
            wb = self._sample_weights(wb, class_weight, yb, num_samples(xb), "a batch's sample_weight")
        return xb, yb, wb

    def _callbacks_for(self, callbacks, verbose, batches):
        """The ``callbacks`` given to evaluate or predict as a CallbackList, or None when there are none.

        Their params are ``verbose``, ``epochs=1`` and ``steps`` (as Keras);
        no History and no ProgbarLogger are added (``verbose`` draws its own bar).
        """
        if not callbacks:
            return None
        return CallbackList(callbacks, model=self, verbose=verbose, epochs=1, steps=len(batches))

    @contextmanager
    def _inference_pass(self, batches):
        """Run the block as one pass of inference over ``batches``: the layers may lay out their weights once.

        The weights and layers stay fixed inside the block (no optimizer step;
        the callbacks of evaluate and predict must not change them either), so
        the forward plan is made once for the pass; each layer's
        :meth:`~nnscratch.layers.Layer.end_inference` runs even if the block fails.
        """
        samples = getattr(batches, "samples", None)
        try:
            for layer in self.layers:
                layer.begin_inference(samples)
            self._pass_plan = self.forward_plan(training=False)
            yield
        finally:
            self._pass_plan = None
            for layer in self.layers:
                layer.end_inference()

    def _train_epoch(self, batches, check, callbacks, class_weight=None):
        """One epoch of training: the running means of loss and metrics; calls the ``on_train_batch_*`` hooks.

        ``class_weight`` (checked) weighs the batches of a Sequence or generator (arrays have their weights already).
        """
        tracker = self._tracker()
        for step, (xb, yb, wb) in enumerate(batches.epoch()):
            callbacks.on_train_batch_begin(step)
            xb, yb, wb = self._checked(xb, yb, wb, check, class_weight)
            tracker.update(num_samples(xb), *self._step(xb, yb, True, wb))
            callbacks.on_train_batch_end(step, tracker.result())
            if self.stop_training:
                break
        return tracker.result()

    def _test_loop(self, batches, check, callbacks=None, verbose=0):
        """One epoch of evaluation (inside an inference pass): the means of loss and metrics.

        With ``callbacks`` (a CallbackList) the ``on_test_*`` hooks are called
        as Keras calls them: ``on_test_begin()``, ``on_test_batch_begin(step)``,
        ``on_test_batch_end(step, running means so far)`` and
        ``on_test_end(final logs)``; a callback may set
        ``model.stop_evaluating = True`` to stop after the current batch.
        """
        tracker = self._tracker()
        self.stop_evaluating = False
        if callbacks is not None:
            callbacks.on_test_begin()
        for step, (xb, yb, wb) in enumerate(_progress(batches, verbose, "evaluate")):
            if callbacks is not None:
                callbacks.on_test_batch_begin(step)
            xb, yb, wb = self._checked(xb, yb, wb, check)
            tracker.update(num_samples(xb), *self._step(xb, yb, False, wb))
            if callbacks is not None:
                callbacks.on_test_batch_end(step, tracker.result())
                if self.stop_evaluating:
                    break
        logs = tracker.result()
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    def _validate(self, batches, check, callbacks):
        """fit's validation after an epoch: the ``val_*`` logs.

        Each validation reads its data from the start (``validation_steps``
        batches of it, if given), and fit's callbacks get the ``on_test_*``
        hooks, as in Keras.
        """
        batches.restart()
        with self._inference_pass(batches):
            logs = self._test_loop(batches, check, callbacks)
        return {f"val_{name}": value for name, value in logs.items()}

    # ------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, seed=None,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, initial_epoch=0):
        """Train for ``epochs`` epochs; return the History (``.history[key]`` per epoch).

        ``seed`` fixes this fit's shuffling and dropout masks. ``shuffle``
        reshuffles arrays each pass and, for a Sequence, the order of its
        batches (as Keras 3); a generator is read as it comes.
        ``validation_split`` holds out the *last* fraction of ``x`` and ``y``
        (and ``sample_weight``) before shuffling, as Keras. ``validation_data``
        is ``(x_val, y_val)``, ``(x_val, y_val, sample_weight_val)``, a Sequence
        or a generator.

        ``sample_weight`` (arrays only, shape ``(N,)`` or ``(N, 1)``, finite and
        >= 0) weighs each sample's loss: a batch's loss is ``sum_i w_i l_i / N``
        with ``N`` the batch size, as Keras's ``"sum_over_batch_size"``. A
        Sequence or generator may yield ``(x, y, sample_weight)`` batches
        instead. ``class_weight`` (``{class index: weight}``, 1 for a class
        left out) gives each sample its class's weight: the class is the
        arg-max of a target row of several columns, else the rounded target
        (integer labels, 0/1 targets of a single sigmoid unit), as Keras. It
        cannot be combined with sample weights, and does not weigh the
        validation. The logged ``metrics`` stay unweighted; ``compile``'s
        ``weighted_metrics`` are weighted (as Keras).

        ``steps_per_epoch`` makes an epoch that many batches, for arrays and
        Sequences too: the next epoch goes on where the last one stopped, and
        a new (reshuffled) pass starts once the data are used up (as Keras; see
        :class:`~nnscratch.models.data_adapter.FiniteBatches`). With
        ``steps_per_epoch`` and no ``batch_size``, arrays are cut into
        ``ceil(samples / steps_per_epoch)``-sample batches, as Keras does.
        ``validation_steps`` limits each validation to its first batches.
        """
        self._require_compiled()
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a whole number >= 0, got {epochs!r}")   # 0 trains nothing, as Keras
        if validation_data is not None:
            validation_data = _unpack_validation_data(validation_data)
        check_class_weight(class_weight)
        if class_weight is not None and sample_weight is not None:
            raise ValueError("give class_weight or sample_weight, not both (as Keras: \"You cannot `class_weight` "
                             "and `sample_weight` at the same time\")")
        shuffle_rng = rng.generator_from_seed(seed, 0)
        if seed is not None:
            for i, layer in enumerate(self.layers):
                if hasattr(layer, "reseed"):
                    layer.reseed(rng.generator_from_seed(seed, 1, i))
        if validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
            if is_batch_source(x):
                raise ValueError("validation_split needs arrays; pass validation_data for a Sequence or generator")
            if validation_data is not None:
                raise ValueError("give either validation_split or validation_data, not both")
            x, y = self._prepare_xy(x, y)
            if sample_weight is not None:
                sample_weight = self._sample_weights(sample_weight, None, y, num_samples(x))
            split = int(np.floor(num_samples(x) * (1.0 - validation_split)))
            validation_data = (take(x, slice(split, None)), take(y, slice(split, None)),
                               None if sample_weight is None else take(sample_weight, slice(split, None)))
            x, y = take(x, slice(split)), take(y, slice(split))
            sample_weight = None if sample_weight is None else take(sample_weight, slice(split))
        train, check_train = self._batches(x, y, batch_size, shuffle, shuffle_rng, steps_per_epoch,
                                           sample_weight=sample_weight, class_weight=class_weight)
        batch_class_weight = self._check_class_weight(class_weight) if check_train else None
        val = None
        if validation_data is not None:
            val_x, val_y, val_weight = validation_data
            val = self._batches(val_x, val_y, validation_batch_size or batch_size, steps=validation_steps,
                                name="validation x", sample_weight=val_weight,
                                weight_name="validation_data's sample_weight")
        callback_list = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                     verbose=verbose, epochs=epochs, steps=len(train))
        self.stop_training = False
        callback_list.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            logs = self._train_epoch(train, check_train, callback_list, batch_class_weight)
            if val is not None:
                logs.update(self._validate(*val, callback_list))
            logs["learning_rate"] = float(self.optimizer.learning_rate)
            callback_list.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        if epochs > 0:       # an optimizer with use_ema: the weights become their averages (as Keras's fit)
            self.optimizer.finalize_variable_values([p for p in self.parameters() if p.trainable])
        callback_list.on_train_end(logs)
        return callback_list.history

    # -------------------------------------------------------------- evaluate
    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None, steps=None, callbacks=None,
                 return_dict=False):
        """Loss and metrics over the data: a scalar loss, or ``[loss, *metrics, *weighted_metrics]``.

        ``sample_weight`` (arrays only; a Sequence or generator may yield
        ``(x, y, sample_weight)`` batches) weighs the loss as in :meth:`fit`
        (``sum_i w_i l_i / N``) and the weighted metrics. With ``steps`` only
        the first ``steps`` batches are used (and without ``batch_size`` arrays
        are cut into ``steps`` batches, as Keras). ``callbacks`` (a Callback or
        a list) get the ``on_test_*`` hooks, as Keras calls them:
        ``on_test_batch_end`` with the running means so far, ``on_test_end``
        with the results. They must not change the weights.
        """
        self._require_compiled()
        batches, check = self._batches(x, y, batch_size, steps=steps, sample_weight=sample_weight)
        callback_list = self._callbacks_for(callbacks, verbose, batches)
        with self._inference_pass(batches):
            logs = self._test_loop(batches, check, callback_list, verbose)
        return self._format(logs, return_dict)

    def _format(self, logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # --------------------------------------------------------------- predict
    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None):
        """Outputs for every sample of ``x`` (an array, a Sequence or a generator), batch by batch.

        ``batch_size`` None means 32 (with ``steps``: arrays cut into
        ``steps`` batches, as Keras). With ``steps`` only the first ``steps``
        batches are predicted. ``callbacks`` (a Callback or a list) get the
        ``on_predict_*`` hooks, as Keras calls them: ``on_predict_batch_end``
        with ``logs={"outputs": the batch's outputs}``. They must not change
        the weights.
        """
        if is_batch_source(x):
            batches, check = adapt(x, None, batch_size, steps=steps), True
        else:
            batches, check = adapt(self._prepare_x(x), None, batch_size, steps=steps), False
        callback_list = self._callbacks_for(callbacks, verbose, batches)
        with self._inference_pass(batches):
            if callback_list is None:
                outputs = self._predict_batches(batches, check, verbose)
            else:
                outputs = self._predict_batches_with_callbacks(batches, check, verbose, callback_list)
        if self._output_indices is not None:          # several outputs: one array each
            return [np.concatenate(parts, axis=0) for parts in zip(*outputs)]
        return np.concatenate(outputs, axis=0)

    def _predict_batches(self, batches, check, verbose):
        """The outputs of every batch: predict's loop without callbacks, which does nothing else per batch."""
        outputs = []
        for xb, _, _ in _progress(batches, verbose, "predict"):
            xb = self._prepare_x(xb) if check else xb
            outputs.append(self.forward(xb, training=False))
        return outputs

    def _predict_batches_with_callbacks(self, batches, check, verbose, callbacks):
        """:meth:`_predict_batches` calling the ``on_predict_*`` hooks; a callback may set ``model.stop_predicting``."""
        self.stop_predicting = False
        callbacks.on_predict_begin()
        outputs = []
        for step, (xb, _, _) in enumerate(_progress(batches, verbose, "predict")):
            callbacks.on_predict_batch_begin(step)
            xb = self._prepare_x(xb) if check else xb
            outputs.append(self.forward(xb, training=False))
            callbacks.on_predict_batch_end(step, {"outputs": outputs[-1]})
            if self.stop_predicting:
                break
        callbacks.on_predict_end()
        return outputs

    # ------------------------------------------------------------ one batch
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient step on one batch; returns the loss (and metrics) on that batch.

        ``sample_weight`` or ``class_weight`` weigh the samples as in :meth:`fit`.
        """
        self._require_compiled()
        x, y = self._prepare_xy(x, y)
        weights = self._sample_weights(sample_weight, self._check_class_weight(class_weight), y, num_samples(x))
        tracker = self._tracker()          # made (and the metrics with state reset) before the step updates them
        return self._batch_logs(tracker, self._step(x, y, True, weights), num_samples(x), return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch, without training; ``sample_weight`` as in :meth:`evaluate`."""
        self._require_compiled()
        x, y = self._prepare_xy(x, y)
        weights = self._sample_weights(sample_weight, None, y, num_samples(x))
        tracker = self._tracker()
        return self._batch_logs(tracker, self._step(x, y, False, weights), num_samples(x), return_dict)

    def _batch_logs(self, tracker, step, samples, return_dict):
        tracker.update(samples, *step)
        return self._format(tracker.result(), return_dict)
