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

import os

# Thread pools must not spin long while the other one works: a short spin for
# Numba's OpenMP threads and for OpenBLAS's, set before NumPy is imported here, and
# applied to an OpenBLAS that an earlier `import numpy` already started
# (nnscratch.thread_policy; docs/kernels.md, section 5).
from nnscratch import thread_policy  # noqa: E402

thread_policy.apply()

from nnscratch.allocator import keep_freed_memory  # noqa: E402

# Each training step frees and allocates the same large arrays: keep them in the
# heap instead of page-faulting fresh memory every step (see nnscratch.allocator).
if os.environ.get("NNSCRATCH_KEEP_FREED_MEMORY", "1") != "0":
    keep_freed_memory()

from nnscratch import (callbacks, constraints, gradcheck, layers, losses, metrics, optimizers,  # noqa: E402
                       regularizers, utils)
from nnscratch.config import floatx, set_floatx  # noqa: E402
from nnscratch.kernels import get_backend, set_backend  # noqa: E402
from nnscratch.layers.input_layer import Input  # noqa: E402
from nnscratch.models import Model, Sequential, load_model  # noqa: E402
from nnscratch.rng import set_random_seed  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Input", "Model", "Sequential", "callbacks", "constraints", "floatx", "get_backend", "gradcheck", "layers",
    "load_model",
    "losses", "metrics", "optimizers", "regularizers", "set_backend", "set_floatx", "set_random_seed", "utils",
    "__version__",
]
