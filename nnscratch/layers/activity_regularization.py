"""ActivityRegularization: the identity, with an L1/L2 penalty on what passes through."""

from nnscratch.layers.identity import Identity
from nnscratch.regularizers import L1L2

__all__ = ["ActivityRegularization"]


class ActivityRegularization(Identity):
    r"""``y = x``, and the penalty :math:`R(y) = l_1 \sum |y| + l_2 \sum y^2` over a batch, divided by ``N``.

    As Keras's layer, this is an identity layer whose ``activity_regularizer``
    is ``L1L2(l1, l2)``: the model adds :math:`R(y)/N` to the loss and
    :math:`R'(y)/N = (l_1\,\mathrm{sign}(y) + 2 l_2\, y)/N` to the gradient
    that reaches this layer, whose own backward passes the sum on unchanged.
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        if "activity_regularizer" in kwargs:
            raise TypeError("ActivityRegularization takes l1 and l2, not activity_regularizer")
        regularizer = L1L2(l1=l1, l2=l2)
        super().__init__(activity_regularizer=regularizer, **kwargs)
        self.l1, self.l2 = regularizer.l1, regularizer.l2

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}
