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

# Thread pools must not spin long while the other one works. Numba's OpenMP threads
# and OpenBLAS's threads both busy-wait after a parallel section by default (libgomp
# 300,000 spins); on a 2-core machine each then steals the cores the other needs
# (training ran 2-50x slower). Not spinning at all (OMP_WAIT_POLICY=PASSIVE, sessions
# 2-5) makes every parallel loop wake sleeping threads, 35-65 us each, about 60 times
# a deep-CNN step; a short spin (GOMP_SPINCOUNT=20000, a fraction of a millisecond)
# keeps the threads awake from one kernel to the next and measured 7-17% faster steps
# (docs/kernels.md, section 5). OpenMP reads its setting when Numba first starts it;
# OpenBLAS reads its own when NumPy is first imported, so that one only helps if
# nnscratch is imported first (the experiments do). Users who set either OpenMP
# variable, or OpenBLAS's, keep their value.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "20000"
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from nnscratch.allocator import keep_freed_memory  # noqa: E402

# Each training step frees and allocates the same large arrays: keep them in the
# heap instead of page-faulting fresh memory every step (see nnscratch.allocator).
if os.environ.get("NNSCRATCH_KEEP_FREED_MEMORY", "1") != "0":
    keep_freed_memory()

from nnscratch import callbacks, gradcheck, layers, losses, metrics, optimizers, utils  # noqa: E402
from nnscratch.config import floatx, set_floatx  # noqa: E402
from nnscratch.kernels import get_backend, set_backend  # noqa: E402
from nnscratch.layers.input_layer import Input  # noqa: E402
from nnscratch.models import Model, Sequential, load_model  # noqa: E402
from nnscratch.rng import set_random_seed  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Input", "Model", "Sequential", "callbacks", "floatx", "get_backend", "gradcheck", "layers", "load_model",
    "losses", "metrics", "optimizers", "set_backend", "set_floatx", "set_random_seed", "utils", "__version__",
]
