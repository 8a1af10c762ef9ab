"""The sync's watermark: the Study Date ("YYYYMMDD") from which the next run looks for series.

`next_watermark` is a pure function of the dates a run saw; `read_watermark` / `write_watermark` keep it in a
small JSON state file, replaced atomically, so a crash mid-write leaves the previous watermark intact. See
`ceal.pacs.protocol` for why the watermark is a Study Date and why a lookback helps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

from ceal.pacs.errors import PacsError
from ceal.pacs.protocol import check_since

__all__ = ["next_watermark", "read_watermark", "with_lookback", "write_watermark"]

_KEY = "watermark"


def next_watermark(previous: str | None, succeeded: Iterable[str], failed: Iterable[str]) -> str | None:
    """The watermark after a run that found series dated `succeeded` (done or skipped) and `failed`.

    The newest succeeded date, but never past the oldest failed one: `since` is inclusive, so the next run
    sees a failed series again. Never earlier than `previous`. A failed series without a Study Date ("")
    keeps `previous`, since a date filter would no longer find it. All dates are "YYYYMMDD" or "".
    """
    ok = [d for d in succeeded if d]
    bad = list(failed)
    if "" in bad:
        return previous
    candidates = [*ok, *([previous] if previous else [])]
    newest = max(candidates) if candidates else None
    if bad:
        oldest_failed = min(bad)
        newest = oldest_failed if newest is None else min(newest, oldest_failed)
    if previous and newest is not None and newest < previous:
        return previous
    return newest


def with_lookback(watermark: str | None, days: int) -> str | None:
    """`watermark` moved `days` days earlier ("YYYYMMDD"), to catch studies that arrive late."""
    if watermark is None or days <= 0:
        return watermark
    day = date(int(watermark[:4]), int(watermark[4:6]), int(watermark[6:8])) - timedelta(days=days)
    return day.strftime("%Y%m%d")


def read_watermark(path: Path) -> str | None:
    """The watermark stored in `path`; None when the file does not exist yet (a first run syncs everything)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        value = json.loads(text)[_KEY]
    except (json.JSONDecodeError, KeyError, TypeError) as cause:
        raise PacsError(
            f'state file {path} is not a ceal sync state ({{"{_KEY}": "YYYYMMDD"}}): fix or delete it'
        ) from cause
    if value is None:
        return None
    try:
        return check_since(str(value))
    except PacsError as cause:
        raise PacsError(f"state file {path} holds an invalid watermark: fix or delete it") from cause


def write_watermark(path: Path, watermark: str | None) -> None:
    """Store `watermark` in `path` atomically (write a temporary file, then rename it over)."""
    check_since(watermark)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as fh:
        json.dump({_KEY: watermark}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
