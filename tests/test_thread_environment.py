"""What ``import nnscratch`` asks of the thread pools' environment (docs/kernels.md, section 5).

Each case runs in a fresh interpreter (the libraries read their environment
once per process), with the three variables removed from its environment.
The second half: the policy reaches an OpenBLAS that NumPy loaded before
nnscratch was imported (``nnscratch.thread_policy``).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SHOW = ("import os, json, nnscratch; print(json.dumps({k: os.environ.get(k) for k in "
        "('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'OPENBLAS_THREAD_TIMEOUT')}))")
NAMES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")


def environment_after_import(**given):
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    env.update(given)
    out = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_import_asks_openmp_for_a_short_spin_and_openblas_for_a_short_timeout():
    assert environment_after_import() == {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "2000",
                                          "OPENBLAS_THREAD_TIMEOUT": "4"}


@pytest.mark.parametrize("given", [{"OMP_WAIT_POLICY": "PASSIVE"}, {"OMP_WAIT_POLICY": "ACTIVE"},
                                   {"GOMP_SPINCOUNT": "INFINITE"}, {"OPENBLAS_THREAD_TIMEOUT": "10"}])
def test_a_users_own_thread_settings_are_kept(given):
    seen = environment_after_import(**given)
    for name, value in given.items():
        assert seen[name] == value
    if "OMP_WAIT_POLICY" in given:  # their policy decides the spin: none added
        assert seen["GOMP_SPINCOUNT"] is None


# Reads what every loaded pthreads OpenBLAS took as its timeout, without nnscratch.
_READ_TIMEOUTS = textwrap.dedent("""
    import ctypes, json
    from threadpoolctl import ThreadpoolController

    def timeouts():
        out = {}
        for c in ThreadpoolController().select(internal_api="openblas").lib_controllers:
            if c.threading_layer == "pthreads":
                lib = ctypes.CDLL(c.filepath)
                lib.openblas_thread_timeout.restype = ctypes.c_int
                out[c.filepath] = lib.openblas_thread_timeout()
        return out

    def blas_threads():
        return {c.filepath: c.num_threads for c in ThreadpoolController().select(user_api="blas").lib_controllers}
""")


def _run(body, **env_extra):
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    env.update(env_extra)
    code = _READ_TIMEOUTS + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def numpy_first():
    """A process that imports NumPy (and SciPy's BLAS), then nnscratch, then multiplies on BLAS's threads."""
    result = _run("""
        import numpy as np
        import scipy.linalg.cython_blas
        import os
        tasks = lambda: len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
        before, threads_before, tasks_before = timeouts(), blas_threads(), tasks()
        import nnscratch
        after, threads_after, tasks_after = timeouts(), blas_threads(), tasks()
        rng = np.random.default_rng(0)
        a = rng.standard_normal((600, 700)).astype(np.float32)
        b = rng.standard_normal((700, 500)).astype(np.float32)
        error = float(np.abs(a @ b - a.astype(np.float64) @ b).max())
        print(json.dumps({"tasks_before": tasks_before, "tasks_after": tasks_after, "before": before, "after": after,
                          "threads_before": threads_before,
                          "threads_after": threads_after, "error": error,
                          "gomp": os.environ.get("GOMP_SPINCOUNT")}))
    """)
    if not result["before"]:
        pytest.skip("this NumPy/SciPy has no OpenBLAS with its own threads (MKL or OpenMP OpenBLAS)")
    return result


def test_openblas_loaded_before_nnscratch_takes_the_short_timeout(numpy_first):
    assert set(numpy_first["before"].values()) == {0}  # the variable was unset when they started
    assert numpy_first["after"].keys() == numpy_first["before"].keys()
    assert set(numpy_first["after"].values()) == {4}
    assert numpy_first["gomp"] == "2000"


def test_the_idle_threads_of_that_openblas_were_stopped(numpy_first):
    """Their spin is set when they start: the old ones must go (OpenBLAS starts new ones when next needed)."""
    if numpy_first["tasks_before"] is None:
        pytest.skip("no /proc/self/task to count this process's threads")
    assert numpy_first["tasks_after"] < numpy_first["tasks_before"]


def test_restarted_openblas_keeps_its_thread_count_and_computes_right(numpy_first):
    assert numpy_first["threads_after"] == numpy_first["threads_before"]
    assert numpy_first["error"] < 1e-2  # 700-term float32 sums of N(0, 1) products


def test_a_thread_limit_set_before_import_survives_the_restart(numpy_first):
    result = _run("""
        import numpy as np
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(1, user_api="blas")
        import nnscratch
        a = np.ones((300, 300), dtype=np.float32)
        total = float((a @ a).sum())
        print(json.dumps({"threads": sorted(set(blas_threads().values())), "timeouts": timeouts(), "total": total}))
    """)
    assert result["threads"] == [1]
    assert set(result["timeouts"].values()) == {4}
    assert result["total"] == 300.0 ** 3


def test_a_users_own_openblas_timeout_is_kept_when_numpy_came_first(numpy_first):
    result = _run("""
        import numpy as np
        import nnscratch
        from nnscratch import thread_policy
        print(json.dumps({"timeouts": timeouts(), "again": thread_policy.apply()}))
    """, OPENBLAS_THREAD_TIMEOUT="10")
    assert set(result["timeouts"].values()) == {10}
    assert result["again"] == []


def test_nnscratch_first_needs_no_restart(numpy_first):
    result = _run("""
        import nnscratch
        from nnscratch import thread_policy
        import numpy as np
        import scipy.linalg.cython_blas
        print(json.dumps({"timeouts": timeouts(), "again": thread_policy.apply()}))
    """)
    assert set(result["timeouts"].values()) == {4}  # read at load, from the variable nnscratch set
    assert result["again"] == []
