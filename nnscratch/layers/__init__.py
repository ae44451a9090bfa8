"""Layers, one per file, each with a hand-written forward and backward pass."""

from nnscratch.layers.activation import ELU, Activation, LeakyReLU, ReLU, Softmax
from nnscratch.layers.activity_regularization import ActivityRegularization
from nnscratch.layers.attention import Attention
from nnscratch.layers.average_pooling2d import AveragePooling2D, AvgPool2D
from nnscratch.layers.base import Layer, SymbolicTensor
from nnscratch.layers.batch_normalization import BatchNormalization
from nnscratch.layers.bidirectional import Bidirectional
from nnscratch.layers.center_crop import CenterCrop
from nnscratch.layers.concatenate import Concatenate, concatenate
from nnscratch.layers.conv1d import Conv1D
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.conv2d_transpose import Conv2DTranspose
from nnscratch.layers.cropping2d import Cropping2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.depthwise_conv2d import DepthwiseConv2D
from nnscratch.layers.dot import Dot, dot
from nnscratch.layers.dropout import Dropout
from nnscratch.layers.embedding import Embedding
from nnscratch.layers.flatten import Flatten
from nnscratch.layers.gaussian_dropout import GaussianDropout
from nnscratch.layers.gaussian_noise import GaussianNoise
from nnscratch.layers.global_pooling import (GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D,
                                             GlobalMaxPooling2D)
from nnscratch.layers.global_pooling1d import (GlobalAveragePooling1D, GlobalAvgPool1D, GlobalMaxPool1D,
                                               GlobalMaxPooling1D)
from nnscratch.layers.gru import GRU
from nnscratch.layers.identity import Identity
from nnscratch.layers.input_layer import Input, InputLayer
from nnscratch.layers.layer_normalization import LayerNormalization
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.masking import Masking
from nnscratch.layers.max_pooling2d import MaxPool2D, MaxPooling2D
from nnscratch.layers.merge import (Add, Average, Maximum, Merge, Minimum, Multiply, Subtract, add, average,
                                    maximum, minimum, multiply, subtract)
from nnscratch.layers.multi_head_attention import MultiHeadAttention
from nnscratch.layers.normalization import Normalization
from nnscratch.layers.permute import Permute
from nnscratch.layers.pooling1d import AveragePooling1D, AvgPool1D, MaxPool1D, MaxPooling1D
from nnscratch.layers.prelu import PReLU
from nnscratch.layers.random_brightness import RandomBrightness
from nnscratch.layers.random_contrast import RandomContrast
from nnscratch.layers.random_crop import RandomCrop
from nnscratch.layers.random_flip import RandomFlip
from nnscratch.layers.random_rotation import RandomRotation
from nnscratch.layers.random_shear import RandomShear
from nnscratch.layers.random_translation import RandomTranslation
from nnscratch.layers.random_zoom import RandomZoom
from nnscratch.layers.repeat_vector import RepeatVector
from nnscratch.layers.rescaling import Rescaling
from nnscratch.layers.reshape import Reshape
from nnscratch.layers.resizing import Resizing
from nnscratch.layers.reshaping1d import Cropping1D, UpSampling1D, ZeroPadding1D
from nnscratch.layers.rms_normalization import RMSNormalization
from nnscratch.layers.separable_conv2d import SeparableConv2D
from nnscratch.layers.simple_rnn import SimpleRNN
from nnscratch.layers.spatial_dropout import SpatialDropout1D, SpatialDropout2D
from nnscratch.layers.time_distributed import TimeDistributed
from nnscratch.layers.unit_normalization import UnitNormalization
from nnscratch.layers.up_sampling2d import UpSampling2D
from nnscratch.layers.zero_padding2d import ZeroPadding2D

__all__ = [
    "Activation", "ActivityRegularization", "Add", "Attention", "Average", "AveragePooling1D", "AveragePooling2D",
    "AvgPool1D", "AvgPool2D", "BatchNormalization", "Bidirectional", "CenterCrop", "Concatenate", "Conv1D",
    "Conv2D", "Conv2DTranspose", "Cropping1D", "Cropping2D", "Dense", "DepthwiseConv2D", "Dot", "Dropout", "ELU",
    "Embedding", "Flatten", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GRU", "Identity", "Input", "InputLayer", "Layer", "LayerNormalization", "LeakyReLU",
    "LSTM", "Masking", "Maximum", "MaxPool1D", "MaxPool2D", "MaxPooling1D", "MaxPooling2D", "Merge", "Minimum",
    "Multiply", "MultiHeadAttention", "Normalization", "Permute", "PReLU", "RandomBrightness", "RandomContrast",
    "RandomCrop", "RandomFlip", "RandomRotation", "RandomShear", "RandomTranslation", "RandomZoom", "ReLU",
    "RepeatVector", "Rescaling", "Reshape", "Resizing", "RMSNormalization",
    "SeparableConv2D", "SimpleRNN", "Softmax", "SpatialDropout1D", "SpatialDropout2D", "Subtract", "SymbolicTensor",
    "TimeDistributed", "UnitNormalization", "UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D", "add",
    "average", "concatenate", "dot", "get", "maximum", "minimum", "multiply", "subtract"
]

# the layer classes by name, for loading saved models (aliases such as MaxPool2D are the same classes)
_BY_NAME = {cls.__name__: cls for cls in (
    Activation, ActivityRegularization, Add, Attention, Average, AveragePooling1D, AveragePooling2D,
    BatchNormalization, Bidirectional, CenterCrop, Concatenate, Conv1D, Conv2D, Conv2DTranspose, Cropping1D,
    Cropping2D, Dense, DepthwiseConv2D, Dot, Dropout, ELU, Embedding, Flatten, GaussianDropout, GaussianNoise,
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, GRU, Identity,
    InputLayer, LayerNormalization, LeakyReLU, LSTM, Masking, Maximum, MaxPooling1D, MaxPooling2D, Minimum,
    Multiply, MultiHeadAttention, Normalization, Permute, PReLU, RandomBrightness, RandomContrast, RandomCrop,
    RandomFlip, RandomRotation, RandomShear, RandomTranslation, RandomZoom, ReLU, RepeatVector, Rescaling, Reshape,
    Resizing, RMSNormalization, SeparableConv2D, SimpleRNN, Softmax, SpatialDropout1D, SpatialDropout2D, Subtract,
    TimeDistributed, UnitNormalization, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D,
)}


def get(class_name: str):
    """Return the layer class called ``class_name`` (used when loading saved models)."""
    if class_name not in _BY_NAME:
        raise ValueError(f"unknown layer class {class_name!r}: a layer of your own loads with "
                         f"load_model(path, custom_objects={{{class_name!r}: {class_name}}}); the library's layers "
                         f"are {sorted(_BY_NAME)}")
    return _BY_NAME[class_name]
