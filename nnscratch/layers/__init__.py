"""Layers, one per file, each with a hand-written forward and backward pass."""

from nnscratch.layers.activation import Activation, ReLU
from nnscratch.layers.base import Layer, SymbolicTensor
from nnscratch.layers.batch_normalization import BatchNormalization
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.input_layer import Input, InputLayer
from nnscratch.layers.max_pooling2d import MaxPool2D, MaxPooling2D

__all__ = [
    "Activation", "BatchNormalization", "Conv2D", "Dense", "Dropout", "Flatten", "Input", "InputLayer",
    "Layer", "MaxPool2D", "MaxPooling2D", "ReLU", "SymbolicTensor", "get",
]

_BY_NAME = {cls.__name__: cls for cls in (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                                          InputLayer, MaxPooling2D, ReLU)}


def get(class_name: str):
    """Return the layer class called ``class_name`` (used when loading saved models)."""
    if class_name not in _BY_NAME:
        raise ValueError(f"unknown layer class {class_name!r}; expected one of {sorted(_BY_NAME)}")
    return _BY_NAME[class_name]
