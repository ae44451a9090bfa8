"""Helpers for the data tests: the shared real data, hand-made IDX files, local HTTP servers."""

import contextlib
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

__all__ = [
    "shared_data_dir",
    "require_shared",
    "idx_bytes",
    "fake_mnist_files",
    "files_in",
    "register_fake_mnist",
    "write_files",
    "copy_shared",
    "serve",
    "StaticHandler",
    "GarbageHandler",
    "DyingHandler",
    "dead_url",
]

REPO = Path(__file__).resolve().parent.parent
REQUIRED = {
    "mnist": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    "optdigits": ("optdigits.tra", "optdigits.tes"),
}


def _find_shared_data():
    root = os.environ.get("NNSCRATCH_DATA")
    root = Path(root).resolve() if root else (REPO.parent / "shared" / "data").resolve()
    return root if root.is_dir() else None


# Resolved once, at import: tests that clear NNSCRATCH_DATA still find the real files.
_SHARED = _find_shared_data()


def shared_data_dir():
    """The real data root: ``$NNSCRATCH_DATA`` (relative to cwd) or ``<repo>/../shared/data``."""
    return _SHARED


def require_shared(dataset):
    """Return the shared folder of ``dataset`` with all its files, or skip the test."""
    root = shared_data_dir()
    folder = root / dataset if root else None
    if folder is None or not all((folder / name).is_file() for name in REQUIRED[dataset]):
        message = f"real {dataset} files not found (set NNSCRATCH_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must provide them")  # CI never skips the real-data tests
        pytest.skip(message)
    return folder


def idx_bytes(array):
    """Encode an uint8 array as an IDX file, written out by hand for the tests."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return (bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.tobytes())


def fake_mnist_files(n_train=6, n_test=4, seed=0):
    """Tiny MNIST look-alikes: ``{name: uncompressed IDX bytes}`` and their arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return {name: idx_bytes(a) for name, a in arrays.items()}, arrays


def register_fake_mnist(monkeypatch, contents):
    """Point ``mnist.FILES`` at the SHA-256 of the given fake files."""
    from nnscratch.datasets import mnist
    from nnscratch.datasets._fetch import RemoteFile

    files = {role: RemoteFile(remote.name, hashlib.sha256(contents[remote.name]).hexdigest())
             for role, remote in mnist.FILES.items()}
    monkeypatch.setattr(mnist, "FILES", files)


def write_files(folder, contents, compress=True):
    """Write ``{name.gz: raw bytes}`` into ``folder``, gzipped or under the raw name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        if compress:
            (folder / name).write_bytes(gzip.compress(data))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(data)
    return folder


def copy_shared(dataset, names, target):
    """Copy some real files into ``target`` (a tmp folder, never the repo)."""
    source = require_shared(dataset)
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, target / name)
    return target


def files_in(folder):
    """All files under ``folder`` (empty list if it does not exist)."""
    folder = Path(folder)
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class StaticHandler(_QuietHandler):
    """Serves the files of the server's ``root`` folder."""

    def __init__(self, request, client_address, server):
        super().__init__(request, client_address, server, directory=str(server.root))


class GarbageHandler(_QuietHandler):
    """Answers every GET with 200 and random bytes."""

    def do_GET(self):
        body = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class DyingHandler(_QuietHandler):
    """Announces the full length of the requested file, sends half, then hangs up."""

    def do_GET(self):
        body = (Path(self.server.root) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def serve(handler, root=None):
    """Run a ThreadingHTTPServer on 127.0.0.1 (free port) in a thread; yield its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.root = root
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dead_url():
    """A URL on a local port that nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
