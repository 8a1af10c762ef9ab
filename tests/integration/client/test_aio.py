"""AsyncClient against a real server: the same results and the same exceptions as Client."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from ceal.client import AsyncClient, Client, InvalidArgument, NotFound, Unavailable
from tests.integration.client.recording_server import WIRE_ROUNDING_S, Recording, dead_address, recording_server
from tests.support.models import synth_dataset


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return synth_dataset(6, seed=4, height=40, width=52).images


def test_round_trip_matches_the_blocking_client(address: str, images: np.ndarray) -> None:
    async def session() -> tuple[list[str], np.ndarray, list[str], str, int, int]:
        async with AsyncClient(address) as client:
            models = [m.name for m in await client.list_models()]
            p = await client.predict(images[0], samples=4, seed=11)
            streamed = [q.request_id async for q in client.predict_many(list(images), samples=2)]
            registered = await client.register_images(list(images), pool="aio")
            progress = await client.score_pool(pool="aio", samples=2)
            ql = await client.query_list(pool="aio", strategy="entropy", k=2)
            mask = np.zeros(images[0].shape[:2], np.uint8)
            await client.submit_label(ql.items[0].image_id, mask, annotator="a", pool="aio")
            exported = [r.image_id async for r in client.export_labels(pool="aio", include_images=False)]
            stats = await client.pool_stats(pool="aio")
        assert p.probability is not None and len(registered) == 6
        assert exported == [ql.items[0].image_id]
        return models, p.probability, streamed, exported[0], progress.done, stats.labelled_human

    models, probability, streamed, _, scored, labelled = asyncio.run(session())
    assert models == ["lesion"]
    assert streamed == [str(i) for i in range(6)]
    assert (scored, labelled) == (6, 1)
    with Client(address) as client:
        same = client.predict(images[0], samples=4, seed=11).probability
    assert same is not None
    np.testing.assert_array_equal(probability, same)


def test_errors_map_like_the_blocking_client(address: str, images: np.ndarray) -> None:
    async def bad_samples() -> None:
        async with AsyncClient(address) as client:
            await client.predict(images[0], samples=10_000)

    async def unknown_model() -> None:
        async with AsyncClient(address) as client:
            await client.predict(images[0], model="nope")

    with pytest.raises(InvalidArgument, match="samples must be between") as info:
        asyncio.run(bad_samples())
    assert isinstance(info.value.__cause__, grpc.RpcError)
    assert info.value.__cause__.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(NotFound):
        asyncio.run(unknown_model())


def test_a_dead_port_is_unavailable() -> None:
    async def call() -> None:
        async with AsyncClient(dead_address(), timeout=30) as client:
            await client.list_models()

    with pytest.raises(Unavailable) as info:
        asyncio.run(call())
    assert isinstance(info.value.__cause__, grpc.RpcError)


def test_retries_deadline_and_progress_work_as_in_the_blocking_client(capsys: pytest.CaptureFixture[str]) -> None:
    servicer = Recording(unavailable=1)

    async def calls(address: str) -> list[str]:
        async with AsyncClient(address, timeout=6.0) as client:
            await client.list_models()
            return [p.request_id async for p in client.predict_many([np.zeros((2, 2), np.uint8)] * 3, progress=True)]

    with recording_server(servicer) as address:
        assert asyncio.run(calls(address)) == ["0", "1", "2"]
    assert servicer.attempts == 3  # ListModels twice (one retry), then the stream
    first = servicer.time_remaining[0]
    assert first is not None and 0 < first <= 6.0 + WIRE_ROUNDING_S
    assert "3/3" in capsys.readouterr().err
