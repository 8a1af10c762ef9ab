"""The held-out split: a fixed share of human-labelled images, chosen by a hash of the image id.

An image is held out when sha256("ceal-heldout-v1:" + image id), read as a number in [0, 1), is below the
share. The choice depends on the id alone, so it never changes as labels arrive, every version of every run
agrees on it, and a held-out image is never trained on (neither its human nor its pseudo-label).
"""

from __future__ import annotations

import hashlib

DEFAULT_SHARE = 0.15
_SALT = b"ceal-heldout-v1:"


def hash_unit(image_id: str) -> float:
    """A stable number in [0, 1) from the image id (the first 8 bytes of its salted sha256)."""
    digest = hashlib.sha256(_SALT + image_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_heldout(image_id: str, share: float = DEFAULT_SHARE) -> bool:
    if not 0.0 <= share < 1.0:
        raise ValueError(f"held-out share must be in [0, 1), got {share}")
    return hash_unit(image_id) < share
