"""The console's JSON payloads, built without I/O: array encoding, the absolute uncertainty scale, the
learning curve's x (human labels there were when each version was made)."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from ceal.client.results import LabelRecord, ModelInfo, PoolImageView, Prediction
from ceal.console import payloads


def _model(version: int, dice: float, created: datetime, classes: int = 2) -> ModelInfo:
    names = ("background", "lesion", "margin")[:classes]
    return ModelInfo("lesion", version, (3, 8, 8), classes, names, 0.5, dice, created, False, "cpu", "fp32")


def _label(annotator: str, created: datetime, seconds: float) -> LabelRecord:
    mask = np.zeros((2, 2), np.uint8)
    return LabelRecord("i", "l", 1, "human", annotator, mask, seconds_spent=seconds, created_at=created)


def test_masks_round_trip_and_a_wrong_size_is_named() -> None:
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(payloads.mask_from_b64(payloads.b64(mask, "u1"), 3, 4), mask)
    with pytest.raises(ValueError, match="3 x 5 = 15"):
        payloads.mask_from_b64(payloads.b64(mask, "u1"), 3, 5)


def test_the_image_payload_puts_uncertainty_on_an_absolute_scale() -> None:
    pixels = np.full((4, 5), 7, np.uint16)
    view = PoolImageView("i", pixels, "", None, 0, "", "", "", None)
    entropy = np.full((4, 5), 0.25, np.float32)
    p = Prediction("0", "lesion", 2, 8, 0.1, {}, 0.0, label_map=np.ones((4, 5), np.uint8), entropy=entropy)
    out = payloads.image(view, p, _model(2, 0.5, datetime.now(UTC), classes=3))
    assert out["uncertainty_max"] == pytest.approx(math.log(3)) and out["channels"] == 1
    assert np.frombuffer(base64.b64decode(str(out["uncertainty"])), "<f4").tolist() == [0.25] * 20
    assert np.frombuffer(base64.b64decode(str(out["pixels"])), "<f4").tolist() == [7.0] * 20  # W/L on raw values
    assert out["classes"] == ["background", "lesion", "margin"] and "label" not in out


def test_the_learning_curve_counts_the_labels_before_each_version() -> None:
    t = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(6)]
    labels = [_label("ada", t[1], 30), _label("ada", t[2], 10), _label("ben", t[4], 5)]
    models = [_model(1, 0.4, t[0]), _model(2, 0.6, t[3]), _model(3, float("nan"), t[5])]
    out = payloads.dashboard(object(), models, labels, "p")
    assert out["learning_curve"] == [
        {"version": 1, "human_labels": 0, "dice": 0.4},
        {"version": 2, "human_labels": 2, "dice": 0.6},
    ]  # v3 has no validation Dice: not a point
    assert out["annotators"] == [
        {"name": "ada", "labels": 2, "seconds": 40.0},
        {"name": "ben", "labels": 1, "seconds": 5.0},
    ]
