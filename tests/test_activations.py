"""Keras 3's activation functions: the names, the kernels' twins, and independent formulas.

* ``activations.get``: every Keras name, ``"swish"`` -> ``"silu"``, ``"hard_swish"`` -> ``"hard_silu"``,
  clear errors;
* ``bias_activation`` and ``activation_backward``: the Numba twin agrees with
  the NumPy reference (float32 and float64, generated shapes, with and without
  a bias, ``alpha`` drawn), both agree with formulas written here from the
  definitions (``scipy.special.erf`` for gelu), and the derivative at the
  kinks is TensorFlow's (but celu's at 0: its derivative, 1, not TensorFlow's 2);
* the convolution kernels (im2col, Winograd, the inference batch-norm fold) and
  the Dense layers' inference product apply every activation as
  ``bias_activation`` does (a stale Numba cache of ``fast.py`` or
  ``winograd_fast.py`` would fail here: they inline ``_bias_activation_rows``).

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf, expit

from nnscratch import activations
from nnscratch.kernels import fast, reference, winograd_fast, winograd_reference

try:
    from tests.strategies import normal_arrays, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import normal_arrays, rng_seeds

TWINS = [reference, fast]
TWIN_IDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-13}
NEW = ["elu", "selu", "softplus", "softsign", "leaky_relu", "gelu", "silu", "hard_sigmoid", "exponential", "relu6"]
NEWER = ["celu", "hard_silu", "hard_tanh", "log_sigmoid", "mish", "soft_shrink", "hard_shrink", "sparse_plus",
         "sparse_sigmoid", "squareplus", "tanh_shrink"]
ALL = NEW + NEWER
WITH_ALPHA = ["elu", "leaky_relu"]
FROM_Z = ["gelu", "silu", "mish", "hard_silu", "tanh_shrink", "hard_tanh"]   # backward reads z, not y
MASKS = ["relu6", "hard_sigmoid", "hard_tanh", "soft_shrink", "hard_shrink", "sparse_sigmoid"]   # dz = dy * mask

# Keras 3 / TensorFlow's SELU constants (keras.activations.selu's docstring)
SELU_ALPHA = 1.67326324235437728481
SELU_SCALE = 1.05070098735548049342


def formula(name, x, alpha=None):
    """``f(x)`` from its definition, in float64."""
    x = np.asarray(x, dtype=np.float64)
    exp_negative = np.exp(np.minimum(x, 0))   # e^x where x <= 0 (the branch used), no overflow elsewhere
    if name == "elu":
        return np.where(x > 0, x, (1.0 if alpha is None else alpha) * (exp_negative - 1))
    if name == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (exp_negative - 1))
    if name == "softplus":
        return np.logaddexp(0.0, x)
    if name == "softsign":
        return x / (1 + np.abs(x))
    if name == "leaky_relu":
        return np.where(x > 0, x, (0.2 if alpha is None else alpha) * x)
    if name == "gelu":
        return 0.5 * x * (1 + erf(x / np.sqrt(2)))
    if name == "silu":
        return x * expit(x)
    if name == "hard_sigmoid":
        return np.clip(x / 6 + 0.5, 0, 1)
    if name == "exponential":
        return np.exp(x)
    if name == "relu6":
        return np.clip(x, 0, 6)
    if name == "celu":          # alpha = 1
        return np.maximum(x, 0) + np.minimum(exp_negative - 1, 0)
    if name == "hard_silu":
        return x * np.clip(x / 6 + 0.5, 0, 1)
    if name == "hard_tanh":
        return np.clip(x, -1, 1)
    if name == "log_sigmoid":
        return -np.logaddexp(0.0, -x)
    if name == "mish":
        return x * np.tanh(np.logaddexp(0.0, x))
    if name == "soft_shrink":
        return np.sign(x) * np.maximum(np.abs(x) - 0.5, 0)
    if name == "hard_shrink":
        return x * (np.abs(x) > 0.5)
    if name == "sparse_plus":
        return np.where(x >= 1, x, np.clip(x + 1, 0, 2) ** 2 / 4)
    if name == "sparse_sigmoid":
        return np.clip((x + 1) / 2, 0, 1)
    if name == "squareplus":    # b = 4; away from large negative x, where x + sqrt cancels
        return (x + np.sqrt(x * x + 4)) / 2
    if name == "tanh_shrink":
        return x - np.tanh(x)
    raise AssertionError(name)


def derivative(name, x, alpha=None):
    """``f'(x)`` from its definition, in float64 (x away from the kinks)."""
    x = np.asarray(x, dtype=np.float64)
    sigmoid = expit(x)
    exp_negative = np.exp(np.minimum(x, 0))
    if name == "elu":
        return np.where(x > 0, 1.0, (1.0 if alpha is None else alpha) * exp_negative)
    if name == "selu":
        return SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * exp_negative)
    if name == "softplus":
        return sigmoid
    if name == "softsign":
        return 1 / (1 + np.abs(x)) ** 2
    if name == "leaky_relu":
        return np.where(x > 0, 1.0, 0.2 if alpha is None else alpha)
    if name == "gelu":
        return 0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
    if name == "silu":
        return sigmoid + x * sigmoid * (1 - sigmoid)
    if name == "hard_sigmoid":
        return np.where(np.abs(x) < 3, 1 / 6, 0.0)
    if name == "exponential":
        return np.exp(x)
    if name == "relu6":
        return np.where((x > 0) & (x < 6), 1.0, 0.0)
    if name == "celu":
        return np.where(x > 0, 1.0, exp_negative)
    if name == "hard_silu":
        return np.where(x > 3, 1.0, np.where(x > -3, (2 * x + 3) / 6, 0.0))
    if name == "hard_tanh":
        return np.where(np.abs(x) < 1, 1.0, 0.0)
    if name == "log_sigmoid":
        return expit(-x)
    if name == "mish":
        softplus = np.logaddexp(0.0, x)
        return np.tanh(softplus) + x * sigmoid / np.cosh(softplus) ** 2
    if name in ("soft_shrink", "hard_shrink"):
        return np.where(np.abs(x) > 0.5, 1.0, 0.0)
    if name == "sparse_plus":
        return np.clip((x + 1) / 2, 0, 1)
    if name == "sparse_sigmoid":
        return np.where(np.abs(x) < 1, 0.5, 0.0)
    if name == "squareplus":
        return (1 + x / np.sqrt(x * x + 4)) / 2
    if name == "tanh_shrink":
        return np.tanh(x) ** 2
    raise AssertionError(name)


def assert_close(actual, desired, factor=1.0):
    """Equal within ``desired``'s dtype rounding, relative to each value and to the largest one."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.dtype == desired.dtype and actual.shape == desired.shape
    rtol = RTOL[desired.dtype] * factor
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * float(np.abs(desired).max(initial=1.0)))


# a grid of inputs off the kinks: both signs, saturated and linear parts of hard_sigmoid and relu6
GRID = np.array([[-20.0, -7.5, -3.5, -2.9, -1.0, -0.3, -1e-3],
                 [1e-3, 0.25, 1.0, 2.5, 2.9, 5.5, 6.5]])


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------

def test_every_keras_name_is_accepted():
    for name in ALL + ["linear", "relu", "sigmoid", "tanh", "softmax"]:
        assert activations.get(name) == name
    assert activations.get("swish") == "silu"      # Keras's alias; its configs say "silu"
    assert activations.get("hard_swish") == "hard_silu"
    assert activations.get("SWISH") == "silu" and activations.get("GeLU") == "gelu"
    assert activations.get(None) == "linear"
    assert all(activations.needs_preactivation(n) for n in FROM_Z)
    assert not any(activations.needs_preactivation(n) for n in activations.NAMES if n not in FROM_Z)


# Keras's names that change the shape (glu), or need arguments (threshold), and not names at all
@pytest.mark.parametrize("name", ["glu", "sparse_max", "threshold", "", 3, print])
def test_unknown_names_are_refused_with_the_list(name):
    with pytest.raises(ValueError, match=r"unknown activation .*expected one of .*'gelu'.*'swish'"):
        activations.get(name)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_kernels_refuse_unknown_names_and_bad_alpha(twin):
    z = np.zeros((2, 3))
    for name in ("swish", "softmax", "ELU"):   # aliases and case are the layer's business, not the kernel's
        with pytest.raises(ValueError, match="unknown elementwise activation"):
            twin.bias_activation(z.copy(), None, name)
    with pytest.raises(ValueError, match="unknown elementwise activation"):
        twin.activation_backward(z, z, "softmax")
    with pytest.raises(ValueError, match=r"alpha must be a finite number >= 0, got -0.5"):
        twin.bias_activation(z.copy(), None, "elu", -0.5)
    with pytest.raises(ValueError, match=r"alpha must be a finite number >= 0, got nan"):
        twin.activation_backward(z, z, "leaky_relu", alpha=float("nan"))
    with pytest.raises(ValueError, match="'relu' takes no parameter, got alpha=0.1"):
        twin.bias_activation(z.copy(), None, "relu", 0.1)
    for name in FROM_Z:
        with pytest.raises(ValueError, match=f"derivative of {name} needs the pre-activation z"):
            twin.activation_backward(z, z, name)


# ---------------------------------------------------------------------------
# the twins agree
# ---------------------------------------------------------------------------

z_shapes = st.one_of(st.tuples(st.integers(1, 9), st.integers(1, 7)),
                     st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 5)))
alphas = st.sampled_from([None, 0.0, 0.1, 0.3, 1.0, 1.7])


@settings(max_examples=60)
@given(z=normal_arrays(z_shapes, scale=3.0), seed=rng_seeds(), dtype=st.sampled_from(DTYPES),
       name=st.sampled_from(ALL), with_bias=st.booleans(), alpha=alphas)
def test_bias_activation_twins_agree(z, seed, dtype, name, with_bias, alpha):
    alpha = alpha if name in WITH_ALPHA else None
    z = z.astype(dtype)
    bias = np.random.default_rng(seed).standard_normal(z.shape[-1]).astype(dtype) if with_bias else None
    expected = reference.bias_activation(z.copy(), bias, name, alpha)
    work = z.copy()
    out = fast.bias_activation(work, bias, name, alpha)
    assert out is work and out.dtype == dtype      # in place, returned
    assert_close(out, expected, factor=2)


@settings(max_examples=60)
@given(z=normal_arrays(z_shapes, scale=3.0), seed=rng_seeds(), dtype=st.sampled_from(DTYPES),
       name=st.sampled_from(ALL), alpha=alphas)
def test_activation_backward_twins_agree(z, seed, dtype, name, alpha):
    alpha = alpha if name in WITH_ALPHA else None
    z = z.astype(dtype)
    y = reference.bias_activation(z.copy(), None, name, alpha)
    grad_y = np.random.default_rng(seed).standard_normal(z.shape).astype(dtype)
    expected = reference.activation_backward(grad_y, y, name, z, alpha)
    dz = fast.activation_backward(grad_y, y, name, z, alpha)
    assert dz.dtype == dtype and expected.dtype == dtype
    assert_close(dz, expected, factor=2)


@pytest.mark.parametrize("name", ALL)
def test_backward_dtypes_of_mixed_inputs_are_the_twins_same(name):
    """A float32 gradient with float64 outputs: a mask keeps the gradient's dtype, a product promotes."""
    x = GRID.copy()
    y = reference.bias_activation(x.copy(), None, name)
    grad_y = np.ones(x.shape, np.float32)
    expected = reference.activation_backward(grad_y, y, name, z=x)
    dz = fast.activation_backward(grad_y, y, name, z=x)
    assert dz.dtype == expected.dtype == (np.float32 if name in MASKS else np.float64)
    np.testing.assert_allclose(dz, expected, rtol=1e-6)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_a_strided_z_is_activated_in_place(twin):
    base = np.arange(24.0).reshape(4, 6) / 4 - 3
    view = base[:, ::2]
    expected = formula("elu", view + 1)
    out = twin.bias_activation(view, np.ones(3), "elu")
    np.testing.assert_allclose(base[:, ::2], expected, rtol=1e-15)
    np.testing.assert_array_equal(base[:, 1::2], (np.arange(24.0).reshape(4, 6) / 4 - 3)[:, 1::2])
    assert np.shares_memory(out, base)


# ---------------------------------------------------------------------------
# both twins against the definitions
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_derivative_match_the_definitions(twin, name, dtype):
    x = GRID.astype(dtype)
    bias = np.array([0.125, -0.0625] * 3 + [0.0], dtype=dtype)   # pre-activations still off the kinks
    pre = x + bias
    y = twin.bias_activation(x.copy(), bias, name)
    assert y.dtype == dtype
    assert_close(y, formula(name, pre.astype(np.float64)).astype(dtype), factor=4)
    grad_y = np.linspace(-2, 2, pre.size).reshape(pre.shape).astype(dtype)
    dz = twin.activation_backward(grad_y, y, name, z=pre)
    assert dz.dtype == dtype
    # softsign's derivative from y, (1 - |y|)^2, loses float32 digits where |y| is near 1
    factor = 1e3 if (name == "softsign" and dtype == np.float32) else 20
    assert_close(dz, (grad_y * derivative(name, pre.astype(np.float64))).astype(dtype), factor=factor)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("name, alpha", [("elu", 0.5), ("elu", 2.0), ("elu", 0.0), ("leaky_relu", 0.3),
                                         ("leaky_relu", 0.0), ("leaky_relu", 1.5)])
def test_alpha(twin, name, alpha):
    x = GRID.copy()
    y = twin.bias_activation(x.copy(), None, name, alpha)
    np.testing.assert_allclose(y, formula(name, x, alpha), rtol=1e-14, atol=1e-15)
    dz = twin.activation_backward(np.ones_like(x), y, name, alpha=alpha)
    np.testing.assert_allclose(dz, derivative(name, x, alpha), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_defaults_are_keras_function_defaults(twin):
    x = GRID.copy()
    np.testing.assert_array_equal(twin.bias_activation(x.copy(), None, "leaky_relu"),
                                  twin.bias_activation(x.copy(), None, "leaky_relu", 0.2))
    np.testing.assert_array_equal(twin.bias_activation(x.copy(), None, "elu"),
                                  twin.bias_activation(x.copy(), None, "elu", 1.0))
    assert twin.bias_activation(np.array([[-1.0]]), None, "leaky_relu")[0, 0] == -0.2


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_derivative_at_the_kinks_is_tensorflows(twin):
    """At a kink TensorFlow takes 0 for relu6 and hard_sigmoid, the left slope for elu and leaky_relu, and
    selu's right slope (``features < 0 ? ... : scale``); the inner slope for hard_tanh (``clip_by_value``'s
    gradient), the outer ones for hard_silu, 0 for sparse_sigmoid and the shrinks (``tf.where`` takes the
    other branch there). celu and sparse_plus have no kink: their slopes meet (TensorFlow's celu gives 2 at 0,
    the sum of the gradients of ``max(x, 0)`` and ``min(x, 0)``; nnscratch the derivative, 1)."""
    cases = {"relu6": ([0.0, 6.0], [0.0, 0.0]), "hard_sigmoid": ([-3.0, 3.0], [0.0, 0.0]),
             "elu": ([0.0], [1.0]), "leaky_relu": ([0.0], [0.2]), "selu": ([0.0], [SELU_SCALE]),
             "hard_silu": ([-3.0, 3.0], [0.0, 1.0]), "hard_tanh": ([-1.0, 1.0], [1.0, 1.0]),
             "sparse_sigmoid": ([-1.0, 1.0], [0.0, 0.0]), "soft_shrink": ([-0.5, 0.5], [0.0, 0.0]),
             "hard_shrink": ([-0.5, 0.5], [0.0, 0.0]), "celu": ([0.0], [1.0]), "sparse_plus": ([-1.0, 1.0], [0.0, 1.0])}
    for name, (x, slopes) in cases.items():
        x = np.array([x])
        y = twin.bias_activation(x.copy(), None, name)
        np.testing.assert_allclose(twin.activation_backward(np.ones_like(x), y, name, z=x), [slopes], rtol=1e-15)
    x = np.zeros((1, 1))
    np.testing.assert_array_equal(twin.activation_backward(x + 1, twin.bias_activation(x.copy(), None, "elu", 0.5),
                                                           "elu", alpha=0.5), [[0.5]])


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_inputs_stay_finite(twin, dtype):
    x = np.array([[-1e4, -100.0, 100.0, 1e4]], dtype=dtype)
    for name in [n for n in ALL if n != "exponential"]:
        with np.errstate(over="raise", invalid="raise"):
            y = twin.bias_activation(x.copy(), None, name)
            dz = twin.activation_backward(np.ones_like(x), y, name, z=x)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(dz)), name
        assert_close(y, formula(name, x).astype(dtype))
    assert twin.bias_activation(x.copy(), None, "gelu")[0, 3] == 1e4     # no rounding of erfc(-7071) = 2


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_inputs(twin, dtype):
    """squareplus does not cancel for a large negative z (``z + sqrt(z^2 + 4)`` would give 0: here ``~ -1/z``),
    nor overflows near the largest float; neither does the derivative from y; sparse_plus, hard_silu and
    soft_shrink compute no overflowing square or sum in a branch they do not take."""
    big = float(np.finfo(dtype).max) / 2
    x = np.array([[-big, -1e6, -1e3, 1e3, 1e6, big]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = twin.bias_activation(x.copy(), None, "squareplus")
        dz = twin.activation_backward(np.ones_like(x), y, "squareplus")
    np.testing.assert_allclose(y[0, 1:3], -1 / x[0, 1:3], rtol=3e-6)            # 1/|z| - 1/|z|^3 + ...
    np.testing.assert_allclose(y[0, 3:], x[0, 3:], rtol=3e-6)                   # z + 1/z + ...
    np.testing.assert_allclose(dz[0, 1:3], 1 / x[0, 1:3] ** 2, rtol=1e-5)       # y^2 / (y^2 + 1)
    np.testing.assert_allclose(dz[0, 3:], 1, rtol=1e-6)
    assert 0 <= y[0, 0] < 1e-30 and 0 <= dz[0, 0] < 1e-30
    for name in ("sparse_plus", "hard_silu", "soft_shrink", "hard_shrink", "hard_tanh", "mish", "log_sigmoid"):
        with np.errstate(over="raise", invalid="raise"):
            y = twin.bias_activation(x.copy(), None, name)
            dz = twin.activation_backward(np.ones_like(x), y, name, z=x)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(dz)), name


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_celu_is_elu_with_alpha_one(twin):
    """Keras's celu with its default alpha = 1: ``max(z, 0) + expm1(min(z, 0))`` gives elu's bits."""
    x = np.random.default_rng(3).normal(0, 3, (6, 7)).astype(np.float32)
    y = twin.bias_activation(x.copy(), None, "celu")
    np.testing.assert_array_equal(y, twin.bias_activation(x.copy(), None, "elu"))
    grad_y = np.ones_like(x)
    np.testing.assert_array_equal(twin.activation_backward(grad_y, y, "celu"),
                                  twin.activation_backward(grad_y, y, "elu"))


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_nan_stays_nan(twin):
    x = np.array([[np.nan, 1.0]])
    for name in ALL:
        y = twin.bias_activation(x.copy(), None, name)
        dz = twin.activation_backward(np.array([[np.nan, 1.0]]), y, name, z=x)
        assert np.isnan(y[0, 0]) and np.isnan(dz[0, 0]) and np.isfinite(y[0, 1]), name


# ---------------------------------------------------------------------------
# the kernels that fuse the activation into a product
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_convolution_kernels_apply_every_activation(name):
    """im2col and Winograd convolutions, and the inference fold of a batch norm, in both twins: the bits (or the
    rounding) of the product followed by ``bias_activation``."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 8, 8))
    kernel = 0.3 * rng.standard_normal((3, 3, 8, 3))
    bias = rng.standard_normal(3)
    scale, shift = rng.uniform(0.5, 2.0, 3), rng.standard_normal(3)
    geometry = (3, 3, 1, 1, 1, 1, 8, 8)
    expected = reference.bias_activation(reference.conv2d_forward(x, kernel, *geometry), bias, name)
    for twin in TWINS:
        y = twin.conv2d_forward(x, kernel, *geometry, bias=bias, activation=name)
        assert_close(y, expected, factor=100)
        folded = twin.conv2d_forward(x, kernel, *geometry, bias=bias, activation=name, affine=(scale, shift, True))
        assert_close(folded, np.maximum(expected * scale + shift, 0), factor=100)
    for twin in (winograd_reference, winograd_fast):
        y = twin.winograd_conv2d_forward(x, kernel, 1, 1, 8, 8, bias=bias, activation=name)
        assert_close(y, expected, factor=100)


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("name", ALL)
def test_fixed_product_applies_every_activation(twin, name):
    """The Dense layers' inference product (``FixedProduct``, ``matmul_panels``) takes every elementwise activation."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((37, 20)).astype(np.float32)
    w = (0.3 * rng.standard_normal((20, 19))).astype(np.float32)
    bias = rng.standard_normal(19).astype(np.float32)
    pre = a @ w + bias
    expected = reference.bias_activation(a @ w, bias, name)
    # hard_shrink jumps at |z| = 0.5: a product rounded otherwise may land on the other side there
    sure = np.abs(np.abs(pre) - 0.5) > 1e-4 if name == "hard_shrink" else True
    w_p = twin.pack_panels(w)
    for y in (twin.FixedProduct(w, bias, name)(a), twin.matmul_panels(a, w_p, 19, bias, name)):
        np.testing.assert_allclose(np.where(sure, y, 0), np.where(sure, expected, 0), rtol=1e-5, atol=1e-5)
