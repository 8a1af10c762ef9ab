"""Every call the SDK makes, built once for `Client` and `AsyncClient`, and each method's signature with it.

A builder returns a `Call`: which stub method, the request (a message; an iterator of messages for the
bidirectional PredictStream), how to turn each reply into what the SDK returns, and the call's own deadline and
progress bar. The builders' arguments are the clients' methods' arguments: `ceal.client.methods` makes each
method of both clients from its builder, so a signature is written once, here, and the clients only send,
`Client` blocking and `AsyncClient` awaiting.
Failed calls become SDK exceptions in `translated()`, the one place both clients map errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import grpc
import numpy as np
from tqdm import tqdm

from ceal.client import requests
from ceal.client.channel import ChannelSettings
from ceal.client.codec import ImageLike, to_image
from ceal.client.errors import from_rpc_error
from ceal.client.requests import PoolImage
from ceal.client.results import (
    Identity,
    LabelRecord,
    ModelInfo,
    PoolImageView,
    PoolStats,
    Prediction,
    QueryList,
    ScoreProgress,
)
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import segmentation_pb2 as seg_pb

R = TypeVar("R")
Service = Literal["segmentation", "active_learning"]


def _count(_: Any, bar: tqdm) -> None:
    bar.update(1)


@dataclass(frozen=True)
class Call(Generic[R]):
    """One RPC, built but not sent.

    `reply` turns one response into the SDK's result (every response, for streams). For streams, `total` is
    the number of replies expected when known, and `advance` moves a progress bar for one reply. `timeout`:
    this call's deadline in seconds (None: the client's default); `progress`: show a bar on stderr.
    """

    service: Service
    method: str
    request: Any
    reply: Callable[[Any], R]
    stream: bool = False
    total: int | None = None
    desc: str = ""
    unit: str = "img"
    advance: Callable[[Any, tqdm], None] = _count
    timeout: float | None = None
    progress: bool = False

    def bar(self, enabled: bool) -> tqdm:
        """A progress bar on stderr for this stream (a disabled one when `enabled` is False)."""
        return tqdm(total=self.total, desc=self.desc, unit=self.unit, disable=not enabled)


@contextmanager
def translated() -> Iterator[None]:
    """Raise the SDK exception for a failed call, `from` the grpc.RpcError (grpc.aio's errors included)."""
    try:
        yield
    except grpc.RpcError as err:
        raise from_rpc_error(err) from err


def channel_parts(settings: ChannelSettings) -> tuple[str, grpc.ChannelCredentials | None, list[tuple[str, object]]]:
    """(target, credentials or None for plain text, options) for `grpc[.aio].{secure,insecure}_channel`."""
    return settings.target(), settings.credentials(), settings.options()


# Segmentation


def predict(image: ImageLike, *, timeout: float | None = None, **options: Any) -> Call[Prediction]:
    """Segment one image. Options: model, version, samples (T), maps, threshold, seed, adaptive_tolerance,
    adaptive_min_samples, return_samples, keep_largest_component, fill_holes (see `requests.predict_request`)."""
    req = requests.predict_request(image, **options)
    return Call("segmentation", "Predict", req, Prediction.from_proto, timeout=timeout)


def predict_many(
    images: Sequence[ImageLike], *, progress: bool = False, timeout: float | None = None, **options: Any
) -> Call[Prediction]:
    """Segment many images over one stream, in order; `progress` shows a bar on stderr. Request i carries
    request_id "i"."""
    reqs = (requests.predict_request(img, request_id=str(i), **options) for i, img in enumerate(images))
    return Call(
        "segmentation",
        "PredictStream",
        reqs,
        Prediction.from_proto,
        stream=True,
        total=len(images),
        desc="predict",
        timeout=timeout,
        progress=progress,
    )


def list_models(name: str = "") -> Call[list[ModelInfo]]:
    """The model versions on disk with their status and held-out Dice, and the ones refused on load."""
    return Call(
        "segmentation",
        "ListModels",
        seg_pb.ListModelsRequest(name=name),
        lambda reply: [ModelInfo.from_proto(m) for m in reply.models],
    )


def promote_model(version: int, *, name: str = "", reason: str = "") -> Call[tuple[int, int]]:
    """Admin: serve `version` now (overrides the gate); returns (served, previously served)."""
    req = seg_pb.PromoteModelRequest(name=name, version=version, reason=reason)
    return Call("segmentation", "PromoteModel", req, lambda r: (r.served_version, r.previous_version))


def rollback_model(version: int = 0, *, name: str = "", reason: str = "") -> Call[tuple[int, int]]:
    """Admin: withdraw the served version, serve `version` (0: the newest earlier promoted one)."""
    req = seg_pb.PromoteModelRequest(name=name, version=version, reason=reason)
    return Call("segmentation", "RollbackModel", req, lambda r: (r.served_version, r.previous_version))


# Active learning


def register_images(images: Sequence[PoolImage | ImageLike], *, pool: str = "") -> Call[list[tuple[str, bool]]]:
    """Add images (bare, or with metadata from `pool_image`) to a pool (idempotent). Returns (image_id,
    created) per image."""
    items = [requests.pool_image_message(i) for i in images]
    return Call(
        "active_learning",
        "RegisterImages",
        al_pb.RegisterImagesRequest(pool=pool, images=items),
        lambda reply: [(r.image_id, r.created) for r in reply.images],
    )


def _score_progress(msg: al_pb.ScorePoolProgress, bar: tqdm) -> None:
    bar.total = msg.total
    bar.n = msg.done
    bar.refresh()


def score_pool(
    *,
    pool: str = "",
    model: str = "",
    samples: int = 0,
    force: bool = False,
    adaptive_tolerance: float = 0.0,
    adaptive_min_samples: int = 0,
    progress: bool = False,
    timeout: float | None = None,
) -> Call[ScoreProgress]:
    """Score what is missing or stale; returns the final progress (the clients keep the stream's last).

    samples: T per image (0 = the server's default). adaptive_tolerance > 0 makes `samples` the maximum
    and stops an image once the standard error of its mean mutual information is at most this, in nats
    (e.g. 0.001); adaptive_min_samples: no stopping before this many (0 = the server's 8; else 4..samples).
    """
    req = al_pb.ScorePoolRequest(
        pool=pool,
        model_name=model,
        samples=samples,
        force=force,
        adaptive_tolerance=adaptive_tolerance,
        adaptive_min_samples=adaptive_min_samples,
    )
    return Call(
        "active_learning",
        "ScorePool",
        req,
        ScoreProgress.from_proto,
        stream=True,
        desc="score",
        advance=_score_progress,
        timeout=timeout,
        progress=progress,
    )


def query_list(
    *,
    strategy: str = "ceal",
    k: int = 10,
    pool: str = "",
    model: str = "",
    annotator: str = "",
    budget_seconds: float = 0.0,
    lease_seconds: int = 0,
    series: bool = False,
    study: bool = False,
    round: int = 0,
    seed: int = 0,
    max_pseudo_labels: int = 0,
) -> Call[QueryList]:
    """The items to label next, leased to `annotator`. series=True (or study=True): whole series (studies),
    most uncertain first, every slice leased together and listed in `slice_image_ids`."""
    req = requests.query_list_request(
        pool=pool,
        strategy=strategy,
        k=k,
        model=model,
        annotator=annotator,
        budget_seconds=budget_seconds,
        lease_seconds=lease_seconds,
        series=series,
        study=study,
        round_=round,
        seed=seed,
        max_pseudo_labels=max_pseudo_labels,
    )
    return Call("active_learning", "GetQueryList", req, QueryList.from_proto)


def submit_label(
    image_id: str,
    mask: np.ndarray,
    *,
    annotator: str,
    pool: str = "",
    source: str = "human",
    seconds_spent: float = 0.0,
    idempotency_key: str | None = None,
    model_version: int = 0,
) -> Call[tuple[str, int]]:
    """Store a label; returns (label_id, version). Durable once this returns.

    model_version: for pseudo-labels, the model version that drew the mask (0: the one served on arrival)."""
    req = requests.submit_label_request(
        image_id,
        mask,
        pool=pool,
        annotator=annotator,
        source=source,
        seconds_spent=seconds_spent,
        idempotency_key=idempotency_key,
        model_version=model_version,
    )
    return Call("active_learning", "SubmitLabel", req, lambda reply: (reply.label_id, reply.version))


def export_labels(
    *,
    pool: str = "",
    sources: Sequence[str] = ("human",),
    include_images: bool = True,
    timeout: float | None = None,
) -> Call[LabelRecord]:
    """The newest label of every labelled image from `sources`, with its image unless include_images=False."""
    req = requests.export_labels_request(pool=pool, sources=sources, include_images=include_images)
    return Call(
        "active_learning",
        "ExportLabels",
        req,
        LabelRecord.from_proto,
        stream=True,
        desc="export",
        unit="label",
        timeout=timeout,
    )


def find_similar(
    query: str | ImageLike, *, k: int = 10, pool: str = "", model: str = ""
) -> Call[list[tuple[str, float, int]]]:
    """(image_id, cosine similarity, 0) of the k most similar pool images (the third value, once a Hamming
    distance, is always 0: retrieval is exact)."""
    req = al_pb.FindSimilarRequest(pool=pool, k=k, model_name=model)
    if isinstance(query, str):
        req.image_id = query
    else:
        req.image.CopyFrom(to_image(query))
    return Call(
        "active_learning",
        "FindSimilar",
        req,
        lambda reply: [(r.image_id, r.similarity, r.hamming_distance) for r in reply.images],
    )


def pool_stats(*, pool: str = "", model: str = "") -> Call[PoolStats]:
    """The pool's counts for the served (or named) model, and that version's stop signal."""
    req = al_pb.GetPoolStatsRequest(pool=pool, model_name=model)
    return Call("active_learning", "GetPoolStats", req, PoolStats.from_proto)


def list_pools() -> Call[list[str]]:
    """Names of the pools that hold at least one image, sorted."""
    return Call("active_learning", "ListPools", al_pb.ListPoolsRequest(), lambda reply: list(reply.pools))


def pool_image(image_id: str, *, pool: str = "") -> Call[PoolImageView]:
    """A pool image's pixels as registered, its newest label and its lease."""
    req = al_pb.GetPoolImageRequest(pool=pool, image_id=image_id)
    return Call("active_learning", "GetPoolImage", req, PoolImageView.from_proto)


def release_lease(image_id: str, *, annotator: str, pool: str = "") -> Call[bool]:
    """Give back `annotator`'s lease on the image (skip it); False when they held none."""
    req = al_pb.ReleaseLeaseRequest(pool=pool, image_id=image_id, annotator=annotator)
    return Call("active_learning", "ReleaseLease", req, lambda reply: bool(reply.released))


def who_am_i() -> Call[Identity]:
    """The token's name and role as the server sees them (authentication False: no tokens checked)."""
    return Call("active_learning", "WhoAmI", al_pb.WhoAmIRequest(), Identity.from_proto)
