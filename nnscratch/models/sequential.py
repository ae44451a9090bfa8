"""Sequential: a plain stack of layers, as ``keras.Sequential``."""

from nnscratch.layers.base import Layer, SymbolicTensor
from nnscratch.layers.input_layer import InputLayer
from nnscratch.models import masking
from nnscratch.models.model import Model, _default_name, sample_shape

__all__ = ["Sequential"]


class Sequential(Model):
    """A model made of layers applied one after the other.

    The input shape comes from ``nnscratch.Input(shape)`` as the first entry,
    from ``input_shape=`` on the first layer, or from the first data seen by
    ``fit``/``predict``. Once it is known every layer is built at once, so
    shape errors surface when the model is assembled.

    >>> model = Sequential([Input((8, 8, 1)), Conv2D(16, 3), Flatten(), Dense(10, activation="softmax")])
    """

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or _default_name("sequential"))
        self.built = False
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        """Append a layer (or, first, an ``Input``), building it if the input shape is known.

        A built model may be added too, as in Keras's
        ``Sequential([model, Softmax()])``: its layers join this stack one by
        one, *shared* with that model (training either trains both), and
        ``layers`` and ``summary()`` list them one by one (Keras shows the model
        as one layer). See :meth:`_add_model`. A model that branches or
        merges cannot be added (a ValueError): call it on a tensor instead.
        """
        if isinstance(layer, Model):
            self._add_model(layer)
            return
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer):
            if self.input_layer is not None or self.layers:
                raise ValueError("nnscratch.Input(...) may only be the first entry of a Sequential model")
            self.input_layer = layer.layer
            self.built = True
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            raise TypeError("add an input with nnscratch.Input(shape), not an InputLayer")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"a layer named {layer.name!r} is already in model {self.name!r}; names must be unique")
        if not self.built and not self.layers and layer.input_shape_arg is not None:
            self.input_layer = InputLayer(layer.input_shape_arg, name=f"{self.name}_input")
            self.built = True
        if self.built:
            shape = self.layers[-1]._output_shape if self.layers else self.input_layer.input_shape
            self._build_layer(layer, shape)
            self.output_masked = masking.check_layer(layer, self.output_masked)
        self.layers.append(layer)

    def _add_model(self, model) -> None:
        """Add the layers of ``model`` (built, so their shapes are known); as the first entry, also its input."""
        if model is self:
            raise ValueError(f"model {self.name!r} cannot be added to itself")
        if not model.built:
            raise ValueError(f"model {model.name!r} must be built before it is added to another model: give it an "
                             "nnscratch.Input(shape) first, or call its build(input_shape)")
        if model.graph is not None:
            raise ValueError(f"model {model.name!r} branches or merges (its layers form a graph), so its layers cannot "
                             "be stacked in a Sequential; use the functional API and call it on a tensor instead: "
                             "outputs = Softmax()(model(inputs))")
        if not self.built and not self.layers:
            self.input_layer = InputLayer(model.input_layer.input_shape, name=f"{self.name}_input")
            self.built = True
        for layer in model.layers:
            self.add(layer)

    @staticmethod
    def _build_layer(layer, shape):
        if not layer.built:
            layer.build(shape)
        elif layer.input_shape != tuple(shape):
            raise ValueError(f"layer {layer.name!r} was built for input shape {(None, *layer.input_shape)}, "
                             f"but the previous layer outputs {(None, *shape)}")

    def build(self, input_shape) -> None:
        """Build every layer for inputs of ``input_shape``.

        ``input_shape`` is the shape of one sample, such as ``(784,)``, or the
        Keras form with the batch axis as a leading ``None``, ``(None, 784)``.
        A leading integer is part of the sample's shape: ``build((32, 784))``
        builds for samples of 32x784, not for batches of 32. A model that is
        already built is left as it is.
        """
        if self.built:
            return
        self.input_layer = InputLayer(sample_shape(input_shape), name=f"{self.name}_input")
        shape = self.input_layer.input_shape
        for layer in self.layers:
            self._build_layer(layer, shape)
            shape = layer._output_shape
        self.output_masked = masking.mask_flow(self.layers)
        self.built = True

    def _symbolic_tensors(self) -> tuple:
        """Its input tensor and, through each layer in turn, its output tensor (traced on first use, as Keras's
        Sequential builds a functional graph)."""
        self._require_built()
        tensor = getattr(self.input_layer, "_symbolic_output", None) or SymbolicTensor(self.input_layer.input_shape,
                                                                                      self.input_layer)
        inputs = [tensor]
        for layer in self.layers:
            made = getattr(layer, "_symbolic_output", None)
            tensor = made if made is not None and made.parents == (tensor,) else layer(tensor)
        return inputs, [tensor]

    def all_layers(self) -> list:
        """The layers without the implicit input layer (as Keras's ``Sequential.layers``)."""
        return list(self.layers)
