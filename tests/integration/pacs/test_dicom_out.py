"""ceal.pacs.dicom_out: SEG and Parametric Map over the 4-slice CT series (no PACS needed).

Includes `dciodvfy` (Debian dicom3tools) on every object we build, and a check that decoding and building
never log a patient identifier.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import Dataset, dcmread
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from ceal.pacs.decode import decode_series
from ceal.pacs.dicom_out import build_segmentation, build_uncertainty_map, derived_uids
from ceal.pacs.errors import DicomBuildError, PacsError
from tests.integration.pacs.samples import (
    PATIENT_IDENTIFIERS,
    ct_series,
    ct_small,
    frames_by_source,
    referenced_instances,
)

VERSION = "lesion-unet/7"


def fake_mask() -> np.ndarray:
    """(4, 128, 128) uint8: a different box on each slice, slice 1 empty (empty frames must be kept)."""
    mask = np.zeros((4, 128, 128), np.uint8)
    mask[0, 10:30, 20:60] = 1
    mask[2, 40:90, 50:70] = 1
    mask[3, 0:5, 0:128] = 1
    return mask


def fake_uncertainty() -> np.ndarray:
    """(4, 128, 128) float32 in [0, ln 2], like a binary predictive entropy."""
    values: np.ndarray = (np.random.default_rng(7).random((4, 128, 128)) * np.log(2)).astype(np.float32)
    return values


def roundtrip(ds: Dataset) -> Dataset:
    """Write and read back, as a PACS or viewer would see the object."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return dcmread(io.BytesIO(buffer.getvalue()))


def test_binary_segmentation_references_its_sources_and_holds_the_mask() -> None:
    sources, mask = ct_series(), fake_mask()
    seg = roundtrip(build_segmentation(sources, mask, series_number=900, algorithm_version=VERSION))
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert referenced_instances(seg) == {ds.SOPInstanceUID for ds in sources}
    frames = frames_by_source(seg)
    assert len(frames) == 4  # the empty slice 1 is kept
    for ds, plane in zip(sources, mask, strict=True):
        np.testing.assert_array_equal(frames[ds.SOPInstanceUID], plane)
    (segment,) = seg.SegmentSequence
    assert segment.SegmentLabel == "Lesion" and segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentAlgorithmName == "ceal"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == codes.SCT.Lesion.value
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == (
        codes.SCT.MorphologicallyAbnormalStructure.value
    )


def test_probabilities_make_a_fractional_segmentation() -> None:
    sources, mask = ct_series(), fake_mask()
    probabilities = np.where(mask == 1, 0.9, 0.1).astype(np.float32)
    seg = roundtrip(
        build_segmentation(sources, mask, probabilities=probabilities, series_number=900, algorithm_version=VERSION)
    )
    assert seg.SegmentationType == "FRACTIONAL" and seg.SegmentationFractionalType == "PROBABILITY"
    frames = frames_by_source(seg)
    for ds, plane in zip(sources, probabilities, strict=True):
        np.testing.assert_allclose(frames[ds.SOPInstanceUID] / seg.MaximumFractionalValue, plane, atol=1 / 255)


def test_uncertainty_map_holds_float_values_with_a_unitless_mapping() -> None:
    sources, values = ct_series(), fake_uncertainty()
    pm = roundtrip(
        build_uncertainty_map(sources, values, measure_name="entropy", series_number=901, algorithm_version=VERSION)
    )
    assert pm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    assert referenced_instances(pm) == {ds.SOPInstanceUID for ds in sources}
    frames = frames_by_source(pm)
    for ds, plane in zip(sources, values, strict=True):
        np.testing.assert_array_equal(frames[ds.SOPInstanceUID], plane)
    shared = pm.SharedFunctionalGroupsSequence[0]
    mapping = shared.RealWorldValueMappingSequence[0]
    assert mapping.LUTLabel == "entropy"
    assert mapping.MeasurementUnitsCodeSequence[0].CodeValue == "1"
    assert mapping.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"


def test_rebuilding_gives_the_same_uids_and_another_model_other_ones() -> None:
    sources, mask, values = ct_series(), fake_mask(), fake_uncertainty()
    first = build_segmentation(sources, mask, series_number=900, algorithm_version=VERSION)
    again = build_segmentation(sources[::-1], mask[::-1], series_number=900, algorithm_version=VERSION)
    other = build_segmentation(sources, mask, series_number=900, algorithm_version="lesion-unet/8")
    assert (again.SOPInstanceUID, again.SeriesInstanceUID) == (first.SOPInstanceUID, first.SeriesInstanceUID)
    assert other.SOPInstanceUID != first.SOPInstanceUID
    entropy = build_uncertainty_map(
        sources, values, measure_name="entropy", series_number=901, algorithm_version=VERSION
    )
    variance = build_uncertainty_map(
        sources, values, measure_name="variance", series_number=902, algorithm_version=VERSION
    )
    uids = {first.SOPInstanceUID, entropy.SOPInstanceUID, variance.SOPInstanceUID}
    assert len(uids) == 3
    expected = derived_uids([ds.SOPInstanceUID for ds in sources], model_tag=VERSION, content="pm:entropy")
    assert (entropy.SeriesInstanceUID, entropy.SOPInstanceUID) == (expected.series_uid, expected.sop_uid)


uid_text = st.text(alphabet="0123456789.", min_size=1, max_size=40)


@settings(max_examples=50, deadline=None)
@given(sops=st.lists(uid_text, min_size=1, max_size=6, unique=True), tag=st.text(max_size=20), seed=st.randoms())
def test_derived_uids_are_valid_and_independent_of_source_order(sops: list[str], tag: str, seed: object) -> None:
    uids = derived_uids(sops, model_tag=tag, content="seg")
    shuffled = list(sops)
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    assert derived_uids(shuffled, model_tag=tag, content="seg") == uids
    assert UID(uids.sop_uid).is_valid and UID(uids.series_uid).is_valid
    assert uids.sop_uid != uids.series_uid
    assert derived_uids(sops, model_tag=tag + "x", content="seg") != uids


def test_field_boundaries_matter_in_derived_uids() -> None:
    assert derived_uids(["1.2"], model_tag="a", content="bc") != derived_uids(["1.2"], model_tag="ab", content="c")


def test_wrong_arrays_are_refused_with_what_to_change() -> None:
    sources, mask = ct_series(), fake_mask()
    with pytest.raises(DicomBuildError, match="4 source instances"):
        build_segmentation(sources, mask[:3], series_number=1, algorithm_version=VERSION)
    with pytest.raises(DicomBuildError, match="Rows × Columns"):
        build_segmentation(sources, mask[:, :64], series_number=1, algorithm_version=VERSION)
    with pytest.raises(DicomBuildError, match="other than 0 and 1"):
        build_segmentation(sources, mask * 3, series_number=1, algorithm_version=VERSION)
    with pytest.raises(DicomBuildError, match="several series"):
        build_segmentation([*sources[:3], ct_small()], mask, series_number=1, algorithm_version=VERSION)
    values = fake_uncertainty()
    values[0, 0, 0] = np.nan
    with pytest.raises(DicomBuildError, match="NaN"):
        build_uncertainty_map(sources, values, measure_name="entropy", series_number=1, algorithm_version=VERSION)


def _dciodvfy(ds: Dataset, path: Path) -> tuple[list[str], list[str]]:
    """(error lines, warning lines) of dciodvfy on `ds`."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.fail("dciodvfy is missing: run scripts/install-system-deps (Debian package dicom3tools)")
    ds.save_as(path, enforce_file_format=True)
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [x for x in lines if x.startswith("Error")], [x for x in lines if x.startswith("Warning")]


@pytest.mark.parametrize("kind", ["binary_seg", "fractional_seg", "parametric_map"])
def test_dciodvfy_finds_no_errors(kind: str, tmp_path: Path) -> None:
    sources, mask, values = ct_series(), fake_mask(), fake_uncertainty()
    built: hd.seg.Segmentation | hd.pm.ParametricMap
    if kind == "parametric_map":
        built = build_uncertainty_map(
            sources, values, measure_name="entropy", series_number=901, algorithm_version=VERSION
        )
    else:
        probabilities = np.clip(values, 0, 1) if kind == "fractional_seg" else None
        built = build_segmentation(
            sources, mask, probabilities=probabilities, series_number=900, algorithm_version=VERSION
        )
    errors, warnings = _dciodvfy(built, tmp_path / f"{kind}.dcm")
    print(f"dciodvfy {kind}: {len(errors)} error(s), {len(warnings)} warning(s)")
    for line in warnings:
        print("  ", line)
    assert errors == []


def test_decoding_and_building_never_log_patient_identifiers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    sources = ct_series()
    decode_series(sources)
    build_segmentation(sources, fake_mask(), series_number=900, algorithm_version=VERSION)
    build_uncertainty_map(
        sources, fake_uncertainty(), measure_name="entropy", series_number=901, algorithm_version=VERSION
    )
    messages: list[str] = []
    with pytest.raises(PacsError) as build_error:
        build_segmentation(sources, fake_mask()[:2], series_number=1, algorithm_version=VERSION)
    messages.append(str(build_error.value))
    no_pixels = ct_small()
    del no_pixels.PixelData
    with pytest.raises(PacsError) as decode_error:
        decode_series([no_pixels])
    messages.append(str(decode_error.value))
    assert len(caplog.records) > 10, "expected DEBUG records from decoding and highdicom"
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + "\n".join(messages)
    for identifier in PATIENT_IDENTIFIERS:
        assert identifier not in text


HOSPITAL_ROOT = "1.2.826.0.1.3680043.10.543."


def _class_masks() -> np.ndarray:
    """(4, 128, 128) class indices 0..3, each class on some slices, one slice empty."""
    mask = np.zeros((4, 128, 128), np.uint8)
    mask[0, 10:40, 10:40] = 1
    mask[0, 60:90, 60:90] = 2
    mask[2, 20:50, 70:100] = 3
    mask[3, 5:25, 5:25] = 1
    return mask


def test_a_multi_class_seg_has_one_coded_segment_per_class_and_reads_back(tmp_path: Path) -> None:
    from ceal.pacs.classes import class_codes
    from ceal.pacs.decode import sort_series

    sources = sort_series(ct_series())
    classes = class_codes(["background", "lesion", "liver", "spleen"])
    masks = _class_masks()
    seg = build_segmentation(
        sources, masks, series_number=900, algorithm_version=VERSION, classes=classes, uid_root=HOSPITAL_ROOT
    )
    assert str(seg.SOPInstanceUID).startswith(HOSPITAL_ROOT) and str(seg.SeriesInstanceUID).startswith(HOSPITAL_ROOT)
    assert seg.ContentQualification == "RESEARCH"
    errors, warnings = _dciodvfy(seg, tmp_path / "multi.dcm")
    print(f"dciodvfy multi-segment SEG: {len(errors)} error(s), {len(warnings)} warning(s)")
    for line in warnings:
        print("  ", line)
    assert errors == []
    read = hd.seg.segread(tmp_path / "multi.dcm")
    assert read.number_of_segments == 3
    types = [read.get_segment_description(k).segmented_property_type for k in (1, 2, 3)]
    assert [(t.scheme_designator, t.value) for t in types] == [
        ("SCT", codes.SCT.Lesion.value),
        ("SCT", codes.SCT.Liver.value),
        ("SCT", codes.SCT.Spleen.value),
    ]
    sop_uids = [str(ds.SOPInstanceUID) for ds in sources]
    back = read.get_pixels_by_source_instance(sop_uids, combine_segments=True, assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(back, masks)


def test_uid_root_is_checked() -> None:
    with pytest.raises(DicomBuildError, match="not a DICOM UID prefix"):
        derived_uids(["1.2.3"], model_tag=VERSION, content="seg", uid_root="1.2.x")
    assert derived_uids(["1.2.3"], model_tag=VERSION, content="seg", uid_root="1.2.3").sop_uid.startswith("1.2.3.")


def test_a_labelmap_seg_holds_one_frame_per_source_and_reads_back() -> None:
    from ceal.pacs.classes import class_codes
    from ceal.pacs.decode import sort_series

    sources = sort_series(ct_series())
    classes = class_codes(["background", "lesion", "liver", "spleen"])
    masks = _class_masks()
    seg = build_segmentation(
        sources, masks, series_number=900, algorithm_version=VERSION, classes=classes, labelmap=True
    )
    assert seg.SegmentationType == "LABELMAP" and int(seg.NumberOfFrames) == 4
    read = hd.seg.Segmentation.from_dataset(dcmread(_saved(seg)))
    sop_uids = [str(ds.SOPInstanceUID) for ds in sources]
    back = read.get_pixels_by_source_instance(sop_uids, combine_segments=True, assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(back, masks)
    binary = build_segmentation(sources, masks, series_number=900, algorithm_version=VERSION, classes=classes)
    assert binary.SOPInstanceUID != seg.SOPInstanceUID  # another content, another UID
    with pytest.raises(DicomBuildError, match="needs the model's classes"):
        build_segmentation(sources, fake_mask(), series_number=900, algorithm_version=VERSION, labelmap=True)


def _saved(ds: Dataset) -> io.BytesIO:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return buffer
