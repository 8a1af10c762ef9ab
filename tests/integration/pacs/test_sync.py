"""`ceal pacs sync` / `ceal pacs worklist` against a real Orthanc and a real ceal server (the tiny lesion model).

Each test starts its own Orthanc (fresh storage), so instance counts and the watermark depend on this test
alone. The samples are uploaded through Orthanc's REST API, and what the sync stored is read back through it.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from pydicom import Dataset
from pydicom.uid import PYDICOM_ROOT_UID, generate_uid

from ceal.client import Client
from ceal.pacs.cli import register
from ceal.pacs.decode import decode_series
from ceal.pacs.sources import Pacs
from ceal.pacs.sync import SyncOptions, SyncReport, sync
from ceal.pacs.worklist import format_worklist, worklist
from ceal.service.server import Running
from tests.integration.orthanc_server import OrthancInfo, running_orthanc
from tests.integration.pacs.conftest import make_pacs
from tests.integration.pacs.orthanc_rest import OrthancRest
from tests.integration.pacs.samples import (
    PATIENT_IDENTIFIERS,
    SERIES_STUDY_DATE,
    ct_series,
    ct_small,
    frames_by_source,
    mr_small,
    referenced_instances,
)

pytestmark = [pytest.mark.orthanc, pytest.mark.slow]

SAMPLES, SEED = 4, 17
BROKEN_STUDY_DATE = "20230601"
ROOT = Path(__file__).resolve().parents[3]


def four_slices() -> list[Dataset]:
    """The sample CT series without its first slice, whose pixels are CT_small's: the pool stores an image
    once by content, so that slice would count for whichever series registered it first."""
    return ct_series(5)[1:]


SERIES_UID = str(four_slices()[0].SeriesInstanceUID)


@dataclass(frozen=True)
class Site:
    """A fresh Orthanc holding CT_small, MR_small and the 4-slice CT series, each a list of its instances."""

    info: OrthancInfo
    rest: OrthancRest
    series: dict[str, list[Dataset]]  # SeriesInstanceUID → the uploaded instances


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with running_orthanc(tmp_path / "orthanc") as info:
        rest = OrthancRest(info)
        uploaded = [[ct_small()], [mr_small()], four_slices()]
        for instances in uploaded:
            for ds in reversed(instances):  # not in spatial order: the sync must sort
                rest.upload(ds)
        yield Site(info, rest, {str(s[0].SeriesInstanceUID): s for s in uploaded})


def broken_series() -> list[Dataset]:
    """Two CT slices of a new study, the second with half its pixel data cut off (it cannot be decoded)."""
    out = ct_series(2)
    for i, ds in enumerate(out):
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("broken-study"), uid("broken-series")
        ds.SOPInstanceUID = uid("broken", str(i))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyDate = BROKEN_STUDY_DATE
        if i == 1:
            ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    return out


def uid(*parts: str) -> str:
    return str(generate_uid(PYDICOM_ROOT_UID, entropy_srcs=["\x1f".join(("ceal-sync-test", *parts))]))


def derived_counts(site: Site) -> dict[str, int]:
    """How many SEG and OT (Parametric Map) instances Orthanc holds, duplicates included."""
    counts: dict[str, int] = {}
    for modality in ("SEG", "OT"):
        response = requests.post(
            f"{site.info.http_url}/tools/find",
            json={"Level": "Instance", "Query": {"Modality": modality}},
            auth=(site.info.user, site.info.password),
            timeout=30,
        )
        response.raise_for_status()
        counts[modality] = len(response.json())
    return counts


def dciodvfy_errors(ds: Dataset, path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.fail("dciodvfy is missing: run scripts/install-system-deps (Debian package dicom3tools)")
    ds.save_as(path, enforce_file_format=True)
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def assert_no_patient_identifiers(text: str) -> None:
    for identifier in PATIENT_IDENTIFIERS:
        assert identifier not in text


def check_outputs(site: Site, report: SyncReport, address: str, tmp_path: Path) -> None:
    """One SEG and one Parametric Map per series, referencing its sources, holding what the service predicts."""
    stored = {o.series_uid: o for o in report.outcomes if o.status == "stored"}
    assert stored.keys() == site.series.keys()
    assert derived_counts(site) == {"SEG": 3, "OT": 3}
    with Client(address) as client:
        for series_uid, instances in site.series.items():
            outcome = stored[series_uid]
            seg, pmap = site.rest.download(outcome.seg_uid), site.rest.download(outcome.map_uid)
            assert (seg.Modality, seg.SegmentationType, pmap.Modality) == ("SEG", "BINARY", "OT")
            sources = {str(ds.SOPInstanceUID) for ds in instances}
            assert referenced_instances(seg) == sources and referenced_instances(pmap) == sources
            assert site.rest.sop_uids_in_series(seg.SeriesInstanceUID) == [outcome.seg_uid]
            seg_frames, map_frames = frames_by_source(seg), frames_by_source(pmap)
            for s in decode_series(instances):
                want = client.predict(s.pixels, samples=SAMPLES, seed=SEED, maps=("label_map", "entropy"))
                assert want.label_map is not None and want.entropy is not None
                np.testing.assert_array_equal(seg_frames[s.ref.sop_uid], want.label_map)
                np.testing.assert_allclose(map_frames[s.ref.sop_uid], want.entropy, rtol=1e-5, atol=1e-6)
            for kind, ds in (("seg", seg), ("map", pmap)):
                assert dciodvfy_errors(ds, tmp_path / f"{series_uid}-{kind}.dcm") == []


@pytest.mark.parametrize("wire", ["dicomweb", "dimse"])
def test_sync_stores_a_seg_and_a_map_per_series_once(
    wire: str, site: Site, server: Running, address: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the in-process server's included
    pacs: Pacs = make_pacs(wire, site.info)
    state = tmp_path / "sync-state.json"
    options = SyncOptions(pool="pacs", samples=SAMPLES, seed=SEED)
    with Client(address) as client:
        first = sync(pacs, client, options, state=state)
    assert (first.count("stored"), first.failures, first.model_tag) == (3, (), "lesion/1")
    assert json.loads(state.read_text()) == {"watermark": SERIES_STUDY_DATE}
    check_outputs(site, first, address, tmp_path)
    counts = site.rest.instance_count()

    with Client(address) as client:
        again = sync(pacs, client, options, state=state)  # from the watermark: the 4-slice series' study
        everything = sync(pacs, client, SyncOptions(pool="pacs", since="19000101", samples=SAMPLES), state=state)
    assert [(o.series_uid, o.status) for o in again.outcomes] == [(SERIES_UID, "skipped")]
    assert again.since == SERIES_STUDY_DATE and again.ignored == 2  # its own SEG and map, never processed
    assert {o.status for o in everything.outcomes} == {"skipped"} and len(everything.outcomes) == 3
    assert everything.ignored == 6
    assert site.rest.instance_count() == counts and derived_counts(site) == {"SEG": 3, "OT": 3}

    with Client(address) as client:
        listed = worklist(client, pool="pacs", annotator="dr-a")
    assert {e.series_uid for e in listed.entries} == set(site.series) and listed.unscored == 0
    assert {e.series_uid: e.slices for e in listed.entries}[SERIES_UID] == 4
    assert all(e.study_uid == site.series[e.series_uid][0].StudyInstanceUID for e in listed.entries)
    assert [e.rank for e in listed.entries] == [1, 2, 3]
    text = format_worklist(listed)
    assert all(uid in text for uid in site.series)

    assert caplog.records, "expected log records from the sync, the PACS clients and the server"
    assert_no_patient_identifiers(caplog.text + "\n".join(r.getMessage() for r in caplog.records) + text)


def test_a_broken_series_is_reported_and_the_others_are_processed(
    site: Site, server: Running, address: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    broken = broken_series()
    for ds in broken:
        site.rest.upload(ds)
    state = tmp_path / "state.json"
    pacs = make_pacs("dicomweb", site.info)
    options = SyncOptions(samples=SAMPLES, seed=SEED, fractional=True)
    with Client(address) as client:
        report = sync(pacs, client, options, state=state)
        rerun = sync(pacs, client, options, state=state)
        series = site.series[SERIES_UID]
        want = {s.ref.sop_uid: client.predict(s.pixels, samples=SAMPLES, seed=SEED) for s in decode_series(series)}
    (failed,) = report.failures
    assert failed.series_uid == broken[0].SeriesInstanceUID
    assert failed.error.startswith("while decoding: DicomDecodeError") and "pixel data" in failed.error
    assert report.count("stored") == 3 and derived_counts(site) == {"SEG": 3, "OT": 3}
    # The watermark stops at the failed series (inclusive), so the next run tries it again.
    assert report.watermark == BROKEN_STUDY_DATE == json.loads(state.read_text())["watermark"]
    assert [(o.series_uid, o.status) for o in rerun.outcomes] == [
        (broken[0].SeriesInstanceUID, "failed"),
        (SERIES_UID, "skipped"),
    ]
    assert_no_patient_identifiers(caplog.text + failed.error)

    # --fractional: the SEG holds the foreground probability, 0..255.
    seg = site.rest.download(next(o.seg_uid for o in report.outcomes if o.series_uid == SERIES_UID))
    assert (seg.SegmentationType, seg.MaximumFractionalValue) == ("FRACTIONAL", 255)
    for sop_uid, frame in frames_by_source(seg).items():
        probability = want[sop_uid].probability
        assert probability is not None
        assert np.abs(frame.astype(np.float64) - probability * 255).max() <= 1.0
    assert dciodvfy_errors(seg, tmp_path / "fractional.dcm") == []


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`ceal pacs ARGS` through this package's own parser, in this process: (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="ceal")
    register(parser.add_subparsers())
    parsed = parser.parse_args(["pacs", *args])
    code = parsed.func(parsed)
    out = capsys.readouterr()
    return code, out.out, out.err


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`ceal pacs ARGS` in a subprocess, through the installed `ceal` entry points."""
    return subprocess.run(
        [sys.executable, "-m", "ceal.cli.main", "pacs", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


def test_the_cli_syncs_reports_failures_and_lists_the_worklist(
    site: Site, server: Running, address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = tmp_path / "pacs-password"
    password.write_text(site.info.password + "\n")
    state = tmp_path / "state.json"
    common = ("--server", address, "--state", str(state), "--samples", str(SAMPLES), "--seed", str(SEED), "-v")
    web = run_cli(
        "sync",
        "--dicomweb",
        site.info.dicomweb_url,
        "--user",
        site.info.user,
        "--password-file",
        str(password),
        *common,
    )
    assert web.returncode == 0, web.stderr[-3000:]
    assert "3 series stored, 0 already done, 0 failed" in web.stdout
    assert derived_counts(site) == {"SEG": 3, "OT": 3}
    assert json.loads(state.read_text()) == {"watermark": SERIES_STUDY_DATE}

    broken = broken_series()
    for ds in broken:
        site.rest.upload(ds)
    dimse = run_cli(
        "sync",
        "--dimse",
        f"127.0.0.1:{site.info.dicom_port}",
        "--aet",
        site.info.aet,
        "--calling-aet",
        site.info.client_aet,
        "--since",
        "19000101",
        *common,
    )
    assert dimse.returncode == 1, dimse.stderr[-3000:]
    assert f"FAILED series {broken[0].SeriesInstanceUID}" in dimse.stdout
    assert "0 series stored, 3 already done, 1 failed" in dimse.stdout
    assert derived_counts(site) == {"SEG": 3, "OT": 3}

    code, listed, _ = run_in_process(capsys, "worklist", "--server", address, "--k", "5")
    assert code == 0
    header, *rows = [line.split("\t") for line in listed.splitlines()]
    assert header[:4] == ["rank", "study_uid", "series_uid", "slices"]
    assert {row[2] for row in rows} == set(site.series)
    assert {row[2]: row[3] for row in rows}[SERIES_UID] == "4"
    assert_no_patient_identifiers(listed)
    for output in (web, dimse):
        assert_no_patient_identifiers(output.stdout + output.stderr)
    assert "DEBUG" in web.stderr  # -v logged, and still no patient identifier


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dimse", "pacs-without-port", "--aet", "X"), "is not HOST:PORT"),
        (("--dimse", "pacs:104"), "--dimse needs --aet"),
        (("--dimse", "pacs:104", "--aet", "X", "--modalities", "CT,SEG"), "never synced"),
        (("--dimse", "pacs:104", "--aet", "X", "--since", "2024-01-31"), "YYYYMMDD"),
        (("--dicomweb", "http://pacs/dicom-web", "--user", "u"), "--user needs --password-file"),
        (("--dicomweb", "http://pacs/dicom-web", "--measure", "dice"), "choose one of entropy"),
    ],
)
def test_wrong_options_are_refused_before_anything_runs(
    args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_in_process(capsys, "sync", "--server", "127.0.0.1:1", *args)
    assert code == 2 and message in err
