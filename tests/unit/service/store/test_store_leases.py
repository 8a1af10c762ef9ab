"""Contract tests for query leases, run against every backend the `store` fixture offers."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.store import InvalidInput, LabelSource, Lease, NewImage, NotFound, PoolStore

Pixels = Callable[..., np.ndarray]
Advance = Callable[[float], None]
START = 1_700_000_000.0  # the fake clock's start (conftest)


def _pool(store: PoolStore, pixels: Pixels, n: int) -> list[str]:
    return [image_id for image_id, _ in store.register_images("p", [NewImage(pixels(i)) for i in range(n)])]


def _label(store: PoolStore, image_id: str, source: LabelSource = "human") -> None:
    store.submit_label(
        "p",
        image_id,
        np.zeros((6, 5), np.uint8),
        annotator="x",
        source=source,
        seconds_spent=1,
        model_version=1,
    )


class TestLeases:
    def test_takes_the_first_k_free_in_ranked_order(self, store: PoolStore, pixels: Pixels) -> None:
        ids = _pool(store, pixels, 6)
        ranked = [ids[4], ids[0], ids[5], ids[1], ids[2], ids[3]]
        _label(store, ids[0])  # a human label takes it out of every list
        _label(store, ids[5], "pseudo")  # a pseudo label does not: a human may still correct it
        leases = store.acquire_leases("p", ranked, "alice", 3, 60)
        assert leases == [Lease(ranked[i], "alice", START + 60) for i in (0, 2, 3)]
        bob = store.acquire_leases("p", ranked, "bob", 3, 60)
        assert [lease.image_id for lease in bob] == [ids[2], ids[3]]  # only two are left
        assert {lease.image_id for lease in store.active_leases("p")} == {
            ids[4],
            ids[5],
            ids[1],
            ids[2],
            ids[3],
        }
        assert store.counts("p", "unet", 1).leased == 5
        assert store.acquire_leases("p", ranked, "carol", 2, 60) == []

    def test_same_annotator_extends_and_expiry_frees(self, store: PoolStore, pixels: Pixels, advance: Advance) -> None:
        ids = _pool(store, pixels, 3)
        store.acquire_leases("p", ids, "alice", 2, 100)
        advance(50)
        again = store.acquire_leases("p", ids, "alice", 2, 100)
        assert again == [Lease(ids[0], "alice", START + 150), Lease(ids[1], "alice", START + 150)]
        advance(99)
        assert [lease.image_id for lease in store.acquire_leases("p", ids, "bob", 2, 100)] == [ids[2]]
        advance(2)  # alice's leases ran out at START + 150
        assert [lease.annotator for lease in store.active_leases("p")] == ["bob"]
        assert [lease.image_id for lease in store.acquire_leases("p", ids, "bob", 3, 100)] == ids

    def test_human_label_and_release_free_the_image(self, store: PoolStore, pixels: Pixels) -> None:
        ids = _pool(store, pixels, 3)
        store.acquire_leases("p", ids, "alice", 3, 100)
        _label(store, ids[0], "pseudo")
        assert len(store.active_leases("p")) == 3  # a pseudo label leaves alice's lease alone
        _label(store, ids[0])
        store.release_lease("p", ids[1])
        store.release_lease("p", ids[1])  # releasing twice is harmless
        assert [lease.image_id for lease in store.active_leases("p")] == [ids[2]]
        assert [lease.image_id for lease in store.acquire_leases("p", ids, "bob", 3, 100)] == [ids[1]]

    def test_bad_requests(self, store: PoolStore, pixels: Pixels) -> None:
        ids = _pool(store, pixels, 2)
        with pytest.raises(NotFound, match="rank only registered images"):
            store.acquire_leases("p", [ids[0], "f" * 32], "alice", 1, 60)
        assert store.active_leases("p") == []  # nothing taken when the request fails
        with pytest.raises(InvalidInput, match="positive number of seconds"):
            store.acquire_leases("p", ids, "alice", 1, 0)
        with pytest.raises(InvalidInput, match="0 or more"):
            store.acquire_leases("p", ids, "alice", -1, 60)
        with pytest.raises(InvalidInput, match="annotator"):
            store.acquire_leases("p", ids, " ", 1, 60)
        assert store.acquire_leases("p", ids, "alice", 0, 60) == []
        assert store.acquire_leases("p", [ids[1], ids[1], ids[0]], "alice", 5, 60) == [
            Lease(ids[1], "alice", START + 60),
            Lease(ids[0], "alice", START + 60),
        ]

    def test_threads_never_share_an_image(self, store: PoolStore, pixels: Pixels) -> None:
        ids = _pool(store, pixels, 48)
        workers, per_call, calls = 8, 2, 3
        start = threading.Barrier(workers)
        taken: dict[str, list[str]] = {}
        errors: list[BaseException] = []

        def work(name: str) -> None:
            try:
                start.wait()
                for call in range(calls):  # a new annotator each call, so no call re-leases its own images
                    leases = store.acquire_leases("p", ids, f"{name}-{call}", per_call, 600)
                    taken.setdefault(name, []).extend(lease.image_id for lease in leases)
            except BaseException as exc:  # surfaced below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        everything = [image_id for got in taken.values() for image_id in got]
        assert len(everything) == workers * per_call * calls == len(set(everything))
        assert set(everything) == set(ids)
        assert len(store.active_leases("p")) == len(ids)
