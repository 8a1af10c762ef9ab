"""Request builders shared by the sync and asyncio clients (protobuf in, nothing sent)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ceal.client.codec import ImageLike, to_image, to_tensor
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import tensor_pb2

MAPS = {
    "probability": seg_pb.MAP_KIND_PROBABILITY,
    "label_map": seg_pb.MAP_KIND_LABEL_MAP,
    "entropy": seg_pb.MAP_KIND_ENTROPY,
    "mutual_information": seg_pb.MAP_KIND_MUTUAL_INFORMATION,
    "variance": seg_pb.MAP_KIND_VARIANCE,
}
# Strategy names from the proto enum, the one list: STRATEGY_COST_SENSITIVE -> "cost_sensitive".
STRATEGIES: dict[str, al_pb.Strategy] = {
    v.name.removeprefix("STRATEGY_").lower(): getattr(al_pb, v.name)
    for v in al_pb.Strategy.DESCRIPTOR.values
    if v.number
}
SOURCES = {"human": al_pb.LABEL_SOURCE_HUMAN, "pseudo": al_pb.LABEL_SOURCE_PSEUDO}

E = TypeVar("E")


def _choice(table: Mapping[str, E], name: str, what: str) -> E:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; choose one of {', '.join(table)}")
    return table[name]


def predict_request(
    image: ImageLike,
    *,
    model: str = "",
    version: int = 0,
    samples: int = 0,
    maps: Sequence[str] = ("probability", "label_map", "entropy"),
    threshold: float = 0.0,
    seed: int | None = None,
    adaptive_tolerance: float = 0.0,
    adaptive_min_samples: int = 0,
    return_samples: bool = False,
    keep_largest_component: bool = False,
    fill_holes: bool = False,
    request_id: str = "",
    float16_maps: bool = False,
) -> seg_pb.PredictRequest:
    """One PredictRequest. samples: T (0 = the server's default). adaptive_tolerance > 0 makes `samples` the
    maximum T and stops once the image score's standard error is at most this (score units, e.g. 0.001 nats
    for mean mutual information); adaptive_min_samples: no stopping before this many samples (0 = the
    server's 8; else 4..samples). float16_maps: probability and uncertainty maps as float16 (half the bytes)."""
    options = seg_pb.PredictOptions(
        samples=samples,
        maps=[_choice(MAPS, m, "map") for m in maps],
        threshold=threshold,
        return_samples=return_samples,
        adaptive_tolerance=adaptive_tolerance,
        adaptive_min_samples=adaptive_min_samples,
        post_processing=seg_pb.PostProcessing(keep_largest_component=keep_largest_component, fill_holes=fill_holes),
        float16_maps=float16_maps,
    )
    if seed is not None:
        options.seed = seed
    return seg_pb.PredictRequest(
        model_name=model, model_version=version, image=to_image(image), options=options, request_id=request_id
    )


@dataclass(frozen=True)
class PoolImage:
    """One image to register, with what is known about it (made by `pool_image`); `dicom` is (study UID,
    series UID, SOP instance UID), `frame` the frame of a multi-frame instance."""

    image: ImageLike
    series_key: str = ""
    study_key: str = ""
    slice_index: int = 0
    dicom: tuple[str, str, str] | None = None
    frame: int = 0
    name: str = ""


def pool_image(
    image: ImageLike,
    *,
    series_key: str = "",
    study_key: str = "",
    slice_index: int = 0,
    dicom: tuple[str, str, str] | None = None,
    frame: int = 0,
    name: str = "",
) -> PoolImage:
    """One image for `register_images`; `dicom` is (study UID, series UID, SOP instance UID); `name` what you
    call it (a file name or UID: shown in query lists and exports, at most 1024 characters)."""
    return PoolImage(image, series_key, study_key, slice_index, dicom, frame, name)


def pool_image_message(item: PoolImage | ImageLike) -> al_pb.PoolImage:
    """The RegisterImages entry for an image, bare or with its `PoolImage` metadata."""
    if not isinstance(item, PoolImage):
        return al_pb.PoolImage(image=to_image(item))
    ref = None
    if item.dicom is not None:
        study, series, sop = item.dicom
        ref = tensor_pb2.DicomReference(
            study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop, frame_number=item.frame
        )
    return al_pb.PoolImage(
        image=to_image(item.image),
        dicom=ref,
        series_key=item.series_key,
        study_key=item.study_key,
        slice_index=item.slice_index,
        name=item.name,
    )


def submit_label_request(
    image_id: str,
    mask: np.ndarray,
    *,
    pool: str,
    annotator: str,
    source: str,
    seconds_spent: float,
    idempotency_key: str | None,
    model_version: int = 0,
) -> al_pb.SubmitLabelRequest:
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8)
    return al_pb.SubmitLabelRequest(
        pool=pool,
        image_id=image_id,
        mask=to_tensor(mask),
        annotator=annotator,
        source=_choice(SOURCES, source, "label source"),
        seconds_spent=seconds_spent,
        # A key per logical submission makes gRPC's automatic retries safe.
        idempotency_key=idempotency_key or uuid.uuid4().hex,
        model_version=model_version,
    )


def export_labels_request(*, pool: str, sources: Sequence[str], include_images: bool) -> al_pb.ExportLabelsRequest:
    return al_pb.ExportLabelsRequest(
        pool=pool, sources=[_choice(SOURCES, s, "label source") for s in sources], include_images=include_images
    )


def query_list_request(
    *,
    pool: str,
    strategy: str,
    k: int,
    model: str,
    annotator: str,
    budget_seconds: float,
    lease_seconds: int,
    series: bool,
    study: bool = False,
    round_: int = 0,
    seed: int,
    max_pseudo_labels: int,
) -> al_pb.GetQueryListRequest:
    return al_pb.GetQueryListRequest(
        pool=pool,
        model_name=model,
        strategy=_choice(STRATEGIES, strategy, "strategy"),
        k=k,
        budget_seconds=budget_seconds,
        annotator=annotator,
        lease_seconds=lease_seconds,
        level=al_pb.QUERY_LEVEL_STUDY if study else (al_pb.QUERY_LEVEL_SERIES if series else al_pb.QUERY_LEVEL_IMAGE),
        round=round_,
        seed=seed,
        max_pseudo_labels=max_pseudo_labels,
    )
