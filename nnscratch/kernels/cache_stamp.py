"""Numba's on-disk cache, made to notice a change in *any* of nnscratch's kernel files.

Numba keeps each ``@njit(cache=True)`` kernel's machine code on disk together
with a hash of the file that defines it, and reuses it while that hash is
unchanged. But a compiled kernel also contains the helpers it calls from
*other* files (``_affine_rows`` of ``elementwise_fast.py`` inside the
convolution kernels of ``fast.py``, say). After a change to such a helper
alone (an edit, a ``git pull``), Numba would go on running the cached kernel
with the old helper in it: silently wrong numbers.

So every kernel of this package is stamped with a hash of *all* the files of
``nnscratch/kernels`` as well (:func:`stamp_module` at the end of each file
that defines kernels, and :func:`stamp` for the serial twins made later):
any change there recompiles every kernel, once, on first use. With
``NUMBA_DISABLE_JIT=1`` there is nothing to stamp, and nothing happens.
"""

import hashlib
from pathlib import Path

from numba.core.dispatcher import Dispatcher

__all__ = ["sources_digest", "SOURCES_DIGEST", "stamp", "stamp_module"]


def sources_digest(folder) -> str:
    """SHA-256 of the names and contents of the ``*.py`` files in ``folder``, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


#: The digest of nnscratch's kernel files, computed once per process (about 1 ms).
SOURCES_DIGEST = sources_digest(Path(__file__).parent)


def stamp(dispatcher, digest=SOURCES_DIGEST):
    """Make ``dispatcher``'s cache entries valid only while ``digest`` is unchanged; return ``dispatcher``.

    Numba compares the stamp it saved with a kernel to the stamp of the
    running code (``stamp`` here joins the file's own hash and ``digest``);
    a mismatch means compiling afresh. It must run before the kernel's first
    call, which loads the cache. Anything without a Numba cache (a plain
    Python function under ``NUMBA_DISABLE_JIT=1``, a kernel without
    ``cache=True``) is returned as it is. (Numba keeps the stamp in private
    attributes; where a Numba version has none, this does nothing.)
    """
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    own = getattr(cache_file, "_source_stamp", None)
    if own is not None and not (isinstance(own, tuple) and len(own) == 2 and own[1] == digest):
        cache_file._source_stamp = (own, digest)
    return dispatcher


def stamp_module(namespace, digest=SOURCES_DIGEST) -> None:
    """:func:`stamp` every Numba kernel among a module's globals (call it with ``globals()`` at its end)."""
    for value in list(namespace.values()):
        if isinstance(value, Dispatcher):
            stamp(value, digest)
