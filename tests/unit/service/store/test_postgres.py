"""Postgres-only behaviour: durable commits, migrations under the advisory lock, open_store URLs, and the
SKIP LOCKED picks under heavy thread contention."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest

from ceal.service.store import NewImage, ScoreRow, StoreError, UnsupportedBackend, open_store
from ceal.service.store.migrations import LATEST_VERSION, MIGRATIONS
from ceal.service.store.postgres import PostgresPoolStore
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.postgres
Pixels = Callable[..., np.ndarray]


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_commits_are_synchronous_even_when_the_database_default_is_not(postgres: PostgresCluster) -> None:
    postgres_url = postgres.create_database()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        database = admin.info.dbname
        admin.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off'.encode())
    with psycopg.connect(postgres_url) as plain:  # what a connection without the store's setting gets
        assert plain.execute("SHOW synchronous_commit").fetchone() == ("off",)
    with PostgresPoolStore(postgres_url) as store, store._db.transaction() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("read committed",)


def test_replicas_opening_a_new_database_at_once_migrate_it_once(postgres_url: str) -> None:
    opened: list[PostgresPoolStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        try:
            start.wait()
            opened.append(PostgresPoolStore(postgres_url, max_connections=1))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in opened:
        store.close()
    assert errors == []
    assert [step.version for step in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    assert _versions(postgres_url) == list(range(1, LATEST_VERSION + 1))
    PostgresPoolStore(postgres_url).close()  # reopening applies nothing
    assert _versions(postgres_url) == list(range(1, LATEST_VERSION + 1))


def test_a_database_from_a_newer_ceal_is_refused(postgres_url: str) -> None:
    PostgresPoolStore(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s, 'from the future', 0)", (LATEST_VERSION + 1,))
    with pytest.raises(StoreError, match="upgrade ceal"):
        PostgresPoolStore(postgres_url)


def test_open_store_urls(postgres: PostgresCluster, postgres_url: str, pixels: Pixels) -> None:
    with open_store(postgres_url) as store:
        assert isinstance(store, PostgresPoolStore)
        store.register_images("p", [NewImage(pixels(1))])
        assert "127.0.0.1" in repr(store)
    with open_store(postgres_url.replace("postgresql://", "postgres://", 1)) as again:
        assert again.pools() == ["p"]
    closed_port = f"postgresql://ceal:secret-password@127.0.0.1:1/{postgres_url.rsplit('/', 1)[1]}"
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/.*check the server runs") as raised:
        open_store(closed_port)
    assert "secret-password" not in str(raised.value)
    with pytest.raises(StoreError, match="check the server runs"):
        open_store(postgres.url("no_such_database"))


def test_without_psycopg_a_url_is_an_unsupported_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ceal.service.store.postgres", None)  # import now raises ImportError
    with pytest.raises(UnsupportedBackend, match="psycopg") as raised:
        open_store("postgresql://ceal@127.0.0.1:1/ceal")
    assert isinstance(raised.value, NotImplementedError)


def test_a_closed_store_says_so(postgres_url: str) -> None:
    store = PostgresPoolStore(postgres_url)
    store.close()
    store.close()  # twice is allowed
    with pytest.raises(StoreError, match="closed"):
        store.pools()


def test_many_threads_never_get_the_same_image(postgres_url: str, pixels: Pixels) -> None:
    """One id per call from 16 threads: the picks' snapshots often miss a claim committed a moment before
    they lock the row, which only the TAKEN re-check catches (without it, ids are handed out twice)."""
    with PostgresPoolStore(postgres_url, max_connections=16) as store:
        images = [NewImage(pixels(i, (3, 3))) for i in range(240)]
        ids = [image_id for image_id, _ in store.register_images("p", images)]
        claimed: dict[str, list[str]] = {}  # one list per thread: no shared read-modify-write
        leased: dict[str, list[str]] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(16)

        def work(name: str) -> None:
            try:
                start.wait()
                mine_claimed, mine_leased = claimed.setdefault(name, []), leased.setdefault(name, [])
                while batch := store.claim_scoring("p", "unet", 1, 1, 600, name):
                    mine_claimed.extend(batch)
                    store.put_scores("p", [ScoreRow(i, "unet", 1, 0.5, 0.1, 0.01, 0.9, 9.0, 1, 0.2) for i in batch])
                for call in range(len(ids)):  # a new annotator each call, so no call extends its own lease
                    leases = store.acquire_leases("p", ids, f"{name}-{call}", 1, 600)
                    if not leases:
                        break
                    mine_leased.extend(lease.image_id for lease in leases)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for handed_out in (claimed, leased):
            counts = Counter(image_id for got in handed_out.values() for image_id in got)
            assert set(counts) == set(ids)
            assert max(counts.values()) == 1


def test_missing_binaries_name_the_install_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.support import postgres as support

    monkeypatch.setattr(support, "_SEARCH", (str(tmp_path / "none"), str(tmp_path / "bin")))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(support.PostgresUnavailableError, match="scripts/install-system-deps"):
        support.find_bindir()
