"""Plain result types the SDK returns (numpy arrays, no protobuf)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import numpy as np

from ceal.client.codec import as_numpy
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import segmentation_pb2 as seg_pb


def readable(value: float, digits: int = 4) -> str:
    """A score for people: fixed point from 0.001 up, scientific notation below (1.234e-05 rather than
    0.00001), and 0, nan and inf as themselves."""
    if value == 0 or not np.isfinite(value):
        return f"{value:g}"
    if abs(value) < 1e-3 or abs(value) >= 1e6:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}"


_MEASURES = {1: "entropy", 2: "mutual_information", 3: "variance"}
_STATUSES = {1: "candidate", 2: "promoted", 3: "rejected", 4: "rolled_back"}
_REDUCTIONS = {1: "mean", 2: "sum", 3: "top_k_mean", 4: "boundary_weighted"}


@dataclass(frozen=True)
class Prediction:
    """One image's Monte-Carlo prediction; maps are at the image's own size (H, W)."""

    request_id: str
    model_name: str
    model_version: int
    samples: int
    score: float
    scores: dict[tuple[str, str], float]
    foreground_fraction: float
    probability: np.ndarray | None = None  # (H, W) foreground, or (C, H, W) for softmax models
    label_map: np.ndarray | None = None  # uint8 (H, W)
    entropy: np.ndarray | None = None
    mutual_information: np.ndarray | None = None
    variance: np.ndarray | None = None
    samples_raw: np.ndarray | None = None  # float16 (T, C, h, w) at the model's size

    @classmethod
    def from_proto(cls, r: seg_pb.PredictResponse) -> Prediction:
        return cls(
            request_id=r.request_id,
            model_name=r.model_name,
            model_version=r.model_version,
            samples=r.samples,
            score=r.score,
            scores={(_MEASURES[s.measure], _REDUCTIONS[s.reduction]): s.value for s in r.scores},
            foreground_fraction=r.foreground_fraction,
            probability=as_numpy(r.probability),
            label_map=as_numpy(r.label_map),
            entropy=as_numpy(r.entropy),
            mutual_information=as_numpy(r.mutual_information),
            variance=as_numpy(r.variance),
            samples_raw=as_numpy(r.samples_raw),
        )


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: int
    input_shape: tuple[int, int, int]  # (channels, height, width)
    num_classes: int
    class_names: tuple[str, ...]
    dropout_rate: float
    validation_dice: float
    created_at: datetime | None
    is_latest: bool
    provider: str
    precision: str
    # The model's preprocessing contract (`ceal.imaging.PreprocessParams` fields); None for older models.
    preprocessing: dict[str, Any] | None = None
    status: str = "promoted"  # candidate | promoted | rejected | rolled_back
    status_reason: str = ""
    heldout_dice: float = float("nan")  # held-out Dice against human labels, with its 95 % interval
    heldout_dice_interval: tuple[float, float] = (float("nan"), float("nan"))
    heldout_images: int = 0
    parent_version: int = 0
    loaded: bool = True

    @classmethod
    def from_proto(cls, m: seg_pb.ModelInfo) -> ModelInfo:
        return cls(
            name=m.name,
            version=m.version,
            input_shape=(m.input_channels, m.input_height, m.input_width),
            num_classes=m.num_classes,
            class_names=tuple(m.class_names),
            dropout_rate=m.dropout_rate,
            validation_dice=m.validation_dice,
            created_at=m.created_at.ToDatetime() if m.HasField("created_at") else None,
            is_latest=m.is_latest,
            provider=m.provider,
            precision=m.precision,
            preprocessing=json.loads(m.preprocessing) if m.preprocessing else None,
            status=_STATUSES.get(m.status, "promoted"),
            status_reason=m.status_reason,
            heldout_dice=m.heldout_dice,
            heldout_dice_interval=(m.heldout_dice_low, m.heldout_dice_high),
            heldout_images=m.heldout_images,
            parent_version=m.parent_version,
            loaded=m.loaded,
        )


@dataclass(frozen=True)
class QueryItem:
    image_id: str
    rank: int
    score: float
    reason: str
    estimated_seconds: float
    series_key: str
    study_key: str
    lease_expires_at: datetime | None
    slice_image_ids: tuple[str, ...] = ()
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    # For series items: (SOP Instance UID, frame number) of each of slice_image_ids ("" / 0 when unknown)
    slice_instances: tuple[tuple[str, int], ...] = ()
    name: str = ""  # as registered: a file name or UID


@dataclass(frozen=True)
class QueryList:
    model_name: str
    model_version: int
    items: tuple[QueryItem, ...]
    pseudo_labels: tuple[tuple[str, float], ...]  # (image_id, confidence)
    unscored: int
    note: str = ""  # why the list is shorter than asked for (empty when it is not)

    @classmethod
    def from_proto(cls, r: al_pb.GetQueryListResponse) -> QueryList:
        items = tuple(
            QueryItem(
                image_id=i.image_id,
                rank=i.rank,
                score=i.score,
                reason=i.reason,
                estimated_seconds=i.estimated_seconds,
                series_key=i.series_key,
                study_key=i.study_key,
                lease_expires_at=i.lease_expires_at.ToDatetime() if i.HasField("lease_expires_at") else None,
                slice_image_ids=tuple(i.slice_image_ids),
                sop_instance_uid=i.dicom.sop_instance_uid,
                study_instance_uid=i.dicom.study_instance_uid,
                series_instance_uid=i.dicom.series_instance_uid,
                slice_instances=tuple((d.sop_instance_uid, d.frame_number) for d in i.slice_dicom),
                name=i.name,
            )
            for i in r.items
        )
        pseudo = tuple((p.image_id, p.confidence) for p in r.pseudo_labels)
        return cls(r.model_name, r.model_version, items, pseudo, r.unscored, r.note)


@dataclass(frozen=True)
class LabelRecord:
    image_id: str
    label_id: str
    version: int
    source: str  # "human" | "pseudo"
    annotator: str
    mask: np.ndarray
    image: np.ndarray | None = None
    extra: dict[str, str] = field(default_factory=dict)
    name: str = ""  # as registered: a file name or UID
    image_omitted: str = ""  # why the image was left out of this record (too large to send), if it was
    seconds_spent: float = 0.0  # annotation time as submitted
    created_at: datetime | None = None
    model_version: int = 0  # pseudo-labels: the version that drew the mask

    @classmethod
    def from_proto(cls, r: al_pb.LabelRecord) -> LabelRecord:
        mask = as_numpy(r.mask)
        assert mask is not None
        source = "pseudo" if r.source == al_pb.LABEL_SOURCE_PSEUDO else "human"
        return cls(
            r.image_id,
            r.label_id,
            r.version,
            source,
            r.annotator,
            mask,
            as_numpy(r.image),
            name=r.name,
            image_omitted=r.image_omitted,
            seconds_spent=r.seconds_spent,
            created_at=r.created_at.ToDatetime() if r.HasField("created_at") else None,
            model_version=r.model_version,
        )


_ROLES = {al_pb.ROLE_VIEWER: "viewer", al_pb.ROLE_ANNOTATOR: "annotator", al_pb.ROLE_ADMIN: "admin"}


@dataclass(frozen=True)
class Identity:
    """Who the server takes the caller for. authentication False: the server checks no tokens (all open)."""

    name: str
    role: str  # "viewer" | "annotator" | "admin"
    authentication: bool

    @classmethod
    def from_proto(cls, r: al_pb.WhoAmIResponse) -> Identity:
        return cls(r.name, _ROLES.get(r.role, "viewer"), r.authentication)


@dataclass(frozen=True)
class PoolImageView:
    """One pool image for a viewer: pixels as registered (H, W) or (H, W, C); newest label uint8 (H, W)."""

    image_id: str
    image: np.ndarray
    series_key: str
    label: np.ndarray | None
    label_version: int
    label_source: str  # "human" | "pseudo" | "" when unlabelled
    label_annotator: str
    lease_annotator: str
    lease_expires_at: datetime | None
    name: str = ""  # as registered: a file name or UID

    @classmethod
    def from_proto(cls, r: al_pb.GetPoolImageResponse) -> PoolImageView:
        image = as_numpy(r.image)
        assert image is not None
        source = {al_pb.LABEL_SOURCE_HUMAN: "human", al_pb.LABEL_SOURCE_PSEUDO: "pseudo"}.get(r.label_source, "")
        return cls(
            image_id=r.image_id,
            image=image,
            series_key=r.series_key,
            label=as_numpy(r.label),
            label_version=r.label_version,
            label_source=source,
            label_annotator=r.label_annotator,
            lease_annotator=r.lease_annotator,
            lease_expires_at=r.lease_expires_at.ToDatetime() if r.HasField("lease_expires_at") else None,
            name=r.name,
        )


@dataclass(frozen=True)
class ScoreProgress:
    """Where a ScorePool call stands; `Client.score_pool` returns the last one (finished=True).

    done of total: images scored by this call (or by other scorers sharing the pool) of those that needed
    scoring when it started; fresh: images skipped because their score for this model version was fresh."""

    done: int = 0
    total: int = 0
    fresh: int = 0
    images_per_second: float = 0.0
    eta_seconds: float = 0.0
    finished: bool = False
    model_name: str = ""
    model_version: int = 0
    mean_samples: float = 0.0  # MC samples per image this call drew (below `samples` under adaptive T)

    @classmethod
    def from_proto(cls, r: al_pb.ScorePoolProgress) -> ScoreProgress:
        return cls(**{f.name: getattr(r, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class PoolStats:
    """A pool's counts for the served (or named) model version, and that version's learning-curve stop
    signal: expected held-out Dice gain of the next 20 human labels (90 % interval) and per annotator-hour,
    NaN when the curve has too few points; `plateau` when the upper bound is under `plateau_threshold`."""

    pool: str
    images: int
    series: int
    labelled_human: int
    labelled_pseudo: int
    scored_fresh: int  # images with a score for the model version
    scored_stale: int  # images whose score is from an older version
    leased: int
    model_name: str
    model_version: int
    expected_gain_next_20: float
    expected_gain_next_20_low: float
    expected_gain_next_20_high: float
    expected_gain_per_hour: float
    expected_gain_per_hour_high: float
    plateau: bool
    plateau_threshold: float
    mean_samples: float  # MC samples per image of the server's last pass over this pool (0: none)

    @classmethod
    def from_proto(cls, r: al_pb.PoolStats) -> PoolStats:
        return cls(**{f.name: getattr(r, f.name) for f in fields(cls)})
