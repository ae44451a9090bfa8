"""How long idle threads spin: Numba's OpenMP threads and OpenBLAS's must not busy-wait long.

Both thread pools busy-wait after their parallel work by default, in case more
work comes soon: libgomp for 300,000 spins, OpenBLAS for 2^28 cycles (about
0.1 s). On a machine with as many cores as threads, a pool that spins steals
the cores the other one needs next: a training step alternates Numba's
kernels (OpenMP threads) and NumPy's matrix products (OpenBLAS threads), and
ran 2-50x slower. Not spinning at all makes every parallel loop wake sleeping
threads, 35-65 us each, about 60 times a deep-CNN step; a short spin keeps the
threads awake from one kernel to the next (docs/kernels.md, section 5):

* ``GOMP_SPINCOUNT=2000`` (microseconds) for Numba's OpenMP threads, unless
  ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is already set. Sessions 6-13
  used 20,000; on a machine whose cores other processes also want, a thread
  that spins at a loop's barrier keeps its core busy, and the operating
  system cannot move the thread still working (the one that lost its core)
  onto it: with a busy process on one of 2 cores, the simple CNN trained at
  860 img/s with 20,000 spins and 1,090 with 2,000 (1,170 with none), the
  deep CNN at 164 and 188, and alone on the machine all three at the same
  speed (docs/kernels.md, section 5);
* ``OPENBLAS_THREAD_TIMEOUT=4`` (OpenBLAS's shortest, 2^4 cycles) unless set.

Each library reads its variable once, when it starts. libgomp starts when
Numba first runs a parallel loop, always after ``import nnscratch``. OpenBLAS
starts when NumPy (or SciPy) is imported, which in a user's script usually
comes *before* ``import nnscratch`` (``import numpy as np`` on the first
line). Its threads would then keep the long spin, and training ran 1.7-2.3x
slower (the deep and simple CNNs on the 2-core Xeon: 134 instead of 77 ms and
24 instead of 10.6 ms a step). So :func:`apply` also asks every OpenBLAS
already loaded to read its environment again (``openblas_read_env``) and,
if its timeout changed, stops its idle threads (``blas_thread_shutdown_``,
what OpenBLAS itself does before a ``fork``); OpenBLAS starts them again,
with the new timeout, at its next multi-threaded call. Thread counts set
before (``OPENBLAS_NUM_THREADS``, threadpoolctl) are kept: they live in
variables the restart does not touch.

Nothing here changes a result, only when idle threads sleep. OpenBLAS built
with OpenMP threads, and other BLAS libraries (MKL), are left alone.
"""

import ctypes
import os
import sys

__all__ = ["apply", "openblas_timeouts", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT"]

GOMP_SPINCOUNT = "2000"
OPENBLAS_THREAD_TIMEOUT = "4"


def apply():
    """Set the two variables (unless the user did) and bring already-loaded OpenBLAS in line.

    Returns
    -------
    list of str
        Paths of the OpenBLAS libraries whose idle threads were restarted with
        the new timeout (empty when none was loaded before, the usual case when
        ``import nnscratch`` comes first).
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)
    if "numpy" not in sys.modules and "scipy" not in sys.modules:
        return []  # no OpenBLAS of a NumPy or SciPy wheel is loaded yet: it will read the variable itself
    wanted = _timeout_value(os.environ["OPENBLAS_THREAD_TIMEOUT"])
    restarted = []
    for path, library in _loaded_openblas():
        if library.openblas_thread_timeout() == wanted:
            continue
        library.openblas_read_env()
        if library.openblas_thread_timeout() == wanted:
            library.blas_thread_shutdown_()
            restarted.append(path)
    return restarted


def openblas_timeouts():
    """``{path: OPENBLAS_THREAD_TIMEOUT as that library read it}`` for every pthreads OpenBLAS loaded (0: unset)."""
    return {path: library.openblas_thread_timeout() for path, library in _loaded_openblas()}


def _timeout_value(text):
    """The integer OpenBLAS reads from the variable (``atoi``: 0 when it is not a number)."""
    try:
        return int(text.strip())
    except ValueError:
        return 0


def _loaded_openblas():
    """``[(path, ctypes library)]`` of the loaded OpenBLAS builds with their own (pthreads) threads."""
    from threadpoolctl import ThreadpoolController

    found = []
    for controller in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        if getattr(controller, "threading_layer", None) != "pthreads":
            continue
        try:
            library = ctypes.CDLL(controller.filepath)
            for name in ("openblas_thread_timeout", "openblas_read_env", "blas_thread_shutdown_"):
                getattr(library, name)
        except (OSError, AttributeError):  # an OpenBLAS without these entry points: leave it alone
            continue
        library.openblas_thread_timeout.restype = ctypes.c_int
        found.append((controller.filepath, library))
    return found
