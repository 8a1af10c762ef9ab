"""Model registry: `models/<name>/<version>/` folders, the latest version served by default.

A watcher thread polls the folder; a new version is loaded off to the side and then swapped in, so calls
in flight finish on the version they started with. Loading validates the version (`load_model`: name and
version equal to the folder's, input channels and size equal to the graph's, one trial inference) before it
can become the default. A version that fails is refused: logged with the reason, listed with it by
`refused()` (and ListModels), and skipped (the previous one keeps serving) until its files change.

A model with a promotion record (`promotion.py`: `models/<name>/promotion.json`) serves the record's `served`
version, not its newest: candidates, rejected and rolled-back versions are never served, not even pinned.
A change of the served version (a promotion, a rollback) notifies the listeners like a new version does.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ceal.service.engine.loaded import LoadedModel, load_model
from ceal.service.errors import InvalidInput, NotFound, Unavailable
from ceal.service.metadata import METADATA_FILE, MODEL_FILE, MetadataError, ModelMetadata
from ceal.service.promotion import (
    RECORD_FILE,
    SERVABLE,
    PromotionError,
    PromotionRecord,
    VersionStatus,
    disk_versions,
    read_record,
    update_record,
)

log = logging.getLogger(__name__)

Loader = Callable[[Path], LoadedModel]
Listener = Callable[[LoadedModel], None]


def _stat(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _signature(directory: Path) -> tuple[tuple[int, int, int], ...]:
    """What identifies the files' contents: mtime alone misses a rewrite within one timestamp tick."""
    return tuple(_stat(directory / f) for f in (MODEL_FILE, METADATA_FILE))


@dataclass(frozen=True)
class CatalogueEntry:
    """A version on disk: its metadata, its status in the promotion record, and whether it is loaded/served."""

    meta: ModelMetadata
    status: VersionStatus
    loaded: LoadedModel | None
    served: bool


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a folder name, never a path


def _on_disk(version: int, available: list[int]) -> int:
    if version not in available:
        raise PromotionError(f"there is no version {version} on disk; versions: {available}")
    return version


class ModelRegistry:
    """Loaded model versions by name; thread-safe; `scan()` picks up new versions."""

    def __init__(
        self,
        root: Path,
        *,
        loader: Loader = load_model,
        default_model: str | None = None,
        promotions: Path | None = None,
    ) -> None:
        self.root = root
        self.promotions = promotions or root  # where <name>/promotion.json lives
        self._loader = loader
        self._default = default_model
        self._lock = threading.Lock()
        self._models: dict[str, dict[int, LoadedModel]] = {}
        self._failed: dict[Path, tuple[tuple[int, int, int], ...]] = {}
        self._reasons: dict[Path, str] = {}  # why each refused version was refused
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._records: dict[str, tuple[tuple[int, int, int], PromotionRecord | None]] = {}
        self._served: dict[str, int] = {}

    def on_new_version(self, listener: Listener) -> None:
        """Call `listener(model)` after each newly loaded latest version (e.g. to mark scores stale)."""
        self._listeners.append(listener)

    def _candidates(self) -> list[tuple[str, int, Path]]:
        found: list[tuple[str, int, Path]] = []
        if not self.root.is_dir():
            return found
        for model_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for vdir in model_dir.iterdir():
                if vdir.is_dir() and vdir.name.isdigit() and (vdir / MODEL_FILE).exists():
                    found.append((model_dir.name, int(vdir.name), vdir))
        return found

    def scan(self) -> list[LoadedModel]:
        """Load the newest loadable version of each model newer than the one loaded; returns what was loaded.

        A newest version that fails is skipped for the next newest in the same scan, so a server that
        starts beside a broken export serves the previous version at once.
        """
        candidates: dict[str, list[tuple[int, Path]]] = {}
        loaded = self._scan_records()
        for name, version, path in self._candidates():
            if self._record(name) is not None:
                continue  # served by its promotion record (_scan_records)
            with self._lock:
                failed = self._failed.get(path)
            if failed is not None and failed == _signature(path):
                continue
            candidates.setdefault(name, []).append((version, path))
        for name, versions in sorted(candidates.items()):
            with self._lock:
                current = max(self._models.get(name, {0: None}))  # type: ignore[dict-item]
            for version, path in sorted(versions, reverse=True):
                if version <= current:
                    break
                model = self._load(path)
                if model is None:
                    continue
                with self._lock:
                    self._models.setdefault(name, {})[version] = model
                    self._served[name] = version
                log.info("model %s version %d loaded (%s)", name, version, model.provider)
                loaded.append(model)
                for listener in self._listeners:
                    listener(model)
                break
        return loaded

    def _record(self, name: str) -> PromotionRecord | None:
        with self._lock:
            return self._records.get(name, ((0, 0, 0), None))[1]

    def _scan_records(self) -> list[LoadedModel]:
        """Re-read changed promotion records; load and serve each record's `served` version."""
        loaded: list[LoadedModel] = []
        if not self.root.is_dir():
            return loaded
        for model_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            name, path = model_dir.name, self.promotions / model_dir.name / RECORD_FILE
            signature = _stat(path)
            with self._lock:
                known = self._records.get(name)
            if known is None or known[0] != signature:
                try:
                    record = read_record(path.parent)
                except (ValueError, KeyError) as exc:  # a hand-edited record gone wrong: keep the last good one
                    log.error("promotion record %s unreadable, keeping the previous one: %s", path, exc)
                    continue
                with self._lock:
                    self._records[name] = (signature, record)
            record = self._record(name)
            if record is None or not record.served:
                continue
            with self._lock:
                model = self._models.get(name, {}).get(record.served)
                changed = self._served.get(name) != record.served
            if model is None:
                vdir = model_dir / str(record.served)
                with self._lock:
                    failed = self._failed.get(vdir)
                if (failed is not None and failed == _signature(vdir)) or not (vdir / MODEL_FILE).exists():
                    continue
                model = self._load(vdir)
                if model is None:
                    continue  # the previous served version keeps serving
                with self._lock:
                    self._models.setdefault(name, {})[record.served] = model
            if changed:
                with self._lock:
                    self._served[name] = record.served
                log.info("model %s version %d served (promotion record)", name, record.served)
                loaded.append(model)
                for listener in self._listeners:
                    listener(model)
        return loaded

    def catalogue(self, name: str = "") -> list[CatalogueEntry]:
        """Every version on disk (loaded or not), with its status; unreadable metadata, and metadata that names
        another model or version than its folder (refused on load, listed among the refused), are left out."""
        out: list[CatalogueEntry] = []
        if not self.root.is_dir():
            return out
        with self._lock:
            served, models = dict(self._served), {n: dict(v) for n, v in self._models.items()}
        for model_name, version, path in sorted(self._candidates()):
            if name and model_name != name:
                continue
            try:
                meta = ModelMetadata.read(path)
            except (MetadataError, OSError, TypeError, ValueError):
                continue
            if (meta.name, meta.version) != (model_name, version):
                continue
            record = self._record(model_name)
            status = (
                record.status_of(version)
                if record is not None
                else VersionStatus(next(iter(SERVABLE)), "served newest-first (no promotion record)")
            )
            loaded = models.get(model_name, {}).get(version)
            out.append(CatalogueEntry(meta, status, loaded, served.get(model_name) == version))
        return out

    def promote(self, name: str, version: int, reason: str, by: str) -> tuple[int, int]:
        """Serve `version` (an admin override); returns (served, previous). Takes effect before returning.

        Promoting the newest version of a model without a record changes nothing and writes no record."""
        name = name or self.default_name()
        model_dir = self._model_dir(name)
        available = disk_versions(model_dir)
        if available and version == max(available) and read_record(self.promotions / name) is None:
            self.scan()
            return self.served_version(name), self.served_version(name)
        return self._change(name, lambda r, available: r.promote(_on_disk(version, available), reason, by))

    def rollback(self, name: str, version: int, reason: str, by: str) -> tuple[int, int]:
        """Withdraw the served version and serve `version` (0: the newest earlier promoted one)."""
        return self._change(name, lambda r, available: r.rollback(available, by, version, reason))

    def _change(self, name: str, change: Callable[[PromotionRecord, list[int]], object]) -> tuple[int, int]:
        name = name or self.default_name()
        model_dir = self._model_dir(name)
        available = disk_versions(model_dir)
        if not available:
            raise NotFound(f"model {name!r} has no version in {self.root}")
        previous = self.served_version(name)
        try:
            record = update_record(self.promotions / name, lambda r: change(r, available), model_dir)
        except PromotionError as exc:
            raise InvalidInput(str(exc)) from exc
        self.scan()
        if self.served_version(name) != record.served:
            raise Unavailable(f"version {record.served} is recorded as served but failed to load; see the log")
        return record.served, previous

    def _model_dir(self, name: str) -> Path:
        if not _MODEL_NAME.fullmatch(name) or not (self.root / name).is_dir():
            raise NotFound(f"there is no model {name!r} in the models folder")
        return self.root / name

    def served_version(self, name: str = "") -> int:
        """The version served for `name` (0 if none)."""
        with self._lock:
            return self._served.get(name or self.default_name(), 0)

    def _load(self, path: Path) -> LoadedModel | None:
        # Taken before loading: files that change while the load fails (a copy finishing) get retried.
        signature = _signature(path)
        try:
            model = self._loader(path)
        except Exception as exc:  # any failure: a broken version must never take the server down
            log.error("model version at %s refused, previous version keeps serving: %s", path, exc)
            with self._lock:
                self._failed[path] = signature
                self._reasons[path] = str(exc) or type(exc).__name__
            return None
        with self._lock:
            self._failed.pop(path, None)
            self._reasons.pop(path, None)
        return model

    def refused(self) -> list[tuple[str, int, str]]:
        """(model folder name, version, reason) of each version refused at load and not loaded since."""
        with self._lock:
            reasons = dict(self._reasons)
        return sorted(
            (path.parent.name, int(path.name), reason) for path, reason in reasons.items() if path.name.isdigit()
        )

    def get(self, name: str = "", version: int = 0) -> LoadedModel:
        """The pinned version, or the latest; NotFound names what exists."""
        with self._lock:
            if not self._models:
                raise Unavailable(f"no model is loaded yet; export one into {self.root}", reason="NO_MODEL_LOADED")
            name = name or self.default_name()
            versions = self._models.get(name)
            if versions is None:
                raise NotFound(
                    f"model {name!r} is not loaded; available: {sorted(self._models)}", reason="MODEL_NOT_FOUND"
                )
            if version == 0:
                return versions[self._served.get(name, max(versions))]
            record = self._records.get(name, ((0, 0, 0), None))[1]
        if record is not None and record.status_of(version).status not in SERVABLE:
            status = record.status_of(version)
            raise NotFound(f"model {name!r} version {version} is {status.status.value} ({status.reason}); not served")
        with self._lock:
            if version in versions:
                return versions[version]
        path = self.root / name / str(version)
        if not (path / MODEL_FILE).exists():
            raise NotFound(
                f"model {name!r} has no version {version}; loaded: {sorted(versions)}", reason="MODEL_NOT_FOUND"
            )
        model = self._load(path)
        if model is None:
            with self._lock:
                reason = self._reasons.get(path, "see the server log")
            raise NotFound(f"model {name!r} version {version} is refused: {reason}", reason="MODEL_NOT_FOUND")
        with self._lock:
            self._models[name][version] = model
        return model

    def default_name(self) -> str:
        """The model a request naming none gets: --default-model, else the only model served. With several
        models and no default, raises InvalidInput: the server never picks one by its name's spelling."""
        if self._default:
            return self._default
        names = sorted(self._models)
        if len(names) > 1:
            raise InvalidInput(
                f"this server serves {len(names)} models ({', '.join(names)}) and none is the default: name one "
                "in the request (model_name; --model on the command line), or start ceal serve with "
                "--default-model NAME",
                field="model_name",
            )
        return names[0] if names else ""

    def models(self) -> list[LoadedModel]:
        with self._lock:
            return [m for versions in self._models.values() for _, m in sorted(versions.items())]

    def is_latest(self, model: LoadedModel) -> bool:
        with self._lock:
            return model.meta.version == self._served.get(model.meta.name, 0)

    def start_watching(self, interval: float = 2.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.scan()
                except Exception:  # the watcher must outlive any one bad scan
                    log.exception("model folder scan failed")

        self._watcher = threading.Thread(target=loop, name="ceal-model-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
