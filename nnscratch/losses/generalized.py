r"""The generalized cross-entropy of Zhang and Sabuncu (2018), for noisy labels (Keras's loss of that name)."""

import numpy as np

from nnscratch.losses.base import DEFAULT_REDUCTION, _check_real
from nnscratch.losses.crossentropy import SparseCategoricalCrossentropy

__all__ = ["CategoricalGeneralizedCrossEntropy"]


class CategoricalGeneralizedCrossEntropy(SparseCategoricalCrossentropy):
    r"""Per sample :math:`\ell = (1 - p_y^{\,q}) / q`, :math:`p_y` the predicted probability of the integer label.

    As :math:`q \to 0` it tends to the cross-entropy :math:`-\log p_y`
    (:math:`(1 - e^{q \log p})/q \to -\log p`); at :math:`q = 1` it is
    :math:`1 - p_y`, the mean absolute error of the one-hot target over its
    class. In between it keeps the cross-entropy's pull on the labels it
    predicts badly but bounds it: :math:`\partial \ell / \partial p_y =
    -p_y^{\,q - 1}`, :math:`p_y^{\,q}` times the cross-entropy's
    :math:`-1/p_y`, so a sample whose label looks wrong (a small
    :math:`p_y`, often a noisy label) weighs less. The other probabilities
    get no gradient (Keras's formula reads only :math:`p_y`; a softmax
    before it spreads the gradient). Labels as
    :class:`SparseCategoricalCrossentropy`'s, an integer a position;
    ``q`` in (0, 1), default 0.5; no clipping and no fused softmax, as Keras 3.15.
    """

    name = "categorical_generalized_cross_entropy"
    fused_activation = None

    def __init__(self, q=0.5, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction=reduction)
        self.q = _check_real(q, type(self).__name__, "q")
        if not 0.0 < self.q < 1.0:
            raise ValueError(f"CategoricalGeneralizedCrossEntropy: q must be in the interval (0, 1), got {q!r}")

    def arguments(self):
        return {"q": self.q}

    def _chosen(self, y_true, y_pred):
        """``p_y``, the probability of each position's label, and the labels (shape ``y_pred.shape[:-1]``)."""
        labels = self._labels(y_true, y_pred.shape[:-1])
        return np.take_along_axis(y_pred, labels[..., None], axis=-1)[..., 0], labels

    def per_position(self, y_true, y_pred):
        chosen, _ = self._chosen(y_true, y_pred)
        return (1 - chosen ** self.q) / self.q

    def gradient(self, y_true, y_pred):
        """``-p_y^(q - 1) / R`` at each label, 0 elsewhere (``R`` rows, as the other losses' gradients)."""
        chosen, labels = self._chosen(y_true, y_pred)
        grad = np.zeros_like(y_pred)
        np.put_along_axis(grad, labels[..., None], (-chosen ** (self.q - 1))[..., None] / labels.size, axis=-1)
        return grad
