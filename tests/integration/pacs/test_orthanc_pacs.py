"""ceal.pacs.sources against a real Orthanc: find, retrieve, decode, build, store, over DICOMweb and DIMSE.

Every test taking `pacs` runs twice (DicomWebPacs, DimsePacs). The samples were uploaded through Orthanc's
REST API, so what is checked here does not rely on the code under test to put it there.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ceal.pacs.decode import decode_series, modality_values, sort_series
from ceal.pacs.dicom_out import build_segmentation, build_uncertainty_map
from ceal.pacs.errors import PacsError, PacsUnavailableError
from ceal.pacs.sources import DicomWebPacs, DimsePacs, Pacs, SeriesInfo
from tests.integration.orthanc_server import OrthancInfo
from tests.integration.pacs.conftest import Samples, make_pacs
from tests.integration.pacs.orthanc_rest import OrthancRest
from tests.integration.pacs.samples import (
    PATIENT_IDENTIFIERS,
    SERIES_STUDY_DATE,
    frames_by_source,
    referenced_instances,
)

pytestmark = [pytest.mark.orthanc, pytest.mark.slow]


def _by_series(infos: list[SeriesInfo]) -> dict[str, SeriesInfo]:
    return {info.series_uid: info for info in infos}


def _series_info(pacs: Pacs, series_uid: str) -> SeriesInfo:
    return _by_series(pacs.find_series(None))[series_uid]


def test_find_series_filters_on_the_study_date_watermark(pacs: Pacs, samples: Samples) -> None:
    ct, mr, series = (
        samples.ct.SeriesInstanceUID,
        samples.mr.SeriesInstanceUID,
        samples.series[0].SeriesInstanceUID,
    )
    found = _by_series(pacs.find_series(None))
    assert {ct, mr, series} <= found.keys()
    assert found[series] == SeriesInfo(
        study_uid=samples.series[0].StudyInstanceUID,
        series_uid=series,
        modality="CT",
        watermark=SERIES_STUDY_DATE,
        series_description=found[series].series_description,
        instance_count=4,
    )
    assert (found[ct].watermark, found[mr].watermark) == ("20040119", "20040826")
    assert found[mr].modality == "MR"
    after_august_2004 = _by_series(pacs.find_series("20040801")).keys()
    assert mr in after_august_2004 and series in after_august_2004 and ct not in after_august_2004
    this_decade = _by_series(pacs.find_series("20240101")).keys()
    assert series in this_decade and not {ct, mr} & this_decade
    with pytest.raises(PacsError, match="YYYYMMDD"):
        pacs.find_series("2024-01-01")


def test_retrieve_sort_and_decode_the_series(pacs: Pacs, samples: Samples) -> None:
    retrieved = pacs.retrieve_series(_series_info(pacs, samples.series[0].SeriesInstanceUID))
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(ds.SOPInstanceUID for ds in samples.series)
    ordered = sort_series(retrieved)
    assert [ds.SOPInstanceUID for ds in ordered] == [ds.SOPInstanceUID for ds in samples.series]  # ascending z
    assert [int(ds.InstanceNumber) for ds in ordered] == [4, 3, 2, 1]
    hu = np.concatenate([modality_values(ds) for ds in ordered])  # (4, 128, 128)
    assert (hu.min(), hu.max()) == (-896, 1167)  # CT_small's stored 128..2191 with intercept -1024
    slices = decode_series(retrieved)
    local = decode_series(samples.series)
    assert [s.ref for s in slices] == [s.ref for s in local]
    for got, want in zip(slices, local, strict=True):
        np.testing.assert_array_equal(got.pixels, want.pixels)


@pytest.mark.parametrize("which", ["ct", "mr"])
def test_retrieved_single_instances_decode_like_the_files(pacs: Pacs, samples: Samples, which: str) -> None:
    source = samples.ct if which == "ct" else samples.mr
    (retrieved,) = pacs.retrieve_series(_series_info(pacs, source.SeriesInstanceUID))
    (got,) = decode_series([retrieved])
    (want,) = decode_series([source])
    np.testing.assert_array_equal(got.pixels, want.pixels)
    assert got.ref.sop_uid == source.SOPInstanceUID


def _fake_outputs(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    mask = (rng.random(shape) > 0.7).astype(np.uint8)
    mask[1] = 0  # an empty slice
    values = rng.random(shape).astype(np.float32) * 0.5
    return mask, values


def test_seg_and_map_are_stored_read_back_and_not_duplicated(
    pacs: Pacs, samples: Samples, orthanc_rest: OrthancRest, request: pytest.FixtureRequest
) -> None:
    sources = sort_series(pacs.retrieve_series(_series_info(pacs, samples.series[0].SeriesInstanceUID)))
    mask, values = _fake_outputs((4, 128, 128))
    tag = f"test-model/{request.node.callspec.id}"  # a fresh output per wire
    seg = build_segmentation(sources, mask, series_number=900, algorithm_version=tag)
    pmap = build_uncertainty_map(sources, values, measure_name="entropy", series_number=901, algorithm_version=tag)
    assert not pacs.has_derived(seg.SeriesInstanceUID, [seg.SOPInstanceUID])
    before = orthanc_rest.instance_count()

    pacs.store([seg, pmap])
    assert orthanc_rest.instance_count() == before + 2
    assert pacs.has_derived(seg.SeriesInstanceUID, [seg.SOPInstanceUID])
    assert pacs.has_derived(pmap.SeriesInstanceUID, [pmap.SOPInstanceUID])
    assert pacs.has_derived(seg.SeriesInstanceUID, [])
    assert not pacs.has_derived(seg.SeriesInstanceUID, [seg.SOPInstanceUID, "1.2.3.4"])

    rebuilt = build_segmentation(sources, mask, series_number=900, algorithm_version=tag)
    pacs.store([rebuilt, pmap])  # a rerun: same UIDs
    assert orthanc_rest.instance_count() == before + 2
    assert orthanc_rest.sop_uids_in_series(seg.SeriesInstanceUID) == [seg.SOPInstanceUID]

    stored_seg = orthanc_rest.download(seg.SOPInstanceUID)
    assert referenced_instances(stored_seg) == {ds.SOPInstanceUID for ds in samples.series}
    seg_frames = frames_by_source(stored_seg)
    for ds, plane in zip(sources, mask, strict=True):
        np.testing.assert_array_equal(seg_frames[ds.SOPInstanceUID], plane)
    stored_map = orthanc_rest.download(pmap.SOPInstanceUID)
    assert referenced_instances(stored_map) == {ds.SOPInstanceUID for ds in samples.series}
    map_frames = frames_by_source(stored_map)
    for ds, plane in zip(sources, values, strict=True):
        np.testing.assert_array_equal(map_frames[ds.SOPInstanceUID], plane)

    found = _by_series(pacs.find_series(SERIES_STUDY_DATE))
    assert (found[seg.SeriesInstanceUID].modality, found[pmap.SeriesInstanceUID].modality) == ("SEG", "OT")


def test_storing_over_both_wires_keeps_one_instance(
    orthanc: OrthancInfo, samples: Samples, orthanc_rest: OrthancRest
) -> None:
    web, dimse = make_pacs("dicomweb", orthanc), make_pacs("dimse", orthanc)
    mask, _ = _fake_outputs((4, 128, 128))
    seg = build_segmentation(samples.series, mask, series_number=900, algorithm_version="test-model/both")
    web.store([seg])
    count = orthanc_rest.instance_count()
    dimse.store([seg])
    web.store([seg])
    assert orthanc_rest.instance_count() == count
    assert dimse.has_derived(seg.SeriesInstanceUID, [seg.SOPInstanceUID])


def test_finding_and_retrieving_never_log_patient_identifiers(
    pacs: Pacs, samples: Samples, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for ds in (samples.ct, samples.mr):
        decode_series(pacs.retrieve_series(_series_info(pacs, ds.SeriesInstanceUID)))
    assert caplog.records, "expected DEBUG records from the PACS clients"
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for identifier in PATIENT_IDENTIFIERS:
        assert identifier not in text


def test_wrong_credentials_or_ae_titles_are_unavailable(orthanc: OrthancInfo, samples: Samples) -> None:
    with pytest.raises(PacsUnavailableError, match="user and password"):
        DicomWebPacs(orthanc.dicomweb_url, orthanc.user, "wrong").find_series(None)
    with pytest.raises(PacsUnavailableError, match="called AE title"):
        DimsePacs("127.0.0.1", orthanc.dicom_port, "NOT_ORTHANC", orthanc.client_aet, timeout_s=10).find_series()


def test_retrieve_by_c_move_gives_what_c_get_gives(
    orthanc: OrthancInfo, samples: Samples, caplog: pytest.LogCaptureFixture
) -> None:
    """Many PACS allow only C-MOVE: Orthanc sends the series to our AE title, where we listen meanwhile."""
    caplog.set_level(logging.DEBUG, logger="ceal.pacs.dimse")
    get = make_pacs("dimse", orthanc)
    move = DimsePacs(
        "127.0.0.1",
        orthanc.dicom_port,
        orthanc.aet,
        orthanc.client_aet,
        timeout_s=30,
        move_port=orthanc.client_store_port,
        move_host="127.0.0.1",
    )
    info = _series_info(get, samples.series[0].SeriesInstanceUID)
    moved = move.retrieve_series(info)
    assert "C-MOVE retrieved 4 instance(s)" in caplog.text  # by C-MOVE, not by a C-GET
    got = get.retrieve_series(info)
    assert sorted(ds.SOPInstanceUID for ds in moved) == sorted(ds.SOPInstanceUID for ds in samples.series)
    for a, b in zip(decode_series(moved), decode_series(got), strict=True):
        np.testing.assert_array_equal(a.pixels, b.pixels)
