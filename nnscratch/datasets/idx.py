"""The IDX file format of MNIST, read and written by hand.

An IDX file is a header followed by the raw array, big-endian::

    bytes 0-1   0x00 0x00                  (the magic number starts with two zeros)
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16,
                           0x0C int32, 0x0D float32, 0x0E float64
    byte  3     rank: the number of dimensions
    then        one 4-byte unsigned size per dimension
    then        the values, C order

MNIST's images are rank 3 (``0x00000803``), its labels rank 1 (``0x00000801``).
Files are often gzip-compressed; :func:`read_idx` recognises that from the
gzip signature (``1f 8b``), whatever the file is called.
"""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDX_TYPES", "parse_idx", "encode_idx", "read_idx", "decompress_if_gzip"]

# type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_SIGNATURE = b"\x1f\x8b"


def parse_idx(data, name="<bytes>"):
    """Decode the bytes of an (uncompressed) IDX file into an array.

    Parameters
    ----------
    data : bytes
        The whole file.
    name : str
        How to call the file in error messages.

    Returns
    -------
    ndarray
        In native byte order (uint8 for MNIST), shaped as the header says.

    Raises
    ------
    ValueError
        Naming ``name`` and the problem: a wrong magic number, an unknown
        type code, a header or data shorter than announced, or trailing bytes.
    """
    data = bytes(data)
    if len(data) < 4:
        raise ValueError(f"{name}: not an IDX file, only {len(data)} bytes (a header needs at least 4)")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise ValueError(
            f"{name}: wrong magic number 0x{data[:4].hex()}, expected 0x0000 then a type code "
            f"in {[hex(code) for code in IDX_TYPES]} then the rank (e.g. 0x00000803 for MNIST images)")
    dtype, rank = IDX_TYPES[data[2]], data[3]
    header_size = 4 + 4 * rank
    if len(data) < header_size:
        raise ValueError(f"{name}: truncated header, rank {rank} needs {header_size} bytes, "
                         f"the file has {len(data)}")
    shape = struct.unpack(f">{rank}I", data[4:header_size])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual < expected:
        raise ValueError(f"{name}: truncated data, the header announces shape {shape} "
                         f"({expected} bytes of {dtype.str}) but only {actual} bytes follow")
    if actual > expected:
        raise ValueError(f"{name}: {actual - expected} unexpected bytes after the "
                         f"{expected} bytes of data announced for shape {shape}")
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def encode_idx(array):
    """Return the bytes of an IDX file holding ``array`` (the inverse of :func:`parse_idx`)."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX stores {sorted(str(d) for d in codes)}, got dtype {array.dtype}")
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(IDX_TYPES[code]).tobytes()


def decompress_if_gzip(data, name="<bytes>"):
    """Return ``data`` gunzipped if it starts with the gzip signature, else unchanged.

    Raises
    ------
    ValueError
        If a gzip stream is truncated or damaged (naming ``name``).
    """
    if not data.startswith(_GZIP_SIGNATURE):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{name}: damaged or truncated gzip data ({error})") from None


def read_idx(path):
    """Read an IDX file, gzip-compressed or raw, into an array (see :func:`parse_idx`)."""
    path = Path(path)
    return parse_idx(decompress_if_gzip(path.read_bytes(), str(path)), str(path))
