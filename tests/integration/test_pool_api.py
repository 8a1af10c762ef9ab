"""The active-learning pool over real gRPC: register, score, rank, lease, label, export, retrieve."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ceal.client import AlreadyExists, Client, InvalidArgument, NotFound, pool_image
from ceal.client.requests import STRATEGIES
from tests.support.models import export_checkpoint, synth_dataset
from tests.support.server import in_process

POOL = "p1"


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return synth_dataset(16, seed=11).images


def _scored_pool(client: Client, data: np.ndarray) -> list[str]:
    ids = [i for i, _ in client.register_images(list(data), pool=POOL)]
    client.score_pool(pool=POOL, samples=4)
    return ids


def test_register_is_idempotent(address: str, data: np.ndarray) -> None:
    with Client(address) as client:
        first = client.register_images(list(data[:4]), pool=POOL)
        again = client.register_images(list(data[:4]), pool=POOL)
        stats = client.pool_stats(pool=POOL)
    assert [c for _, c in first] == [True] * 4 and [c for _, c in again] == [False] * 4
    assert [i for i, _ in first] == [i for i, _ in again]
    assert stats.images == 4


def test_score_pool_scores_only_what_is_missing(address: str, data: np.ndarray) -> None:
    with Client(address) as client:
        client.register_images(list(data[:6]), pool=POOL)
        first = client.score_pool(pool=POOL, samples=4)
        client.register_images(list(data[6:8]), pool=POOL)
        second = client.score_pool(pool=POOL, samples=4)
        stats = client.pool_stats(pool=POOL)
    assert (first.done, first.total, first.fresh, first.finished) == (6, 6, 0, True)
    assert (second.done, second.total, second.fresh) == (2, 2, 6)
    assert stats.scored_fresh == 8 and stats.scored_stale == 0


# Every strategy the API names but cost_sensitive, which needs a time budget (tested with one below).
@pytest.mark.parametrize("strategy", sorted(set(STRATEGIES) - {"cost_sensitive"}))
def test_every_strategy_ranks_the_pool(address: str, data: np.ndarray, strategy: str) -> None:
    with Client(address) as client:
        ids = _scored_pool(client, data)
        ql = client.query_list(pool=POOL, strategy=strategy, k=5, max_pseudo_labels=5)
    assert len(ql.items) == 5 and [i.rank for i in ql.items] == [1, 2, 3, 4, 5]
    assert {i.image_id for i in ql.items} <= set(ids) and all(i.reason for i in ql.items)
    assert not {i.image_id for i in ql.items} & {p for p, _ in ql.pseudo_labels}


def test_power_bald_is_seeded_through_the_api(address: str, data: np.ndarray) -> None:
    with Client(address) as client:
        _scored_pool(client, data)
        picks = {
            seed: [i.image_id for i in client.query_list(pool=POOL, strategy="power_bald", k=4, seed=seed).items]
            for seed in (1, 2, 3)
        }
        again = client.query_list(pool=POOL, strategy="power_bald", k=4, seed=1)
    assert len({tuple(p) for p in picks.values()}) > 1  # other seeds, other draws (three equal draws: ~never)
    assert [i.image_id for i in again.items] == picks[1] and "PowerBALD, seed 1" in again.items[0].reason


def test_cost_sensitive_needs_a_budget_and_respects_it(address: str, data: np.ndarray) -> None:
    with Client(address) as client:
        _scored_pool(client, data)
        with pytest.raises(InvalidArgument, match="budget_seconds"):
            client.query_list(pool=POOL, strategy="cost_sensitive")
        ql = client.query_list(pool=POOL, strategy="cost_sensitive", budget_seconds=120, k=100)
    assert ql.items and sum(i.estimated_seconds for i in ql.items) <= 120 + 1e-6


def test_labels_are_validated_versioned_and_exported(address: str, data: np.ndarray) -> None:
    with Client(address) as client:
        ids = _scored_pool(client, data)
        h, w = data.shape[1:3]
        with pytest.raises(InvalidArgument, match=r"shape"):
            client.submit_label(ids[0], np.zeros((h + 1, w), np.uint8), annotator="a", pool=POOL)
        with pytest.raises(NotFound):
            client.submit_label("0" * 32, np.zeros((h, w), np.uint8), annotator="a", pool=POOL)
        mask = np.zeros((h, w), np.uint8)
        mask[5:10, 5:10] = 1
        _, v1 = client.submit_label(ids[0], mask, annotator="a", pool=POOL, idempotency_key="k1")
        _, again = client.submit_label(ids[0], mask, annotator="a", pool=POOL, idempotency_key="k1")
        with pytest.raises(AlreadyExists):
            client.submit_label(ids[0], 1 - mask, annotator="a", pool=POOL, idempotency_key="k1")
        _, v2 = client.submit_label(ids[0], 1 - mask, annotator="b", pool=POOL)
        records = list(client.export_labels(pool=POOL))
    assert (v1, again, v2) == (1, 1, 2)
    (record,) = records
    assert record.version == 2 and record.annotator == "b"
    np.testing.assert_array_equal(record.mask, 1 - mask)
    assert record.image is not None and record.image.shape == data[0].shape


def test_two_annotators_asking_at_once_never_share_an_image(address: str, data: np.ndarray) -> None:
    with Client(address) as client:
        _scored_pool(client, data)
    got: dict[str, list[str]] = {}

    def ask(name: str) -> None:
        with Client(address) as c:
            got[name] = [i.image_id for i in c.query_list(pool=POOL, strategy="entropy", k=6, annotator=name).items]

    threads = [threading.Thread(target=ask, args=(f"annotator-{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = got["annotator-0"], got["annotator-1"]
    assert len(a) == 6 and len(b) == 6 and not set(a) & set(b)
    with Client(address) as client:
        assert client.pool_stats(pool=POOL).leased == 12


def test_series_level_query_lists(address: str, data: np.ndarray) -> None:
    images = [
        pool_image(img, series_key=f"series-{i // 4}", study_key="study-1", slice_index=i % 4)
        for i, img in enumerate(data)
    ]
    with Client(address) as client:
        client.register_images(images, pool=POOL)
        client.score_pool(pool=POOL, samples=4)
        ql = client.query_list(pool=POOL, strategy="bald", k=2, series=True)
    assert len(ql.items) == 2
    assert all(i.series_key.startswith("series-") and len(i.slice_image_ids) == 4 for i in ql.items)
    assert ql.items[0].score >= ql.items[1].score


def test_find_similar_by_id_and_by_image(address: str, data: np.ndarray) -> None:
    with Client(address) as client:
        ids = _scored_pool(client, data)
        by_id = client.find_similar(ids[3], k=5, pool=POOL)
        by_image = client.find_similar(data[3], k=1, pool=POOL)
    assert len(by_id) == 5 and ids[3] not in [i for i, _, _ in by_id]
    sims = [s for _, s, _ in by_id]
    assert sims == sorted(sims, reverse=True)
    assert by_image[0][0] == ids[3] and by_image[0][1] == pytest.approx(1.0, abs=1e-4)


def _hot_load_version_2(client: Client, checkpoint: Path, models: Path) -> None:
    """Export `checkpoint` as version 2 into the served models folder and wait until the server serves it."""
    export_checkpoint(checkpoint, models)
    deadline = time.monotonic() + 30
    while client.pool_stats(pool=POOL).model_version != 2:
        assert time.monotonic() < deadline, "version 2 was not hot-loaded"
        time.sleep(0.2)


def test_a_new_model_version_rescores_stale_scores_only(
    models_dir: Path, trained_checkpoint: Path, tmp_path: Path, data: np.ndarray
) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    with in_process(models, tmp_path / "state") as running, Client(f"127.0.0.1:{running.port}") as client:
        client.register_images(list(data[:6]), pool=POOL)
        assert client.score_pool(pool=POOL, samples=4).done == 6
        _hot_load_version_2(client, trained_checkpoint, models)
        client.register_images(list(data[6:8]), pool=POOL)
        done = client.score_pool(pool=POOL, samples=4)
        stats = client.pool_stats(pool=POOL)
        assert done.model_version == 2
        # Stale v1 scores were rescored (in the background or by this call); nothing fresh is scored twice.
        assert done.total + done.fresh == 8 and done.total >= 2
        assert (stats.scored_fresh, stats.scored_stale) == (8, 0)
        assert client.score_pool(pool=POOL, samples=4).total == 0


def test_the_ensemble_ranks_by_version_disagreement_once_two_versions_scored(
    models_dir: Path, trained_checkpoint: Path, tmp_path: Path, data: np.ndarray
) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    with in_process(models, tmp_path / "state") as running, Client(f"127.0.0.1:{running.port}") as client:
        client.register_images(list(data[:6]), pool=POOL)
        client.score_pool(pool=POOL, samples=4)
        before = client.query_list(pool=POOL, strategy="ensemble", k=6)
        _hot_load_version_2(client, trained_checkpoint, models)
        client.score_pool(pool=POOL, samples=4)
        after = client.query_list(pool=POOL, strategy="ensemble", k=6)
    assert len(before.items) == len(after.items) == 6
    assert all("no earlier versions scored this pool yet" in item.reason for item in before.items)
    assert all("disagreement between the last model versions' masks" in item.reason for item in after.items)
    assert all(0.0 <= item.score <= 1.0 for item in after.items)
