"""Model outputs → DICOM objects a PACS and its viewers understand (built with highdicom).

- `build_segmentation`: a DICOM Segmentation (SEG), BINARY from a mask (every viewer shows it) or FRACTIONAL
  (probability, 8-bit) when per-pixel probabilities are given; one segment, or one segment per class of a
  multi-class model (`classes`, coded by `ceal.pacs.classes`).
- `build_uncertainty_map`: a Parametric Map of a per-pixel uncertainty measure (float32, unitless UCUM "1",
  identity real world value mapping).

Both reference their source instances, so a viewer overlays them on the series they came from. Their Series
and SOP Instance UIDs are derived deterministically from the source SOP Instance UIDs, the algorithm version
(the model tag) and what the object holds (`derived_uids`), under the hospital's UID root (`uid_root`, pydicom's
by default): a rerun on the same series with the same model produces the same UIDs, and a PACS stores it as the
same instance instead of a duplicate. Both say what they are fit for: Content Qualification RESEARCH unless
configured otherwise (`content_qualification`).

`sources` are the source instances (single-frame ones, or one enhanced multi-frame instance whose frames are
the planes) in the order of the arrays' first axis (use `decode.sort_series` before
predicting, and pass the same sorted list here); arrays are (N, H, W) with N = number of sources and (H, W)
= (Rows, Columns) of the sources. highdicom orders the output frames spatially (3D dimension organization),
which need not be the input order: a reader maps frame → source through each frame's Derivation Image
Sequence (or Plane Position), never by frame index.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import PYDICOM_ROOT_UID, generate_uid

from ceal.pacs.classes import ClassCode
from ceal.pacs.errors import DicomBuildError

__all__ = [
    "ALGORITHM_NAME",
    "CONTENT_QUALIFICATIONS",
    "MANUFACTURER",
    "DerivedUids",
    "build_segmentation",
    "build_uncertainty_map",
    "derived_uids",
    "seg_content",
]

_log = logging.getLogger(__name__)

ALGORITHM_NAME = "ceal"
MANUFACTURER = "ceal"
_SOFTWARE_VERSION = "0.1.0"
_DEVICE_SERIAL = "ceal"
CONTENT_QUALIFICATIONS = ("RESEARCH", "PRODUCT", "SERVICE")


@dataclass(frozen=True)
class DerivedUids:
    """Series and SOP Instance UID of one derived object."""

    series_uid: str
    sop_uid: str


def check_uid_root(uid_root: str) -> str:
    """A UID root as `generate_uid` wants it: digits and dots, ending in a dot, at most 32 characters."""
    root = uid_root if uid_root.endswith(".") else uid_root + "."
    parts = root[:-1].split(".")
    if len(root) > 32 or not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
        raise DicomBuildError(
            f"UID root {uid_root!r} is not a DICOM UID prefix: digits separated by dots, no leading zeros, "
            "at most 32 characters (e.g. '1.2.826.0.1.3680043.10.543.')"
        )
    return root


def derived_uids(
    source_sop_uids: Sequence[str], *, model_tag: str, content: str, uid_root: str = PYDICOM_ROOT_UID
) -> DerivedUids:
    """Deterministic UIDs for the derived object `content` (e.g. "seg", "pm:entropy") of these sources.

    Independent of the order of `source_sop_uids`; different for another model tag or content. Lets a sync
    ask the PACS whether an output already exists before it predicts (see `Pacs.has_derived`). `uid_root`:
    the organisation's root (e.g. the hospital's), pydicom's by default.
    """
    if not source_sop_uids:
        raise DicomBuildError("no source SOP Instance UIDs: pass the instances the object is derived from")
    # Fields joined with a separator that cannot occur in a UID, so ("ab", "c") and ("a", "bc") differ.
    key = "\x1f".join([model_tag, content, *sorted(source_sop_uids)])
    return DerivedUids(
        series_uid=str(generate_uid(check_uid_root(uid_root), entropy_srcs=[key, "series"])),
        sop_uid=str(generate_uid(check_uid_root(uid_root), entropy_srcs=[key, "instance"])),
    )


def seg_content(fractional: bool, classes: Sequence[ClassCode] | None = None, labelmap: bool = False) -> str:
    """What a SEG holds, as `derived_uids` keys it: "seg", "seg:fractional", "seg:classes:<names>" or
    "seg:labelmap:<names>"."""
    if classes:
        return ("seg:labelmap:" if labelmap else "seg:classes:") + ",".join(c.name for c in classes)
    return "seg:fractional" if fractional else "seg"


def _check_sources(sources: Sequence[Dataset], shape: tuple[int, ...], what: str) -> None:
    """Raise `DicomBuildError` unless `shape` is (N, Rows, Columns) for N single-frame `sources`, or for one
    (enhanced) multi-frame source of N frames (highdicom then takes plane i as frame i + 1)."""
    if not sources:
        raise DicomBuildError("no source instances: pass the image instances the object is derived from")
    if len(shape) != 3:
        raise DicomBuildError(f"{what} has shape {shape}: pass an (N, H, W) array, one plane per source")
    n, h, w = shape
    frames = [int(ds.get("NumberOfFrames") or 1) for ds in sources]
    if len(sources) > 1 and max(frames) > 1:
        raise DicomBuildError(
            "several multi-frame source instances: pass one enhanced multi-frame instance, or single-frame ones"
        )
    if n != sum(frames):
        raise DicomBuildError(
            f"{what} has {n} planes but the {len(sources)} source instances hold {sum(frames)} frame(s): pass one "
            "plane per source frame"
        )
    for ds in sources:
        if (int(ds.Rows), int(ds.Columns)) != (h, w):
            raise DicomBuildError(
                f"{what} planes are {h}×{w} but a source is {ds.Rows}×{ds.Columns}: "
                "resize the prediction back to the source's Rows × Columns"
            )
    if len({str(ds.SeriesInstanceUID) for ds in sources}) != 1:
        raise DicomBuildError("source instances come from several series: build one object per series")


def _algorithm(algorithm_version: str) -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, version=algorithm_version, family=codes.DCM.ArtificialIntelligence
    )


def build_segmentation(
    sources: Sequence[Dataset],
    masks: npt.NDArray[np.integer] | npt.NDArray[np.bool_],
    *,
    probabilities: npt.NDArray[np.floating] | None = None,
    series_number: int,
    algorithm_version: str,
    label: str = "Lesion",
    property_category: Code = codes.SCT.MorphologicallyAbnormalStructure,
    property_type: Code = codes.SCT.Lesion,
    series_description: str = "ceal segmentation",
    classes: Sequence[ClassCode] | None = None,
    uid_root: str = PYDICOM_ROOT_UID,
    content_qualification: str = "RESEARCH",
    labelmap: bool = False,
) -> hd.seg.Segmentation:
    """A DICOM SEG over `sources`: one segment, or one per class when `classes` are given (as a LABELMAP
    Segmentation, one class index per pixel, with `labelmap`; the dicom3tools here predate that IOD).

    masks: (N, H, W) of 0/1 (uint8 or bool), or with `classes` of class indices 0..len(classes) (segment k is
    class k, coded as `classes` says); it is the pixel data unless `probabilities` (N, H, W) float in [0, 1]
    are given (one-segment only), which makes a FRACTIONAL (PROBABILITY, 0..255) segmentation instead. Every
    plane is kept, empty ones too. `algorithm_version` names the model (e.g. "lesion-unet/7"); it is recorded
    in the algorithm identification ("ceal", AUTOMATIC) and is the model tag of `derived_uids`.
    """
    mask_array = np.asarray(masks)
    _check_sources(sources, mask_array.shape, "masks")
    if mask_array.dtype != np.bool_ and not np.issubdtype(mask_array.dtype, np.integer):
        raise DicomBuildError(f"masks have dtype {mask_array.dtype}: pass uint8 or bool 0/1 masks")
    if content_qualification not in CONTENT_QUALIFICATIONS:
        raise DicomBuildError(f"content qualification {content_qualification!r}: use one of {CONTENT_QUALIFICATIONS}")
    if classes:
        if probabilities is not None:
            raise DicomBuildError("FRACTIONAL segmentations hold one segment: drop classes or probabilities")
        return _multi_class(
            sources,
            mask_array,
            classes,
            series_number,
            algorithm_version,
            series_description,
            uid_root,
            content_qualification,
            labelmap,
        )
    if labelmap:
        raise DicomBuildError("a LABELMAP segmentation needs the model's classes: pass classes")
    if not np.isin(mask_array, (0, 1)).all():
        raise DicomBuildError("masks hold values other than 0 and 1: threshold them before building a SEG")
    pixels: npt.NDArray[np.generic] = mask_array.astype(np.uint8)
    segmentation_type = hd.seg.SegmentationTypeValues.BINARY
    content = "seg"
    if probabilities is not None:
        prob = np.asarray(probabilities, dtype=np.float32)
        if prob.shape != mask_array.shape:
            raise DicomBuildError(
                f"probabilities have shape {prob.shape} but masks {mask_array.shape}: pass matching arrays"
            )
        if not (np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0):
            raise DicomBuildError("probabilities must be finite and within [0, 1]: pass softmax/sigmoid outputs")
        pixels, segmentation_type, content = prob, hd.seg.SegmentationTypeValues.FRACTIONAL, "seg:fractional"
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=property_category,
        segmented_property_type=property_type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=_algorithm(algorithm_version),
    )
    seg = _segmentation(
        sources,
        pixels,
        segmentation_type,
        [description],
        content=content,
        series_number=series_number,
        algorithm_version=algorithm_version,
        uid_root=uid_root,
        content_description=f"{label} by {ALGORITHM_NAME} {algorithm_version}",
        series_description=series_description,
        content_qualification=content_qualification,
    )
    _log.debug("built %s SEG with %d frame(s)", segmentation_type.value, len(sources))
    return seg


def _segmentation(
    sources: Sequence[Dataset],
    pixels: npt.NDArray[np.generic],
    segmentation_type: hd.seg.SegmentationTypeValues,
    descriptions: Sequence[hd.seg.SegmentDescription],
    *,
    content: str,
    series_number: int,
    algorithm_version: str,
    uid_root: str,
    content_description: str,
    series_description: str,
    content_qualification: str,
) -> hd.seg.Segmentation:
    """The one highdicom call behind every SEG ceal writes: UIDs derived from the sources, the model and the
    content, so a re-run of the same model on the same series gives the same instance."""
    uids = derived_uids(
        [str(ds.SOPInstanceUID) for ds in sources], model_tag=algorithm_version, content=content, uid_root=uid_root
    )
    try:
        seg = hd.seg.Segmentation(
            source_images=list(sources),
            pixel_array=pixels,
            segmentation_type=segmentation_type,
            segment_descriptions=list(descriptions),
            series_instance_uid=uids.series_uid,
            series_number=series_number,
            sop_instance_uid=uids.sop_uid,
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=ALGORITHM_NAME,
            software_versions=_SOFTWARE_VERSION,
            device_serial_number=_DEVICE_SERIAL,
            omit_empty_frames=False,
            content_description=content_description[:64],
        )
    except (ValueError, TypeError, AttributeError) as cause:
        raise DicomBuildError(f"highdicom refused the segmentation: {cause}") from cause
    seg.SeriesDescription = series_description[:64]
    seg.ContentQualification = content_qualification
    return seg


def _multi_class(
    sources: Sequence[Dataset],
    masks: npt.NDArray[np.generic],
    classes: Sequence[ClassCode],
    series_number: int,
    algorithm_version: str,
    series_description: str,
    uid_root: str,
    content_qualification: str,
    labelmap: bool = False,
) -> hd.seg.Segmentation:
    """One SEG with segment k for class k (masks hold class indices, highdicom's label-map input): BINARY
    (a frame per segment and source), or LABELMAP (a frame per source)."""
    numbers = [c.index for c in classes]
    if numbers != list(range(1, len(classes) + 1)):
        raise DicomBuildError(f"classes must be numbered 1..{len(classes)} in order, got {numbers}")
    if int(masks.min(initial=0)) < 0 or int(masks.max(initial=0)) > len(classes):
        raise DicomBuildError(f"masks hold class indices outside 0..{len(classes)}: pass the model's label map")
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=c.index,
            segment_label=c.name[:64],
            segmented_property_category=c.category,
            segmented_property_type=c.type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=_algorithm(algorithm_version),
        )
        for c in classes
    ]
    seg = _segmentation(
        sources,
        masks.astype(np.uint8),
        hd.seg.SegmentationTypeValues.LABELMAP if labelmap else hd.seg.SegmentationTypeValues.BINARY,
        descriptions,
        content=seg_content(False, classes, labelmap),
        series_number=series_number,
        algorithm_version=algorithm_version,
        uid_root=uid_root,
        content_description=f"{len(classes)} classes by {ALGORITHM_NAME} {algorithm_version}",
        series_description=series_description,
        content_qualification=content_qualification,
    )
    _log.debug("built a %d-segment SEG with %d source(s)", len(classes), len(sources))
    return seg


def build_uncertainty_map(
    sources: Sequence[Dataset],
    values: npt.NDArray[np.floating],
    *,
    measure_name: str,
    series_number: int,
    algorithm_version: str,
    explanation: str | None = None,
    series_description: str | None = None,
    uid_root: str = PYDICOM_ROOT_UID,
    content_qualification: str = "RESEARCH",
) -> hd.pm.ParametricMap:
    """A Parametric Map of a per-pixel uncertainty measure over `sources`.

    values: (N, H, W) float32, finite (e.g. predictive entropy in nats, variance, mutual information).
    `measure_name` (e.g. "entropy") labels the real world value mapping (first 16 characters) and keeps the
    maps of different measures apart in `derived_uids`. Values are stored as float32 with an identity mapping
    to unitless ("1", UCUM) real world values; the display window spans the values' range.
    """
    array = np.asarray(values)
    _check_sources(sources, array.shape, "values")
    if not np.issubdtype(array.dtype, np.floating):
        raise DicomBuildError(f"values have dtype {array.dtype}: pass float32 uncertainty values")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise DicomBuildError("values hold NaN or infinity: replace non-finite uncertainty values first")
    if not measure_name.strip():
        raise DicomBuildError("measure_name is empty: name the measure, e.g. 'entropy'")
    lo, hi = float(array.min()), float(array.max())
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=measure_name[:16],
        lut_explanation=(explanation or f"{measure_name} of Monte-Carlo dropout predictions")[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(lo, hi),
        slope=1.0,
        intercept=0.0,
    )
    # LINEAR_EXACT: uncertainty ranges are often narrower than 1, which plain LINEAR forbids as a width.
    window = hd.VOILUTTransformation(
        window_center=(lo + hi) / 2.0,
        window_width=max(hi - lo, 1e-6),
        voi_lut_function=hd.VOILUTFunctionValues.LINEAR_EXACT,
    )
    uids = derived_uids(
        [str(ds.SOPInstanceUID) for ds in sources],
        model_tag=algorithm_version,
        content=f"pm:{measure_name}",
        uid_root=uid_root,
    )
    try:
        pmap = hd.pm.ParametricMap(
            source_images=list(sources),
            pixel_array=array,
            series_instance_uid=uids.series_uid,
            series_number=series_number,
            sop_instance_uid=uids.sop_uid,
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=ALGORITHM_NAME,
            software_versions=_SOFTWARE_VERSION,
            device_serial_number=_DEVICE_SERIAL,
            contains_recognizable_visual_features=False,
            real_world_value_mappings=[mapping],
            voi_lut_transformations=[window],
            content_qualification=content_qualification,
            content_description=f"{measure_name} by {ALGORITHM_NAME} {algorithm_version}"[:64],
        )
    except (ValueError, TypeError, AttributeError) as cause:
        raise DicomBuildError(f"highdicom refused the parametric map: {cause}") from cause
    # General Series' Laterality is Type 2C; validators flag it missing. Copy it, or say "unknown" (empty).
    pmap.Laterality = str(sources[0].get("Laterality", "") or "")
    pmap.SeriesDescription = (series_description or f"ceal {measure_name}")[:64]
    _log.debug("built %s parametric map with %d frame(s)", measure_name, len(sources))
    return pmap
