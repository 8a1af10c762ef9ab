"""`DicomWebPacs`: the `Pacs` protocol over DICOMweb (QIDO-RS find, WADO-RS retrieve, STOW-RS store).

Uses dicomweb-client with a requests Session carrying HTTP basic authentication or a bearer token (OAuth 2 /
OpenID Connect access token, as DICOMweb servers behind an identity provider want), and, for HTTPS with a
hospital's own certificate authority, that CA's bundle. HTTP and connection errors
become `PacsUnavailableError` (cannot reach / not allowed) or `PacsRequestError` (the PACS said no).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import Dataset

from ceal.pacs.errors import PacsRequestError, PacsUnavailableError
from ceal.pacs.protocol import SeriesInfo, check_since

__all__ = ["DicomWebPacs"]

_log = logging.getLogger(__name__)

_SERIES_FIELDS = ("Modality", "StudyDate", "SeriesDescription", "NumberOfSeriesRelatedInstances", "AccessionNumber")
_PAGE = 500


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn requests' errors into the bridge's, naming the action and HTTP status (never patient data)."""
    try:
        yield
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            raise PacsUnavailableError(
                f"DICOMweb {action} was refused (HTTP {status}): check the PACS user and password, or the token"
            ) from error
        raise PacsRequestError(f"DICOMweb {action} failed with HTTP {status}") from error
    except requests.exceptions.SSLError as error:
        raise PacsUnavailableError(
            f"DICOMweb {action}: the PACS's TLS certificate is not trusted; pass its CA bundle (--ca-file)"
        ) from error
    except (requests.ConnectionError, requests.Timeout) as error:
        raise PacsUnavailableError(
            f"DICOMweb {action}: cannot reach the PACS ({type(error).__name__}); check the URL and the server"
        ) from error


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value)


class DicomWebPacs:
    """A PACS reached over DICOMweb at `url` (e.g. "http://orthanc:8042/dicom-web"), with basic auth (`user`,
    `password`) or a bearer `token`; `ca_file` is the CA bundle that signed an HTTPS PACS's certificate."""

    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        timeout_s: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        if token and user is not None:
            raise PacsRequestError("DICOMweb takes a user and password or a bearer token, not both: pass one")
        self._session = session or requests.Session()
        if user is not None:
            self._session.auth = (user, password or "")
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        if ca_file:
            self._session.verify = ca_file
        self._client = DICOMwebClient(url=url.rstrip("/"), session=self._session, timeout=timeout_s)

    def _search(self, search: Callable[..., list[dict[str, Any]]], **kwargs: Any) -> list[Dataset]:
        """Every page of a QIDO-RS search, parsed into Datasets."""
        found: list[Dataset] = []
        while True:
            page = search(limit=_PAGE, offset=len(found), **kwargs)
            found.extend(Dataset.from_json(item) for item in page)
            if len(page) < _PAGE:
                return found

    def find_series(self, since: str | None = None) -> list[SeriesInfo]:
        """QIDO-RS /series, filtered on StudyDate `since`- when given (see `ceal.pacs.protocol`)."""
        filters = {} if check_since(since) is None else {"StudyDate": f"{since}-"}
        with _translated("series search"):
            rows = self._search(self._client.search_for_series, fields=_SERIES_FIELDS, search_filters=filters)
        infos = [
            SeriesInfo(
                study_uid=_text(ds, "StudyInstanceUID"),
                series_uid=_text(ds, "SeriesInstanceUID"),
                modality=_text(ds, "Modality"),
                watermark=_text(ds, "StudyDate"),
                series_description=_text(ds, "SeriesDescription"),
                accession=_text(ds, "AccessionNumber"),
                instance_count=int(ds.NumberOfSeriesRelatedInstances)
                if ds.get("NumberOfSeriesRelatedInstances") not in (None, "")
                else None,
            )
            for ds in rows
        ]
        _log.debug("QIDO-RS found %d series", len(infos))
        return infos

    def retrieve_series(self, info: SeriesInfo) -> list[Dataset]:
        """WADO-RS retrieve of the whole series (the PACS's default transfer syntax)."""
        with _translated("series retrieve"):
            datasets = list(self._client.retrieve_series(info.study_uid, info.series_uid))
        if not datasets:
            raise PacsRequestError("WADO-RS returned no instances for the series: check that it still exists")
        _log.debug("WADO-RS retrieved %d instance(s)", len(datasets))
        return datasets

    def store(self, datasets: Sequence[Dataset]) -> None:
        """STOW-RS; raises `PacsRequestError` if the PACS lists any instance as failed."""
        if not datasets:
            return
        with _translated("store"):
            response = self._client.store_instances(list(datasets))
        failed = response.get("FailedSOPSequence") if response is not None else None
        if failed:
            reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
            raise PacsRequestError(
                f"STOW-RS refused {len(failed)} of {len(datasets)} instance(s) (failure reasons {reasons}): "
                "check that the PACS accepts these SOP classes"
            )
        _log.debug("STOW-RS stored %d instance(s)", len(datasets))

    def has_derived(self, series_uid: str, sop_uids: Sequence[str]) -> bool:
        """QIDO-RS /instances?SeriesInstanceUID=…: does the series hold all of `sop_uids` (any, if empty)?"""
        with _translated("instance search"):
            rows = self._search(
                self._client.search_for_instances,
                fields=("SOPInstanceUID",),
                search_filters={"SeriesInstanceUID": series_uid},
            )
        present = {_text(ds, "SOPInstanceUID") for ds in rows}
        return set(sop_uids) <= present if sop_uids else bool(present)
