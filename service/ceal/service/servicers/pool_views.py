"""What a viewer or editor reads of one pool image (GetPoolImage), skipping (ReleaseLease), and WhoAmI."""

from __future__ import annotations

from ceal.service.codec import numpy_to_tensor
from ceal.service.middleware.caller import current_caller
from ceal.service.servicers import pool_messages as msg
from ceal.service.store import PoolStore
from ceal.v1 import active_learning_pb2 as pb

_SOURCES = {"human": pb.LABEL_SOURCE_HUMAN, "pseudo": pb.LABEL_SOURCE_PSEUDO}


def pool_image(store: PoolStore, pool: str, image_id: str) -> pb.GetPoolImageResponse:
    """The image's pixels, newest label (human labels win) and lease. Raises NotFound for an unknown id."""
    record = store.get_image(pool, image_id)
    out = pb.GetPoolImageResponse(
        image_id=image_id,
        image=numpy_to_tensor(store.load_pixels(pool, image_id)),
        series_key=record.series_key,
        name=record.name,
    )
    ref = msg.dicom_proto(record.dicom)
    if ref is not None:
        out.dicom.CopyFrom(ref)
    history = store.label_history(pool, image_id)
    human = [label for label in history if label.source == "human"]
    if human or history:
        newest = (human or history)[-1]
        out.label.CopyFrom(numpy_to_tensor(newest.mask))
        out.label_version = newest.version
        out.label_source = _SOURCES[newest.source]
        out.label_annotator = newest.annotator
    for lease in store.active_leases(pool):
        if lease.image_id == image_id:
            out.lease_annotator = lease.annotator
            out.lease_expires_at.CopyFrom(msg.timestamp(lease.expires_at))
    return out


def release_lease(store: PoolStore, pool: str, image_id: str, annotator: str) -> bool:
    """Drop the image's lease if `annotator` holds it; False when they hold none (nothing changes then)."""
    store.get_image(pool, image_id)  # NotFound for an id not in the pool
    held = any(x.image_id == image_id and x.annotator == annotator for x in store.active_leases(pool))
    if held:
        store.release_lease(pool, image_id)
    return held


def who_am_i() -> pb.WhoAmIResponse:
    caller = current_caller()
    role = {1: pb.ROLE_VIEWER, 2: pb.ROLE_ANNOTATOR, 3: pb.ROLE_ADMIN}[int(caller.role)]
    return pb.WhoAmIResponse(name=caller.name, role=role, authentication=caller.authenticated)
