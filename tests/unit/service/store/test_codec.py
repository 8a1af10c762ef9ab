from __future__ import annotations

import zlib

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.store import StoreError, decode_array, encode_array, image_id_of
from ceal.service.store.codec import content_digest, decode_known

DTYPES = st.sampled_from(["?", "u1", "<u2", ">u2", "<i4", ">f4", "<f8", "<i8"])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=1, max_dims=3, max_side=7)))
def test_encode_decode_is_lossless(array: np.ndarray) -> None:
    back = decode_array(encode_array(array))
    assert back.shape == array.shape
    assert back.dtype == array.dtype.newbyteorder("<")  # same type, stored little-endian
    np.testing.assert_array_equal(back, array)  # NaNs compare equal here, so floats are checked bit-for-bit
    assert back.tobytes() == array.astype(back.dtype).tobytes()


@settings(max_examples=40, deadline=None)
@given(hnp.arrays("<u2", hnp.array_shapes(min_dims=2, max_dims=3, max_side=6)))
def test_image_id_is_32_hex_and_independent_of_byte_order_and_memory_layout(array: np.ndarray) -> None:
    image_id = image_id_of(array)
    assert len(image_id) == 32
    assert int(image_id, 16) >= 0
    assert image_id_of(array.astype(">u2")) == image_id
    assert image_id_of(np.asfortranarray(array)) == image_id
    assert image_id == content_digest(array)[:32]


def test_image_id_depends_on_dtype_and_shape_not_only_bytes() -> None:
    base = np.arange(24, dtype=np.uint8).reshape(4, 6)
    same_bytes_other_shape = base.reshape(6, 4)
    same_bytes_other_dtype = base.view(np.int8)
    ids = {image_id_of(base), image_id_of(same_bytes_other_shape), image_id_of(same_bytes_other_dtype)}
    assert len(ids) == 3


def test_image_id_changes_when_one_pixel_changes() -> None:
    base = np.zeros((16, 16), dtype=np.uint16)
    changed = base.copy()
    changed[7, 9] = 1
    assert image_id_of(base) != image_id_of(changed)


def test_damaged_blob_raises_store_error_without_data() -> None:
    with pytest.raises(StoreError, match="damaged"):
        decode_array(b"not a blob")
    with pytest.raises(StoreError, match="damaged"):
        decode_array(zlib.compress(b"\x93NUMPY garbage"))


def test_object_arrays_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_array(np.array([{"a": 1}], dtype=object))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays("u1", hnp.array_shapes(min_dims=2, max_dims=2, max_side=9)))
def test_decode_known_reads_what_decode_array_reads(array: np.ndarray) -> None:
    blob = encode_array(array)
    back = decode_known(blob, "|u1", array.shape)
    np.testing.assert_array_equal(back, decode_array(blob))
    assert back.dtype == np.uint8 and back.flags.writeable


def test_decode_known_falls_back_when_the_blob_is_not_what_the_caller_expects() -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    # another shape or dtype than expected: the stored array as it is, for the caller's own check
    assert decode_known(encode_array(array), "|u1", (4, 3)).shape == (3, 4)
    assert decode_known(encode_array(array.astype("<u2")), "|u1", (3, 4)).dtype == np.dtype("<u2")
    with pytest.raises(StoreError, match="damaged"):
        decode_known(b"not a blob", "|u1", (3, 4))
    with pytest.raises(StoreError, match="damaged"):
        decode_known(zlib.compress(b"\x93NUMPY garbage"), "|u1", (3, 4))


def test_decode_known_builds_nothing_for_a_size_the_blob_cannot_hold() -> None:
    blob = encode_array(np.ones((3, 4), np.uint8))
    # a damaged row claiming a huge mask: the stored array comes back for the caller's check, nothing allocated
    assert decode_known(blob, "|u1", (1_000_000_000, 125_000_000)).shape == (3, 4)
