"""ActiveLearning message codecs: protobuf ↔ pool records. No logic beyond translation and validation."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from ceal.service.codec import decode_image, numpy_to_tensor, tensor_to_numpy
from ceal.service.errors import InvalidInput
from ceal.service.pool.queries import QueryItem, QueryLevel, QueryRequest
from ceal.service.store.base import DicomRef, ImageRecord, Label, NewImage
from ceal.v1 import active_learning_pb2 as pb
from ceal.v1 import tensor_pb2

DEFAULT_POOL = "default"
_POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The proto enum is the one list of strategy names: STRATEGY_COST_SENSITIVE -> "cost_sensitive" (the selection
# registry's name; tests/unit/service/selection/test_policy.py checks the two agree).
STRATEGIES: dict[int, str] = {
    v.number: v.name.removeprefix("STRATEGY_").lower() for v in pb.Strategy.DESCRIPTOR.values if v.number
}
SOURCES: dict[int, str] = {pb.LABEL_SOURCE_HUMAN: "human", pb.LABEL_SOURCE_PSEUDO: "pseudo"}
_SOURCE_ENUM: dict[str, Any] = {v: k for k, v in SOURCES.items()}


def pool_name(raw: str) -> str:
    name = raw or DEFAULT_POOL
    if not _POOL_NAME.match(name):
        raise InvalidInput("pool name must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return name


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def dicom_ref(ref: tensor_pb2.DicomReference) -> DicomRef | None:
    if not ref.sop_instance_uid:
        return None
    return DicomRef(ref.study_instance_uid, ref.series_instance_uid, ref.sop_instance_uid, ref.frame_number or None)


def dicom_proto(ref: DicomRef | None) -> tensor_pb2.DicomReference | None:
    if ref is None:
        return None
    return tensor_pb2.DicomReference(
        study_instance_uid=ref.study_uid,
        series_instance_uid=ref.series_uid,
        sop_instance_uid=ref.sop_uid,
        frame_number=ref.frame or 0,
    )


def new_images(request: pb.RegisterImagesRequest, *, max_pixels: int, max_images: int) -> list[NewImage]:
    if not request.images:
        raise InvalidInput("images is empty; send at least one image")
    if len(request.images) > max_images:
        raise InvalidInput(f"{len(request.images)} images in one call exceed the limit of {max_images}; send batches")
    out = []
    for i, item in enumerate(request.images):
        try:
            pixels = decode_image(item.image, max_pixels=max_pixels)
        except InvalidInput as exc:
            raise InvalidInput(f"images[{i}]: {exc}") from exc
        if len(item.name) > 1024:
            raise InvalidInput(f"images[{i}].name has {len(item.name)} characters; send at most 1024 (a file name)")
        out.append(
            NewImage(
                pixels,
                dicom_ref(item.dicom),
                item.series_key or None,
                item.study_key or None,
                item.slice_index,
                name=item.name,
            )
        )
    return out


def label_mask(request: pb.SubmitLabelRequest) -> np.ndarray:
    if not request.image_id:
        raise InvalidInput("image_id is empty; send the id RegisterImages returned")
    if not request.annotator:
        raise InvalidInput("annotator is empty; say who drew the label")
    mask = tensor_to_numpy(request.mask, what="mask")
    if mask.dtype not in (np.uint8, np.bool_):
        raise InvalidInput(f"mask dtype must be uint8 or bool (class indices), not {mask.dtype}")
    if mask.ndim != 2:
        raise InvalidInput(f"mask must be 2-D (H, W), got shape {list(mask.shape)}")
    return mask


def label_source(value: int) -> str:
    if value == pb.LABEL_SOURCE_UNSPECIFIED:
        return "human"
    if value not in SOURCES:
        raise InvalidInput(f"label source {value} is not known; use LABEL_SOURCE_HUMAN or LABEL_SOURCE_PSEUDO")
    return SOURCES[value]


_LEVELS: dict[int, QueryLevel] = {
    pb.QUERY_LEVEL_UNSPECIFIED: "image",
    pb.QUERY_LEVEL_IMAGE: "image",
    pb.QUERY_LEVEL_SERIES: "series",
    pb.QUERY_LEVEL_STUDY: "study",
}


def query_request(request: pb.GetQueryListRequest, lease_seconds: float) -> QueryRequest:
    """The request as the pool's query code takes it; `lease_seconds` when the request leaves it at 0."""
    if request.level not in _LEVELS:
        raise InvalidInput(f"query level {request.level} is not known; use IMAGE, SERIES or STUDY")
    strategy = STRATEGIES.get(request.strategy or pb.STRATEGY_CEAL)
    if strategy is None:
        raise InvalidInput(f"strategy {request.strategy} is not known; use one of {sorted(STRATEGIES.values())}")
    if request.k > 10_000:
        raise InvalidInput(f"k={request.k} is too large; ask for at most 10000 items")
    return QueryRequest(
        pool=pool_name(request.pool),
        strategy=strategy,
        k=request.k,
        budget_seconds=request.budget_seconds,
        annotator=request.annotator,
        lease_seconds=float(request.lease_seconds or 0) or lease_seconds,
        level=_LEVELS[request.level],
        round_index=request.round,
        seed=request.seed,
        max_pseudo=request.max_pseudo_labels,
    )


def query_item(item: QueryItem) -> pb.QueryItem:
    r = item.record
    out = pb.QueryItem(
        image_id=r.image_id,
        rank=item.rank,
        score=item.score,
        reason=item.reason,
        estimated_seconds=item.estimated_seconds,
        dicom=dicom_proto(r.dicom),
        series_key=r.series_key,
        study_key=r.study_key,
        slice_image_ids=list(item.slice_ids),
        name=r.name,
        slice_dicom=[dicom_proto(ref) or tensor_pb2.DicomReference() for ref in item.slice_dicom],
    )
    if item.lease_expires_at is not None:
        out.lease_expires_at.CopyFrom(timestamp(item.lease_expires_at))
    return out


RECORD_OVERHEAD = 64 * 1024  # bytes of a LabelRecord besides its two tensors (ids, annotator, framing)


def image_omitted(label: Label, record: ImageRecord, limit: int) -> str:
    """Why a record's image cannot be exported within `limit` bytes ("" when it fits), and what to do."""
    image = record.height * record.width * record.channels * np.dtype(record.dtype).itemsize
    total = image + int(label.mask.nbytes) + RECORD_OVERHEAD
    if total <= limit:
        return ""
    mib = 1024 * 1024
    return (
        f"the {record.height}×{record.width} image ({image / mib:.1f} MiB) with its mask would exceed the "
        f"{limit / mib:.0f} MiB message limit; the mask is included: fetch the image from its source "
        "(its DICOM reference, or the file it was registered from), or start the server with a larger "
        "--max-message-bytes"
    )


def label_record(label: Label, record: ImageRecord | None, pixels: np.ndarray | None) -> pb.LabelRecord:
    out = pb.LabelRecord(
        image_id=label.image_id,
        label_id=label.label_id,
        version=label.version,
        source=_SOURCE_ENUM[label.source],
        annotator=label.annotator,
        mask=numpy_to_tensor(label.mask),
        created_at=timestamp(label.created_at),
        seconds_spent=label.seconds_spent,
        name=record.name if record is not None else "",
        model_version=label.model_version or 0,
    )
    ref = dicom_proto(record.dicom) if record is not None else None
    if ref is not None:
        out.dicom.CopyFrom(ref)
    if pixels is not None:
        out.image.CopyFrom(numpy_to_tensor(pixels))
    return out


def stop_signal(stop: dict[str, Any]) -> dict[str, Any]:
    """PoolStats' stop-signal fields from a version's `lineage["stop"]` (NaN where the trainer had no fit)."""
    nan = float("nan")
    return {
        "expected_gain_next_20": float(stop.get("gain_next_20", nan)),
        "expected_gain_next_20_low": float(stop.get("gain_next_20_low", nan)),
        "expected_gain_next_20_high": float(stop.get("gain_next_20_high", nan)),
        "expected_gain_per_hour": float(stop.get("gain_per_hour", nan)),
        "expected_gain_per_hour_high": float(stop.get("gain_per_hour_high", nan)),
        "plateau": bool(stop.get("plateau", False)),
        "plateau_threshold": float(stop.get("threshold", nan)),
    }
