"""ceal's Python SDK: numpy in, numpy out, typed exceptions. Installs without torch or onnxruntime.

`Client` blocks, `AsyncClient` awaits (grpc.aio); both take the same arguments and raise the same exceptions.
The guide is docs/sdk.md.
"""

from ceal.client.aio import AsyncClient
from ceal.client.errors import (
    AlreadyExists,
    CealError,
    DeadlineExceeded,
    InvalidArgument,
    MessageTooLarge,
    NotFound,
    Overloaded,
    PermissionDenied,
    ServerError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from ceal.client.requests import PoolImage, pool_image
from ceal.client.results import LabelRecord, ModelInfo, PoolStats, Prediction, QueryItem, QueryList, ScoreProgress
from ceal.client.sync import Client

__all__ = [
    "AlreadyExists",
    "AsyncClient",
    "CealError",
    "Client",
    "DeadlineExceeded",
    "InvalidArgument",
    "LabelRecord",
    "MessageTooLarge",
    "ModelInfo",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "PoolImage",
    "PoolStats",
    "Prediction",
    "QueryItem",
    "QueryList",
    "ScoreProgress",
    "ServerError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "pool_image",
]
