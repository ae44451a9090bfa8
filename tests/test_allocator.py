"""nnscratch.allocator: freed arrays stay in the heap, so a repeated step stops page-faulting."""

import os
import subprocess
import sys

import pytest

from nnscratch import allocator

LINUX = sys.platform.startswith("linux")

# Three 8 MB arrays, written (so their pages are touched) and freed, twenty
# times over: the pattern of a training step. Prints the page faults of the
# last 19 rounds.
ROUNDS = """
import resource
import numpy as np
import nnscratch

def step():
    arrays = [np.ones(2 << 20, dtype=np.float32) for _ in range(3)]
    return sum(float(a[-1]) for a in arrays)

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

PAGES_PER_ROUND = 3 * (8 << 20) // 4096


def faults(**env):
    out = subprocess.run([sys.executable, "-c", ROUNDS], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not LINUX, reason="the setting is glibc's (Linux)")
def test_keep_freed_memory_takes_on_glibc():
    assert allocator.keep_freed_memory() is True


@pytest.mark.skipif(not LINUX, reason="the setting is glibc's (Linux)")
def test_repeated_steps_reuse_memory_instead_of_faulting():
    kept = faults()
    assert kept < PAGES_PER_ROUND  # 19 rounds together fault less than one round's pages
    # the opt-out leaves glibc's default, which hands the arrays back and faults again
    returned = faults(NNSCRATCH_KEEP_FREED_MEMORY="0")
    assert returned > kept + PAGES_PER_ROUND
