"""Seeding, threads and the first-run notice: what :func:`run_context` does around a script's body.

The first run on a machine compiles nnscratch's Numba kernels (1-2 minutes);
:func:`first_run_notice` says so when the kernel cache looks empty
(:func:`kernel_cache_folder`, :func:`kernels_cached`).
"""

import contextlib
import sys
from pathlib import Path

import nnscratch
from nnscratch.sklearn import limit_threads

__all__ = ["FIRST_RUN_NOTICE", "first_run_notice", "kernel_cache_folder", "kernels_cached", "run_context",
           "seed_everything"]


#: Printed when Numba has not cached nnscratch's kernels yet (see :func:`first_run_notice`).
FIRST_RUN_NOTICE = ("first run: Numba compiles nnscratch's kernels once (about 1-2 minutes; the times "
                    "of this run include it); later runs start in seconds")


def seed_everything(seed):
    """Seed the library (weights, dropout, shuffles draw from its generators, never NumPy's global)."""
    nnscratch.set_random_seed(int(seed))


def kernel_cache_folder():
    """The folder where Numba caches nnscratch's compiled kernels, or None (NumPy backend, no cache).

    Numba decides: ``$NUMBA_CACHE_DIR/kernels_<hash>`` when that variable is
    set, else ``nnscratch/kernels/__pycache__`` (or a user-wide cache when the
    package folder is read-only). We ask one ``@njit(cache=True)`` kernel of
    ``nnscratch.kernels.fast`` where its cache is, rather than guess.
    """
    if nnscratch.get_backend() != "numba":
        return None
    from numba.core.dispatcher import Dispatcher

    from nnscratch.kernels import fast

    for value in vars(fast).values():
        path = getattr(getattr(value, "_cache", None), "cache_path", None)
        if isinstance(value, Dispatcher) and path:
            return Path(path)
    return None


def kernels_cached(folder):
    """Whether ``folder`` holds compiled kernels (Numba's ``*.nbi`` index files); True when unknown."""
    return folder is None or any(Path(folder).glob("*.nbi"))


def first_run_notice():
    """Print :data:`FIRST_RUN_NOTICE` when Numba's kernel cache looks empty; return whether it was printed.

    The compile time is counted in that run's ``train_time_s``, ``epoch_time_s``
    and ``wall_time_s`` (taking it out would mean a warm-up step before training).
    """
    if kernels_cached(kernel_cache_folder()):
        return False
    print(FIRST_RUN_NOTICE, file=sys.stderr, flush=True)
    return True


@contextlib.contextmanager
def run_context(args):
    """Around a script's body: say whether kernels compile first, limit threads to ``--threads``, seed."""
    if args.verbose:
        first_run_notice()
    with limit_threads(args.threads):
        seed_everything(args.seed)
        yield
