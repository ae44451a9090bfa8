"""What ``import nnscratch`` asks of the thread pools' environment (docs/kernels.md, section 5)."""

import json
import os
import subprocess
import sys

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
    assert environment_after_import() == {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "20000",
                                          "OPENBLAS_THREAD_TIMEOUT": "4"}


@pytest.mark.parametrize("given", [{"OMP_WAIT_POLICY": "PASSIVE"}, {"OMP_WAIT_POLICY": "ACTIVE"},
                                   {"GOMP_SPINCOUNT": "INFINITE"}, {"OPENBLAS_THREAD_TIMEOUT": "10"}])
def test_a_users_own_thread_settings_are_kept(given):
    seen = environment_after_import(**given)
    for name, value in given.items():
        assert seen[name] == value
    if "OMP_WAIT_POLICY" in given:  # their policy decides the spin: none added
        assert seen["GOMP_SPINCOUNT"] is None
