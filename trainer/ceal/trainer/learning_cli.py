"""The learning flags shared by `ceal train`, `ceal loop` and `ceal trainer`: the augmentation preset and
semi-supervised training on unlabelled images (`ceal.trainer.augment`, `ceal.trainer.semi`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_learning_arguments", "learning_overrides"]


def add_learning_arguments(p: argparse.ArgumentParser, *, unlabelled_help: str, inherit: bool = False) -> None:
    """--augmentation, --semi, --semi-threshold, --semi-weight, --unlabelled. With inherit (fine-tuning), a
    flag left out keeps the checkpoint's recorded setting."""
    keep = " (default: the checkpoint's)" if inherit else ""
    g = p.add_argument_group("learning", "augmentation and semi-supervised training on unlabelled images")
    g.add_argument(
        "--augmentation",
        choices=["none", "flips", "standard"],
        default=None if inherit else "flips",
        help="per-sample augmentation: flips (the historical one), standard (flips, rotation, scale/shift, "
        "elastic, brightness/contrast/gamma, blur, hue), none" + keep,
    )
    g.add_argument(
        "--semi",
        choices=["off", "fixmatch", "ceal"],
        default=None if inherit else "off",
        help="also train on unlabelled images: fixmatch (a weak view's confident pixels supervise a strong view) "
        "or ceal (whole confident images as pseudo-labels)" + keep,
    )
    g.add_argument(
        "--semi-threshold", type=float, default=None if inherit else 0.95, help="confidence a pseudo-label needs" + keep
    )
    g.add_argument(
        "--semi-weight", type=float, default=None if inherit else 1.0, help="the unlabelled loss's factor" + keep
    )
    g.add_argument("--unlabelled", type=Path, help=f"the unlabelled images: {unlabelled_help}")


def learning_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The `TrainConfig` fields the flags set; flags left at None (inherit) are not in it."""
    semi = None if args.semi is None else ("" if args.semi == "off" else args.semi)
    given = {
        "augmentation": args.augmentation,
        "semi": semi,
        "semi_threshold": args.semi_threshold,
        "semi_weight": args.semi_weight,
    }
    return {k: v for k, v in given.items() if v is not None}
