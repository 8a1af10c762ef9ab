"""What the PACS bridge needs from a PACS, whatever the wire (DICOMweb or DIMSE).

A sync composes the pieces:

    for info in pacs.find_series(since=last_watermark):              # new series since the last run
        if info.modality not in {"CT", "MR"}: continue                # skip SEG / OT (parametric maps) / SR
        datasets = sort_series(pacs.retrieve_series(info))
        uids = derived_uids([ds.SOPInstanceUID for ds in datasets], model_tag=..., content="seg")
        if pacs.has_derived(uids.series_uid, [uids.sop_uid]): continue  # done on an earlier run
        slices = decode_series(datasets) → predict (SDK) → build_segmentation / build_uncertainty_map
        pacs.store([seg, pmap]); last_watermark = max(last_watermark, info.watermark)

Watermark. Neither QIDO-RS nor C-FIND exposes when the PACS received a series (Orthanc keeps that only in
its own REST API), so the watermark is the Study Date (DICOM DA, "YYYYMMDD"): `find_series(since)` returns the
series of studies dated `since` or later (inclusive), with `since=None` meaning all. Day granularity means a
sync re-sees the series of its last day, and a study that arrives late but is dated earlier than the
watermark is missed: keep the watermark a few days behind (a lookback) and let `has_derived` (deterministic
UIDs, see `dicom_out.derived_uids`) skip what was already done.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydicom import Dataset

from ceal.pacs.errors import PacsError

__all__ = ["Pacs", "SeriesInfo", "check_since"]

_DICOM_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True)
class SeriesInfo:
    """One series as a PACS query returns it.

    `watermark` is the Study Date ("YYYYMMDD", "" when the PACS has none); `instance_count` is the number of
    instances when the PACS says it, else None.
    """

    study_uid: str
    series_uid: str
    modality: str
    watermark: str
    series_description: str = ""
    instance_count: int | None = None
    accession: str = ""  # the study's Accession Number ("" when the PACS did not say); never logged


@runtime_checkable
class Pacs(Protocol):
    """Find, fetch and store DICOM series; errors are `ceal.pacs.errors.PacsError` subclasses."""

    def find_series(self, since: str | None = None) -> list[SeriesInfo]:
        """Series of studies dated `since` ("YYYYMMDD", inclusive) or later; all series when None."""
        ...

    def retrieve_series(self, info: SeriesInfo) -> list[Dataset]:
        """Every instance of the series, with pixel data, in the order the PACS sends them."""
        ...

    def store(self, datasets: Sequence[Dataset]) -> None:
        """Store the instances; storing an instance again (same SOP Instance UID) does not duplicate it."""
        ...

    def has_derived(self, series_uid: str, sop_uids: Sequence[str]) -> bool:
        """True when series `series_uid` holds every instance in `sop_uids` (any instance, if empty)."""
        ...


def check_since(since: str | None) -> str | None:
    """Validate a watermark: None, or a DICOM date "YYYYMMDD". Raises `PacsError` saying the format."""
    if since is not None and not _DICOM_DATE.match(since):
        raise PacsError(f"since={since!r} is not a DICOM date: pass 'YYYYMMDD' (e.g. '20240131') or None")
    return since
