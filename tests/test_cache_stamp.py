"""Numba's cache and the kernel-source stamp (nnscratch/kernels/cache_stamp.py).

Numba reuses a cached kernel while the file that defines it is unchanged, even
when a helper it calls, in another file, has changed. The stamp makes every
kernel of the package depend on all the kernel files.
"""

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
from numba.core.dispatcher import Dispatcher

from nnscratch.kernels import cache_stamp

FAST_MODULES = ("fast", "elementwise_fast", "batchnorm_fast", "matmul_fast", "pooling_fast", "winograd_fast",
                "winograd_f4_fast", "image_fast", "optimizer_fast", "workspace")


def test_the_digest_follows_every_file_its_name_and_its_content(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    first = cache_stamp.sources_digest(tmp_path)
    assert cache_stamp.sources_digest(tmp_path) == first
    (tmp_path / "b.py").write_text("y = 3\n")
    assert cache_stamp.sources_digest(tmp_path) != first
    (tmp_path / "b.py").write_text("y = 2\n")
    assert cache_stamp.sources_digest(tmp_path) == first
    (tmp_path / "b.py").rename(tmp_path / "c.py")
    assert cache_stamp.sources_digest(tmp_path) != first
    (tmp_path / "notes.txt").write_text("not a source")
    (tmp_path / "c.py").rename(tmp_path / "b.py")
    assert cache_stamp.sources_digest(tmp_path) == first


def test_every_cached_kernel_of_the_package_carries_the_digest():
    stamped = 0
    for name in FAST_MODULES:
        module = importlib.import_module(f"nnscratch.kernels.{name}")
        for value in vars(module).values():
            cache_file = getattr(getattr(value, "_cache", None), "_cache_file", None)
            if isinstance(value, Dispatcher) and cache_file is not None:
                assert cache_file._source_stamp[1] == cache_stamp.SOURCES_DIGEST, (name, value)
                stamped += 1
    assert stamped > 50 or numba.config.DISABLE_JIT   # without the JIT there are no kernels to stamp


_HELPER = "from numba import njit\n\n\n@njit\ndef helper():\n    return {value}\n"
_KERNEL = textwrap.dedent("""
    import importlib.util
    import os
    import sys
    from pathlib import Path

    from numba import njit

    from helper import helper

    spec = importlib.util.spec_from_file_location("cache_stamp", {cache_stamp!r})
    cache_stamp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cache_stamp)


    @njit(cache=True)
    def kernel():
        return helper()


    if os.environ["STAMP"] == "1":
        cache_stamp.stamp_module(globals(), cache_stamp.sources_digest(Path(__file__).parent))
    print(kernel())
""")


def _run(folder, stamp):
    env = {**os.environ, "NUMBA_DISABLE_JIT": "0", "NUMBA_CACHE_DIR": str(folder / f"cache{stamp}"),
           "PYTHONDONTWRITEBYTECODE": "1", "STAMP": str(stamp)}
    done = subprocess.run([sys.executable, "kernel.py"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_a_changed_helper_in_another_file_recompiles_a_stamped_kernel(tmp_path):
    (tmp_path / "kernel.py").write_text(_KERNEL.format(cache_stamp=str(Path(cache_stamp.__file__))))
    for stamp in (0, 1):
        (tmp_path / "helper.py").write_text(_HELPER.format(value=1))
        assert _run(tmp_path, stamp) == 1                    # compiled and cached
        (tmp_path / "helper.py").write_text(_HELPER.format(value=22))
        assert _run(tmp_path, stamp) == (1 if stamp == 0 else 22)   # Numba alone keeps the stale helper


def test_each_test_worker_compiles_into_a_cache_folder_of_its_own():
    # tests/conftest.py: pytest-xdist's workers must not share Numba's cache (two processes saving two
    # signatures of one kernel at once may both claim its first data file). Without workers: as set.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        assert Path(numba.config.CACHE_DIR).name == worker
    else:
        assert numba.config.CACHE_DIR == os.environ.get("NUMBA_CACHE_DIR", "")
