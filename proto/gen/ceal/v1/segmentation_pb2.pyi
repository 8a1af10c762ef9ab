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

class UncertaintyMeasure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNCERTAINTY_MEASURE_UNSPECIFIED: _ClassVar[UncertaintyMeasure]
    UNCERTAINTY_MEASURE_ENTROPY: _ClassVar[UncertaintyMeasure]
    UNCERTAINTY_MEASURE_MUTUAL_INFORMATION: _ClassVar[UncertaintyMeasure]
    UNCERTAINTY_MEASURE_VARIANCE: _ClassVar[UncertaintyMeasure]

class Reduction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REDUCTION_UNSPECIFIED: _ClassVar[Reduction]
    REDUCTION_MEAN: _ClassVar[Reduction]
    REDUCTION_SUM: _ClassVar[Reduction]
    REDUCTION_TOP_K_MEAN: _ClassVar[Reduction]
    REDUCTION_BOUNDARY_WEIGHTED: _ClassVar[Reduction]

class MapKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAP_KIND_UNSPECIFIED: _ClassVar[MapKind]
    MAP_KIND_PROBABILITY: _ClassVar[MapKind]
    MAP_KIND_LABEL_MAP: _ClassVar[MapKind]
    MAP_KIND_ENTROPY: _ClassVar[MapKind]
    MAP_KIND_MUTUAL_INFORMATION: _ClassVar[MapKind]
    MAP_KIND_VARIANCE: _ClassVar[MapKind]

class Activation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVATION_UNSPECIFIED: _ClassVar[Activation]
    ACTIVATION_SIGMOID: _ClassVar[Activation]
    ACTIVATION_SOFTMAX: _ClassVar[Activation]

class ModelStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATUS_UNSPECIFIED: _ClassVar[ModelStatus]
    MODEL_STATUS_CANDIDATE: _ClassVar[ModelStatus]
    MODEL_STATUS_PROMOTED: _ClassVar[ModelStatus]
    MODEL_STATUS_REJECTED: _ClassVar[ModelStatus]
    MODEL_STATUS_ROLLED_BACK: _ClassVar[ModelStatus]
UNCERTAINTY_MEASURE_UNSPECIFIED: UncertaintyMeasure
UNCERTAINTY_MEASURE_ENTROPY: UncertaintyMeasure
UNCERTAINTY_MEASURE_MUTUAL_INFORMATION: UncertaintyMeasure
UNCERTAINTY_MEASURE_VARIANCE: UncertaintyMeasure
REDUCTION_UNSPECIFIED: Reduction
REDUCTION_MEAN: Reduction
REDUCTION_SUM: Reduction
REDUCTION_TOP_K_MEAN: Reduction
REDUCTION_BOUNDARY_WEIGHTED: Reduction
MAP_KIND_UNSPECIFIED: MapKind
MAP_KIND_PROBABILITY: MapKind
MAP_KIND_LABEL_MAP: MapKind
MAP_KIND_ENTROPY: MapKind
MAP_KIND_MUTUAL_INFORMATION: MapKind
MAP_KIND_VARIANCE: MapKind
ACTIVATION_UNSPECIFIED: Activation
ACTIVATION_SIGMOID: Activation
ACTIVATION_SOFTMAX: Activation
MODEL_STATUS_UNSPECIFIED: ModelStatus
MODEL_STATUS_CANDIDATE: ModelStatus
MODEL_STATUS_PROMOTED: ModelStatus
MODEL_STATUS_REJECTED: ModelStatus
MODEL_STATUS_ROLLED_BACK: ModelStatus

class PostProcessing(_message.Message):
    __slots__ = ("keep_largest_component", "fill_holes")
    KEEP_LARGEST_COMPONENT_FIELD_NUMBER: _ClassVar[int]
    FILL_HOLES_FIELD_NUMBER: _ClassVar[int]
    keep_largest_component: bool
    fill_holes: bool
    def __init__(self, keep_largest_component: _Optional[bool] = ..., fill_holes: _Optional[bool] = ...) -> None: ...

class PredictOptions(_message.Message):
    __slots__ = ("samples", "maps", "threshold", "return_samples", "seed", "post_processing", "score_measure", "score_reduction", "top_k_percent", "adaptive_tolerance", "adaptive_min_samples", "float16_maps")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RETURN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    POST_PROCESSING_FIELD_NUMBER: _ClassVar[int]
    SCORE_MEASURE_FIELD_NUMBER: _ClassVar[int]
    SCORE_REDUCTION_FIELD_NUMBER: _ClassVar[int]
    TOP_K_PERCENT_FIELD_NUMBER: _ClassVar[int]
    ADAPTIVE_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    ADAPTIVE_MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    FLOAT16_MAPS_FIELD_NUMBER: _ClassVar[int]
    samples: int
    maps: _containers.RepeatedScalarFieldContainer[MapKind]
    threshold: float
    return_samples: bool
    seed: int
    post_processing: PostProcessing
    score_measure: UncertaintyMeasure
    score_reduction: Reduction
    top_k_percent: float
    adaptive_tolerance: float
    adaptive_min_samples: int
    float16_maps: bool
    def __init__(self, samples: _Optional[int] = ..., maps: _Optional[_Iterable[_Union[MapKind, str]]] = ..., threshold: _Optional[float] = ..., return_samples: _Optional[bool] = ..., seed: _Optional[int] = ..., post_processing: _Optional[_Union[PostProcessing, _Mapping]] = ..., score_measure: _Optional[_Union[UncertaintyMeasure, str]] = ..., score_reduction: _Optional[_Union[Reduction, str]] = ..., top_k_percent: _Optional[float] = ..., adaptive_tolerance: _Optional[float] = ..., adaptive_min_samples: _Optional[int] = ..., float16_maps: _Optional[bool] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "image", "options", "request_id")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: int
    image: _tensor_pb2.Image
    options: PredictOptions
    request_id: str
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., image: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., options: _Optional[_Union[PredictOptions, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UncertaintyScore(_message.Message):
    __slots__ = ("measure", "reduction", "value")
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    measure: UncertaintyMeasure
    reduction: Reduction
    value: float
    def __init__(self, measure: _Optional[_Union[UncertaintyMeasure, str]] = ..., reduction: _Optional[_Union[Reduction, str]] = ..., value: _Optional[float] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("request_id", "model_name", "model_version", "samples", "probability", "label_map", "entropy", "mutual_information", "variance", "samples_raw", "score", "scores", "foreground_fraction")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    LABEL_MAP_FIELD_NUMBER: _ClassVar[int]
    ENTROPY_FIELD_NUMBER: _ClassVar[int]
    MUTUAL_INFORMATION_FIELD_NUMBER: _ClassVar[int]
    VARIANCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_RAW_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    FOREGROUND_FRACTION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model_name: str
    model_version: int
    samples: int
    probability: _tensor_pb2.Tensor
    label_map: _tensor_pb2.Tensor
    entropy: _tensor_pb2.Tensor
    mutual_information: _tensor_pb2.Tensor
    variance: _tensor_pb2.Tensor
    samples_raw: _tensor_pb2.Tensor
    score: float
    scores: _containers.RepeatedCompositeFieldContainer[UncertaintyScore]
    foreground_fraction: float
    def __init__(self, request_id: _Optional[str] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., samples: _Optional[int] = ..., probability: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., label_map: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., entropy: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., mutual_information: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., variance: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., samples_raw: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., score: _Optional[float] = ..., scores: _Optional[_Iterable[_Union[UncertaintyScore, _Mapping]]] = ..., foreground_fraction: _Optional[float] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "input_channels", "input_height", "input_width", "activation", "num_classes", "class_names", "dropout_rate", "validation_dice", "training_data_hash", "created_at", "is_latest", "split", "provider", "precision", "status", "status_reason", "heldout_dice", "heldout_dice_low", "heldout_dice_high", "heldout_images", "parent_version", "loaded", "preprocessing")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_RATE_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DICE_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    IS_LATEST_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_DICE_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_DICE_LOW_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_DICE_HIGH_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_IMAGES_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    input_channels: int
    input_height: int
    input_width: int
    activation: Activation
    num_classes: int
    class_names: _containers.RepeatedScalarFieldContainer[str]
    dropout_rate: float
    validation_dice: float
    training_data_hash: str
    created_at: _timestamp_pb2.Timestamp
    is_latest: bool
    split: bool
    provider: str
    precision: str
    status: ModelStatus
    status_reason: str
    heldout_dice: float
    heldout_dice_low: float
    heldout_dice_high: float
    heldout_images: int
    parent_version: int
    loaded: bool
    preprocessing: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., input_channels: _Optional[int] = ..., input_height: _Optional[int] = ..., input_width: _Optional[int] = ..., activation: _Optional[_Union[Activation, str]] = ..., num_classes: _Optional[int] = ..., class_names: _Optional[_Iterable[str]] = ..., dropout_rate: _Optional[float] = ..., validation_dice: _Optional[float] = ..., training_data_hash: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., is_latest: _Optional[bool] = ..., split: _Optional[bool] = ..., provider: _Optional[str] = ..., precision: _Optional[str] = ..., status: _Optional[_Union[ModelStatus, str]] = ..., status_reason: _Optional[str] = ..., heldout_dice: _Optional[float] = ..., heldout_dice_low: _Optional[float] = ..., heldout_dice_high: _Optional[float] = ..., heldout_images: _Optional[int] = ..., parent_version: _Optional[int] = ..., loaded: _Optional[bool] = ..., preprocessing: _Optional[str] = ...) -> None: ...

class PromoteModelRequest(_message.Message):
    __slots__ = ("name", "version", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class PromoteModelResponse(_message.Message):
    __slots__ = ("name", "served_version", "previous_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    served_version: int
    previous_version: int
    def __init__(self, name: _Optional[str] = ..., served_version: _Optional[int] = ..., previous_version: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "refused")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    refused: _containers.RepeatedCompositeFieldContainer[RefusedModel]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., refused: _Optional[_Iterable[_Union[RefusedModel, _Mapping]]] = ...) -> None: ...

class RefusedModel(_message.Message):
    __slots__ = ("name", "version", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
