"""Smoke test of benchmarks/bench_recurrent.py: a tiny nnscratch run in a worker process, no timing assertions."""

import importlib.util
from pathlib import Path

import pytest

import nnscratch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_recurrent", BENCHMARKS / "bench_recurrent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_layer_is_timed_in_a_fresh_process_each_round(bench):
    args = bench.parse(["--frameworks", "nnscratch", "--layers", "LSTM,SimpleRNN", "--units", "4", "--batch", "3",
                        "--timesteps", "2", "--features", "2", "--steps", "1", "--rounds", "2", "--threads", "1"])
    logged = []
    results = bench.run(args, log=logged.append)
    assert set(results) == {"nnscratch"} and set(results["nnscratch"]) == {"LSTM", "SimpleRNN"}
    for figures in results["nnscratch"].values():
        assert len(figures["train"]) == len(figures["predict"]) == 2
        assert all(ms > 0 for ms in figures["train"] + figures["predict"])
    assert len(logged) == 2 and logged[0].startswith("round 1: nnscratch LSTM")


def test_the_table_gives_medians_ranges_and_the_ratio_against_the_faster_other(bench):
    results = {"nnscratch": {"GRU": {"train": [10.0, 12.0, 11.0], "predict": [2.0, 2.0, 2.0]}},
               "torch": {"GRU": {"train": [22.0, 20.0, 24.0], "predict": [3.0, 3.0, 3.0]}},
               "keras": {"GRU": {"train": [40.0, 40.0, 40.0], "predict": [1.0, 1.0, 1.0]}}}
    table = bench.markdown(results, ["GRU"]).splitlines()
    assert table[0] == "| layer, what | nnscratch | torch | keras | nnscratch vs faster other |"
    assert table[2] == "| GRU, train ms | 11.0 (10.0-12.0) | 22.0 (20.0-24.0) | 40.0 (40.0-40.0) | 2.00x |"
    assert table[3].endswith("| 0.50x |")       # Keras predicts faster here: the faster other is the bar


def test_a_layer_a_framework_lacks_is_a_blank_cell(bench):
    """PyTorch has no GRU with reset_after=False: its cell stays empty and the ratio uses the others."""
    results = {"nnscratch": {"GRU_reset_before": {"train": [10.0], "predict": [2.0]}},
               "torch": {"GRU_reset_before": {"train": [], "predict": []}},
               "keras": {"GRU_reset_before": {"train": [30.0], "predict": [8.0]}}}
    table = bench.markdown(results, ["GRU_reset_before"]).splitlines()
    assert table[2] == "| GRU_reset_before, train ms | 10.0 (10.0-10.0) |  | 30.0 (30.0-30.0) | 3.00x |"
    assert bench.recurrent_layer(nnscratch.layers, "GRU_reset_before", 3).reset_after is False


@pytest.mark.parametrize("argv, message", [(["--frameworks", "jax"], "unknown framework"),
                                           (["--layers", "ConvLSTM"], "unknown layer"),
                                           (["--units", "0"], "--units must be at least 1")])
def test_bad_arguments_are_refused(bench, argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse(argv)
    assert message in capsys.readouterr().err
