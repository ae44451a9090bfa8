"""Finding, verifying, downloading and caching data files (shared by every loader).

Each file a data set needs is looked for, in this order, in

1. the folder given as ``path=`` to the loader,
2. ``$NNSCRATCH_DATA/<dataset>``,
3. the cache, ``$NNSCRATCH_CACHE/<dataset>`` (default: the platform's cache
   folder from :func:`pooch.os_cache`, ``~/.cache/nnscratch/<dataset>`` on Linux),

under its published name or, for a ``.gz`` name, the uncompressed name (and the
other way round). A file found nowhere is downloaded from the mirrors in turn
(:class:`pooch.HTTPDownloader`, with a progress bar) into a temporary file in
the cache folder, verified, and only then renamed into place; on any failure
the temporary file is deleted. Every file, local or downloaded, is verified
before its data is returned: gunzipped if it is gzip data, parsed (which checks
its format), and its SHA-256 compared with the published one. The hash is of
the *uncompressed* bytes, so a recompressed copy of an MNIST file is accepted.
"""

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pooch

from nnscratch.datasets.idx import decompress_if_gzip

__all__ = [
    "RemoteFile",
    "CorruptFileError",
    "DatasetUnavailableError",
    "cache_dir",
    "search_dirs",
    "fetch",
]

DOWNLOAD_TIMEOUT_S = 30


class CorruptFileError(ValueError):
    """A data file exists but is damaged, truncated, of the wrong format or not the published one."""


class DatasetUnavailableError(FileNotFoundError):
    """Data files are in none of the folders searched and could not be downloaded."""


@dataclass(frozen=True)
class RemoteFile:
    """A file of a data set: its published name and the SHA-256 of its uncompressed bytes."""

    name: str
    sha256: str

    def local_names(self):
        """The names accepted in a folder: the published one, then with/without ``.gz``."""
        if self.name.endswith(".gz"):
            return (self.name, self.name[:-3])
        return (self.name, self.name + ".gz")


def cache_dir(dataset):
    """Return the cache folder of ``dataset``: ``$NNSCRATCH_CACHE/<dataset>`` or the platform's."""
    root = os.environ.get("NNSCRATCH_CACHE")
    base = Path(root).expanduser() if root else Path(pooch.os_cache("nnscratch"))
    return base / dataset


def search_dirs(dataset, path=None):
    """Return the folders searched for ``dataset``, in order, as ``(description, folder)`` pairs."""
    dirs = []
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ValueError(f"path must be an existing folder holding the files, got {str(path)!r}")
        dirs.append(("path=", folder))
    data_root = os.environ.get("NNSCRATCH_DATA")
    if data_root:
        dirs.append(("$NNSCRATCH_DATA", Path(data_root).expanduser() / dataset))
    dirs.append(("cache", cache_dir(dataset)))
    return dirs


def _verify(raw, remote, parse, where):
    """Gunzip, parse and hash-check the bytes of one file; return the parsed data."""
    try:
        data = decompress_if_gzip(raw, where)
        parsed = parse(data, where)
    except ValueError as error:
        raise CorruptFileError(str(error)) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != remote.sha256:
        raise CorruptFileError(
            f"{where}: SHA-256 of the uncompressed bytes is {digest}, expected {remote.sha256} "
            f"for {remote.name}; the file is damaged or not the published one")
    return parsed


class _MirrorsFailed(Exception):
    """Internal: every mirror failed for one file (``failures``: one line per mirror)."""

    def __init__(self, failures, corrupt):
        super().__init__(failures)
        self.failures, self.corrupt = failures, corrupt


def _download(remote, mirrors, folder, parse):
    """Try the mirrors in turn; return the parsed data, or raise ``_MirrorsFailed``."""
    failures, corrupt = [], False
    downloader = pooch.HTTPDownloader(progressbar=True, chunk_size=65536, timeout=DOWNLOAD_TIMEOUT_S)
    created = not folder.exists()
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + remote.name
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=remote.name + ".", suffix=".part", dir=folder)
        os.close(handle)
        try:
            print(f"Downloading {url}", file=sys.stderr)
            downloader(url, temporary, None)
            parsed = _verify(Path(temporary).read_bytes(), remote, parse, f"{remote.name} from {url}")
            os.replace(temporary, folder / remote.name)
            return parsed
        except CorruptFileError as error:
            failures.append(str(error))
            corrupt = True
        except OSError as error:  # includes every requests exception
            failures.append(f"{url}: {type(error).__name__}: {error}")
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    if created and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # leave no empty cache folder behind either
    raise _MirrorsFailed(failures, corrupt)


def _missing_message(dataset, missing, dirs, mirrors, failures):
    places = "\n".join(f"  - {label}: {folder}" for label, folder in dirs)
    if not os.environ.get("NNSCRATCH_DATA"):
        places += "\n  - $NNSCRATCH_DATA: not set"
    tried = "\n".join(f"  - {line}" for line in failures) or "  - no mirrors given"
    hint = mirrors[0].rstrip("/") + "/<name>" if mirrors else "the data set's publisher"
    return (f"{dataset}: missing file(s) {', '.join(missing)}.\nLooked in:\n{places}\n"
            f"Downloading failed:\n{tried}\nDownload them by hand (e.g. from {hint}) and put them "
            f"in {cache_dir(dataset)}, in $NNSCRATCH_DATA/{dataset}, or in a folder passed as path=.")


def fetch(dataset, files, parse, path=None, mirrors=()):
    """Find (or download), verify and parse every file of a data set.

    Parameters
    ----------
    dataset : str
        The data set's folder name (``"mnist"``, ``"optdigits"``).
    files : sequence of RemoteFile
    parse : callable ``(data: bytes, where: str) -> object``
        Decodes the uncompressed bytes of one file, raising ``ValueError``
        naming ``where`` and the problem when the format is wrong.
    path : str or Path, optional
        A folder searched first.
    mirrors : sequence of str
        Base URLs tried in turn for files found nowhere (``base/name``).

    Returns
    -------
    dict
        ``{remote.name: parse(...)}`` for every file.

    Raises
    ------
    CorruptFileError
        A file found or downloaded fails verification (nothing bad is cached).
    DatasetUnavailableError
        Files are missing and no mirror delivered them.
    """
    mirrors = (mirrors,) if isinstance(mirrors, str) else tuple(mirrors or ())
    dirs = search_dirs(dataset, path)
    results, missing = {}, []
    for remote in files:
        found = next((folder / name for _, folder in dirs for name in remote.local_names()
                      if (folder / name).is_file()), None)
        if found is not None:
            results[remote.name] = _verify(found.read_bytes(), remote, parse, str(found))
        else:
            missing.append(remote)
    for position, remote in enumerate(missing):
        try:
            results[remote.name] = _download(remote, mirrors, cache_dir(dataset), parse)
        except _MirrorsFailed as failed:
            if failed.corrupt:
                raise CorruptFileError(
                    f"{dataset}: no mirror delivered a valid {remote.name}; nothing was written "
                    f"to {cache_dir(dataset)}.\n"
                    + "\n".join(f"  - {line}" for line in failed.failures)) from None
            names = [r.name for r in missing[position:]]
            message = _missing_message(dataset, names, dirs, mirrors, failed.failures)
            raise DatasetUnavailableError(message) from None
    return results
