"""The functional API's entry point: ``Input(shape)``."""

from nnscratch.layers.base import SymbolicTensor
from nnscratch.layers.identity import Identity

__all__ = ["InputLayer", "Input"]


class InputLayer(Identity):
    """The layer behind :func:`Input`: it only fixes the input shape (identity map)."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.build(self._check_shape(shape))

    def get_config(self):
        return {**super().get_config(), "shape": list(self.input_shape)}


def Input(shape, name=None) -> SymbolicTensor:
    """A symbolic input of ``shape`` (no batch axis), as ``keras.Input``.

    >>> x = Input((28, 28, 1))
    >>> x.shape
    (28, 28, 1)
    """
    layer = InputLayer(shape, name=name)
    return SymbolicTensor(layer.input_shape, layer)
