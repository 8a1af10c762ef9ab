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
from ceal.client.requests import pool_image
from ceal.client.results import LabelRecord, ModelInfo, Prediction, QueryItem, QueryList
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
    "Prediction",
    "QueryItem",
    "QueryList",
    "ServerError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "pool_image",
]
