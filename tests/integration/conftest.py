"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.orthanc_server import OrthancInfo, OrthancUnavailableError, running_orthanc

# ── Orthanc (PACS bridge tests) ─────────────────────────────────────────────────────────────────────────────
# One real Orthanc per test session, on free 127.0.0.1 ports with its own storage (see orthanc_server.py).
# A missing Orthanc FAILS the test (never skips): the suite must not pass silently on a machine without it.


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancInfo]:
    """A running Orthanc with DICOMweb, HTTP basic auth and a registered DIMSE modality for our client AE."""
    try:
        with running_orthanc(tmp_path_factory.mktemp("orthanc")) as info:
            yield info
    except OrthancUnavailableError as error:
        pytest.fail(f"Orthanc is unavailable: {error}", pytrace=False)


# ── end Orthanc ─────────────────────────────────────────────────────────────────────────────────────────────
