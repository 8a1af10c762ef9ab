"""DICOM TLS: the DIMSE bridge finds and retrieves over TLS from an Orthanc that accepts TLS only, with mutual
authentication (our certificate signed by the CA Orthanc trusts); without the right CA it is unavailable."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ceal.pacs.decode import decode_series
from ceal.pacs.errors import PacsUnavailableError
from ceal.pacs.sources import DimsePacs
from tests.integration.hardening.certs import Certs, make_certs
from tests.integration.orthanc_server import (
    CLIENT_AET,
    ORTHANC_AET,
    ORTHANC_BINARY,
    _free_ports,
    _stop,
    _system_answers,
    orthanc_config,
    require_orthanc,
)
from tests.integration.pacs.orthanc_rest import OrthancRest
from tests.integration.pacs.samples import ct_series

pytestmark = [pytest.mark.orthanc, pytest.mark.slow]


@pytest.fixture
def tls_orthanc(tmp_path: Path) -> Iterator[tuple[int, Certs, OrthancRest]]:
    """An Orthanc whose DICOM port speaks TLS only and wants a client certificate; (port, certs, REST)."""
    require_orthanc()
    certs = make_certs(tmp_path / "certs")
    http_port, dicom_port, store_port = _free_ports(3)
    root = tmp_path / "orthanc"
    for sub in ("storage", "index", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    config = orthanc_config(
        root, http_port=http_port, dicom_port=dicom_port, client_store_port=store_port, user="ceal", password="pw"
    )
    config.update(
        {
            "DicomTlsEnabled": True,
            "DicomTlsCertificate": str(certs.server_cert),
            "DicomTlsPrivateKey": str(certs.server_key),
            "DicomTlsTrustedCertificates": str(certs.ca),
            "DicomTlsRemoteCertificateRequired": True,
        }
    )
    (root / "orthanc.json").write_text(json.dumps(config))
    with (root / "orthanc.log").open("wb") as log:
        process = subprocess.Popen([str(ORTHANC_BINARY), str(root / "orthanc.json")], stdout=log, stderr=log, cwd=root)
    try:
        deadline = time.monotonic() + 60
        while not _system_answers(f"http://127.0.0.1:{http_port}", "ceal", "pw"):
            assert process.poll() is None and time.monotonic() < deadline, (root / "orthanc.log").read_text()[-2000:]
            time.sleep(0.1)
        from tests.integration.orthanc_server import OrthancInfo

        info = OrthancInfo(f"http://127.0.0.1:{http_port}", "", "ceal", "pw", dicom_port, ORTHANC_AET)
        yield dicom_port, certs, OrthancRest(info)
    finally:
        _stop(process)


def test_find_and_retrieve_over_dicom_tls(tls_orthanc: tuple[int, Certs, OrthancRest]) -> None:
    port, certs, rest = tls_orthanc
    series = ct_series()
    for ds in series:
        rest.upload(ds)
    pacs = DimsePacs(
        "127.0.0.1",
        port,
        ORTHANC_AET,
        CLIENT_AET,
        timeout_s=20,
        tls_ca=certs.ca,
        tls_cert=certs.client_cert,
        tls_key=certs.client_key,
    )
    (info,) = [i for i in pacs.find_series() if i.series_uid == str(series[0].SeriesInstanceUID)]
    retrieved = pacs.retrieve_series(info)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(ds.SOPInstanceUID for ds in series)
    assert len(decode_series(retrieved)) == len(series)
    plain = DimsePacs("127.0.0.1", port, ORTHANC_AET, CLIENT_AET, timeout_s=5)
    with pytest.raises(PacsUnavailableError):
        plain.find_series()
    wrong_ca = DimsePacs(
        "127.0.0.1",
        port,
        ORTHANC_AET,
        CLIENT_AET,
        timeout_s=5,
        tls_ca=certs.other_ca,
        tls_cert=certs.client_cert,
        tls_key=certs.client_key,
    )
    with pytest.raises(PacsUnavailableError, match="over TLS"):
        wrong_ca.find_series()
