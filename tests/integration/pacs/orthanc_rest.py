"""Orthanc's own REST API, used by the tests to upload and inspect independently of ceal.pacs."""

from __future__ import annotations

import io

import requests
from pydicom import Dataset, dcmread

from tests.integration.orthanc_server import OrthancInfo

__all__ = ["OrthancRest"]


class OrthancRest:
    """Upload, list a series' SOP Instance UIDs and download an instance, over Orthanc's REST API."""

    def __init__(self, info: OrthancInfo) -> None:
        self._url = info.http_url
        self._session = requests.Session()
        self._session.auth = (info.user, info.password)

    def upload(self, ds: Dataset) -> None:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        response = self._session.post(f"{self._url}/instances", data=buffer.getvalue(), timeout=30)
        response.raise_for_status()

    def _find_instances(self, query: dict[str, str]) -> list[str]:
        response = self._session.post(f"{self._url}/tools/find", json={"Level": "Instance", "Query": query}, timeout=30)
        response.raise_for_status()
        ids: list[str] = response.json()
        return ids

    def sop_uids_in_series(self, series_uid: str) -> list[str]:
        """Every stored instance of the series, duplicates included (so a duplicate would show)."""
        uids: list[str] = []
        for orthanc_id in self._find_instances({"SeriesInstanceUID": series_uid}):
            response = self._session.get(f"{self._url}/instances/{orthanc_id}/tags?simplify", timeout=30)
            response.raise_for_status()
            uids.append(str(response.json()["SOPInstanceUID"]))
        return uids

    def instance_count(self) -> int:
        response = self._session.get(f"{self._url}/statistics", timeout=30)
        response.raise_for_status()
        return int(response.json()["CountInstances"])

    def download(self, sop_uid: str) -> Dataset:
        """The stored file of the instance with this SOP Instance UID, read with pydicom."""
        (orthanc_id,) = self._find_instances({"SOPInstanceUID": sop_uid})
        response = self._session.get(f"{self._url}/instances/{orthanc_id}/file", timeout=30)
        response.raise_for_status()
        return dcmread(io.BytesIO(response.content))
