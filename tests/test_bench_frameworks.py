"""Smoke test of benchmarks/bench_frameworks.py: tiny runs, nnscratch only, no timing assertions."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from nnscratch import zoo

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_frameworks.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_frameworks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_torch(bench, monkeypatch):
    """Make PyTorch and Keras look missing, installed or not."""
    monkeypatch.setitem(bench.FRAMEWORK_MODULES, "torch", "nnscratch_test_no_such_module")
    monkeypatch.setitem(bench.FRAMEWORK_MODULES, "keras", "nnscratch_test_no_such_module")


def test_missing_framework_is_detected(bench, no_torch):
    assert bench.framework_available("nnscratch")
    assert not bench.framework_available("torch")
    assert not bench.framework_available("keras")


def test_throughput_run_with_missing_frameworks(bench, no_torch, tmp_path):
    args = bench.parse_args(["--frameworks", "nnscratch,torch,keras", "--models", "mlp", "--rounds", "1",
                             "--steps", "1", "--warmup", "1", "--min-seconds", "0", "--batch", "8",
                             "--backend", "numpy", "--no-memory", "--no-startup", "--no-layers",
                             "--infer-passes", "3"])
    results = bench.run_benchmark(args, log=lambda *a: None)
    json.dumps(results)  # JSON-able, as --json writes it
    assert results["config"]["infer_passes"] == 3

    assert results["config"]["missing"] == ["torch", "keras"]
    cell = results["throughput"]["mlp"]["nnscratch"]
    assert cell["status"] == "ok"
    assert len(cell["train_rounds"]) == len(cell["infer_rounds"]) == 1
    assert cell["train_img_s"] > 0 and cell["infer_img_s"] > 0
    assert results["throughput"]["mlp"]["torch"] == {"status": "not installed"}
    assert results["ratios"]["mlp"] == {"train": {"ratio": None, "vs": None}, "infer": {"ratio": None, "vs": None}}
    assert [g["met"] for g in results["goals"]] == [None, None]  # nothing to compare with
    assert "nnscratch" in results["workers"]

    text = bench.render_markdown(results)
    assert "| mlp |" in text and "not installed" in text and "inference the median of 3 passes" in text
    doc = tmp_path / "doc.md"
    begin, end = bench.DOC_BEGIN.format(backend="numpy"), bench.DOC_END.format(backend="numpy")
    doc.write_text(f"intro\n{begin}\nold\n{end}\noutro\n")
    bench.update_doc(doc, text, backend="numpy")
    assert doc.read_text() == f"intro\n{begin}\n{text}{end}\noutro\n"


def test_ratios_pick_the_fastest_other_framework(bench):
    throughput = {"mlp": {"nnscratch": {"status": "ok", "train_img_s": 300.0, "infer_img_s": 100.0},
                          "torch": {"status": "ok", "train_img_s": 200.0, "infer_img_s": 400.0},
                          "keras": {"status": "ok", "train_img_s": 100.0, "infer_img_s": 500.0}}}
    r = bench.ratios(throughput)["mlp"]
    assert r["train"] == {"ratio": 1.5, "vs": "torch"}
    assert r["infer"] == {"ratio": 0.2, "vs": "keras"}


def test_layer_breakdown(bench):
    model = zoo.basic_mlp(16)
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(8) % 10]
    result = bench.layer_breakdown(model, x, y, steps=2, warmup=1)
    names = [row["layer"] for row in result["rows"]]
    assert names == ["1 Flatten", "2 Dense", "3 Dense", "loss (softmax CE)", "optimizer (Adam)"]
    assert result["gemm_flops_per_image"] == 3 * 2 * (784 * 16 + 16 * 10)
    assert sum(row["percent"] for row in result["rows"]) == pytest.approx(100)
    assert all(row["forward_ms"] >= 0 and row["backward_ms"] >= 0 for row in result["rows"])


def test_memory_in_a_fresh_worker(bench):
    memory = bench.measure_memory_all(["nnscratch"], threads=1, backend="numpy", batch=8, steps=1, model="mlp")
    m = memory["nnscratch"]
    assert m["peak_mib"] >= m["after_import_mib"] > 0
    assert m["steps"] == 1


def test_startup_in_fresh_processes(bench):
    startup = bench.measure_startup_all(["nnscratch"], threads=1, backend="numpy", model="mlp")
    runs = startup["nnscratch"]
    assert [run["process"] for run in runs] == ["first process (empty Numba cache)", "second process (cached)"]
    for run in runs:
        assert run["first_step_s"] >= run["step_s"] > 0
        assert run["first_step_s"] == pytest.approx(
            run["interpreter_s"] + run["import_s"] + run["build_s"] + run["step_s"])


def test_layer_breakdown_runs_batchnorm_relu_fused(bench):
    import nnscratch
    from nnscratch.layers import BatchNormalization, Conv2D, Dense, Flatten, ReLU

    model = nnscratch.Sequential([nnscratch.Input((6, 6, 1)), Conv2D(2, 3), BatchNormalization(), ReLU(),
                                  Flatten(), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 6, 6, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(4)]
    rows = bench.layer_breakdown(model, x, y, steps=2, warmup=1)["rows"]
    assert rows[2]["layer"] == "3 ReLU (fused into the batch norm)"
    assert rows[2]["forward_ms"] == rows[2]["backward_ms"] == 0.0
    assert rows[1]["layer"] == "2 BatchNormalization"
    assert rows[1]["forward_ms"] > 0 and rows[1]["backward_ms"] > 0
