"""Decoded slices → pool images: registered in batches under the message limit, with their DICOM reference,
series and study, so `pacs sync` and `pacs labels` register a slice the same way (and get the same id)."""

from __future__ import annotations

from collections.abc import Sequence

from ceal.client import Client, PoolImage, pool_image
from ceal.pacs.decode import DecodedSlice

__all__ = ["REGISTER_BATCH_BYTES", "register_slices"]

REGISTER_BATCH_BYTES = 32 * 1024 * 1024  # well under the 64 MiB message limit


def register_slices(
    client: Client, slices: Sequence[DecodedSlice], series_uid: str, study_uid: str, pool: str
) -> list[str]:
    """Register the slices of one series in batches (idempotent on the server); their image ids, in order."""
    ids: list[str] = []
    batch: list[PoolImage] = []
    size = 0
    for s in slices:
        if batch and size + s.pixels.nbytes > REGISTER_BATCH_BYTES:
            ids.extend(image_id for image_id, _ in client.register_images(batch, pool=pool))
            batch, size = [], 0
        batch.append(
            pool_image(
                s.pixels,
                series_key=series_uid,
                study_key=study_uid,
                slice_index=s.slice_index,
                dicom=(s.ref.study_uid, s.ref.series_uid, s.ref.sop_uid),
                frame=s.ref.frame_number,
            )
        )
        size += s.pixels.nbytes
    if batch:
        ids.extend(image_id for image_id, _ in client.register_images(batch, pool=pool))
    return ids
