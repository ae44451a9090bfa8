"""Products by a fixed matrix packed in panels, Numba twin: the Dense layers' inference path.

Part of :mod:`nnscratch.kernels.fast` (which exports every public function
here; the split is for length): the same names, signatures and results (up
to float rounding) as their twins in :mod:`nnscratch.kernels.reference`.

Why a product of our own beside BLAS's
--------------------------------------
BLAS multiplies ``a @ w`` by first copying (packing) panels of both operands
into its own layout, on every call. When ``w`` stays the same for many calls
-- a Dense layer's kernel while ``predict`` or ``evaluate`` runs batch after
batch -- it can be packed once instead (:func:`pack_panels`): the columns of
``w`` in panels of ``2 * lanes`` (16 float32, 8 float64), each panel a
contiguous ``(k, 16)`` block, the last one padded with zeros.

The register tile
-----------------
:func:`_tile` computes a block of 6 rows x 16 columns of outputs in one
sweep along ``k``, as 12 vectors of 8 sums (:mod:`nnscratch.kernels.simd`):
for each ``p`` it loads the panel's row ``p`` (two vectors, 16 numbers of
``w``), and for each of the 6 rows of ``a`` multiplies ``a[i, p]``, copied
into every lane, by both and adds them to the row's two vectors of sums.
That is an outer product of a column of ``a`` and a row of ``w`` per step,
12 multiply-adds of 8 lanes for 2 vector loads and 6 scalar ones: 12 sums,
2 rows of ``w`` and a broadcast fill 15 of the 16 vector registers. Each lane
ends as one output, so nothing is added across lanes at the end (the
dot-product tile before session 19 ended each of its sums with a horizontal
sum). The panel (50 KB for k = 784) stays in the level-2 cache while the
tile walks down the rows of a chunk of ``a``, which stays there too
(:data:`CHUNK_BYTES`).

The layer's bias and activation
-------------------------------
When a tile's sweep ends, its sums are still in registers: :func:`_store_row`
adds the bias and, for ReLU, takes ``max(v, 0)`` as it writes them, so the
output is written once and never read back for a separate pass. The
arithmetic is that of the product followed by ``bias_activation`` (the sum
rounded to the dtype, plus the bias, then the ReLU), so the bits are too.

Rounding: each output is one sum of fused multiply-adds in the order of
``p`` (BLAS's order within a block), so the results differ from BLAS's in
the last bits. Each output is computed by one thread, and every output takes
the same instructions: the rows left over at the bottom repeat the last row
in the tile (computed twice, stored once), the padded columns of the last
panel are computed and not stored. So an output's bits depend on its row of
``a`` and its column of ``w`` only: not on the number of threads, the batch,
or the columns beside it; a ``predict`` pass gives the same bits for any
batch size.

A Dense layer packs its kernel in the pass's first product (``w=``): each
thread packs a panel just before its first tile multiplies by it.

On a 2-core AMD EPYC (Zen 1, AVX2) the (100, 784) @ (784, 512) product of the
MLP's first layer took 908-929 us with the bias and ReLU, against 968-1,053
for the dot-product tiles of sessions 15-18 and 1,151-1,201 through OpenBLAS
(docs/kernels.md, section 4c): 86-88 GFLOP/s, the machine's multiply-add peak
in that hour. Packing ``w`` took 160-180 us, the transposed copy that the
dot-product tiles read 250-270. Narrow layers (10 units fill 16 lanes) lost a
little: 39 against 30 us for (100, 512) @ (512, 10). The tile had 4 rows
then; on that machine 6 rows ran within the noise. On a Zen 3 EPYC (two
256-bit multiply-add units a core, where the Zen 1 has two 128-bit ones)
6 rows took the product from 536-553 to 448-481 us (162 GFLOP/s), OpenBLAS
579-622, and a ``predict`` pass of the MLP 8% less (session 24).
Where the CPU has 512-bit vector instructions, OpenBLAS uses them and this
kernel, compiled for 256-bit vectors, was never measured against it; nor
was it on other processors (ARM): :func:`fixed_product_pays` keeps BLAS
there.
"""

import numpy as np
from numba import njit, prange

from nnscratch.kernels import simd
from nnscratch.kernels.cache_stamp import stamp_module
from nnscratch.kernels.elementwise_fast import bias_activation, bias_softmax
from nnscratch.kernels.reference import ELEMENTWISE_ACTIVATIONS
from nnscratch.kernels.workspace import SERIAL_BELOW, for_size

__all__ = ["pack_panels", "matmul_panels", "panels_product", "FixedProduct", "fixed_product_pays",
           "panel_width"]

TILE_ROWS = 6                   # rows of a tile; its columns are one panel (two vectors)
CHUNK_BYTES = 384 * 1024        # rows of ``a`` walked by each panel (level-2 cache)
PARALLEL_FROM_MACS = 1 << 16    # smaller products run on the calling thread
NARROW_PANELS = 4               # fewer panels than this: the rows are split between threads too


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
    """Whether :func:`matmul_panels` is this twin's faster product by a fixed ``(k, n)`` matrix.

    True on x86-64 CPUs with AVX2 and no AVX-512, the kinds it was measured
    on (Zen 1 and Zen 3, docs/kernels.md, section 4c): 1.2-1.5x as fast as OpenBLAS
    and a bias and ReLU pass for the study's wide layers; its 10-unit layers
    lose a few microseconds a batch (29 against 24 us for (100, 256) @
    (256, 10)), which a pass of the models does not notice. False
    elsewhere: where OpenBLAS has 512-bit kernels, or on other processors
    (an ARM laptop's BLAS), it was never measured; and for an empty matrix.
    ``kernels.set_dense_product`` (``NNSCRATCH_DENSE_PRODUCT``) can
    override this answer for a Dense layer's passes.
    """
    return HOST_AVX2_ONLY and k > 0 and n > 0


# ---------------------------------------------------------------------------
# packing
# ---------------------------------------------------------------------------

def panel_width(dtype):
    """Columns of ``w`` in one panel: two vectors, 16 float32 or 8 float64."""
    return 2 * simd.lanes(dtype)


@njit(inline="always")
def _pack_panel(w, w_p, q):
    """``w_p[q] = w[:, q*width:(q+1)*width]``, zeros past ``n`` (``w`` C-contiguous)."""
    k, n = w.shape
    width = w_p.shape[2]
    half = width // 2
    j0 = q * width
    columns = min(width, n - j0)
    for p in range(k):                  # w's row p, two vectors at a time
        if columns == width:
            simd.store(w_p, (q * k + p) * width, simd.load(w, p * n + j0))
            simd.store(w_p, (q * k + p) * width + half, simd.load(w, p * n + j0 + half))
        else:
            for c in range(columns):
                w_p[q, p, c] = w[p, j0 + c]
            for c in range(columns, width):
                w_p[q, p, c] = 0


@njit(parallel=True, cache=True)
def _pack_kernel(w, w_p):
    for q in prange(w_p.shape[0]):
        _pack_panel(w, w_p, q)


def pack_panels(w):
    """``w`` ``(k, n)`` in panels: ``w_p[q, p, c] = w[p, q * width + c]``, zeros past ``n``.

    Shape ``(ceil(n / width), k, width)``, C-contiguous, ``width`` =
    :func:`panel_width` (16 float32, 8 float64); other dtypes are packed
    as float64. The layout :func:`matmul_panels` reads.
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"pack_panels expects a 2-D matrix (k, n), got shape {w.shape}")
    if w.dtype not in (np.float32, np.float64):
        w = w.astype(np.float64)
    k, n = w.shape
    width = panel_width(w.dtype)
    w_p = np.empty((-(-n // width), k, width), w.dtype)
    for_size(_pack_kernel, w.size)(np.ascontiguousarray(w), w_p)
    return w_p


# ---------------------------------------------------------------------------
# the product
# ---------------------------------------------------------------------------

LINEAR, RELU, SOFTMAX = 0, 1, 2     # what the tiles apply as they store (``code``)


@njit(inline="always")
def _finish(sums, bias, relu):
    """``f(sums + bias)``, ``f`` the identity or ReLU."""
    sums = simd.add(sums, bias)
    return simd.relu(sums) if relu else sums


@njit(inline="always")
def _store_row(out, i, j, half, c0, c1, b0, b1, relu):
    """``out[i, j:j+2*half] = f(c + b)`` (two vectors of ``half`` lanes): the columns below ``n`` only."""
    n = out.shape[1]
    v0, v1 = _finish(c0, b0, relu), _finish(c1, b1, relu)
    if j + 2 * half <= n:
        simd.store(out, i * n + j, v0)
        simd.store(out, i * n + j + half, v1)
    else:                                   # the last panel: its padded columns are not stored
        for c in range(n - j):
            out[i, j + c] = simd.lane(v0, c) if c < half else simd.lane(v1, c - half)


@njit(inline="always")
def _store_softmax_row(out, logits, i, half, c0, c1, b0, b1, zero):
    """``logits[i] = c + b`` and ``out[i] = softmax(logits[i])``: a whole row in one panel (``n <= 2 * half``).

    The arithmetic of ``bias_softmax``, step for step: the largest logit
    (NaN wins), ``exp(v - top)`` for each, their sum in order, a division.
    """
    n = out.shape[1]
    v0, v1 = simd.add(c0, b0), simd.add(c1, b1)
    top = simd.lane(v0, 0)
    for c in range(n):
        v = simd.lane(v0, c) if c < half else simd.lane(v1, c - half)
        logits[i, c] = v
        if v > top or v != v:
            top = v
    total = zero
    for c in range(n):
        e = np.exp(logits[i, c] - top)
        out[i, c] = e
        total += e
    for c in range(n):
        out[i, c] /= total


@njit(inline="always")
def _tile(a, i, last, w_p, q, out, bias, code, logits, zero):
    """``out[i:i+6, panel q]``: 6 rows x 2 vectors of sums in one sweep along ``k``, then bias and activation.

    Every output takes the same instructions: rows past ``last`` repeat row
    ``last`` (computed again, stored once more with the same bits).
    """
    k, width = w_p.shape[1], w_p.shape[2]
    half = width // 2
    i1, i2, i3 = min(i + 1, last), min(i + 2, last), min(i + 3, last)
    i4, i5 = min(i + 4, last), min(i + 5, last)
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = simd.broadcast(zero)
    base = q * k * width
    for p in range(k):
        w0 = simd.load(w_p, base + p * width)          # w[p, j:j+8]
        w1 = simd.load(w_p, base + p * width + half)   # w[p, j+8:j+16]
        x = simd.broadcast(a[i, p])
        c00, c01 = simd.fma(x, w0, c00), simd.fma(x, w1, c01)
        x = simd.broadcast(a[i1, p])
        c10, c11 = simd.fma(x, w0, c10), simd.fma(x, w1, c11)
        x = simd.broadcast(a[i2, p])
        c20, c21 = simd.fma(x, w0, c20), simd.fma(x, w1, c21)
        x = simd.broadcast(a[i3, p])
        c30, c31 = simd.fma(x, w0, c30), simd.fma(x, w1, c31)
        x = simd.broadcast(a[i4, p])
        c40, c41 = simd.fma(x, w0, c40), simd.fma(x, w1, c41)
        x = simd.broadcast(a[i5, p])
        c50, c51 = simd.fma(x, w0, c50), simd.fma(x, w1, c51)
    j = q * width
    b0, b1 = simd.load(bias, j), simd.load(bias, j + half)   # bias is padded to whole panels
    if code == SOFTMAX:                                      # one panel: whole rows
        _store_softmax_row(out, logits, i5, half, c50, c51, b0, b1, zero)
        _store_softmax_row(out, logits, i4, half, c40, c41, b0, b1, zero)
        _store_softmax_row(out, logits, i3, half, c30, c31, b0, b1, zero)
        _store_softmax_row(out, logits, i2, half, c20, c21, b0, b1, zero)
        _store_softmax_row(out, logits, i1, half, c10, c11, b0, b1, zero)
        _store_softmax_row(out, logits, i, half, c00, c01, b0, b1, zero)
    else:
        relu = code == RELU
        _store_row(out, i5, j, half, c50, c51, b0, b1, relu)
        _store_row(out, i4, j, half, c40, c41, b0, b1, relu)
        _store_row(out, i3, j, half, c30, c31, b0, b1, relu)
        _store_row(out, i2, j, half, c20, c21, b0, b1, relu)
        _store_row(out, i1, j, half, c10, c11, b0, b1, relu)
        _store_row(out, i, j, half, c00, c01, b0, b1, relu)


@njit(parallel=True, cache=True)
def _matmul_panels_kernel(a, w_p, out, bias, code, logits, chunk_rows, row_parts, w, zero):
    m = a.shape[0]
    panels = w_p.shape[0]
    pack = w.shape[1] > 0                           # w_p is still to be filled from w (then row_parts is 1)
    for i0 in range(0, m, chunk_rows):              # a chunk of rows of a, kept in cache ...
        i1 = min(i0 + chunk_rows, m)
        tiles = -(-(i1 - i0) // TILE_ROWS)
        for item in prange(row_parts * panels):     # ... against every panel, shared by the threads
            q = item % panels
            if pack and i0 == 0:
                _pack_panel(w, w_p, q)              # just before its first use, by the thread that uses it
            part = item // panels                   # (few panels: the chunk's tiles in parts, too,
            r0 = i0 + part * tiles // row_parts * TILE_ROWS             # as even as whole tiles allow)
            r1 = min(i0 + (part + 1) * tiles // row_parts * TILE_ROWS, i1)
            for i in range(r0, r1, TILE_ROWS):      # the chunk's last rows repeat its last row
                _tile(a, i, r1 - 1, w_p, q, out, bias, code, logits, zero)


@njit(cache=True)
def panels_product(a, w_p, out, bias, zero):
    """``out = a @ w + bias`` on the calling thread, ``w`` packed in ``w_p`` (:func:`pack_panels`).

    For kernels whose threads each multiply their own rows by one matrix
    many times over (the recurrent layers' steps, ``recurrent_fast``): no
    threads and no checks here. ``out`` is C-contiguous ``(m, n)``;
    ``bias`` is padded to whole panels (zeros for none); ``zero`` is 0 in
    the dtype. Every tile of 6 rows against every panel, as
    :func:`matmul_panels`, so the same bits.
    """
    m = a.shape[0]
    for q in range(w_p.shape[0]):
        for i in range(0, m, TILE_ROWS):
            _tile(a, i, m - 1, w_p, q, out, bias, LINEAR, out, zero)


def matmul_panels(a, w_p, n, bias=None, activation="linear", w=None):
    """``f(a @ w + bias)`` for ``w`` ``(k, n)`` packed by :func:`pack_panels`: ``(m, k)`` -> ``(m, n)``.

    The bias (``(n,)`` or None) and a ``"linear"`` or ``"relu"`` activation
    are applied as each tile of outputs is stored; the other elementwise
    activations (``"sigmoid"``, ``"tanh"``, ``"elu"``, ...) by
    :func:`bias_activation` afterwards. Float32 or float64,
    both operands of one dtype (else NumPy's product).

    With ``w`` (``(k, n)``), ``w_p`` (C-contiguous, writable, of
    :func:`pack_panels`'s shape) is first filled from it: each thread packs
    the panel it multiplies by just before it needs it, cheaper than
    :func:`pack_panels` followed by the product (a Dense layer's first
    batch of a pass).
    """
    a, w_p = _check_operands(a, w_p, n)
    m, k = a.shape
    if w is not None:
        w = _check_packing(w, w_p, n)
    if bias is not None and (bias.shape if isinstance(bias, np.ndarray) else np.shape(bias)) != (n,):
        raise ValueError(f"bias must have shape ({n},), one number per column of w, got {np.shape(bias)}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown elementwise activation {activation!r}; expected one of {_ACTIVATIONS}")
    dtype = a.dtype.type
    if dtype is not w_p.dtype.type or dtype not in _ZERO_AND_NO_W or k == 0 or m == 0 or n == 0:
        if w is not None:
            w_p[...] = pack_panels(w)
        return bias_activation(a @ unpack(w_p, n), bias, activation)
    kernel = for_size(_matmul_panels_kernel, SERIAL_BELOW if m * k * n >= PARALLEL_FROM_MACS else 0)
    out = _multiply(kernel, a, w_p if w_p.flags.c_contiguous else np.ascontiguousarray(w_p), n,
                    _padded_bias(bias, w_p), RELU if activation == "relu" else LINEAR, None, w)
    if activation != "linear" and activation != "relu":            # not applied by the tiles
        bias_activation(out, None, activation)
    return out


def _padded_bias(bias, w_p):
    """The bias (or zeros) padded with zeros to whole panels: the tiles load it in whole vectors."""
    panels, _, width = w_p.shape
    padded = np.zeros(panels * width, w_p.dtype)
    if bias is not None:
        padded[:len(bias)] = bias
    return padded


def _multiply(kernel, a, w_p, n, padded, code, logits, w):
    """Run ``kernel`` (a compilation of :func:`_matmul_panels_kernel`) on checked operands; the output.

    ``w``: None, or ``w`` to pack into ``w_p`` first; ``logits``: for
    ``code == SOFTMAX`` (one panel), the ``(m, n)`` array that receives them.
    """
    m, k = a.shape
    out = np.empty((m, n), a.dtype)
    row_parts = -(-NARROW_PANELS // w_p.shape[0])
    if w is not None and row_parts > 1:                 # few panels: packed first, then the rows split
        for_size(_pack_kernel, 0)(w, w_p)
        w = None
    elif w is not None:                                 # one item per panel, packed by the thread using it
        row_parts = 1
    zero, no_w = _ZERO_AND_NO_W[a.dtype.type]
    chunks = -(-m * k * a.itemsize // CHUNK_BYTES)      # as few chunks as fit
    kernel(a if a.flags.c_contiguous else np.ascontiguousarray(a), w_p, out, padded, code,
           no_w if logits is None else logits, -(-m // chunks), row_parts, no_w if w is None else w, zero)
    return out


class FixedProduct:
    """``f(a @ w + bias)`` by one fixed ``w``, call after call: a Dense layer's product for a pass of inference.

    What :func:`matmul_panels` checks and prepares on every call is done
    once here, when the pass begins: ``w`` ``(k, n)`` (float32 or float64)
    is given a buffer for its panels, which the first call fills (each
    thread packing a panel just before it multiplies by it, as
    ``matmul_panels(..., w=w)``); the bias is padded to whole panels; the
    compilations to run (:func:`~nnscratch.kernels.workspace.for_size`,
    which asks Numba for the number of threads) are chosen. A call then
    checks ``a`` and runs the kernel: about 15 us less a call than
    ``matmul_panels`` (docs/performance.md, session 20), with its bits.

    ``activation``: ``"linear"`` or ``"relu"`` (applied by the tiles),
    another elementwise activation (``"sigmoid"``, ``"tanh"``, ``"elu"``,
    ...: by :func:`bias_activation` afterwards), or
    ``"softmax"``: then each call also sets :attr:`logits` to ``a @ w +
    bias``, and the probabilities are those of :func:`bias_softmax` on
    them, bit for bit; for at most one panel of columns (16 float32, a
    classifier's last layer) the tiles compute them, on the kernel's
    threads, else ``bias_softmax`` after the product.

    ``w`` and ``bias`` are read by the first call and must not change
    before the last one (a pass keeps its weights). ``a`` of another dtype
    than ``w`` is multiplied by NumPy's ``@`` (as in ``matmul_panels``).
    """

    def __init__(self, w, bias=None, activation="linear"):
        if not isinstance(w, np.ndarray) or w.ndim != 2 or w.dtype not in (np.float32, np.float64):
            raise ValueError(f"FixedProduct expects w, a 2-D float32 or float64 array (k, n), got "
                             f"{getattr(w, 'dtype', type(w).__name__)} of shape {np.shape(w)}")
        k, n = w.shape
        if bias is not None and np.shape(bias) != (n,):
            raise ValueError(f"bias must have shape ({n},), one number per column of w, got {np.shape(bias)}")
        if activation not in _ACTIVATIONS + ("softmax",):
            raise ValueError(f"unknown activation {activation!r}; expected one of {_ACTIVATIONS + ('softmax',)}")
        self.shape, self.dtype, self.activation = (k, n), w.dtype, activation
        width = panel_width(w.dtype)
        self.w_p = np.empty((-(-n // width), k, width), w.dtype)      # filled by the first call
        self.logits = None
        self._w, self._bias = np.ascontiguousarray(w), bias
        self._padded = _padded_bias(bias, self.w_p)
        self._code = {"relu": RELU, "softmax": SOFTMAX if n <= width else LINEAR}.get(activation, LINEAR)
        self._parallel = for_size(_matmul_panels_kernel, SERIAL_BELOW)
        self._serial = for_size(_matmul_panels_kernel, 0)

    def __call__(self, a):
        """``f(a @ w + bias)``, ``a`` ``(m, k)`` -> ``(m, n)``."""
        k, n = self.shape
        if not isinstance(a, np.ndarray) or a.ndim != 2 or a.shape[1] != k:
            raise ValueError(f"FixedProduct by a ({k}, {n}) matrix expects a of shape (m, {k}), got {np.shape(a)}")
        softmax = self.activation == "softmax"
        if a.dtype != self.dtype or k == 0 or n == 0 or a.shape[0] == 0:
            w = unpack(self.w_p, n) if self._w is None else self._w
            if not softmax:
                return bias_activation(a @ w, self._bias, self.activation)
            z = bias_activation(a @ w, self._bias, "linear")
        else:
            kernel = self._parallel if a.shape[0] * k * n >= PARALLEL_FROM_MACS else self._serial
            self.logits = np.empty((a.shape[0], n), self.dtype) if self._code == SOFTMAX else None
            z = _multiply(kernel, a, self.w_p, n, self._padded, self._code, self.logits, self._w)
            self._w = None                      # packed (only now: a failed call packs it again)
            if self._code == SOFTMAX:
                return z
            if not softmax:
                if self.activation != "linear" and self.activation != "relu":   # not applied by the tiles
                    bias_activation(z, None, self.activation)
                return z
        self.logits = z                         # a softmax over rows wider than a panel
        return bias_softmax(z, None)


def unpack(w_p, n):
    """The ``(k, n)`` matrix that :func:`pack_panels` packed into ``w_p``."""
    panels, k, width = w_p.shape
    return w_p.transpose(1, 0, 2).reshape(k, panels * width)[:, :n]


def _check_operands(a, w_p, n):
    if not (isinstance(a, np.ndarray) and isinstance(w_p, np.ndarray)):
        a, w_p = np.asarray(a), np.asarray(w_p)
    width = w_p.shape[-1] if w_p.ndim == 3 else 0
    if (a.ndim != 2 or width == 0 or a.shape[1] != w_p.shape[1] or width * w_p.itemsize != 2 * simd.VECTOR_BYTES
            or w_p.shape[0] != -(-n // width)):
        raise ValueError(f"matmul_panels expects a (m, k) and w_p (ceil(n / width), k, width) from pack_panels, "
                         f"with n = {n}; got {a.shape} and {w_p.shape}")
    return a, w_p


def _check_packing(w, w_p, n):
    """``w`` can be packed into ``w_p`` in place: ``(k, n)``, ``w_p``'s dtype; ``w_p`` writable and contiguous."""
    if not isinstance(w, np.ndarray) or w.shape != (w_p.shape[1], n) or w.dtype != w_p.dtype:
        raise ValueError(f"w must be a {w_p.dtype} array of shape {(w_p.shape[1], n)} to pack into w_p, "
                         f"got {getattr(w, 'dtype', type(w).__name__)} {np.shape(w)}")
    if not (w_p.flags.c_contiguous and w_p.flags.writeable):
        raise ValueError("w_p must be a writable C-contiguous array to receive w's panels")
    return np.ascontiguousarray(w)


_ACTIVATIONS = ELEMENTWISE_ACTIVATIONS
# The kernel's typed zero and its empty ``w`` (nothing to pack), made once: about 2 us a call otherwise.
_ZERO_AND_NO_W = {dtype: (dtype(0), np.empty((0, 0), dtype)) for dtype in (np.float32, np.float64)}


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
