"""The promotion record: which version of a model is served, and the status of every other version.

`models/<name>/promotion.json` (or `<promotions>/<name>/promotion.json` when the servers mount the models
read-only and the record lives on a small writable volume: `ceal serve --promotions`) is written by the
trainer (candidate, promoted, rejected) and by the server's
admin RPCs (promote, rollback); the registry watches it. Without the file a model behaves as before: its
newest version is served (a plain `ceal export`). With it, only `served` is served by default; a version the
record does not name is an unrecorded candidate (an export whose trainer died before it wrote the record) and
is never served. Writes are read-modify-write under an advisory lock (`.promotion.lock`) and land by one
rename after an fsync, so a reader never sees half a record and a crash leaves the previous one.

Record (JSON):
    {"served": 3,
     "versions": {"3": {"status": "promoted", "reason": "...", "at": "2026-...Z", "by": "trainer"}, ...},
     "history": [{"at": ..., "action": "promote", "version": 3, "by": "trainer", "reason": "..."}, ...]}
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RECORD_FILE = "promotion.json"
LOCK_FILE = ".promotion.lock"


class ModelStatus(enum.StrEnum):
    CANDIDATE = "candidate"  # exported, not yet judged; never served
    PROMOTED = "promoted"  # passed the gate (or promoted by hand); may be served
    REJECTED = "rejected"  # failed the gate; kept on disk with its reason, never served
    ROLLED_BACK = "rolled_back"  # was served, withdrawn by an admin; never served again unless promoted


SERVABLE = frozenset({ModelStatus.PROMOTED})


class PromotionError(ValueError):
    """A promotion or rollback that cannot be done (unknown version, nothing to roll back to)."""


@dataclass(frozen=True)
class VersionStatus:
    status: ModelStatus
    reason: str = ""
    at: str = ""
    by: str = ""


@dataclass
class PromotionRecord:
    served: int = 0
    versions: dict[int, VersionStatus] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def status_of(self, version: int) -> VersionStatus:
        """The recorded status; an unrecorded version is a candidate (never served)."""
        return self.versions.get(version, VersionStatus(ModelStatus.CANDIDATE, "not yet judged"))

    def set(self, version: int, status: ModelStatus, reason: str, by: str) -> None:
        at = _now()
        self.versions[version] = VersionStatus(status, reason, at, by)
        self.history.append({"at": at, "action": status.value, "version": version, "by": by, "reason": reason})

    def promote(self, version: int, reason: str, by: str) -> None:
        self.set(version, ModelStatus.PROMOTED, reason, by)
        self.served = version

    def rollback(self, available: list[int], by: str, to: int = 0, reason: str = "") -> int:
        """Withdraw the served version and serve `to` (0: the newest other promoted version); returns it."""
        current = self.served
        if to == 0:
            older = [v for v in available if v < current and self.status_of(v).status == ModelStatus.PROMOTED]
            if not older:
                raise PromotionError(f"version {current} has no earlier promoted version to roll back to")
            to = max(older)
        if to not in available:
            raise PromotionError(f"there is no version {to} on disk; versions: {sorted(available)}")
        if to == current:
            raise PromotionError(f"version {to} is already served")
        if current:
            self.set(current, ModelStatus.ROLLED_BACK, reason or f"rolled back to version {to}", by)
        self.promote(to, f"served again by rollback from version {current}", by)
        return to

    def to_json(self) -> str:
        return json.dumps(
            {
                "served": self.served,
                "versions": {
                    str(v): {"status": s.status.value, "reason": s.reason, "at": s.at, "by": s.by}
                    for v, s in sorted(self.versions.items())
                },
                "history": self.history,
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> PromotionRecord:
        raw = json.loads(text)
        versions = {
            int(v): VersionStatus(ModelStatus(s["status"]), s.get("reason", ""), s.get("at", ""), s.get("by", ""))
            for v, s in raw.get("versions", {}).items()
        }
        return cls(int(raw.get("served", 0)), versions, list(raw.get("history", [])))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_record(model_dir: Path) -> PromotionRecord | None:
    """The record, or None when the model has none (its newest version is served)."""
    try:
        return PromotionRecord.from_json((model_dir / RECORD_FILE).read_text())
    except FileNotFoundError:
        return None


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` by fsync + rename (+ fsync of the folder): all of it or none of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked(model_dir: Path) -> Iterator[None]:
    model_dir.mkdir(parents=True, exist_ok=True)
    with open(model_dir / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def disk_versions(model_dir: Path) -> list[int]:
    """Complete version folders (model.onnx present); staging folders start with a dot and are not listed."""
    if not model_dir.is_dir():
        return []
    return sorted(
        int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and (p / "model.onnx").exists()
    )


def update_record(
    model_dir: Path, change: Callable[[PromotionRecord], object], versions_dir: Path | None = None
) -> PromotionRecord:
    """Read (or start: the newest version on disk promoted and served), apply `change`, write atomically.

    `model_dir` holds the record; `versions_dir` the version folders (default: the same folder)."""
    with _locked(model_dir):
        record = read_record(model_dir)
        if record is None:
            record = PromotionRecord()
            existing = disk_versions(versions_dir or model_dir)
            for v in existing:
                record.versions[v] = VersionStatus(ModelStatus.PROMOTED, "exported before the promotion record", _now())
            record.served = max(existing, default=0)
        change(record)
        write_atomic(model_dir / RECORD_FILE, record.to_json())
        return record
