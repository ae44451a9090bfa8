"""Layers, one per file, each with a hand-written forward and backward pass."""

from nnscratch.layers.activation import ELU, Activation, LeakyReLU, ReLU, Softmax
from nnscratch.layers.average_pooling2d import AveragePooling2D, AvgPool2D
from nnscratch.layers.base import Layer, SymbolicTensor
from nnscratch.layers.batch_normalization import BatchNormalization
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.global_pooling import (GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D,
                                             GlobalMaxPooling2D)
from nnscratch.layers.input_layer import Input, InputLayer
from nnscratch.layers.max_pooling2d import MaxPool2D, MaxPooling2D
from nnscratch.layers.reshape import Reshape
from nnscratch.layers.up_sampling2d import UpSampling2D
from nnscratch.layers.zero_padding2d import ZeroPadding2D

__all__ = [
    "Activation", "AveragePooling2D", "AvgPool2D", "BatchNormalization", "Conv2D", "Dense", "Dropout", "ELU",
    "Flatten", "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "GlobalMaxPooling2D", "Input",
    "InputLayer", "Layer", "LeakyReLU", "MaxPool2D", "MaxPooling2D", "ReLU", "Reshape", "Softmax", "SymbolicTensor",
    "UpSampling2D", "ZeroPadding2D", "get",
]

_BY_NAME = {cls.__name__: cls for cls in (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout,
                                          ELU, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, InputLayer,
                                          LeakyReLU, MaxPooling2D, ReLU, Reshape, Softmax, UpSampling2D,
                                          ZeroPadding2D)}


def get(class_name: str):
    """Return the layer class called ``class_name`` (used when loading saved models)."""
    if class_name not in _BY_NAME:
        raise ValueError(f"unknown layer class {class_name!r}; expected one of {sorted(_BY_NAME)}")
    return _BY_NAME[class_name]
