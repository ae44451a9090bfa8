"""nnscratch: a neural-network library written from scratch in NumPy, with Numba kernels.

The API follows Keras: layers, ``Sequential``/``Model``, ``compile``/``fit``/
``evaluate``/``predict``, callbacks and optimizers, NHWC images.

>>> import nnscratch
>>> from nnscratch.layers import Conv2D, Dense, Flatten, MaxPooling2D
>>> model = nnscratch.Sequential([
...     nnscratch.Input((8, 8, 1)),
...     Conv2D(16, 3, padding="same", activation="relu"),
...     MaxPooling2D(),
...     Flatten(),
...     Dense(10, activation="softmax"),
... ])
>>> model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
"""

from nnscratch import callbacks, gradcheck, layers, losses, metrics, optimizers, utils
from nnscratch.config import floatx, set_floatx
from nnscratch.kernels import get_backend, set_backend
from nnscratch.layers.input_layer import Input
from nnscratch.models import Model, Sequential, load_model
from nnscratch.rng import set_random_seed

__version__ = "0.1.0"

__all__ = [
    "Input", "Model", "Sequential", "callbacks", "floatx", "get_backend", "gradcheck", "layers", "load_model",
    "losses", "metrics", "optimizers", "set_backend", "set_floatx", "set_random_seed", "utils", "__version__",
]
