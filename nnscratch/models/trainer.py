"""The training loop shared by :class:`Model` and :class:`Sequential`.

One training step is the whole of backpropagation::

    y_pred = model.forward(x, training=True)      # every layer caches what it needs
    grad = loss.gradient(y, y_pred)                # dL/dy_pred
    model.backward(grad)                           # every layer fills its params' .grad
    optimizer.apply_gradients(model.parameters())  # only here do weights change

When the last layer is a softmax and the loss a cross-entropy, the loss
gives dL/dlogits = (p - t)/N directly (stable for any logits) and backward
starts just below the softmax.
"""

from contextlib import contextmanager

import numpy as np
from tqdm.auto import tqdm

from nnscratch import rng
from nnscratch.callbacks import CallbackList
from nnscratch.layers.activated import ActivatedLayer
from nnscratch.models.data_adapter import adapt, check_features, is_batch_source

__all__ = ["Trainer"]


class _RunningMeans:
    """Sample-weighted running means of the loss and metrics over one epoch."""

    def __init__(self, names):
        self.names = names
        self.sums = dict.fromkeys(names, 0.0)
        self.count = 0

    def update(self, n, values):
        self.count += n
        for name, value in zip(self.names, values):
            self.sums[name] += value

    def result(self) -> dict:
        return {name: self.sums[name] / max(self.count, 1) for name in self.names}


def _progress(batches, verbose, desc):
    """One epoch of ``batches``, through a tqdm progress bar when ``verbose`` (a hidden bar costs ~30 us a pass)."""
    if not verbose:
        return batches.epoch()
    return tqdm(batches.epoch(), total=len(batches), desc=desc)


class Trainer:
    """fit / evaluate / predict / train_on_batch / test_on_batch, as Keras."""

    # ---------------------------------------------------------------- checks
    def _require_compiled(self):
        if self.loss is None:
            raise ValueError(f"model {self.name!r} must be compiled before training or evaluation: call compile()")

    def _prepare_x(self, x, name="x"):
        x = check_features(x, name)
        if not self.built:
            self.build(x.shape[1:])
        self.check_input(x)
        return x

    def _prepare_xy(self, x, y, name="x"):
        x = self._prepare_x(x, name)
        if y is None:
            raise ValueError(f"targets y are required together with {name}")
        if len(x) != len(y):
            raise ValueError(f"{name} and y must have the same number of samples, got {len(x)} and {len(y)}")
        return x, self.loss.prepare_targets(y, self.output_shape[1:])

    def _fused_softmax(self) -> bool:
        last = self.layers[-1] if self.layers else None
        return (self.loss.fuses_softmax and isinstance(last, ActivatedLayer)
                and last.activation == "softmax" and len(last.output_shape) == 2)

    # ----------------------------------------------------------------- steps
    def _loss_and_backward(self, y, y_pred, backward):
        """Per-sample losses; with ``backward`` also run backpropagation."""
        if self._fused_softmax():
            last = self.layers[-1]
            losses, grad_logits = self.loss.softmax_fused(y, last.logits)
            if backward:
                lowest = self._lowest_trainable_layer()
                last.skip_input_gradient = lowest is None or lowest == len(self.layers) - 1
                self.backward(last.backward_from_preactivation(grad_logits), from_layer=len(self.layers) - 1,
                              input_gradient=False)
            return losses
        if backward:
            self.backward(self.loss.gradient(y, y_pred).astype(y_pred.dtype, copy=False), input_gradient=False)
        return self.loss.per_sample(y, y_pred)

    def _step(self, x, y, training):
        """One batch: forward (and backward + update when training). Returns loss and metric sums."""
        y_pred = self.forward(x, training=training)
        losses = self._loss_and_backward(y, y_pred, backward=training)
        if training:
            self.optimizer.apply_gradients(self.parameters())
        return [float(np.sum(losses))] + [float(np.sum(m(y, y_pred))) for m in self.metrics]

    def _log_names(self):
        return ["loss"] + [m.name for m in self.metrics]

    def _batches(self, x, y, batch_size, shuffle=False, generator=None, steps=None, name="x"):
        """A batch source, with arrays checked once up front and other sources per batch."""
        batch_size = 32 if batch_size is None else batch_size
        if is_batch_source(x):
            return adapt(x, y, batch_size, steps=steps), True
        x, y = self._prepare_xy(x, y, name)
        return adapt(x, y, batch_size, shuffle=shuffle, generator=generator), False

    def _checked(self, xb, yb, check):
        if check:
            xb, yb = self._prepare_xy(xb, yb)
        return xb, yb

    @contextmanager
    def _inference_pass(self, batches):
        """Run the block as one pass of inference over ``batches``: the layers may lay out their weights once.

        The weights and layers stay fixed inside the block (no optimizer step,
        no callback), so the forward plan is made once for the pass; each
        layer's :meth:`~nnscratch.layers.Layer.end_inference` runs even if the
        block fails.
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

    def _run_epoch(self, batches, check, training, callbacks=None):
        tracker = _RunningMeans(self._log_names())
        for step, (xb, yb) in enumerate(batches.epoch()):
            if callbacks is not None:
                callbacks.on_train_batch_begin(step)
            xb, yb = self._checked(xb, yb, check)
            tracker.update(len(xb), self._step(xb, yb, training))
            if callbacks is not None:
                callbacks.on_train_batch_end(step, tracker.result())
                if self.stop_training:
                    break
        return tracker.result()

    # ------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, seed=None, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, initial_epoch=0):
        """Train for ``epochs`` epochs; return the History (``.history[key]`` per epoch).

        ``seed`` fixes this fit's shuffling and dropout masks. ``validation_split``
        holds out the *last* fraction of ``x`` and ``y`` before shuffling, as Keras.
        """
        self._require_compiled()
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
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
            split = int(np.floor(len(x) * (1.0 - validation_split)))
            x, y, validation_data = x[:split], y[:split], (x[split:], y[split:])
        train, check_train = self._batches(x, y, batch_size, shuffle, shuffle_rng, steps_per_epoch)
        val = None
        if validation_data is not None:
            val_x, val_y = (validation_data, None) if is_batch_source(validation_data) else validation_data[:2]
            val = self._batches(val_x, val_y, validation_batch_size or batch_size, steps=validation_steps,
                                name="validation x")
        callback_list = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                     verbose=verbose, epochs=epochs, steps=len(train))
        self.stop_training = False
        callback_list.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            logs = self._run_epoch(train, check_train, training=True, callbacks=callback_list)
            if val is not None:
                with self._inference_pass(val[0]):
                    val_logs = self._run_epoch(*val, training=False)
                logs.update({f"val_{name}": value for name, value in val_logs.items()})
            logs["learning_rate"] = float(self.optimizer.learning_rate)
            callback_list.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        callback_list.on_train_end(logs)
        return callback_list.history

    # -------------------------------------------------------------- evaluate
    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, steps=None, return_dict=False):
        """Loss and metrics over the data: a scalar loss, or ``[loss, *metrics]`` with metrics."""
        self._require_compiled()
        batches, check = self._batches(x, y, batch_size, steps=steps)
        tracker = _RunningMeans(self._log_names())
        with self._inference_pass(batches):
            for xb, yb in _progress(batches, verbose, "evaluate"):
                xb, yb = self._checked(xb, yb, check)
                tracker.update(len(xb), self._step(xb, yb, training=False))
        return self._format(tracker.result(), return_dict)

    def _format(self, logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0, steps=None):
        """Outputs for every sample of ``x`` (an array, a Sequence or a generator), batch by batch."""
        if is_batch_source(x):
            batches = adapt(x, None, batch_size, steps=steps)
            check = True
        else:
            batches, check = adapt(self._prepare_x(x), None, batch_size), False
        outputs = []
        with self._inference_pass(batches):
            for xb, _ in _progress(batches, verbose, "predict"):
                xb = self._prepare_x(xb) if check else xb
                outputs.append(self.forward(xb, training=False))
        return np.concatenate(outputs, axis=0)

    # ------------------------------------------------------------ one batch
    def train_on_batch(self, x, y, return_dict=False):
        """One gradient step on one batch; returns the loss (and metrics) on that batch."""
        self._require_compiled()
        x, y = self._prepare_xy(x, y)
        values = np.array(self._step(x, y, training=True)) / len(x)
        return self._format(dict(zip(self._log_names(), values.tolist())), return_dict)

    def test_on_batch(self, x, y, return_dict=False):
        """Loss (and metrics) on one batch, without training."""
        self._require_compiled()
        x, y = self._prepare_xy(x, y)
        values = np.array(self._step(x, y, training=False)) / len(x)
        return self._format(dict(zip(self._log_names(), values.tolist())), return_dict)
