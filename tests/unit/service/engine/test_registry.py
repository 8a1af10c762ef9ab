"""The model registry: latest by default, pinned on request, hot reload under load, broken versions refused
(the previous one keeps serving, the log says why) and retried when their files change."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import Engine, PredictOptions
from ceal.service.engine.loaded import LoadedModel
from ceal.service.errors import NotFound, Unavailable
from ceal.service.metadata import METADATA_FILE, MODEL_FILE
from ceal.service.registry import ModelRegistry
from ceal.trainer.export import export_model
from tests.unit.service.engine.conftest import NAME, TinyModel, copy_version, load

WAIT = 60.0  # seconds to wait for the watcher before failing: generous, the machine is shared
OPTS = PredictOptions(samples=4, seed=0)


class CountingLoader:
    """The real loader (one onnxruntime thread), counting the folders it was asked to load."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, path: Path) -> LoadedModel:
        self.calls.append(path)
        return load(path)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    stop = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > stop:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.01)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def engine() -> Iterator[Engine]:
    serving = Engine(DynamicBatcher(max_delay=0.001))
    yield serving
    serving.batcher.close()


def test_no_model_yet_is_unavailable_and_says_where_to_export(models: Path) -> None:
    registry = ModelRegistry(models, loader=CountingLoader())
    assert registry.scan() == []
    with pytest.raises(Unavailable, match="export one into"):
        registry.get()


def test_latest_version_by_default_and_a_pinned_one_on_request(tiny_model: TinyModel, models: Path) -> None:
    for version in (1, 2):
        copy_version(tiny_model.directory, models, version)
    loader = CountingLoader()
    registry = ModelRegistry(models, loader=loader)
    assert [m.key for m in registry.scan()] == [(NAME, 2)]  # only the newest is loaded eagerly
    assert registry.get().key == registry.get(NAME).key == (NAME, 2)
    pinned = registry.get(NAME, 1)  # loaded on request
    assert pinned.key == (NAME, 1) and registry.get(NAME, 1) is pinned
    assert registry.get().key == (NAME, 2)  # pinning an older version does not change the default
    assert [m.key for m in registry.models()] == [(NAME, 1), (NAME, 2)]
    assert registry.is_latest(registry.get()) and not registry.is_latest(pinned)
    assert len(loader.calls) == 2
    with pytest.raises(NotFound, match=r"has no version 7; loaded: \[1, 2\]"):
        registry.get(NAME, 7)
    with pytest.raises(NotFound, match=r"'skin' is not loaded; available: \['lesion'\]"):
        registry.get("skin")
    assert registry.scan() == []  # nothing new


def test_hot_reload_under_load_fails_nothing_and_serves_the_new_version(
    tiny_model: TinyModel, models: Path, engine: Engine
) -> None:
    copy_version(tiny_model.directory, models, 1)
    registry = ModelRegistry(models, loader=CountingLoader())
    registry.scan()
    announced: list[tuple[str, int]] = []
    registry.on_new_version(lambda model: announced.append(model.key))
    pixels = tiny_model.images[0]
    order, order_lock = itertools.count(), threading.Lock()
    served: list[tuple[int, int, int]] = []  # (order of get(), version got, version that answered)
    failures: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                with order_lock:  # numbers the get() calls in the order they happened
                    number, model = next(order), registry.get()
                prediction = engine.predict(model, pixels, OPTS)
                served.append((number, model.meta.version, prediction.model_version))
            except BaseException as exc:  # every failure counts, whatever its type
                failures.append(exc)

    registry.start_watching(interval=0.02)
    try:
        with ThreadPoolExecutor(3) as pool:
            for _ in range(3):
                pool.submit(hammer)
            _wait_until(lambda: len(served) >= 3, "the first predictions")
            export_model(tiny_model.unet, tiny_model.training, models, NAME)  # version 2, while serving
            _wait_until(lambda: registry.get().meta.version == 2, "the watcher to load version 2")
            after = len(served)
            _wait_until(lambda: sum(v == 2 for _, v, _ in served[after:]) >= 6, "predictions by version 2")
            stop.set()
    finally:
        stop.set()
        registry.stop()
    assert failures == []
    assert announced == [(NAME, 2)]
    assert all(got == answered for _, got, answered in served)
    versions = [got for _, got, _ in sorted(served)]
    assert versions[0] == 1 and versions[-1] == 2
    assert versions == sorted(versions)  # once version 2 was served, every later get() gave version 2


def _garbage_model(folder: Path) -> str:
    (folder / MODEL_FILE).write_bytes(b"this is not an ONNX model")
    return "is not a usable ONNX model"


def _metadata_not_json(folder: Path) -> str:
    (folder / METADATA_FILE).write_text("{ not json")
    return "is not valid JSON"


def _metadata_incomplete(folder: Path) -> str:
    (folder / METADATA_FILE).write_text('{"name": "lesion", "version": 2}')
    return "metadata is missing input_channels"


@pytest.mark.parametrize("corrupt", [_garbage_model, _metadata_not_json, _metadata_incomplete])
def test_a_broken_version_is_refused_logged_and_retried_when_its_files_change(
    tiny_model: TinyModel,
    models: Path,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    corrupt: Callable[[Path], str],
) -> None:
    copy_version(tiny_model.directory, models, 1)
    loader = CountingLoader()
    registry = ModelRegistry(models, loader=loader)
    registry.scan()
    broken = copy_version(tiny_model.directory, models, 2)
    good = {f: (broken / f).read_bytes() for f in (MODEL_FILE, METADATA_FILE)}
    reason = corrupt(broken)
    with caplog.at_level(logging.ERROR, logger="ceal.service.registry"):
        assert registry.scan() == []
    # Only this registry's records: watcher threads of other tests' servers may log meanwhile.
    [record] = [r for r in caplog.records if r.name == "ceal.service.registry" and str(broken) in r.getMessage()]
    assert str(broken) in record.getMessage() and reason in record.getMessage()
    assert "previous version keeps serving" in record.getMessage()
    assert engine.predict(registry.get(), tiny_model.images[0], OPTS).model_version == 1
    caplog.clear()
    calls = len(loader.calls)
    assert registry.scan() == [] and len(loader.calls) == calls  # not retried unchanged
    assert not [r for r in caplog.records if str(broken) in r.getMessage()]
    for name, content in good.items():
        (broken / name).write_bytes(content)
    assert [m.key for m in registry.scan()] == [(NAME, 2)]
    assert engine.predict(registry.get(), tiny_model.images[0], OPTS).model_version == 2


def test_a_fix_within_the_same_timestamp_tick_is_still_retried(tiny_model: TinyModel, models: Path) -> None:
    """File systems stamp times in coarse ticks: a file rewritten in the tick of the failed load keeps its
    mtime. Before the fix the registry compared mtimes only and never retried such a version."""
    copy_version(tiny_model.directory, models, 1)
    registry = ModelRegistry(models, loader=CountingLoader())
    registry.scan()
    broken = copy_version(tiny_model.directory, models, 2)
    model_file = broken / MODEL_FILE
    good = model_file.read_bytes()
    _garbage_model(broken)
    assert registry.scan() == []
    stamp = model_file.stat()
    model_file.write_bytes(good)
    os.utime(model_file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # as if written in the same tick
    assert [m.key for m in registry.scan()] == [(NAME, 2)]


def test_files_that_change_while_a_load_fails_are_retried(tiny_model: TinyModel, models: Path) -> None:
    """A copy still being written fails to load and finishes meanwhile: the next scan must try again.
    Before the fix the registry took the files' signature after the failed load, i.e. of the finished copy."""
    copy_version(tiny_model.directory, models, 1)
    broken = copy_version(tiny_model.directory, models, 2)
    good = (broken / MODEL_FILE).read_bytes()
    _garbage_model(broken)

    def load_then_copy_finishes(path: Path) -> LoadedModel:
        try:
            return load(path)
        finally:
            if path == broken:
                (broken / MODEL_FILE).write_bytes(good)

    registry = ModelRegistry(models, loader=load_then_copy_finishes)
    assert (NAME, 2) not in [m.key for m in registry.scan()]  # the copy was not finished
    assert [m.key for m in registry.scan()] == [(NAME, 2)]


def test_a_broken_newest_version_falls_back_to_the_previous_in_the_same_scan(
    tiny_model: TinyModel, models: Path
) -> None:
    """A server starting beside a broken export serves the version before it from its first scan.
    Before the fix the first scan loaded nothing, so the server answered UNAVAILABLE until the next one."""
    copy_version(tiny_model.directory, models, 1)
    _garbage_model(copy_version(tiny_model.directory, models, 2))
    registry = ModelRegistry(models, loader=CountingLoader())
    assert [m.key for m in registry.scan()] == [(NAME, 1)]
    assert registry.get().key == (NAME, 1)
