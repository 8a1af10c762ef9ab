"""Where a U-Net's Monte-Carlo dropout may sit (`ceal.trainer.unet`), importable without torch (CLI parsers)."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["PLACEMENTS", "DropoutPlacement"]

DropoutPlacement = Literal["bottleneck", "decoder", "encoder_decoder", "last_decoder"]
PLACEMENTS: tuple[str, ...] = get_args(DropoutPlacement)
