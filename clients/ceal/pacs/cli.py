"""`ceal pacs sync` and `ceal pacs worklist`: the PACS bridge on the command line.

    ceal pacs sync [--server ADDR] (--dicomweb URL --user U --password-file F | --dimse HOST:PORT --aet A
                   --calling-aet B) [--since YYYYMMDD] [--state FILE] [--pool NAME] [--fractional]
                   [--modalities CT,MR]
    ceal pacs worklist [--server ADDR] [--strategy ceal] [--k 10] [--annotator NAME]

Both take the connection flags of every client command (--token/--token-file, --tls, --tls-ca,
--tls-cert/--tls-key; $CEAL_SERVER and $CEAL_TOKEN), see `ceal.client.connect`.

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
    _add_worklist(actions)


def _add_sync(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = actions.add_parser("sync", help="predict new series and store DICOM SEG + Parametric Map in the PACS")
    add_connection_arguments(s)
    wire = s.add_mutually_exclusive_group(required=True)
    wire.add_argument("--dicomweb", metavar="URL", help="DICOMweb root, e.g. http://pacs:8042/dicom-web")
    wire.add_argument("--dimse", metavar="HOST:PORT", help="DIMSE (C-FIND / C-GET / C-STORE) address")
    s.add_argument("--user", help="DICOMweb user (HTTP basic authentication)")
    s.add_argument("--password-file", type=Path, help="file holding the DICOMweb password (first line)")
    s.add_argument("--aet", help="the PACS's AE title (DIMSE)")
    s.add_argument("--calling-aet", default="CEAL", help="our AE title, as the PACS knows it (DIMSE)")
    s.add_argument("--since", metavar="YYYYMMDD", help="sync studies dated this day or later (overrides --state)")
    s.add_argument("--state", type=Path, help="JSON file keeping the watermark between runs")
    s.add_argument("--lookback-days", type=int, default=0, help="start this many days before the stored watermark")
    s.add_argument("--pool", default="", help="pool to register the slices in (default: the server's)")
    s.add_argument("--fractional", action="store_true", help="FRACTIONAL (probability) SEG instead of BINARY")
    s.add_argument("--modalities", default="CT,MR", help="comma-separated modalities to sync (default CT,MR)")
    s.add_argument("--model", default="", help="model name (default: the server's only model)")
    s.add_argument("--samples", type=int, default=0, help="Monte-Carlo samples T (default: the server's)")
    s.add_argument("--seed", type=int, default=None, help="seed the Monte-Carlo samples (reproducible outputs)")
    s.add_argument("--measure", default="entropy", help="uncertainty map: entropy, mutual_information, variance")
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
        password = None
        if args.password_file:
            try:
                lines = args.password_file.read_text().splitlines()
            except OSError as exc:
                raise SyncError(f"cannot read --password-file {args.password_file}: {exc.strerror}") from exc
            password = lines[0] if lines else ""
        return DicomWebPacs(args.dicomweb, args.user, password)
    host, _, port = str(args.dimse).rpartition(":")
    if not host or not port.isdigit():
        raise SyncError(f"--dimse {args.dimse!r} is not HOST:PORT (e.g. pacs.example.org:104)")
    if not args.aet:
        raise SyncError("--dimse needs --aet, the PACS's AE title")
    return DimsePacs(host, int(port), args.aet, args.calling_aet)


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
        )
        pacs = _pacs(args)
    except PacsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        connection = client_options(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with Client(**connection) as client:
            report = sync(pacs, client, options, state=args.state, progress=True)
    except (PacsError, CealError) as exc:
        print(f"error: the sync could not run: {exc}", file=sys.stderr)
        return 1
    for failed in report.failures:
        print(f"FAILED series {failed.series_uid} (study {failed.study_uid}) {failed.error}")
    print(report.summary())
    if report.watermark is not None:
        print(f"watermark: {report.watermark}" + (f" (saved to {args.state})" if args.state else ""))
    return 1 if report.failures else 0


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
