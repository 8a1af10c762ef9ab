"""Contract tests for scoring claims, run against every backend the `store` fixture offers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ceal.service.store import InvalidInput, NewImage, PoolStore, ScoreRow
from tests.unit.service.store.claim_worker import score_claims

Pixels = Callable[..., np.ndarray]
Score = Callable[..., ScoreRow]
Advance = Callable[[float], None]
WORKER = Path(__file__).with_name("claim_worker.py")


def _pool(store: PoolStore, pixels: Pixels, n: int) -> list[str]:
    """n images; their ids in claim order (oldest first; the fake clock stands still, so by id)."""
    ids = [image_id for image_id, _ in store.register_images("p", [NewImage(pixels(i)) for i in range(n)])]
    return sorted(ids)


class TestClaims:
    def test_oldest_first_and_another_worker_gets_the_next(self, store: PoolStore, pixels: Pixels) -> None:
        ids = _pool(store, pixels, 7)
        assert store.claim_scoring("p", "unet", 1, 3, 60, "a") == ids[:3]
        assert store.claim_scoring("p", "unet", 1, 3, 60, "b") == ids[3:6]
        assert store.claim_scoring("p", "unet", 1, 3, 60, "c") == ids[6:]
        assert store.claim_scoring("p", "unet", 1, 3, 60, "d") == []
        assert store.claim_scoring("p", "unet", 1, 0, 60, "a") == []

    def test_scored_images_are_not_claimable_and_claims_are_per_version(
        self, store: PoolStore, pixels: Pixels, score: Score
    ) -> None:
        ids = _pool(store, pixels, 4)
        store.put_scores("p", [score(ids[0], 1), score(ids[1], 2)])
        # ids[1] has a version-2 score: stale for version 1, so it needs (and gets) a version-1 claim.
        assert store.claim_scoring("p", "unet", 1, 10, 60, "a") == ids[1:]
        # a's version-1 claims do not block version 2 or another model.
        assert store.claim_scoring("p", "unet", 2, 10, 60, "b") == [ids[0], ids[2], ids[3]]
        assert store.claim_scoring("p", "other", 1, 10, 60, "c") == ids
        store.put_scores("p", [score(ids[2], 1)])  # claims never stop a store
        assert store.claim_scoring("p", "unet", 1, 10, 60, "a") == [ids[1], ids[3]]

    def test_own_claims_are_extended_and_expired_ones_are_free(
        self, store: PoolStore, pixels: Pixels, advance: Advance
    ) -> None:
        ids = _pool(store, pixels, 3)
        assert store.claim_scoring("p", "unet", 1, 2, 100, "a") == ids[:2]
        advance(60)
        assert store.claim_scoring("p", "unet", 1, 2, 100, "a") == ids[:2]  # again, now until +160
        advance(99)
        assert store.claim_scoring("p", "unet", 1, 5, 100, "b") == [ids[2]]  # a's still live
        advance(2)  # a died: its claims ran out at +160
        assert store.claim_scoring("p", "unet", 1, 5, 100, "b") == ids

    def test_bad_requests(self, store: PoolStore, pixels: Pixels) -> None:
        _pool(store, pixels, 2)
        with pytest.raises(InvalidInput, match="0 or more"):
            store.claim_scoring("p", "unet", 1, -1, 60, "a")
        with pytest.raises(InvalidInput, match="positive number of seconds"):
            store.claim_scoring("p", "unet", 1, 1, 0, "a")
        with pytest.raises(InvalidInput, match="worker"):
            store.claim_scoring("p", "unet", 1, 1, 60, " ")
        with pytest.raises(InvalidInput, match="letters, digits"):
            store.claim_scoring("../p", "unet", 1, 1, 60, "a")
        assert store.claim_scoring("empty", "unet", 1, 5, 60, "a") == []

    def test_threads_never_claim_the_same_image(self, store: PoolStore, pixels: Pixels) -> None:
        ids = _pool(store, pixels, 60)
        workers = 6
        start = threading.Barrier(workers)
        claimed: dict[str, list[str]] = {}
        errors: list[BaseException] = []

        def work(name: str) -> None:
            try:
                start.wait()
                claimed[name] = score_claims(store, name, 2)
            except BaseException as exc:  # surfaced below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        everything = [image_id for got in claimed.values() for image_id in got]
        assert sorted(everything) == ids  # each image claimed exactly once, by one thread
        assert store.needs_scoring("p", "unet", 1) == []

    def test_processes_never_claim_the_same_image(
        self, store: PoolStore, state: str, pixels: Pixels, tmp_path: Path
    ) -> None:
        ids = _pool(store, pixels, 90)
        go = tmp_path / "go"
        procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), state, str(go), f"proc{i}", "3"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        for proc in procs:  # start together: each has opened the store and waits for `go`
            assert proc.stdout is not None
            assert proc.stdout.readline() == "READY\n", proc.communicate()[1]
        go.touch()
        results = [proc.communicate(timeout=120) for proc in procs]
        for proc, (_, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err
        claimed = [json.loads(out) for out, _ in results]
        assert sorted(image_id for got in claimed for image_id in got) == ids
        assert store.needs_scoring("p", "unet", 1) == []
        assert len(store.score_rows("p", "unet", 1)) == len(ids)
