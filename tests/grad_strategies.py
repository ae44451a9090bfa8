"""Strategies and helpers for the gradient-check tests (``tests/test_grad_*.py``).

Why the tests pass their own step ``h`` instead of the checker's default 1e-6
-----------------------------------------------------------------------------
A central difference has two errors: truncation, about ``h**2 |L'''| / 6``,
and rounding, about ``eps * sum(|R * y|) / h`` (``eps = 2.2e-16``). The
projected loss ``L = sum(R * y)`` of a batch of a few hundred outputs sums
terms of total size 100-1000, so with ``h = 1e-6`` rounding alone reaches
~1e-8 absolute, which for a small gradient entry (judged against 1/1000 of
the tensor's largest one) is a relative error above 1e-6 for a *correct*
layer. So:

* ``STEP = 1e-5`` for layers with weights, batch normalisation and models:
  rounding / 10, truncation still below 1e-9 for inputs of order 1 (worst
  case over thousands of random shapes: ~2e-7);
* ``ACTIVATION_STEP = 1e-4`` for sigmoid/tanh/softmax alone: their relative
  truncation error is about ``h**2 |f'''/f'| / 6 < 1e-8``;
* ``LINEAR_STEP = 1e-3`` for piecewise-linear layers (max pooling, ReLU,
  Dropout, Flatten, linear): a central difference that stays on one linear
  piece is exact, so only rounding is left, and the inputs keep every
  perturbation on its piece (values 1e-2 apart, or 2e-3 away from 0).

Inputs that keep finite differences honest
------------------------------------------
* max pooling: values all distinct and 1e-2 apart (a tie would let a
  perturbation change the winner of a window);
* ReLU: inputs and pre-activations kept away from 0 (the kink);
* batch normalisation: at least 3 values per channel. With 2 values,
  ``xhat = +-d / sqrt(d**2 + eps)`` hardly depends on ``x``: the input
  gradient is of order ``eps``, pure rounding noise for a relative test.
"""

import contextlib

import numpy as np
from hypothesis import strategies as st

import nnscratch
from nnscratch.regularizers import L1, L1L2, L2

try:
    from tests.strategies import conv_geometry, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import conv_geometry, rng_seeds

__all__ = [
    "TOLERANCE", "STEP", "ACTIVATION_STEP", "LINEAR_STEP", "RELU_MARGIN", "PREACTIVATION_MARGIN", "ACTIVATIONS",
    "float64_floatx", "rng_seeds", "batch_sizes", "feature_sizes", "channel_counts", "spatial_sizes",
    "layer_conv_geometry", "dilated_cases", "pool_geometry", "image_shapes", "bn_shapes",
    "away_from_zero", "well_separated", "kernel_values", "random_bn_weights", "min_abs", "penalties",
    "masked_sequences",
]

TOLERANCE = 1e-6
STEP = 1e-5                    # layers with weights, batch normalisation, whole models
ACTIVATION_STEP = 1e-4         # sigmoid, tanh, softmax alone
LINEAR_STEP = 1e-3             # piecewise-linear layers, on inputs that keep each step on one piece
RELU_MARGIN = 1e-3             # inputs of ReLU / Activation("relu") satisfy |x| > 2 * RELU_MARGIN
PREACTIVATION_MARGIN = 2e-4    # |z| > this for Dense/Conv2D pre-activations followed by relu (h = STEP)
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


@contextlib.contextmanager
def float64_floatx():
    """Build layers in float64 inside the block (for hypothesis tests, which cannot use a fixture)."""
    previous = nnscratch.floatx()
    nnscratch.set_floatx("float64")
    try:
        yield
    finally:
        nnscratch.set_floatx(previous)


def batch_sizes():
    return st.integers(1, 4)


def feature_sizes():
    return st.integers(1, 6)


def channel_counts():
    return st.integers(1, 3)


def spatial_sizes():
    return st.integers(1, 7)


def layer_conv_geometry():
    """Conv2D geometries: batch 1-4, images up to 7x7x3, kernels up to 4x4, strides 1-3."""
    return conv_geometry(max_batch=4, max_size=7, max_channels=3, max_kernel=4, max_stride=3)


@st.composite
def dilated_cases(draw):
    """``(shape (N, H, W, C), (kh, kw), (dh, dw), padding)``: kernels and dilations of 1-3 a side, the input at
    least as large as the spread kernel (``(k - 1) d + 1``) when valid-padded."""
    kh, kw, dh, dw = (draw(st.integers(1, 3)) for _ in range(4))
    padding = draw(st.sampled_from(["valid", "same"]))
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    h = draw(st.integers(span_h if padding == "valid" else 1, span_h + 3))
    w = draw(st.integers(span_w if padding == "valid" else 1, span_w + 3))
    return (draw(batch_sizes()), h, w, draw(channel_counts())), (kh, kw), (dh, dw), padding


def pool_geometry():
    """MaxPooling2D geometries: pools up to 3x3, strides 1-3 (stride < pool gives overlapping windows)."""
    return conv_geometry(max_batch=4, max_size=7, max_channels=3, max_kernel=3, max_stride=3)


def image_shapes():
    """NHWC batch shapes (N, H, W, C) with N 1-4, H and W 1-7, C 1-3."""
    return st.tuples(batch_sizes(), spatial_sizes(), spatial_sizes(), channel_counts())


def bn_shapes(rank):
    """Batch shapes for BatchNormalization with at least 3 values per channel.

    ``rank`` 2: (N, features); ``rank`` 3: (N, steps, C); ``rank`` 4: (N, H, W, C).
    """
    if rank == 2:
        return st.tuples(st.integers(3, 4), channel_counts())
    if rank == 3:
        return st.tuples(batch_sizes(), st.integers(1, 4), channel_counts()).filter(lambda s: s[0] * s[1] >= 3)
    return image_shapes().filter(lambda s: s[0] * s[1] * s[2] >= 3)


def away_from_zero(rng, shape, margin=RELU_MARGIN):
    """Standard normal values pushed out of ``(-2*margin, 2*margin)``: a step of ``margin`` never reaches 0."""
    z = rng.standard_normal(shape)
    sign = np.where(z < 0, -1.0, 1.0)
    return sign * (np.abs(z) + 2 * margin)


def well_separated(rng, shape, spacing=1e-2):
    """All-distinct values, any two at least ``spacing`` (> 1e-3) apart, in random order, both signs."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size // 2) * spacing).reshape(shape).astype(np.float64)


def kernel_values(rng, shape, fan_in):
    """Weights of random sign with ``|w|`` in ``[0.3, 1.2] / sqrt(fan_in)``.

    Bounded away from 0: a 1x1 kernel near 0 would make the whole input
    gradient tiny, and a relative error of a tensor that is all rounding noise
    means nothing.
    """
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return sign * rng.uniform(0.3, 1.2, shape) / np.sqrt(fan_in)


def random_bn_weights(rng, channels):
    """gamma, beta, moving_mean, moving_variance away from the defaults (1, 0, 0, 1)."""
    return [rng.uniform(0.5, 2.0, channels), rng.uniform(-1.0, 1.0, channels),
            rng.standard_normal(channels), rng.uniform(0.5, 2.0, channels)]


def min_abs(a):
    return float(np.abs(a).min()) if np.size(a) else np.inf


def penalties():
    """L1, L2 or L1L2 with factors large enough that a penalty's gradient is a sizeable part of the total."""
    factor = st.floats(0.05, 2.0)
    return st.one_of(st.builds(L1, factor), st.builds(L2, factor), st.builds(L1L2, factor, factor))


@st.composite
def masked_sequences(draw):
    """``(shape, mask, seed)``: (N, T, F) sequences and a mask (N, T) of the steps that count.

    Each row is padded at its end, at its start, or masked anywhere, as
    ``Embedding(mask_zero=True)`` and ``Masking`` make them; a row may have
    every step masked, or none.
    """
    n, steps, features = draw(st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 3)), label="shape")
    rows = []
    for _ in range(n):
        kind = draw(st.sampled_from(["end", "start", "anywhere"]), label="padding")
        if kind == "anywhere":
            rows.append(draw(st.lists(st.booleans(), min_size=steps, max_size=steps), label="row"))
        else:
            kept = draw(st.integers(0, steps), label="kept")
            row = [True] * kept + [False] * (steps - kept)
            rows.append(row if kind == "end" else row[::-1])
    return (n, steps, features), np.array(rows, dtype=bool), draw(rng_seeds(), label="seed")
