"""Weight initialisers, with Keras names and formulas.

Each initialiser is a function ``init(shape, rng) -> ndarray`` (float64; the
layer casts it to ``floatx()``). Fans follow Keras: for a Dense kernel
``(fan_in, fan_out)``; for a Conv2D kernel ``(kh, kw, in, out)`` the fans are
``kh*kw*in`` and ``kh*kw*out``.
"""

import numpy as np

__all__ = ["compute_fans", "get", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros", "ones",
           "orthogonal", "random_uniform", "random_normal"]


def compute_fans(shape) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` for a kernel shape (a scalar's: 1 and 1, as Keras's)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, rng):
    """Uniform in ``[-l, l]`` with ``l = sqrt(6 / (fan_in + fan_out))`` (Keras's default)."""
    fan_in, fan_out = compute_fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def glorot_normal(shape, rng):
    """Truncated normal (within 2 std), ``std = sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / (fan_in + fan_out)), rng)


def he_uniform(shape, rng):
    """Uniform in ``[-l, l]`` with ``l = sqrt(6 / fan_in)``."""
    fan_in, _ = compute_fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


def he_normal(shape, rng):
    """Truncated normal (within 2 std), ``std = sqrt(2 / fan_in)``."""
    fan_in, _ = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / fan_in), rng)


def zeros(shape, rng=None):
    return np.zeros(shape)


def ones(shape, rng=None):
    return np.ones(shape)


def orthogonal(shape, rng):
    """A matrix with orthonormal columns (or rows, if it is wide), Keras's ``Orthogonal(gain=1)``.

    The QR factorisation of a standard normal matrix of the flattened shape
    ``(prod(shape[:-1]), shape[-1])`` (tall: transposed if it is wide), with
    the columns of ``Q`` signed by ``diag(R)`` so that ``Q`` is uniformly
    distributed. Recurrent kernels default to it: ``h @ U`` keeps the norm of
    ``h``, so the states neither blow up nor die out at the start.
    """
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))
    return (q if rows >= cols else q.T).reshape(shape)


def random_uniform(shape, rng):
    """Uniform in ``[-0.05, 0.05]``, Keras's ``RandomUniform()`` (``"uniform"``; the Embedding's default)."""
    return rng.uniform(-0.05, 0.05, size=shape)


def random_normal(shape, rng):
    """Normal with mean 0 and standard deviation 0.05, Keras's ``RandomNormal()`` (``"normal"``)."""
    return rng.normal(0.0, 0.05, size=shape)


def _truncated_normal(shape, std, rng):
    # Keras's truncated normal: redraw values beyond 2 std; the std of the kept
    # values is then ~0.88 std, which Keras corrects by the factor 0.8796.
    std = std / 0.87962566103423978
    values = rng.normal(0.0, std, size=shape)
    outside = np.abs(values) > 2 * std
    while outside.any():
        values[outside] = rng.normal(0.0, std, size=int(outside.sum()))
        outside = np.abs(values) > 2 * std
    return values


_BY_NAME = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "zeros": zeros,
    "ones": ones,
    "orthogonal": orthogonal,
    "random_uniform": random_uniform,
    "uniform": random_uniform,
    "random_normal": random_normal,
    "normal": random_normal,
}


def get(identifier):
    """Return the initialiser for a name (or a callable ``(shape, rng) -> array`` as is)."""
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]
    raise ValueError(f"unknown initializer {identifier!r}; expected one of {sorted(_BY_NAME)}")
