"""What a restart after a crash finds and fixes: scratch and staging folders, an unrecorded verdict."""

from __future__ import annotations

from pathlib import Path

from ceal.service.promotion import ModelStatus, read_record, update_record
from ceal.trainer.export import export_model
from ceal.trainer.worker.rounds import SCRATCH, TrainerSettings, recover, served_version
from tests.support.models import untrained
from tests.unit.service.engine.conftest import NAME, train_config, training_record


def test_recover_cleans_up_and_records_a_verdict_the_crash_lost(tmp_path: Path) -> None:
    models, work = tmp_path / "models", tmp_path / "work"
    settings = TrainerSettings(models=models, work=work)
    export_model(untrained(), training_record(train_config()), models, NAME)
    update_record(models / NAME, lambda r: None)  # the trainer starts the record before its first export
    gate = {"promote": False, "reason": "rejected: worse beyond the noise: ..."}
    export_model(untrained(), training_record(train_config()), models, NAME, lineage={"gate": gate, "parent": 1})
    (models / NAME / ".staging-x").mkdir()  # a kill -9 in the middle of an export
    (work / SCRATCH).mkdir(parents=True)  # ... and in the middle of training
    before = read_record(models / NAME)
    assert before is not None and before.status_of(2).status == ModelStatus.CANDIDATE  # never served meanwhile

    notes = recover(settings)

    assert len(notes) == 3
    assert not (models / NAME / ".staging-x").exists() and not (work / SCRATCH).exists()
    after = read_record(models / NAME)
    assert after is not None and after.status_of(2).status == ModelStatus.REJECTED
    assert after.status_of(2).reason == gate["reason"] and served_version(settings) == 1
    assert recover(settings) == []  # nothing left to do
