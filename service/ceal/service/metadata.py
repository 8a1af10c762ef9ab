"""Model metadata: `models/<name>/<version>/metadata.json` beside `model.onnx`.

Written by the trainer's export, read by the service's registry; this module is the one definition.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ceal.imaging import PreprocessParams

METADATA_FILE = "metadata.json"
RESIZE_MODES = ("stretch", "pad")
MODEL_FILE = "model.onnx"


class MetadataError(ValueError):
    """metadata.json is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class ModelMetadata:
    """What the service needs to feed a model and what a user wants to know about it."""

    name: str
    version: int
    input_channels: int
    input_height: int
    input_width: int
    num_classes: int  # output channels: 1 = sigmoid foreground, C >= 2 = softmax
    mean: float  # input normalisation: (unit pixel - mean) / std, unit pixel in [0, 1]
    std: float
    dropout_rate: float
    validation_dice: float = float("nan")
    training_data_hash: str = ""
    created_at: str = ""  # ISO 8601, UTC
    class_names: tuple[str, ...] = ("background", "lesion")
    precision: str = "fp32"
    # How an image meets the input size: "stretch" (resize to it; models exported before this field) or
    # "pad" (keep the aspect: resize to fit, centre, pad with black; maps are cropped back before scoring).
    resize: str = "stretch"
    input_name: str = "image"
    output_name: str = "probabilities"
    extra: dict[str, Any] = field(default_factory=dict)
    # The preprocessing contract the model was trained with; None for models exported before it, which
    # are served with the service's pre-contract normalisation (`engine.preprocess.legacy_prepare`).
    preprocessing: PreprocessParams | None = None
    # Written by `ceal trainer` (empty for a plain export): parent (version fine-tuned from, 0 = none),
    # labels ({"human": n, "pseudo": n, "digest": sha256 of the sorted (image id, label version) pairs}),
    # heldout ({"images", "share", "dice", "dice_low", "dice_high", ...}), gate (the promotion figures),
    # train_config, ceal_version, stop (the learning-curve stop signal).
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def parent_version(self) -> int:
        return int(self.lineage.get("parent", 0) or 0)

    @property
    def activation(self) -> str:
        return "sigmoid" if self.num_classes == 1 else "softmax"

    @property
    def classes(self) -> int:
        """Number of classes including background (2 for a sigmoid model)."""
        return 2 if self.num_classes == 1 else self.num_classes

    def to_json(self) -> str:
        raw = dataclasses.asdict(self)
        raw["preprocessing"] = None if self.preprocessing is None else self.preprocessing.to_dict()
        if raw["preprocessing"] is None:
            del raw["preprocessing"]  # the shape older ceal versions wrote and read
        return json.dumps(raw, indent=2, sort_keys=True)

    @classmethod
    def with_contract(cls, **fields: Any) -> ModelMetadata:
        """Metadata whose `preprocessing` is built from its own input shape and normalisation, plus any
        intensity settings passed as `preprocessing` (a dict of `PreprocessParams` fields)."""
        extra_params = dict(fields.pop("preprocessing", None) or {})
        params = PreprocessParams.from_dict(
            {
                **extra_params,
                "channels": fields["input_channels"],
                "height": fields["input_height"],
                "width": fields["input_width"],
                "mean": fields["mean"],
                "std": fields["std"],
                "resize": fields.get("resize", "stretch"),
            }
        )
        return cls(**fields, preprocessing=params)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMetadata:
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise MetadataError(f"metadata is missing {', '.join(missing)}")
        values = {k: v for k, v in raw.items() if k in known}
        if "class_names" in values:
            values["class_names"] = tuple(values["class_names"])
        if values.get("preprocessing") is not None:
            try:
                values["preprocessing"] = PreprocessParams.from_dict(values["preprocessing"])
            except (TypeError, ValueError) as exc:
                raise MetadataError(f"metadata {exc}") from exc
        meta = cls(**values)
        p = meta.preprocessing
        if p is not None:
            pairs = (
                ("channels", p.channels, "input_channels", meta.input_channels),
                ("height", p.height, "input_height", meta.input_height),
                ("width", p.width, "input_width", meta.input_width),
                ("mean", p.mean, "mean", meta.mean),
                ("std", p.std, "std", meta.std),
                ("resize", p.resize, "resize", meta.resize),
            )
            wrong = [f"preprocessing.{a} {x!r} vs {b} {y!r}" for a, x, b, y in pairs if x != y]
            if wrong:
                raise MetadataError(f"metadata disagrees with itself: {'; '.join(wrong)}; re-export the model")
        if meta.input_channels not in (1, 3) or meta.input_height < 1 or meta.input_width < 1:
            raise MetadataError("metadata input shape must have 1 or 3 channels and positive sides")
        if meta.std <= 0:
            raise MetadataError("metadata std must be positive")
        if meta.resize not in RESIZE_MODES:
            raise MetadataError(f"metadata resize must be one of {', '.join(RESIZE_MODES)}; got {meta.resize!r}")
        return meta

    @classmethod
    def read(cls, directory: Path) -> ModelMetadata:
        path = directory / METADATA_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise MetadataError(f"{path} does not exist") from exc
        except json.JSONDecodeError as exc:
            raise MetadataError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(raw)
