"""The active-learning rounds of one (strategy, seed) arm, the full-data ceiling, and the whole run.

Round 0 trains on `initial` random pool images (the same ones for every strategy of a seed, so arms are
paired, and shared: trained once per seed). Each later round: score the free pool with the previous round's
served model, let the strategy choose, take the oracle's masks for the query (and, for CEAL, the model's own
masks for the confident images; for a `+syn` arm, generated pairs around every image it queried so far; for a
`+semi` arm, the rest of the free pool as unlabelled images), fine-tune the previous weights, export, and
measure test Dice and how well each uncertainty predicts the test images' errors (`members`).

Every round is `steps` optimizer steps with a one-cycle learning rate (`ceal.trainer.steps.fit_steps`): the
same compute for 20 labels as for 200, and a model that has converged on its labels when it is measured, so
the curves compare labels, not training time. By default a round starts from the previous round's weights,
as `ceal loop` fine-tunes in production; `warm_start=False` starts every round afresh. The ceiling gets the
same rounds with the whole pool labelled from round 0.

With `workers` > 1 the arms run in that many processes (the seeds' round 0 and ceilings first, then the
strategies), each arm's rows the same as in a single process: every random draw is seeded by the arm.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import queue
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from ceal.trainer.metrics import per_class_scores
from ceal.trainer.semi import SemiConfig, Unlabelled
from ceal.trainer.steps import StepSchedule, fit_steps
from ceal.trainer.train import Dataset, dice_score
from ceal.trainer.unet import UNet, UNetConfig

from .config import CEILING, SimConfig, SimulationError, registry_name, uses_ceiling_descriptors, uses_semi
from .data import SimData
from .members import disagreement, member_masks, spearman, test_measures
from .results import ResultRow
from .scoring import arm_seed, choose, sampled, score_pool, serve
from .state import ArmState, RunFolder, Weights
from .synthesis import synthetic_pairs

__all__ = ["ROUND0", "RoundHook", "ceiling_descriptors", "run_arm", "run_simulation"]

log = logging.getLogger(__name__)

ROUND0 = "_round0"  # the shared round 0 of a seed, copied into each strategy's arm
RoundHook = Callable[[ResultRow], None]
CONTEXT_STRATEGIES = frozenset({"ceal", "typiclust"})  # they read the labelled images' rows too
IndexArray = npt.NDArray[np.int64]


def _foreground_hd95(masks: npt.NDArray[np.integer], truth: npt.NDArray[np.integer]) -> float:
    """Mean HD95 (pixels) of the foreground (any class) over the test images; see `ResultRow.test_hd95`."""
    (scores,) = per_class_scores((masks != 0).astype(np.uint8), (truth != 0).astype(np.uint8), ("bg", "fg"))
    return scores.hd95 if np.isfinite(scores.hd95) else -1.0


def _weights(model: UNet) -> Weights:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _new_model(cfg: SimConfig, seed: int) -> UNet:
    torch.manual_seed(arm_seed(seed, "init"))
    return UNet(UNetConfig(base_filters=cfg.base_filters, depth=cfg.depth, dropout_placement=cfg.dropout_placement))


def _train(
    model: UNet,
    train: Dataset,
    cfg: SimConfig,
    seed: int,
    round_index: int,
    synthetic: int = 0,
    unlabelled: Unlabelled | None = None,
) -> UNet:
    """One round's training: cfg.steps steps of the trainer's loss (Dice + BCE, Adam, cfg.augmentation, the
    unlabelled loss with `unlabelled`) with a one-cycle learning rate peaking at cfg.learning_rate; from
    `model`'s weights, or afresh without warm start."""
    if round_index > 0 and not cfg.warm_start:
        model = _new_model(cfg, seed)
    schedule = StepSchedule(
        steps=cfg.steps,
        max_lr=cfg.learning_rate,
        batch_size=cfg.batch_size,
        seed=arm_seed(seed, round_index, "train"),
        augmentation=cfg.augmentation,
    )
    fit_steps(model, train, schedule, synthetic_weights(len(train.ids), synthetic, cfg.synth_share), unlabelled)
    return model


def synthetic_weights(total: int, synthetic: int, share: float | None) -> np.ndarray | None:
    """Draw weights for a training set whose last `synthetic` of `total` pairs are synthetic, so that they make
    up `share` of the draws on average; None (uniform) without a share or without both kinds of pair."""
    real = total - synthetic
    if not 0 <= synthetic <= total:
        raise ValueError(f"{synthetic} synthetic pairs in a training set of {total}")
    if share is None or synthetic == 0 or real == 0:
        return None
    return np.concatenate([np.full(real, (1 - share) / real), np.full(synthetic, share / synthetic)])


def _extend(train: Dataset, more: Dataset) -> Dataset:
    """`train` followed by `more` (pseudo-labels or synthetic pairs: this round's training only)."""
    if not more.ids:
        return train
    return Dataset(
        [*train.ids, *more.ids],
        np.concatenate([train.images, more.images]),
        np.concatenate([train.masks, more.masks]),
    )


def _finish_round(
    run: RunFolder,
    model: UNet,
    data: SimData,
    cfg: SimConfig,
    prior: ArmState | None,
    strategy: str,
    seed: int,
    round_index: int,
    human: IndexArray,
    pseudo: int,
    synthetic: int = 0,
    semi: tuple[int, float] = (0, 0.0),
) -> ArmState:
    """Evaluate the trained model on the test set through the served path, keep its member masks, and
    persist the round. semi: (images, mean weight) of a `+semi` round's unlabelled contributions."""
    loaded = serve(model, cfg, round_index + 1)
    rng = np.random.default_rng(arm_seed(seed, round_index, "test"))
    masks, entropy, mi = test_measures(loaded, data, cfg.samples, rng)
    run.save_masks(strategy, seed, round_index, member_masks(model, data), cfg.ensemble_k)
    versions = disagreement(run.load_masks(strategy, seed, round_index, cfg.ensemble_k))
    truth = data.masks[data.test]
    row = ResultRow(
        strategy,
        seed,
        round_index,
        len(human),
        pseudo,
        round(float(data.seconds[human].sum()), 3),
        round(dice_score(masks != 0, data.masks[data.test] != 0), 6),
        len(data.pool),
        synthetic,
        round(_foreground_hd95(masks, data.masks[data.test]), 4),
        semi[0],
        round(semi[1], 4),
        spearman(entropy, masks, truth),
        spearman(mi, masks, truth),
        -2.0 if versions is None else spearman(versions[data.test], masks, truth),
    )
    state = ArmState(strategy, seed, round_index, tuple(int(i) for i in human), (*(prior.rows if prior else ()), row))
    run.save(state, _weights(model))
    return state


def _round0(run: RunFolder, data: SimData, cfg: SimConfig, seed: int) -> tuple[ArmState, Weights]:
    """The seed's round 0 (initial random set), trained once and shared by its strategies."""
    found = run.load(ROUND0, seed)
    if found is not None:
        return found
    rng = np.random.default_rng(arm_seed(seed, "initial"))
    human = np.sort(rng.choice(data.pool, size=cfg.initial, replace=False)).astype(np.int64)
    model = _train(_new_model(cfg, seed), data.dataset(human), cfg, seed, 0)
    state = _finish_round(run, model, data, cfg, None, ROUND0, seed, 0, human, 0)
    return state, _weights(model)


def _check_no_leak(data: SimData, rows: IndexArray) -> None:
    leaked = np.intersect1d(rows, data.test)
    if leaked.size or not np.isin(rows, data.pool).all():
        raise SimulationError(
            f"a strategy chose {leaked.size} held-out test images; the test set must never be queried"
        )


def run_arm(
    run: RunFolder, data: SimData, cfg: SimConfig, strategy: str, seed: int, *, on_round: RoundHook | None = None
) -> ArmState:
    """Run (or resume) one arm to cfg.rounds; `on_round` sees each row once it is persisted."""
    found = run.load(strategy, seed)
    if found is None:
        shared, weights = _round0(run, data, cfg, seed)
        rows = tuple(dataclasses.replace(r, strategy=strategy) for r in shared.rows)
        found = ArmState(strategy, seed, 0, shared.human, rows), weights
        for masks in run.load_masks(ROUND0, seed, 0, 1):
            run.save_masks(strategy, seed, 0, masks, cfg.ensemble_k)
        run.save(*found)
        if on_round is not None:
            on_round(rows[-1])
    state, weights = found
    model = _new_model(cfg, seed)
    model.load_state_dict(weights)
    model.eval()
    ceiling = (
        ceiling_descriptors(run, data, cfg, seed)
        if uses_ceiling_descriptors(strategy) and state.round < cfg.rounds
        else None
    )
    while state.round < cfg.rounds:
        r = state.round + 1
        human = np.asarray(state.human, dtype=np.int64)
        free = np.setdiff1d(data.pool, human)
        if free.size == 0:
            break
        # CEAL also sees the labelled images (excluded), as the service's table does: they set its pseudo-label
        # cap. Other strategies score the free pool only (their choice does not read the rest).
        context = human if registry_name(strategy) in CONTEXT_STRATEGIES else None
        rng = np.random.default_rng(arm_seed(seed, r, strategy, "score"))
        versions = disagreement(run.load_masks(strategy, seed, r - 1, cfg.ensemble_k))
        scores = score_pool(serve(model, cfg, r), data, free, cfg.samples, rng, context, versions)
        if ceiling is not None:  # `+ceiling`: the strategy reads the full-data model's descriptors instead
            scores = dataclasses.replace(
                scores, table=dataclasses.replace(scores.table, descriptors=ceiling[scores.rows])
            )
        selection = choose(strategy, scores, cfg, r - 1, seed)
        query = scores.rows[list(selection.query)]
        pseudo = scores.rows[list(selection.pseudo)]
        _check_no_leak(data, np.concatenate([query, pseudo]))
        human = np.concatenate([human, query])
        # CEAL: the model's served masks stand in for the confident images, this round only.
        pseudo_set = Dataset([data.ids[i] for i in pseudo], data.images[pseudo], scores.masks[list(selection.pseudo)])
        synthetic = synthetic_pairs(data, cfg, strategy, seed, r, human)  # `+syn` arms only, rebuilt each round
        train = _extend(_extend(data.dataset(human), pseudo_set), synthetic)
        unlabelled = _unlabelled(data, cfg, strategy, seed, r, np.concatenate([human, pseudo]))
        model = _train(model, train, cfg, seed, r, len(synthetic.ids), unlabelled)
        semi = (0, 0.0)
        if unlabelled is not None:
            record = unlabelled.record()
            run.save_record(strategy, seed, f"semi-{r:03d}.json", record)
            shares = [float(w) for w in record["contributed"].values()]
            semi = (len(shares), float(np.mean(shares)) if shares else 0.0)
        state = _finish_round(
            run, model, data, cfg, state, strategy, seed, r, human, int(pseudo.size), len(synthetic.ids), semi
        )
        if on_round is not None:
            on_round(state.rows[-1])
    return state


def ceiling_descriptors(run: RunFolder, data: SimData, cfg: SimConfig, seed: int) -> npt.NDArray[np.float32]:
    """(N, D) every data row's encoder descriptor under the seed's final full-data model, for `+ceiling` arms: the
    embedding of a model trained on every pool label, an upper bound on what a better (e.g. self-supervised)
    encoder could give a strategy that reads descriptors. The ceiling runs before a seed's arms."""
    found = run.load(CEILING, seed)
    if found is None or found[0].round < cfg.rounds:
        raise SimulationError(f"a {seed=} +ceiling arm needs the full-data arm's final round; run the ceiling first")
    model = _new_model(cfg, seed)
    model.load_state_dict(found[1])
    model.eval()
    rows = [descriptor for _, _, descriptor in sampled(serve(model, cfg, 0), data.images, 1, np.random.default_rng(0))]
    return np.stack(rows).astype(np.float32)


def _unlabelled(
    data: SimData, cfg: SimConfig, strategy: str, seed: int, round_index: int, used: IndexArray
) -> Unlabelled | None:
    """A `+semi` arm's unlabelled images for this round: the pool rows no mask covers (never the test set)."""
    if not uses_semi(strategy):
        return None
    free = np.setdiff1d(data.pool, used)
    if free.size == 0:
        return None
    semi = SemiConfig(cfg.semi_mode, cfg.semi_threshold, cfg.semi_weight)
    return Unlabelled([data.ids[i] for i in free], data.images[free], semi, arm_seed(seed, round_index, "semi"))


def run_ceiling(
    run: RunFolder, data: SimData, cfg: SimConfig, seed: int, *, on_round: RoundHook | None = None
) -> ArmState:
    """The same rounds with the whole pool labelled from round 0: the full-data ceiling."""
    found = run.load(CEILING, seed)
    model = _new_model(cfg, seed)
    state: ArmState | None = None
    if found is not None:
        state, weights = found
        model.load_state_dict(weights)
    first = 0 if state is None else state.round + 1
    for r in range(first, cfg.rounds + 1):
        model = _train(model, data.dataset(data.pool), cfg, seed, r)
        state = _finish_round(run, model, data, cfg, state, CEILING, seed, r, data.pool, 0)
        if on_round is not None:
            on_round(state.rows[-1])
    assert state is not None
    return state


def _arm_job(run: RunFolder, data: SimData, cfg: SimConfig, arm: str, seed: int, rows: Any) -> None:
    """One arm in a worker process; every finished row goes to `rows` (a queue the parent drains)."""
    torch.set_num_threads(1)
    if arm == ROUND0:
        _round0(run, data, cfg, seed)  # shared by the seed's arms; its row reaches `rows` through each of them
    elif arm == CEILING:
        run_ceiling(run, data, cfg, seed, on_round=rows.put)
    else:
        run_arm(run, data, cfg, arm, seed, on_round=rows.put)


def _run_parallel(run: RunFolder, data: SimData, cfg: SimConfig, after: RoundHook) -> None:
    """Round 0 and the ceiling of every seed, then every (strategy, seed) arm, `cfg.workers` at a time."""
    context = multiprocessing.get_context("spawn")  # torch's thread pools do not survive fork
    with context.Manager() as manager, ProcessPoolExecutor(cfg.workers, mp_context=context) as pool:
        rows = manager.Queue()
        phases = [
            [arm for seed in range(cfg.seeds) for arm in ((CEILING, seed), (ROUND0, seed))],
            [(strategy, seed) for seed in range(cfg.seeds) for strategy in cfg.strategies],
        ]
        for phase in phases:
            jobs: list[Future[None]] = [pool.submit(_arm_job, run, data, cfg, a, s, rows) for a, s in phase]
            while jobs:
                try:
                    row = rows.get(timeout=0.5)
                except queue.Empty:
                    done = [j for j in jobs if j.done()]
                    for job in done:
                        job.result()  # a worker's exception stops the run here
                        jobs.remove(job)
                    continue
                after(row)
            while not rows.empty():  # rows put just before a job finished
                after(rows.get())


def run_simulation(
    out: Path, data: SimData, cfg: SimConfig, *, progress: bool = True, on_round: RoundHook | None = None
) -> list[ResultRow]:
    """Run (or resume) every arm: per seed the ceiling, then each strategy. Returns all result rows."""
    torch.set_num_threads(1)  # a shared 2-core machine: one steady thread beats two that fight for a core
    run = RunFolder(out, cfg)
    total = cfg.seeds * (len(cfg.strategies) + 1) * (cfg.rounds + 1)
    asked = {CEILING, *cfg.strategies}  # the folder may hold other arms and seeds: they are not this run's work
    done = sum(r.strategy in asked and r.seed < cfg.seeds and r.round <= cfg.rounds for r in run.write_results())
    bar = tqdm(total=total, initial=min(done, total), desc="simulate", unit="round", disable=not progress)

    def after(row: ResultRow) -> None:
        run.write_results()
        bar.update(1)
        bar.set_postfix(arm=f"{row.strategy}/{row.seed}", round=row.round, dice=f"{row.test_dice:.3f}")
        if on_round is not None:
            on_round(row)

    try:
        if cfg.workers > 1:
            _run_parallel(run, data, cfg, after)
        else:
            for seed in range(cfg.seeds):
                run_ceiling(run, data, cfg, seed, on_round=after)
                for strategy in cfg.strategies:
                    run_arm(run, data, cfg, strategy, seed, on_round=after)
    finally:
        bar.close()
    return run.write_results()
