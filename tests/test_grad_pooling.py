"""Gradient checks, in float64, of AveragePooling2D, the global poolings, Reshape, ZeroPadding2D and
UpSampling2D, on both kernel twins, with :func:`nnscratch.gradcheck.check_layer` (and one
:func:`check_model`).

Every one of these layers is linear, except global max pooling, which is piecewise linear: a central
difference is exact on them up to rounding, so they take ``LINEAR_STEP``; global max pooling takes
inputs 1e-2 apart, so that a step never changes a winner (see ``tests/grad_strategies.py``).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.gradcheck import check_layer, check_model
from nnscratch.layers import (AveragePooling2D, Conv2D, Dense, GlobalAveragePooling2D, GlobalMaxPooling2D, Reshape,
                              UpSampling2D, ZeroPadding2D)

try:
    from tests.grad_strategies import (LINEAR_STEP, STEP, TOLERANCE, image_shapes, pool_geometry, rng_seeds,
                                       well_separated)
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import LINEAR_STEP, STEP, TOLERANCE, image_shapes, pool_geometry, rng_seeds, well_separated


def assert_gradients_match(report):
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


both_backends = pytest.mark.parametrize("backend", kernels.BACKENDS)  # conftest restores the default after


# ----------------------------------------------------------------- AveragePooling2D

@both_backends
@given(geom=pool_geometry(), seed=rng_seeds())
def test_average_pooling_gradients(backend, geom, seed):
    """Overlapping windows (stride < pool), odd sizes and "same" padding with its partial windows."""
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(seed)
    layer = AveragePooling2D(pool_size=(geom.kh, geom.kw), strides=(geom.sh, geom.sw), padding=geom.padding)
    layer.build(geom.x_shape[1:])
    assert layer.output_shape == (None, geom.out_h, geom.out_w, geom.c)
    report = check_layer(layer, x=rng.standard_normal(geom.x_shape), seed=seed % 1000, h=LINEAR_STEP)
    assert [c.name for c in report.checks] == ["input"]
    assert_gradients_match(report)


# ------------------------------------------------------------------- global pooling

@both_backends
@given(shape=image_shapes(), keepdims=st.booleans(), seed=rng_seeds())
def test_global_average_pooling_gradients(backend, shape, keepdims, seed):
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(seed)
    layer = GlobalAveragePooling2D(keepdims=keepdims)
    assert_gradients_match(check_layer(layer, x=rng.standard_normal(shape), seed=seed % 1000, h=LINEAR_STEP))
    assert layer.output_shape == ((None, 1, 1, shape[3]) if keepdims else (None, shape[3]))


@both_backends
@given(shape=image_shapes(), keepdims=st.booleans(), offset=st.sampled_from([0.0, -10.0]), seed=rng_seeds())
def test_global_max_pooling_gradients(backend, shape, keepdims, offset, seed):
    """Distinct inputs 1e-2 apart (no ties): a step of LINEAR_STEP never moves the maximum to another pixel."""
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(seed)
    layer = GlobalMaxPooling2D(keepdims=keepdims)
    x = well_separated(rng, shape) + offset
    assert_gradients_match(check_layer(layer, x=x, seed=seed % 1000, h=LINEAR_STEP))


# --------------------------------------------------------------- reshaping layers

@st.composite
def reshape_cases(draw):
    """A batch shape and a target of the same size per sample, with or without one -1."""
    shape = draw(image_shapes())
    size = shape[1] * shape[2] * shape[3]
    first = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
    target = draw(st.sampled_from([(first, size // first), (first, -1), (-1, first), (size,), (-1,)]))
    return shape, target


@settings(max_examples=15)
@given(case=reshape_cases(), seed=rng_seeds())
def test_reshape_gradients(case, seed):
    shape, target = case
    layer = Reshape(target)
    assert_gradients_match(check_layer(layer, x=np.random.default_rng(seed).standard_normal(shape),
                                       seed=seed % 1000, h=LINEAR_STEP))


def paddings():
    side = st.integers(0, 2)
    return st.one_of(side, st.tuples(side, side), st.tuples(st.tuples(side, side), st.tuples(side, side)))


@settings(max_examples=15)
@given(shape=image_shapes(), padding=paddings(), seed=rng_seeds())
def test_zero_padding_gradients(shape, padding, seed):
    layer = ZeroPadding2D(padding)
    assert_gradients_match(check_layer(layer, x=np.random.default_rng(seed).standard_normal(shape),
                                       seed=seed % 1000, h=LINEAR_STEP))


@both_backends
@given(shape=image_shapes(), size=st.tuples(st.integers(1, 3), st.integers(1, 3)), seed=rng_seeds())
def test_up_sampling_gradients(backend, shape, size, seed):
    nnscratch.set_backend(backend)
    layer = UpSampling2D(size)
    assert_gradients_match(check_layer(layer, x=np.random.default_rng(seed).standard_normal(shape),
                                       seed=seed % 1000, h=LINEAR_STEP))


# --------------------------------------------------------------------- a model

@both_backends
@pytest.mark.parametrize("seed", [0, 1])
def test_model_with_every_new_layer_gradients(float64, backend, seed):
    """Input -> ZeroPadding -> Conv2D(tanh) -> AvgPool(same, overlapping) -> UpSampling -> GlobalAvgPool(keepdims)
    -> Reshape -> Dense(softmax); then Input -> Conv2D(tanh) -> GlobalMaxPooling2D -> Dense(softmax)."""
    nnscratch.set_backend(backend)
    nnscratch.set_random_seed(seed)
    model = nnscratch.Sequential([
        nnscratch.Input((5, 6, 2)),
        ZeroPadding2D(((1, 0), (0, 2))),
        Conv2D(3, 3, activation="tanh"),
        AveragePooling2D(3, strides=2, padding="same"),
        UpSampling2D((1, 2)),
        GlobalAveragePooling2D(keepdims=True),
        Reshape((-1,)),
        Dense(4, activation="softmax"),
    ])
    x = np.random.default_rng(seed).standard_normal((3, 5, 6, 2))
    report = check_model(model, x, seed=seed, h=STEP)
    assert [c.name for c in report.checks][0] == "input" and len(report.checks) == 1 + 2 + 2
    assert_gradients_match(report)

    model = nnscratch.Sequential([nnscratch.Input((4, 4, 2)), Conv2D(3, 2, activation="tanh"), GlobalMaxPooling2D(),
                                  Dense(2, activation="softmax")])
    assert_gradients_match(check_model(model, x[:, :4, :4, :], seed=seed, h=STEP))
