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
    """Central-difference gradient of the scalar ``f()`` with respect to ``array`` (changed in place, restored)."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + h
        plus = f()
        flat[i] = original - h
        minus = f()
        flat[i] = original
        grad_flat[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """Elementwise ``|a - n| / max(|a|, |n|, s)``.

    ``s`` is 1/1000 of the tensor's largest gradient entry (and at least
    1e-12), so a near-zero entry is judged against the tensor's scale
    instead of against its own rounding noise.
    """
    scale = max(1e-3 * max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0)), 1e-12)
    return np.abs(analytic - numeric) / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), scale)


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


def _compare(name, analytic, numeric) -> TensorCheck:
    errors = relative_error(analytic, numeric)
    worst = np.unravel_index(np.argmax(errors), errors.shape) if errors.size else ()
    return TensorCheck(name, analytic.shape, float(errors.max(initial=0.0)), tuple(int(i) for i in worst),
                       float(analytic[worst]) if errors.size else 0.0, float(numeric[worst]) if errors.size else 0.0)


def _freeze_randomness(layers):
    """Return a function that rewinds every layer's random generator to its current state."""
    saved = [(layer, copy.deepcopy(layer.generator.bit_generator.state)) for layer in layers
             if hasattr(layer, "generator")]

    def rewind():
        for layer, state in saved:
            layer.generator.bit_generator.state = copy.deepcopy(state)

    return rewind


def _check(forward, backward, x, layers, seed, h, param_prefix):
    """Shared core: compare backward's gradients with central differences of sum(R * forward(x))."""
    generator = np.random.default_rng(seed)
    rewind = _freeze_randomness(layers)
    rewind()
    projection = generator.standard_normal(forward(x).shape)

    def loss():
        rewind()
        return float(np.sum(projection * forward(x)))

    rewind()
    forward(x)
    grad_x = backward(projection)
    report = GradcheckReport([_compare("input", grad_x, numerical_gradient(loss, x, h))])
    analytic = {(layer.name, name): p.grad.copy() for layer in layers for name, p in layer.params.items()}
    for layer in layers:
        for name, p in layer.params.items():
            numeric = numerical_gradient(loss, p.value, h)
            report.checks.append(_compare(f"{param_prefix(layer)}{name}", analytic[(layer.name, name)], numeric))
    return report


def _require_float64(layers):
    for layer in layers:
        for p in layer.params.values():
            if p.value.dtype != np.float64:
                raise TypeError(f"gradcheck needs float64 parameters; layer {layer.name!r} has {p.value.dtype} "
                                "(build it after nnscratch.set_floatx('float64'))")


def check_layer(layer, x=None, input_shape=None, training=True, seed=0, h=1e-5) -> GradcheckReport:
    """Gradient-check one layer's input and parameter gradients in float64.

    Parameters
    ----------
    layer : Layer
        Built or not; if not, it is built in float64 for ``x``'s shape.
    x : ndarray, optional
        The input batch (converted to float64). Default: standard normal of ``input_shape``.
    input_shape : tuple, optional
        Batch shape, including the batch axis, used when ``x`` is not given.
    training : bool
        Check the training-mode pass (batch statistics, dropout masks).
    """
    if x is None:
        x = np.random.default_rng(seed + 1).standard_normal(input_shape)
    x = np.array(x, dtype=np.float64)
    if not layer.built:
        previous = floatx()
        set_floatx("float64")
        try:
            layer.build(x.shape[1:])
        finally:
            set_floatx(previous)
    _require_float64([layer])

    def forward(inputs):
        return layer.forward(inputs, training=training)

    return _check(forward, layer.backward, x, [layer], seed, h, lambda _: "")


def check_model(model, x, training=True, seed=0, h=1e-5) -> GradcheckReport:
    """Gradient-check a whole model (built in float64) from its output back to its input.

    Uses the random projection of the model's output as the loss, so every
    layer's backward is exercised, softmax included.
    """
    x = np.array(x, dtype=np.float64)
    _require_float64(model.layers)

    def forward(inputs):
        return model.forward(inputs, training=training)

    return _check(forward, model.backward, x, model.layers, seed, h, lambda layer: f"{layer.name}/")
