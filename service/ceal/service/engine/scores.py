"""One image's `ImageScores` from its Monte-Carlo samples, as pool scoring stores them and the simulation
ranks them: the engine's `finish` with the scoring options (no maps; mean mutual information ranks)."""

from __future__ import annotations

import numpy as np

from ceal.service import postprocess
from ceal.service.engine.core import PredictOptions, finish
from ceal.service.engine.loaded import LoadedModel
from ceal.service.selection.scores import ImageScores

__all__ = ["SCORING_OPTIONS", "image_scores"]

# The adaptive rule's score is the default ranking score: mean mutual information. `finish` reads no T (the
# samples are given); pool scoring sets each pass's T in `scoring_rule`.
SCORING_OPTIONS = PredictOptions(samples=1, maps=(), score_measure="mutual_information", score_reduction="mean")


def image_scores(
    model: LoadedModel, image_id: str, samples: np.ndarray, descriptor: np.ndarray, size: tuple[int, ...]
) -> ImageScores:
    """Image-level scores of one image from its MC samples (T, C, h, w); size: the image's (H, W)."""
    p = finish(model, size, samples, descriptor, SCORING_OPTIONS)
    mask = p.label_map != 0
    return ImageScores(
        image_id=image_id,
        entropy=p.scores[("entropy", "mean")],
        mutual_information=p.scores[("mutual_information", "mean")],
        variance=p.scores[("variance", "mean")],
        confidence=p.confidence,
        boundary_length=float(postprocess.boundary_length(mask)),
        components=int(postprocess.component_count(mask)),
        foreground_fraction=p.foreground_fraction,
        descriptor=descriptor.astype(np.float32),
    )
