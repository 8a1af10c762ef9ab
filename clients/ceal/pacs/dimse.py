"""`DimsePacs`: the `Pacs` protocol over DIMSE with pynetdicom (classic DICOM networking).

C-FIND in the Study Root information model (STUDY, then SERIES, then IMAGE level), C-GET for retrieval
(we take the Storage SCP role on the same association, so the PACS needs no route back to us), or C-MOVE where
the PACS allows only that (`move_port`: we listen there as a Storage SCP for the instances the PACS sends to
our AE title, which the PACS must know with our host and that port), C-STORE to send. The PACS must know our
calling AE title (and usually our host) and allow these services. DICOM TLS (PS3.15 B.1, the secure transport
profile): `tls_ca` trusts the PACS's certificate authority, `tls_cert` / `tls_key` present ours when the PACS
asks for one; every association then runs over TLS 1.2 or later.
One association per operation; a refused or lost association is `PacsUnavailableError`, a failure status
`PacsRequestError`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association

from ceal.pacs.errors import PacsRequestError, PacsUnavailableError
from ceal.pacs.protocol import SeriesInfo, check_since

__all__ = ["DimsePacs"]

_log = logging.getLogger(__name__)

# Study Root Query/Retrieve Information Model FIND and GET (pynetdicom's sop_class names are dynamic).
_STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
_STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
_STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
_PENDING = (0xFF00, 0xFF01)
_SUCCESS = 0x0000
_UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
_MAX_STORAGE_CONTEXTS = 127  # 128 presentation contexts per association, one of them for C-GET itself


def _text(ds: Dataset | None, keyword: str) -> str:
    value = None if ds is None else ds.get(keyword)
    return "" if value is None else str(value)


def _tls_context(ca: Path | None, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """A client TLS context: verify the PACS against `ca` (the system's CAs without one), present `cert`."""
    if (cert is None) != (key is None):
        raise PacsRequestError("DICOM TLS needs both --tls-cert and --tls-key, or neither")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert is not None and key is not None:
            context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise PacsRequestError(f"cannot load the DICOM TLS files ({exc}): pass PEM certificate and key files") from exc
    return context


class DimsePacs:
    """A PACS reached over DIMSE at `host`:`port` as `called_aet`, calling from `calling_aet`; with
    `move_port`, series are retrieved by C-MOVE to `calling_aet`, received on `move_host`:`move_port`; with
    `tls_ca` (and `tls_cert` / `tls_key`), over DICOM TLS."""

    def __init__(
        self,
        host: str,
        port: int,
        called_aet: str,
        calling_aet: str = "CEAL",
        *,
        timeout_s: float = 60.0,
        move_port: int | None = None,
        move_host: str = "0.0.0.0",
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._called_aet, self._calling_aet = called_aet, calling_aet
        self._timeout_s = timeout_s
        self._move = (move_host, move_port) if move_port else None
        self._tls = _tls_context(tls_ca, tls_cert, tls_key) if (tls_ca or tls_cert) else None

    def _ae(self) -> AE:
        ae = AE(ae_title=self._calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self._timeout_s
        return ae

    @contextmanager
    def _association(self, ae: AE, **kwargs: Any) -> Iterator[Association]:
        if self._tls is not None:
            kwargs["tls_args"] = (self._tls, self._host)
        assoc = ae.associate(self._host, self._port, ae_title=self._called_aet, **kwargs)
        if not assoc.is_established:
            how = "rejected" if assoc.is_rejected else "not established"
            tls = " (over TLS: check the CA and our certificate too)" if self._tls is not None else ""
            raise PacsUnavailableError(
                f"association with {self._called_aet} at {self._host}:{self._port} was {how}{tls}: check host, "
                f"port and called AE title, and that the PACS knows calling AE title {self._calling_aet}"
            )
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _find(self, identifier: Dataset) -> list[Dataset]:
        """C-FIND (Study Root) with `identifier`; the matches, in the order the PACS sent them."""
        ae = self._ae()
        ae.add_requested_context(_STUDY_ROOT_FIND)
        matches: list[Dataset] = []
        with self._association(ae) as assoc:
            for status, match in assoc.send_c_find(identifier, _STUDY_ROOT_FIND):
                code = status.get("Status") if status else None
                if code in _PENDING and match is not None:
                    matches.append(match)
                elif code == _SUCCESS:
                    break
                elif code is None:
                    raise PacsUnavailableError(
                        f"C-FIND got no answer within {self._timeout_s:.0f} s or the association dropped: "
                        "check the PACS and raise timeout_s"
                    )
                else:
                    raise PacsRequestError(
                        f"C-FIND at {identifier.QueryRetrieveLevel} level failed with status 0x{code:04X}"
                    )
        return matches

    def find_series(self, since: str | None = None) -> list[SeriesInfo]:
        """Studies dated `since` or later (C-FIND STUDY), then each study's series (C-FIND SERIES)."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        query.AccessionNumber = ""
        query.StudyDate = "" if check_since(since) is None else f"{since}-"
        infos: list[SeriesInfo] = []
        for study in self._find(query):
            series_query = Dataset()
            series_query.QueryRetrieveLevel = "SERIES"
            series_query.StudyInstanceUID = _text(study, "StudyInstanceUID")
            series_query.SeriesInstanceUID = ""
            series_query.Modality = ""
            series_query.SeriesDescription = ""
            series_query.NumberOfSeriesRelatedInstances = ""
            for series in self._find(series_query):
                count = series.get("NumberOfSeriesRelatedInstances")
                infos.append(
                    SeriesInfo(
                        study_uid=series_query.StudyInstanceUID,
                        series_uid=_text(series, "SeriesInstanceUID"),
                        modality=_text(series, "Modality"),
                        watermark=_text(study, "StudyDate"),
                        series_description=_text(series, "SeriesDescription"),
                        accession=_text(study, "AccessionNumber"),
                        instance_count=int(count) if count not in (None, "") else None,
                    )
                )
        _log.debug("C-FIND found %d series", len(infos))
        return infos

    def _instances(self, study_uid: str, series_uid: str) -> list[Dataset]:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        query.SOPInstanceUID = ""
        query.SOPClassUID = ""
        return self._find(query)

    def retrieve_series(self, info: SeriesInfo) -> list[Dataset]:
        """C-GET (or C-MOVE, see the class) of the series; the PACS sends each instance back as a C-STORE."""
        sop_classes = sorted({_text(ds, "SOPClassUID") for ds in self._instances(info.study_uid, info.series_uid)})
        sop_classes = [uid for uid in sop_classes if uid][:_MAX_STORAGE_CONTEXTS]
        if not sop_classes:
            raise PacsRequestError("C-FIND found no instances in the series: check that it still exists")
        if self._move is not None:
            return self._c_move(info, sop_classes)
        ae = self._ae()
        ae.add_requested_context(_STUDY_ROOT_GET)
        for uid in sop_classes:
            ae.add_requested_context(uid, _UNCOMPRESSED)
        received, on_store = _collector()

        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = info.study_uid
        query.SeriesInstanceUID = info.series_uid
        roles = [build_role(uid, scp_role=True) for uid in sop_classes]
        with self._association(ae, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            for status, _ in assoc.send_c_get(query, _STUDY_ROOT_GET):
                code = status.get("Status") if status else None
                if code in _PENDING:
                    continue
                if code == _SUCCESS:
                    break
                if code is None:
                    raise PacsUnavailableError(
                        f"C-GET got no answer within {self._timeout_s:.0f} s or the association dropped: "
                        "check the PACS and raise timeout_s"
                    )
                failed = status.get("NumberOfFailedSuboperations", "?")
                raise PacsRequestError(
                    f"C-GET failed with status 0x{code:04X} ({failed} instance(s) not sent): check that the "
                    "PACS allows C-GET for this AE title and can send these SOP classes uncompressed"
                )
        _log.debug("C-GET retrieved %d instance(s)", len(received))
        return received

    def _c_move(self, info: SeriesInfo, sop_classes: Sequence[str]) -> list[Dataset]:
        """C-MOVE the series to our own AE title; a Storage SCP on `move_port` receives it meanwhile."""
        assert self._move is not None
        received, on_store = _collector()

        scp = self._ae()
        for uid in sop_classes:
            scp.add_supported_context(uid, _UNCOMPRESSED)
        try:
            server = scp.start_server(self._move, block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
        except OSError as exc:
            raise PacsUnavailableError(
                f"cannot listen on {self._move[0]}:{self._move[1]} for C-MOVE results ({exc.strerror}): "
                "pass a free --move-port"
            ) from exc
        try:
            ae = self._ae()
            ae.add_requested_context(_STUDY_ROOT_MOVE)
            query = Dataset()
            query.QueryRetrieveLevel = "SERIES"
            query.StudyInstanceUID = info.study_uid
            query.SeriesInstanceUID = info.series_uid
            with self._association(ae) as assoc:
                for status, _ in assoc.send_c_move(query, self._calling_aet, _STUDY_ROOT_MOVE):
                    code = status.get("Status") if status else None
                    if code in _PENDING:
                        continue
                    if code == _SUCCESS:
                        break
                    if code is None:
                        raise PacsUnavailableError(
                            f"C-MOVE got no answer within {self._timeout_s:.0f} s or the association dropped"
                        )
                    raise PacsRequestError(
                        f"C-MOVE failed with status 0x{code:04X}: check that the PACS knows AE title "
                        f"{self._calling_aet} with this host and port {self._move[1]} as a move destination"
                    )
        finally:
            if server is not None:
                server.shutdown()
        _log.debug("C-MOVE retrieved %d instance(s)", len(received))
        return received

    def store(self, datasets: Sequence[Dataset]) -> None:
        """C-STORE each instance, offering its own transfer syntax plus the uncompressed ones."""
        if not datasets:
            return
        contexts: dict[str, set[str]] = {}
        for ds in datasets:
            syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            if syntax is None:
                raise PacsRequestError(
                    "an instance to store has no file meta Transfer Syntax UID: set ds.file_meta "
                    "(instances read from files and highdicom objects have it)"
                )
            contexts.setdefault(str(ds.SOPClassUID), set(_UNCOMPRESSED)).add(str(syntax))
        if len(contexts) > _MAX_STORAGE_CONTEXTS + 1:
            raise PacsRequestError("more than 128 SOP classes in one store: split the instances into batches")
        ae = self._ae()
        for uid, syntaxes in contexts.items():
            ae.add_requested_context(uid, sorted(syntaxes))
        with self._association(ae) as assoc:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                code = status.get("Status") if status else None
                if code is None:
                    raise PacsUnavailableError(
                        "C-STORE got no answer or the association dropped: check the PACS and raise timeout_s"
                    )
                if code != _SUCCESS and (code & 0xF000) != 0xB000:  # 0xBxxx: stored, with a warning
                    raise PacsRequestError(
                        f"C-STORE failed with status 0x{code:04X}: check that the PACS accepts "
                        f"SOP class {ds.SOPClassUID} from this AE title"
                    )
        _log.debug("C-STORE sent %d instance(s)", len(datasets))

    def has_derived(self, series_uid: str, sop_uids: Sequence[str]) -> bool:
        """C-FIND the series' study, then its instances: does it hold all of `sop_uids` (any, if empty)?"""
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = ""
        query.SeriesInstanceUID = series_uid
        studies = {_text(ds, "StudyInstanceUID") for ds in self._find(query)} - {""}
        present = {
            _text(ds, "SOPInstanceUID") for study_uid in studies for ds in self._instances(study_uid, series_uid)
        }
        return set(sop_uids) <= present if sop_uids else bool(present)


def _collector() -> tuple[list[Dataset], Callable[[evt.Event], int]]:
    """A C-STORE handler that keeps each received instance (with its file meta) in the returned list."""
    received: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return _SUCCESS

    return received, on_store
