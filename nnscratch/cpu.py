"""What the CPU can do, read without NumPy: used to set up OpenBLAS before it loads.

OpenBLAS (NumPy's and SciPy's builds, ``DYNAMIC_ARCH``) picks its kernels by
the CPU model when it is loaded. A CPU it does not know yet falls back to an
older kernel: on an AMD EPYC of family 26 (Zen 5) with OpenBLAS 0.3.31 it
chose "Haswell" (AVX2), and a 1024x1024 float32 product ran at 217 GFLOP/s
on 2 cores, against 403 with the AVX-512 "SkylakeX" kernels
(``OPENBLAS_CORETYPE=SkylakeX``). OpenBLAS itself chooses SkylakeX (or a
later Intel kernel with the same float32/float64 GEMM) on every AVX-512 CPU it
knows, so asking for it whenever the CPU has the AVX-512 subsets those
kernels use changes nothing on those and fixes the unknown ones.

This module must not import NumPy: ``nnscratch/__init__.py`` calls it before
NumPy is imported, since OpenBLAS reads ``OPENBLAS_CORETYPE`` only when it loads.
"""

import os

__all__ = ["SKYLAKEX_FLAGS", "cpu_flags", "openblas_coretype", "set_openblas_coretype"]

# the instruction sets OpenBLAS's SkylakeX kernels use (its own test, cpuid_x86.c)
SKYLAKEX_FLAGS = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})


def cpu_flags(cpuinfo: str) -> frozenset:
    """The feature flags of the first processor in the text of ``/proc/cpuinfo``."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def openblas_coretype(cpuinfo: str):
    """``"SkylakeX"`` where the CPU has AVX-512 (F, CD, BW, DQ, VL), else None (let OpenBLAS choose)."""
    return "SkylakeX" if SKYLAKEX_FLAGS <= cpu_flags(cpuinfo) else None


def set_openblas_coretype(path="/proc/cpuinfo"):
    """Set ``OPENBLAS_CORETYPE`` for an AVX-512 CPU unless the user set it; return its value (or None).

    Only libraries loaded afterwards see it. Where ``path`` cannot be read
    (not Linux) nothing is set.
    """
    if "OPENBLAS_CORETYPE" in os.environ:
        return os.environ["OPENBLAS_CORETYPE"]
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            coretype = openblas_coretype(f.read())
    except OSError:
        return None
    if coretype is not None:
        os.environ["OPENBLAS_CORETYPE"] = coretype
    return coretype
