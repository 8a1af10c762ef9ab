"""Scale-out: three `ceal serve` replicas sharing one Postgres pool store and one models folder, reached by one
SDK client that balances over them with gRPC round_robin.

What this shows, in one session of the three replicas (starting them is the expensive part):
1. ScorePool called on all three at once scores every image exactly once for the model version: the replicas
   split the pool by claiming batches (`PoolStore.claim_scoring`, SELECT ... FOR NO KEY UPDATE SKIP LOCKED).
2. SIGKILL one replica mid-scoring: Predict calls balanced over the three keep succeeding (gRPC retries a call
   that failed with UNAVAILABLE before any response arrived on the next ready replica, so not even the calls in
   flight on the dead one fail), the killed replica's ScorePool stream ends UNAVAILABLE, and the survivors'
   streams finish the pool once the dead replica's claims expire.
3. Query leases hold across replicas: two annotators asking different replicas never get the same image.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from ceal.client import CealError, Client, ScoreProgress, Unavailable
from tests.support.models import synth_dataset
from tests.support.postgres import PostgresCluster
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POOL = "scale"
IMAGES = 60
SAMPLES = 20  # MC samples per image


@pytest.fixture
def replicas(models_dir: Path, postgres: PostgresCluster, tmp_path: Path) -> Iterator[tuple[str, list[ServerProcess]]]:
    """Three replicas on one new database, started at once (so they also race to migrate it)."""
    url = postgres.create_database("scale")

    def start(n: int) -> ServerProcess:
        # --state is given twice: ServerProcess names its port file after the first, argparse keeps the last.
        return ServerProcess(models_dir, url, tmp_path / f"replica{n}.log")

    with ThreadPoolExecutor(3) as pool:
        started = list(pool.map(start, range(3)))
    try:
        yield url, started
    finally:
        alive = [replica for replica in started if replica.proc.poll() is None]
        with ThreadPoolExecutor(3) as pool:  # SIGTERM: each drains and closes its connection pool
            list(pool.map(lambda replica: replica.terminate(timeout=30), alive))


def _score_counts(url: str) -> dict[str, int]:
    """image id -> how many times a score was stored for lesion v1 (every put_scores adds a history row)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT image_id, COUNT(*) FROM score_history WHERE pool = %s AND model_name = 'lesion' "
            "AND model_version = 1 GROUP BY image_id",
            (POOL,),
        ).fetchall()
    return {str(image_id): int(n) for image_id, n in rows}


def _claimed_by(url: str, pid: int) -> set[str]:
    """Ids the scoring claims of the replica with process id `pid` cover (workers are host:pid:random)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT image_id FROM scoring_claims WHERE pool = %s AND worker LIKE %s", (POOL, f"%:{pid}:%")
        ).fetchall()
    return {str(row[0]) for row in rows}


def _kill_holding_a_claim(url: str, server: ServerProcess, deadline: float) -> tuple[dict[str, int], set[str]]:
    """SIGKILL `server` at a moment it holds a claim on images not yet scored; returns (scores stored before the
    kill, the orphaned ids). Each try freezes it (SIGSTOP) before reading the tables, so what is read is what
    the kill leaves: on a loaded machine a replica can sit between batches, or not have claimed yet, at any one
    moment, and a plain kill then would orphan nothing."""
    pid = server.proc.pid
    while True:
        server.proc.send_signal(signal.SIGSTOP)
        scored = _score_counts(url)
        orphaned = _claimed_by(url, pid) - set(scored)
        if orphaned or time.monotonic() > deadline or len(scored) == IMAGES:
            server.kill()
            return scored, orphaned
        server.proc.send_signal(signal.SIGCONT)
        time.sleep(0.02)


def test_three_replicas_share_one_pool(replicas: tuple[str, list[ServerProcess]]) -> None:
    url, servers = replicas
    balanced = "ipv4:" + ",".join(server.address for server in servers)
    images = synth_dataset(IMAGES, seed=21).images
    with Client(balanced, timeout=60) as client:
        assert client.settings.target() == balanced  # passed through untouched: round_robin over all three
        ids = [image_id for image_id, _ in client.register_images(list(images), pool=POOL)]
    assert len(set(ids)) == IMAGES

    # 1 + 2: ScorePool on every replica at once; Predict through the balancer all along; kill replica 0.
    finals: dict[int, ScoreProgress | CealError] = {}
    predicted, failed = [0], [0]
    stop = threading.Event()

    def score_on(n: int) -> None:
        with Client(servers[n].address, timeout=120) as client:
            try:
                finals[n] = client.score_pool(pool=POOL, samples=SAMPLES, timeout=120)
            except CealError as error:
                finals[n] = error

    def predict_all_along() -> None:
        with Client(balanced, timeout=30) as client:
            n = 0
            while not stop.is_set():
                try:
                    client.predict(images[n % IMAGES], samples=4)
                    predicted[0] += 1
                except CealError:
                    failed[0] += 1
                n += 1
                stop.wait(0.02)  # a steady stream, not a flood that starves the scoring

    scorers = [threading.Thread(target=score_on, args=(n,)) for n in range(3)]
    predictor = threading.Thread(target=predict_all_along)
    predictor.start()
    for thread in scorers:
        thread.start()
    deadline = time.monotonic() + 60
    while len(_score_counts(url)) < IMAGES // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    scored_before_kill, orphaned = _kill_holding_a_claim(url, servers[0], deadline=time.monotonic() + 60)
    for thread in scorers:
        thread.join(timeout=120)
    stop.set()
    predictor.join(timeout=60)

    assert IMAGES // 4 <= len(scored_before_kill) < IMAGES, "the kill must land while the pool is being scored"
    assert orphaned, "replica 0 died holding no claim: nothing was left for the others to take over"
    for n in (1, 2):  # the survivors finish the whole pool, their own share and the dead replica's
        final = finals[n]
        assert isinstance(final, ScoreProgress), final
        assert (final.finished, final.done, final.total) == (True, IMAGES, IMAGES)
    first = finals[0]  # replica 0 was killed mid-pass: refused, or finished before it went
    assert isinstance(first, Unavailable) or (isinstance(first, ScoreProgress) and first.finished), first
    counts = _score_counts(url)
    assert set(counts) == set(ids)  # the orphaned claims included
    assert set(counts.values()) == {1}, "an image was scored twice for one model version"
    assert predicted[0] > 0 and failed[0] == 0, (predicted, failed)

    # 3: query leases across the surviving replicas.
    with Client(servers[1].address) as one, Client(servers[2].address) as two:
        assert one.pool_stats(pool=POOL).scored_fresh == IMAGES == two.pool_stats(pool=POOL).scored_fresh
        got: dict[str, list[str]] = {}

        def ask(client: Client, annotator: str) -> None:
            items = client.query_list(pool=POOL, strategy="entropy", k=5, annotator=annotator).items
            got[annotator] = [item.image_id for item in items]

        askers = [threading.Thread(target=ask, args=(c, a)) for c, a in ((one, "alice"), (two, "bob"))]
        for thread in askers:
            thread.start()
        for thread in askers:
            thread.join()
        assert not set(got["alice"]) & set(got["bob"])
        assert one.pool_stats(pool=POOL).leased == len(got["alice"]) + len(got["bob"])
        # Asked one after the other, on different replicas: a full list each, still nothing shared.
        carol = [item.image_id for item in two.query_list(pool=POOL, strategy="entropy", k=5, annotator="carol").items]
        dave = [item.image_id for item in one.query_list(pool=POOL, strategy="entropy", k=5, annotator="dave").items]
        assert len(carol) == len(dave) == 5
        taken = set(got["alice"]) | set(got["bob"])
        assert not (set(carol) & set(dave)) and not (set(carol) | set(dave)) & taken
