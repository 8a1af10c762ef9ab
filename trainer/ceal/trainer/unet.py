"""U-Net with configurable Monte-Carlo dropout (CEAL's layout: one Dropout(0.5) at the bottleneck).

Placements: "bottleneck" (CEAL), "decoder" (the bottleneck and after every decoder block), "encoder_decoder"
(also after every encoder block), and "last_decoder": only after the last `last_decoder_blocks` decoder
blocks, no bottleneck dropout. The service's split cuts at the first Dropout, so a late dropout leaves a small
stochastic suffix (with one block, only the 1×1 head) and makes T samples cost little more than one pass.

The model's configuration is its constructor's keyword arguments; `UNetConfig` round-trips through JSON
beside the weights. Dropout is `nn.Dropout` (element-wise): `nn.Dropout2d` in train mode does not export
with the TorchScript ONNX exporter.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ceal.trainer.placements import PLACEMENTS, DropoutPlacement


@dataclass(frozen=True)
class UNetConfig:
    """Constructor arguments of `UNet`; saved as `config.json` beside the weights."""

    in_channels: int = 3
    num_classes: int = 1  # 1 = sigmoid foreground probability; C >= 2 = softmax over C classes
    base_filters: int = 16
    depth: int = 4  # number of down-sampling steps; input sides must be multiples of 2**depth
    dropout: float = 0.5
    dropout_placement: DropoutPlacement = "bottleneck"
    last_decoder_blocks: int = 1  # "last_decoder": dropout after this many of the last decoder blocks

    def __post_init__(self) -> None:
        if self.dropout_placement not in PLACEMENTS:
            raise ValueError(f"dropout_placement must be one of {PLACEMENTS}, not {self.dropout_placement!r}")
        if not 1 <= self.last_decoder_blocks <= self.depth:
            raise ValueError(f"last_decoder_blocks must be in 1..depth ({self.depth}), not {self.last_decoder_blocks}")
        if not 0.0 < self.dropout < 1.0:
            raise ValueError(f"dropout must be in (0, 1) for Monte-Carlo sampling, not {self.dropout}")
        if self.num_classes < 1 or self.in_channels not in (1, 3) or self.depth < 1:
            raise ValueError("need num_classes >= 1, in_channels in (1, 3) and depth >= 1")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> UNetConfig:
        return cls(**json.loads(text))

    @property
    def multiple(self) -> int:
        return int(2**self.depth)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net returning logits (N, num_classes, H, W); `probabilities` applies sigmoid or softmax."""

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or UNetConfig()
        widths = [cfg.base_filters * 2**i for i in range(cfg.depth + 1)]
        enc_drop = cfg.dropout_placement == "encoder_decoder"
        late = cfg.dropout_placement == "last_decoder"
        dec_drop = [
            cfg.dropout_placement in ("decoder", "encoder_decoder")
            or (late and i >= cfg.depth - cfg.last_decoder_blocks)
            for i in range(cfg.depth)
        ]  # per decoder block, deepest first
        self.encoders = nn.ModuleList()
        cin = cfg.in_channels
        for w in widths[:-1]:
            self.encoders.append(_conv_block(cin, w))
            cin = w
        self.encoder_dropouts = nn.ModuleList(
            [nn.Dropout(cfg.dropout) if enc_drop else nn.Identity() for _ in widths[:-1]]
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _conv_block(widths[-2], widths[-1])
        self.bottleneck_dropout: nn.Module = nn.Identity() if late else nn.Dropout(cfg.dropout)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for w_in, w_out in zip(widths[:0:-1], widths[-2::-1], strict=True):
            self.ups.append(nn.ConvTranspose2d(w_in, w_out, 2, stride=2))
            self.decoders.append(_conv_block(2 * w_out, w_out))
        self.decoder_dropouts = nn.ModuleList([nn.Dropout(cfg.dropout) if drop else nn.Identity() for drop in dec_drop])
        self.head = nn.Conv2d(widths[0], cfg.num_classes, 1)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError naming the expected shape when `x` does not fit."""
        m = self.config.multiple
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected (N, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = int(x.shape[2]), int(x.shape[3])
        if h % m or w % m:
            want = f"{-(-h // m) * m}×{-(-w // m) * m}"
            raise ValueError(f"input sides must be multiples of {m}: pad or resize {h}×{w} to {want}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        for encoder, drop in zip(self.encoders, self.encoder_dropouts, strict=True):
            x = drop(encoder(x))
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck_dropout(self.bottleneck(x))
        for up, decoder, drop, skip in zip(self.ups, self.decoders, self.decoder_dropouts, skips[::-1], strict=True):
            x = drop(decoder(torch.cat([up(x), skip], dim=1)))
        logits: torch.Tensor = self.head(x)
        return logits

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        logits = self(x)
        return torch.sigmoid(logits) if self.config.num_classes == 1 else torch.softmax(logits, dim=1)

    def dropout_layers(self) -> Iterator[nn.Dropout]:
        yield from (m for m in self.modules() if isinstance(m, nn.Dropout))


class ProbabilityHead(nn.Module):
    """Wraps a UNet so its output is probabilities (what the service serves)."""

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet.probabilities(x)


def set_mc_dropout(model: nn.Module, active: bool) -> None:
    """Eval mode everywhere (BatchNorm frozen), dropout layers in train mode when `active`.

    Never `model.train()`: that would switch BatchNorm to batch statistics.
    """
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train(active)


def save_checkpoint(model: UNet, directory: Path, training: dict[str, object]) -> None:
    """Write `model.pt` (weights), `config.json` (constructor kwargs) and `training.json`."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    (directory / "config.json").write_text(model.config.to_json())
    (directory / "training.json").write_text(json.dumps(training, indent=2, sort_keys=True))


def load_checkpoint(directory: Path) -> tuple[UNet, dict[str, object]]:
    """Read what `save_checkpoint` wrote; the model comes back in eval mode."""
    for name in ("model.pt", "config.json", "training.json"):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a ceal checkpoint: {name} is missing")
    model = UNet(UNetConfig.from_json((directory / "config.json").read_text()))
    model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
    model.eval()
    training = json.loads((directory / "training.json").read_text())
    return model, training
