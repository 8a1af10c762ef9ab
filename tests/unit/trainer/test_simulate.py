"""`ceal simulate`: a tiny run end to end (rows, no test leak, resume after a crash) and the summary arithmetic."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ceal.trainer.simulate as simulate_pkg
from ceal.service.selection import AnnotationCostModel, ScoreTable
from ceal.service.selection.policy import PSEUDO_PER_LABEL, PSEUDO_QUANTILE, PSEUDO_WARMUP_ROUNDS
from ceal.trainer.data.synth import write_isic
from ceal.trainer.simulate import (
    CEILING,
    ResultRow,
    SimConfig,
    SimData,
    SimulationError,
    load_sim_data,
    parse_strategies,
    read_results,
    run_simulation,
    scoring,
    summarize,
    summary_markdown,
    write_results,
)
from ceal.trainer.simulate import rounds as rounds_mod
from ceal.trainer.simulate.cli import register
from ceal.trainer.simulate.plot import plot_learning_curves
from ceal.trainer.simulate.report import first_reaching, normalized_auc
from ceal.trainer.simulate.rounds import ROUND0
from ceal.trainer.simulate.scoring import strategy_params
from ceal.trainer.simulate.state import RunFolder
from tests.unit.trainer.sim_configs import TINY


class Crash(RuntimeError):
    """Stands in for a kill in the middle of a run."""


@dataclasses.dataclass
class TinyRun:
    data: SimData
    rows: list[ResultRow]
    out: Path
    scored: list[npt.NDArray[np.int64]]  # the data rows each score_pool call saw


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_isic(root, 30, seed=3, height=40, width=40, progress=False)
    return root


@pytest.fixture(scope="module")
def tiny(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyRun]:
    data = load_sim_data(images / "images", images / "masks", TINY, progress=False)
    out = tmp_path_factory.mktemp("run")
    scored: list[npt.NDArray[np.int64]] = []
    real = scoring.score_pool

    def recording(loaded, data_, rows, samples, rng, labelled=None, versions=None):  # type: ignore[no-untyped-def]
        scored.append(np.concatenate([rows, [] if labelled is None else labelled]).astype(np.int64))
        return real(loaded, data_, rows, samples, rng, labelled, versions)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rounds_mod, "score_pool", recording)
        rows = run_simulation(out, data, TINY, progress=False)
    yield TinyRun(data, rows, out, scored)


def test_every_public_name_resolves_and_registering_the_command_loads_no_torch() -> None:
    assert all(getattr(simulate_pkg, name) is not None for name in simulate_pkg.__all__)
    code = "import sys, ceal.trainer.simulate.cli; print(sorted({'torch', 'onnxruntime', 'onnx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # `ceal --help` imports the cli of every plugin


def test_csv_has_one_row_per_arm_and_round(tiny: TinyRun) -> None:
    assert read_results(tiny.out / "results.csv") == sorted(tiny.rows, key=lambda r: (r.strategy, r.seed, r.round))
    keys = {(r.strategy, r.seed, r.round) for r in tiny.rows}
    assert keys == {(s, 0, r) for s in ("random", "ceal", CEILING) for r in range(3)}
    pool = len(tiny.data.pool)
    assert pool == 24 and len(tiny.data.test) == 6
    for row in tiny.rows:
        assert row.pool_size == pool and 0.0 <= row.test_dice <= 1.0
        want = pool if row.strategy == CEILING else TINY.initial + TINY.per_round * row.round
        assert row.human_labels == want
    by_key = {(r.strategy, r.round): r for r in tiny.rows}
    # Round 0 is shared by the strategies of a seed (same initial set, same model, same score).
    assert dataclasses.replace(by_key["random", 0], strategy="ceal") == by_key["ceal", 0]
    assert all(r.pseudo_labels == 0 for r in tiny.rows if r.strategy != "ceal" or r.round == 0)


def test_annotation_seconds_are_the_oracles_time_for_the_human_labels(tiny: TinyRun) -> None:
    run = RunFolder(tiny.out, TINY)
    for strategy in ("random", "ceal"):
        found = run.load(strategy, 0)
        assert found is not None
        state, _ = found
        assert len(state.human) == len(set(state.human)) == TINY.initial + TINY.rounds * TINY.per_round
        assert state.rows[-1].annotation_seconds == pytest.approx(tiny.data.seconds[list(state.human)].sum(), abs=1e-3)
        seconds = [r.annotation_seconds for r in state.rows]
        assert seconds == sorted(seconds) and seconds[0] > 0


def test_test_images_are_never_scored_for_selection_or_queried(tiny: TinyRun) -> None:
    test = set(tiny.data.test.tolist())
    assert tiny.scored, "the pool was never scored"
    for rows in tiny.scored:
        assert not test & set(rows.tolist())
    run = RunFolder(tiny.out, TINY)
    for strategy in ("random", "ceal"):
        found = run.load(strategy, 0)
        assert found is not None
        assert not test & set(found[0].human)
        assert set(found[0].human) <= set(tiny.data.pool.tolist())


def test_a_leak_is_refused(tiny: TinyRun) -> None:
    with pytest.raises(SimulationError, match="test"):
        rounds_mod._check_no_leak(tiny.data, tiny.data.test[:1])


def test_a_crashed_run_resumes_where_it_stopped(tiny: TinyRun, images: Path, tmp_path: Path) -> None:
    data = load_sim_data(images / "images", images / "masks", TINY, progress=False)
    seen: list[tuple[str, int]] = []

    def crash_after_ceal_round_1(row: ResultRow) -> None:
        seen.append((row.strategy, row.round))
        if (row.strategy, row.round) == ("ceal", 1):
            raise Crash

    with pytest.raises(Crash):
        run_simulation(tmp_path, data, TINY, progress=False, on_round=crash_after_ceal_round_1)
    before = read_results(tmp_path / "results.csv")
    assert {(r.strategy, r.round) for r in before} == set(seen)  # every finished round was persisted

    resumed: list[tuple[str, int]] = []
    rows = run_simulation(
        tmp_path, data, TINY, progress=False, on_round=lambda r: resumed.append((r.strategy, r.round))
    )
    assert resumed == [("ceal", 2)]  # nothing finished is redone
    assert rows == tiny.rows  # and the result is the uninterrupted run's, exactly


def test_arms_in_worker_processes_give_the_rows_of_one_process(tiny: TinyRun, tmp_path: Path) -> None:
    # Two worker processes (spawned, so the monkeypatched recorder does not apply), same recipe: every arm's
    # draws are seeded by the arm, so the rows are exactly those of the single-process run, and every row
    # reached the parent's hook.
    seen: list[tuple[str, int, int]] = []
    rows = run_simulation(
        tmp_path,
        tiny.data,
        dataclasses.replace(TINY, workers=2),
        progress=False,
        on_round=lambda r: seen.append((r.strategy, r.seed, r.round)),
    )
    assert rows == tiny.rows
    assert sorted(seen) == sorted((r.strategy, r.seed, r.round) for r in tiny.rows)


def test_without_warm_start_each_round_starts_afresh(tiny: TinyRun, tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, warm_start=False)
    cold = run_simulation(tmp_path, tiny.data, cfg, progress=False)
    assert [(r.strategy, r.round, r.human_labels) for r in cold] == [
        (r.strategy, r.round, r.human_labels) for r in tiny.rows
    ]
    # Round 0 is trained from scratch either way; the last round's weights differ only by the warm start.
    warm_state, warm = RunFolder(tiny.out, TINY).load("random", 0)  # type: ignore[misc]
    cold_state, fresh = RunFolder(tmp_path, cfg).load("random", 0)  # type: ignore[misc]
    assert warm_state.round == cold_state.round == TINY.rounds
    assert any(not torch.equal(warm[k], fresh[k]) for k in warm)
    zero_warm, zero_cold = RunFolder(tiny.out, TINY).load(ROUND0, 0), RunFolder(tmp_path, cfg).load(ROUND0, 0)
    assert zero_warm is not None and zero_cold is not None
    assert all(torch.equal(zero_warm[1][k], zero_cold[1][k]) for k in zero_warm[1])


def test_more_rounds_extend_a_finished_run(tiny: TinyRun, tmp_path: Path) -> None:
    shutil.copytree(tiny.out, tmp_path / "run")
    more = dataclasses.replace(TINY, rounds=TINY.rounds + 1)
    added: list[tuple[str, int]] = []
    rows = run_simulation(
        tmp_path / "run", tiny.data, more, progress=False, on_round=lambda r: added.append((r.strategy, r.round))
    )
    assert sorted(added) == sorted((s, TINY.rounds + 1) for s in ("full_data", *TINY.strategies))
    assert [r for r in rows if r.round <= TINY.rounds] == tiny.rows  # the rounds done are kept as they were
    with pytest.raises(SimulationError, match="rounds"):
        RunFolder(tmp_path / "run", TINY)  # fewer rounds than the run holds: refused


def test_resuming_with_another_recipe_is_refused(tiny: TinyRun) -> None:
    with pytest.raises(SimulationError, match="samples"):
        RunFolder(tiny.out, dataclasses.replace(TINY, samples=5))
    RunFolder(tiny.out, dataclasses.replace(TINY, strategies=("random", "bald"), seeds=2))  # same recipe: fine
    assert json.loads((tiny.out / "config.json").read_text())["seeds"] == 2


def test_plot_and_summary_of_the_tiny_run(tiny: TinyRun) -> None:
    plot_learning_curves(tiny.rows, tiny.out / "learning_curves.png")
    assert (tiny.out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = summary_markdown(summarize(tiny.rows))
    assert "| random |" in text and "| ceal |" in text


def _rows(strategy: str, seed: int, labels: list[int], dice: list[float], pool: int = 100) -> list[ResultRow]:
    return [
        ResultRow(strategy, seed, r, n, 0, 30.0 * n, d, pool) for r, (n, d) in enumerate(zip(labels, dice, strict=True))
    ]


def test_label_efficiency_arithmetic_on_a_hand_made_table(tmp_path: Path) -> None:
    labels = [10, 20, 30, 40, 50]  # of a pool of 100; seconds are 30 per label, so minutes = labels / 2
    rows = (
        _rows(CEILING, 0, [100] * 5, [0.60, 0.80, 0.90, 1.00, 1.00])
        + _rows(CEILING, 1, [100] * 5, [0.60, 0.80, 0.90, 1.00, 1.00])
        + _rows("random", 0, labels, [0.30, 0.50, 0.70, 0.90, 0.99])  # seed mean … 0.90, 0.985
        + _rows("random", 1, labels, [0.30, 0.50, 0.70, 0.90, 0.98])
        + _rows("ceal", 0, labels, [0.30, 0.80, 0.90, 0.99, 1.00])  # seed mean 0.30, 0.79, 0.89, 0.9825, 1.0
        + _rows("ceal", 1, labels, [0.30, 0.78, 0.88, 0.975, 1.00])
        + _rows("entropy", 0, labels, [0.30, 0.40, 0.50, 0.50, 0.50])
    )
    write_results(tmp_path / "results.csv", rows)
    summary = summarize(read_results(tmp_path / "results.csv"))
    assert summary.ceiling == (1.0, 0.0)
    assert summary.ceiling_by_round == (0.6, 0.8, 0.9, 1.0, 1.0)
    assert [s.strategy for s in summary.strategies] == ["ceal", "random", "entropy"]  # best AUC first
    rand, ceal, entropy = summary.get("random"), summary.get("ceal"), summary.get("entropy")
    assert rand is not None and ceal is not None and entropy is not None
    # Same-round ceiling: ceal's 0.79 at round 1 is ≥ 0.98 · 0.80 = 0.784; random needs round 4 (0.985 ≥ 0.98).
    assert ceal.labels_to == {0.95: 20.0, 0.98: 20.0} and ceal.minutes_to == {0.95: 10.0, 0.98: 10.0}
    assert rand.labels_to == {0.95: 50.0, 0.98: 50.0}
    # Final ceiling 1.0: ceal's 0.9825 at round 3; random's 0.985 at round 4.
    assert ceal.labels_to_final == {0.95: 40.0, 0.98: 40.0} and rand.labels_to_final == {0.95: 50.0, 0.98: 50.0}
    assert entropy.labels_to == {0.95: None, 0.98: None} and entropy.auc_gain is not None
    # AUC over x = 0.1 … 0.5 (width 0.4), trapezoids of width 0.1.
    assert rand.auc[0] == pytest.approx((0.68625 + 0.685) / 2)
    assert rand.auc[1] == pytest.approx(0.00125 / np.sqrt(2))
    assert ceal.auc[0] == pytest.approx((0.835 + 0.82125) / 2)
    assert ceal.auc_gain == pytest.approx((0.1425, 0.0125 / np.sqrt(2)))
    assert rand.auc_gain is None and entropy.auc_gain[1] == 0.0  # one seed: no spread
    assert ceal.seed_gains == pytest.approx({0: 0.835 - 0.68625, 1: 0.82125 - 0.685}) and rand.seed_gains is None
    assert ceal.final_dice == (1.0, 0.0) and ceal.final_labels == 50.0
    text = summary_markdown(summary)
    assert "ceal reached 98 % with 20 human labels, random with 50 → met" in text
    assert "a margin of +0.1425" in text and text.count("→ met") == 2
    assert "| entropy | 1 | not reached (> 50) |" in text
    assert "| ceal | 2 | 20 (20 %) | 20 (20 %) | 40 (40 %) | 10.0 |" in text
    assert "- ceal: seed 0 +0.1487, seed 1 +0.1362" in text and "- random:" not in text


def test_a_summary_needs_the_ceiling() -> None:
    with pytest.raises(SimulationError, match="ceiling"):
        summarize(_rows("random", 0, [10, 20], [0.1, 0.2]))


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=8),
    dice=st.lists(st.floats(0.0, 1.0), min_size=9, max_size=9),
)
def test_auc_is_a_mean_dice_between_the_lowest_and_highest(steps: list[float], dice: list[float]) -> None:
    x = np.concatenate([[0.0], np.cumsum(steps)])
    y = np.array(dice[: x.size])
    auc = normalized_auc(x, y)
    assert y.min() - 1e-12 <= auc <= y.max() + 1e-12
    assert normalized_auc(x, np.full(x.size, 0.7)) == pytest.approx(0.7)


@settings(max_examples=60, deadline=None)
@given(dice=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10), target=st.floats(0.0, 1.0))
def test_first_reaching_is_the_first_point_at_or_over_the_target(dice: list[float], target: float) -> None:
    x = [10.0 * (i + 1) for i in range(len(dice))]
    got = first_reaching(x, dice, target)
    if max(dice) < target:
        assert got is None
    else:
        assert got is not None
        i = x.index(got)
        assert dice[i] >= target and all(d < target for d in dice[:i])


def test_strategy_names_and_the_recipe() -> None:
    assert parse_strategies(" Random, cost,ceal,random ") == ("random", "cost_sensitive", "ceal")
    assert parse_strategies("cost_sensitive,cost,cost+syn") == ("cost_sensitive", "cost_sensitive+syn")
    with pytest.raises(SimulationError, match="cost_sensitive"):
        parse_strategies("random,oracle")
    with pytest.raises(SimulationError, match="multiples"):
        SimConfig(height=30)
    assert not {"strategies", "seeds", "workers"} & set(TINY.recipe())
    assert {"steps", "learning_rate", "warm_start"} <= set(TINY.recipe())
    with pytest.raises(SimulationError, match="workers"):
        SimConfig(workers=0)


def test_strategy_parameters_are_the_query_servicers() -> None:
    n = 8
    entropy = np.linspace(0.1, 0.8, n)
    table = ScoreTable(
        image_ids=tuple(f"i{i}" for i in range(n)),
        entropy=entropy,
        mutual_information=entropy / 2,
        variance=entropy / 4,
        confidence=1 - entropy,
        boundary_length=np.linspace(0.0, 70.0, n),
        components=np.ones(n),
        descriptors=np.eye(n, dtype=np.float32),
    )
    cost = AnnotationCostModel()
    k, ceal = strategy_params("ceal", table, TINY, 2, 0, cost)
    assert k == TINY.per_round and ceal["round_index"] == 2 and ceal["max_pseudo"] is None
    assert ceal["delta_0"] == pytest.approx(np.quantile(entropy, PSEUDO_QUANTILE))
    assert ceal["decay"] == pytest.approx(ceal["delta_0"] / 10)
    assert ceal["pseudo_per_label"] == PSEUDO_PER_LABEL and ceal["warmup_rounds"] == PSEUDO_WARMUP_ROUNDS
    _, labelled = strategy_params("ceal", table, TINY, 2, 0, cost, exclude=(0, 1))  # rows 0, 1: labelled context
    assert labelled["delta_0"] == pytest.approx(np.quantile(entropy[2:], PSEUDO_QUANTILE))  # the free pool's
    k, budget = strategy_params("cost", table, TINY, 0, 0, cost)
    assert k == n and budget["budget_seconds"] == pytest.approx(3 * (20 + 0.15 * 35 + 10))
    assert strategy_params("suggestive", table, TINY, 0, 0, cost) == (3, {})
    wide = dataclasses.replace(TINY, suggestive_candidates=0)
    assert strategy_params("suggestive", table, wide, 0, 0, cost) == (3, {"candidates": n})
    random_a = strategy_params("random", table, TINY, 1, 0, cost)[1]["seed"]
    assert random_a != strategy_params("random", table, TINY, 2, 0, cost)[1]["seed"]  # a new draw each round


def test_the_cli_registers_simulate_with_its_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "simulate",
            "--images",
            "i",
            "--masks",
            "m",
            "--out",
            str(tmp_path),
            "--strategies",
            "random,cost",
            "--seeds",
            "3",
            "--initial",
            "10",
            "--per-round",
            "5",
            "--rounds",
            "4",
            "--steps",
            "200",
            "--no-warm-start",
            "--workers",
            "2",
            "--height",
            "48",
            "--width",
            "64",
            "--samples",
            "6",
            "--test-fraction",
            "0.25",
        ]
    )
    assert args.strategies == ("random", "cost_sensitive") and args.per_round == 5 and args.test_fraction == 0.25
    assert args.steps == 200 and args.warm_start is False and args.workers == 2
