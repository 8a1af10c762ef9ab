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


def test_curve_points_include_the_plain_export_the_chain_started_from() -> None:
    from ceal.service.metadata import ModelMetadata
    from ceal.trainer.worker.rounds import _curve_points

    def meta(version: int, lineage: dict[str, object]) -> ModelMetadata:
        return ModelMetadata("lesion", version, 3, 48, 64, 1, 0.5, 0.25, 0.5, lineage=lineage)

    def trained(parent: int, n: int, dice: float, served_dice: float, promote: bool = True) -> dict[str, object]:
        gate = {"promote": promote, "served_train_human": 34}
        heldout = {"dice": dice, "dice_low": dice - 0.1, "dice_high": dice + 0.1, "served_dice": served_dice}
        return {"parent": parent, "labels": {"train_human": n}, "heldout": heldout, "gate": gate}

    metas = {
        1: meta(1, {}),
        2: meta(2, trained(1, 54, 0.5, 0.3)),
        3: meta(3, trained(2, 69, 0.2, 0.5, promote=False)),  # rejected: not a point of the curve
        4: meta(4, trained(2, 80, 0.6, 0.5)),
    }
    n, y, se = _curve_points(metas)
    assert n == [34, 54, 80] and y == [0.3, 0.5, 0.6]
    assert all(abs(s - 0.2 / 3.92) < 1e-9 for s in se)
