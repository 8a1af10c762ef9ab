"""Synthetic informative samples (Mahapatra et al. 2018): a conditional generator draws images for edited masks.

A small pix2pix-style generator (Isola et al. 2017) learns mask → image from the human-labelled pairs: an
encoder-decoder with skip connections whose decoder dropout stays live when it generates (pix2pix's noise
source), trained against a PatchGAN discriminator with L1 weighted λ = 100. For each informative image (the
ones a strategy queried), `edit_mask` makes new plausible lesion masks and the generator draws their images:
new (image, mask) pairs whose mask is exact by construction.

Images cross the networks in [-1, 1] (pixel / 127.5 − 1), masks as −1 (skin) / +1 (lesion). Everything is
seeded by one integer and leaves the caller's torch random state as it was; torch's thread count is the
caller's (the simulation sets 1).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from ceal.trainer.train import Dataset, augment

from .config import SimConfig, SimulationError, uses_synthesis
from .data import SimData
from .mask_edit import edit_mask
from .scoring import arm_seed

__all__ = [
    "L1_WEIGHT",
    "MaskToImage",
    "PatchDiscriminator",
    "edit_mask",
    "generate",
    "synthesize",
    "synthetic_pairs",
    "train_generator",
]

L1_WEIGHT = 100.0  # pix2pix's λ
_LEVELS = 3  # the generator halves the sides this often; inputs are padded to a multiple of 2**_LEVELS
ImageArray = npt.NDArray[np.uint8]


def _down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1)]
    if norm:
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),  # then a convolution: no transposed-convolution checkerboard
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.InstanceNorm2d(cout, affine=True),
        nn.Dropout(dropout),
        nn.ReLU(),
    )


class MaskToImage(nn.Module):
    """Generator: mask (N, 1, h, w) in {−1, 1} → image (N, 3, h, w) in [−1, 1]; any h, w (padded inside).

    Three stride-2 encoder stages (f, 2f, 4f filters), three transposed-convolution decoder stages with skip
    connections and live dropout on the inner two, and a 3×3 head that also sees the mask at full resolution
    (sharp lesion edges). Instance norm, as pix2pix at batch size 1, so train and eval modes differ only by dropout.
    """

    def __init__(self, filters: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        f = filters
        self.down = nn.ModuleList([_down(1, f, norm=False), _down(f, 2 * f), _down(2 * f, 4 * f)])
        self.up = nn.ModuleList([_up(4 * f, 2 * f, dropout), _up(4 * f, f, dropout), _up(2 * f, f, 0.0)])
        self.head = nn.Conv2d(f + 1, 3, 3, padding=1)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        h, w = mask.shape[-2:]
        m = 2**_LEVELS
        x = F.pad(mask, (0, -w % m, 0, -h % m), value=-1.0)  # pad with skin
        full = x
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        x = self.up[0](skips[-1])
        for stage, skip in zip(self.up[1:], skips[-2::-1], strict=True):
            x = stage(torch.cat([x, skip], dim=1))
        out = torch.tanh(self.head(torch.cat([x, full], dim=1)))
        return out[..., :h, :w]


class PatchDiscriminator(nn.Module):
    """PatchGAN: (mask (N, 1, h, w), image (N, 3, h, w)) → real/fake logits (N, 1, ~h/4, ~w/4), one per patch."""

    def __init__(self, filters: int = 16) -> None:
        super().__init__()
        f = filters
        self.net = nn.Sequential(_down(4, f, norm=False), _down(f, 2 * f), nn.Conv2d(2 * f, 1, 3, padding=1))

    def forward(self, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(torch.cat([mask, image], dim=1))
        return logits


def _images_in(images: ImageArray) -> torch.Tensor:
    """uint8 (N, h, w, 3) → float32 (N, 3, h, w) in [−1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _masks_in(masks: npt.NDArray[np.uint8]) -> torch.Tensor:
    """(N, h, w) class indices → float32 (N, h, w): +1 lesion, −1 skin."""
    return torch.from_numpy((masks != 0).astype(np.float32) * 2.0 - 1.0)


def _images_out(x: torch.Tensor) -> ImageArray:
    """float (N, 3, h, w) in [−1, 1] → uint8 (N, h, w, 3)."""
    pixels = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    out: ImageArray = pixels.permute(0, 2, 3, 1).numpy()
    return out


def train_generator(
    images: ImageArray,
    masks: npt.NDArray[np.uint8],
    steps: int,
    seed: int,
    *,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    filters: int = 16,
    dropout: float = 0.2,
) -> MaskToImage:
    """Train a fresh generator on (N, h, w, 3) images and their (N, h, w) masks: `steps` Adam steps (β1 = 0.5,
    as pix2pix) of adversarial + λ·L1 loss on batches drawn with replacement, with flips; returns it in eval mode.

    The learning rate is 5× pix2pix's and the dropout 0.2 rather than 0.5 because a round affords a few hundred
    steps, not pix2pix's tens of thousands: at 2e-4 / 0.5 the lesions are still speckled colour noise after 300.
    """
    if len(images) == 0 or len(images) != len(masks) or images.shape[1:3] != masks.shape[1:]:
        raise SimulationError(
            f"the generator needs N >= 1 images (N, h, w, 3) with masks (N, h, w); got {images.shape}, {masks.shape}"
        )
    if steps < 1 or batch_size < 1:
        raise SimulationError(f"synthesis needs steps >= 1 and batch_size >= 1; got {steps}, {batch_size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        generator, critic = MaskToImage(filters, dropout), PatchDiscriminator(filters)
        opt_g = torch.optim.Adam(generator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(critic.parameters(), lr=learning_rate, betas=(0.5, 0.999))
        x_all, y_all = _images_in(images), _masks_in(masks)
        generator.train()
        critic.train()
        for _ in range(steps):
            idx = torch.randint(0, len(x_all), (batch_size,), generator=gen)
            real, mask = augment(x_all[idx], y_all[idx], gen)
            mask = mask.unsqueeze(1)
            fake = generator(mask)
            # Discriminator: real pairs → 1, generated pairs → 0.
            real_logits, fake_logits = critic(mask, real), critic(mask, fake.detach())
            loss_d = 0.5 * (
                F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            )
            opt_d.zero_grad()
            loss_d.backward()  # type: ignore[no-untyped-call]
            opt_d.step()
            # Generator: fool the discriminator, and stay close to the real image (L1).
            fooled = critic(mask, fake)
            loss_g = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled)) + L1_WEIGHT * F.l1_loss(
                fake, real
            )
            opt_g.zero_grad()
            loss_g.backward()  # type: ignore[no-untyped-call]
            opt_g.step()
    generator.eval()
    return generator


@torch.no_grad()
def generate(generator: MaskToImage, masks: npt.NDArray[np.uint8], seed: int, batch: int = 32) -> ImageArray:
    """uint8 (N, h, w, 3) images for (N, h, w) masks, dropout live as the noise (seeded; the model is left in
    eval mode)."""
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator.train()  # instance norm has no running statistics: only dropout changes
        try:
            for start in range(0, len(masks), batch):
                out.append(_images_out(generator(_masks_in(masks[start : start + batch]).unsqueeze(1))))
        finally:
            generator.eval()
    return np.concatenate(out) if out else np.zeros((0, *masks.shape[1:], 3), np.uint8)


def synthesize(
    images: ImageArray,
    masks: npt.NDArray[np.uint8],
    sources: npt.NDArray[np.int64] | list[int],
    per_image: int,
    steps: int,
    seed: int,
    *,
    batch_size: int = 8,
) -> tuple[ImageArray, npt.NDArray[np.uint8]]:
    """New training pairs around the informative rows: train the generator on (N, h, w, 3) `images` and their
    (N, h, w) `masks` (the human-labelled set), then for each row index in `sources` (M,) make `per_image`
    edited masks and generate their images.

    Returns uint8 images (M · per_image, h, w, 3) and masks (M · per_image, h, w) in {0, 1}, source by
    source; the same for the same seed. No training happens when there is nothing to make.
    """
    rows = np.asarray(sources, dtype=np.int64)
    if per_image < 0:
        raise SimulationError(f"per_image must be >= 0; got {per_image}")
    if rows.size and (rows.min() < 0 or rows.max() >= len(masks)):
        raise SimulationError(f"sources must index the {len(masks)} labelled pairs; got {rows.tolist()}")
    h, w = masks.shape[1:]
    if rows.size == 0 or per_image == 0:
        return np.zeros((0, h, w, 3), np.uint8), np.zeros((0, h, w), np.uint8)
    words = np.random.SeedSequence(seed).generate_state(3)
    rng = np.random.default_rng(int(words[0]))
    edited = np.stack([edit_mask(masks[i], rng) for i in rows for _ in range(per_image)])
    generator = train_generator(images, masks, steps, int(words[1]), batch_size=batch_size)
    return generate(generator, edited, int(words[2])), edited


def synthetic_pairs(
    data: SimData, cfg: SimConfig, strategy: str, seed: int, round_index: int, human: npt.NDArray[np.int64]
) -> Dataset:
    """A `+syn` arm's synthetic pairs for one round (an empty set for other arms).

    The generator is trained from scratch on the arm's human-labelled rows `human` (data row indices, the
    initial random set first, then the queries in order), seeded by (seed, round, arm), so a resumed run makes
    the same pairs; cfg.synth_per_image pairs are made for every row the strategy queried (not the initial
    set). Ids are "synthetic-<round>-<j>": the pairs are rebuilt every round and never become labels.
    """
    if not uses_synthesis(strategy):
        return Dataset(
            [], np.zeros((0, *data.images.shape[1:]), np.uint8), np.zeros((0, *data.masks.shape[1:]), np.uint8)
        )
    sources = np.arange(min(cfg.initial, len(human)), len(human), dtype=np.int64)
    images, masks = synthesize(
        data.images[human],
        data.masks[human],
        sources,
        cfg.synth_per_image,
        cfg.synth_steps,
        arm_seed(seed, round_index, strategy, "synthesis"),
        batch_size=cfg.batch_size,
    )
    return Dataset([f"synthetic-{round_index}-{j}" for j in range(len(images))], images, masks)
