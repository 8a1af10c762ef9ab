import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ceal.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_UNSPECIFIED: _ClassVar[Strategy]
    STRATEGY_RANDOM: _ClassVar[Strategy]
    STRATEGY_ENTROPY: _ClassVar[Strategy]
    STRATEGY_BALD: _ClassVar[Strategy]
    STRATEGY_VARIANCE: _ClassVar[Strategy]
    STRATEGY_CEAL: _ClassVar[Strategy]
    STRATEGY_SUGGESTIVE: _ClassVar[Strategy]
    STRATEGY_COST_SENSITIVE: _ClassVar[Strategy]
    STRATEGY_POWER_BALD: _ClassVar[Strategy]
    STRATEGY_RANDOM_FOREGROUND: _ClassVar[Strategy]
    STRATEGY_ENSEMBLE: _ClassVar[Strategy]
    STRATEGY_TYPICLUST: _ClassVar[Strategy]

class QueryLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_LEVEL_UNSPECIFIED: _ClassVar[QueryLevel]
    QUERY_LEVEL_IMAGE: _ClassVar[QueryLevel]
    QUERY_LEVEL_SERIES: _ClassVar[QueryLevel]
    QUERY_LEVEL_STUDY: _ClassVar[QueryLevel]

class LabelSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABEL_SOURCE_UNSPECIFIED: _ClassVar[LabelSource]
    LABEL_SOURCE_HUMAN: _ClassVar[LabelSource]
    LABEL_SOURCE_PSEUDO: _ClassVar[LabelSource]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_VIEWER: _ClassVar[Role]
    ROLE_ANNOTATOR: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
STRATEGY_UNSPECIFIED: Strategy
STRATEGY_RANDOM: Strategy
STRATEGY_ENTROPY: Strategy
STRATEGY_BALD: Strategy
STRATEGY_VARIANCE: Strategy
STRATEGY_CEAL: Strategy
STRATEGY_SUGGESTIVE: Strategy
STRATEGY_COST_SENSITIVE: Strategy
STRATEGY_POWER_BALD: Strategy
STRATEGY_RANDOM_FOREGROUND: Strategy
STRATEGY_ENSEMBLE: Strategy
STRATEGY_TYPICLUST: Strategy
QUERY_LEVEL_UNSPECIFIED: QueryLevel
QUERY_LEVEL_IMAGE: QueryLevel
QUERY_LEVEL_SERIES: QueryLevel
QUERY_LEVEL_STUDY: QueryLevel
LABEL_SOURCE_UNSPECIFIED: LabelSource
LABEL_SOURCE_HUMAN: LabelSource
LABEL_SOURCE_PSEUDO: LabelSource
ROLE_UNSPECIFIED: Role
ROLE_VIEWER: Role
ROLE_ANNOTATOR: Role
ROLE_ADMIN: Role

class PoolImage(_message.Message):
    __slots__ = ("image", "dicom", "series_key", "study_key", "slice_index", "name")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DICOM_FIELD_NUMBER: _ClassVar[int]
    SERIES_KEY_FIELD_NUMBER: _ClassVar[int]
    STUDY_KEY_FIELD_NUMBER: _ClassVar[int]
    SLICE_INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    image: _tensor_pb2.Image
    dicom: _tensor_pb2.DicomReference
    series_key: str
    study_key: str
    slice_index: int
    name: str
    def __init__(self, image: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., dicom: _Optional[_Union[_tensor_pb2.DicomReference, _Mapping]] = ..., series_key: _Optional[str] = ..., study_key: _Optional[str] = ..., slice_index: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class RegisterImagesRequest(_message.Message):
    __slots__ = ("pool", "images")
    POOL_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    pool: str
    images: _containers.RepeatedCompositeFieldContainer[PoolImage]
    def __init__(self, pool: _Optional[str] = ..., images: _Optional[_Iterable[_Union[PoolImage, _Mapping]]] = ...) -> None: ...

class RegisteredImage(_message.Message):
    __slots__ = ("image_id", "created")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    created: bool
    def __init__(self, image_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class RegisterImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[RegisteredImage]
    def __init__(self, images: _Optional[_Iterable[_Union[RegisteredImage, _Mapping]]] = ...) -> None: ...

class ScorePoolRequest(_message.Message):
    __slots__ = ("pool", "model_name", "model_version", "samples", "force", "adaptive_tolerance", "adaptive_min_samples")
    POOL_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    ADAPTIVE_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    ADAPTIVE_MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    pool: str
    model_name: str
    model_version: int
    samples: int
    force: bool
    adaptive_tolerance: float
    adaptive_min_samples: int
    def __init__(self, pool: _Optional[str] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., samples: _Optional[int] = ..., force: _Optional[bool] = ..., adaptive_tolerance: _Optional[float] = ..., adaptive_min_samples: _Optional[int] = ...) -> None: ...

class ScorePoolProgress(_message.Message):
    __slots__ = ("done", "total", "fresh", "images_per_second", "eta_seconds", "finished", "model_name", "model_version", "mean_samples")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRESH_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MEAN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    fresh: int
    images_per_second: float
    eta_seconds: float
    finished: bool
    model_name: str
    model_version: int
    mean_samples: float
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ..., fresh: _Optional[int] = ..., images_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., finished: _Optional[bool] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., mean_samples: _Optional[float] = ...) -> None: ...

class GetQueryListRequest(_message.Message):
    __slots__ = ("pool", "model_name", "strategy", "k", "budget_seconds", "annotator", "lease_seconds", "level", "round", "seed", "max_pseudo_labels")
    POOL_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    BUDGET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_PSEUDO_LABELS_FIELD_NUMBER: _ClassVar[int]
    pool: str
    model_name: str
    strategy: Strategy
    k: int
    budget_seconds: float
    annotator: str
    lease_seconds: int
    level: QueryLevel
    round: int
    seed: int
    max_pseudo_labels: int
    def __init__(self, pool: _Optional[str] = ..., model_name: _Optional[str] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., k: _Optional[int] = ..., budget_seconds: _Optional[float] = ..., annotator: _Optional[str] = ..., lease_seconds: _Optional[int] = ..., level: _Optional[_Union[QueryLevel, str]] = ..., round: _Optional[int] = ..., seed: _Optional[int] = ..., max_pseudo_labels: _Optional[int] = ...) -> None: ...

class QueryItem(_message.Message):
    __slots__ = ("image_id", "rank", "score", "reason", "estimated_seconds", "dicom", "series_key", "study_key", "lease_expires_at", "slice_image_ids", "name", "slice_dicom")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DICOM_FIELD_NUMBER: _ClassVar[int]
    SERIES_KEY_FIELD_NUMBER: _ClassVar[int]
    STUDY_KEY_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SLICE_IMAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLICE_DICOM_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    rank: int
    score: float
    reason: str
    estimated_seconds: float
    dicom: _tensor_pb2.DicomReference
    series_key: str
    study_key: str
    lease_expires_at: _timestamp_pb2.Timestamp
    slice_image_ids: _containers.RepeatedScalarFieldContainer[str]
    name: str
    slice_dicom: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.DicomReference]
    def __init__(self, image_id: _Optional[str] = ..., rank: _Optional[int] = ..., score: _Optional[float] = ..., reason: _Optional[str] = ..., estimated_seconds: _Optional[float] = ..., dicom: _Optional[_Union[_tensor_pb2.DicomReference, _Mapping]] = ..., series_key: _Optional[str] = ..., study_key: _Optional[str] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., slice_image_ids: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ..., slice_dicom: _Optional[_Iterable[_Union[_tensor_pb2.DicomReference, _Mapping]]] = ...) -> None: ...

class PseudoLabelCandidate(_message.Message):
    __slots__ = ("image_id", "confidence")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    confidence: float
    def __init__(self, image_id: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class GetQueryListResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "items", "pseudo_labels", "unscored", "note")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PSEUDO_LABELS_FIELD_NUMBER: _ClassVar[int]
    UNSCORED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: int
    items: _containers.RepeatedCompositeFieldContainer[QueryItem]
    pseudo_labels: _containers.RepeatedCompositeFieldContainer[PseudoLabelCandidate]
    unscored: int
    note: str
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., items: _Optional[_Iterable[_Union[QueryItem, _Mapping]]] = ..., pseudo_labels: _Optional[_Iterable[_Union[PseudoLabelCandidate, _Mapping]]] = ..., unscored: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class SubmitLabelRequest(_message.Message):
    __slots__ = ("pool", "image_id", "mask", "annotator", "source", "seconds_spent", "idempotency_key", "model_version")
    POOL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_SPENT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    pool: str
    image_id: str
    mask: _tensor_pb2.Tensor
    annotator: str
    source: LabelSource
    seconds_spent: float
    idempotency_key: str
    model_version: int
    def __init__(self, pool: _Optional[str] = ..., image_id: _Optional[str] = ..., mask: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., annotator: _Optional[str] = ..., source: _Optional[_Union[LabelSource, str]] = ..., seconds_spent: _Optional[float] = ..., idempotency_key: _Optional[str] = ..., model_version: _Optional[int] = ...) -> None: ...

class SubmitLabelResponse(_message.Message):
    __slots__ = ("label_id", "version")
    LABEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    label_id: str
    version: int
    def __init__(self, label_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ExportLabelsRequest(_message.Message):
    __slots__ = ("pool", "sources", "include_images")
    POOL_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_IMAGES_FIELD_NUMBER: _ClassVar[int]
    pool: str
    sources: _containers.RepeatedScalarFieldContainer[LabelSource]
    include_images: bool
    def __init__(self, pool: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[LabelSource, str]]] = ..., include_images: _Optional[bool] = ...) -> None: ...

class LabelRecord(_message.Message):
    __slots__ = ("image_id", "label_id", "version", "source", "annotator", "mask", "image", "created_at", "dicom", "name", "image_omitted", "seconds_spent", "model_version")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DICOM_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_OMITTED_FIELD_NUMBER: _ClassVar[int]
    SECONDS_SPENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    label_id: str
    version: int
    source: LabelSource
    annotator: str
    mask: _tensor_pb2.Tensor
    image: _tensor_pb2.Tensor
    created_at: _timestamp_pb2.Timestamp
    dicom: _tensor_pb2.DicomReference
    name: str
    image_omitted: str
    seconds_spent: float
    model_version: int
    def __init__(self, image_id: _Optional[str] = ..., label_id: _Optional[str] = ..., version: _Optional[int] = ..., source: _Optional[_Union[LabelSource, str]] = ..., annotator: _Optional[str] = ..., mask: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., image: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dicom: _Optional[_Union[_tensor_pb2.DicomReference, _Mapping]] = ..., name: _Optional[str] = ..., image_omitted: _Optional[str] = ..., seconds_spent: _Optional[float] = ..., model_version: _Optional[int] = ...) -> None: ...

class FindSimilarRequest(_message.Message):
    __slots__ = ("pool", "image_id", "image", "k", "model_name")
    POOL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    pool: str
    image_id: str
    image: _tensor_pb2.Image
    k: int
    model_name: str
    def __init__(self, pool: _Optional[str] = ..., image_id: _Optional[str] = ..., image: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., k: _Optional[int] = ..., model_name: _Optional[str] = ...) -> None: ...

class SimilarImage(_message.Message):
    __slots__ = ("image_id", "similarity", "hamming_distance")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    HAMMING_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    similarity: float
    hamming_distance: int
    def __init__(self, image_id: _Optional[str] = ..., similarity: _Optional[float] = ..., hamming_distance: _Optional[int] = ...) -> None: ...

class FindSimilarResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[SimilarImage]
    def __init__(self, images: _Optional[_Iterable[_Union[SimilarImage, _Mapping]]] = ...) -> None: ...

class GetPoolStatsRequest(_message.Message):
    __slots__ = ("pool", "model_name")
    POOL_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    pool: str
    model_name: str
    def __init__(self, pool: _Optional[str] = ..., model_name: _Optional[str] = ...) -> None: ...

class PoolStats(_message.Message):
    __slots__ = ("pool", "images", "series", "labelled_human", "labelled_pseudo", "scored_fresh", "scored_stale", "leased", "model_name", "model_version", "expected_gain_next_20", "expected_gain_next_20_low", "expected_gain_next_20_high", "expected_gain_per_hour", "expected_gain_per_hour_high", "plateau", "plateau_threshold", "mean_samples")
    POOL_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    LABELLED_HUMAN_FIELD_NUMBER: _ClassVar[int]
    LABELLED_PSEUDO_FIELD_NUMBER: _ClassVar[int]
    SCORED_FRESH_FIELD_NUMBER: _ClassVar[int]
    SCORED_STALE_FIELD_NUMBER: _ClassVar[int]
    LEASED_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GAIN_NEXT_20_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GAIN_NEXT_20_LOW_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GAIN_NEXT_20_HIGH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GAIN_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GAIN_PER_HOUR_HIGH_FIELD_NUMBER: _ClassVar[int]
    PLATEAU_FIELD_NUMBER: _ClassVar[int]
    PLATEAU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MEAN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    pool: str
    images: int
    series: int
    labelled_human: int
    labelled_pseudo: int
    scored_fresh: int
    scored_stale: int
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
    mean_samples: float
    def __init__(self, pool: _Optional[str] = ..., images: _Optional[int] = ..., series: _Optional[int] = ..., labelled_human: _Optional[int] = ..., labelled_pseudo: _Optional[int] = ..., scored_fresh: _Optional[int] = ..., scored_stale: _Optional[int] = ..., leased: _Optional[int] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., expected_gain_next_20: _Optional[float] = ..., expected_gain_next_20_low: _Optional[float] = ..., expected_gain_next_20_high: _Optional[float] = ..., expected_gain_per_hour: _Optional[float] = ..., expected_gain_per_hour_high: _Optional[float] = ..., plateau: _Optional[bool] = ..., plateau_threshold: _Optional[float] = ..., mean_samples: _Optional[float] = ...) -> None: ...

class ListPoolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPoolsResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pools: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPoolImageRequest(_message.Message):
    __slots__ = ("pool", "image_id")
    POOL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    pool: str
    image_id: str
    def __init__(self, pool: _Optional[str] = ..., image_id: _Optional[str] = ...) -> None: ...

class GetPoolImageResponse(_message.Message):
    __slots__ = ("image_id", "image", "dicom", "series_key", "label", "label_version", "label_source", "label_annotator", "lease_annotator", "lease_expires_at", "name")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DICOM_FIELD_NUMBER: _ClassVar[int]
    SERIES_KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    LABEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    LEASE_ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    image: _tensor_pb2.Tensor
    dicom: _tensor_pb2.DicomReference
    series_key: str
    label: _tensor_pb2.Tensor
    label_version: int
    label_source: LabelSource
    label_annotator: str
    lease_annotator: str
    lease_expires_at: _timestamp_pb2.Timestamp
    name: str
    def __init__(self, image_id: _Optional[str] = ..., image: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., dicom: _Optional[_Union[_tensor_pb2.DicomReference, _Mapping]] = ..., series_key: _Optional[str] = ..., label: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., label_version: _Optional[int] = ..., label_source: _Optional[_Union[LabelSource, str]] = ..., label_annotator: _Optional[str] = ..., lease_annotator: _Optional[str] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class ReleaseLeaseRequest(_message.Message):
    __slots__ = ("pool", "image_id", "annotator")
    POOL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    pool: str
    image_id: str
    annotator: str
    def __init__(self, pool: _Optional[str] = ..., image_id: _Optional[str] = ..., annotator: _Optional[str] = ...) -> None: ...

class ReleaseLeaseResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: bool
    def __init__(self, released: _Optional[bool] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("name", "role", "authentication")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Role
    authentication: bool
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., authentication: _Optional[bool] = ...) -> None: ...
