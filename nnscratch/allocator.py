"""Keep freed arrays in the process's heap, so that training steps reuse memory.

A training step allocates the same large arrays every time (activations,
gradients: 6 MB each in the deep CNN) and frees them at its end. glibc's
``malloc`` serves blocks above its *mmap threshold* (128 kB at start, raised
as big blocks are freed) straight from the kernel and hands them back on
``free``; the next step then touches fresh pages, and every 4 kB page costs a
page fault in which the kernel zeroes it. Measured on the 2-core EPYC: the
simple CNN made 2,200 page faults per step and spent 17 of its 27.5 ms in
the kernel; with the settings below, 40-90 faults and 15 ms. The deep CNN
went from 295 faults to about 100.

:func:`keep_freed_memory` raises the mmap threshold to its maximum (32 MB
on 64-bit) and stops ``free`` from trimming the heap, so freed blocks stay
mapped and are reused. It changes no result, only where memory comes from.
The process keeps its peak heap size instead of returning memory to the
system between steps. ``import nnscratch`` calls it once, unless the
environment says ``NNSCRATCH_KEEP_FREED_MEMORY=0``; elsewhere than glibc
(macOS, musl, Windows) it does nothing.
"""

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20     # glibc's largest allowed value on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 1 << 30      # keep up to 1 GB of free memory at the top of the heap


def keep_freed_memory() -> bool:
    """Ask glibc's ``malloc`` to keep freed blocks of up to 32 MB for reuse; True if it took the settings."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
