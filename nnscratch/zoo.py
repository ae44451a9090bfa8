"""The models of the reproduced study, built as the study built them (Keras functional API).

Each function returns a compiled model whose ``summary()`` totals equal the
study's Keras models:

=================  ==========================================================  ===========
function           architecture                                                params
=================  ==========================================================  ===========
basic_mlp(512)     Flatten, Dense(n, relu), Dense(10, softmax)                 407,050
optimized_mlp()    196 selected pixels; Dense 256-Dropout .3-128-Dropout .2-10  84,618
deep_cnn()         3 x [Conv-BN-ReLU-Conv-BN-ReLU-Pool-Dropout] + 2 dense      1,015,530
simple_cnn()       Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10              93,322
simple_cnn("two-conv")  the same without the third conv                        121,930
uci_cnn()          3 x [Conv(same)-Pool-Dropout] on 8x8, Dense 128-512-10      102,794
=================  ==========================================================  ===========
"""

from nnscratch.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input,
                              MaxPooling2D)
from nnscratch.models import Model
from nnscratch.optimizers import Adam

__all__ = ["basic_mlp", "optimized_mlp", "deep_cnn", "simple_cnn", "uci_cnn"]


def _compiled(model, loss="categorical_crossentropy", **adam):
    model.compile(optimizer=Adam(learning_rate=1e-3, **adam), loss=loss, metrics=["accuracy"])
    return model


def basic_mlp(units=512, input_shape=(28, 28, 1)):
    """Flatten, Dense(units, relu), Dense(10, softmax); Adam(1e-3)."""
    inputs = Input(input_shape)
    x = Flatten()(inputs)
    x = Dense(units, activation="relu")(x)
    outputs = Dense(10, activation="softmax")(x)
    return _compiled(Model(inputs, outputs, name=f"basic_mlp_{units}"))


def optimized_mlp(n_features=196):
    """The feature-selected MLP: Dense(256)-Dropout(0.3)-Dense(128)-Dropout(0.2)-Dense(10)."""
    inputs = Input((n_features,))
    x = Dense(256, activation="relu")(inputs)
    x = Dropout(0.3)(x)
    x = Dense(128, activation="relu")(x)
    x = Dropout(0.2)(x)
    outputs = Dense(10, activation="softmax")(x)
    return _compiled(Model(inputs, outputs, name="optimized_mlp"))


def deep_cnn(input_shape=(28, 28, 1)):
    """Three conv blocks with batch norm (32, 64, 128 filters), two dense blocks; Adam clipnorm=1."""
    inputs = x = Input(input_shape)
    for filters in (32, 64, 128):
        for _ in range(2):
            x = Conv2D(filters, 3, padding="same")(x)
            x = BatchNormalization()(x)
            x = Activation("relu")(x)
        x = MaxPooling2D(2)(x)
        x = Dropout(0.25)(x)
    x = Flatten()(x)
    for units in (512, 256):
        x = Dense(units, activation="relu")(x)
        x = BatchNormalization()(x)
        x = Dropout(0.5)(x)
    outputs = Dense(10, activation="softmax")(x)
    return _compiled(Model(inputs, outputs, name="deep_cnn"), clipnorm=1.0)


def simple_cnn(variant="three-conv", input_shape=(28, 28, 1)):
    """The Keras tutorial's CNN. ``"two-conv"`` drops the third conv and uses sparse labels."""
    if variant not in ("three-conv", "two-conv"):
        raise ValueError(f"variant must be 'three-conv' or 'two-conv', got {variant!r}")
    inputs = Input(input_shape)
    x = Conv2D(32, 3, activation="relu")(inputs)
    x = MaxPooling2D(2)(x)
    x = Conv2D(64, 3, activation="relu")(x)
    x = MaxPooling2D(2)(x)
    if variant == "three-conv":
        x = Conv2D(64, 3, activation="relu")(x)
    x = Flatten()(x)
    x = Dense(64, activation="relu")(x)
    outputs = Dense(10, activation="softmax")(x)
    loss = "categorical_crossentropy" if variant == "three-conv" else "sparse_categorical_crossentropy"
    return _compiled(Model(inputs, outputs, name=f"simple_cnn_{variant.replace('-', '_')}"), loss=loss)


def uci_cnn(input_shape=(8, 8, 1)):
    """The UCI 8x8 digits CNN: three same-padded conv blocks, then Dense 128 and 512 (sigmoid)."""
    inputs = x = Input(input_shape)
    for filters in (16, 32, 64):
        x = Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = MaxPooling2D(2)(x)
        x = Dropout(0.25)(x)
    x = Flatten()(x)
    for units in (128, 512):
        x = Dense(units, activation="sigmoid")(x)
        x = Dropout(0.25)(x)
    outputs = Dense(10, activation="softmax")(x)
    return _compiled(Model(inputs, outputs, name="uci_cnn"))
