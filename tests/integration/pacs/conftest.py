"""Fixtures for the PACS bridge tests against the session's real Orthanc (tests/integration/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydicom import Dataset

from ceal.pacs.sources import DicomWebPacs, DimsePacs, Pacs
from tests.integration.orthanc_server import OrthancInfo
from tests.integration.pacs.orthanc_rest import OrthancRest
from tests.integration.pacs.samples import ct_series, ct_small, mr_small


@dataclass(frozen=True)
class Samples:
    """What the tests uploaded: CT_small, MR_small and the 4-slice CT series (ascending z)."""

    ct: Dataset
    mr: Dataset
    series: list[Dataset]


@pytest.fixture(scope="session")
def orthanc_rest(orthanc: OrthancInfo) -> OrthancRest:
    return OrthancRest(orthanc)


@pytest.fixture(scope="session")
def samples(orthanc_rest: OrthancRest) -> Samples:
    """Upload the samples through Orthanc's REST API (not through ceal.pacs), the series in shuffled order."""
    uploaded = Samples(ct=ct_small(), mr=mr_small(), series=ct_series())
    for ds in [uploaded.ct, uploaded.mr, *(uploaded.series[i] for i in (2, 0, 3, 1))]:
        orthanc_rest.upload(ds)
    return uploaded


def make_pacs(kind: str, orthanc: OrthancInfo) -> Pacs:
    if kind == "dicomweb":
        return DicomWebPacs(orthanc.dicomweb_url, orthanc.user, orthanc.password, timeout_s=30)
    return DimsePacs("127.0.0.1", orthanc.dicom_port, orthanc.aet, orthanc.client_aet, timeout_s=30)


@pytest.fixture(params=["dicomweb", "dimse"])
def pacs(request: pytest.FixtureRequest, orthanc: OrthancInfo, samples: Samples) -> Pacs:
    """Each test runs once over DICOMweb and once over DIMSE, with the samples uploaded."""
    return make_pacs(str(request.param), orthanc)
