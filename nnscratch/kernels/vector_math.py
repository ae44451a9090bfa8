r"""``exp``, ``expm1``, ``tanh`` and ``sigmoid`` of one float32 number, written out so that LLVM vectorises loops.

Inside a compiled loop, Numba turns ``np.tanh(v)`` or ``np.exp(v)`` of one
number into a call of the C library's scalar function: LLVM cannot turn such a
loop into vector instructions, and a float32 ``tanh`` costs about 17 ns
(docs/kernels.md, rule 16), where the arithmetic around it costs well under
one. The functions here compute the same values from additions,
multiplications, one division and a few comparisons, which LLVM does turn
into 8-lane instructions: ``tanh`` of 64 x 128 float32 numbers took 108 us
with the C library and 14 us with these (2 threads, Zen 3).

**Float32 only.** For a float64 number each function is NumPy's (the C
library's): the gradient checks, in float64, need its accuracy. For float32
``exp`` and ``tanh`` are within 1.5 units in the last place (ulps) of the
exact values, ``sigmoid`` within 2.5, ``expm1`` within 1 for ``x <= 0`` (what
ELU, SELU and CELU ask of it) and 1.5 above (checked by
``tests/test_vector_math.py`` against float64 NumPy on float32 numbers drawn
from every binade).

``exp(y)``: *range reduction*. Write :math:`y = k \ln 2 + r` with ``k`` the
integer nearest to :math:`y / \ln 2`, so :math:`|r| \le \ln 2 / 2` and

.. math:: e^y = 2^k e^r.

``k`` is rounded by adding and subtracting :math:`1.5 \cdot 2^{23}` (the
float32 sum has no bits below the units), :math:`k \ln 2` is subtracted in
two parts (Cody and Waite: ``LN2_HI`` has few enough bits that
:math:`k \cdot` ``LN2_HI`` is exact), :math:`e^r` is a polynomial of degree
6 (relative error 3e-9 on the interval, below float32's 6e-8), and
:math:`2^k` is made from its bits: a float32 with exponent field
:math:`k + 127` and a zero fraction. :math:`2^k` is applied in two halves,
so that ``k`` from -150 to 128 (the outputs that are tiny, unnormal or just
below overflow) needs no special case. Beyond the float32 range the result
is 0 or infinity, and NaN stays NaN.

``expm1(y)`` (:math:`e^y - 1`, which ``exp(y) - 1`` would get wrong near 0,
where the difference cancels): the same reduction and polynomial without its
leading 1, :math:`q = e^r - 1`, then

.. math:: e^y - 1 = 2^k q + (2^k - 1),

exact for ``k = 0`` (:math:`|y| \le \ln 2 / 2`: just ``q``) and with no
cancellation for ``k < 0``; above :math:`2^{26}` the 1 is below half an ulp and
the result is ``exp(y)``, below :math:`y = -17.9` it is -1, and for
:math:`|y| < 2^{-25}` it is ``y`` itself (a zero keeps its sign, as NumPy's).

``tanh(x)``: for :math:`|x| < 0.625` an odd polynomial of degree 11
(relative error 4e-9), else

.. math:: \tanh |x| = \frac{1 - e^{-2|x|}}{1 + e^{-2|x|}},

which never overflows and loses nothing to cancellation there
(:math:`e^{-2|x|} \le 0.29`); the sign of ``x`` is copied onto the result.

``sigmoid(x)``: :math:`e = e^{-|x|}` (never overflows), then
:math:`1 / (1 + e)` for :math:`x \ge 0` and :math:`e / (1 + e)` below, the
formula of :func:`nnscratch.kernels.reference.bias_activation`.

Both branches are computed and one is kept (LLVM's ``select``, no jump), and
the division lives in a function compiled with ``error_model="numpy"`` (no
division-by-zero check, which would stop the vectorisation of the loop that
calls it). The coefficients were fitted in float64 by least squares on the
relative error at 3,000 Chebyshev points of each interval, reweighted toward
the minimax error (Lawson's iterations).

Called from plain Python, or with ``NUMBA_DISABLE_JIT=1``, the same code runs
on NumPy float32 scalars, with the same roundings. For float64 the compiled
functions call the C library and plain Python calls NumPy, which may differ
in the last bit (as ``np.tanh`` inside and outside Numba always did).
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = ["exp", "expm1", "tanh", "sigmoid", "float32_from_bits"]

_F = np.float32
ZERO, ONE, TWO = _F(0), _F(1), _F(2)
LOG2E = _F(1.4426950408889634)                     # 1 / ln 2
LN2_HI, LN2_LO = _F(0.693359375), _F(-2.12194440e-4)   # ln 2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits
ROUNDER = _F(12582912.0)                            # 1.5 * 2**23: x + ROUNDER - ROUNDER rounds x to an integer
LOWEST, HIGHEST = _F(-104.0), _F(88.7228394)        # e**y is 0 below, infinite above, in float32
INF = _F(np.inf)
# e**r = 1 + r + r**2 (E2 + r (E3 + ...)) for |r| <= ln(2) / 2
E2, E3, E4, E5, E6 = (_F(0.4999999345), _F(0.1666652069), _F(0.0416683874), _F(0.00836871), _F(0.0013814613))
# tanh x = x + x s (T3 + s (T5 + ...)), s = x**2, for |x| < TANH_CUT
T3, T5, T7, T9, T11 = (_F(-0.3333328194), _F(0.1333144217), _F(-0.0537397123), _F(0.0206390777),
                       _F(-0.0057049758))
TANH_CUT = _F(0.625)
EXPM1_LOWEST = _F(-17.9)        # e**y - 1 rounds to -1 below (e**-17.9 is under half an ulp of 1)
EXPM1_SCALED = _F(26.0)         # |k| up to which e**y - 1 = 2**k (e**r - 1) + (2**k - 1); above, e**y
EXPM1_ITSELF = _F(2.0 ** -25)   # below this |y|, e**y - 1 rounds to y (the sign of a zero kept)


@intrinsic
def _float32_from_bits(typingctx, bits):
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        word = context.cast(builder, args[0], signature.args[0], types.int32)
        return builder.bitcast(word, ir.FloatType())
    return types.float32(bits), codegen


def float32_from_bits(bits):
    """The float32 whose 32 bits are those of the integer ``bits`` (``np.int32(bits).view(np.float32)``)."""
    return np.array(bits, np.int64).astype(np.int32).view(np.float32)[()]


@overload(float32_from_bits)
def _float32_from_bits_compiled(bits):
    if isinstance(bits, types.Integer):
        return lambda bits: _float32_from_bits(bits)
    return None


@njit(error_model="numpy")
def _exp32(y):
    k_from = y if y > LOWEST else LOWEST            # (NaN too: the integer part is never made of NaN)
    k_from = k_from if k_from < HIGHEST else HIGHEST
    k = (k_from * LOG2E + ROUNDER) - ROUNDER        # the integer nearest to y / ln 2, as a float32
    r = (y - k * LN2_HI) - k * LN2_LO
    p = ONE + r + r * r * (E2 + r * (E3 + r * (E4 + r * (E5 + r * E6))))
    half = np.int32(k) >> 1                         # 2**k = 2**half * 2**(k - half), both normal numbers
    v = p * float32_from_bits((half + 127) << 23) * float32_from_bits((np.int32(k) - half + 127) << 23)
    v = ZERO if y < LOWEST else v
    return INF if y > HIGHEST else v


@njit(error_model="numpy")
def _expm1_32(y):
    k_from = y if y > LOWEST else LOWEST            # (as _exp32: NaN gives some k, and stays NaN below)
    k_from = k_from if k_from < HIGHEST else HIGHEST
    k = (k_from * LOG2E + ROUNDER) - ROUNDER
    r = (y - k * LN2_HI) - k * LN2_LO
    q = r + r * r * (E2 + r * (E3 + r * (E4 + r * (E5 + r * E6))))        # e**r - 1
    scaled = k if k > -EXPM1_SCALED else -EXPM1_SCALED
    scaled = scaled if scaled < EXPM1_SCALED else EXPM1_SCALED
    t = float32_from_bits((np.int32(scaled) + 127) << 23)                  # 2**k, a normal number
    v = t * q + (t - ONE)
    half = np.int32(k) >> 1                                                # e**y as in _exp32, for k > 26
    large = (ONE + q) * float32_from_bits((half + 127) << 23) * float32_from_bits((np.int32(k) - half + 127) << 23)
    v = large if k > EXPM1_SCALED else v
    v = INF if y > HIGHEST else v
    v = y if abs(y) < EXPM1_ITSELF else v
    return -ONE if y < EXPM1_LOWEST else v


@njit(error_model="numpy")
def _tanh32(x):
    a = abs(x)
    s = a * a
    small = a + a * s * (T3 + s * (T5 + s * (T7 + s * (T9 + s * T11))))
    e = _exp32(-TWO * a)
    large = (ONE - e) / (ONE + e)
    return math.copysign(small if a < TANH_CUT else large, x)


@njit(error_model="numpy")
def _sigmoid32(x):
    e = _exp32(-abs(x))
    return ONE / (ONE + e) if x >= ZERO else e / (ONE + e)


def exp(x):
    """:math:`e^x` of one number: float32 by range reduction (this module's docstring), float64 by NumPy."""
    return _python32(_exp32, x) if isinstance(x, np.float32) else np.exp(x)


def expm1(x):
    """:math:`e^x - 1` of one number, accurate near 0: float32 by this module's formulas, float64 by NumPy."""
    return _python32(_expm1_32, x) if isinstance(x, np.float32) else np.expm1(x)


def tanh(x):
    """:math:`\\tanh x` of one number: float32 by this module's formulas, float64 by NumPy."""
    return _python32(_tanh32, x) if isinstance(x, np.float32) else np.tanh(x)


def sigmoid(x):
    """:math:`1 / (1 + e^{-x})` of one number, without overflow: float32 by :func:`exp`, float64 by NumPy's."""
    if isinstance(x, np.float32):
        return _python32(_sigmoid32, x)
    e = np.exp(-np.abs(x))
    return 1 / (1 + e) if x >= 0 else e / (1 + e)


def _python32(function, x):
    """``function(x)`` run as Python (these functions outside compiled code, or the JIT off), as a float32.

    Without NumPy's warnings: the branch that is not kept may overflow
    (compiled code does not warn either).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return np.float32(function(x))


def _by_precision(float32, float64):
    """An overload's choice: ``float32`` (compiled) for a float32 argument, ``float64`` for a float64 one."""
    def choose(x):
        if x == types.float32:
            return float32
        if x == types.float64:
            return float64
        return None
    return choose


@njit
def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)


overload(exp)(_by_precision(lambda x: _exp32(x), lambda x: np.exp(x)))
overload(expm1)(_by_precision(lambda x: _expm1_32(x), lambda x: np.expm1(x)))
overload(tanh)(_by_precision(lambda x: _tanh32(x), lambda x: np.tanh(x)))
overload(sigmoid)(_by_precision(lambda x: _sigmoid32(x), lambda x: _sigmoid64(x)))
