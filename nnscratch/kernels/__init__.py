"""Hot loops of the library, each in two twins with the same names and signatures.

* :mod:`nnscratch.kernels.reference` -- plain NumPy, written to be read.
* :mod:`nnscratch.kernels.fast` -- the Numba twin, written to be fast.

Smaller pairs follow the same pattern: ``image_reference`` / ``image_fast``
(augmentation, :func:`image_backend`), ``optimizer_reference`` /
``optimizer_fast`` (the Adam update, :func:`optimizer_backend`) and
``pooling_reference`` / ``pooling_fast`` (average and global pooling,
upsampling, :func:`pooling_backend`) and ``recurrent_reference`` /
``recurrent_fast`` (the time loops of SimpleRNN, LSTM and GRU,
:func:`recurrent_backend`).
docs/kernels.md explains the design.

Layers never loop themselves: they call ``kernels.backend().im2col(...)`` and
friends. The active twin is chosen with :func:`set_backend` (``"numpy"`` or
``"numba"``) or the ``NNSCRATCH_BACKEND`` environment variable. The default is
``"numba"``, except when ``NUMBA_DISABLE_JIT=1`` turns the Numba twin into slow
pure Python, in which case the NumPy reference is the default.

Kernels know nothing about layers, models or optimizers: they take arrays
and return (or update) arrays.
"""

import importlib
import os
from types import ModuleType

__all__ = ["BACKENDS", "CONV_ALGORITHMS", "set_backend", "get_backend", "backend", "image_backend",
           "optimizer_backend", "winograd_backend", "pooling_backend", "recurrent_backend", "set_conv_algorithm",
           "get_conv_algorithm", "DENSE_PRODUCTS", "set_dense_product", "get_dense_product", "use_fixed_product"]

BACKENDS = ("numpy", "numba")

# backend name -> (nn kernels, image kernels, optimizer kernels, Winograd convolution, pooling kernels,
#                  recurrent layers' time loops)
_MODULES = {
    "numpy": ("nnscratch.kernels.reference", "nnscratch.kernels.image_reference",
              "nnscratch.kernels.optimizer_reference", "nnscratch.kernels.winograd_reference",
              "nnscratch.kernels.pooling_reference", "nnscratch.kernels.recurrent_reference"),
    "numba": ("nnscratch.kernels.fast", "nnscratch.kernels.image_fast",
              "nnscratch.kernels.optimizer_fast", "nnscratch.kernels.winograd_fast",
              "nnscratch.kernels.pooling_fast", "nnscratch.kernels.recurrent_fast"),
}

# How Conv2D computes 3x3 stride-1 convolutions (forward and input gradient)
CONV_ALGORITHMS = ("im2col", "winograd", "winograd-mixed", "winograd4")
DENSE_PRODUCTS = ("auto", "panels", "blas")


def _default_backend() -> str:
    name = os.environ.get("NNSCRATCH_BACKEND")
    if name:
        return _check(name)
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return "numpy"
    return "numba"


def _check(name) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return name


_backend = _default_backend()


def set_backend(name: str) -> None:
    """Select the kernel twin used by every layer: ``"numpy"`` or ``"numba"``."""
    global _backend
    _backend = _check(name)


def get_backend() -> str:
    """Return the name of the active kernel twin."""
    return _backend


def _module(name, index) -> ModuleType:
    """Module ``index`` of ``_MODULES[name]``, imported once and then looked up (layers ask on every call)."""
    key = (name or _backend, index)
    module = _loaded.get(key)
    if module is None:
        module = _loaded[key] = importlib.import_module(_MODULES[_check(key[0])][index])
    return module


_loaded: dict = {}  # (backend name, index) -> module; import_module costs ~10 us a call


def backend(name: str | None = None) -> ModuleType:
    """Return the module of neural-network kernels for ``name`` (default: the active one)."""
    return _module(name, 0)


def image_backend(name: str | None = None) -> ModuleType:
    """Return the module of image-augmentation kernels for ``name`` (default: the active one)."""
    return _module(name, 1)


def optimizer_backend(name: str | None = None) -> ModuleType:
    """Return the module of optimizer-update kernels for ``name`` (default: the active one)."""
    return _module(name, 2)


def winograd_backend(name: str | None = None) -> ModuleType:
    """Return the module of the Winograd convolutions for ``name`` (default: the active one)."""
    return _module(name, 3)


def pooling_backend(name: str | None = None) -> ModuleType:
    """Return the module of average/global pooling and upsampling kernels for ``name`` (default: the active one)."""
    return _module(name, 4)


def recurrent_backend(name: str | None = None) -> ModuleType:
    """Return the module of the recurrent layers' time loops for ``name`` (default: the active one)."""
    return _module(name, 5)


def _check_algorithm(name) -> str:
    if name not in CONV_ALGORITHMS:
        raise ValueError(f"conv algorithm must be one of {CONV_ALGORITHMS}, got {name!r}")
    return name


_conv_algorithm = _check_algorithm(os.environ.get("NNSCRATCH_CONV_ALGORITHM") or "winograd")


def set_conv_algorithm(name: str) -> None:
    """How Conv2D computes 3x3 stride-1 convolutions: ``"winograd"`` (default), ``"winograd-mixed"``,
    ``"winograd4"`` or ``"im2col"``.

    Winograd computes the forward pass, the input gradient and the kernel
    gradient of the layers where it measured faster (``winograd_applies``:
    3x3, stride 1, at least 8 input channels, output at least 8x8 for
    F(2x2, 3x3), 7x7 for F(4x4, 3x3)); the others stay im2col. It equals
    im2col up to rounding, so the settings give slightly different numbers in
    a training run. F(2x2, 3x3) does 2.25x fewer multiplications than
    im2col, F(4x4, 3x3) up to 4x fewer, with about ten times F(2x2)'s
    rounding error (~5e-6 of the output in float32).

    ``"winograd"`` (the default, the code of the runs in docs/results.md)
    takes F(2x2, 3x3) wherever it applies. ``"winograd4"`` takes F(4x4, 3x3)
    on every layer from 7x7: it trains the deep CNN 12-14% faster (session
    6), but the study's main job gave 99.52% and 99.60% test accuracy with
    it (seeds 42 and 1) against 99.67% and 99.62%. ``"winograd-mixed"``
    takes F(4x4, 3x3) on the small layers only, outputs of 7x7 to 11x11 (the
    deep CNN's 7x7 layers, the simple CNN's 11x11 one), and F(2x2, 3x3) from
    12x12 up (``winograd_reference.F4_BELOW_OUTPUT_SIDE``): 2-8% off a deep-CNN
    training step, but its main job gave 99.65% on one machine and 99.26%
    (stopped early at epoch 9) on another (docs/kernels.md, section 4b), so
    it is not the default. Also set by the ``NNSCRATCH_CONV_ALGORITHM``
    environment variable.
    """

    global _conv_algorithm
    _conv_algorithm = _check_algorithm(name)


def get_conv_algorithm() -> str:
    """Return the active conv algorithm (see :func:`set_conv_algorithm`)."""
    return _conv_algorithm


def _check_dense_product(name) -> str:
    if name not in DENSE_PRODUCTS:
        raise ValueError(f"dense product must be one of {DENSE_PRODUCTS}, got {name!r}")
    return name


_dense_product = _check_dense_product(os.environ.get("NNSCRATCH_DENSE_PRODUCT") or "auto")


def set_dense_product(name: str) -> None:
    """Which product a Dense layer's ``predict`` and ``evaluate`` use: ``"auto"`` (default), ``"panels"`` or ``"blas"``.

    ``"panels"``: the backend's ``FixedProduct`` (the kernel packed in
    panels once a pass, bias and activation applied as the outputs are
    stored; docs/kernels.md, section 4c). ``"blas"``: NumPy's ``x @ W``, then
    the bias and activation. ``"auto"``: panels where the backend's
    ``fixed_product_pays`` says they measured faster (the numba backend on
    x86-64 CPUs with AVX2 and no AVX-512), else BLAS. The two agree up to
    float rounding; each gives the same bits run after run. Training always
    multiplies with BLAS. Also set by the ``NNSCRATCH_DENSE_PRODUCT``
    environment variable: to measure the panels on a CPU where ``"auto"``
    does not choose them (``benchmarks/bench_frameworks.py`` passes the
    environment on to its workers).
    """
    global _dense_product
    _dense_product = _check_dense_product(name)


def get_dense_product() -> str:
    """Return the active Dense inference product setting (see :func:`set_dense_product`)."""
    return _dense_product


def use_fixed_product(k: int, n: int, name: str | None = None) -> bool:
    """Whether a Dense layer's pass of inference by a ``(k, n)`` kernel uses the backend's ``FixedProduct``."""
    choice = _dense_product
    if choice == "auto":
        return bool(backend(name).fixed_product_pays(k, n))
    return choice == "panels" and k > 0 and n > 0
