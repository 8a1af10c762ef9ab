"""`ceal pacs labels` against a real Orthanc and a real ceal server: a radiologist's SEG becomes a human label.

The SEG is made with highdicom as a viewer would make it: another manufacturer, MANUAL segment, Content
Creator's Name set, empty frames omitted, a mask that corrects what a model would draw. Each test starts its
own Orthanc (fresh storage) and its own server (fresh pool).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import PYDICOM_ROOT_UID, generate_uid

from ceal.client import Client
from ceal.pacs.classes import class_codes, read_mapping
from ceal.pacs.cli import register
from ceal.pacs.decode import decode_series, sort_series
from ceal.pacs.dicom_out import build_segmentation
from ceal.pacs.labels import import_labels
from tests.fixtures.legacy_model.make_fixture import HERE as LEGACY
from tests.integration.orthanc_server import OrthancInfo, running_orthanc
from tests.integration.pacs.conftest import make_pacs
from tests.integration.pacs.orthanc_rest import OrthancRest
from tests.integration.pacs.samples import PATIENT_IDENTIFIERS, ct_series
from tests.support.server import in_process

pytestmark = [pytest.mark.orthanc, pytest.mark.slow]

RADIOLOGIST = "Smith^Jane"
POOL = "pacs"


def uid(*parts: str) -> str:
    return str(generate_uid(PYDICOM_ROOT_UID, entropy_srcs=["\x1f".join(("ceal-labels-test", *parts))]))


@dataclass(frozen=True)
class Setup:
    info: OrthancInfo
    rest: OrthancRest
    sources: list[Dataset]  # the 4-slice CT series, spatially sorted
    address: str
    password_file: Path


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    models = tmp_path / "models"
    shutil.copytree(LEGACY / "models", models)  # any model: only its class names (background, lesion) matter
    sources = sort_series(ct_series(5)[1:])
    with running_orthanc(tmp_path / "orthanc") as info, in_process(models, tmp_path / "state") as running:
        rest = OrthancRest(info)
        for ds in sources:
            rest.upload(ds)
        password = tmp_path / "password"
        password.write_text(info.password + "\n")
        yield Setup(info, rest, sources, f"127.0.0.1:{running.port}", password)


def radiologist_seg(sources: list[Dataset], masks: np.ndarray, *, name: str, hour: str) -> hd.seg.Segmentation:
    """A SEG as a radiologist's viewer stores it (not ceal's: Manufacturer, MANUAL, creator, omitted frames)."""
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=uid(name, "series"),
        series_number=300,
        sop_instance_uid=uid(name, "instance"),
        instance_number=1,
        manufacturer="Acme Imaging",
        manufacturer_model_name="Acme Viewer",
        software_versions="4.2",
        device_serial_number="A-17",
        content_creator_name=RADIOLOGIST,
        omit_empty_frames=True,
    )
    seg.ContentDate, seg.ContentTime = "20240201", hour
    return seg


def drawn(shift: int = 0) -> np.ndarray:
    """(4, 128, 128) 0/1: boxes on slices 0 and 2, nothing on 1 and 3."""
    m = np.zeros((4, 128, 128), np.uint8)
    m[0, 20 + shift : 50 + shift, 30:70] = 1
    m[2, 60:90, 40 + shift : 80 + shift] = 1
    return m


def run_cli(setup: Setup, wire: str) -> int:
    parser = argparse.ArgumentParser(prog="ceal")
    register(parser.add_subparsers(dest="command"))
    if wire == "dicomweb":
        pacs = ["--dicomweb", setup.info.dicomweb_url, "--user", setup.info.user]
        pacs += ["--password-file", str(setup.password_file)]
    else:
        pacs = ["--dimse", f"127.0.0.1:{setup.info.dicom_port}", "--aet", setup.info.aet]
        pacs += ["--calling-aet", setup.info.client_aet]
    args = parser.parse_args(["pacs", "labels", "--server", setup.address, *pacs, "--pool", POOL])
    result: int = args.func(args)
    return result


def labels_by_source(setup: Setup) -> dict[str, tuple[int, str, np.ndarray]]:
    """SOP Instance UID → (version, annotator, mask) of the human labels in the pool."""
    with Client(setup.address) as client:
        ids = [i for i, _ in client.register_images([s.pixels for s in decode_series(setup.sources)], pool=POOL)]
        by_id = {r.image_id: r for r in client.export_labels(pool=POOL, include_images=False)}
    sop = [str(ds.SOPInstanceUID) for ds in setup.sources]
    return {sop[i]: (by_id[k].version, by_id[k].annotator, by_id[k].mask) for i, k in enumerate(ids) if k in by_id}


@pytest.mark.parametrize("wire", ["dicomweb", "dimse"])
def test_a_radiologists_seg_becomes_a_human_label_once_and_a_correction_a_new_version(
    wire: str, setup: Setup, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = drawn()
    setup.rest.upload(radiologist_seg(setup.sources, first, name="first", hour="090000"))
    assert run_cli(setup, wire) == 0
    out = capsys.readouterr().out
    assert "4 label(s) stored from 1 SEG(s)" in out
    labels = labels_by_source(setup)
    assert len(labels) == 4  # every referenced instance, the empty ones too (omitted frames are empty)
    for i, ds in enumerate(setup.sources):
        version, annotator, mask = labels[str(ds.SOPInstanceUID)]
        assert (version, annotator) == (1, RADIOLOGIST)
        np.testing.assert_array_equal(mask, first[i])

    assert run_cli(setup, wire) == 0  # the same SEG again: nothing new
    assert "0 label(s) stored from 0 SEG(s); 1 already in the pool" in capsys.readouterr().out
    assert {k: v[0] for k, v in labels_by_source(setup).items()} == {k: 1 for k in labels}

    corrected = drawn(shift=7)
    corrected[1, 5:15, 5:15] = 1  # and a lesion the first reading missed
    setup.rest.upload(radiologist_seg(setup.sources, corrected, name="corrected", hour="110000"))
    assert run_cli(setup, wire) == 0
    assert "4 label(s) stored from 1 SEG(s); 1 already in the pool" in capsys.readouterr().out
    after = labels_by_source(setup)
    for i, ds in enumerate(setup.sources):
        version, annotator, mask = after[str(ds.SOPInstanceUID)]
        assert (version, annotator) == (2, RADIOLOGIST)
        np.testing.assert_array_equal(mask, corrected[i])
    text = caplog.text + out
    assert not any(identifier in text for identifier in PATIENT_IDENTIFIERS)


def test_unknown_series_and_ceals_own_segs_are_reported_and_skipped(setup: Setup) -> None:
    elsewhere = sort_series(ct_series(3))  # a series the PACS never received
    for ds in elsewhere:
        ds.SeriesInstanceUID = uid("elsewhere")
        ds.SOPInstanceUID = uid("elsewhere", str(ds.InstanceNumber))
    orphan = radiologist_seg(elsewhere, drawn()[:3], name="orphan", hour="080000")
    setup.rest.upload(orphan)
    ours = build_segmentation(setup.sources, drawn(), series_number=9901, algorithm_version="legacy/1")
    setup.rest.upload(ours)
    with Client(setup.address) as client:
        report = import_labels(
            make_pacs("dicomweb", setup.info), client, class_codes(["background", "lesion"]), pool=POOL
        )
        assert list(client.export_labels(pool=POOL, include_images=False)) == []
    status = {o.seg_uid: o for o in report.outcomes}
    assert status[str(orphan.SOPInstanceUID)].status == "skipped"
    assert "unknown to the PACS" in status[str(orphan.SOPInstanceUID)].message
    assert status[str(ours.SOPInstanceUID)].status == "ours"
    assert report.labels == 0 and report.failures == (status[str(orphan.SOPInstanceUID)],)


def test_a_seg_whose_segments_match_no_class_is_skipped_unless_mapped(setup: Setup, tmp_path: Path) -> None:
    seg = radiologist_seg(setup.sources, drawn(), name="liver", hour="100000")
    seg.SegmentSequence[0].SegmentLabel = "Liver"
    seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue = codes.SCT.Liver.value
    seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeMeaning = "Liver"
    setup.rest.upload(seg)
    pacs = make_pacs("dicomweb", setup.info)
    with Client(setup.address) as client:
        skipped = import_labels(pacs, client, class_codes(["background", "lesion"]), pool=POOL)
        assert skipped.count("skipped") == 1 and "--class-map" in skipped.outcomes[0].message
        mapping = {"lesion": {"type": f"SCT:{codes.SCT.Liver.value}:Liver"}}
        (tmp_path / "map.json").write_text(json.dumps(mapping))
        mapped = import_labels(
            pacs, client, class_codes(["background", "lesion"], read_mapping(tmp_path / "map.json")), pool=POOL
        )
    assert mapped.labels == 4


def test_sync_imports_the_radiologists_seg_after_predicting_unless_told_not_to(setup: Setup) -> None:
    from ceal.pacs.sync import SyncOptions, sync

    setup.rest.upload(radiologist_seg(setup.sources, drawn(), name="in-sync", hour="090000"))
    pacs = make_pacs("dicomweb", setup.info)
    with Client(setup.address) as client:
        without = sync(pacs, client, SyncOptions(pool=POOL, samples=2, seed=1, labels=False))
        assert without.labels is None and list(client.export_labels(pool=POOL, include_images=False)) == []
        report = sync(pacs, client, SyncOptions(pool=POOL, samples=2, seed=1, uid_root="1.2.826.0.1.3680043.10.543"))
    assert report.labels is not None and report.labels.labels == 4
    assert report.labels.count("ours") == 1  # the SEG the first sync stored: ceal's own, never a label
    assert {k: v[:2] for k, v in labels_by_source(setup).items()} == {
        str(ds.SOPInstanceUID): (1, RADIOLOGIST) for ds in setup.sources
    }


def enhanced_ct(sources: list[Dataset]) -> Dataset:
    """The 4 slices as one enhanced multi-frame CT (highdicom's legacy conversion: per-frame functional groups).

    The conversion invents a full-range window (0 / 65536) for sources without one; it is dropped, so that the
    frames, like the classic slices, get the CT default window."""
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        sources,
        series_instance_uid=uid("enhanced", "series"),
        series_number=7,
        sop_instance_uid=uid("enhanced"),
        instance_number=1,
    )
    for group in [*enhanced.SharedFunctionalGroupsSequence, *enhanced.PerFrameFunctionalGroupsSequence]:
        if "FrameVOILUTSequence" in group:
            del group.FrameVOILUTSequence
    return enhanced


def test_an_enhanced_multi_frame_series_is_synced_and_labelled_frame_by_frame(setup: Setup, tmp_path: Path) -> None:
    from ceal.pacs.decode import decode_dataset
    from ceal.pacs.sync import SyncOptions, sync

    enhanced = enhanced_ct(setup.sources)
    setup.rest.upload(enhanced)
    frames = decode_dataset(enhanced)
    assert [s.ref.frame_number for s in frames] == [1, 2, 3, 4]
    classic = [s.pixels for s in decode_series(setup.sources)]  # same pixels as the classic slices, any order
    matches = [[i for i, c in enumerate(classic) if np.array_equal(f.pixels, c)] for f in frames]
    assert sorted(m[0] for m in matches if len(m) == 1) == [0, 1, 2, 3]
    pacs = make_pacs("dicomweb", setup.info)
    with Client(setup.address) as client:
        report = sync(pacs, client, SyncOptions(pool=POOL, samples=2, seed=1, labels=False))
    outcome = {o.series_uid: o for o in report.outcomes}[str(enhanced.SeriesInstanceUID)]
    assert (outcome.status, outcome.slices) == ("stored", 1), outcome.error
    seg = setup.rest.download(outcome.seg_uid)
    assert int(seg.NumberOfFrames) == 4
    masks = drawn()
    setup.rest.upload(radiologist_seg([enhanced], masks, name="on-enhanced", hour="120000"))
    with Client(setup.address) as client:
        labels = import_labels(pacs, client, class_codes(["background", "lesion"]), pool=POOL)
        ids = [i for i, _ in client.register_images([s.pixels for s in frames], pool=POOL)]
        by_id = {r.image_id: r for r in client.export_labels(pool=POOL, include_images=False)}
    assert labels.labels == 4 and labels.count("ours") == 2  # the sync stored a SEG per series: classic, enhanced
    for frame, image_id in enumerate(ids):
        np.testing.assert_array_equal(by_id[image_id].mask, masks[frame])


def test_results_can_go_to_a_separate_destination(setup: Setup, tmp_path: Path) -> None:
    from ceal.pacs.sync import SyncOptions, sync

    pacs = make_pacs("dicomweb", setup.info)
    options = SyncOptions(pool=POOL, samples=2, seed=1, labels=False)
    with running_orthanc(tmp_path / "results") as results_info, Client(setup.address) as client:
        results = OrthancRest(results_info)
        destination = make_pacs("dicomweb", results_info)
        first = sync(pacs, client, options, destination=destination)
        again = sync(pacs, client, options, destination=destination)
        (outcome,) = first.outcomes
        assert outcome.status == "stored" and [o.status for o in again.outcomes] == ["skipped"]
        assert results.instance_count() == 2  # the SEG and the Parametric Map
        assert results.download(outcome.seg_uid).Modality == "SEG"
    assert setup.rest.instance_count() == len(setup.sources)  # the source PACS got nothing


def test_a_labelmap_seg_from_another_system_becomes_labels(setup: Setup) -> None:
    masks = drawn()
    seg = build_segmentation(
        setup.sources,
        masks,
        series_number=301,
        algorithm_version="vendor/2",
        classes=class_codes(["background", "lesion"]),
        labelmap=True,
    )
    seg.Manufacturer, seg.ContentCreatorName = "Vendor Workstation", RADIOLOGIST
    setup.rest.upload(seg)
    with Client(setup.address) as client:
        report = import_labels(
            make_pacs("dicomweb", setup.info), client, class_codes(["background", "lesion"]), pool=POOL
        )
    assert report.labels == 4, report.outcomes
    for i, ds in enumerate(setup.sources):
        version, annotator, mask = labels_by_source(setup)[str(ds.SOPInstanceUID)]
        assert (version, annotator) == (1, RADIOLOGIST)
        np.testing.assert_array_equal(mask, masks[i])


def test_a_fractional_seg_is_thresholded_at_one_half(setup: Setup) -> None:
    masks = drawn()
    probabilities = masks * 0.9 + 0.3 * (1 - masks) * (np.arange(128)[None, None, :] % 2)  # 0.3 noise: outside
    seg = build_segmentation(
        setup.sources,
        masks,
        probabilities=probabilities.astype(np.float32),
        series_number=302,
        algorithm_version="vendor/3",
    )
    seg.Manufacturer, seg.ContentCreatorName = "Vendor Workstation", RADIOLOGIST
    setup.rest.upload(seg)
    with Client(setup.address) as client:
        report = import_labels(
            make_pacs("dicomweb", setup.info), client, class_codes(["background", "lesion"]), pool=POOL
        )
    assert report.labels == 4, report.outcomes
    labels = labels_by_source(setup)
    for i, ds in enumerate(setup.sources):
        np.testing.assert_array_equal(labels[str(ds.SOPInstanceUID)][2], masks[i])


@pytest.mark.parametrize("wire", ["dicomweb", "dimse"])
def test_the_accession_filter_picks_one_study(wire: str, setup: Setup) -> None:
    from ceal.pacs.sync import SyncOptions, sync

    other = sort_series(ct_series(2))
    for i, ds in enumerate(other):
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("acc-study"), uid("acc-series")
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("acc", str(i))
        ds.AccessionNumber = "ACC0042"
        setup.rest.upload(ds)
    pacs = make_pacs(wire, setup.info)
    assert {i.series_uid: i.accession for i in pacs.find_series()}[uid("acc-series")] == "ACC0042"
    with Client(setup.address) as client:
        report = sync(pacs, client, SyncOptions(accession="ACC0042", dry_run=True))
    assert [i.series_uid for i in report.planned] == [uid("acc-series")]


def test_series_query_items_name_the_dicom_instances_to_open(setup: Setup) -> None:
    from ceal.pacs.sync import SyncOptions, sync

    with Client(setup.address) as client:
        sync(make_pacs("dicomweb", setup.info), client, SyncOptions(pool=POOL, samples=2, seed=1, labels=False))
        client.score_pool(pool=POOL, samples=2)
        (item,) = client.query_list(pool=POOL, strategy="entropy", k=1, series=True).items
    series = setup.sources[0]
    assert (item.study_instance_uid, item.series_instance_uid) == (series.StudyInstanceUID, series.SeriesInstanceUID)
    assert len(item.slice_instances) == len(item.slice_image_ids) == 4
    assert {sop for sop, _ in item.slice_instances} == {str(ds.SOPInstanceUID) for ds in setup.sources}
    assert {frame for _, frame in item.slice_instances} == {1}
