"""Hypothesis strategies and helpers shared by the test suite.

Padding rules are those of Keras / TensorFlow:

* ``"valid"``: no padding, ``out = floor((in - k) / s) + 1`` (needs ``k <= in``);
* ``"same"``: ``out = ceil(in / s)``; total padding ``max((out - 1) * s + k - in, 0)``
  split as ``before = total // 2`` and ``after = total - before`` (the extra
  row/column goes to the bottom/right).

Usage::

    from hypothesis import given
    try:
        from tests.strategies import conv_geometry, float_arrays, rng_seeds
    except ImportError:  # tests/ itself is on sys.path
        from strategies import conv_geometry, float_arrays, rng_seeds

    @given(geom=conv_geometry(), seed=rng_seeds())
    def test_something(geom, seed):
        x = np.random.default_rng(seed).standard_normal(geom.x_shape)
        cols = kernels.im2col(x, *geom.window_args)
"""

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "PADDINGS",
    "output_size",
    "same_padding",
    "padding",
    "ConvGeometry",
    "conv_geometry",
    "winograd_geometry",
    "float_arrays",
    "padded_indices",
    "assert_predicts_as_each_sequence_alone",
    "large_batch_predictions",
    "normal_arrays",
    "rng_seeds",
    "float_dtypes",
]

PADDINGS = ("valid", "same")


def output_size(in_size: int, k: int, s: int, padding: str) -> int:
    """Output length along one axis for input ``in_size``, window ``k``, stride ``s``."""
    if padding == "valid":
        return (in_size - k) // s + 1 if in_size >= k else 0
    if padding == "same":
        return -(-in_size // s)  # ceil
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def same_padding(in_size: int, k: int, s: int) -> tuple[int, int]:
    """``(before, after)`` zero cells added along one axis by ``"same"`` padding."""
    out = output_size(in_size, k, s, "same")
    total = max((out - 1) * s + k - in_size, 0)
    return total // 2, total - total // 2


def padding(in_size: int, k: int, s: int, mode: str) -> tuple[int, int]:
    """``(before, after)`` padding along one axis for ``mode`` in ``PADDINGS``."""
    if mode == "valid":
        return 0, 0
    if mode == "same":
        return same_padding(in_size, k, s)
    raise ValueError(f"padding must be one of {PADDINGS}, got {mode!r}")


class ConvGeometry(NamedTuple):
    """A batch of NHWC images and a sliding window over them."""

    n: int
    h: int
    w: int
    c: int
    kh: int
    kw: int
    sh: int
    sw: int
    padding: str

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.h, self.w, self.c)

    @property
    def out_h(self) -> int:
        return output_size(self.h, self.kh, self.sh, self.padding)

    @property
    def out_w(self) -> int:
        return output_size(self.w, self.kw, self.sw, self.padding)

    @property
    def pad_top(self) -> int:
        return padding(self.h, self.kh, self.sh, self.padding)[0]

    @property
    def pad_left(self) -> int:
        return padding(self.w, self.kw, self.sw, self.padding)[0]

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        """Shape of a pooled output (channels kept)."""
        return (self.n, self.out_h, self.out_w, self.c)

    @property
    def cols_shape(self) -> tuple[int, int]:
        """Shape of the im2col matrix."""
        return (self.n * self.out_h * self.out_w, self.kh * self.kw * self.c)

    @property
    def window_args(self) -> tuple[int, ...]:
        """``(kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)``, as the kernels take them."""
        return (self.kh, self.kw, self.sh, self.sw, self.pad_top, self.pad_left,
                self.out_h, self.out_w)


@st.composite
def conv_geometry(draw, max_batch=3, max_size=9, max_channels=4, max_kernel=4,
                  max_stride=3, paddings=PADDINGS, square=False, channels=None, kernel=None):
    """A :class:`ConvGeometry` whose output is at least 1x1.

    With ``"valid"`` the window never exceeds the image; with ``"same"`` it may
    (TensorFlow allows it: the padding grows). ``square=True`` draws equal
    heights/widths, window sides and strides. ``channels`` and ``kernel`` fix
    the channel count and the window side (``kernel`` x ``kernel``).
    """
    pad = draw(st.sampled_from(paddings))
    n = draw(st.integers(1, max_batch))
    c = channels if channels is not None else draw(st.integers(1, max_channels))
    kh = kernel if kernel is not None else draw(st.integers(1, max_kernel))
    kw = kernel if kernel is not None else kh if square else draw(st.integers(1, max_kernel))
    sh = draw(st.integers(1, max_stride))
    sw = sh if square else draw(st.integers(1, max_stride))
    low_h = kh if pad == "valid" else 1
    low_w = kw if pad == "valid" else 1
    h = draw(st.integers(low_h, max(low_h, max_size)))
    w = h if square else draw(st.integers(low_w, max(low_w, max_size)))
    geom = ConvGeometry(n, h, w, c, kh, kw, sh, sw, pad)
    assert geom.out_h >= 1 and geom.out_w >= 1
    return geom


@st.composite
def winograd_geometry(draw, max_batch=3, max_size=9, max_channels=5):
    """A 3x3, stride-1 :class:`ConvGeometry` ("same" or "valid"): what Winograd F(2x2, 3x3) computes.

    Odd and even sizes both occur, so tiles cropped at the edges are exercised.
    """
    pad = draw(st.sampled_from(PADDINGS))
    low = 3 if pad == "valid" else 1
    h = draw(st.integers(low, max_size))
    w = draw(st.integers(low, max_size))
    n = draw(st.integers(1, max_batch))
    c = draw(st.integers(1, max_channels))
    return ConvGeometry(n, h, w, c, 3, 3, 1, 1, pad)


def rng_seeds():
    """Seeds for ``np.random.default_rng``."""
    return st.integers(0, 2**32 - 1)


def float_dtypes():
    """``np.float32`` or ``np.float64``."""
    return st.sampled_from([np.float32, np.float64])


def _shapes(shape):
    return shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))


@st.composite
def float_arrays(draw, shape, dtype=np.float64, scale=None):
    """Arrays without ties: all values distinct, with both signs, exact in float32.

    The values are a random permutation of ``-size/2 .. size/2`` (0 included
    once), times a power-of-two ``scale`` (drawn from 1/8 .. 4 unless given),
    so ``max``/``argmax`` and ``relu`` have a unique answer everywhere.
    ``shape`` is a tuple or a strategy of tuples.
    """
    shape = draw(_shapes(shape))
    size = int(np.prod(shape, dtype=np.int64))
    if size > 2**23:
        raise ValueError("float_arrays: too many values to stay distinct in float32")
    seed = draw(rng_seeds())
    if scale is None:
        scale = draw(st.sampled_from([0.125, 0.5, 1.0, 4.0]))
    values = np.random.default_rng(seed).permutation(size) - size // 2
    return (values * scale).astype(dtype).reshape(shape)


@st.composite
def normal_arrays(draw, shape, dtype=np.float64, scale=1.0):
    """Standard normal arrays (times ``scale``) from a drawn seed; ``shape`` as above."""
    shape = draw(_shapes(shape))
    seed = draw(rng_seeds())
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def padded_indices(rng, n=12, steps=6, vocabulary=9):
    """Sequences of word indices 1..vocabulary-1, each padded with zeros at its end (at least one word each)."""
    x = rng.integers(1, vocabulary, (n, steps))
    for row, length in zip(x, rng.integers(1, steps + 1, n)):
        row[length:] = 0
    return x


def assert_predicts_as_each_sequence_alone(model, x, unmasked_model):
    """``model`` on padded sequences ``x`` predicts at the real steps what ``unmasked_model(steps)`` predicts on each
    sequence without its padding (with ``model``'s weights): the padding changed nothing."""
    outputs = model.predict(x, verbose=0)
    for row, output in zip(x, outputs):
        words = row[row != 0]
        alone = unmasked_model(len(words))
        alone.set_weights(model.get_weights())
        np.testing.assert_allclose(output[:len(words)], alone.predict(words[None], verbose=0)[0], rtol=1e-5,
                                   atol=1e-6)


def large_batch_predictions(activation):
    """A Dense(16, relu) -> Dense(10, ``activation``) model's predictions for 600 inputs (predict prepares the Dense
    layers' product kernel for passes that large), and the last layer's logits computed by hand, in float64."""
    import nnscratch
    from nnscratch.layers import Dense, Input

    rng = np.random.default_rng(1)
    model = nnscratch.Sequential([Input((20,)), Dense(16, activation="relu"), Dense(10, activation=activation)])
    x = rng.standard_normal((600, 20)).astype(np.float32)
    predicted = model.predict(x, batch_size=300, verbose=0)
    hidden = np.maximum(x @ model.layers[0].kernel.value + model.layers[0].bias.value, 0)
    return predicted, hidden.astype(np.float64) @ model.layers[1].kernel.value + model.layers[1].bias.value
