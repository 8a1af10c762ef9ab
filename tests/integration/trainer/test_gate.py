"""Must show: contradicting labels are rejected by the gate with no effect on what is served; honest ones promote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ceal.client import Client, NotFound
from ceal.service.server import Running
from ceal.trainer.worker.rounds import Stopped, run_round
from tests.integration.trainer import scenario
from tests.support.determinism import deterministic_torch
from tests.support.server import in_process

pytestmark = pytest.mark.slow


def _serve(tmp_path: Path, epochs: int) -> Iterator[tuple[Running, Path]]:
    models = tmp_path / "models"
    scenario.version_1(tmp_path, models, epochs=epochs)
    with in_process(models, tmp_path / "state") as running:
        yield running, models


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Running, Path]]:
    """A weak version 1 (4 epochs): honest labels make a clearly better candidate."""
    yield from _serve(tmp_path, epochs=4)


@pytest.fixture
def served_stronger(tmp_path: Path) -> Iterator[tuple[Running, Path]]:
    """A version 1 trained longer (12 epochs): far above what inverted labels teach, on any CPU."""
    yield from _serve(tmp_path, epochs=12)


def _worklist(client: Client) -> list[tuple[str, float]]:
    ql = client.query_list(pool=scenario.POOL, strategy="bald", k=100)
    assert ql.model_version in {1, 2}
    return [(i.image_id, round(i.score, 12)) for i in ql.items]


def test_inverted_labels_are_rejected_and_nothing_served_changes(
    served_stronger: tuple[Running, Path], tmp_path: Path
) -> None:
    running, models = served_stronger
    with Client(f"127.0.0.1:{running.port}", timeout=120) as client:
        ids, masks = scenario.fill_pool(client)
        assert scenario.new_batch(client, ids, masks, inverted=True) == scenario.ROGUE
        before, stats_before = _worklist(client), client.pool_stats(pool=scenario.POOL)

        with deterministic_torch():
            result = run_round(client, scenario.settings(models, tmp_path / "work"))

        print(result.message)
        assert result.decision == "rejected", result.message
        gate = result.gate
        assert gate is not None and gate.images >= 3
        assert gate.difference_high < 0 and gate.candidate_dice < gate.served_dice - 0.1  # far from the noise
        assert (models / "lesion" / "2" / "model.onnx").exists()  # the rejected candidate stays on disk
        for _ in range(3):  # the registry watches on its own every 0.2 s; scanning here makes sure it has looked
            running.registry.scan()
        listed = {m.version: m for m in client.list_models()}
        assert listed[1].is_latest and listed[1].status == "promoted"
        assert listed[2].status == "rejected" and not listed[2].is_latest and not listed[2].loaded
        assert "worse beyond the noise" in listed[2].status_reason and "held-out images" in listed[2].status_reason
        assert listed[2].parent_version == 1
        low, high = listed[2].heldout_dice_interval
        assert low <= listed[2].heldout_dice <= high
        with pytest.raises(NotFound, match="rejected"):
            client.predict(masks[0] * 255, version=2)
        assert client.predict(masks[0] * 255).model_version == 1
        stats = client.pool_stats(pool=scenario.POOL)
        assert stats.model_version == 1 and stats.scored_fresh == stats_before.scored_fresh == scenario.IMAGES
        assert _worklist(client) == before  # same version, same scores, same order


def test_honest_labels_promote_and_the_pool_is_rescored(served: tuple[Running, Path], tmp_path: Path) -> None:
    running, models = served
    with Client(f"127.0.0.1:{running.port}", timeout=120) as client:
        ids, masks = scenario.fill_pool(client)
        scenario.new_batch(client, ids, masks, inverted=False)

        with deterministic_torch():
            result = run_round(client, scenario.settings(models, tmp_path / "work"))

        print(result.message)
        assert result.decision == "promoted", result.message
        assert result.gate is not None and result.gate.mean_difference > 0.05
        scenario.wait_served(client, 2)
        done = client.score_pool(pool=scenario.POOL, samples=4)
        assert done.model_version == 2
        stats = client.pool_stats(pool=scenario.POOL)
        assert stats.model_version == 2 and stats.scored_fresh == scenario.IMAGES and stats.scored_stale == 0
        ql = client.query_list(pool=scenario.POOL, strategy="bald", k=10)
        assert ql.model_version == 2 and ql.unscored == 0
        (v2,) = [m for m in client.list_models() if m.version == 2]
        assert v2.status == "promoted" and v2.parent_version == 1 and v2.heldout_images == result.gate.images
        meta = (models / "lesion" / "2" / "metadata.json").read_text()
        for key in ('"digest"', '"train_human"', '"ceal_version"', '"train_config"', '"gate"'):
            assert key in meta
        # nothing new: the next turn waits
        again = run_round(client, scenario.settings(models, tmp_path / "work"))
        assert again.decision == "waiting"


def test_a_stop_between_stages_publishes_nothing(served: tuple[Running, Path], tmp_path: Path) -> None:
    """What SIGTERM does (`ceal trainer` sets the flag): the stage in hand finishes, the next does not start."""
    running, models = served
    asked: list[int] = []

    def stop() -> bool:  # false for check and train, true when the export would start
        asked.append(1)
        return len(asked) > 2

    with Client(f"127.0.0.1:{running.port}", timeout=120) as client:
        ids, masks = scenario.fill_pool(client)
        scenario.new_batch(client, ids, masks, inverted=False)
        with deterministic_torch(), pytest.raises(Stopped, match="before stage export"):
            run_round(client, scenario.settings(models, tmp_path / "work"), stop)
        assert sorted(p.name for p in (models / "lesion").iterdir() if not p.name.startswith(".")) == [
            "1",
            "promotion.json",
        ]
        assert [(m.version, m.is_latest) for m in client.list_models()] == [(1, True)]
