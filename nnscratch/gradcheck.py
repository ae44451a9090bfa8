"""Check hand-written gradients against numerical ones.

For a scalar function ``L`` of an array ``a``, the central difference

.. math:: \\frac{\\partial L}{\\partial a_i} \\approx \\frac{L(a + h e_i) - L(a - h e_i)}{2h}

is accurate to :math:`O(h^2)`, and rounding adds an error of about
``1e-16 * |L| / h``. In float64 with the default ``h = 1e-5`` a correct
backward pass agrees with it to a relative error below 1e-6 (usually far
below); a wrong one is typically off by 1e-2 or more. Piecewise-linear layers
(ReLU, max pooling) are exact between their kinks, so a larger ``h`` suits
them, as long as no input lies within ``h`` of a kink or a tie.

The scalar used for a layer or model output ``y`` is a *random projection*
``L = sum(R * y)`` with a fixed random ``R``: a plain ``sum(y)`` would hide
bugs in layers whose outputs always sum to a constant (batch normalisation,
softmax). Layers that draw random numbers (Dropout) get the same draws on
every evaluation.

Layers with weight regularizers (``Dense(..., kernel_regularizer="l2")``)
add their penalty to the checked loss, ``L = sum(R * y) + sum(penalties)``,
as training adds it to the loss: the analytic side is backward's gradient
plus :meth:`~nnscratch.layers.Layer.add_regularization_gradients`, so the
penalties' gradients are checked too. (An L1 penalty has a kink at 0: keep
weights more than ``h`` away from 0.) :func:`check_model` also adds the
activity penalties that each forward of the model records
(:meth:`~nnscratch.Model.activity_loss`), whose gradients the model's
backward adds; keep those layers' outputs away from 0 for L1 likewise.

>>> from nnscratch.layers import Dense
>>> report = check_layer(Dense(3, activation="tanh"), input_shape=(4, 5))
>>> print(report)             # doctest: +SKIP
>>> report.max_error < 1e-6
True
"""

import copy
from dataclasses import dataclass, field

import numpy as np

from nnscratch.config import floatx, set_floatx

__all__ = ["numerical_gradient", "relative_error", "TensorCheck", "GradcheckReport", "check_layer", "check_model"]


def numerical_gradient(f, array: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to ``array``.

    ``f`` takes no arguments: it reads ``array``, which is changed in place
    one entry at a time and restored, also when ``f`` raises.
    """
    grad = np.zeros_like(array, dtype=np.float64)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        try:
            flat[i] = original + h
            plus = f()
            flat[i] = original - h
            minus = f()
        finally:
            flat[i] = original
        grad_flat[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Elementwise ``|a - n| / max(|a|, |n|, s)``.

    ``s`` keeps an entry whose true value is near 0 from being judged against
    its own rounding noise. By default it is 1/1000 of the largest entry of
    ``a`` and ``n`` (and at least 1e-12); :func:`check_layer` and
    :func:`check_model` pass ``scale`` = 1/1000 of the largest gradient of the
    whole check, so that a tensor whose true gradient is exactly 0 (a bias
    just before batch normalisation, which subtracts any shift again) reads
    as ~1e-8, not 1.
    """
    if scale is None:
        scale = 1e-3 * _largest(analytic, numeric)
    scale = max(scale, 1e-12)
    return np.abs(analytic - numeric) / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), scale)


def _largest(*arrays) -> float:
    return max((float(np.abs(a).max(initial=0)) for a in arrays), default=0.0)


@dataclass
class TensorCheck:
    """Result for one tensor: worst relative error and where it occurs."""

    name: str
    shape: tuple
    max_error: float
    worst_index: tuple
    analytic: float
    numeric: float


@dataclass
class GradcheckReport:
    """Per-tensor results of a gradient check; ``print`` it for a readable table."""

    checks: list = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return max((c.max_error for c in self.checks), default=0.0)

    def passed(self, tolerance: float = 1e-6) -> bool:
        return self.max_error < tolerance

    def __str__(self) -> str:
        lines = [f"{'tensor':<28}{'shape':<20}{'max rel. error':>16}  worst at  (analytic vs numeric)"]
        for c in self.checks:
            lines.append(f"{c.name:<28}{str(c.shape):<20}{c.max_error:>16.3e}  {c.worst_index}  "
                         f"({c.analytic:.6g} vs {c.numeric:.6g})")
        return "\n".join(lines)


def _compare(name, analytic, numeric, scale) -> TensorCheck:
    errors = relative_error(analytic, numeric, scale)
    worst = np.unravel_index(np.argmax(errors), errors.shape) if errors.size else ()
    return TensorCheck(name, analytic.shape, float(errors.max(initial=0.0)), tuple(int(i) for i in worst),
                       float(analytic[worst]) if errors.size else 0.0, float(numeric[worst]) if errors.size else 0.0)


def _with_sublayers(layers):
    """``layers`` and, after each, the layers it runs inside itself (a wrapper's), depth first."""
    for layer in layers:
        yield layer
        yield from _with_sublayers(layer.sublayers())


def _saved_state(layers):
    """Return a function that puts back what a check's forward passes change.

    That is each layer's buffers (batch normalisation's moving statistics,
    which every training-mode forward updates), its random generator
    (Dropout's) and its ``skip_input_gradient`` switch (a model's training
    step sets it on its lowest layer; a check wants the input gradient).
    """
    buffers = [(b, b.copy()) for layer in layers for b in layer.buffers.values()]
    generators = [(layer, copy.deepcopy(layer.generator.bit_generator.state)) for layer in _with_sublayers(layers)
                  if hasattr(layer, "generator")]
    switches = [(layer, layer.skip_input_gradient) for layer in layers]

    def restore(switches_too=True):
        for buffer, saved in buffers:
            buffer[...] = saved
        for layer, state in generators:
            layer.generator.bit_generator.state = copy.deepcopy(state)
        for layer, skip in switches if switches_too else ():
            layer.skip_input_gradient = skip

    return restore


def _check(forward, backward, x, layers, seed, h, param_prefix, activity_loss=lambda: 0.0):
    """Shared core: compare backward's gradients with central differences of sum(R * forward(x)) + penalties.

    ``x`` is one array, or a list of arrays for a layer with several inputs
    (a merge layer): then ``backward`` returns a list of gradients, one per
    input, checked as ``input_0``, ``input_1``, ... ``activity_loss()``: the
    activity penalties that the forward just run recorded (a model's).

    Every forward starts from the state the layers had before the check
    (same buffers, same random draws), and the check leaves them so.
    """
    several = isinstance(x, list)
    inputs = x if several else [x]
    restore = _saved_state(layers)
    try:
        for layer in layers:
            layer.skip_input_gradient = False
        projection = np.random.default_rng(seed).standard_normal(forward(x).shape)

        def loss():
            restore(switches_too=False)
            projected = float(np.sum(projection * forward(x)))
            return projected + activity_loss() + sum(layer.regularization_loss() for layer in layers)

        restore(switches_too=False)
        forward(x)
        grad_x = backward(projection)
        if grad_x is None:
            raise TypeError("backward returned None where dL/dx was expected: a layer's backward(grad) must "
                            "return the gradient with respect to its input")
        grads_x = list(grad_x) if several else [grad_x]
        if len(grads_x) != len(inputs):
            raise TypeError(f"backward returned {len(grads_x)} input gradients for {len(inputs)} inputs")
        for layer in layers:  # + dR/dw of the layers' regularizers, as a training step adds them
            layer.add_regularization_gradients()
        names = [f"input_{k}" for k in range(len(inputs))] if several else ["input"]
        analytic = grads_x
        for layer in layers:
            for name, p in layer.params.items():
                names.append(f"{param_prefix(layer)}{name}")
                analytic.append(p.grad.copy())
        numeric = [numerical_gradient(loss, array, h) for array in inputs]
        numeric += [numerical_gradient(loss, p.value, h) for layer in layers for p in layer.params.values()]
    finally:
        restore()
    scale = 1e-3 * _largest(*analytic, *numeric)
    return GradcheckReport([_compare(name, a, n, scale) for name, a, n in zip(names, analytic, numeric)])


def _require_float64(layers):
    for layer in layers:
        for p in layer.params.values():
            if p.value.dtype != np.float64:
                raise TypeError(f"gradcheck needs float64 parameters; layer {layer.name!r} has {p.value.dtype} "
                                "(build it after nnscratch.set_floatx('float64'))")


def check_layer(layer, x=None, input_shape=None, training=True, seed=0, h=1e-5, mask=None) -> GradcheckReport:
    """Gradient-check one layer's input and parameter gradients in float64.

    Parameters
    ----------
    layer : Layer
        Built or not; if not, it is built in float64 for ``x``'s shape.
    x : ndarray or list of ndarray, optional
        The input batch (converted to float64). Default: standard normal of
        ``input_shape``. A merge layer takes a list of batches (one per
        input); its report then has one entry per input, ``input_0``, ...
    input_shape : tuple or list of tuple, optional
        Batch shape, including the batch axis (``(4, 5)``: 4 samples of 5
        features), used when ``x`` is not given; a list of them for a merge layer.
    training : bool
        Check the training-mode pass (batch statistics, dropout masks).
    mask : ndarray of bool, optional
        A fixed mask (N, T) for a layer that reads one (a recurrent layer,
        ``GlobalAveragePooling1D``; :mod:`nnscratch.models.masking`), passed
        to every forward: ``layer.forward(x, training, mask=mask)``; for a
        layer called on a list (``Attention``, ``Maximum``), a list of masks
        (None for an input without one).

    The checked loss is ``sum(R * y)`` plus the layer's regularization
    penalty (:meth:`~nnscratch.layers.Layer.regularization_loss`, 0 without
    regularizers); the parameters' analytic gradients are backward's plus
    the penalty's (:meth:`~nnscratch.layers.Layer.add_regularization_gradients`).

    The layer is left as it was: parameter values, buffers (moving
    statistics), random generator; only the parameters' ``grad`` hold the
    analytic gradients afterwards.
    """
    several = getattr(layer, "takes_list", False)
    if x is None:
        shapes = list(input_shape) if several and input_shape is not None else [input_shape]
        if any(shape is None or len(shape) < 2 for shape in shapes):
            raise ValueError("check_layer needs x or input_shape, the shape of a whole batch with the batch axis "
                             f"first, such as (4, 5) for 4 samples of 5 features (a list of them for a merge "
                             f"layer); got input_shape={input_shape!r}")
        rng = np.random.default_rng(seed + 1)
        x = [rng.standard_normal(shape) for shape in shapes]
        x = x if several else x[0]
    x = [np.array(array, dtype=np.float64) for array in x] if several else np.array(x, dtype=np.float64)
    if not layer.built:
        previous = floatx()
        set_floatx("float64")
        try:
            layer.build([array.shape[1:] for array in x] if several else x.shape[1:])
        finally:
            set_floatx(previous)
    _require_float64([layer])
    if mask is not None and not layer.uses_mask:
        raise TypeError(f"layer {layer.name!r} ({type(layer).__name__}) reads no mask; check it without mask=")
    if mask is not None:        # a merge layer's: a list, a mask or None an input
        mask = [None if m is None else np.asarray(m) for m in mask] if several else np.asarray(mask)
    masked = {} if mask is None else {"mask": mask}

    def forward(inputs):
        return layer.forward(inputs, training=training, **masked)

    return _check(forward, layer.backward, x, [layer], seed, h, lambda _: "")


def check_model(model, x, training=True, seed=0, h=1e-5) -> GradcheckReport:
    """Gradient-check a whole model (built in float64) from its output back to its input.

    Uses the random projection of the model's output plus every layer's
    regularization penalty and the activity penalties as the loss, so every
    layer's backward is exercised, softmax included, and every regularizer's
    gradient. A model with several inputs takes a list of batches, one per
    input (checked as ``input_0``, ``input_1``, ...). The outputs of a model
    with several are flattened side by side (one projection of them all), and
    backward gets each output's slice of the projection.
    """
    several = len(model.input_layers) > 1
    x = [np.array(array, dtype=np.float64) for array in x] if several else np.array(x, dtype=np.float64)
    _require_float64(model.layers)
    if len(model.output_layers) == 1:
        def forward(inputs):
            return model.forward(inputs, training=training)

        backward = model.backward
    else:
        shapes = []

        def forward(inputs):
            outputs = model.forward(inputs, training=training)
            shapes[:] = [output.shape for output in outputs]
            return np.concatenate([output.reshape(len(output), -1) for output in outputs], axis=1)

        def backward(grad):
            ends = np.cumsum([int(np.prod(shape[1:])) for shape in shapes])[:-1]
            return model.backward([part.reshape(shape) for part, shape in zip(np.split(grad, ends, axis=1), shapes)])

    return _check(forward, backward, x, model.layers, seed, h, lambda layer: f"{layer.name}/", model.activity_loss)
