"""Each kernel is compiled once per dtype, not once more for each way its arguments arrive.

Numba compiles (and caches) a kernel once for each distinct tuple of argument
types. Two kinds of difference used to double the compile time of a first run
without changing anything computed (docs/kernels.md, rule 15):

* a read-only array against a writeable one (``np.broadcast_to`` makes
  read-only views: a layer's bias in one call, a broadcast zero in the next);
* an index of a parallel loop, ``uint64`` in ``prange``, against the same
  index in the serial twin (``workspace.serial_twin``), where it is ``int64``.

A fresh process runs the study's models through ``train_on_batch``, ``fit``
(with validation), ``predict``, ``evaluate`` and ``train_on_batch`` again, at
sizes that take both the parallel kernels and their serial twins, with an
empty Numba cache, and then lists every kernel of the package with its
signatures.
"""

import json
import os
import subprocess
import sys
import textwrap

import numba
import pytest

_WORKLOAD = textwrap.dedent("""
    import collections, gc, json
    import numpy as np
    import nnscratch
    from nnscratch import zoo
    from numba.core.dispatcher import Dispatcher

    nnscratch.set_backend("numba")
    rng = np.random.default_rng(0)
    models = [(zoo.basic_mlp(64), (28, 28, 1)), (zoo.optimized_mlp(20), (20,)), (zoo.deep_cnn(), (28, 28, 1)),
              (zoo.simple_cnn(), (28, 28, 1)), (zoo.simple_cnn("two-conv"), (28, 28, 1)), (zoo.uci_cnn(), (8, 8, 1))]
    for model, shape in models:
        x = rng.random((80,) + shape, dtype=np.float32)
        labels = rng.integers(0, 10, 80)
        y = labels if model.name.endswith("two_conv") else np.eye(10, dtype=np.float32)[labels]
        model.train_on_batch(x[:64], y[:64])
        model.fit(x, y, batch_size=64, epochs=1, validation_data=(x[:40], y[:40]), verbose=0)
        model.train_on_batch(x[:2], y[:2])
        model.predict(x, batch_size=80, verbose=0)
        model.predict(x[:3], batch_size=3, verbose=0)
        model.evaluate(x, y, batch_size=80, verbose=0)

    kernels = {}
    for obj in gc.get_objects():
        if isinstance(obj, Dispatcher) and getattr(obj.py_func, "__module__", "").startswith("nnscratch."):
            name = obj.py_func.__module__ + "." + obj.py_func.__qualname__
            kernels[name] = [[str(t) for t in signature] for signature in obj.signatures]
    print(json.dumps(kernels))
""")


def _same_but_for_readonly_or_sign(a, b):
    """Do two signatures differ only in read-only flags and in int64 against uint64?"""
    def plain(t):
        return t.replace("readonly ", "").replace("uint64", "int64")
    return a != b and [plain(t) for t in a] == [plain(t) for t in b]


def test_the_sameness_check_sees_both_kinds_of_difference():
    assert _same_but_for_readonly_or_sign(["array(float32, 1d, C)", "int64"],
                                          ["readonly array(float32, 1d, C)", "int64"])
    assert _same_but_for_readonly_or_sign(["array(float32, 1d, C)", "int64"], ["array(float32, 1d, C)", "uint64"])
    assert not _same_but_for_readonly_or_sign(["array(float32, 1d, C)"], ["array(float64, 1d, C)"])
    assert not _same_but_for_readonly_or_sign(["int64"], ["int64"])


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="without the JIT nothing is compiled")
def test_the_study_compiles_each_kernel_once_per_kind_of_argument(tmp_path):
    # An empty cache: a kernel loaded from the cache brings its helpers compiled inside
    # it, so only a first compilation shows the signatures the helpers are called with.
    env = {**os.environ, "NNSCRATCH_BACKEND": "numba", "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _WORKLOAD], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    kernels = json.loads(done.stdout.strip().splitlines()[-1])
    compiled = {name: signatures for name, signatures in kernels.items() if signatures}
    # the workload reached the convolutions (im2col and Winograd), the dense products and their serial twins
    for expected in ("fast._conv_forward_blocks", "winograd_fast._winograd_blocks", "fast._conv_backward_blocks",
                     "batchnorm_fast._bn_statistics_serial"):
        assert any(name.endswith(expected) for name in compiled), expected
    twice = {name: signatures for name, signatures in compiled.items()
             if any(_same_but_for_readonly_or_sign(a, b) for a in signatures for b in signatures)}
    assert not twice, json.dumps(twice, indent=1)
