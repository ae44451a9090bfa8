"""Helpers for the kernel tests: run the fast twins with other block sizes or conv algorithms."""

import contextlib

import numpy as np

from nnscratch import kernels
from nnscratch.kernels import fast, winograd_fast

__all__ = ["module_value", "conv_blocks_of", "winograd_blocks_of", "conv_algorithm", "batchnorm_inputs",
           "assert_twins_agree"]


@contextlib.contextmanager
def module_value(module, name, value):
    """Set ``module.name`` to ``value`` for the duration, then restore it."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def conv_blocks_of(block_bytes):
    """Run the fast conv twin with blocks of about ``block_bytes`` (64: one image per block)."""
    return module_value(fast, "_CONV_BLOCK_BYTES", block_bytes)


def winograd_blocks_of(block_bytes):
    """Run the fast Winograd twin with blocks of about ``block_bytes``."""
    return module_value(winograd_fast, "_WINOGRAD_BLOCK_BYTES", block_bytes)


@contextlib.contextmanager
def conv_algorithm(name):
    """Run with ``kernels.set_conv_algorithm(name)``, then restore the previous one."""
    previous = kernels.get_conv_algorithm()
    kernels.set_conv_algorithm(name)
    try:
        yield
    finally:
        kernels.set_conv_algorithm(previous)


def batchnorm_inputs(rng, shape, dtype):
    """``x, gamma, beta`` for a batch norm over the last axis of ``shape``: an offset, scaled ``x``; gammas of
    both signs (a negative one turns the fused ReLU's mask around); betas in [-1, 1]."""
    x = (rng.uniform(0.5, 2.0) * rng.standard_normal(shape) + rng.uniform(-1, 1)).astype(dtype)
    gamma = (rng.uniform(0.5, 2.0, shape[-1]) * np.where(rng.random(shape[-1]) < 0.2, -1, 1)).astype(dtype)
    beta = rng.uniform(-1.0, 1.0, shape[-1]).astype(dtype)
    return x, gamma, beta


def assert_twins_agree(layer, x, backend):
    """A float32 layer's training forward and input gradient under ``backend``, then under the other twin: equal.

    ``layer`` is built, with its weights set; the kernel backend is left at the other twin
    (the tests' autouse fixture restores the default).
    """
    import nnscratch

    nnscratch.set_backend(backend)
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    nnscratch.set_backend("numpy" if backend == "numba" else "numba")
    np.testing.assert_allclose(layer.forward(x, training=True), y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer.backward(np.ones_like(y)), dx, rtol=1e-5, atol=1e-5)
