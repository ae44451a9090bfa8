"""The ``metrics.json`` record of a run: results, settings, library versions, machine and threads.

:func:`collect_metrics` builds it; :data:`METRICS_KEYS` are the keys every
record has; :func:`without_timings` drops what differs between two identical
runs (times, dates, machine), so runs can be compared for determinism.
"""

import contextlib
import os
import platform
import time
from pathlib import Path

import nnscratch
import numpy as np

from study.cli import args_record
from study.settings import PUBLISHED

__all__ = ["METRICS_KEYS", "VOLATILE_KEYS", "collect_metrics", "library_versions", "machine_info", "thread_info",
           "without_timings"]


def library_versions() -> dict:
    import numba
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "scikit-learn": sklearn.__version__, "nnscratch": nnscratch.__version__}


def machine_info() -> dict:
    """Platform, CPU model (from /proc/cpuinfo when present, with its family and model numbers), cores and memory."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
        fields = {key.strip(): value.strip() for key, value in
                  (line.split(":", 1) for line in first.splitlines() if ":" in line)}
        cpu = fields.get("model name", cpu)
        if "cpu family" in fields and "model" in fields:   # "AMD EPYC" names Zen 1 to 5 alike
            cpu += f" (family {fields['cpu family']} model {fields['model']})"
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 2**20, 1)
                break
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gb": memory_gb}


def thread_info(args) -> dict:
    import numba

    return {"threads": args.threads, "numba_threads": numba.get_num_threads(),
            "kernel_backend": nnscratch.get_backend(), "conv_algorithm": nnscratch.kernels.get_conv_algorithm()}


def collect_metrics(args, model, evaluation, run, *, wall_time_s, description, **extra) -> dict:
    """The metrics.json record of a run (see experiments/README.md for the keys)."""
    trainable = sum(layer.count_trainable_params() for layer in model.layers)
    metrics = {
        "experiment": args.name,
        "description": description,
        "model": model.name,
        "quick": bool(args.quick),
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "params": int(model.count_params()),
        "trainable_params": int(trainable),
    }
    metrics.update(evaluation)
    if run is not None:
        metrics.update(run.summary())
    metrics.update(extra)
    metrics.update({
        "wall_time_s": wall_time_s,
        "published": PUBLISHED.get(args.name, {}),
        "args": args_record(args),
        "versions": library_versions(),
        "machine": machine_info(),
        "runtime": thread_info(args),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return metrics


#: Keys every metrics.json has (experiment-specific keys come on top; see experiments/README.md).
METRICS_KEYS = (
    "experiment", "description", "model", "quick", "seed", "epochs", "batch_size", "params", "trainable_params",
    "test_accuracy", "test_loss", "errors", "n_test", "precision_macro", "recall_macro", "f1_macro",
    "classification_report", "confusion_matrix", "prediction_time_s", "prediction_batch_size",
    "epochs_run", "best_epoch", "restored_best_weights", "stopped_early", "train_time_s", "epoch_time_s",
    "n_train", "n_val", "wall_time_s", "published", "args", "versions", "machine", "runtime", "created",
)

#: Keys of metrics.json that change from run to run even with the same seed.
VOLATILE_KEYS = ("created", "machine", "runtime", "args", "versions")


def without_timings(value):
    """``value`` without the keys that vary between identical runs (times, dates, machine)."""
    if isinstance(value, dict):
        return {key: without_timings(item) for key, item in value.items()
                if key not in VOLATILE_KEYS and "time" not in key}
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value
