"""UCI "Optical Recognition of Handwritten Digits" (Alpaydin and Kaynak, 1998): 8x8 digits.

Two text files, one digit per line: 64 comma-separated pixel counts (0..16,
row by row) followed by the class (0..9). ``optdigits.tra`` has 3,823 rows and
``optdigits.tes`` 1,797; together they are the 5,620 instances of the data set.
The test file is exactly what scikit-learn bundles as ``load_digits()``.

Row order matters: :func:`load_data` returns the rows of ``optdigits.tra``
first, then those of ``optdigits.tes``, each in file order, so a seeded split
of the 5,620 rows is reproducible.
"""

import io

import numpy as np

from nnscratch.datasets._fetch import RemoteFile, fetch

__all__ = ["load_data", "FILES", "MIRRORS", "SOURCES", "IMAGE_SHAPE", "MAX_VALUE"]

MIRRORS = ("https://archive.ics.uci.edu/ml/machine-learning-databases/optdigits/",)

# part -> file; the hashes are of the text files themselves.
FILES = {
    "train": RemoteFile("optdigits.tra",
                        "e1b683cc211604fe8fd8c4417e6a69f31380e0c61d4af22e93cc21e9257ffedd"),
    "test": RemoteFile("optdigits.tes",
                       "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"),
}
SOURCES = ("uci", "sklearn")
IMAGE_SHAPE = (8, 8)
MAX_VALUE = 16


def _parse(data, where):
    """Parse one optdigits file into ``(x (N, 8, 8) uint8, y (N,) uint8)``."""
    try:
        table = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as error:  # NumPy's own advice ("use `usecols`...") does not apply to a damaged file
        detail = str(error).split("; use `usecols`")[0]
        raise ValueError(f"{where}: not an optdigits file, or a truncated one: rows of 65 comma-separated "
                         f"integers expected ({detail})") from None
    if table.shape[0] == 0 or table.shape[1] != 65:
        raise ValueError(f"{where}: expected rows of 64 pixels and a class, got a table "
                         f"of shape {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > MAX_VALUE or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{where}: pixels must be 0..16 and classes 0..9, got pixels "
                         f"{pixels.min()}..{pixels.max()} and classes {labels.min()}..{labels.max()}")
    return pixels.reshape(-1, *IMAGE_SHAPE).astype(np.uint8), labels.astype(np.uint8)


def load_data(path=None, source="uci", *, mirrors=None):
    """Load optdigits as ``(x, y)``.

    Parameters
    ----------
    path : str or Path, optional
        A folder holding ``optdigits.tra`` and ``optdigits.tes``; searched
        first, then ``$NNSCRATCH_DATA/optdigits``, then the cache
        ``$NNSCRATCH_CACHE/optdigits`` (default ``~/.cache/nnscratch/optdigits``);
        missing files are downloaded from UCI. Not allowed with ``source="sklearn"``.
    source : {"uci", "sklearn"}
        ``"uci"``: all 5,620 rows, the 3,823 of ``optdigits.tra`` then the
        1,797 of ``optdigits.tes``. ``"sklearn"``: scikit-learn's bundled
        1,797 rows, offline (the same rows as ``optdigits.tes``, same order).
    mirrors : sequence of str, optional
        Base URLs to download from (default :data:`MIRRORS`); ``[]`` never downloads.

    Returns
    -------
    x : ndarray, shape (N, 8, 8), uint8
        Pixel counts 0..16 (scale with ``scale_images(x, max_value=16)``).
    y : ndarray, shape (N,), uint8
        Classes 0..9.

    Raises
    ------
    ValueError
        For an unknown ``source``.
    CorruptFileError, DatasetUnavailableError
        As :func:`nnscratch.datasets.mnist.load_data`.
    """
    if source == "sklearn":
        if path is not None or mirrors is not None:
            raise ValueError("path and mirrors do not apply to source='sklearn' (bundled data)")
        from sklearn.datasets import load_digits

        digits = load_digits()
        return (digits.data.reshape(-1, *IMAGE_SHAPE).astype(np.uint8),
                digits.target.astype(np.uint8))
    if source != "uci":
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    found = fetch("optdigits", list(FILES.values()), _parse, path=path,
                  mirrors=MIRRORS if mirrors is None else mirrors)
    (x_tra, y_tra), (x_tes, y_tes) = (found[FILES[part].name] for part in ("train", "test"))
    return np.concatenate([x_tra, x_tes]), np.concatenate([y_tra, y_tes])
