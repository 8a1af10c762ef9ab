"""ceal.pacs.decode on real pydicom test files and on datasets derived from them (no PACS needed)."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydicom import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from ceal.pacs.decode import (
    CT_DEFAULT_WINDOW,
    decode_dataset,
    decode_series,
    modality_values,
    percentile_window,
    positions_along_normal,
    sort_series,
    window_linear,
)
from ceal.pacs.errors import DicomDecodeError
from tests.integration.pacs.samples import ct_series, ct_small, mr_small

finite = st.floats(-4096, 4096, allow_nan=False, allow_infinity=False)
arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=8), elements=finite)


def test_ct_rescale_gives_hounsfield_units_and_the_soft_tissue_window() -> None:
    ds = ct_small()
    raw = ds.pixel_array.astype(np.float64)
    hu = modality_values(ds)  # (1, 128, 128)
    assert hu.shape == (1, 128, 128)
    # CT_small stores 128..2191 with intercept -1024: air-ish to bone, in HU.
    assert hu.min() == raw.min() - 1024 == -896
    assert hu.max() == raw.max() - 1024 == 1167
    (decoded,) = decode_dataset(ds)
    assert decoded.pixels.dtype == np.float32 and decoded.pixels.shape == (128, 128)
    np.testing.assert_array_equal(decoded.pixels, window_linear(hu[0], *CT_DEFAULT_WINDOW))
    center, width = CT_DEFAULT_WINDOW
    assert (decoded.pixels[hu[0] <= center - width / 2] == 0).all()
    assert (decoded.pixels[hu[0] >= center + width / 2] == 1).all()
    assert 0 < decoded.pixels.mean() < 1


def test_a_window_in_the_file_wins_over_the_ct_default() -> None:
    ds = ct_small()
    ds.WindowCenter, ds.WindowWidth = 400, 1800  # a bone window
    (decoded,) = decode_dataset(ds)
    np.testing.assert_array_equal(decoded.pixels, window_linear(modality_values(ds)[0], 400, 1800))


def test_mr_uses_its_window_else_the_percentiles() -> None:
    ds = mr_small()
    (with_window,) = decode_dataset(ds)
    np.testing.assert_array_equal(with_window.pixels, window_linear(ds.pixel_array, 600, 1600))
    del ds.WindowCenter, ds.WindowWidth
    (no_window,) = decode_dataset(ds)
    np.testing.assert_array_equal(no_window.pixels, percentile_window(ds.pixel_array.astype(np.float64)))
    assert no_window.pixels.min() == 0 and no_window.pixels.max() == 1


def test_monochrome1_is_inverted() -> None:
    ds = mr_small()
    inverted = copy.deepcopy(ds)
    inverted.PhotometricInterpretation = "MONOCHROME1"
    np.testing.assert_allclose(decode_dataset(inverted)[0].pixels, 1 - decode_dataset(ds)[0].pixels, atol=1e-6)


def test_multi_frame_gives_one_slice_per_frame_with_frame_numbers() -> None:
    ds = ct_small()
    frames = np.stack([ds.pixel_array, ds.pixel_array // 2, ds.pixel_array * 0]).astype(np.int16)  # (3, H, W)
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    slices = decode_dataset(ds, first_index=10)
    assert [s.ref.frame_number for s in slices] == [1, 2, 3]
    assert [s.slice_index for s in slices] == [10, 11, 12]
    assert {s.ref.sop_uid for s in slices} == {ds.SOPInstanceUID}
    for s, frame in zip(slices, frames, strict=True):
        np.testing.assert_array_equal(s.pixels, window_linear(frame - 1024.0, *CT_DEFAULT_WINDOW))


def _rgb(rows: int = 4, columns: int = 5) -> tuple[Dataset, np.ndarray]:
    pixels = np.arange(rows * columns * 3, dtype=np.uint8).reshape(rows, columns, 3) * 3
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID = "1.2.3.1", "1.2.3.2", "1.2.3.3"
    ds.Modality = "XC"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.PhotometricInterpretation = "RGB"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    return ds, pixels


def test_rgb_is_kept_as_three_channels() -> None:
    ds, pixels = _rgb()
    (decoded,) = decode_dataset(ds)
    assert decoded.pixels.shape == (4, 5, 3)
    np.testing.assert_allclose(decoded.pixels, pixels / 255.0, atol=1e-7)
    assert decoded.ref.frame_number == 1 and decoded.ref.sop_uid == "1.2.3.1"


def test_instances_without_pixels_or_with_unsupported_colour_are_refused() -> None:
    ds = ct_small()
    del ds.PixelData
    with pytest.raises(DicomDecodeError, match="no pixel data"):
        decode_dataset(ds)
    ds = ct_small()
    ds.PhotometricInterpretation = "PALETTE COLOR"
    with pytest.raises(DicomDecodeError, match="PALETTE COLOR is not supported"):
        decode_dataset(ds)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_series_sorts_by_position_along_the_normal_whatever_the_input_order(order: tuple[int, ...]) -> None:
    series = ct_series()  # ascending z
    shuffled = [series[i] for i in order]
    assert [ds.SOPInstanceUID for ds in sort_series(shuffled)] == [ds.SOPInstanceUID for ds in series]


def test_series_falls_back_to_instance_number_without_positions() -> None:
    series = ct_series()
    for ds in series:
        del ds.ImagePositionPatient
    # Instance Numbers run against z in the samples: 4, 3, 2, 1.
    assert [int(ds.InstanceNumber) for ds in sort_series([series[2], series[0], series[3], series[1]])] == [
        1,
        2,
        3,
        4,
    ]


def test_decode_series_numbers_slices_in_sorted_order() -> None:
    series = ct_series()
    slices = decode_series([series[2], series[0], series[3], series[1]])
    assert [s.ref.sop_uid for s in slices] == [ds.SOPInstanceUID for ds in series]
    assert [s.slice_index for s in slices] == [0, 1, 2, 3]
    # The samples roll slice i by i columns: the decoded planes must follow.
    first = slices[0].pixels
    for i, s in enumerate(slices):
        np.testing.assert_array_equal(s.pixels, np.roll(first, i, axis=1))


def test_positions_along_a_tilted_normal() -> None:
    orientation = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 1.0])  # sagittal: normal = +x
    positions = np.array([[3.0, 9.0, 9.0], [-1.0, 0.0, 0.0], [2.0, -5.0, 7.0]])
    np.testing.assert_array_equal(positions_along_normal(positions, orientation), [3.0, -1.0, 2.0])


@settings(max_examples=60, deadline=None)
@given(values=arrays, center=finite, width=st.floats(1, 8192))
def test_window_is_in_unit_range_and_monotone(values: np.ndarray, center: float, width: float) -> None:
    out = window_linear(values, center, width)
    assert out.shape == values.shape and out.dtype == np.float32
    assert ((out >= 0) & (out <= 1)).all()
    flat_in, flat_out = values.ravel(), out.ravel()
    order = np.argsort(flat_in, kind="stable")
    assert (np.diff(flat_out[order]) >= 0).all()


@settings(max_examples=60, deadline=None)
@given(values=arrays)
def test_percentile_window_is_in_unit_range_and_order_preserving(values: np.ndarray) -> None:
    out = percentile_window(values)
    assert out.shape == values.shape and ((out >= 0) & (out <= 1)).all()
    order = np.argsort(values.ravel(), kind="stable")
    assert (np.diff(out.ravel()[order]) >= 0).all()


def test_percentile_window_survives_a_subnormal_window() -> None:
    values = np.zeros((3, 5, 7))
    values[0, 0, :2] = [5e-324, 1.0]  # the 99th percentile lands between 0 and the subnormal: a window of ~5e-324
    out = percentile_window(values)
    assert out[0, 0, 1] == 1.0 and out[0, 0, 0] == 1.0 and out[1].max() == 0.0


def test_window_width_below_one_is_refused() -> None:
    with pytest.raises(DicomDecodeError, match="below 1"):
        window_linear(np.zeros(3), 0.0, 0.5)
