"""Admin overrides over real gRPC: `ceal models list / promote / rollback`, admin token required, rollback
immediate and followed by rescoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ceal.cli.main import main
from ceal.client import Client, PermissionDenied
from ceal.service.promotion import ModelStatus, read_record
from tests.support.models import export_checkpoint, synth_dataset
from tests.support.server import in_process


def test_rollback_and_promote_need_admin_and_take_effect_at_once(
    trained_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    export_checkpoint(trained_checkpoint, models)
    export_checkpoint(trained_checkpoint, models)  # lesion/2, served (newest, no record yet)
    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        json.dumps({"ops": {"token": "admin-t", "role": "admin"}, "dr": {"token": "ann-t", "role": "annotator"}})
    )
    with in_process(models, tmp_path / "state", tokens=tokens) as running:
        address = f"127.0.0.1:{running.port}"
        images = list(synth_dataset(6, seed=3).images)
        with Client(address, token="admin-t") as admin, Client(address, token="ann-t") as annotator:
            admin.register_images(images, pool="p")
            assert admin.score_pool(pool="p", samples=2).model_version == 2
            with pytest.raises(PermissionDenied):
                annotator.rollback_model()
            assert admin.rollback_model(reason="bad in the clinic") == (1, 2)  # served before the call returns
            assert [m.version for m in admin.list_models() if m.is_latest] == [1]
            assert admin.predict(images[0]).model_version == 1
            assert admin.pool_stats(pool="p").model_version == 1
            assert admin.score_pool(pool="p", samples=2).model_version == 1  # rescoring with the rolled-back-to one
            record = read_record(models / "lesion")
            assert record is not None and record.status_of(2).status == ModelStatus.ROLLED_BACK
            assert main(["models", "list", "--server", address, "--token", "ann-t"]) == 0
            listing = capsys.readouterr().out
            assert "v2   rolled_back" in listing and "bad in the clinic" in listing and "*served*" in listing
            assert main(["models", "promote", "2", "--server", address, "--token", "admin-t"]) == 0
            assert [m.version for m in admin.list_models() if m.is_latest] == [2]
            assert main(["models", "promote", "7", "--server", address, "--token", "admin-t"]) == 1
            assert "no version 7" in capsys.readouterr().err


def test_pool_stats_carry_the_served_versions_stop_signal(trained_checkpoint: Path, tmp_path: Path) -> None:
    from ceal.trainer.export import export_model
    from ceal.trainer.unet import load_checkpoint

    model, training = load_checkpoint(trained_checkpoint)
    stop = {"gain_next_20": 0.003, "gain_next_20_low": 0.001, "gain_next_20_high": 0.004, "gain_per_hour": 0.01}
    export_model(
        model, training, tmp_path / "models", "lesion", lineage={"stop": {**stop, "plateau": True, "threshold": 0.005}}
    )
    with in_process(tmp_path / "models", tmp_path / "state") as running, Client(f"127.0.0.1:{running.port}") as client:
        client.register_images(list(synth_dataset(2, seed=4).images), pool="p")
        stats = client.pool_stats(pool="p")
        assert stats.plateau and stats.plateau_threshold == 0.005
        assert (stats.expected_gain_next_20, stats.expected_gain_next_20_high) == (0.003, 0.004)
        assert (
            stats.expected_gain_per_hour == 0.01
            and stats.expected_gain_per_hour_high != stats.expected_gain_per_hour_high
        )  # NaN: not given
