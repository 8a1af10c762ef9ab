"""The pool store's records and its abstract interface, `PoolStore`.

A pool is a named set of images with their uncertainty scores, labels and query leases. Backends
(`SQLitePoolStore`, `PostgresPoolStore`) implement `PoolStore`; the rest of the service sees only this
module. Times are seconds since the epoch from the store's injected clock.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

import numpy as np

__all__ = [
    "GROUP_LEVELS",
    "LABEL_SOURCES",
    "MASK_VERSIONS",
    "DicomRef",
    "GroupLease",
    "GroupLevel",
    "ImageRecord",
    "Label",
    "LabelSource",
    "Lease",
    "NewImage",
    "PackedMask",
    "PoolCounts",
    "PoolStore",
    "ScoreRow",
]

LabelSource = Literal["human", "pseudo"]
LABEL_SOURCES: frozenset[str] = frozenset({"human", "pseudo"})
GroupLevel = Literal["series", "study"]
GROUP_LEVELS: frozenset[str] = frozenset({"series", "study"})
# Model versions whose predicted masks the store keeps per image and model name (older ones are pruned on
# write): the members of the `ensemble` strategy's version disagreement.
MASK_VERSIONS = 3


@dataclass(frozen=True)
class DicomRef:
    """Where an image lives in a PACS. `frame` is the 1-based frame of a multi-frame instance, else None."""

    study_uid: str
    series_uid: str
    sop_uid: str
    frame: int | None = None


@dataclass(frozen=True)
class NewImage:
    """An image to register. pixels: (H, W) or (H, W, C), channels last, any bool/int/uint/float dtype.

    Empty or None keys take their defaults: series_key = dicom.series_uid, else the image id; study_key =
    dicom.study_uid, else the series key. name: what the user calls the image (a file name, a UID), at most
    1024 characters; empty for none.
    """

    pixels: np.ndarray = field(compare=False)
    dicom: DicomRef | None = None
    series_key: str | None = None
    study_key: str | None = None
    slice_index: int = 0
    name: str = ""


@dataclass(frozen=True)
class ImageRecord:
    """A registered image without its pixels (`PoolStore.load_pixels` reads those). dtype: `dtype.str`."""

    image_id: str
    pool: str
    height: int
    width: int
    channels: int
    series_key: str
    study_key: str
    slice_index: int
    dicom: DicomRef | None
    created_at: float
    dtype: str
    name: str = ""


@dataclass(frozen=True)
class PackedMask:
    """A binary (height, width) mask as bits: `bits` is uint8 (height, ceil(width / 8)), `np.packbits` of each
    row (about height * width / 8 bytes)."""

    width: int
    bits: np.ndarray = field(compare=False)

    @classmethod
    def of(cls, mask: np.ndarray) -> PackedMask:
        """Packs a 2-D mask; nonzero is foreground."""
        foreground = np.asarray(mask) != 0
        if foreground.ndim != 2:
            raise ValueError(f"a mask to pack must be 2-D (height, width); got shape {foreground.shape}")
        return cls(int(foreground.shape[1]), np.packbits(foreground, axis=1))

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.bits.shape[0]), self.width

    def unpack(self) -> np.ndarray:
        """bool (height, width)."""
        return np.unpackbits(self.bits, axis=1, count=self.width).astype(bool)


@dataclass(frozen=True)
class ScoreRow:
    """One model version's image-level uncertainty scores of one image, as the uncertainty module made them.

    descriptor: (D,) encoder embedding for similarity search, or None. scored_at None on input means "now" by
    the store's clock; rows read back always carry a time. mask: the version's predicted foreground at the
    scoring resolution, or None; `put_scores` keeps it (the last MASK_VERSIONS per image and model name, read
    back by `version_masks`), `score_rows` does not return it.
    """

    image_id: str
    model_name: str
    model_version: int
    entropy: float
    mutual_information: float
    variance: float
    confidence: float
    boundary_length: float
    components: int
    foreground_fraction: float
    descriptor: np.ndarray | None = field(default=None, compare=False)
    scored_at: float | None = None
    mask: PackedMask | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Label:
    """One version of an image's label. mask: (H, W) uint8, 0 background, class index otherwise.

    version counts 1, 2, 3, ... per image over both sources. model_version names the model that produced a
    pseudo label (None for human labels).
    """

    label_id: str
    image_id: str
    version: int
    source: LabelSource
    annotator: str
    mask: np.ndarray = field(compare=False)
    seconds_spent: float
    created_at: float
    model_version: int | None = None


@dataclass(frozen=True)
class Lease:
    """`image_id` is handed to `annotator` and to no one else until `expires_at` (epoch seconds)."""

    image_id: str
    annotator: str
    expires_at: float


@dataclass(frozen=True)
class GroupLease:
    """Every image of one series or study (`key`) that `acquire_group_leases` leased, in slice order."""

    key: str
    leases: tuple[Lease, ...]


@dataclass(frozen=True)
class PoolCounts:
    """Image counts of one pool. labelled_pseudo counts only images no human has labelled, so
    labelled_human + labelled_pseudo is the number of labelled images. Fresh/stale are for one model."""

    images: int
    series: int
    labelled_human: int
    labelled_pseudo: int
    scored_fresh: int
    scored_stale: int
    leased: int


class PoolStore(abc.ABC):
    """Images, scores, labels and leases of named pools. Thread-safe; every method takes the pool name.

    Pool names are 1-128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit.
    A pool exists once an image is registered in it; reading an empty or unknown pool gives empty results.
    """

    @abc.abstractmethod
    def register_images(self, pool: str, images: Sequence[NewImage]) -> list[tuple[str, bool]]:
        """Add images, idempotently, in one transaction. Returns (image_id, created) in input order;
        created is False for an image already in the pool (same content), whose stored metadata is kept."""

    @abc.abstractmethod
    def get_image(self, pool: str, image_id: str) -> ImageRecord:
        """The image's record. Raises NotFound."""

    @abc.abstractmethod
    def load_pixels(self, pool: str, image_id: str) -> np.ndarray:
        """The pixels exactly as registered: (H, W) or (H, W, C), same dtype. Raises NotFound."""

    @abc.abstractmethod
    def list_images(self, pool: str) -> list[ImageRecord]:
        """All images of the pool, oldest first (ties by id)."""

    @abc.abstractmethod
    def needs_scoring(self, pool: str, model_name: str, model_version: int, force: bool = False) -> list[str]:
        """Ids with no score for `model_name` or a score from another version (stale); every id when force."""

    @abc.abstractmethod
    def put_scores(self, pool: str, rows: Sequence[ScoreRow]) -> None:
        """Upsert: each row replaces the image's current score for its model name. A row's mask replaces that
        model version's mask of the image, and masks beyond the newest MASK_VERSIONS versions of the image and
        model name are dropped. Raises NotFound for an unregistered image and InvalidInput for a non-finite
        number; nothing is written then."""

    @abc.abstractmethod
    def version_masks(self, pool: str, model_name: str) -> dict[str, dict[int, PackedMask]]:
        """The kept masks of `model_name`, in one read: image id → {model version: mask}, newest version first
        (at most MASK_VERSIONS each); images without a mask are absent."""

    @abc.abstractmethod
    def claim_scoring(
        self, pool: str, model_name: str, model_version: int, limit: int, lease_seconds: float, worker: str
    ) -> list[str]:
        """Claim for `worker`, for `lease_seconds`, up to `limit` ids that need scoring for `model_name` at
        exactly `model_version` (as `needs_scoring` without force) and hold no live claim of another worker
        for that model version; oldest images first. Claims `worker` already holds on such ids are extended
        and returned again. Concurrent callers, in threads, processes or replicas sharing the database,
        never receive the same id while its claim lives; a claim that expires (its worker died, or took
        longer than the lease) can be taken by anyone. Claims do not stop `put_scores`: a scored image simply
        stops being claimable. Raises InvalidInput for a negative limit, a non-positive lease or an empty
        worker name."""

    @abc.abstractmethod
    def score_rows(self, pool: str, model_name: str, model_version: int) -> list[ScoreRow]:
        """The fresh scores: those of `model_name` made by exactly `model_version`, ordered by image id."""

    @abc.abstractmethod
    def submit_label(
        self,
        pool: str,
        image_id: str,
        mask: np.ndarray,
        *,
        annotator: str,
        source: LabelSource,
        seconds_spent: float,
        idempotency_key: str | None = None,
        model_version: int | None = None,
    ) -> Label:
        """Store the image's next label version, durably before returning. mask: (H, W) at the image's size,
        bool or integer with values 0-255 (stored as uint8). Pseudo labels need model_version. A human label
        releases the image's lease. The same idempotency_key with the same image, source, annotator and mask
        returns the first Label; with anything else it raises Conflict."""

    @abc.abstractmethod
    def latest_labels(self, pool: str, sources: set[str]) -> Iterator[Label]:
        """Per image, its newest label among `sources`, ordered by image id. Human labels win: no pseudo
        label is returned for an image a human has labelled."""

    @abc.abstractmethod
    def label_history(self, pool: str, image_id: str) -> list[Label]:
        """Every label version of the image, oldest first. Raises NotFound for an unregistered image."""

    @abc.abstractmethod
    def labelled_ids(self, pool: str, source: LabelSource | None = None) -> set[str]:
        """Ids `latest_labels` would return for `{source}` (both sources when None)."""

    @abc.abstractmethod
    def acquire_leases(
        self, pool: str, ranked_image_ids: Sequence[str], annotator: str, k: int, seconds: float
    ) -> list[Lease]:
        """Atomically lease to `annotator` the first k ids, in ranked order, that no human has labelled and
        that are not leased to someone else; leases `annotator` already holds are extended. Concurrent callers
        never receive the same image. Raises NotFound if a ranked id is not in the pool."""

    @abc.abstractmethod
    def acquire_group_leases(
        self, pool: str, ranked_keys: Sequence[str], annotator: str, k: int, seconds: float, *, level: GroupLevel
    ) -> list[GroupLease]:
        """Atomically lease to `annotator` whole series (level "series": images sharing a series_key) or whole
        studies ("study": a study_key): the first k keys, in ranked order, whose images include one no human
        has labelled and none leased to someone else. Every image of such a group that no human has labelled
        is leased, in slice order (slice_index, then id); leases `annotator` already holds are extended.
        Concurrent callers (threads, processes, replicas) never receive images of the same group, and never
        an image another caller leased one at a time. A key no image carries is skipped. Raises InvalidInput
        for an unknown level and as `acquire_leases` for the other arguments."""

    @abc.abstractmethod
    def active_leases(self, pool: str) -> list[Lease]:
        """Unexpired leases, soonest expiry first."""

    @abc.abstractmethod
    def release_lease(self, pool: str, image_id: str) -> None:
        """Drop the image's lease, if any."""

    @abc.abstractmethod
    def counts(self, pool: str, model_name: str, model_version: int) -> PoolCounts:
        """Counts of the pool, taken in one snapshot; fresh/stale scores are for `model_name`."""

    @abc.abstractmethod
    def pools(self) -> list[str]:
        """Names of the pools that hold at least one image, sorted."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the database; later calls raise StoreError. Closing twice is allowed."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
