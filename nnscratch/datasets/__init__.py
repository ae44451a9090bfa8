"""Data sets: MNIST and UCI optdigits, found locally or downloaded, always verified.

``mnist.load_data()`` and ``optdigits.load_data()`` look for their files in
``path=``, then ``$NNSCRATCH_DATA/<name>``, then the cache
``$NNSCRATCH_CACHE/<name>`` (default ``~/.cache/nnscratch/<name>``), and
download what is missing from public mirrors. Every file is checked against its
published SHA-256 before any of its data is returned or cached.
"""

from nnscratch.datasets import idx, mnist, optdigits
from nnscratch.datasets._fetch import CorruptFileError, DatasetUnavailableError, cache_dir

__all__ = [
    "mnist",
    "optdigits",
    "idx",
    "CorruptFileError",
    "DatasetUnavailableError",
    "cache_dir",
]
