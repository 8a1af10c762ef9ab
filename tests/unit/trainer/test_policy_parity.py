"""What is simulated is what is served: for the same score table, strategy, round and seed, the simulation's
choice (`simulate.scoring.choose`) and the query code behind GetQueryList (`pool.queries.query_list`) pick the
same images in the same order, and the same pseudo-labels, for every registered strategy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ceal.service.pool.queries import QueryRequest, query_list
from ceal.service.selection import STRATEGIES, AnnotationCostModel
from ceal.service.selection.scores import score_table
from ceal.service.store import NewImage, ScoreRow, SQLitePoolStore
from ceal.trainer.simulate.config import SimConfig
from ceal.trainer.simulate.scoring import PoolScores, choose, plan

N, K, LABELLED = 14, 4, 4


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SQLitePoolStore:
    """A pool of N scored images (random but seeded scores and descriptors), LABELLED of them labelled by a
    human in no time (so the service's annotation-time model is the default one, as the simulation's)."""
    rng = np.random.default_rng(23)
    path: Path = tmp_path_factory.mktemp("parity") / "pool.sqlite3"
    pool = SQLitePoolStore(path)
    images = [NewImage(rng.integers(0, 255, (6, 5)).astype(np.uint8)) for _ in range(N)]
    ids = [image_id for image_id, _ in pool.register_images("p", images)]
    rows = [
        ScoreRow(
            image_id=image_id,
            model_name="unet",
            model_version=1,
            entropy=float(rng.uniform(0.01, 0.6)),
            mutual_information=float(rng.uniform(0.0, 0.2)),
            variance=float(rng.uniform(0.0, 0.1)),
            confidence=float(rng.uniform(0.5, 1.0)),
            boundary_length=float(rng.uniform(5.0, 80.0)),
            components=int(rng.integers(1, 3)),
            foreground_fraction=float(rng.uniform(0.05, 0.5)),
            descriptor=rng.normal(size=8).astype(np.float32),
        )
        for image_id in ids
    ]
    pool.put_scores("p", rows)
    for image_id in ids[:LABELLED]:
        pool.submit_label("p", image_id, np.ones((6, 5), np.uint8), annotator="a", source="human", seconds_spent=0)
    return pool


@pytest.mark.parametrize("round_index", [0, 2])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_the_simulation_chooses_what_the_query_servicer_serves(
    store: SQLitePoolStore, strategy: str, round_index: int
) -> None:
    rows = store.score_rows("p", "unet", 1)
    table = score_table(rows, [row.image_id for row in rows])  # each image its own series, as registered
    labelled = store.labelled_ids("p", "human")
    exclude = tuple(i for i, image_id in enumerate(table.image_ids) if image_id in labelled)
    assert len(exclude) == LABELLED
    cfg = dataclasses.replace(SimConfig(), per_round=K, max_pseudo=3)
    scores = PoolScores(np.arange(N, dtype=np.int64), table, np.zeros((N, 6, 5), np.uint8), exclude)

    simulated = choose(strategy, scores, cfg, round_index, seed=5)
    # The request the simulation's plan stands for: its seed and (cost-sensitive) its budget; the rest is the
    # service's policy as it is (the config's policy fields are the service's defaults).
    sim_plan = plan(strategy, table, cfg, round_index, 5, AnnotationCostModel(), exclude)
    request = QueryRequest(
        pool="p",
        lease_seconds=60.0,  # nobody is named, so nothing is leased
        strategy=strategy,
        k=K,
        round_index=round_index,
        seed=int(sim_plan.params.get("seed", 0)),
        budget_seconds=float(sim_plan.params.get("budget_seconds", 0.0)),
        max_pseudo=3,
    )
    served = query_list(store, "unet", 1, request)

    limit = len(simulated.query) if strategy == "cost_sensitive" else K
    assert [item.record.image_id for item in served.items] == [table.image_ids[i] for i in simulated.query][:limit]
    assert served.items and not labelled & {item.record.image_id for item in served.items}
    assert served.pseudo == [
        (table.image_ids[i], s) for i, s in zip(simulated.pseudo, simulated.pseudo_scores, strict=True)
    ]
    if strategy == "ceal" and round_index >= 2:
        assert 0 < len(served.pseudo) <= 3  # past the warm-up rounds the comparison covers pseudo-labels too
