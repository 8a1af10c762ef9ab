"""`ceal simulate`: the active-learning loop against an oracle, every strategy, several seeds."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ceal.trainer.placements import PLACEMENTS

from .config import (
    CEILING_SUFFIX,
    DEFAULT_STRATEGIES,
    FAMILIES,
    SEMI_SUFFIX,
    SYNTHESIS_SUFFIX,
    SimConfig,
    SimulationError,
    parse_strategies,
)

__all__ = ["register"]

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def register(sub: Sub) -> None:  # type: ignore[type-arg]
    d = SimConfig()
    p = sub.add_parser(
        "simulate",
        help="simulate active learning with the ground truth as oracle: learning curves per strategy",
        description="Each round fine-tunes the U-Net, exports it to ONNX, scores the unlabelled pool with the "
        "service's Monte-Carlo engine and lets the service's strategy choose; the oracle's masks are the "
        "labels. Writes results.csv, learning_curves.png and summary.md to --out; rerun with the same "
        "arguments to resume an interrupted run.",
    )
    p.add_argument("--images", type=Path, help="image folder (ISIC 2017 or same-stem layout); or --family")
    p.add_argument("--masks", type=Path, help="ground-truth mask folder: the oracle")
    p.add_argument(
        "--family",
        choices=FAMILIES,
        default=d.family or None,
        help="instead of --images/--masks: draw this synthetic family in memory at the model size",
    )
    p.add_argument("--family-n", type=int, default=d.family_n, help="--family: images to draw")
    p.add_argument("--family-seed", type=int, default=d.family_seed, help="--family: the data set's seed")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed when it holds the same recipe)")
    p.add_argument(
        "--strategies",
        type=parse_strategies,
        default=DEFAULT_STRATEGIES,
        help=f"comma-separated (default {','.join(DEFAULT_STRATEGIES)}); the suffix "
        f"{SYNTHESIS_SUFFIX} (e.g. bald{SYNTHESIS_SUFFIX}) adds synthetic pairs from a mask → image generator, "
        f"{SEMI_SUFFIX} trains on the unlabelled pool too (e.g. random{SEMI_SUFFIX}), {CEILING_SUFFIX} gives the "
        f"strategy the full-data model's descriptors (a diagnostic: e.g. typiclust{CEILING_SUFFIX})",
    )
    p.add_argument(
        "--augmentation",
        default=d.augmentation,
        help="the trainer's augmentation preset: none, flips (the historical default) or standard "
        "(flips, rotation, scale/shift, elastic, brightness/contrast/gamma, blur, hue)",
    )
    p.add_argument(
        "--semi-mode",
        default=d.semi_mode,
        choices=["fixmatch", "ceal"],
        help=f"{SEMI_SUFFIX} arms: fixmatch (confident pixels, strong view) or ceal (whole confident images)",
    )
    p.add_argument("--semi-threshold", type=float, default=d.semi_threshold, help=f"{SEMI_SUFFIX}: confidence needed")
    p.add_argument("--semi-weight", type=float, default=d.semi_weight, help=f"{SEMI_SUFFIX}: unlabelled loss factor")
    p.add_argument(
        "--ensemble-k", type=int, default=d.ensemble_k, help="model versions compared by the ensemble measure"
    )
    p.add_argument("--seeds", type=int, default=d.seeds, help="repetitions with other initial sets")
    p.add_argument("--initial", type=int, default=d.initial, help="random human labels before round 1")
    p.add_argument("--per-round", type=int, default=d.per_round, help="human labels asked for per round")
    p.add_argument("--rounds", type=int, default=d.rounds, help="rounds of selection after the initial one")
    p.add_argument(
        "--steps", type=int, default=d.steps, help="optimizer steps per round (one-cycle schedule), whatever the labels"
    )
    p.add_argument("--height", type=int, default=d.height)
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--samples", type=int, default=d.samples, help="Monte-Carlo passes per image (T)")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction, help="held out, never queried")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.learning_rate, help="peak learning rate of each round's cycle")
    p.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_false",
        help="train every round from a fresh initialisation (default: fine-tune the previous round's weights)",
    )
    p.add_argument(
        "--workers", type=int, default=d.workers, help="arms run at once, one process each (same rows, less wall time)"
    )
    p.add_argument("--base-filters", type=int, default=d.base_filters)
    p.add_argument("--depth", type=int, default=d.depth)
    p.add_argument(
        "--dropout-placement",
        choices=PLACEMENTS,
        default=d.dropout_placement,
        help="where the U-Net's Monte-Carlo dropout sits (last_decoder: a cheaper stochastic part to score)",
    )
    p.add_argument(
        "--max-pseudo",
        type=int,
        default=None,
        help="CEAL pseudo-labels per round (default: all below the entropy threshold)",
    )
    p.add_argument(
        "--pseudo-quantile",
        type=float,
        default=d.pseudo_quantile,
        help="CEAL: entropy threshold δ_0 at this quantile of the free pool (the service's value is the default)",
    )
    p.add_argument(
        "--pseudo-decay",
        type=float,
        default=d.pseudo_decay,
        help="CEAL: the threshold drops by this fraction of δ_0 each round (the service's value is the default)",
    )
    p.add_argument(
        "--suggestive-candidates",
        type=int,
        default=None,
        help="suggestive: shortlist of the most "
        "uncertain images to cover the pool from (default: the service's 4·k; 0: the whole pool)",
    )
    p.add_argument(
        "--synth-per-image",
        type=int,
        default=d.synth_per_image,
        help=f"{SYNTHESIS_SUFFIX} arms: synthetic (image, edited mask) pairs per queried image, rebuilt each round",
    )
    p.add_argument(
        "--synth-steps",
        type=int,
        default=d.synth_steps,
        help=f"{SYNTHESIS_SUFFIX} arms: training steps of the mask → image generator, trained afresh each round",
    )
    p.add_argument(
        "--synth-share",
        type=float,
        default=d.synth_share,
        help=f"{SYNTHESIS_SUFFIX} arms: the synthetic pairs' average share of each training batch (default: drawn "
        "like the real pairs, so their share grows with their number)",
    )
    p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from .data import family_sim_data, load_sim_data
    from .plot import plot_learning_curves
    from .report import summarize, summary_markdown
    from .rounds import run_simulation
    from .stats import statistics_lines

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = SimConfig(
            strategies=args.strategies,
            seeds=args.seeds,
            initial=args.initial,
            per_round=args.per_round,
            rounds=args.rounds,
            steps=args.steps,
            height=args.height,
            width=args.width,
            samples=args.samples,
            test_fraction=args.test_fraction,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            warm_start=args.warm_start,
            workers=args.workers,
            base_filters=args.base_filters,
            depth=args.depth,
            dropout_placement=args.dropout_placement,
            max_pseudo=args.max_pseudo,
            pseudo_quantile=args.pseudo_quantile,
            pseudo_decay=args.pseudo_decay,
            suggestive_candidates=args.suggestive_candidates,
            synth_per_image=args.synth_per_image,
            synth_steps=args.synth_steps,
            synth_share=args.synth_share,
            augmentation=args.augmentation,
            semi_mode=args.semi_mode,
            semi_threshold=args.semi_threshold,
            semi_weight=args.semi_weight,
            ensemble_k=args.ensemble_k,
            family=args.family or "",
            family_n=args.family_n,
            family_seed=args.family_seed,
        )
        if cfg.family:
            data = family_sim_data(cfg)
        elif args.images is None or args.masks is None:
            raise SimulationError("pass --images and --masks (the oracle's folders), or --family for synthetic data")
        else:
            data = load_sim_data(args.images, args.masks, cfg)
        rows = run_simulation(args.out, data, cfg)
    except (SimulationError, ValueError) as exc:
        print(f"ceal simulate: {exc}", file=sys.stderr)
        return 2
    plot_learning_curves(rows, args.out / "learning_curves.png")
    summary = summarize(rows)
    text = summary_markdown(summary, statistics_lines(summary, rows))
    (args.out / "summary.md").write_text(text)
    print(text)
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'learning_curves.png'} and {args.out / 'summary.md'}")
    return 0
