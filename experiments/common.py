"""Code shared by every experiment script of the MNIST study.

One place for: the command line (:func:`build_parser`, :func:`parse_args`),
seeding and the first-run compile notice (:func:`run_context`), loading and
splitting the data (:func:`load_mnist`, :func:`load_optdigits`, with data
problems as one message: :func:`load_dataset`), the study's callbacks and augmentation
(:func:`study_callbacks`, :func:`augmenter`), training (:func:`fit_model`),
the evaluation report (:func:`evaluate_model`), the metrics file
(:func:`collect_metrics`), outputs and plots (:func:`write_outputs`), and
parallel work through joblib or a Dask cluster (:func:`parallel_map`,
:func:`parallel_context`). The published figures the study is compared
against live in :data:`PUBLISHED`.

The scripts import this module as ``common`` (``python experiments/<name>.py``
puts ``experiments/`` first on ``sys.path``).
"""

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nnscratch  # first: it sets the BLAS thread policy, which NumPy reads on import

import numpy as np
from nnscratch.sklearn import build_model, limit_threads

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
DOCS = REPO / "docs"

DEFAULT_SEED = 42
NUM_CLASSES = 10
#: The study's training settings (MNIST models).
STUDY = {"epochs": 20, "batch_size": 64, "learning_rate": 1e-3, "val_fraction": 0.1}
#: The augmentation of the basic and deep models (Keras's ImageDataGenerator arguments).
AUGMENTATION = {"rotation_range": 10, "zoom_range": 0.1, "width_shift_range": 0.1,
                "height_shift_range": 0.1, "fill_mode": "nearest"}
#: ``--quick``: a tiny subset and one epoch, so a test runs a script in seconds.
QUICK = {"train_size": 2000, "test_size": 500, "epochs": 1}
#: Keras's default batch size of ``predict``, used to time the test predictions.
PREDICT_BATCH_SIZE = 32

#: Published figures of the study, keyed by experiment (results folder) name.
#: Accuracies are fractions; ``None`` means not published.
PUBLISHED = {
    "basic_mlp": {
        "title": "Basic MLP (width sweep 128/256/512, augmented)",
        "test_accuracy": 0.9905, "params": 407_050, "prediction_time_s": 0.621,
        "val_accuracy_by_units": {"128": 0.9842, "256": 0.9882, "512": 0.9900},
        "val_accuracy": 0.9900,
    },
    "optimized_mlp": {
        "title": "Optimized MLP (196 SelectKBest pixels, dropout)",
        "test_accuracy": 0.9786, "params": 84_618, "prediction_time_s": 0.528,
        "val_accuracy": 0.9805, "epochs_run": 18,
    },
    "deep_cnn": {
        "title": "Deep CNN (3 conv blocks with batch norm, augmented)",
        "test_accuracy": 0.9971, "errors": 29, "params": 1_015_530, "trainable_params": 1_013_098,
        "prediction_time_s": 4.869, "val_accuracy": 0.9968,
    },
    "simple_cnn_three_conv": {
        "title": "Simple CNN (Keras tutorial, three conv layers)",
        "test_accuracy": 0.989, "test_loss": 0.0448, "params": 93_322, "final_val_accuracy": 0.9908,
    },
    "simple_cnn_two_conv": {
        "title": "Simple CNN, two conv layers (sparse labels, 80/20 split)",
        "params": 121_930,
    },
    "uci_digits_kfold": {
        "title": "UCI 8x8 digits CNN, raw 0..16 inputs (80/20 split, 5-fold CV)",
        "test_accuracy": 0.9911, "precision_macro": 0.9908, "recall_macro": 0.9916, "f1_macro": 0.9911,
        "params": 102_794, "kfold_mean_accuracy": 0.9906, "kfold_std_accuracy": 0.0024,
    },
    "uci_digits_kfold_scaled": {
        "title": "UCI 8x8 digits CNN, inputs scaled to [0, 1] (not in the study)",
        "params": 102_794,
    },
}


# --------------------------------------------------------------------------- command line
#: Marks a ``--quick`` run on the console and in plot titles: its numbers mean nothing for the study.
QUICK_TAG = "quick smoke test (not comparable to the study)"

#: Printed when Numba has not cached nnscratch's kernels yet (see :func:`first_run_notice`).
FIRST_RUN_NOTICE = ("first run: Numba compiles nnscratch's kernels once (about 1-2 minutes; the times "
                    "of this run include it); later runs start in seconds")

#: The files every training script writes to ``--out``.
COMMON_OUTPUTS = "metrics.json, history.csv, training_curves.png, confusion_matrix.png"


def positive_int(text):
    """argparse type: an integer >= 1 (so ``--train-size 0`` or ``-100`` is an error, not "all")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def help_epilog(run_time, outputs, examples):
    """The text after a script's ``--help`` options: typical run time, files written, examples."""
    lines = [f"typical run time: {run_time}",
             "--quick: seconds; the very first run also compiles the kernels (about 1-2 min)",
             f"writes to --out: {outputs}",
             "examples:"]
    lines += [f"  {example}" for example in examples]
    return "\n".join(lines)


def build_parser(name, description, *, epochs=STUDY["epochs"], batch_size=STUDY["batch_size"],
                 parallel=False, subset=True, out_default=None, epilog=None):
    """The options every script shares.

    ``--epochs``/``--batch-size`` default to the study's values (1 epoch with
    ``--quick``); ``--out`` to ``results/<name>/`` (``results/quick/<name>/``
    with ``--quick``, so a quick run never overwrites a full one).
    ``out_default`` replaces ``results/<name>/`` in that help text when the
    folder depends on another option (``--variant``, ``--scale``).
    ``parallel`` adds ``--jobs`` and ``--dask-scheduler``; ``subset`` adds
    ``--train-size``/``--test-size``. ``epilog`` (see :func:`help_epilog`) ends ``--help``.
    """
    parser = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(experiment=name, study_epochs=epochs, study_batch_size=batch_size)
    out_default = out_default or f"results/{name}/"
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default {epochs or 'per variant'}; {QUICK['epochs']} with --quick)")
    parser.add_argument("--batch-size", type=int, default=None, help=f"batch size (default {batch_size})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default {out_default}; with --quick the same name under results/quick/)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny subset and 1 epoch: a smoke test that runs in seconds; "
                             "its numbers are not comparable to the study")
    if subset:
        parser.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                            help=f"use only the first N training images (default: all, leave the option out; "
                                 f"{QUICK['train_size']} with --quick)")
        parser.add_argument("--test-size", type=positive_int, default=None, metavar="N",
                            help=f"use only the first N test images (default: all, leave the option out; "
                                 f"{QUICK['test_size']} with --quick)")
    threads_help = "BLAS and Numba threads of this process (default: all cores)"
    if parallel:
        threads_help += "; each parallel job of --jobs or --dask-scheduler uses one"
    parser.add_argument("--threads", type=int, default=None, help=threads_help)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data root holding mnist/ and optdigits/, or the data set's own folder "
                             "(default $NNSCRATCH_DATA, then the download cache)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="0 silent, 1 progress bars, 2 one line per epoch (default 1; 2 with --quick)")
    if parallel:
        parser.add_argument("--jobs", type=int, default=1,
                            help="parallel jobs (joblib processes, default 1; each with one thread, so the "
                                 "losses may differ from --jobs 1 in the last digits); with "
                                 "--dask-scheduler default all workers of the cluster")
        parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                            help="run the parallel jobs on this Dask cluster (e.g. tcp://host:8786) "
                                 "through joblib's Dask backend")
    return parser


def parse_args(parser, argv=None, out_name=None):
    """Parse ``argv`` and fill in the defaults that depend on ``--quick``."""
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = QUICK["epochs"] if args.quick else args.study_epochs
    if args.batch_size is None:
        args.batch_size = args.study_batch_size
    for key in ("train_size", "test_size"):
        if hasattr(args, key) and getattr(args, key) is None and args.quick:
            setattr(args, key, QUICK[key])
    if args.verbose is None:
        args.verbose = 2 if args.quick else 1
    name = out_name or args.experiment
    args.name = name
    if args.out is None:
        args.out = RESULTS / "quick" / name if args.quick else RESULTS / name
    args.out = Path(args.out)
    for key in ("epochs", "batch_size", "threads"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be a positive integer")
    if getattr(args, "jobs", 1) < 1 and getattr(args, "jobs", 1) != -1:
        parser.error("--jobs must be a positive integer or -1")
    return args


def args_record(args) -> dict:
    """The parsed options, JSON-ready (paths as strings)."""
    skip = {"study_epochs", "study_batch_size"}
    return {key: (str(value) if isinstance(value, Path) else value)
            for key, value in sorted(vars(args).items()) if key not in skip}


# --------------------------------------------------------------------------- seeding and threads
def seed_everything(seed):
    """Seed the library (weights, dropout, shuffles draw from its generators, never NumPy's global)."""
    nnscratch.set_random_seed(int(seed))


def kernel_cache_folder():
    """The folder where Numba caches nnscratch's compiled kernels, or None (NumPy backend, no cache).

    Numba decides: ``$NUMBA_CACHE_DIR/kernels_<hash>`` when that variable is
    set, else ``nnscratch/kernels/__pycache__`` (or a user-wide cache when the
    package folder is read-only). We ask one ``@njit(cache=True)`` kernel of
    ``nnscratch.kernels.fast`` where its cache is, rather than guess.
    """
    if nnscratch.get_backend() != "numba":
        return None
    from numba.core.dispatcher import Dispatcher

    from nnscratch.kernels import fast

    for value in vars(fast).values():
        path = getattr(getattr(value, "_cache", None), "cache_path", None)
        if isinstance(value, Dispatcher) and path:
            return Path(path)
    return None


def kernels_cached(folder):
    """Whether ``folder`` holds compiled kernels (Numba's ``*.nbi`` index files); True when unknown."""
    return folder is None or any(Path(folder).glob("*.nbi"))


def first_run_notice():
    """Print :data:`FIRST_RUN_NOTICE` when Numba's kernel cache looks empty; return whether it was printed.

    The compile time is counted in that run's ``train_time_s``, ``epoch_time_s``
    and ``wall_time_s`` (taking it out would mean a warm-up step before training).
    """
    if kernels_cached(kernel_cache_folder()):
        return False
    print(FIRST_RUN_NOTICE, file=sys.stderr, flush=True)
    return True


@contextlib.contextmanager
def run_context(args):
    """Around a script's body: say whether kernels compile first, limit threads to ``--threads``, seed."""
    if args.verbose:
        first_run_notice()
    with limit_threads(args.threads):
        seed_everything(args.seed)
        yield


# --------------------------------------------------------------------------- data
@dataclass
class Split:
    """Images ``x`` (N, H, W, C) float32 and integer labels ``y`` (N,)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self):
        return len(self.y)


@dataclass
class Data:
    train: Split
    val: Split | None
    test: Split
    info: dict = field(default_factory=dict)


class DataError(SystemExit):
    """The data could not be loaded: the message is printed without a traceback and the script exits 1.

    (``SystemExit`` with a text prints the text to stderr and sets the exit status 1.)
    """


def dataset_folder(data_dir, dataset):
    """The folder given to ``<dataset>.load_data(path=...)`` for ``--data-dir`` (None without it).

    ``--data-dir`` may name the data root (``data/``, holding ``mnist/`` and
    ``optdigits/``) or the data set's own folder (``data/mnist``). The path is
    made absolute, so messages name the folder in full. A ``--data-dir`` that
    does not exist stops the script (:class:`DataError`) rather than starting
    a download.
    """
    if data_dir is None:
        return None
    root = Path(data_dir).expanduser().resolve()
    if (root / dataset).is_dir():
        return root / dataset
    if root.is_dir():
        return root  # the data set's own folder, or a folder holding its files
    raise DataError(f"error: --data-dir {root} does not exist (a relative path starts from the current "
                    f"folder, {Path.cwd()}).\n" + data_advice(dataset, root))


def data_advice(dataset, data_dir=None):
    """What to do when ``dataset`` cannot be loaded: the folders searched (absolute) and the options."""
    from nnscratch.datasets import cache_dir

    data_root = os.environ.get("NNSCRATCH_DATA")
    places = [f"  - --data-dir: {data_dir}" if data_dir is not None else "  - --data-dir: not given",
              f"  - $NNSCRATCH_DATA/{dataset}: {Path(data_root).expanduser().resolve() / dataset}"
              if data_root else "  - $NNSCRATCH_DATA: not set",
              f"  - download cache: {Path(cache_dir(dataset)).expanduser().resolve()}"]
    return "\n".join([
        "The data are looked for in these folders, in this order:", *places,
        f"Point --data-dir DIR (or NNSCRATCH_DATA=DIR) at a folder holding {dataset}/ "
        f"(or at the {dataset} folder itself); docs/data.md lists the files.",
        "If a file above is reported damaged or truncated, delete it and run again: it is then "
        "downloaded afresh (this needs internet access).",
    ])


def load_dataset(args, dataset, load_data, **options):
    """``load_data(path=<--data-dir folder>, **options)``, with any data problem as one clear message.

    The loaders of :mod:`nnscratch.datasets` raise ``DatasetUnavailableError``
    (files missing and the download failed), ``CorruptFileError`` (a damaged,
    truncated or wrong file) or ``ValueError``; a script user needs no
    traceback for those, only the loader's message, the folders searched and
    what to do. Raises :class:`DataError` (exit status 1).
    """
    from nnscratch.datasets import CorruptFileError, DatasetUnavailableError

    folder = dataset_folder(getattr(args, "data_dir", None), dataset)
    try:
        return load_data(path=folder, **options)
    except (DatasetUnavailableError, CorruptFileError, OSError, ValueError) as error:
        if isinstance(error, CorruptFileError):
            headline = f"error: a {dataset} data file is damaged, truncated or not the published one."
        elif isinstance(error, DatasetUnavailableError):
            headline = f"error: the {dataset} data files were not found and could not be downloaded."
        else:
            headline = f"error: could not load the {dataset} data."
        # The loaders speak of their argument path=; for a script user that is --data-dir.
        message = str(error).replace("path=", "--data-dir")
        raise DataError(f"{headline}\n{message}\n{data_advice(dataset, folder)}") from None


def prepare_images(x, max_value=255):
    """Scale to [0, 1] (float32) and add the channel axis: (N, H, W) -> (N, H, W, 1)."""
    from nnscratch.preprocessing import scale_images

    return scale_images(x, max_value=max_value)[..., None]


def load_mnist(args, validation="last"):
    """MNIST scaled to [0, 1], (N, 28, 28, 1), with integer labels, split as the study did.

    ``validation``:

    * ``"last"``: the last 10% of the training images (54,000 / 6,000), as
      Keras's ``validation_split=0.1``;
    * ``"sklearn"``: ``train_test_split(test_size=0.2, random_state=seed)``
      of the training images (48,000 / 12,000), unstratified;
    * ``None``: no validation set.

    ``--train-size`` / ``--test-size`` keep only the first images of each set.
    Data problems stop the script with one message (:func:`load_dataset`).
    """
    from nnscratch.datasets import mnist
    from nnscratch.preprocessing import train_val_split

    (x_train, y_train), (x_test, y_test) = load_dataset(args, "mnist", mnist.load_data)
    if getattr(args, "train_size", None):
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    if getattr(args, "test_size", None):
        x_test, y_test = x_test[:args.test_size], y_test[:args.test_size]
    x_train, x_test = prepare_images(x_train), prepare_images(x_test)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    val = None
    if validation == "last":
        (x_train, y_train), (x_val, y_val) = train_val_split(
            x_train, y_train, val_fraction=STUDY["val_fraction"], method="last")
        val = Split(x_val, y_val)
    elif validation == "sklearn":
        from sklearn.model_selection import train_test_split

        x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=0.2,
                                                          random_state=args.seed)
        val = Split(x_val, y_val)
    elif validation is not None:
        raise ValueError(f"validation must be 'last', 'sklearn' or None, got {validation!r}")
    return Data(Split(x_train, y_train), val, Split(x_test, y_test), {"dataset": "mnist", "validation": validation})


def load_optdigits(args, scale=False):
    """All 5,620 UCI optdigits rows as (N, 8, 8, 1) float32: raw 0..16, or /16 with ``scale``."""
    from nnscratch.datasets import optdigits

    x, y = load_dataset(args, "optdigits", optdigits.load_data, source="uci")
    x = prepare_images(x, max_value=16) if scale else x.astype(np.float32)[..., None]
    return x, y.astype(np.int64)


def targets(model, y):
    """Labels as the model's loss wants them: one-hot for categorical, integers for sparse."""
    from nnscratch.preprocessing import to_categorical

    if model.loss.name == "sparse_categorical_crossentropy":
        return np.asarray(y, dtype=np.int64)
    return to_categorical(y, model.output_shape[-1])


# --------------------------------------------------------------------------- training
def study_callbacks():
    """The study's callbacks: EarlyStopping on val_accuracy (restoring the best weights) and ReduceLROnPlateau."""
    from nnscratch.callbacks import EarlyStopping, ReduceLROnPlateau

    return [EarlyStopping(monitor="val_accuracy", patience=5, restore_best_weights=True),
            ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=3, min_lr=1e-6)]


def augmenter(seed):
    """The study's ImageDataGenerator (rotation 10, zoom 0.1, shifts 0.1, fill "nearest"), seeded."""
    from nnscratch.preprocessing import ImageDataGenerator

    return ImageDataGenerator(**AUGMENTATION, seed=seed)


@dataclass
class TrainingRun:
    """What :func:`fit_model` learnt about a training run."""

    history: dict
    epochs_run: int
    best_epoch: int | None          # 1-based
    restored_best: bool             # the weights are those of best_epoch
    stopped_early: bool
    train_time_s: float

    def summary(self) -> dict:
        history = self.history
        out = {"epochs_run": self.epochs_run, "best_epoch": self.best_epoch,
               "restored_best_weights": self.restored_best, "stopped_early": self.stopped_early,
               "train_time_s": self.train_time_s,
               "epoch_time_s": self.train_time_s / max(self.epochs_run, 1)}
        if history.get("val_accuracy"):
            out["best_val_accuracy"] = float(max(history["val_accuracy"]))
            out["final_val_accuracy"] = float(history["val_accuracy"][-1])
            out["final_val_loss"] = float(history["val_loss"][-1])
        if history.get("accuracy"):
            out["final_train_accuracy"] = float(history["accuracy"][-1])
            out["final_train_loss"] = float(history["loss"][-1])
        if history.get("learning_rate"):
            out["final_learning_rate"] = float(history["learning_rate"][-1])
        return out


def fit_model(model, train, val=None, *, epochs, batch_size, seed, augment=False, callbacks=None, verbose=1):
    """Train ``model`` on ``train`` (a :class:`Split`), validating on ``val`` after each epoch.

    With ``augment`` the training images come from one augmented stream
    (:func:`augmenter` seeded with ``seed``, reshuffled every epoch); the
    validation images are never augmented. ``fit(seed=seed)`` fixes the
    shuffles and the dropout masks.
    """
    from nnscratch.callbacks import EarlyStopping

    validation = None if val is None else (val.x, targets(model, val.y))
    y = targets(model, train.y)
    start = time.perf_counter()
    if augment:
        flow = augmenter(seed).flow(train.x, y, batch_size=batch_size, shuffle=True, seed=seed)
        # the flow draws a new order of the samples every epoch itself; fit's shuffle=True (Keras's default)
        # would also shuffle the order of its batches, which changes nothing but the bits of the study's runs
        history = model.fit(flow, epochs=epochs, validation_data=validation, validation_batch_size=batch_size,
                            callbacks=callbacks, verbose=verbose, seed=seed, shuffle=False)
    else:
        history = model.fit(train.x, y, batch_size=batch_size, epochs=epochs, validation_data=validation,
                            callbacks=callbacks, verbose=verbose, seed=seed, shuffle=True)
    elapsed = time.perf_counter() - start
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    epochs_run = len(history.get("loss", []))
    early = next((c for c in callbacks or [] if isinstance(c, EarlyStopping)), None)
    if early is not None and early.best is not None:
        best_epoch, restored = early.best_epoch + 1, bool(early.restore_best_weights)
        stopped = early.stopped_epoch > 0
    elif history.get("val_accuracy"):
        best_epoch, restored, stopped = int(np.argmax(history["val_accuracy"])) + 1, False, False
    else:
        best_epoch, restored, stopped = None, False, False
    return TrainingRun(history, epochs_run, best_epoch, restored, stopped, elapsed)


# --------------------------------------------------------------------------- evaluation
def predict_timed(model, x, batch_size=PREDICT_BATCH_SIZE):
    """``model.predict(x)`` and its wall time (after a one-batch warm-up, so no JIT compile is timed)."""
    model.predict(x[:batch_size], batch_size=batch_size)
    start = time.perf_counter()
    probabilities = model.predict(x, batch_size=batch_size)
    return probabilities, time.perf_counter() - start


def classification_metrics(y_true, y_pred, labels=range(NUM_CLASSES)) -> dict:
    """Accuracy, errors, macro precision/recall/F1, scikit-learn's per-class report, confusion matrix."""
    from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

    labels = list(labels)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                               zero_division=0)
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0, digits=4)
    return {
        "test_accuracy": float(np.mean(y_true == y_pred)),
        "errors": int(np.sum(y_true != y_pred)),
        "n_test": int(len(y_true)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "classification_report": report,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def evaluate_model(model, test, batch_size=PREDICT_BATCH_SIZE) -> dict:
    """The evaluation report on ``test``: loss, accuracy, per-class metrics, prediction time."""
    probabilities, seconds = predict_timed(model, test.x, batch_size)
    prepared = model.loss.prepare_targets(targets(model, test.y), model.output_shape[1:])
    loss = float(np.mean(model.loss.per_sample(prepared, probabilities)))
    report = classification_metrics(test.y, np.argmax(probabilities, axis=1))
    report.update({"test_loss": loss, "prediction_time_s": seconds, "prediction_batch_size": batch_size})
    return report


# --------------------------------------------------------------------------- environment
def library_versions() -> dict:
    import numba
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "scikit-learn": sklearn.__version__, "nnscratch": nnscratch.__version__}


def machine_info() -> dict:
    """Platform, CPU model (from /proc/cpuinfo when present), cores and memory."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
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


# --------------------------------------------------------------------------- outputs
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def write_history(path, history):
    """One row per epoch (1-based): loss, accuracy, val_loss, val_accuracy, learning_rate, then any other key."""
    keys = [k for k in HISTORY_COLUMNS[1:] if k in history] + sorted(set(history) - set(HISTORY_COLUMNS))
    n = max((len(v) for v in history.values()), default=0)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", *keys])
        for i in range(n):
            writer.writerow([i + 1, *(repr(float(history[k][i])) if i < len(history[k]) else "" for k in keys)])


def read_history(path) -> dict:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows if row[key] != ""] for key in (rows[0] if rows else {})}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def integer_ticks(axis):
    """Only whole numbers as ticks on ``axis`` (epochs, folds), even when it spans a single value.

    ``MaxNLocator(integer=True)`` alone falls back to ticks such as 0.95 and
    1.05 when the axis holds fewer than two integers (a 1-epoch run);
    ``min_n_ticks=1`` keeps it to integers.
    """
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plot_title(metrics, what=None):
    """A plot title: the experiment, ``what`` it shows, and the quick-run mark of a ``--quick`` run."""
    title = metrics["experiment"] if what is None else f"{metrics['experiment']}: {what}"
    return f"{title}\n{QUICK_TAG}" if metrics.get("quick") else title


def save_figure(fig, path):
    """Write ``fig`` to ``path`` (PNG, 110 dpi) and free it."""
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def history_figure(history, title, best_epoch=None):
    """Loss, accuracy and learning rate per epoch (train and validation), with integer epoch ticks."""
    plt = _pyplot()
    panels = [("loss", "Loss"), ("accuracy", "Accuracy")] + (
        [("learning_rate", "Learning rate")] if history.get("learning_rate") else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        epochs = np.arange(1, len(history.get(key, [])) + 1)
        if key in history:
            ax.plot(epochs, history[key], marker="o", ms=3, label="train" if key != "learning_rate" else None)
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label="validation")
        if best_epoch and key != "learning_rate":
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {best_epoch}")
        if key == "learning_rate":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        integer_ticks(ax.xaxis)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(path, history, title, best_epoch=None):
    """training_curves.png: :func:`history_figure` saved to ``path``."""
    save_figure(history_figure(history, title, best_epoch), path)


def plot_confusion(path, matrix, title):
    """The confusion matrix with counts in the cells."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    shown = np.log1p(matrix)
    image = ax.imshow(shown, cmap="Blues")
    threshold = shown.max() / 2 if shown.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if shown[i, j] > threshold else "black")
    ticks = np.arange(matrix.shape[0])
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out, metrics, history):
    """metrics.json, history.csv, training_curves.png and confusion_matrix.png in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", metrics)
    write_history(out / "history.csv", history)
    accuracy = metrics.get("test_accuracy")
    curves = None if accuracy is None else f"test accuracy {accuracy:.2%}"
    if curves and metrics.get("best_units") is not None:  # basic_mlp: say which width won
        curves = f"n = {metrics['best_units']}, {curves}"
    plot_history(out / "training_curves.png", history, plot_title(metrics, curves), metrics.get("best_epoch"))
    plot_confusion(out / "confusion_matrix.png", metrics["confusion_matrix"],
                   plot_title(metrics, f"{metrics['errors']} errors of {metrics['n_test']:,}"))
    return out


def summary_line(metrics) -> str:
    """The one-line result of a run; a ``--quick`` run says it is a smoke test."""
    best = metrics.get("best_epoch")
    best_text = "no validation" if best is None else f"best {best}"
    line = (f"{metrics['experiment']}: test accuracy {metrics['test_accuracy']:.4f} "
            f"({metrics['errors']} errors of {metrics['n_test']}), loss {metrics['test_loss']:.4f}, "
            f"{metrics.get('epochs_run', '-')} epochs ({best_text}), wall {metrics['wall_time_s']:.1f} s, "
            f"predict {metrics['prediction_time_s']:.3f} s")
    return f"{line} [{QUICK_TAG}]" if metrics.get("quick") else line


def report(metrics, out):
    """A few lines on stdout at the end of a run."""
    print(summary_line(metrics))
    print(f"outputs in {out}")


def run_single(args, *, build, description, data, augment, callbacks, extra=None, start=None, show=True):
    """Build, train, evaluate and write the outputs of one model: the common path of most scripts.

    ``build`` is a zero-argument callable returning the compiled model;
    ``callbacks`` a zero-argument callable returning the callbacks (or None).
    ``show=False`` leaves the console summary (:func:`report`) to the caller,
    for a script that does more work afterwards.
    """
    start = time.perf_counter() if start is None else start
    model = build_model(build, args.seed)
    run = fit_model(model, data.train, data.val, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                    augment=augment, callbacks=callbacks() if callbacks else None, verbose=args.verbose)
    evaluation = evaluate_model(model, data.test)
    sizes = {"n_train": len(data.train), "n_val": 0 if data.val is None else len(data.val)}
    metrics = collect_metrics(args, model, evaluation, run, wall_time_s=time.perf_counter() - start,
                              description=description, augmentation=AUGMENTATION if augment else None,
                              callbacks=bool(callbacks), **sizes, **(extra or {}))
    write_outputs(args.out, metrics, run.history)
    if show:
        report(metrics, args.out)
    return metrics, model


# --------------------------------------------------------------------------- parallel work
def ship_by_value(*modules):
    """Pickle these modules' functions by value, so remote Dask or joblib workers need not import them.

    The experiment scripts are not installed packages: a worker on another
    machine (a shared class cluster) could not import them by name.
    """
    picklers = []
    with contextlib.suppress(ImportError):
        import cloudpickle
        picklers.append(cloudpickle)
    with contextlib.suppress(ImportError):
        from joblib.externals import cloudpickle as joblib_cloudpickle
        picklers.append(joblib_cloudpickle)
    for module in modules:
        if isinstance(module, str):
            module = sys.modules[module]
        if module.__name__ == "__main__":
            continue  # __main__ is always pickled by value
        for pickler in picklers:
            with contextlib.suppress(ValueError):
                pickler.register_pickle_by_value(module)


@contextlib.contextmanager
def parallel_context(jobs=1, dask_scheduler=None):
    """Yield ``(n_jobs, backend_name)`` for joblib; inside, joblib runs on the Dask cluster if one is given.

    Without a scheduler joblib uses its default process pool (loky). With one,
    ``joblib.parallel_backend("dask")`` sends every task to the cluster at
    ``dask_scheduler`` through a ``distributed.Client``; ``jobs=1`` then means
    all of the cluster's workers. The client disconnects at the end; the
    cluster keeps running (several users can share it).
    """
    import joblib

    if dask_scheduler is None:
        yield jobs, "loky" if jobs != 1 else "sequential"
        return
    from distributed import Client

    ship_by_value(__name__)
    with Client(dask_scheduler, timeout="30s") as client, joblib.parallel_backend("dask"):
        n_workers = len(client.scheduler_info().get("workers", {})) or 1
        yield (-1 if jobs == 1 else jobs), f"dask ({dask_scheduler}, {n_workers} workers)"


def worker_threads(args):
    """BLAS/Numba threads per parallel task: 1 when tasks run side by side, else ``--threads``."""
    parallel = getattr(args, "jobs", 1) != 1 or getattr(args, "dask_scheduler", None) is not None
    return 1 if parallel else args.threads


def worker_verbose(args):
    """``--verbose`` for parallel tasks: one line per epoch instead of progress bars that would interleave."""
    parallel = getattr(args, "jobs", 1) != 1 or getattr(args, "dask_scheduler", None) is not None
    return (2 if args.verbose else 0) if parallel else args.verbose


def _call_limited(function, threads, arguments):
    with limit_threads(threads):
        return function(*arguments)


def parallel_map(function, tasks, args):
    """``[function(*task) for task in tasks]`` with joblib (``--jobs``) or on a Dask cluster (``--dask-scheduler``).

    Each task limits its BLAS and Numba threads to :func:`worker_threads`, so
    ``--jobs 2`` on 2 cores runs two single-threaded trainings, not four threads.
    Results come back in the order of ``tasks``.
    """
    import joblib

    tasks = list(tasks)
    threads = worker_threads(args)
    with parallel_context(args.jobs, args.dask_scheduler) as (n_jobs, backend):
        if n_jobs == 1:
            return [_call_limited(function, threads, task) for task in tasks], backend
        ship_by_value(getattr(function, "__module__", "__main__"))
        results = joblib.Parallel(n_jobs=min(n_jobs, len(tasks)) if n_jobs > 0 else n_jobs)(
            joblib.delayed(_call_limited)(function, threads, task) for task in tasks)
        return list(results), backend


def mean_std(values) -> dict:
    """Mean and population standard deviation (ddof=0) of a list of numbers."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=0)), "values": values.tolist()}


# --------------------------------------------------------------------------- results collections
def find_metrics(results_dir=RESULTS, include_quick=False):
    """``{name: metrics}`` for every ``<results_dir>/<name>/metrics.json``, sorted by name.

    Quick runs are skipped unless ``include_quick``.
    """
    found = {}
    for path in sorted(Path(results_dir).glob("*/metrics.json")):
        try:
            metrics = read_json(path)
        except (OSError, ValueError) as error:
            warnings.warn(f"skipping {path}: {error}", stacklevel=2)
            continue
        if metrics.get("quick") and not include_quick:
            continue
        found[path.parent.name] = metrics
    return found


def fmt_percent(value, digits=2):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}%"


def fmt_seconds(value):
    if value is None:
        return ""
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def fmt_int(value):
    return "" if value is None else f"{int(value):,}"


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
