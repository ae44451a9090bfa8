"""MNIST handwritten digits (LeCun, Cortes and Burges), loaded like ``keras.datasets.mnist``.

The four files of the original distribution, in IDX format, are found,
downloaded, verified and cached as :mod:`nnscratch.datasets._fetch` describes;
each is checked against the SHA-256 of its *uncompressed* bytes.
"""

import numpy as np

from nnscratch.datasets._fetch import RemoteFile, fetch
from nnscratch.datasets.idx import parse_idx

__all__ = ["load_data", "FILES", "MIRRORS", "IMAGE_SHAPE", "NUM_CLASSES"]

MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

# role -> file; the hashes are of the uncompressed IDX bytes.
FILES = {
    "x_train": RemoteFile("train-images-idx3-ubyte.gz",
                          "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "y_train": RemoteFile("train-labels-idx1-ubyte.gz",
                          "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "x_test": RemoteFile("t10k-images-idx3-ubyte.gz",
                         "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "y_test": RemoteFile("t10k-labels-idx1-ubyte.gz",
                         "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


def _parse(data, where):
    """Parse one MNIST file: uint8 images (N, 28, 28) or uint8 labels 0..9 (N,)."""
    array = parse_idx(data, where)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"{where}: expected uint8 images (N, 28, 28) or uint8 labels (N,), "
                         f"got {array.dtype} of shape {array.shape}")
    if array.ndim == 3 and array.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{where}: expected 28x28 images, got shape {array.shape}")
    if array.ndim == 1 and array.size and array.max() >= NUM_CLASSES:
        raise ValueError(f"{where}: labels must be 0..9, found {array.max()}")
    return array


def load_data(path=None, mirrors=None):
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``, like Keras.

    Parameters
    ----------
    path : str or Path, optional
        A folder holding the four files (``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
        ``t10k-labels-idx1-ubyte.gz``), gzip-compressed or not (then without
        ``.gz``). Searched first; then ``$NNSCRATCH_DATA/mnist``, then the
        cache ``$NNSCRATCH_CACHE/mnist`` (default ``~/.cache/nnscratch/mnist``).
    mirrors : sequence of str, optional
        Base URLs to download missing files from, in order (default
        :data:`MIRRORS`); ``[]`` never downloads.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 arrays of shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).

    Raises
    ------
    CorruptFileError
        A file is damaged, truncated, not IDX, or not the published one.
    DatasetUnavailableError
        Files are missing and could not be downloaded; the message lists them
        and where to put them.
    """
    found = fetch("mnist", list(FILES.values()), _parse, path=path,
                  mirrors=MIRRORS if mirrors is None else mirrors)
    arrays = {role: found[remote.name] for role, remote in FILES.items()}
    for part in ("train", "test"):
        x, y = arrays["x_" + part], arrays["y_" + part]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"mnist: {part} images of shape {x.shape} do not match "
                             f"{part} labels of shape {y.shape}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
