"""The pool store: images, uncertainty scores, labels and query leases of named pools.

`PoolStore` is the interface; `SQLitePoolStore` the embedded backend; `PostgresPoolStore` (in
`ceal.service.store.postgres`, not re-exported here: it needs the optional psycopg) the one several replicas
share; both are `SQLPoolStore` (`sql.py`: one set of method bodies, each backend its dialect's hooks) on one
migration history (`migrations.py`); `open_store(state)` picks one from a directory or URL. The store knows
nothing of gRPC or models.
"""

from ceal.service.store.base import (
    LABEL_SOURCES,
    MASK_VERSIONS,
    DicomRef,
    GroupLease,
    ImageRecord,
    Label,
    LabelSource,
    Lease,
    NewImage,
    PackedMask,
    PoolCounts,
    PoolStore,
    ScoreRow,
)
from ceal.service.store.codec import decode_array, encode_array, image_id_of
from ceal.service.store.errors import Conflict, InvalidInput, NotFound, StoreError, UnsupportedBackend
from ceal.service.store.factory import open_store
from ceal.service.store.sqlite import SQLitePoolStore

__all__ = [
    "LABEL_SOURCES",
    "MASK_VERSIONS",
    "Conflict",
    "DicomRef",
    "GroupLease",
    "ImageRecord",
    "InvalidInput",
    "Label",
    "LabelSource",
    "Lease",
    "NewImage",
    "NotFound",
    "PackedMask",
    "PoolCounts",
    "PoolStore",
    "SQLitePoolStore",
    "ScoreRow",
    "StoreError",
    "UnsupportedBackend",
    "decode_array",
    "encode_array",
    "image_id_of",
    "open_store",
]
