"""The registry under a promotion record: only the recorded version is served; candidates, rejected and
rolled-back versions never are; promotion and rollback notify the listeners (rescoring) at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceal.service.engine.loaded import LoadedModel
from ceal.service.errors import InvalidInput, NotFound
from ceal.service.promotion import ModelStatus, PromotionRecord, VersionStatus, read_record, update_record
from ceal.service.registry import ModelRegistry
from tests.unit.service.engine.conftest import NAME, copy_version, export_untrained, load


@pytest.fixture
def models(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    first = export_untrained(models, "bottleneck")  # lesion/1
    copy_version(first, models, 2)
    copy_version(first, models, 3)
    return models


def test_without_a_record_the_newest_version_is_served(models: Path) -> None:
    registry = ModelRegistry(models, loader=load)
    registry.scan()
    assert registry.get().meta.version == 3
    assert {e.meta.version: e.status.status for e in registry.catalogue()} == {
        v: ModelStatus.PROMOTED for v in (1, 2, 3)
    }


def test_the_record_decides_and_unjudged_or_rejected_versions_are_never_served(models: Path) -> None:
    update_record(models / NAME, lambda r: r.set(3, ModelStatus.REJECTED, "rejected: worse", "trainer"))
    # the record was started from the versions on disk (all promoted, 3 served) before the change: undo that
    update_record(models / NAME, lambda r: r.promote(2, "promoted", "trainer"))
    copy_version(models / NAME / "1", models, 4)  # exported after the record: a candidate until judged
    registry = ModelRegistry(models, loader=load)
    heard: list[int] = []
    registry.on_new_version(lambda m: heard.append(m.meta.version))
    registry.scan()
    assert registry.get().meta.version == 2 and heard == [2]
    with pytest.raises(NotFound, match="rejected"):
        registry.get(NAME, 3)
    with pytest.raises(NotFound, match="candidate"):
        registry.get(NAME, 4)
    statuses = {e.meta.version: (e.status.status, e.served) for e in registry.catalogue()}
    assert statuses[3] == (ModelStatus.REJECTED, False) and statuses[4] == (ModelStatus.CANDIDATE, False)
    assert statuses[2] == (ModelStatus.PROMOTED, True)


def test_rollback_is_immediate_and_notifies_then_promote_overrides(models: Path) -> None:
    registry = ModelRegistry(models, loader=load)
    registry.scan()
    assert registry.promote(NAME, 3, "", "admin") == (3, 3)  # already served newest-first: no record written
    assert read_record(models / NAME) is None
    heard: list[int] = []
    registry.on_new_version(lambda m: heard.append(m.meta.version))
    assert registry.rollback(NAME, 0, "bad in the clinic", "admin") == (2, 3)
    assert registry.get().meta.version == 2 and heard == [2]
    record = read_record(models / NAME)
    assert record is not None and record.status_of(3).status == ModelStatus.ROLLED_BACK
    with pytest.raises(NotFound, match="rolled_back"):
        registry.get(NAME, 3)
    assert registry.promote(NAME, 3, "fixed", "admin") == (3, 2)
    assert registry.get().meta.version == 3 and heard == [2, 3]
    with pytest.raises(InvalidInput, match="no version 9"):
        registry.promote(NAME, 9, "", "admin")
    for name in ("../elsewhere", "nope", ".hidden"):
        with pytest.raises(NotFound, match="no model"):
            registry.promote(name, 1, "", "admin")
    assert not (models.parent / "elsewhere").exists()


def test_a_second_registry_follows_the_record_file(models: Path) -> None:
    writer, reader = ModelRegistry(models, loader=load), ModelRegistry(models, loader=load)
    writer.scan()
    reader.scan()
    writer.rollback(NAME, 1, "", "admin")
    reader.scan()  # what its watcher does every interval
    loaded: LoadedModel = reader.get()
    assert loaded.meta.version == 1


def test_rollback_needs_an_earlier_promoted_version() -> None:
    record = PromotionRecord(served=1)
    record.versions[1] = VersionStatus(ModelStatus.PROMOTED)
    with pytest.raises(ValueError, match="no earlier promoted version"):
        record.rollback([1, 2], "admin")
    assert PromotionRecord.from_json(record.to_json()).served == 1
