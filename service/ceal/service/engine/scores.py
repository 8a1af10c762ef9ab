"""One image's `ImageScores` from its Monte-Carlo samples, as pool scoring stores them and the simulation
ranks them: the engine's `finish` with the scoring options (no maps; mean mutual information ranks); and the
version's predicted mask at the model's resolution, which pool scoring keeps for the version ensemble."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ceal.service import postprocess
from ceal.service.engine.core import PredictOptions, finish
from ceal.service.engine.loaded import LoadedModel
from ceal.service.image_reductions import mean_label_map
from ceal.service.selection.scores import ImageScores

__all__ = ["SCORING_OPTIONS", "image_scores", "scored_image"]

# The adaptive rule's score is the default ranking score: mean mutual information. `finish` reads no T (the
# samples are given); pool scoring sets each pass's T in `scoring_rule`.
SCORING_OPTIONS = PredictOptions(samples=1, maps=(), score_measure="mutual_information", score_reduction="mean")


def image_scores(
    model: LoadedModel, image_id: str, samples: np.ndarray, descriptor: np.ndarray, size: tuple[int, ...]
) -> ImageScores:
    """Image-level scores of one image from its MC samples (T, C, h, w); size: the image's (H, W)."""
    return scored_image(model, image_id, samples, descriptor, size)[0]


def scored_image(
    model: LoadedModel, image_id: str, samples: np.ndarray, descriptor: np.ndarray, size: tuple[int, ...]
) -> tuple[ImageScores, npt.NDArray[np.bool_]]:
    """`image_scores`, and the predicted foreground bool (h, w) at the model's output resolution (cropped to
    the image for padded models): the mean of the samples over the threshold (one sigmoid channel) or its
    argmax not background, as Predict's label map before resizing and post-processing."""
    p = finish(model, size, samples, descriptor, SCORING_OPTIONS)
    if p.stats is None:  # pragma: no cover - finish always keeps its statistics
        raise RuntimeError("the engine's finish returned no Monte-Carlo statistics")
    mask = p.label_map != 0
    scores = ImageScores(
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
    foreground: npt.NDArray[np.bool_] = mean_label_map(p.stats, SCORING_OPTIONS.threshold) != 0
    return scores, foreground
