"""Keras 3's activation functions: the names, the kernels' twins, and independent formulas.

* ``activations.get``: every Keras name, ``"swish"`` -> ``"silu"``, clear errors;
* ``bias_activation`` and ``activation_backward``: the Numba twin agrees with
  the NumPy reference (float32 and float64, generated shapes, with and without
  a bias, ``alpha`` drawn), both agree with formulas written here from the
  definitions (``scipy.special.erf`` for gelu), and the derivative at the
  kinks is TensorFlow's;
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
WITH_ALPHA = ["elu", "leaky_relu"]

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
    for name in NEW + ["linear", "relu", "sigmoid", "tanh", "softmax"]:
        assert activations.get(name) == name
    assert activations.get("swish") == "silu"      # Keras's alias; its configs say "silu"
    assert activations.get("SWISH") == "silu" and activations.get("GeLU") == "gelu"
    assert activations.get(None) == "linear"
    assert activations.needs_preactivation("gelu") and activations.needs_preactivation("silu")
    assert not any(activations.needs_preactivation(n) for n in activations.NAMES if n not in ("gelu", "silu"))


@pytest.mark.parametrize("name", ["mish", "hard_silu", "log_softmax", "celu", "", 3, print])
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
    for name in ("gelu", "silu"):
        with pytest.raises(ValueError, match=f"derivative of {name} needs the pre-activation z"):
            twin.activation_backward(z, z, name)


# ---------------------------------------------------------------------------
# the twins agree
# ---------------------------------------------------------------------------

z_shapes = st.one_of(st.tuples(st.integers(1, 9), st.integers(1, 7)),
                     st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 5)))
alphas = st.sampled_from([None, 0.0, 0.1, 0.3, 1.0, 1.7])


@settings(max_examples=40)
@given(z=normal_arrays(z_shapes, scale=3.0), seed=rng_seeds(), dtype=st.sampled_from(DTYPES),
       name=st.sampled_from(NEW), with_bias=st.booleans(), alpha=alphas)
def test_bias_activation_twins_agree(z, seed, dtype, name, with_bias, alpha):
    alpha = alpha if name in WITH_ALPHA else None
    z = z.astype(dtype)
    bias = np.random.default_rng(seed).standard_normal(z.shape[-1]).astype(dtype) if with_bias else None
    expected = reference.bias_activation(z.copy(), bias, name, alpha)
    work = z.copy()
    out = fast.bias_activation(work, bias, name, alpha)
    assert out is work and out.dtype == dtype      # in place, returned
    assert_close(out, expected, factor=2)


@settings(max_examples=40)
@given(z=normal_arrays(z_shapes, scale=3.0), seed=rng_seeds(), dtype=st.sampled_from(DTYPES),
       name=st.sampled_from(NEW), alpha=alphas)
def test_activation_backward_twins_agree(z, seed, dtype, name, alpha):
    alpha = alpha if name in WITH_ALPHA else None
    z = z.astype(dtype)
    y = reference.bias_activation(z.copy(), None, name, alpha)
    grad_y = np.random.default_rng(seed).standard_normal(z.shape).astype(dtype)
    expected = reference.activation_backward(grad_y, y, name, z, alpha)
    dz = fast.activation_backward(grad_y, y, name, z, alpha)
    assert dz.dtype == dtype and expected.dtype == dtype
    assert_close(dz, expected, factor=2)


@pytest.mark.parametrize("name", NEW)
def test_backward_dtypes_of_mixed_inputs_are_the_twins_same(name):
    """A float32 gradient with float64 outputs: a mask keeps the gradient's dtype, a product promotes."""
    x = GRID.copy()
    y = reference.bias_activation(x.copy(), None, name)
    grad_y = np.ones(x.shape, np.float32)
    expected = reference.activation_backward(grad_y, y, name, z=x)
    dz = fast.activation_backward(grad_y, y, name, z=x)
    assert dz.dtype == expected.dtype == (np.float32 if name in ("relu6", "hard_sigmoid") else np.float64)
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
@pytest.mark.parametrize("name", NEW)
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
    selu's right slope (``features < 0 ? ... : scale``)."""
    cases = {"relu6": ([0.0, 6.0], [0.0, 0.0]), "hard_sigmoid": ([-3.0, 3.0], [0.0, 0.0]),
             "elu": ([0.0], [1.0]), "leaky_relu": ([0.0], [0.2]), "selu": ([0.0], [SELU_SCALE])}
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
    for name in ["elu", "selu", "softplus", "softsign", "leaky_relu", "gelu", "silu", "hard_sigmoid", "relu6"]:
        with np.errstate(over="raise", invalid="raise"):
            y = twin.bias_activation(x.copy(), None, name)
            dz = twin.activation_backward(np.ones_like(x), y, name, z=x)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(dz)), name
        assert_close(y, formula(name, x).astype(dtype))
    assert twin.bias_activation(x.copy(), None, "gelu")[0, 3] == 1e4     # no rounding of erfc(-7071) = 2


@pytest.mark.parametrize("twin", TWINS, ids=TWIN_IDS)
def test_nan_stays_nan(twin):
    x = np.array([[np.nan, 1.0]])
    for name in NEW:
        y = twin.bias_activation(x.copy(), None, name)
        dz = twin.activation_backward(np.array([[np.nan, 1.0]]), y, name, z=x)
        assert np.isnan(y[0, 0]) and np.isnan(dz[0, 0]) and np.isfinite(y[0, 1]), name


# ---------------------------------------------------------------------------
# the kernels that fuse the activation into a product
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NEW)
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
@pytest.mark.parametrize("name", NEW)
def test_fixed_product_applies_every_activation(twin, name):
    """The Dense layers' inference product (``FixedProduct``, ``matmul_panels``) takes every elementwise activation."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((37, 20)).astype(np.float32)
    w = (0.3 * rng.standard_normal((20, 19))).astype(np.float32)
    bias = rng.standard_normal(19).astype(np.float32)
    expected = reference.bias_activation(a @ w, bias, name)
    np.testing.assert_allclose(twin.FixedProduct(w, bias, name)(a), expected, rtol=1e-5, atol=1e-5)
    w_p = twin.pack_panels(w)
    np.testing.assert_allclose(twin.matmul_panels(a, w_p, 19, bias, name), expected, rtol=1e-5, atol=1e-5)
