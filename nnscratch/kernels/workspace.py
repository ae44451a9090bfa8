"""Work space of the fast kernels: reusable scratch buffers, one BLAS thread per worker, small work on one thread.

Infrastructure shared by :mod:`nnscratch.kernels.fast` and
:mod:`nnscratch.kernels.winograd_fast`; no kernel lives here.
"""

import threading
import types
from contextlib import contextmanager

import numba
import numpy as np

from nnscratch.kernels.cache_stamp import stamp, stamp_module

__all__ = ["scratch", "scratch_space", "channel_vector", "image_blocks", "block_bounds", "one_blas_thread",
           "SERIAL_BELOW", "serial_twin", "for_size"]

# The convolutions' block buffers are work space, reused from call to call (and so
# from step to step) instead of being allocated, page-faulted and freed each
# time; one set per thread, so that threads running models side by side
# (joblib or Dask threads) never share one.
scratch_space = threading.local()


def scratch(name, shape, dtype):
    """A reusable work array of ``shape`` and ``dtype``: a view of a per-thread buffer that only grows.

    Its content is garbage; the caller overwrites it before reading, and must
    not return it (or a view of it) to its own caller.
    """
    buffers = scratch_space.__dict__
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = buffers.get(name)
    if buffer is None or buffer.size < size:
        buffer = buffers[name] = np.empty(max(size, 1), dtype=np.uint8)
    return buffer[:size].view(dtype).reshape(shape)


def channel_vector(v, c, dtype):
    """``v`` as a writeable, C-contiguous ``(c,)`` array of ``dtype``: as it is when it is one, else a copy.

    ``v`` holds ``c`` numbers or one (broadcast). Never a read-only view, such
    as ``np.broadcast_to`` gives: Numba types a read-only array apart from a
    writeable one and compiles (and caches) a kernel once for each, so a
    kernel handed a layer's bias in one call and a broadcast zero in the next
    would be compiled twice (13 s each for the Winograd convolution's).
    """
    v = np.asarray(v, dtype=dtype)
    if v.shape == (c,) and v.flags.c_contiguous and v.flags.writeable:
        return v
    out = np.empty(c, dtype=dtype)
    out[...] = v          # a ValueError for a shape that does not broadcast to (c,)
    return out


# ---------------------------------------------------------------------------
# blocks of images
#
# The convolutions cut the batch into blocks of about a cache's worth of work
# and give each thread whole blocks (docs/kernels.md, section 3). Blocks of
# one size, ``ceil(n / most)`` of them, left one thread idle for a third of a
# layer: 64 images in blocks of at most 43 were 43 + 21, in blocks of 7 were
# nine of 7 and one of 1 (35 against 29 images a thread). So the block count
# is rounded up to an even number (two cores are this library's first
# machine) and the images are shared out as evenly as a count allows (sizes
# differ by one at most): 32 + 32, ten blocks of 6 or 7. The blocks depend on
# the batch and the layer only, never on the number of threads, so neither do
# the results (docs/kernels.md, rule 3).
# ---------------------------------------------------------------------------

def image_blocks(n, bytes_per_image, budget):
    """``(blocks, largest, workers)`` for ``n`` images of ``bytes_per_image`` each, blocks of at most ``budget`` bytes.

    ``blocks``: how many (even unless 1, and at most ``n``); ``largest``: the
    images of the largest block (what a worker's buffer must hold); ``workers``:
    the threads to use, at most one per block. Block ``b`` is the images
    :func:`block_bounds` gives.
    """
    most = int(min(n, max(1, budget // max(bytes_per_image, 1))))
    blocks = -(-n // most) if n else 1
    if blocks > 1:
        blocks = min(n, blocks + blocks % 2)
    largest = -(-n // blocks)
    return blocks, largest, int(min(numba.get_num_threads(), blocks))


@numba.njit(cache=True, inline="always")
def block_bounds(blk, blocks, n):
    """``(start, stop)``, the images of block ``blk`` of ``blocks``: sizes ``n // blocks`` or one more."""
    return (blk * n) // blocks, ((blk + 1) * n) // blocks


# ---------------------------------------------------------------------------
# one BLAS thread per worker
#
# The convolutions give each Numba thread whole blocks of images, and each
# thread makes its block's products itself (docs/kernels.md, section 3). A BLAS that started threads of its
# own from inside them would oversubscribe the cores (measured: up to 30x
# slower), so inside those loops every BLAS runs on its caller's thread.
# ---------------------------------------------------------------------------

_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = []        # [(threadpoolctl library controller, its thread count before)]
_blas_libraries = None


def _loaded_blas():
    """threadpoolctl controllers of every BLAS loaded, SciPy's (which Numba's ``np.dot`` calls) included."""
    global _blas_libraries
    if _blas_libraries is None:
        import scipy.linalg.cython_blas  # noqa: F401  (Numba's np.dot loads it; load it before looking)
        from threadpoolctl import ThreadpoolController
        _blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_libraries


@contextmanager
def one_blas_thread():
    """Inside the block every BLAS runs on its calling thread only; restored after (thread-safe)."""
    global _blas_users
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved[:] = [(lib, lib.get_num_threads()) for lib in _loaded_blas()]
            for lib, threads in _blas_saved:
                if threads != 1:
                    _set_threads(lib, 1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for lib, threads in _blas_saved:
                    if threads != 1:
                        _set_threads(lib, threads)


def _set_threads(lib, threads):
    """Set a BLAS's thread count from whichever Python thread calls.

    threadpoolctl's OpenBLAS controller lets only one "controlling" Python thread
    change the count and silently ignores the others (so that threads do not
    fight over a process-wide pool). Here the lock and the count of users above
    already keep threads from fighting, and a model trained in a worker thread
    (joblib, Dask) must get one BLAS thread too, so the call goes to the
    library directly when threadpoolctl offers it.
    """
    getattr(lib, "_real_set_num_threads", lib.set_num_threads)(threads)


# ---------------------------------------------------------------------------
# small work on one thread, compiled serial
#
# Numba's idle threads sleep once their short spin is over (``import nnscratch``
# sets GOMP_SPINCOUNT=2000, 20000 in sessions 6-13; until session 6 OMP_WAIT_POLICY=PASSIVE, no spin),
# and a parallel loop after a pause first wakes them: 35-65 microseconds measured
# on the 2-core machine, whatever the loop's size (one batch norm, two loops, of
# a 64x512 dense output: 156 us on two threads, 29 us on one). Measured kernel
# by kernel, one thread was faster up to 400k numbers, even at 500k, and two
# were faster from 800k; so below 262,144 numbers the element-wise, pooling,
# batch-norm and loss kernels run their loops on the calling thread. Until
# session 9 that was the parallel compilation with ``numba.set_num_threads(1)``
# around the call, which still opens a parallel region: 14 us for a 100x512
# bias + ReLU between two matrix products on Zen 5 (50 us on session 8's Xeon)
# against 5 us for the same loops compiled without ``parallel=True``, which is
# what runs now (:func:`serial_twin`). The kernels give the same bits on any
# number of threads and in either compilation (docs/kernels.md, rule 3), so
# this changes the time only.
# ---------------------------------------------------------------------------

SERIAL_BELOW = 1 << 18   # numbers (elements of the largest array a kernel sweeps)

_serial_twins: dict = {}
_serial_twins_lock = threading.Lock()


def serial_twin(kernel):
    """``kernel``, an ``@njit(parallel=True, cache=True)`` function, compiled once more without ``parallel``.

    Its other options (``error_model``, ``fastmath``, ...) are kept.

    Its ``prange`` loops then run as plain ``range`` loops on the calling
    thread: the same arithmetic in the same order, with no parallel region to
    open and no thread to wake. The Python function is copied under another
    qualified name (``..._serial``), because Numba's on-disk cache files are
    named after the file and the qualified name, not the compile options: two
    compilations of one function would overwrite each other's cache entries.
    """
    twin = _serial_twins.get(kernel)
    if twin is None:
        with _serial_twins_lock:
            twin = _serial_twins.get(kernel)
            if twin is None:
                f = kernel.py_func
                copy = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__,
                                          f.__closure__)
                copy.__qualname__ = f.__qualname__ + "_serial"
                copy.__doc__ = f.__doc__
                options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "nopython")}
                twin = _serial_twins[kernel] = stamp(numba.njit(**{**options, "cache": True})(copy))
    return twin


def for_size(kernel, size):
    """The compilation of ``kernel`` to run for an array of ``size`` numbers.

    Below :data:`SERIAL_BELOW`, or when this thread runs Numba on one thread
    (``numba.set_num_threads(1)`` is per calling thread), the serial twin;
    else ``kernel`` itself, on Numba's threads. With ``NUMBA_DISABLE_JIT=1``
    ``kernel`` is a plain Python function and is returned as it is.
    """
    if not hasattr(kernel, "py_func"):
        return kernel
    if size >= SERIAL_BELOW and numba.get_num_threads() > 1:
        return kernel
    return serial_twin(kernel)


stamp_module(globals())  # cached kernels recompile after a change to any kernel file (cache_stamp.py)
