"""ceal.v1.Segmentation messages ↔ the engine's and registry's types: Predict options in, predictions and
model information out, and the up-front check that a response fits the message limit (beside `pool_messages`,
which does the same for ceal.v1.ActiveLearning)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from ceal.service.codec import numpy_to_tensor
from ceal.service.engine.core import Prediction, PredictOptions
from ceal.service.errors import InvalidInput
from ceal.service.metadata import ModelMetadata
from ceal.service.promotion import ModelStatus
from ceal.service.registry import CatalogueEntry
from ceal.v1 import segmentation_pb2 as pb

_MAP_NAMES = {
    pb.MAP_KIND_PROBABILITY: "probability",
    pb.MAP_KIND_LABEL_MAP: "label_map",
    pb.MAP_KIND_ENTROPY: "entropy",
    pb.MAP_KIND_MUTUAL_INFORMATION: "mutual_information",
    pb.MAP_KIND_VARIANCE: "variance",
}
MEASURE_NAMES = {
    pb.UNCERTAINTY_MEASURE_ENTROPY: "entropy",
    pb.UNCERTAINTY_MEASURE_MUTUAL_INFORMATION: "mutual_information",
    pb.UNCERTAINTY_MEASURE_VARIANCE: "variance",
}
REDUCTION_NAMES = {
    pb.REDUCTION_MEAN: "mean",
    pb.REDUCTION_SUM: "sum",
    pb.REDUCTION_TOP_K_MEAN: "top_k_mean",
    pb.REDUCTION_BOUNDARY_WEIGHTED: "boundary_weighted",
}
_MEASURE_ENUM = {v: k for k, v in MEASURE_NAMES.items()}
_REDUCTION_ENUM = {v: k for k, v in REDUCTION_NAMES.items()}


def _enum(table: Mapping[Any, str], value: int, default: str, what: str) -> str:
    if value == 0:
        return default
    if value not in table:
        raise InvalidInput(f"{what} {value} is not known; use one of {sorted(table)}")
    return table[value]


def decode_options(o: pb.PredictOptions, default_samples: int) -> PredictOptions:
    maps = tuple(_enum(_MAP_NAMES, m, "", "map kind") for m in o.maps if m) or PredictOptions.maps
    return PredictOptions(
        samples=o.samples or default_samples,
        maps=maps,
        threshold=o.threshold or 0.5,
        return_samples=o.return_samples,
        seed=o.seed if o.HasField("seed") else None,
        keep_largest_component=o.post_processing.keep_largest_component,
        fill_holes=o.post_processing.fill_holes,
        score_measure=_enum(MEASURE_NAMES, o.score_measure, "mutual_information", "score_measure"),
        score_reduction=_enum(REDUCTION_NAMES, o.score_reduction, "mean", "score_reduction"),
        top_k_percent=o.top_k_percent or 5.0,
        adaptive_tolerance=o.adaptive_tolerance,
        adaptive_min_samples=o.adaptive_min_samples,
        float16_maps=o.float16_maps,
    )


MESSAGE_OVERHEAD = 64 * 1024  # bytes of a PredictResponse besides its tensors (ids, scores, framing)


def response_bytes(opts: PredictOptions, meta: ModelMetadata, height: int, width: int) -> dict[str, int]:
    """Bytes each part of a PredictResponse will take for an (height, width) image, before any work."""
    pixels, item = height * width, 2 if opts.float16_maps else 4
    out: dict[str, int] = {}
    if "probability" in opts.maps:
        out["probability"] = (1 if meta.num_classes == 1 else meta.num_classes) * pixels * item
    if "label_map" in opts.maps:
        out["label_map"] = pixels
    for name in ("entropy", "mutual_information", "variance"):
        if name in opts.maps:
            out[name] = pixels * item
    if opts.return_samples:
        out["samples_raw"] = opts.samples * meta.num_classes * meta.input_height * meta.input_width * 2
    return out


def check_response_size(opts: PredictOptions, meta: ModelMetadata, height: int, width: int, limit: int) -> None:
    """Refuse up front a Predict whose response cannot fit in `limit` bytes, saying what to ask for instead."""
    parts = response_bytes(opts, meta, height, width)
    total = sum(parts.values()) + MESSAGE_OVERHEAD
    if total <= limit:
        return
    mib = 1024 * 1024
    listed = ", ".join(f"{name} {size / mib:.1f} MiB" for name, size in parts.items())
    raise InvalidInput(
        f"the response for a {height}×{width} image would be about {total / mib:.1f} MiB ({listed}), over the "
        f"{limit / mib:.0f} MiB message limit: ask for fewer maps (options.maps, e.g. only label_map), set "
        "options.float16_maps to halve the float maps"
        + (", leave return_samples off" if opts.return_samples else "")
        + ", or send a downsampled image"
    )


def encode_prediction(p: Prediction, opts: PredictOptions, request_id: str) -> pb.PredictResponse:
    out = pb.PredictResponse(
        request_id=request_id,
        model_name=p.model_name,
        model_version=p.model_version,
        samples=p.samples,
        score=p.score,
        foreground_fraction=p.foreground_fraction,
    )
    floats = np.float16 if opts.float16_maps else np.float32
    if "probability" in opts.maps:
        out.probability.CopyFrom(numpy_to_tensor(p.probability.astype(floats, copy=False)))
    if "label_map" in opts.maps:
        out.label_map.CopyFrom(numpy_to_tensor(p.label_map))
    for name, array in p.maps.items():
        getattr(out, name).CopyFrom(numpy_to_tensor(array.astype(floats, copy=False)))
    if p.samples_raw is not None:
        out.samples_raw.CopyFrom(numpy_to_tensor(p.samples_raw))
    for (measure, reduction), value in sorted(p.scores.items()):
        if reduction == "mean" or (measure, reduction) == (opts.score_measure, opts.score_reduction):
            out.scores.add(measure=_MEASURE_ENUM[measure], reduction=_REDUCTION_ENUM[reduction], value=value)
    return out


_STATUS_ENUM = {
    ModelStatus.CANDIDATE: pb.MODEL_STATUS_CANDIDATE,
    ModelStatus.PROMOTED: pb.MODEL_STATUS_PROMOTED,
    ModelStatus.REJECTED: pb.MODEL_STATUS_REJECTED,
    ModelStatus.ROLLED_BACK: pb.MODEL_STATUS_ROLLED_BACK,
}


def model_info(entry: CatalogueEntry) -> pb.ModelInfo:
    m = entry.meta
    created = Timestamp()
    if m.created_at:
        created.FromJsonString(m.created_at.replace("+00:00", "Z"))
    heldout = m.lineage.get("heldout", {})
    nan = float("nan")
    return pb.ModelInfo(
        name=m.name,
        version=m.version,
        input_channels=m.input_channels,
        input_height=m.input_height,
        input_width=m.input_width,
        activation=pb.ACTIVATION_SIGMOID if m.num_classes == 1 else pb.ACTIVATION_SOFTMAX,
        num_classes=m.classes,
        class_names=list(m.class_names),
        dropout_rate=m.dropout_rate,
        validation_dice=m.validation_dice,
        training_data_hash=m.training_data_hash,
        created_at=created,
        is_latest=entry.served,
        split=entry.loaded is not None,
        provider=entry.loaded.provider if entry.loaded is not None else "",
        precision=m.precision,
        preprocessing="" if m.preprocessing is None else json.dumps(m.preprocessing.to_dict(), sort_keys=True),
        status=_STATUS_ENUM[entry.status.status],
        status_reason=entry.status.reason,
        heldout_dice=float(heldout.get("dice", nan)),
        heldout_dice_low=float(heldout.get("dice_low", nan)),
        heldout_dice_high=float(heldout.get("dice_high", nan)),
        heldout_images=int(heldout.get("images", 0)),
        parent_version=m.parent_version,
        loaded=entry.loaded is not None,
    )
