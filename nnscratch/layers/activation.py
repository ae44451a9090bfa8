"""Stand-alone activation layers: Activation(name) and ReLU()."""

from nnscratch.layers.activated import ActivatedLayer

__all__ = ["Activation", "ReLU"]


class Activation(ActivatedLayer):
    r"""Apply an activation function: ``y = f(x)``, any input shape.

    ``f`` is one of ``"relu"`` (:math:`\max(x, 0)`), ``"sigmoid"``
    (:math:`1/(1+e^{-x})`), ``"tanh"``, ``"softmax"`` (over the last axis) or
    ``"linear"``. Backward multiplies by the derivative, computed from the
    output: relu :math:`[y>0]`, sigmoid :math:`y(1-y)`, tanh :math:`1-y^2`;
    softmax :math:`y \odot (g - \langle g, y\rangle)`.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(activation=activation, **kwargs)

    def forward(self, x, training=False):
        self.check_input(x)
        return self._activate(x.copy(), None, training)

    def backward_from_preactivation(self, grad_z):
        return grad_z


class ReLU(Activation):
    """Rectified linear unit, ``y = max(x, 0)``; the gradient at exactly 0 is taken as 0."""

    def __init__(self, **kwargs):
        super().__init__("relu", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config
