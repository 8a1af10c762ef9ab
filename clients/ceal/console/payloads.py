"""What the console's JSON endpoints return, built from SDK results without I/O.

Arrays travel as base64 of their little-endian bytes with their shape: the page turns them into typed
arrays (`Float32Array`, `Uint8Array`) and draws them on canvases itself.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np

from ceal.client.results import LabelRecord, ModelInfo, PoolImageView, Prediction, QueryList


def b64(array: np.ndarray, dtype: str) -> str:
    """Base64 of `array` as C-order little-endian `dtype` ('<f4', 'u1')."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()).decode("ascii")


def mask_from_b64(data: str, height: int, width: int) -> np.ndarray:
    """The page's mask (base64 of H*W uint8, row-major) as (H, W) uint8. Raises ValueError on a wrong size."""
    raw = base64.b64decode(data, validate=True)
    if len(raw) != height * width:
        raise ValueError(f"the mask has {len(raw)} pixels; this image needs {height} x {width} = {height * width}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width).copy()


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def worklist(ql: QueryList) -> dict[str, object]:
    return {
        "model": f"{ql.model_name} v{ql.model_version}",
        "unscored": ql.unscored,
        "server_time": datetime.now(UTC).isoformat(),
        "items": [
            {
                "image_id": i.image_id,
                "name": i.name,
                "rank": i.rank,
                "score": i.score,
                "reason": i.reason,
                "estimated_seconds": i.estimated_seconds,
                "lease_expires_at": _iso(i.lease_expires_at),
            }
            for i in ql.items
        ],
    }


def _display_image(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """(pixels for the page, channels): grayscale as float32 (H, W) for window/level, colour as uint8 RGB."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        return pixels.astype(np.float32), 1
    rgb = pixels[..., :3].astype(np.float64)
    if pixels.dtype != np.uint8:
        lo, hi = float(rgb.min()), float(rgb.max())
        rgb = (rgb - lo) / max(hi - lo, 1e-12) * 255
    return np.clip(rgb, 0, 255).astype(np.uint8), 3


def image(view: PoolImageView, prediction: Prediction, model: ModelInfo | None) -> dict[str, object]:
    """The editor's payload: pixels, the model's proposal (label map), its entropy map and the label so far.

    The uncertainty scale is absolute: 0 to log(C) nats, the most a C-class predictive entropy can be, so
    the same colour means the same uncertainty on every image.
    """
    pixels, channels = _display_image(view.image)
    height, width = pixels.shape[:2]
    classes = list(model.class_names) if model and model.class_names else ["background", "lesion"]
    num_classes = max(2, model.num_classes if model else 2)
    out: dict[str, object] = {
        "image_id": view.image_id,
        "name": view.name,
        "height": height,
        "width": width,
        "channels": channels,
        "pixels": b64(pixels, "<f4" if channels == 1 else "u1"),
        "pixel_range": [float(pixels.min()), float(pixels.max())],
        "classes": classes,
        "model": f"{prediction.model_name} v{prediction.model_version}",
        "score": prediction.score,
        "uncertainty_max": math.log(num_classes),
        "uncertainty_unit": "nats",
        "lease_annotator": view.lease_annotator,
        "lease_expires_at": _iso(view.lease_expires_at),
        "label_version": view.label_version,
        "label_source": view.label_source,
    }
    if prediction.label_map is not None:
        out["proposal"] = b64(prediction.label_map, "u1")
    if prediction.entropy is not None:
        out["uncertainty"] = b64(prediction.entropy, "<f4")
    if view.label is not None:
        out["label"] = b64(view.label, "u1")
    return out


def _created(m: ModelInfo) -> float:
    return m.created_at.replace(tzinfo=m.created_at.tzinfo or UTC).timestamp() if m.created_at else 0.0


def dashboard(
    stats: object, models: Sequence[ModelInfo], labels: Iterable[LabelRecord], pool: str
) -> dict[str, object]:
    """Pool counts, model versions with Dice, labels per annotator, rescoring progress, learning curve.

    The learning curve has one point per version: x = human labels stored before the version was created
    (the labels it could have been trained on), y = its validation Dice.
    """
    human = [r for r in labels if r.source == "human"]
    per_annotator = Counter(r.annotator or "(unnamed)" for r in human)
    seconds: dict[str, float] = dict.fromkeys(per_annotator, 0.0)
    for r in human:
        seconds[r.annotator or "(unnamed)"] += r.seconds_spent
    times = sorted(r.created_at.replace(tzinfo=r.created_at.tzinfo or UTC).timestamp() for r in human if r.created_at)
    versions = sorted(models, key=lambda m: (m.name, m.version))
    curve = [
        {"version": m.version, "human_labels": sum(t <= _created(m) for t in times), "dice": m.validation_dice}
        for m in versions
        if math.isfinite(m.validation_dice) and m.created_at is not None
    ]
    images = int(getattr(stats, "images", 0))
    fresh = int(getattr(stats, "scored_fresh", 0))
    return {
        "pool": pool,
        "counts": {
            "images": images,
            "series": int(getattr(stats, "series", 0)),
            "scored_fresh": fresh,
            "scored_stale": int(getattr(stats, "scored_stale", 0)),
            "labelled_human": int(getattr(stats, "labelled_human", 0)),
            "labelled_pseudo": int(getattr(stats, "labelled_pseudo", 0)),
            "leased": int(getattr(stats, "leased", 0)),
        },
        "model": f"{getattr(stats, 'model_name', '')} v{getattr(stats, 'model_version', 0)}",
        "rescoring": {"done": fresh, "total": images},
        "models": [
            {
                "name": m.name,
                "version": m.version,
                "dice": m.validation_dice if math.isfinite(m.validation_dice) else None,
                "created_at": _iso(m.created_at),
                "latest": m.is_latest,
                "precision": m.precision,
            }
            for m in versions
        ],
        "annotators": [
            {"name": name, "labels": n, "seconds": round(seconds[name], 1)} for name, n in per_annotator.most_common()
        ],
        "learning_curve": curve,
    }
