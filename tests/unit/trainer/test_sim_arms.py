"""The second pass's arms in a tiny simulation: foreground-aware random, the version ensemble, `+semi`, a
synthetic family drawn in memory, and the per-round failure-prediction correlations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ceal.service.selection import Selection
from ceal.trainer.simulate import SimConfig, SimulationError, parse_strategies, run_simulation
from ceal.trainer.simulate.config import registry_name, uses_ceiling_descriptors, uses_semi, uses_synthesis
from ceal.trainer.simulate.data import family_sim_data
from ceal.trainer.simulate.rounds import ceiling_descriptors
from ceal.trainer.simulate.scoring import PoolScores, choose
from ceal.trainer.simulate.state import RunFolder
from tests.support.determinism import deterministic_torch
from tests.unit.trainer.sim_configs import TINY

ARMS = dataclasses.replace(
    TINY,
    strategies=("random_foreground", "ensemble", "random+semi"),
    family="nuclei",
    family_n=30,
    augmentation="standard",
    semi_threshold=0.6,
    ensemble_k=2,
)


def test_suffixes_combine_and_bad_settings_are_refused() -> None:
    assert parse_strategies("cost+semi, bald+semi+syn") == ("cost_sensitive+semi", "bald+semi+syn")
    assert registry_name("bald+semi+syn") == "bald" and uses_semi("bald+semi+syn") and uses_synthesis("bald+semi+syn")
    assert not uses_semi("random")
    for bad, match in (
        ({"family": "xray"}, "family must be one of lesion, nuclei"),
        ({"augmentation": "heavy"}, "unknown augmentation"),
        ({"semi_mode": "meanteacher"}, "fixmatch, ceal"),
        ({"ensemble_k": 1}, "ensemble_k"),
    ):
        with pytest.raises(SimulationError, match=match):
            SimConfig(**bad)  # type: ignore[arg-type]


def test_new_arms_run_record_and_resume(tmp_path: Path) -> None:
    data = family_sim_data(ARMS)
    assert len(data.pool) + len(data.test) == 30
    with deterministic_torch(0):
        rows = run_simulation(tmp_path, data, ARMS, progress=False)
    last = {r.strategy: r for r in rows if r.round == ARMS.rounds}
    assert set(last) == {"full_data", *ARMS.strategies}
    semi = last["random+semi"]
    assert semi.semi_images > 0 and 0 < semi.semi_weight <= 1 and last["ensemble"].semi_images == 0
    record = json.loads((RunFolder(tmp_path, ARMS).arm_dir("random+semi", 0) / "semi-002.json").read_text())
    assert record["mode"] == "fixmatch" and len(record["contributed"]) == semi.semi_images
    assert not set(record["contributed"]) & {data.ids[i] for i in data.test}  # the test set never trains
    # the ensemble's correlation needs two versions (from round 1; -2 where a tiny model's score is constant)
    assert all(r.rho_ensemble == -2.0 for r in rows if r.round == 0)
    assert any(-1 <= r.rho_ensemble <= 1 for r in rows if r.round > 0)
    assert all(-1 <= r.rho_mi <= 1 or r.rho_mi == -2.0 for r in rows)
    kept = sorted(p.name for p in RunFolder(tmp_path, ARMS).arm_dir("ensemble", 0).glob("masks-*.npz"))
    assert kept == ["masks-001.npz", "masks-002.npz"]  # the last ensemble_k rounds only
    with deterministic_torch(0):
        again = run_simulation(tmp_path, data, ARMS, progress=False)  # all done: resumes to the same rows
    assert again == rows


def test_a_ceiling_descriptor_arm_ranks_by_the_full_data_models_descriptors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = dataclasses.replace(ARMS, strategies=parse_strategies("typiclust, typiclust+ceiling"))
    assert uses_ceiling_descriptors("typiclust+ceiling") and registry_name("typiclust+ceiling") == "typiclust"
    data = family_sim_data(cfg)
    with pytest.raises(SimulationError, match="needs the full-data arm's final round"):
        ceiling_descriptors(RunFolder(tmp_path, cfg), data, cfg, 0)
    seen: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"typiclust": [], "typiclust+ceiling": []}

    def spy(strategy: str, scores: PoolScores, *args: Any, **kwargs: Any) -> Selection:
        assert scores.table.descriptors is not None
        seen[strategy].append((scores.rows, scores.table.descriptors))  # the rows the strategy ranks, and theirs
        return choose(strategy, scores, *args, **kwargs)

    monkeypatch.setattr("ceal.trainer.simulate.rounds.choose", spy)
    with deterministic_torch(0):
        rows = run_simulation(tmp_path, data, cfg, progress=False)
    assert {r.strategy for r in rows if r.round == cfg.rounds} == {"full_data", *cfg.strategies}
    ceiling = ceiling_descriptors(RunFolder(tmp_path, cfg), data, cfg, 0)  # (N, D): every data row
    assert ceiling.shape[0] == len(data.ids) and len(seen["typiclust+ceiling"]) == cfg.rounds
    for table_rows, descriptors in seen["typiclust+ceiling"]:
        np.testing.assert_array_equal(descriptors, ceiling[table_rows])
    (own_rows, own), (ceiling_rows, _) = seen["typiclust"][0], seen["typiclust+ceiling"][0]
    assert np.array_equal(own_rows, ceiling_rows) and not np.allclose(own, ceiling[own_rows])  # round 1: same rows
