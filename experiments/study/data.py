"""Loading and splitting the data as the study did: :func:`load_mnist`, :func:`load_optdigits`.

A data set holds :class:`Split` objects (images and integer labels) in a
:class:`Data`. Any data problem (a missing ``--data-dir``, files missing and
the download failed, a damaged file) stops the script with one message and
no traceback (:func:`load_dataset`, :class:`DataError`).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study.settings import STUDY

__all__ = ["Data", "DataError", "Split", "data_advice", "dataset_folder", "load_dataset", "load_mnist",
           "load_optdigits", "prepare_images", "targets"]


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
