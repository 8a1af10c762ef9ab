"""Ensemble-of-versions members and how well each uncertainty predicts failure.

After every round the arm's model segments every image (dropout off, one pass: the version's mask) and the
masks are kept for the last `ensemble_k` rounds (`RunFolder.save_masks`). Their pairwise Dice disagreement
(`selection.ensemble.version_disagreement`) is the table's `version_disagreement` column for the next
selection, and on the test images it is one of the three image scores whose Spearman correlation with the
image's actual Dice error (1 − Dice of the served mask) each round records, beside MC entropy and MC mutual
information.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.scores import image_scores
from ceal.service.selection import version_disagreement
from ceal.trainer.train import DEFAULT_MEAN, DEFAULT_STD, TrainConfig, predict_masks
from ceal.trainer.unet import UNet
from ceal.trainer.worker.gate import per_image_dice

from .data import SimData
from .scoring import label_map, sampled

__all__ = ["NOT_MEASURED", "disagreement", "member_masks", "spearman", "test_measures"]

NOT_MEASURED = -2.0  # a correlation that could not be computed (see `ResultRow`)
Masks = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]


def member_masks(model: UNet, data: SimData) -> Masks:
    """uint8 (N, h, w) the version's deterministic masks of every image (pool and test)."""
    cfg = TrainConfig(height=data.images.shape[1], width=data.images.shape[2], mean=DEFAULT_MEAN, std=DEFAULT_STD)
    return predict_masks(model, data.images, cfg, batch_size=64)


def disagreement(history: list[Masks]) -> Floats | None:
    """(N,) the version disagreement of every image from the members' masks, or None with fewer than 2."""
    return version_disagreement(np.stack(history)) if len(history) >= 2 else None


def test_measures(
    loaded: LoadedModel, data: SimData, samples: int, rng: np.random.Generator
) -> tuple[Masks, Floats, Floats]:
    """The served masks (T Monte-Carlo samples, mean > 0.5) of the test images with each one's mean entropy
    and mutual information as the engine scores them."""
    rows = data.test
    masks = np.zeros((len(rows), *data.images.shape[1:3]), np.uint8)
    entropy, mi = np.zeros(len(rows)), np.zeros(len(rows))
    for j, samples_j, descriptor in sampled(loaded, data.images[rows], samples, rng):
        i = int(rows[j])
        scores = image_scores(
            loaded, data.ids[i], samples_j, descriptor, (int(data.sizes[i, 0]), int(data.sizes[i, 1]))
        )
        masks[j], entropy[j], mi[j] = label_map(samples_j), scores.entropy, scores.mutual_information
    return masks, entropy, mi


def spearman(score: Floats, masks: Masks, truth: Masks) -> float:
    """Spearman's ρ between an image score and the image's Dice error; NOT_MEASURED when undefined."""
    error = 1.0 - per_image_dice(masks != 0, truth != 0)
    if len(score) < 3 or np.ptp(score) == 0 or np.ptp(error) == 0 or not np.isfinite(score).all():
        return NOT_MEASURED
    return round(float(stats.spearmanr(score, error).statistic), 4)
