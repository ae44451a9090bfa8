"""``nnscratch.kernels.vector_math``: float32 ``exp``, ``expm1``, ``tanh`` and ``sigmoid`` written out for vector loops.

Each is checked against float64 NumPy, in units in the last place (ulps) of
the float32 result, on float32 numbers drawn from every binade (random bit
patterns), on dense grids around the points where the formulas change (the
cut of ``tanh``'s polynomial, the ends of ``exp``'s range, ``expm1``'s changes
of formula) and on the special
values. Compiled and plain Python give the same bits; float64 goes to NumPy
unchanged; and the compiled loops really are vector code. Runs with
``NUMBA_DISABLE_JIT=1`` too (fewer numbers, as the loops are then Python).
"""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from nnscratch.kernels import fast, vector_math
from nnscratch.kernels.reference import SELU_SCALE, SELU_SCALE_ALPHA

try:
    from tests.strategies import rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import rng_seeds

TINY = np.finfo(np.float32).tiny
SAMPLES = 20_000 if numba.config.DISABLE_JIT else 2_000_000


@njit
def _exp_loop(x, out):
    for k in range(x.size):
        out[k] = vector_math.exp(x[k])


@njit
def _expm1_loop(x, out):
    for k in range(x.size):
        out[k] = vector_math.expm1(x[k])


@njit
def _tanh_loop(x, out):
    for k in range(x.size):
        out[k] = vector_math.tanh(x[k])


@njit
def _sigmoid_loop(x, out):
    for k in range(x.size):
        out[k] = vector_math.sigmoid(x[k])


def _exact_sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


FUNCTIONS = {  # name: (compiled loop, scalar function, exact float64 function, largest error in ulps)
    "exp": (_exp_loop, vector_math.exp, np.exp, 2.0),
    "expm1": (_expm1_loop, vector_math.expm1, np.expm1, 2.0),
    "tanh": (_tanh_loop, vector_math.tanh, np.tanh, 2.0),
    "sigmoid": (_sigmoid_loop, vector_math.sigmoid, _exact_sigmoid, 3.0),
}


def _apply(name, x):
    out = np.empty_like(x)
    FUNCTIONS[name][0](x, out)
    return out


def _ulps(actual, exact):
    """|actual - exact| in ulps of the float32 nearest to ``exact`` (the ulp of a normal number at the bottom)."""
    nearest = exact.astype(np.float32)
    ulp = np.spacing(np.maximum(np.abs(nearest), TINY)).astype(np.float64)
    return np.abs(actual.astype(np.float64) - exact) / ulp


def _every_binade(rng, size, limit):
    """Float32 numbers of both signs with |x| < limit, their bits drawn uniformly: each binade about equally."""
    bits = rng.integers(0, 2 ** 31, size, dtype=np.int64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x) & (x < limit)]
    return np.concatenate([x, -x])


def _grid(center, width, size=4001):
    return np.linspace(center - width, center + width, size, dtype=np.float32)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float32_within_a_few_ulps_in_every_binade(name):
    limit = 120.0 if name in ("exp", "expm1") else 1e30   # beyond 120, exp is 0 or infinite (tested below)
    x = _every_binade(np.random.default_rng(7), SAMPLES, limit)
    x = np.concatenate([x, _grid(0.625, 0.05), _grid(-0.625, 0.05), _grid(88.5, 0.3), _grid(-87.3, 0.2),
                        _grid(-100.0, 4.0), _grid(0.0, 1e-3), _grid(9.0, 1.0), _grid(0.0, 0.4), _grid(-17.9, 0.1),
                        _grid(18.02, 0.1), _grid(0.0, 1e-7)])
    exact = FUNCTIONS[name][2](x.astype(np.float64))
    with np.errstate(over="ignore"):
        representable = np.abs(exact) < np.finfo(np.float32).max
    actual = _apply(name, x)
    assert actual.dtype == np.float32
    worst = _ulps(actual[representable], exact[representable])
    assert worst.max() <= FUNCTIONS[name][3], (name, x[representable][np.argmax(worst)], worst.max())


def test_exp_ends_of_the_float32_range():
    x = np.array([88.72, 88.7229, 89.0, 1e4, np.inf, -103.97, -104.5, -1e4, -np.inf], np.float32)
    y = _apply("exp", x)
    assert np.isfinite(y[0]) and np.all(np.isposinf(y[2:5]))
    assert 0 < y[5] < TINY                           # an unnormal number, not flushed to zero
    np.testing.assert_array_equal(y[6:], 0)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_special_values(name):
    x = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45], np.float32)
    y = _apply(name, x)
    assert np.isnan(y[0])
    expected = {"exp": [1, 1, np.inf, 0, 1, 1],
                "expm1": [0.0, -0.0, np.inf, -1, 1e-45, -1e-45],
                "tanh": [0.0, -0.0, 1, -1, 1e-45, -1e-45],
                "sigmoid": [0.5, 0.5, 1, 0, 0.5, 0.5]}[name]
    np.testing.assert_array_equal(y[1:], np.array(expected, np.float32))
    if name in ("tanh", "expm1"):                    # the sign of zero, as NumPy's
        assert np.signbit(y[2]) and not np.signbit(y[1])


@pytest.mark.parametrize("name", list(FUNCTIONS))
@given(seed=rng_seeds())
def test_compiled_and_python_give_the_same_bits(name, seed):
    x = _every_binade(np.random.default_rng(seed), 200, 200.0)
    scalar = FUNCTIONS[name][1]
    python = np.array([scalar(v) for v in x], np.float32)
    np.testing.assert_array_equal(_apply(name, x), python)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float64_keeps_the_libraries_accuracy(name):
    """Float64 (the gradient checks) is the C library's (compiled) or NumPy's: within one ulp of each other."""
    x = np.random.default_rng(3).standard_normal(1000) * 20
    out = np.empty_like(x)
    FUNCTIONS[name][0](x, out)
    exact = FUNCTIONS[name][2](x)
    np.testing.assert_allclose(out, exact, rtol=2.3e-16, atol=0)
    assert FUNCTIONS[name][1](np.float64(0.3)) == FUNCTIONS[name][2](np.float64(0.3))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "silu", "elu", "selu", "celu", "exponential"])
def test_bias_activation_float32_uses_them(activation):
    z = np.random.default_rng(5).standard_normal((7, 33)).astype(np.float32) * 4
    bias = np.linspace(-1, 1, 33, dtype=np.float32)
    v = z + bias
    scale, scale_alpha = np.float32(SELU_SCALE), np.float32(SELU_SCALE_ALPHA)
    expected = {"tanh": lambda: _apply("tanh", v.ravel()), "sigmoid": lambda: _apply("sigmoid", v.ravel()),
                "silu": lambda: v.ravel() * _apply("sigmoid", v.ravel()),
                "elu": lambda: np.where(v.ravel() > 0, v.ravel(), _apply("expm1", v.ravel())),
                "celu": lambda: np.where(v.ravel() > 0, v.ravel(), _apply("expm1", v.ravel())),
                "selu": lambda: np.where(v.ravel() > 0, scale * v.ravel(), scale_alpha * _apply("expm1", v.ravel())),
                "exponential": lambda: _apply("exp", v.ravel())}[activation]().reshape(v.shape)
    np.testing.assert_array_equal(fast.bias_activation(z.copy(), bias, activation), expected)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no machine code is made without the JIT")
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_the_compiled_loops_are_vector_code(name):
    """The point of the module: LLVM turns the loop into vector instructions (a packed division)."""
    loop = FUNCTIONS[name][0]
    loop(np.ones(16, np.float32), np.empty(16, np.float32))
    signature = next(s for s in loop.signatures if s[0].dtype == numba.float32)
    llvm = loop.inspect_llvm(signature)
    assert "fdiv <" in llvm or name in ("exp", "expm1"), "no vector division in the loop"
    assert "x float>" in llvm
    assert not any(f"@{c}f" in llvm for c in ("tanh", "exp", "expm1")), "the C library's scalar function is called"


@given(bits=st.integers(-2 ** 31, 2 ** 31 - 1))
def test_float32_from_bits(bits):
    expected = np.array([bits], np.int32).view(np.float32)[0]
    got = vector_math.float32_from_bits(bits)
    assert got.dtype == np.float32
    assert got.tobytes() == expected.tobytes()
