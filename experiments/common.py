"""Code shared by every experiment script of the MNIST study: the names the scripts use, in one namespace.

The code lives in the package :mod:`study` next to this file, one module
per job (read them in this order):

* :mod:`study.settings`: folders, seed, the study's training settings and
  the published figures the study is compared against (:data:`PUBLISHED`);
* :mod:`study.cli`: the command line (:func:`build_parser`, :func:`parse_args`);
* :mod:`study.seeding`: seeding, threads and the first-run compile notice
  (:func:`run_context`);
* :mod:`study.data`: loading and splitting the data (:func:`load_mnist`,
  :func:`load_optdigits`, with data problems as one message: :func:`load_dataset`);
* :mod:`study.training`: the study's callbacks and augmentation
  (:func:`study_callbacks`, :func:`augmenter`) and training (:func:`fit_model`);
* :mod:`study.evaluation`: the evaluation report (:func:`evaluate_model`);
* :mod:`study.records`: the metrics file (:func:`collect_metrics`);
* :mod:`study.outputs`: outputs and plots (:func:`write_outputs`);
* :mod:`study.run`: one model from build to files (:func:`run_single`);
* :mod:`study.parallel`: parallel work through joblib or a Dask cluster
  (:func:`parallel_map`, :func:`parallel_context`);
* :mod:`study.tables`: results tables (:func:`find_metrics`, :func:`markdown_table`).

This module only re-exports them: a script writes ``common.load_mnist(...)``
and need not know which module holds it. To replace a name in a test
(``monkeypatch``), patch it where it lives (``study.seeding.kernel_cache_folder``),
since the functions of :mod:`study` look their names up there; values that
the scripts read as ``common.X`` (``common.DOCS``) are patched here.

The scripts import this module as ``common`` (``python experiments/<name>.py``
puts ``experiments/`` first on ``sys.path``).
"""

import nnscratch  # noqa: F401  first: it sets the BLAS thread policy, which NumPy reads on import

from study.cli import COMMON_OUTPUTS, args_record, build_parser, help_epilog, parse_args, positive_int
from study.data import (Data, DataError, Split, data_advice, dataset_folder, load_dataset, load_mnist,
                        load_optdigits, prepare_images, targets)
from study.evaluation import classification_metrics, evaluate_model, predict_timed
from study.outputs import (HISTORY_COLUMNS, _json_default, _pyplot, history_figure, integer_ticks, plot_confusion,
                           plot_history, plot_title, read_history, read_json, report, save_figure, summary_line,
                           write_history, write_json, write_outputs)
from study.parallel import (_call_limited, mean_std, parallel_context, parallel_map, ship_by_value, worker_threads,
                            worker_verbose)
from study.records import (METRICS_KEYS, VOLATILE_KEYS, collect_metrics, library_versions, machine_info, thread_info,
                           without_timings)
from study.run import run_single
from study.seeding import (FIRST_RUN_NOTICE, first_run_notice, kernel_cache_folder, kernels_cached, run_context,
                           seed_everything)
from study.settings import (AUGMENTATION, DEFAULT_SEED, DOCS, NUM_CLASSES, PREDICT_BATCH_SIZE, PUBLISHED, QUICK,
                            QUICK_TAG, REPO, RESULTS, STUDY)
from study.tables import find_metrics, fmt_int, fmt_percent, fmt_seconds, markdown_table
from study.training import TrainingRun, augmenter, fit_model, study_callbacks

__all__ = [
    # study.settings
    "AUGMENTATION", "DEFAULT_SEED", "DOCS", "NUM_CLASSES", "PREDICT_BATCH_SIZE", "PUBLISHED", "QUICK", "QUICK_TAG",
    "REPO", "RESULTS", "STUDY",
    # study.cli
    "COMMON_OUTPUTS", "args_record", "build_parser", "help_epilog", "parse_args", "positive_int",
    # study.seeding
    "FIRST_RUN_NOTICE", "first_run_notice", "kernel_cache_folder", "kernels_cached", "run_context",
    "seed_everything",
    # study.data
    "Data", "DataError", "Split", "data_advice", "dataset_folder", "load_dataset", "load_mnist", "load_optdigits",
    "prepare_images", "targets",
    # study.training
    "TrainingRun", "augmenter", "fit_model", "study_callbacks",
    # study.evaluation
    "classification_metrics", "evaluate_model", "predict_timed",
    # study.records
    "METRICS_KEYS", "VOLATILE_KEYS", "collect_metrics", "library_versions", "machine_info", "thread_info",
    "without_timings",
    # study.outputs (and its private helpers _json_default and _pyplot, which the scripts use too)
    "HISTORY_COLUMNS", "history_figure", "integer_ticks", "plot_confusion", "plot_history", "plot_title",
    "read_history", "read_json", "report", "save_figure", "summary_line", "write_history", "write_json",
    "write_outputs",
    # study.run
    "run_single",
    # study.parallel
    "mean_std", "parallel_context", "parallel_map", "ship_by_value", "worker_threads", "worker_verbose",
    # study.tables
    "find_metrics", "fmt_int", "fmt_percent", "fmt_seconds", "markdown_table",
]
