"""Products by a fixed matrix kept transposed, Numba twin: the Dense layers' inference path.

Part of :mod:`nnscratch.kernels.fast` (which exports every public function
here; the split is for length): the same names, signatures and results (up
to float rounding) as their twins in :mod:`nnscratch.kernels.reference`.

Why a product of our own beside BLAS's
--------------------------------------
BLAS multiplies ``a @ w`` by first copying (packing) panels of both operands
into its own layout, on every call. When ``w`` stays the same for many calls
-- a Dense layer's kernel while ``predict`` or ``evaluate`` runs batch after
batch -- it can be laid out once instead: transposed, ``w_t`` of shape
``(n, k)``, C-contiguous (:func:`transpose`). Then every output is the dot
product of two contiguous rows, ``out[i, j] = a[i] . w_t[j]``, which LLVM
vectorises along ``k``: 8 float32 products a ``vfmadd`` instruction.

The register tile
-----------------
:func:`_tile_2x4` computes a 2 x 4 block of outputs in one sweep along
``k``: 2 rows of ``a`` and 4 of ``w_t`` are read once, and their 8 dot
products accumulate side by side in 8 vector registers (8 independent sums,
enough to keep the multiply-add units busy while each sum waits for its last
addition). Each number read from memory feeds 4 (row of ``a``) or 2 (row of
``w_t``) multiply-adds. The four rows of ``w_t`` (4 x k numbers, 12.5 KB for
k = 784) stay in the level-1 cache while the tile walks down the rows of a
chunk of ``a``, which stays in the level-2 cache (:data:`CHUNK_BYTES`); for
longer rows they come from the level-2 cache, which was still fast enough
(k = 4,096 measured).

The layer's bias and activation
-------------------------------
When a tile's sweep ends, its 8 sums are still in registers: :func:`_store`
adds ``bias[j]`` and, for ReLU, takes ``max(v, 0)`` as it writes each one, so
the output is written once and never read back for a separate pass. The
arithmetic is that of the product followed by ``bias_activation`` (the sum
rounded to the dtype, plus the bias, then the ReLU), so the bits are too.

Rounding: each sum runs in 8 lanes that are added at the end (``fastmath``
reassociation, here only, never in training), so the results differ from
BLAS's in the last bits. Each output is computed by one thread, and every
output takes the same instructions: an odd last row is paired with itself,
and the last row of ``w_t`` fills the last tile when ``n`` is not a multiple
of 4 (not handed to a plain dot product, which LLVM vectorises another way).
So an output's bits depend on its row of ``a`` and its row of ``w_t`` only:
not on the number of threads, the batch, or the columns beside it; a
``predict`` pass that keeps ``W^T`` gives the same bits for any batch size.

On a 2-core AMD EPYC (Zen 1, AVX2) the (100, 784) @ (784, 512) product of the
MLP's first layer took 1.09-1.13 ms here against 1.20-1.24 through OpenBLAS
(docs/performance-history.md, session 15): 90-95% of the multiply-add peak that
a C program of independent ``vfmadd`` chains measured (74-80 GFLOP/s on 2 cores;
docs/performance.md, session 17). The rest is the horizontal sums that end
each tile, the loop and the loads.
Where the CPU has 512-bit vector instructions, OpenBLAS uses them and this
kernel, compiled for 256-bit vectors, was never measured against it; nor
was it on other processors (ARM): :func:`fixed_product_pays` keeps BLAS
there.
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels.elementwise_fast import bias_activation
from nnscratch.kernels.workspace import SERIAL_BELOW, for_size

__all__ = ["transpose", "matmul_transposed", "fixed_product_pays"]

# Only reassociation (for the 8-lane sums) and contraction (a * b + c as one
# fused multiply-add); NaN and infinity keep their meaning.
_FASTMATH = {"reassoc", "contract"}

TILE_ROWS, TILE_COLS = 2, 4
CHUNK_BYTES = 384 * 1024        # rows of ``a`` walked by each group of four ``w_t`` rows (level-2 cache)
PARALLEL_FROM_MACS = 1 << 16    # smaller products run on the calling thread
NARROW_BLOCKS = 4               # fewer groups of 4 columns than this: the rows are split between threads too


def _host_is_avx2_only():
    """True on an x86-64 CPU with AVX2 and FMA but without AVX-512 (what LLVM reports for this machine)."""
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
    except Exception:  # noqa: BLE001 -- no feature list: keep BLAS
        return False
    return bool(features.get("avx2") and features.get("fma") and not features.get("avx512f"))


HOST_AVX2_ONLY = _host_is_avx2_only()


def fixed_product_pays(k, n):
    """Whether :func:`matmul_transposed` is this twin's faster product by a fixed ``(k, n)`` matrix.

    True on x86-64 CPUs with AVX2 and no AVX-512, the kind it was measured
    on (Zen 1: 8-35% faster than OpenBLAS for every shape measured, k from
    784 to 4,096; docs/performance-history.md, session 15). False elsewhere: where
    OpenBLAS has 512-bit kernels, or on other processors (an ARM laptop's
    BLAS), it was never measured; and for an empty matrix.
    """
    return HOST_AVX2_ONLY and k > 0 and n > 0


# ---------------------------------------------------------------------------
# transpose
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _transpose_kernel(w, w_t):
    k, n = w.shape
    bands = (n + 7) // 8
    for band in prange(bands):          # a band of 8 columns of w = 8 rows of w_t
        j0 = band * 8
        j1 = min(j0 + 8, n)
        for p in range(k):              # walk w row by row: 8 neighbours per read
            for j in range(j0, j1):
                w_t[j, p] = w[p, j]


def transpose(w):
    """``w.T`` as a new C-contiguous array: ``(k, n)`` -> ``(n, k)``, the layout of :func:`matmul_transposed`."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"transpose expects a 2-D matrix, got shape {w.shape}")
    w_t = np.empty((w.shape[1], w.shape[0]), w.dtype)
    for_size(_transpose_kernel, w.size)(w, w_t)
    return w_t


# ---------------------------------------------------------------------------
# the product
# ---------------------------------------------------------------------------

@njit(fastmath=_FASTMATH, inline="always")
def _store(out, i, j, value, bias, relu):
    """``out[i, j] = f(value + bias[j])``, ``f`` the identity or ReLU (as ``np.maximum(v, 0)``: NaN stays NaN)."""
    value += bias[j]
    out[i, j] = 0 if relu and value < 0 else value


@njit(fastmath=_FASTMATH, inline="always")
def _tile_2x4(a, i0, i1, w_t, j, n, k, out, bias, relu, zero):
    """``out[(i0, i1), j:j+4]``: 8 dot products in one sweep along ``k``, then the bias and activation.

    Every output takes the same instructions. An odd last row comes as
    ``i1 == i0``; at the right edge (``j + 4 > n``) the last row of ``w_t``
    stands in for the 1-3 missing ones. What is computed twice is stored once.
    """
    j1, j2, j3 = min(j + 1, n - 1), min(j + 2, n - 1), min(j + 3, n - 1)
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = zero
    for p in range(k):
        a0, a1 = a[i0, p], a[i1, p]
        w0, w1, w2, w3 = w_t[j, p], w_t[j1, p], w_t[j2, p], w_t[j3, p]
        c00 += a0 * w0
        c01 += a0 * w1
        c02 += a0 * w2
        c03 += a0 * w3
        c10 += a1 * w0
        c11 += a1 * w1
        c12 += a1 * w2
        c13 += a1 * w3
    _store_4(out, i1, j, n, c10, c11, c12, c13, bias, relu)   # row i1 first: for i1 == i0, row i0's
    _store_4(out, i0, j, n, c00, c01, c02, c03, bias, relu)   # own sums have the last word


@njit(fastmath=_FASTMATH, inline="always")
def _store_4(out, i, j, n, v0, v1, v2, v3, bias, relu):
    """``out[i, j:j+4] = f(v + bias[j:j+4])``, the columns below ``n`` only."""
    _store(out, i, j, v0, bias, relu)
    if j + 1 < n:
        _store(out, i, j + 1, v1, bias, relu)
    if j + 2 < n:
        _store(out, i, j + 2, v2, bias, relu)
    if j + 3 < n:
        _store(out, i, j + 3, v3, bias, relu)


@njit(inline="always")
def _lay_out(w, w_t, j0, j1):
    """``w_t[j0:j1] = w[:, j0:j1].T``: the rows of ``w_t`` one group of tiles multiplies by."""
    for p in range(w.shape[0]):
        for j in range(j0, j1):
            w_t[j, p] = w[p, j]


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _matmul_transposed_kernel(a, w_t, out, bias, relu, chunk_rows, row_parts, w, zero):
    m, k = a.shape
    n = w_t.shape[0]
    col_blocks = (n + TILE_COLS - 1) // TILE_COLS
    lay_out = w.shape[0] > 0                        # w_t is still to be filled from w (then row_parts is 1)
    for i0 in range(0, m, chunk_rows):              # a chunk of rows of a, kept in cache ...
        i1 = min(i0 + chunk_rows, m)
        part_rows = (i1 - i0 + row_parts - 1) // row_parts
        part_rows += part_rows % 2
        for item in prange(row_parts * col_blocks):  # ... against every 4 rows of w_t, shared by the threads
            r0 = i0 + item // col_blocks * part_rows     # (a narrow w_t: the chunk's rows in parts, too)
            r1 = min(r0 + part_rows, i1)
            j = item % col_blocks * TILE_COLS
            if lay_out and i0 == 0:
                _lay_out(w, w_t, j, min(j + TILE_COLS, n))
            for i in range(r0, r1, TILE_ROWS):      # an odd last row is paired with itself
                _tile_2x4(a, i, min(i + 1, r1 - 1), w_t, j, n, k, out, bias, relu, zero)


def matmul_transposed(a, w_t, bias=None, activation="linear", w=None):
    """``f(a @ w_t.T + bias)``: ``(m, k)`` times a matrix kept transposed, ``w_t`` ``(n, k)`` -> ``(m, n)``.

    The bias (``(n,)`` or None) and a ``"linear"`` or ``"relu"`` activation
    are applied as each tile of outputs is stored; ``"sigmoid"`` and
    ``"tanh"`` by :func:`bias_activation` afterwards. Float32 or float64,
    both operands of one dtype (else NumPy's product).

    With ``w`` (``(k, n)``), ``w_t`` (C-contiguous) is first filled with
    ``w.T``: each thread lays out the four rows of ``w_t`` it multiplies by
    just before it needs them, cheaper than :func:`transpose` followed by
    the product (a Dense layer's first batch of a pass).
    """
    if not (isinstance(a, np.ndarray) and isinstance(w_t, np.ndarray)):
        a, w_t = np.asarray(a), np.asarray(w_t)
    if a.ndim != 2 or w_t.ndim != 2 or a.shape[1] != w_t.shape[1]:
        raise ValueError(f"matmul_transposed expects a (m, k) and w_t (n, k), got {a.shape} and {w_t.shape}")
    m, k = a.shape
    n = w_t.shape[0]
    if bias is not None and (bias.shape if isinstance(bias, np.ndarray) else np.shape(bias)) != (n,):
        raise ValueError(f"bias must have shape ({n},), one number per row of w_t, got {np.shape(bias)}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown elementwise activation {activation!r}; expected one of {_ACTIVATIONS}")
    if w is not None:
        _check_lay_out(w, w_t)
    if a.dtype != w_t.dtype or a.dtype not in (np.float32, np.float64) or k == 0 or m == 0 or n == 0:
        if w is not None:
            w_t[...] = w.T
        return bias_activation(a @ w_t.T, bias, activation)
    if bias is None:
        bias = np.zeros(n, a.dtype)
    elif not (isinstance(bias, np.ndarray) and bias.dtype == a.dtype and bias.flags.c_contiguous):
        bias = np.ascontiguousarray(bias, dtype=a.dtype)
    out = np.empty((m, n), a.dtype)
    chunks = -(-m * k * a.itemsize // CHUNK_BYTES)                # as few chunks as fit, of even sizes
    chunk_rows = -(-m // chunks)
    chunk_rows += chunk_rows % 2
    row_parts = 1 if w is not None else max(1, -(-NARROW_BLOCKS // -(-n // TILE_COLS)))
    size = SERIAL_BELOW if m * k * n >= PARALLEL_FROM_MACS else 0
    zero, no_w = _ZERO_AND_NO_W[a.dtype.type]
    for_size(_matmul_transposed_kernel, size)(
        a if a.flags.c_contiguous else np.ascontiguousarray(a),
        w_t if w_t.flags.c_contiguous else np.ascontiguousarray(w_t),
        out, bias, activation == "relu", chunk_rows, row_parts, no_w if w is None else w, zero)
    if activation not in ("linear", "relu"):                       # not applied by the tiles
        bias_activation(out, None, activation)
    return out


def _check_lay_out(w, w_t):
    """``w`` can be laid out into ``w_t`` in place: ``w.T``'s shape, ``w_t``'s dtype, ``w_t`` writable and contiguous."""
    if not isinstance(w, np.ndarray) or w.shape != w_t.shape[::-1] or w.dtype != w_t.dtype:
        raise ValueError(f"w must be a {w_t.dtype} array of shape {w_t.shape[::-1]} to lay out into w_t, "
                         f"got {getattr(w, 'dtype', type(w).__name__)} {np.shape(w)}")
    if not (w_t.flags.c_contiguous and w_t.flags.writeable):
        raise ValueError("w_t must be a writable C-contiguous array to receive w.T")


_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")
# The kernel's typed zero and its empty ``w`` (nothing to lay out), made once: about 2 us a call otherwise.
_ZERO_AND_NO_W = {dtype: (dtype(0), np.empty((0, 0), dtype)) for dtype in (np.float32, np.float64)}

