"""nnscratch.cpu: OpenBLAS gets its AVX-512 kernels on AVX-512 CPUs, set before NumPy loads it."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from nnscratch import cpu

ZEN5 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx512_bf16
"""
ZEN3 = """processor\t: 0
cpu family\t: 25
flags\t\t: fpu sse2 avx avx2 fma bmi2
"""
PARTIAL = "flags\t: avx2 avx512f avx512cd\n"  # Xeon Phi-like: no BW/DQ/VL, OpenBLAS's SkylakeX kernels would fault


def test_flags_are_read_from_the_first_processor():
    assert "avx512bw" in cpu.cpu_flags(ZEN5) and "avx512bw" not in cpu.cpu_flags(ZEN3)
    assert cpu.cpu_flags("processor : 0\n") == frozenset()


def test_coretype_only_for_the_full_avx512_subset():
    assert cpu.openblas_coretype(ZEN5) == "SkylakeX"
    assert cpu.openblas_coretype(ZEN3) is None
    assert cpu.openblas_coretype(PARTIAL) is None
    assert cpu.openblas_coretype("") is None


def test_set_openblas_coretype_respects_the_user(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(ZEN5)
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    assert cpu.set_openblas_coretype(info) == "SkylakeX" and os.environ["OPENBLAS_CORETYPE"] == "SkylakeX"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert cpu.set_openblas_coretype(info) == "Haswell" and os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    info.write_text(ZEN3)
    assert cpu.set_openblas_coretype(info) is None and "OPENBLAS_CORETYPE" not in os.environ
    assert cpu.set_openblas_coretype(tmp_path / "missing") is None and "OPENBLAS_CORETYPE" not in os.environ


CHILD = """
import json, os, sys
import nnscratch                       # before NumPy, as the experiments do
import numpy
from threadpoolctl import threadpool_info
arch = [i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"]
print(json.dumps({"env": os.environ.get("OPENBLAS_CORETYPE"), "openblas": arch}))
"""


def _child(env):
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_nnscratch_first_reaches_numpys_openblas():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    info = Path("/proc/cpuinfo")
    expected = cpu.openblas_coretype(info.read_text(errors="replace")) if info.exists() else None
    seen = _child(env)
    assert seen["env"] == expected
    if expected is not None:  # this machine has AVX-512: NumPy's OpenBLAS runs the kernels asked for
        assert seen["openblas"] and all(a == expected for a in seen["openblas"])
    # a user's choice wins, and reaches OpenBLAS the same way
    seen = _child({**env, "OPENBLAS_CORETYPE": "Haswell"})
    assert seen["env"] == "Haswell"
    if platform.machine() in ("x86_64", "AMD64"):  # Haswell kernels exist only there
        assert all(a == "Haswell" for a in seen["openblas"])
