"""perf_bench's fidelity half, on the trained bench model the speed half measures (`bench_model.py`).

Every figure compares image scores (mean mutual information and mean entropy, the scores pools rank by) with
those of the fp32 model at fixed T on the same images, seed i for image i, so both sides of a comparison see
the same dropout masks for the samples they share:
- the noise floor: fp32 fixed T with other masks (seed 10,000 + i);
- int8 at fixed T (and the Dice of its mean-probability masks against fp32's);
- adaptive T on fp32 over a grid of floors × tolerances, tolerances relative to the spread (std) of the
  fixed-T mutual-information scores; the chosen rule is the loosest whose ρ (MI and entropy) both reach
  min(0.95, noise floor);
- that rule on int8: what (f) runs when it holds the bar, else (f) runs the rule on fp32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from benchmarks.bench_model import BenchModel
from ceal.service.engine.adaptive import AdaptiveRule, sample_adaptive
from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.image_reductions import image_scores
from ceal.service.uncertainty import summarize
from ceal.trainer.train import dice_score

RELATIVE_TOLERANCES = (0.1, 0.25, 0.5, 1.0)  # × the spread (std) of the fixed-T mutual-information scores
MIN_SAMPLES = (4, 8)  # the rule's floor (adaptive_min_samples)
BAR = 0.95


@dataclass(frozen=True)
class Row:
    """One sampler against fp32 at fixed T: its ρ of MI and entropy scores, samples drawn and Dice."""

    label: str
    min_samples: int  # 0: fixed T
    relative: float  # tolerance / spread (0: fixed T)
    tolerance: float
    mean_samples: float
    fewest: int
    most: int
    spearman_mutual_information: float
    spearman_entropy: float
    dice: float

    def holds(self, bar: float) -> bool:
        return self.spearman_mutual_information >= bar and self.spearman_entropy >= bar


@dataclass(frozen=True)
class FidelityReport:
    placement: str
    images: int
    samples: int
    validation_dice: float  # from training (deterministic masks)
    chance_dice: float
    dice_fp32: float  # mean-probability masks at fixed T
    noise_floor: Row
    int8: Row
    adaptive: tuple[Row, ...]  # fp32
    chosen: Row  # the loosest fp32 adaptive row that holds the bar
    int8_adaptive: Row  # the chosen rule on int8
    use_int8: bool  # (f) runs on int8: int8_adaptive holds the bar

    @property
    def bar(self) -> float:
        floor = (self.noise_floor.spearman_mutual_information, self.noise_floor.spearman_entropy)
        return min(BAR, *floor) if all(math.isfinite(f) for f in floor) else BAR

    @property
    def f_row(self) -> Row:
        return self.int8_adaptive if self.use_int8 else self.chosen


def _spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else math.nan


def _scores(samples: np.ndarray) -> tuple[float, float]:
    s = image_scores(summarize(samples))
    return s[("mutual_information", "mean")], s[("entropy", "mean")]


@dataclass
class _Run:
    mi: list[float]
    entropy: list[float]
    drawn: list[int]
    masks: np.ndarray  # (N, h, w) mean probability > 0.5


def _run(
    model: LoadedModel, features: list[dict[str, np.ndarray]], samples: int, seed: int, rule: AdaptiveRule | None
) -> _Run:
    mi, entropy, drawn, masks = [], [], [], []
    for i, f in enumerate(features):
        rng = np.random.default_rng(seed + i)
        if rule is None:
            probs = model.run_suffix(f, samples, rng)[0]
        else:
            probs = sample_adaptive(model, f, samples, rng, rule).probabilities
        m, e = _scores(probs)
        mi.append(m)
        entropy.append(e)
        drawn.append(int(probs.shape[0]))
        masks.append(probs.mean(axis=0)[0] > 0.5)
    return _Run(mi, entropy, drawn, np.stack(masks))


def _row(label: str, run: _Run, ref: _Run, truth: np.ndarray, rule: AdaptiveRule | None, relative: float) -> Row:
    return Row(
        label,
        rule.min_samples if rule else 0,
        relative,
        rule.tolerance if rule else 0.0,
        float(np.mean(run.drawn)),
        min(run.drawn),
        max(run.drawn),
        _spearman(ref.mi, run.mi),
        _spearman(ref.entropy, run.entropy),
        dice_score(run.masks, truth),
    )


def report(
    bench: BenchModel,
    int8_bytes: bytes,
    samples: int,
    images: int,
    floors: tuple[int, ...] = MIN_SAMPLES,
    relatives: tuple[float, ...] = RELATIVE_TOLERANCES,
) -> FidelityReport:
    fp32, int8 = LoadedModel(bench.meta, bench.onnx), LoadedModel(bench.meta, int8_bytes)
    inputs = [prepare(image, bench.meta)[None] for image in bench.val.images[:images]]
    truth = bench.val.masks[:images] > 0
    f32 = [fp32.run_prefix(x) for x in inputs]
    f8 = [int8.run_prefix(x) for x in inputs]
    ref = _run(fp32, f32, samples, 0, None)
    noise = _row(
        "fp32, fixed T, other masks (noise floor)", _run(fp32, f32, samples, 10_000, None), ref, truth, None, 0
    )
    int8_row = _row("int8, fixed T", _run(int8, f8, samples, 0, None), ref, truth, None, 0)
    spread = float(np.std(ref.mi))
    rows = []
    for floor in floors:
        for relative in relatives:
            rule = AdaptiveRule(tolerance=relative * spread, min_samples=floor)
            rows.append(_row("fp32, adaptive", _run(fp32, f32, samples, 0, rule), ref, truth, rule, relative))
    partial = FidelityReport(
        bench.placement, images, samples, bench.validation_dice, bench.chance_dice, dice_score(ref.masks, truth),
        noise, int8_row, tuple(rows), rows[0], rows[0], False,
    )  # fmt: skip
    bar = partial.bar
    ok = [r for r in rows if r.holds(bar)]
    chosen = (
        min(ok, key=lambda r: (r.mean_samples, -r.min_samples, r.relative))
        if ok
        else max(rows, key=lambda r: r.mean_samples)
    )
    rule = AdaptiveRule(tolerance=chosen.tolerance, min_samples=chosen.min_samples)
    on_int8 = _row("int8, adaptive (chosen rule)", _run(int8, f8, samples, 0, rule), ref, truth, rule, chosen.relative)
    return FidelityReport(
        bench.placement, images, samples, bench.validation_dice, bench.chance_dice, partial.dice_fp32,
        noise, int8_row, tuple(rows), chosen, on_int8, on_int8.holds(bar) and int8_row.holds(bar),
    )  # fmt: skip
