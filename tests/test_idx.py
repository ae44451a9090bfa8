"""The hand-written IDX parser on tiny hand-made files, raw and gzip-compressed."""

import gzip
import struct

import numpy as np
import pytest

from nnscratch.datasets.idx import decompress_if_gzip, encode_idx, parse_idx, read_idx

try:  # tests/ as a package, or as a plain folder on sys.path
    from tests.data_helpers import idx_bytes
except ImportError:
    from data_helpers import idx_bytes


def test_parse_hand_made_image_file():
    data = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 2, 3) + bytes(range(12))
    array = parse_idx(data)
    assert array.dtype == np.uint8 and array.shape == (2, 2, 3)
    np.testing.assert_array_equal(array.ravel(), np.arange(12))


def test_parse_labels_rank_one():
    array = parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]))
    np.testing.assert_array_equal(array, [7, 0, 9])


def test_parse_big_endian_int32_and_float64():
    ints = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", -5, 70000)
    np.testing.assert_array_equal(parse_idx(ints), [-5, 70000])
    floats = bytes([0, 0, 0x0E, 1]) + struct.pack(">I", 2) + struct.pack(">2d", 1.5, -2.25)
    parsed = parse_idx(floats)
    assert parsed.dtype == np.float64 and parsed.dtype.isnative
    np.testing.assert_array_equal(parsed, [1.5, -2.25])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_encode_round_trip(dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    back = parse_idx(encode_idx(array))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_encode_matches_hand_written_encoder():
    array = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    assert encode_idx(array) == idx_bytes(array)


def test_encode_rejects_unsupported_dtype():
    with pytest.raises(TypeError, match="int64"):
        encode_idx(np.arange(3, dtype=np.int64))


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_file_raw_and_gzip(tmp_path, compress):
    array = np.arange(28 * 28 * 2, dtype=np.int64).astype(np.uint8).reshape(2, 28, 28)
    data = idx_bytes(array)
    path = tmp_path / ("images.gz" if compress else "images")
    path.write_bytes(gzip.compress(data) if compress else data)
    np.testing.assert_array_equal(read_idx(path), array)


def test_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(5, dtype=np.uint8)
    path = tmp_path / "labels-without-gz-suffix"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(path), array)


@pytest.mark.parametrize("header, problem", [
    (bytes([0x1F, 0x8C, 8, 1]), "wrong magic number 0x1f8c0801"),
    (bytes([0, 1, 8, 1]), "wrong magic number"),
    (bytes([0, 0, 0x07, 1]), "wrong magic number 0x00000701"),
])
def test_wrong_magic_rejected(header, problem):
    with pytest.raises(ValueError, match=problem) as info:
        parse_idx(header + bytes(8), "labels.idx")
    assert "labels.idx" in str(info.value)


def test_too_short_for_a_header():
    with pytest.raises(ValueError, match="only 2 bytes"):
        parse_idx(b"\x00\x00", "tiny")


def test_truncated_header():
    with pytest.raises(ValueError, match="truncated header"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0]), "x.idx")


def test_truncated_data_names_file_and_sizes(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(data[:-100])
    with pytest.raises(ValueError, match="truncated data") as info:
        read_idx(path)
    assert str(path) in str(info.value) and "(3, 28, 28)" in str(info.value)


def test_trailing_bytes_rejected():
    with pytest.raises(ValueError, match="3 unexpected bytes"):
        parse_idx(idx_bytes(np.arange(4, dtype=np.uint8)) + b"abc", "f")


def test_truncated_gzip_rejected(tmp_path):
    path = tmp_path / "labels.gz"
    compressed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="damaged or truncated gzip") as info:
        read_idx(path)
    assert "labels.gz" in str(info.value)


def test_decompress_leaves_raw_data_alone():
    assert decompress_if_gzip(b"\x00\x00\x08\x01") == b"\x00\x00\x08\x01"


def test_parsed_array_is_writable_and_owned():
    array = parse_idx(idx_bytes(np.arange(4, dtype=np.uint8)))
    array[0] = 9  # frombuffer views are read-only; the parser must hand back a copy
    assert array[0] == 9
