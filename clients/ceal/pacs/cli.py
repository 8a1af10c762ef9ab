"""`ceal pacs sync` and `ceal pacs worklist`: the PACS bridge on the command line.

    ceal pacs sync [--server ADDR] (--dicomweb URL --user U --password-file F | --dimse HOST:PORT --aet A
                   --calling-aet B) [--since YYYYMMDD] [--state FILE] [--pool NAME] [--fractional]
                   [--modalities CT,MR]
    ceal pacs labels [--server ADDR] (--dicomweb URL … | --dimse HOST:PORT …) [--since YYYYMMDD] [--pool NAME]
                     [--model NAME] [--class-map FILE] [--uid-root ROOT]
    ceal pacs worklist [--server ADDR] [--strategy ceal] [--k 10] [--annotator NAME]

All take the connection flags of every client command (--token/--token-file, --tls, --tls-ca,
--tls-cert/--tls-key; $CEAL_SERVER and $CEAL_TOKEN), see `ceal.client.connect`; the PACS's own are
--pacs-token-file / --pacs-ca-file (DICOMweb) and --dicom-tls-ca / --dicom-tls-cert / --dicom-tls-key (DIMSE).

`labels` brings radiologists' DICOM SEGs back as human labels (`ceal.pacs.labels`); `sync` runs the same step
after predicting unless `--no-labels`.

`sync` exits 0 when every series is done, 1 when any failed (after a summary naming each), 2 when it cannot
start. Heavy imports (pydicom, highdicom, pynetdicom) wait until a command runs; `ceal` without the pacs extra
lists this command as unavailable and names the extra.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ceal.pacs.labels import LabelsReport
    from ceal.pacs.protocol import Pacs

_NEEDS = ("pydicom", "pynetdicom", "highdicom", "dicomweb_client")
if any(find_spec(name) is None for name in _NEEDS):
    raise ImportError(f"the PACS bridge needs {', '.join(_NEEDS)}")

from ceal.client.connect import add_connection_arguments, client_options  # noqa: E402 - after the check

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pacs", help="sync series with a PACS (SEG + uncertainty maps back) and list what to label")
    actions = p.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    _add_sync(actions)
    _add_labels(actions)
    _add_worklist(actions)


def _add_wire(s: argparse.ArgumentParser) -> None:
    add_connection_arguments(s)
    wire = s.add_mutually_exclusive_group(required=True)
    wire.add_argument("--dicomweb", metavar="URL", help="DICOMweb root, e.g. http://pacs:8042/dicom-web")
    wire.add_argument("--dimse", metavar="HOST:PORT", help="DIMSE (C-FIND / C-GET / C-STORE) address")
    s.add_argument("--user", help="DICOMweb user (HTTP basic authentication)")
    s.add_argument("--password-file", type=Path, help="file holding the DICOMweb password (first line)")
    s.add_argument("--pacs-token-file", type=Path, help="file holding a DICOMweb bearer token (first line)")
    s.add_argument("--pacs-ca-file", type=Path, help="CA bundle that signed the PACS's HTTPS certificate")
    s.add_argument("--aet", help="the PACS's AE title (DIMSE)")
    s.add_argument("--calling-aet", default="CEAL", help="our AE title, as the PACS knows it (DIMSE)")
    s.add_argument("--move-port", type=int, help="retrieve by C-MOVE, receiving on this port (default: C-GET)")
    s.add_argument("--dicom-tls-ca", type=Path, help="DICOM TLS: the CA that signed the PACS's certificate (DIMSE)")
    s.add_argument("--dicom-tls-cert", type=Path, help="DICOM TLS: our certificate, when the PACS asks for one")
    s.add_argument("--dicom-tls-key", type=Path, help="DICOM TLS: the key of --dicom-tls-cert")


def _add_label_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("--class-map", type=Path, help="JSON: class name → SEG codes, when the PACS's codes differ")
    s.add_argument("--uid-root", default="", help="the hospital's UID root for what ceal writes (default pydicom's)")


def _add_labels(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = actions.add_parser("labels", help="import radiologists' DICOM SEGs from the PACS as human labels")
    _add_wire(s)
    s.add_argument("--since", metavar="YYYYMMDD", help="SEGs of studies dated this day or later")
    s.add_argument("--pool", default="", help="pool the labels go to (default: the server's)")
    s.add_argument("--model", default="", help="model whose class names the segments map to (default: the only)")
    _add_label_options(s)
    s.add_argument("-v", "--verbose", action="store_true", help="log every step (DEBUG)")
    s.set_defaults(func=run_labels)


def _add_sync(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = actions.add_parser("sync", help="predict new series and store DICOM SEG + Parametric Map in the PACS")
    _add_wire(s)
    s.add_argument("--since", metavar="YYYYMMDD", help="sync studies dated this day or later (overrides --state)")
    s.add_argument("--state", type=Path, help="JSON file keeping the watermark between runs")
    s.add_argument("--lookback-days", type=int, default=0, help="start this many days before the stored watermark")
    s.add_argument("--pool", default="", help="pool to register the slices in (default: the server's)")
    s.add_argument("--fractional", action="store_true", help="FRACTIONAL (probability) SEG instead of BINARY")
    s.add_argument("--labelmap", action="store_true", help="multi-class models: one LABELMAP SEG (DICOM 2024)")
    s.add_argument("--modalities", default="CT,MR", help="comma-separated modalities to sync (default CT,MR)")
    s.add_argument("--model", default="", help="model name (default: the server's only model)")
    s.add_argument("--samples", type=int, default=0, help="Monte-Carlo samples T (default: the server's)")
    s.add_argument("--seed", type=int, default=None, help="seed the Monte-Carlo samples (reproducible outputs)")
    s.add_argument("--measure", default="entropy", help="uncertainty map: entropy, mutual_information, variance")
    s.add_argument("--no-labels", action="store_true", help="do not import radiologists' SEGs as labels")
    s.add_argument("--results-dicomweb", metavar="URL", help="store SEG + map in this DICOMweb PACS instead")
    s.add_argument("--results-dimse", metavar="HOST:PORT", help="store SEG + map in this DIMSE PACS instead")
    s.add_argument("--results-aet", help="AE title of the --results-dimse PACS")
    s.add_argument("--study", default="", help="only this Study Instance UID")
    s.add_argument("--accession", default="", help="only the study with this Accession Number")
    s.add_argument("--series-description", default="", help="only series whose description contains this")
    s.add_argument("--dry-run", action="store_true", help="list what would be synced; predict and store nothing")
    s.add_argument(
        "--content-qualification",
        default="RESEARCH",
        choices=("RESEARCH", "PRODUCT", "SERVICE"),
        help="what ceal's objects are marked fit for (default RESEARCH)",
    )
    _add_label_options(s)
    s.add_argument("-v", "--verbose", action="store_true", help="log every step (DEBUG)")
    s.set_defaults(func=run_sync)


def _add_worklist(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = actions.add_parser("worklist", help="the studies and series a radiologist should open next")
    add_connection_arguments(w)
    w.add_argument("--strategy", default="ceal", help="selection strategy (default ceal)")
    w.add_argument("--k", type=int, default=10, help="how many series to list")
    w.add_argument("--annotator", default="", help="lease the listed series to this annotator")
    w.add_argument("--pool", default="", help="pool (default: the server's)")
    w.add_argument("--no-score", action="store_true", help="do not score unscored images first")
    w.set_defaults(func=run_worklist)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not verbose:
        logging.getLogger("ceal").setLevel(logging.INFO)


def _pacs(args: argparse.Namespace) -> Pacs:
    """The `Pacs` the arguments describe; raises `SyncError` saying which argument is missing or wrong."""
    from ceal.pacs.sources import DicomWebPacs, DimsePacs
    from ceal.pacs.sync import SyncError

    if args.dicomweb:
        if args.user and not args.password_file:
            raise SyncError("--user needs --password-file (a file holding the password)")
        if args.user and args.pacs_token_file:
            raise SyncError("pass --user/--password-file or --pacs-token-file, not both")
        password = _first_line(args.password_file, "--password-file") if args.password_file else None
        token = _first_line(args.pacs_token_file, "--pacs-token-file").strip() if args.pacs_token_file else None
        if args.pacs_ca_file and not args.pacs_ca_file.is_file():
            raise SyncError(f"--pacs-ca-file {args.pacs_ca_file} is not a file: pass the PEM bundle of the PACS's CA")
        ca = str(args.pacs_ca_file) if args.pacs_ca_file else None
        return DicomWebPacs(args.dicomweb, args.user, password, token=token, ca_file=ca)
    host, _, port = str(args.dimse).rpartition(":")
    if not host or not port.isdigit():
        raise SyncError(f"--dimse {args.dimse!r} is not HOST:PORT (e.g. pacs.example.org:104)")
    if not args.aet:
        raise SyncError("--dimse needs --aet, the PACS's AE title")
    return DimsePacs(
        host,
        int(port),
        args.aet,
        args.calling_aet,
        move_port=args.move_port,
        tls_ca=args.dicom_tls_ca,
        tls_cert=args.dicom_tls_cert,
        tls_key=args.dicom_tls_key,
    )


def _destination(args: argparse.Namespace) -> Pacs | None:
    """The PACS the results go to when it is not the source (same credentials and TLS files), or None."""
    if not (args.results_dicomweb or args.results_dimse):
        return None
    if args.results_dicomweb and args.results_dimse:
        from ceal.pacs.sync import SyncError

        raise SyncError("pass --results-dicomweb or --results-dimse, not both")
    return _pacs(
        argparse.Namespace(
            **{
                **vars(args),
                "dicomweb": args.results_dicomweb,
                "dimse": args.results_dimse,
                "aet": args.results_aet or args.aet,
                "move_port": None,
            }
        )
    )


def _first_line(path: Path, flag: str) -> str:
    from ceal.pacs.sync import SyncError

    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SyncError(f"cannot read {flag} {path}: {exc.strerror}") from exc
    return lines[0] if lines else ""


def run_sync(args: argparse.Namespace) -> int:
    from ceal.client import CealError, Client
    from ceal.pacs.errors import PacsError
    from ceal.pacs.protocol import check_since
    from ceal.pacs.sync import SyncOptions, sync

    _configure_logging(args.verbose)
    try:
        options = SyncOptions(
            pool=args.pool,
            since=check_since(args.since),
            lookback_days=args.lookback_days,
            modalities=frozenset(args.modalities.split(",")),
            fractional=args.fractional,
            model=args.model,
            samples=args.samples,
            seed=args.seed,
            measure=args.measure,
            labels=not args.no_labels,
            study=args.study,
            accession=args.accession,
            series_description=args.series_description,
            dry_run=args.dry_run,
            uid_root=args.uid_root,
            content_qualification=args.content_qualification,
            class_map=args.class_map,
            labelmap=args.labelmap,
        )
        pacs = _pacs(args)
        destination = _destination(args)
        connection = client_options(args)
    except (PacsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with Client(**connection) as client:
            report = sync(pacs, client, options, state=args.state, progress=True, destination=destination)
    except (PacsError, CealError) as exc:
        print(f"error: the sync could not run: {exc}", file=sys.stderr)
        return 1
    for failed in report.failures:
        print(f"FAILED series {failed.series_uid} (study {failed.study_uid}) {failed.error}")
    if report.planned:
        for info in report.planned:
            print(f"would sync series {info.series_uid} ({info.modality}, study {info.study_uid})")
    print(report.summary())
    if report.labels is not None:
        _print_labels(report.labels)
    if report.watermark is not None:
        print(f"watermark: {report.watermark}" + (f" (saved to {args.state})" if args.state else ""))
    return 1 if report.failures else 0


def _print_labels(report: LabelsReport) -> None:
    for o in report.failures:
        print(f"{o.status.upper()} SEG {o.seg_uid} (series {o.series_uid or '?'}): {o.message}")
    print(report.summary())


def run_labels(args: argparse.Namespace) -> int:
    from ceal.client import CealError, Client
    from ceal.pacs.errors import PacsError
    from ceal.pacs.labels import import_labels
    from ceal.pacs.protocol import check_since
    from ceal.pacs.sync import model_classes, model_params

    _configure_logging(args.verbose)
    try:
        since = check_since(args.since)
        pacs = _pacs(args)
        connection = client_options(args)
    except (PacsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with Client(**connection) as client:
            classes = model_classes(client, args.model, args.class_map)
            params = model_params(client, args.model)
            report = import_labels(
                pacs, client, classes, pool=args.pool, since=since, uid_root=args.uid_root or None, params=params
            )
    except (PacsError, CealError) as exc:
        print(f"error: the label import could not run: {exc}", file=sys.stderr)
        return 1
    _print_labels(report)
    return 1 if report.count("failed") else 0


def run_worklist(args: argparse.Namespace) -> int:
    from ceal.client import CealError, Client
    from ceal.pacs.worklist import format_worklist, worklist

    try:
        with Client(**client_options(args)) as client:
            wl = worklist(
                client,
                strategy=args.strategy,
                k=args.k,
                annotator=args.annotator,
                pool=args.pool,
                score=not args.no_score,
            )
    except (CealError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_worklist(wl))
    return 0
