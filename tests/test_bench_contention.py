"""Smoke test of benchmarks/bench_contention.py: a tiny MLP run, no timing assertions."""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # it imports bench_frameworks, as it does when run as a script
    try:
        spec = importlib.util.spec_from_file_location("bench_contention", BENCHMARKS / "bench_contention.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_settings_are_parsed(bench):
    assert bench.parse_setting("GOMP_SPINCOUNT=2000") == {"GOMP_SPINCOUNT": "2000"}
    assert bench.parse_setting("A=1,B=x=y") == {"A": "1", "B": "x=y"}
    assert bench.parse_setting("-") == {}
    for bad in ("GOMP_SPINCOUNT", "=3", "A=1,B"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            bench.parse_setting(bad)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_each_setting_is_measured_alone_and_beside_a_busy_process(bench):
    results = bench.run(["GOMP_SPINCOUNT=0", "-"], "mlp", rounds=1, seconds=0.0, infer=False, threads=1,
                        settle=0.0, log=lambda *a: None)
    assert set(results) == {(s, busy) for s in ("GOMP_SPINCOUNT=0", "-") for busy in (False, True)}
    assert all(len(v) == 1 and v[0] > 0 for v in results.values())
