"""The test Orthanc helper itself: its configuration, and a clear failure when Orthanc is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import orthanc_server
from tests.integration.orthanc_server import OrthancUnavailableError, orthanc_config, running_orthanc


def test_missing_orthanc_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(orthanc_server, "ORTHANC_BINARY", tmp_path / "no-such-Orthanc")
    with (
        pytest.raises(OrthancUnavailableError, match="run scripts/install-system-deps"),
        running_orthanc(tmp_path),
    ):
        pytest.fail("must not start")


def test_config_has_auth_dicomweb_and_our_modality(tmp_path: Path) -> None:
    config = orthanc_config(tmp_path, http_port=1, dicom_port=2, client_store_port=3, user="u", password="p")
    assert config["AuthenticationEnabled"] is True and config["RegisteredUsers"] == {"u": "p"}
    assert config["RemoteAccessAllowed"] is False
    dicomweb = config["DicomWeb"]
    assert isinstance(dicomweb, dict) and dicomweb["Enable"] is True and "Host" not in dicomweb
    modalities = config["DicomModalities"]
    assert isinstance(modalities, dict)
    (client,) = modalities.values()
    assert client["AET"] == orthanc_server.CLIENT_AET and client["Host"] == "127.0.0.1" and client["Port"] == 3
    assert all(client[k] for k in ("AllowFind", "AllowGet", "AllowMove", "AllowStore"))
    assert str(tmp_path) in str(config["StorageDirectory"]) and str(tmp_path) in str(config["IndexDirectory"])
