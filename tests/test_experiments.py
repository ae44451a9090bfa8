"""The experiment scripts, run in-process on tiny subsets (``--quick``): outputs, determinism, reports, Dask."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from data_helpers import require_shared

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

import basic_mlp  # noqa: E402
import common  # noqa: E402
import compare  # noqa: E402
import deep_cnn  # noqa: E402
import make_results  # noqa: E402
import optimized_mlp  # noqa: E402
import seed_spread  # noqa: E402
import simple_cnn  # noqa: E402
import uci_digits_kfold  # noqa: E402

pytestmark = pytest.mark.slow

# name (= results folder and metrics["experiment"]) -> (module, extra argv, dataset, extra output files)
RUNS = {
    "basic_mlp": (basic_mlp, [], "mnist", ["sweep.png", "history_units128.csv", "history_units512.csv"]),
    "optimized_mlp": (optimized_mlp, [], "mnist", ["selected_pixels.png", "pixel_scores.npy"]),
    "deep_cnn": (deep_cnn, ["--train-size", "600", "--test-size", "200"], "mnist", []),
    "simple_cnn_three_conv": (simple_cnn, ["--variant", "three-conv"], "mnist", []),
    "simple_cnn_two_conv": (simple_cnn, ["--variant", "two-conv"], "mnist", []),
    "uci_digits_kfold": (uci_digits_kfold, [], "optdigits", ["kfold.png"]),
    "uci_digits_kfold_scaled": (uci_digits_kfold, ["--scale"], "optdigits", ["kfold.png"]),
}
PNGS = ("training_curves.png", "confusion_matrix.png")


class QuickRuns:
    """Runs each script once, on demand, into one shared results folder."""

    def __init__(self, root):
        self.root = root
        self.metrics = {}

    def argv(self, name, *more):
        # One thread, like each parallel job: BLAS adds in another order with more
        # threads, so bit-identical results need the same thread count.
        module, extra, _, _ = RUNS[name]
        return ["--quick", "--out", str(self.root / name), "--threads", "1", *extra, *more]

    def __call__(self, name):
        if name not in self.metrics:
            require_shared(RUNS[name][2])
            self.metrics[name] = RUNS[name][0].main(self.argv(name))
        return self.metrics[name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return QuickRuns(tmp_path_factory.mktemp("results"))


def _is_png(path):
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", list(RUNS))
def test_quick_run_writes_metrics_history_and_plots(runs, name):
    returned = runs(name)
    out = runs.root / name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(returned, default=common._json_default))
    assert set(common.METRICS_KEYS) <= set(metrics), set(common.METRICS_KEYS) - set(metrics)
    assert metrics["experiment"] == name and metrics["quick"] is True and metrics["seed"] == 42
    assert metrics["params"] == common.PUBLISHED[name]["params"]
    assert metrics["epochs"] == 1 and metrics["epochs_run"] == 1
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and np.isfinite(metrics["test_loss"])
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == metrics["n_test"]
    assert metrics["errors"] == metrics["n_test"] - np.trace(matrix)
    assert metrics["test_accuracy"] == pytest.approx(np.trace(matrix) / metrics["n_test"])
    report = metrics["classification_report"]
    assert {str(k) for k in range(10)} | {"macro avg", "weighted avg"} <= set(report)
    assert metrics["f1_macro"] == pytest.approx(report["macro avg"]["f1-score"])
    assert {"numpy", "numba", "scikit-learn", "nnscratch"} <= set(metrics["versions"])
    assert {"platform", "cpu", "cores"} <= set(metrics["machine"])
    assert metrics["prediction_time_s"] > 0 and metrics["wall_time_s"] > 0

    with open(out / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == metrics["epochs_run"]
    assert {"epoch", "loss", "accuracy", "learning_rate"} <= set(rows[0])
    assert ("val_accuracy" in rows[0]) == (metrics["n_val"] > 0)
    for png in PNGS:
        assert _is_png(out / png), png
    for extra in RUNS[name][3]:
        assert (out / extra).is_file(), extra


def test_quick_sizes_and_splits(runs):
    assert (runs("basic_mlp")["n_train"], runs("basic_mlp")["n_val"], runs("basic_mlp")["n_test"]) == (1800, 200, 500)
    two = runs("simple_cnn_two_conv")
    assert (two["n_train"], two["n_val"], two["batch_size"]) == (1600, 400, 128)
    uci = runs("uci_digits_kfold")
    assert (uci["n_rows"], uci["n_train"], uci["n_test"], uci["n_val"]) == (1000, 800, 200, 0)


def test_basic_sweep_keeps_the_best_width_on_validation(runs):
    metrics = runs("basic_mlp")
    sweep = metrics["sweep"]
    assert [entry["units"] for entry in sweep] == [128, 256, 512]
    best = max(entry["best_val_accuracy"] for entry in sweep)
    assert metrics["best_units"] == min(e["units"] for e in sweep if e["best_val_accuracy"] == best)
    assert metrics["augmentation"] == common.AUGMENTATION and metrics["restored_best_weights"] is True


def test_best_width_tie_keeps_the_smaller():
    results = [{"units": 512, "best_val_accuracy": 0.9}, {"units": 128, "best_val_accuracy": 0.9},
               {"units": 256, "best_val_accuracy": 0.8}]
    assert basic_mlp.best_width(results)["units"] == 128


def test_optimized_selection_is_fitted_on_training_images(runs):
    metrics = runs("optimized_mlp")
    assert metrics["k"] == 196 and len(metrics["selected_pixels"]) == 196
    assert metrics["selected_pixels"] == sorted(metrics["selected_pixels"])
    assert 196 <= metrics["n_nonconstant_pixels"] <= 784


def test_uci_kfold_reports_mean_and_population_std(runs):
    for name, scaled in (("uci_digits_kfold", False), ("uci_digits_kfold_scaled", True)):
        metrics = runs(name)
        kfold = metrics["kfold"]
        assert metrics["scaled"] is scaled
        assert (kfold["n_splits"], kfold["folds_run"], kfold["random_state"]) == (5, 5, 42)
        values = kfold["accuracy"]["values"]
        assert len(values) == 5 and sum(kfold["fold_sizes"]) == 1000
        assert kfold["accuracy"]["mean"] == pytest.approx(np.mean(values))
        assert kfold["accuracy"]["std"] == pytest.approx(np.std(values, ddof=0))
        assert metrics["kfold_mean_accuracy"] == kfold["accuracy"]["mean"]


def test_same_seed_twice_gives_identical_metrics(runs, tmp_path):
    """A second run, with the widths trained in 2 joblib processes, reproduces every number."""
    first = common.without_timings(runs("basic_mlp"))
    again = basic_mlp.main(["--quick", "--out", str(tmp_path / "again"), "--jobs", "2", "--verbose", "0"])
    again = common.without_timings(again)
    for key in ("jobs", "parallel_backend"):
        first.pop(key), again.pop(key)
    assert again == first
    repeat = common.without_timings(optimized_mlp.main(["--quick", "--out", str(tmp_path / "opt"), "--verbose", "0",
                                                        "--threads", "1"]))
    assert repeat == common.without_timings(runs("optimized_mlp"))


def test_another_seed_gives_other_numbers(runs, tmp_path):
    other = optimized_mlp.main(["--quick", "--seed", "7", "--out", str(tmp_path / "seed7"), "--verbose", "0"])
    assert other["seed"] == 7
    assert other["test_loss"] != runs("optimized_mlp")["test_loss"]


def test_uci_split_seed_fixes_the_split_apart_from_the_model_seed(runs, tmp_path):
    def class_counts(metrics):  # rows of the confusion matrix = the test split's true labels
        return np.asarray(metrics["confusion_matrix"]).sum(axis=1).tolist()

    base = runs("uci_digits_kfold")
    assert base["split_seed"] == base["seed"] == 42
    argv = ["--quick", "--skip-kfold", "--verbose", "0", "--threads", "1", "--seed", "7"]
    fixed = uci_digits_kfold.main(argv + ["--split-seed", "42", "--out", str(tmp_path / "fixed")])
    moved = uci_digits_kfold.main(argv + ["--out", str(tmp_path / "moved")])
    assert fixed["split_seed"] == 42 and moved["split_seed"] == 7 and fixed["seed"] == 7
    assert class_counts(fixed) == class_counts(base) != class_counts(moved)
    assert fixed["test_loss"] != base["test_loss"]  # other initial weights on the same split


def test_kfold_folds_on_a_dask_cluster_match_the_local_run(runs, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = runs("uci_digits_kfold")["kfold"]["accuracy"]["values"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        metrics = uci_digits_kfold.main(["--quick", "--max-folds", "2", "--dask-scheduler", cluster.scheduler_address,
                                         "--out", str(tmp_path / "dask"), "--verbose", "0"])
    kfold = metrics["kfold"]
    assert kfold["backend"].startswith("dask") and "2 workers" in kfold["backend"]
    assert kfold["folds_run"] == 2 and kfold["n_splits"] == 5
    assert kfold["accuracy"]["values"] == local[:2]


def test_compare_writes_table_csv_and_chart(runs, tmp_path):
    for name in RUNS:
        runs(name)
    rows = compare.main(["--results", str(runs.root), "--include-quick", "--out", str(tmp_path)])
    assert [row["experiment"] for row in rows] == sorted(RUNS)
    with open(tmp_path / "comparison.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(RUNS)
    assert {"test_accuracy", "errors", "prediction_time_s", "params"} <= set(table[0])
    by_name = {row["experiment"]: row for row in table}
    assert int(by_name["deep_cnn"]["params"]) == 1_015_530
    text = (tmp_path / "comparison.md").read_text()
    assert "| model | test accuracy |" in text and "deep_cnn" in text
    assert _is_png(tmp_path / "comparison.png")
    with pytest.raises(SystemExit, match="no metrics.json"):
        compare.main(["--results", str(runs.root), "--out", str(tmp_path / "none")])  # quick runs left out


def test_make_results_writes_the_document(runs, tmp_path):
    for name in RUNS:
        runs(name)
    output = tmp_path / "results.md"
    text = make_results.main(["--results", str(runs.root), "--include-quick", "--output", str(output)])
    assert output.read_text() == text
    assert "Generated by" in text and "Do not edit by hand" in text and "--quick" in text
    for name in RUNS:
        assert f"| {name} |" in text
    assert "99.05%" in text and "407,050 / 407,050" in text  # published beside ours
    assert "## Basic MLP width sweep" in text and "## UCI 8x8 digits" in text
    assert "2 cores" in text or "cores" in text
    assert "Not run yet" not in text
    empty = make_results.main(["--results", str(tmp_path / "nothing"), "--output", str(tmp_path / "empty.md")])
    assert "Not run yet" in empty and "python experiments/deep_cnn.py" in empty


def test_seed_spread_reruns_the_script_per_seed_and_summarises(runs, tmp_path):
    """Each seed is the experiment's own script in a subprocess: seed 42 reproduces the in-process run."""
    record = seed_spread.main(["optimized_mlp", "--seeds", "42", "7", "--jobs", "2", "--out", str(tmp_path),
                               "--name", "opt-quick", "--", "--quick"])
    assert record["seeds"] == [42, 7] and record["quick"] and record["extra_args"] == ["--quick"]
    assert record["name"] == "opt-quick" and record["experiment"] == "optimized_mlp"
    seed42 = common.read_json(tmp_path / "seed_42" / "metrics.json")
    assert common.without_timings(seed42) | {"args": None} == common.without_timings(runs("optimized_mlp")) | {
        "args": None}
    values = record["test_accuracy"]["values"]
    assert values[0] == runs("optimized_mlp")["test_accuracy"]
    assert values[1] == common.read_json(tmp_path / "seed_7" / "metrics.json")["test_accuracy"]
    assert record["test_accuracy"]["mean"] == pytest.approx(np.mean(values))
    assert record["test_accuracy"]["std"] == pytest.approx(np.std(values, ddof=0))
    assert record["test_accuracy"]["min"] == min(values) and record["kfold_mean_accuracy"] is None
    assert common.read_json(tmp_path / "spread.json") == json.loads(json.dumps(record))
    # --resume reads the seeds already done and runs only the new one
    before = (tmp_path / "seed_42" / "metrics.json").stat().st_mtime_ns
    resumed = seed_spread.main(["optimized_mlp", "--seeds", "42", "7", "3", "--out", str(tmp_path), "--resume",
                                "--threads", "2", "--", "--quick"])
    assert (tmp_path / "seed_42" / "metrics.json").stat().st_mtime_ns == before
    assert resumed["test_accuracy"]["values"][:2] == values
    assert common.read_json(tmp_path / "seed_3" / "metrics.json")["runtime"]["threads"] == 2
    with pytest.raises(SystemExit):
        seed_spread.main(["optimized_mlp", "--seeds", "1", "1"])
    with pytest.raises(SystemExit):
        seed_spread.main(["optimized_mlp", "--seeds", "1", "--name", "../elsewhere"])


def test_make_results_places_a_missed_target_within_the_spread():
    found = {"optimized_mlp": {"test_accuracy": 0.977}, "basic_mlp": {"test_accuracy": 0.991}}
    spreads = {"optimized_mlp": {"experiment": "optimized_mlp", "seeds": [1, 2, 3], "extra_args": [],
                                 "test_accuracy": {"values": [0.976, 0.979, 0.981], "mean": 0.9787,
                                                   "std": 0.002, "min": 0.976, "max": 0.981},
                                 "wall_time_s": 100.0}}
    section = make_results.targets_section(found, spreads)
    assert "| optimized MLP test accuracy | 97.80% | 97.70% | missed by 0.10 points |" in section
    assert "ranged 97.60% – 98.10%" in section and "2 of 3 reached 97.80%" in section
    assert "basic MLP" not in section.split("measured:")[1]  # met: no sentence
    assert "not seed noise" not in section  # some seeds reach the target
    below = {"optimized_mlp": {**spreads["optimized_mlp"],
                               "test_accuracy": {**spreads["optimized_mlp"]["test_accuracy"],
                                                 "values": [0.976, 0.977, 0.9775]}}}
    assert "none of the 4 seeds run (42 included) reached 97.80%" in make_results.targets_section(found, below)
    table = make_results.spread_section(spreads, found)
    assert "| optimized_mlp | as the study | 1, 2, 3 | 97.87% ± 0.20 | 97.60% – 98.10% | 97.70% | 97.80% | 2 of 3 |" \
        in table


def test_defaults_follow_the_study():
    args = common.parse_args(basic_mlp.parser(), [])
    assert (args.epochs, args.batch_size, args.seed, args.jobs, args.threads) == (20, 64, 42, 1, None)
    assert args.out == common.RESULTS / "basic_mlp" and args.verbose == 1
    quick = common.parse_args(basic_mlp.parser(), ["--quick"])
    assert (quick.epochs, quick.train_size, quick.test_size) == (1, 2000, 500)
    assert quick.out == common.RESULTS / "quick" / "basic_mlp"
    p = simple_cnn.parser()
    p.set_defaults(study_epochs=10)
    assert common.parse_args(p, ["--variant", "two-conv"], out_name="simple_cnn_two_conv").batch_size == 128
    uci = common.parse_args(uci_digits_kfold.parser(), [])
    assert (uci.epochs, uci.batch_size, uci.folds) == (100, 128, 5)
    with pytest.raises(SystemExit):
        common.parse_args(optimized_mlp.parser(), ["--epochs", "0"])


# --------------------------------------------------------------------------- script users' experience (audit)
REPO = EXPERIMENTS.parent


def run_script(script, *argv, cwd=REPO, env=None):
    """Run ``experiments/<script>`` as a user would, in a subprocess; return the CompletedProcess."""
    import os
    import subprocess

    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(EXPERIMENTS / script), *argv], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


def one_line(text):
    """``text`` with every run of whitespace as one space (argparse wraps help lines)."""
    return " ".join(text.split())


def test_data_dir_may_name_the_root_or_the_dataset_folder(tmp_path, monkeypatch):
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    root = tmp_path / "data"
    assert common.dataset_folder(root, "mnist") == root / "mnist"
    assert common.dataset_folder(root / "mnist", "mnist") == root / "mnist"  # not .../mnist/mnist
    monkeypatch.chdir(tmp_path)
    assert common.dataset_folder(Path("data"), "mnist") == root.resolve() / "mnist"  # relative: resolved
    assert common.dataset_folder(None, "mnist") is None


def test_a_missing_data_dir_is_one_message_and_exit_status_1(tmp_path):
    """No traceback: the resolved path, --data-dir and NNSCRATCH_DATA are named."""
    done = run_script("optimized_mlp.py", "--quick", "--data-dir", "no_such_folder", "--out", str(tmp_path / "out"),
                      cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert str(tmp_path.resolve() / "no_such_folder") in done.stderr
    assert "--data-dir" in done.stderr and "NNSCRATCH_DATA" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_corrupt_data_file_is_one_message_advising_to_delete_it(tmp_path):
    shared = require_shared("optdigits")
    folder = tmp_path / "optdigits"
    folder.mkdir()
    (folder / "optdigits.tra").write_bytes((shared / "optdigits.tra").read_bytes()[:50_000])  # truncated
    (folder / "optdigits.tes").write_bytes((shared / "optdigits.tes").read_bytes())
    done = run_script("uci_digits_kfold.py", "--quick", "--skip-kfold", "--data-dir", str(tmp_path),
                      "--out", str(tmp_path / "out"))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    message = done.stderr
    assert "damaged, truncated" in message and str(folder / "optdigits.tra") in message  # the loader's own words
    assert "delete it" in message and "--data-dir" in message and "NNSCRATCH_DATA" in message


def test_unavailable_data_name_every_folder_resolved(tmp_path, monkeypatch):
    """Files nowhere and no mirror: DataError (exit 1) with the loader's message, in --data-dir terms."""
    from argparse import Namespace

    from nnscratch.datasets import mnist

    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNSCRATCH_DATA", "empty")  # relative, as an audit user set it
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "MIRRORS", ())  # never download in a test
    with pytest.raises(SystemExit) as raised:
        common.load_mnist(Namespace(data_dir=None, train_size=None, test_size=None, seed=42))
    message = raised.value.code
    assert isinstance(raised.value, common.DataError) and isinstance(message, str)  # str: exit status 1
    assert "mnist: missing file(s)" in message  # the loader's message, kept
    assert str(tmp_path.resolve() / "empty" / "mnist") in message
    assert str(tmp_path / "cache" / "mnist") in message
    assert "path=" not in message and "--data-dir" in message and "NNSCRATCH_DATA" in message


def test_first_run_notice_when_numbas_kernel_cache_is_empty(tmp_path, monkeypatch, capsys):
    # patched where it lives: first_run_notice looks it up in study.seeding (common only re-exports it)
    monkeypatch.setattr("study.seeding.kernel_cache_folder", lambda: tmp_path)
    assert common.first_run_notice() is True
    assert "first run: Numba compiles nnscratch's kernels once" in capsys.readouterr().err
    (tmp_path / "fast._relu-10.py311.nbi").write_bytes(b"")
    assert common.first_run_notice() is False
    assert capsys.readouterr().err == ""


def test_kernel_cache_folder_is_where_numba_caches(runs):
    import os

    import nnscratch

    if nnscratch.get_backend() != "numba":
        assert common.kernel_cache_folder() is None
        return
    runs("optimized_mlp")  # compiles (or loads) kernels
    folder = common.kernel_cache_folder()
    if os.environ.get("NUMBA_CACHE_DIR"):
        assert Path(os.environ["NUMBA_CACHE_DIR"]).resolve() in folder.resolve().parents
    else:
        assert folder.name == "__pycache__"
    assert common.kernels_cached(folder)


@pytest.mark.parametrize("module", [basic_mlp, optimized_mlp, deep_cnn, simple_cnn, uci_digits_kfold,
                                    seed_spread, compare])
def test_help_ends_with_run_time_outputs_and_examples(module):
    text = one_line(module.parser().format_help())
    assert "typical run time:" in text and "writes to --out:" in text and "examples:" in text
    assert f"python experiments/{module.__name__}.py" in text


def test_help_texts_name_the_real_folders_and_options():
    simple = one_line(simple_cnn.parser().format_help())
    assert "results/simple_cnn_three_conv/" in simple and "results/simple_cnn_two_conv/" in simple
    assert "results/simple_cnn/" not in simple
    uci = one_line(uci_digits_kfold.parser().format_help())
    assert "results/uci_digits_kfold_scaled/ with --scale" in uci
    for module in (optimized_mlp, deep_cnn, simple_cnn):  # no --jobs there: --threads must not mention it
        assert "--jobs" not in module.parser().format_help()
    assert "--jobs" in basic_mlp.parser().format_help()
    assert "-- --quick" in seed_spread.parser().format_help()


def test_seed_spread_points_a_misplaced_quick_after_the_double_dash(capsys):
    with pytest.raises(SystemExit) as raised:
        seed_spread.main(["optimized_mlp", "--seeds", "1", "--quick"])
    assert raised.value.code == 2
    assert "put it after `--`" in capsys.readouterr().err


def test_quick_runs_say_so_on_the_console_and_in_titles(runs):
    metrics = runs("optimized_mlp")
    assert common.QUICK_TAG == "quick smoke test (not comparable to the study)"
    assert common.QUICK_TAG in common.summary_line(metrics)
    assert common.QUICK_TAG in common.plot_title(metrics, "test accuracy 70%")
    full = {**metrics, "quick": False}
    assert common.QUICK_TAG not in common.summary_line(full) + common.plot_title(full, "x")
    one_width = [{"units": 128, "history": {"val_accuracy": [0.5]}}]
    figure = basic_mlp.sweep_figure(one_width, quick=True)
    assert common.QUICK_TAG in figure.axes[0].get_title()
    common._pyplot().close(figure)


def test_compare_marks_quick_entries(runs, tmp_path):
    found = {"optimized_mlp": runs("optimized_mlp"),
             "deep_cnn": {**runs("optimized_mlp"), "experiment": "deep_cnn", "quick": False}}
    rows = compare.rows_from(found)
    table = compare.markdown(rows)
    assert "| optimized_mlp (quick) |" in table and "| deep_cnn |" in table
    assert common.QUICK_TAG in compare.chart_title(rows)
    assert common.QUICK_TAG not in compare.chart_title(rows[1:])
    compare.main(["--results", str(runs.root), "--include-quick", "--out", str(tmp_path)])
    assert common.QUICK_TAG in (tmp_path / "comparison.md").read_text()
    with open(tmp_path / "comparison.csv", newline="") as handle:
        assert {row["quick"] for row in csv.DictReader(handle)} == {"True"}


def test_uci_prints_its_summary_after_the_kfold_with_the_final_wall_time(tmp_path, capsys, monkeypatch):
    require_shared("optdigits")
    cross_validation = uci_digits_kfold.cross_validation

    def marked(*arguments):  # the k-fold, then a marker line on stdout
        result = cross_validation(*arguments)
        print("k-fold done")
        return result

    monkeypatch.setattr(uci_digits_kfold, "cross_validation", marked)
    metrics = uci_digits_kfold.main(["--quick", "--max-folds", "2", "--threads", "1", "--verbose", "0",
                                     "--out", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("uci_digits_kfold: test accuracy"))
    assert summary > lines.index("k-fold done")
    assert f"wall {metrics['wall_time_s']:.1f} s" in lines[summary]
    assert "best None" not in lines[summary] and "(no validation)" in lines[summary]
    assert lines[-1] == f"outputs in {tmp_path}"


@pytest.mark.parametrize("module, argv", [
    (optimized_mlp, ["--train-size", "0"]), (optimized_mlp, ["--train-size", "-100"]),
    (deep_cnn, ["--test-size", "0"]), (optimized_mlp, ["--k", "0"]), (basic_mlp, ["--widths", "128", "0"]),
    (uci_digits_kfold, ["--rows", "0"]), (uci_digits_kfold, ["--max-folds", "0"]),
])
def test_sizes_must_be_positive(module, argv, capsys):
    with pytest.raises(SystemExit) as raised:
        common.parse_args(module.parser(), argv)
    assert raised.value.code == 2 and "positive integer" in capsys.readouterr().err


def test_leaving_the_size_out_keeps_every_image():
    args = common.parse_args(optimized_mlp.parser(), [])
    assert args.train_size is None and args.test_size is None
    assert common.parse_args(optimized_mlp.parser(), ["--train-size", "100"]).train_size == 100


def _ticks_are_integers(ax):
    ticks = ax.get_xticks()
    return len(ticks) > 0 and all(float(t).is_integer() for t in ticks)


def test_epoch_axes_of_a_one_epoch_run_have_integer_ticks():
    history = {"loss": [1.0], "accuracy": [0.5], "val_loss": [0.9], "val_accuracy": [0.6], "learning_rate": [1e-3]}
    fig = common.history_figure(history, "one epoch", best_epoch=1)
    assert all(_ticks_are_integers(ax) for ax in fig.axes)
    sweep = basic_mlp.sweep_figure([{"units": 128, "history": history}])
    assert _ticks_are_integers(sweep.axes[0])
    common._pyplot().close(fig)
    common._pyplot().close(sweep)


def test_kfold_plot_names_the_folds_run_and_keeps_the_legend_off_the_bars():
    values = [0.9902, 0.9911]
    kfold = {"accuracy": {"values": values, "mean": float(np.mean(values)), "std": float(np.std(values))},
             "n_splits": 5, "folds_run": 2, "seed": 42}
    fig = uci_digits_kfold.folds_figure(kfold, scaled=True)
    ax = fig.axes[0]
    assert "first 2 of the 5 folds" in ax.get_title() and "5-fold" not in ax.get_title()
    assert "scaled" in ax.get_title()
    assert list(ax.get_xticks()) == [1, 2]
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1  # right of the plot
    common._pyplot().close(fig)
    full = {**kfold, "folds_run": 5, "accuracy": {**kfold["accuracy"], "values": values * 2 + [0.99]}}
    assert uci_digits_kfold.folds_title(full).startswith("5-fold cross-validation")


def test_readme_explains_jobs_threads_and_the_first_run():
    text = one_line((EXPERIMENTS / "README.md").read_text())
    assert "`--jobs N` (N ≠ 1) therefore means `--threads 1`" in text
    assert "last digits" in text
    assert "The first run compiles." in text and "1–2 minutes" in text
    assert "**18 s** (the wall time in docs/results.md" in text and "**34 s** |" not in text
