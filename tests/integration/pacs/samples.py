"""DICOM test instances from pydicom's wheel (no network): CT_small, MR_small and a 4-slice CT series.

The series is CT_small cloned with its own Study / Series / SOP Instance UIDs (deterministic), Image Position
(Patient) z-steps of 5 mm and Instance Numbers that run against z (1 is the top slice, as scanners often
number head to feet), so sorting by position and sorting by Instance Number give opposite orders.
"""

from __future__ import annotations

import copy

import numpy as np
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import PYDICOM_ROOT_UID, generate_uid

__all__ = [
    "PATIENT_IDENTIFIERS",
    "SERIES_STUDY_DATE",
    "ct_series",
    "ct_small",
    "frames_by_source",
    "mr_small",
    "referenced_instances",
]

# What CT_small (and MR_small) say about their patient: must never reach a log line or an error message.
PATIENT_IDENTIFIERS = ("CompressedSamples^CT1", "CompressedSamples", "1CT1", "CompressedSamples^MR1", "4MR1")
SERIES_STUDY_DATE = "20240115"
SLICES = 4
Z_STEP_MM = 5.0


def _read(name: str) -> Dataset:
    path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(f"{name} is not in pydicom's wheel: use CT_small.dcm or MR_small.dcm")
    return dcmread(path)


def ct_small() -> Dataset:
    """CT_small.dcm: 128×128 int16, Rescale Intercept -1024, no window in the file, StudyDate 20040119."""
    return _read("CT_small.dcm")


def mr_small() -> Dataset:
    """MR_small.dcm: 64×64 int16, no rescale, Window 600 / 1600, StudyDate 20040826."""
    return _read("MR_small.dcm")


def _uid(*parts: str) -> str:
    return str(generate_uid(PYDICOM_ROOT_UID, entropy_srcs=["\x1f".join(("ceal-test", *parts))]))


def ct_series(slices: int = SLICES) -> list[Dataset]:
    """`slices` CT_small clones of one new series, in ascending z (index i at z0 + 5 mm · i).

    Slice i's pixels are CT_small's rolled by i columns (so slices differ); its Instance Number is
    `slices - i`.
    """
    base = ct_small()
    z0 = float(base.ImagePositionPatient[2])
    study_uid, series_uid = _uid("study"), _uid("series")
    out: list[Dataset] = []
    for i in range(slices):
        ds = copy.deepcopy(base)
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = _uid("instance", str(i))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyDate = SERIES_STUDY_DATE
        ds.SeriesNumber = 2
        ds.InstanceNumber = slices - i
        x, y = (float(v) for v in base.ImagePositionPatient[:2])
        ds.ImagePositionPatient = [x, y, z0 + Z_STEP_MM * i]
        ds.SliceLocation = z0 + Z_STEP_MM * i
        ds.PixelData = np.roll(base.pixel_array, i, axis=1).astype(base.pixel_array.dtype).tobytes()
        out.append(ds)
    return out


def frames_by_source(derived: Dataset) -> dict[str, np.ndarray]:
    """A SEG's or Parametric Map's frames keyed by the SOP Instance UID each one was derived from.

    highdicom orders frames spatially, so frame k is matched to its source through the frame's Derivation
    Image Sequence, never by index. Returns {source SOP Instance UID: (H, W) array}.
    """
    pixels = np.asarray(derived.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    out: dict[str, np.ndarray] = {}
    for k, frame in enumerate(derived.PerFrameFunctionalGroupsSequence):
        source = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        out[str(source)] = pixels[k]
    return out


def referenced_instances(derived: Dataset) -> set[str]:
    """SOP Instance UIDs listed in the derived object's Referenced Series Sequence."""
    return {
        str(item.ReferencedSOPInstanceUID)
        for series in derived.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
