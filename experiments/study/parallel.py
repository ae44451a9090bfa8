"""Parallel work: folds or widths side by side, through joblib (``--jobs``) or a Dask cluster (``--dask-scheduler``).

:func:`parallel_map` runs a list of tasks; :func:`parallel_context` gives
joblib's ``n_jobs`` and backend (for scikit-learn's ``cross_validate``);
:func:`ship_by_value` lets remote workers run the scripts' functions
without importing them.
"""

import contextlib
import sys

import numpy as np
from nnscratch.sklearn import limit_threads

__all__ = ["mean_std", "parallel_context", "parallel_map", "ship_by_value", "worker_threads", "worker_verbose"]


def ship_by_value(*modules):
    """Pickle these modules' functions by value, so remote Dask or joblib workers need not import them.

    The experiment scripts are not installed packages: a worker on another
    machine (a shared class cluster) could not import them by name. A
    package's name (``"study"``) covers its modules.
    """
    picklers = []
    with contextlib.suppress(ImportError):
        import cloudpickle
        picklers.append(cloudpickle)
    with contextlib.suppress(ImportError):
        from joblib.externals import cloudpickle as joblib_cloudpickle
        picklers.append(joblib_cloudpickle)
    for module in modules:
        if isinstance(module, str):
            module = sys.modules[module]
        if module.__name__ == "__main__":
            continue  # __main__ is always pickled by value
        for pickler in picklers:
            with contextlib.suppress(ValueError):
                pickler.register_pickle_by_value(module)


@contextlib.contextmanager
def parallel_context(jobs=1, dask_scheduler=None):
    """Yield ``(n_jobs, backend_name)`` for joblib; inside, joblib runs on the Dask cluster if one is given.

    Without a scheduler joblib uses its default process pool (loky). With one,
    ``joblib.parallel_backend("dask")`` sends every task to the cluster at
    ``dask_scheduler`` through a ``distributed.Client``; ``jobs=1`` then means
    all of the cluster's workers. The client disconnects at the end; the
    cluster keeps running (several users can share it).
    """
    import joblib

    if dask_scheduler is None:
        yield jobs, "loky" if jobs != 1 else "sequential"
        return
    from distributed import Client

    # the facade the scripts import (common.py) and this package, where its functions live
    ship_by_value(*(name for name in ("common", __package__) if name in sys.modules))
    with Client(dask_scheduler, timeout="30s") as client, joblib.parallel_backend("dask"):
        n_workers = len(client.scheduler_info().get("workers", {})) or 1
        yield (-1 if jobs == 1 else jobs), f"dask ({dask_scheduler}, {n_workers} workers)"


def worker_threads(args):
    """BLAS/Numba threads per parallel task: 1 when tasks run side by side, else ``--threads``."""
    parallel = getattr(args, "jobs", 1) != 1 or getattr(args, "dask_scheduler", None) is not None
    return 1 if parallel else args.threads


def worker_verbose(args):
    """``--verbose`` for parallel tasks: one line per epoch instead of progress bars that would interleave."""
    parallel = getattr(args, "jobs", 1) != 1 or getattr(args, "dask_scheduler", None) is not None
    return (2 if args.verbose else 0) if parallel else args.verbose


def _call_limited(function, threads, arguments):
    with limit_threads(threads):
        return function(*arguments)


def parallel_map(function, tasks, args):
    """``[function(*task) for task in tasks]`` with joblib (``--jobs``) or on a Dask cluster (``--dask-scheduler``).

    Each task limits its BLAS and Numba threads to :func:`worker_threads`, so
    ``--jobs 2`` on 2 cores runs two single-threaded trainings, not four threads.
    Results come back in the order of ``tasks``.
    """
    import joblib

    tasks = list(tasks)
    threads = worker_threads(args)
    with parallel_context(args.jobs, args.dask_scheduler) as (n_jobs, backend):
        if n_jobs == 1:
            return [_call_limited(function, threads, task) for task in tasks], backend
        ship_by_value(getattr(function, "__module__", "__main__"))
        results = joblib.Parallel(n_jobs=min(n_jobs, len(tasks)) if n_jobs > 0 else n_jobs)(
            joblib.delayed(_call_limited)(function, threads, task) for task in tasks)
        return list(results), backend


def mean_std(values) -> dict:
    """Mean and population standard deviation (ddof=0) of a list of numbers."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=0)), "values": values.tolist()}
