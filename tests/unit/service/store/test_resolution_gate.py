"""The reduced-resolution gate (`pool/resolution.py`): a version scores its pools at the reduced size only when a
calibration sample ranks like full size (Spearman ρ >= FIDELITY_RHO), decides once, and logs why without ids.

Models and scorers are fakes: the full model scores each image by its number; the reduced one keeps that order
(passes) or scrambles it (fails). A SQLite pool checks the hook in `PoolScorer.score`."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from ceal.service.engine.loaded import LoadedModel
from ceal.service.errors import InvalidInput
from ceal.service.pool.resolution import CALIBRATION_IMAGES, FIDELITY_RHO, ResolutionGate, check_scale
from ceal.service.pool.scoring import PoolScorer, SamplingPlan
from ceal.service.store import NewImage, PoolStore, ScoreRow, open_store


def _model(version: int = 1, size: tuple[int, int] = (192, 240)) -> LoadedModel:
    meta = SimpleNamespace(name="unet", version=version, input_height=size[0], input_width=size[1])
    return cast(LoadedModel, SimpleNamespace(meta=meta, key=("unet", version)))


def _reduced(model: LoadedModel, scale: float) -> LoadedModel:
    return _model(model.meta.version, (96, 128))


IDS = [f"img-{i:04d}" for i in range(100)]


class Scores:
    """Mean-MI scores by image: the image's number at full size; at reduced size the same order (`keep`), or
    one unrelated to it. Records what it scored."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.calls: list[tuple[int, list[str]]] = []

    def __call__(self, model: LoadedModel, ids: Sequence[str]) -> list[float]:
        height = model.meta.input_height
        self.calls.append((height, list(ids)))
        numbers = np.array([int(i.split("-")[1]) for i in ids], dtype=np.float64)
        if height == 192 or self.keep:
            return list(1e-3 * numbers + (0 if height == 192 else 1e-4))
        return list(np.random.default_rng(7).permutation(numbers))


def test_a_ranking_that_holds_scores_at_the_reduced_size(caplog: pytest.LogCaptureFixture) -> None:
    gate, scores, model = ResolutionGate(0.5, build=_reduced), Scores(keep=True), _model()
    with caplog.at_level(logging.INFO, logger="ceal.service.pool.resolution"):
        chosen = gate.model_for(model, lambda: IDS, scores)
    assert chosen.meta.input_height == 96
    full, small = scores.calls
    assert full[0] == 192 and small[0] == 96 and full[1] == small[1]  # the same images at both sizes
    assert len(full[1]) == CALIBRATION_IMAGES == len(set(full[1])) and set(full[1]) <= set(IDS)
    decision = gate.decision("unet", 1)
    assert decision is not None and decision.reduced and decision.rho == pytest.approx(1.0)
    assert "scored at 96×128 for 192×240" in caplog.text and "ρ of mean MI 1.000" in caplog.text
    assert not any(i in caplog.text for i in IDS)  # no image ids in the log
    # decided once per version: the next pass (another pool) does not calibrate again
    assert gate.model_for(model, lambda: IDS[:10], scores) is chosen and len(scores.calls) == 2
    # a new version decides anew
    assert gate.model_for(_model(2), lambda: IDS, scores).meta.input_height == 96 and len(scores.calls) == 4


def test_a_ranking_that_does_not_hold_falls_back_to_full_size(caplog: pytest.LogCaptureFixture) -> None:
    gate, scores, model = ResolutionGate(2 / 3, build=_reduced), Scores(keep=False), _model()
    with caplog.at_level(logging.INFO, logger="ceal.service.pool.resolution"):
        assert gate.model_for(model, lambda: IDS, scores) is model
    decision = gate.decision("unet", 1)
    assert decision is not None and not decision.reduced and decision.rho < FIDELITY_RHO
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "scored at full resolution, not 96×128" in record.getMessage()
    assert f"{decision.rho:.3f} < {FIDELITY_RHO}" in record.getMessage()
    assert not any(i in caplog.text for i in IDS)
    assert gate.model_for(model, lambda: IDS, scores) is model and len(scores.calls) == 2  # remembered


def test_scores_that_do_not_vary_are_no_evidence() -> None:
    gate = ResolutionGate(0.5, build=_reduced)
    model = _model()
    assert gate.model_for(model, lambda: IDS, lambda m, ids: [0.0] * len(ids)) is model
    decision = gate.decision("unet", 1)
    assert decision is not None and math.isnan(decision.rho) and "undefined" in decision.reason


def test_a_small_pool_scores_at_full_size_and_leaves_the_decision_to_a_larger_one() -> None:
    gate, scores, model = ResolutionGate(0.5, build=_reduced), Scores(keep=True), _model()
    assert gate.model_for(model, lambda: IDS[:5], scores) is model
    assert gate.decision("unet", 1) is None and scores.calls == []
    assert gate.model_for(model, lambda: IDS[:20], scores).meta.input_height == 96  # all 20 calibrate
    assert len(scores.calls[0][1]) == 20


def test_a_model_that_cannot_run_smaller_is_scored_at_full_size(caplog: pytest.LogCaptureFixture) -> None:
    def fixed(model: LoadedModel, scale: float) -> LoadedModel:
        raise InvalidInput("unet v1 at 96×128 does not run: its graph fixes the spatial size")

    gate, scores, model = ResolutionGate(0.5, build=fixed), Scores(keep=True), _model()
    with caplog.at_level(logging.INFO, logger="ceal.service.pool.resolution"):
        assert gate.model_for(model, lambda: IDS, scores) is model
    assert scores.calls == [] and "fixes the spatial size" in caplog.text


@pytest.mark.parametrize("scale", [0.0, -0.5, 0.1, 1.5, float("nan"), float("inf")])
def test_bad_scales_are_refused_saying_what_to_change(scale: float) -> None:
    with pytest.raises(InvalidInput, match=r"rescore_scale must be between 0.25 and 1 \(1 = score pools at full"):
        check_scale(scale)
    with pytest.raises(InvalidInput, match="rescore_scale"):
        ResolutionGate(scale)


class RecordingScorer(PoolScorer):
    """A PoolScorer whose batches record the model's input height and score each image by its pixels' mean."""

    def __init__(self, store: PoolStore, gate: ResolutionGate) -> None:
        engine = cast(Any, SimpleNamespace(batcher=SimpleNamespace(max_images=4)))
        super().__init__(store, engine, resolution=gate)
        self.heights: list[int] = []

    def _score_batch(
        self, pool: str, model: LoadedModel, ids: list[str], plan: SamplingPlan, rng: np.random.Generator
    ) -> Callable[[], tuple[list[ScoreRow], int]]:
        self.heights.append(model.meta.input_height)
        values = [float(self.store.load_pixels(pool, i).mean()) for i in ids]
        rows = [ScoreRow(i, "unet", 1, v, v, v, 0.9, 9.0, 1, 0.2) for i, v in zip(ids, values, strict=True)]
        return lambda: (rows, plan.samples * len(ids))


def test_pool_scoring_runs_the_version_at_the_size_its_gate_chose(tmp_path: Path) -> None:
    with open_store(str(tmp_path)) as store:
        rng = np.random.default_rng(0)
        store.register_images("p", [NewImage(rng.integers(0, 200, (6, 5)).astype(np.uint16)) for _ in range(40)])
        scorer = RecordingScorer(store, ResolutionGate(0.5, build=_reduced))
        last = list(scorer.score("p", _model(), SamplingPlan(4)))[-1]
        assert last.finished and last.total == 40
        calibration = 2 * CALIBRATION_IMAGES // 4  # batches of 4 at each size
        assert scorer.heights[:calibration] == [192] * (calibration // 2) + [96] * (calibration // 2)
        assert set(scorer.heights[calibration:]) == {96}  # the pass itself: reduced (the order is the same)
        assert store.counts("p", "unet", 1).scored_fresh == 40


def test_the_first_message_comes_before_the_calibration(tmp_path: Path) -> None:
    with open_store(str(tmp_path)) as store:
        rng = np.random.default_rng(1)
        store.register_images("p", [NewImage(rng.integers(0, 200, (6, 5)).astype(np.uint16)) for _ in range(40)])
        scorer = RecordingScorer(store, ResolutionGate(0.5, build=_reduced))
        passes = scorer.score("p", _model(), SamplingPlan(4))
        first = next(passes)
        assert (first.done, first.total, first.finished) == (0, 40, False) and scorer.heights == []  # not yet
        assert list(passes)[-1].finished and len(scorer.heights) > 0
        again = list(scorer.score("p", _model(), SamplingPlan(4), force=True))  # decided: no extra message
        assert again[0].total == 40 and sum(not p.finished and p.done == 0 for p in again) == 1
