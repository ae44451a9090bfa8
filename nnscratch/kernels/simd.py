"""Short vectors for Numba kernels: 32 bytes (8 float32 or 4 float64) held in one register.

Numba compiles scalar Python, and LLVM turns loops of it into vector
instructions where it can (a dot product along contiguous memory). Some
kernels need a shape LLVM does not find on its own: the outer-product
product of :mod:`nnscratch.kernels.matmul_fast` keeps 8 vectors of sums
in registers, each lane the sum of another output. Here is what it is
written with: a Numba type for one such vector (:class:`Vector`) and the
handful of operations it needs, each one LLVM instruction (or intrinsic).

Each operation is also a plain Python function on NumPy arrays of
``lanes(dtype)`` numbers, with the same meaning. That is what runs under
``NUMBA_DISABLE_JIT=1``, and what a reader can take each one to mean; the
compiled one differs only in :func:`fma`, which rounds once where NumPy's
``x * y + z`` rounds twice.

Where the CPU has no 256-bit vectors (SSE only, ARM's 128-bit NEON), LLVM
splits each vector into two or four; the results are the same.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

__all__ = ["VECTOR_BYTES", "PYTHON", "lanes", "Vector", "load", "store", "broadcast", "fma", "add", "relu", "lane"]

VECTOR_BYTES = 32   # one AVX register


def lanes(dtype):
    """How many numbers of ``dtype`` one vector holds: 8 float32, 4 float64."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


class Vector(types.Type):
    """The Numba type of a vector of ``lanes(dtype)`` floats, an LLVM ``<8 x float>`` or ``<4 x double>``."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.count = lanes(np.dtype(str(dtype)))
        super().__init__(name=f"Vector({dtype} x {self.count})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = ir.FloatType() if fe_type.dtype == types.float32 else ir.DoubleType()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.count))


def _llvm(vector_type):
    element = ir.FloatType() if vector_type.dtype == types.float32 else ir.DoubleType()
    return ir.VectorType(element, vector_type.count)


def _is_float(numba_type):
    return numba_type in (types.float32, types.float64)


# Each operation's plain Python meaning, by name, whether or not the JIT is on (tests compare the two).
PYTHON = {}


def _compiled_as(compiled):
    """Use ``compiled`` (an ``@intrinsic``) inside Numba; the decorated Python function where the JIT is off."""
    def choose(python):
        PYTHON[python.__name__] = python
        return python if numba.config.DISABLE_JIT else compiled
    return choose


# --------------------------------------------------------------- memory

def _address(context, builder, array_type, array, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])


@intrinsic
def _load(typingctx, array, index):
    if not (isinstance(array, types.Array) and _is_float(array.dtype) and isinstance(index, types.Integer)):
        return None
    vector = Vector(array.dtype)

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        address = _address(context, builder, signature.args[0], args[0], index)
        return builder.load(builder.bitcast(address, _llvm(vector).as_pointer()), align=1)
    return vector(array, index), codegen


@_compiled_as(_load)
def load(array, index):
    """The ``lanes`` numbers ``array.flat[index:index + lanes]`` of a C-contiguous array (no bounds check)."""
    return array.reshape(-1)[index:index + lanes(array.dtype)].copy()


@intrinsic
def _store(typingctx, array, index, vector):
    if not (isinstance(array, types.Array) and isinstance(vector, Vector) and array.dtype == vector.dtype
            and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        address = _address(context, builder, signature.args[0], args[0], index)
        builder.store(args[2], builder.bitcast(address, _llvm(vector).as_pointer()), align=1)
        return context.get_dummy_value()
    return types.none(array, index, vector), codegen


@_compiled_as(_store)
def store(array, index, vector):
    """``array.flat[index:index + lanes] = vector`` for a C-contiguous array (no bounds check)."""
    array.reshape(-1)[index:index + len(vector)] = vector


# --------------------------------------------------------------- arithmetic

@intrinsic
def _broadcast(typingctx, x):
    if not _is_float(x):
        return None
    vector = Vector(x)

    def codegen(context, builder, signature, args):
        llvm_type = _llvm(vector)
        one = builder.insert_element(ir.Constant(llvm_type, ir.Undefined), args[0], ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(one, ir.Constant(llvm_type, ir.Undefined),
                                      ir.Constant(ir.VectorType(ir.IntType(32), vector.count), [0] * vector.count))
    return vector(x), codegen


@_compiled_as(_broadcast)
def broadcast(x):
    """A vector with ``x`` (a float32 or float64 scalar) in every lane."""
    return np.full(lanes(x.dtype), x, x.dtype)


@intrinsic
def _fma(typingctx, x, y, z):
    if not (isinstance(x, Vector) and x == y == z):
        return None

    def codegen(context, builder, signature, args):
        llvm_type = _llvm(x)
        name = f"llvm.fma.v{x.count}{'f32' if x.dtype == types.float32 else 'f64'}"
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(llvm_type, [llvm_type] * 3), name)
        return builder.call(function, args)
    return x(x, y, z), codegen


@_compiled_as(_fma)
def fma(x, y, z):
    """``x * y + z`` lane by lane; compiled, a fused multiply-add (one rounding; NumPy here rounds twice)."""
    return x * y + z


@intrinsic
def _add(typingctx, x, y):
    if not (isinstance(x, Vector) and x == y):
        return None

    def codegen(context, builder, signature, args):
        return builder.fadd(*args)
    return x(x, y), codegen


@_compiled_as(_add)
def add(x, y):
    """``x + y`` lane by lane."""
    return x + y


@intrinsic
def _relu(typingctx, x):
    if not isinstance(x, Vector):
        return None

    def codegen(context, builder, signature, args):
        zero = ir.Constant(_llvm(x), [0.0] * x.count)
        negative = builder.fcmp_ordered("<", args[0], zero)     # false for NaN: NaN stays NaN
        return builder.select(negative, zero, args[0])
    return x(x), codegen


@_compiled_as(_relu)
def relu(x):
    """``0`` where a lane is below zero, else the lane (NaN stays NaN, as ``np.maximum(x, 0)``)."""
    return np.where(x < 0, x.dtype.type(0), x)


@intrinsic
def _lane(typingctx, x, index):
    if not (isinstance(x, Vector) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        return builder.extract_element(args[0], index)
    return x.dtype(x, index), codegen


@_compiled_as(_lane)
def lane(x, index):
    """The number in lane ``index`` of ``x``."""
    return x[index]
