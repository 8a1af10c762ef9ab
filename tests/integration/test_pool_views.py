"""The RPCs a viewer or editor needs, over real gRPC: ListPools, GetPoolImage, ReleaseLease, WhoAmI, and the
annotation time that ExportLabels now returns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ceal.client import Client, InvalidArgument, NotFound, PermissionDenied, Unauthenticated, pool_image
from tests.support.models import synth_dataset
from tests.support.server import in_process

POOL = "views"


def test_pool_image_returns_pixels_label_and_lease(address: str) -> None:
    images = synth_dataset(4, seed=3).images
    with Client(address) as client:
        ids = [i for i, _ in client.register_images(list(images), pool=POOL)]
        client.score_pool(pool=POOL, samples=4)
        ql = client.query_list(pool=POOL, k=2, annotator="ann")
        leased = ql.items[0].image_id
        before = client.pool_image(leased, pool=POOL)
        mask = np.zeros(images.shape[1:3], np.uint8)
        mask[5:9, 10:20] = 1
        client.submit_label(leased, mask, annotator="ann", pool=POOL, seconds_spent=12.5)
        after = client.pool_image(leased, pool=POOL)
        pools = client.list_pools()
        exported = {r.image_id: r for r in client.export_labels(pool=POOL, include_images=False)}
    assert np.array_equal(before.image, images[ids.index(leased)]) and before.image.dtype == images.dtype
    assert before.label is None and before.label_version == 0 and before.label_source == ""
    assert before.lease_annotator == "ann" and before.lease_expires_at is not None
    assert after.label is not None and np.array_equal(after.label, mask)
    assert (after.label_version, after.label_source, after.label_annotator) == (1, "human", "ann")
    assert after.lease_annotator == ""  # a human label releases the lease
    assert POOL in pools and pools == sorted(pools)
    assert exported[leased].seconds_spent == pytest.approx(12.5) and exported[leased].created_at is not None


def test_pool_image_names_what_is_wrong(address: str) -> None:
    with Client(address) as client:
        [(image_id, _)] = client.register_images(
            [pool_image(synth_dataset(1, seed=4).images[0], name="a/b.png")], pool=POOL
        )
        assert client.pool_image(image_id, pool=POOL).name == "a/b.png"
        with pytest.raises(NotFound):
            client.pool_image("0" * 16, pool=POOL)
        with pytest.raises(InvalidArgument, match="image_id"):
            client.pool_image("", pool=POOL)


def test_release_lease_frees_only_the_annotators_own_lease(address: str) -> None:
    with Client(address) as client:
        client.register_images(list(synth_dataset(3, seed=6).images), pool=POOL)
        client.score_pool(pool=POOL, samples=4)
        mine = client.query_list(pool=POOL, k=1, annotator="a").items[0].image_id
        assert client.release_lease(mine, annotator="b", pool=POOL) is False  # not b's to give back
        assert client.pool_image(mine, pool=POOL).lease_annotator == "a"
        assert client.release_lease(mine, annotator="a", pool=POOL) is True
        assert client.pool_image(mine, pool=POOL).lease_annotator == ""
        assert client.release_lease(mine, annotator="a", pool=POOL) is False
        # released, it is handed out again: to someone else now
        assert mine in [i.image_id for i in client.query_list(pool=POOL, k=3, annotator="b").items]
        with pytest.raises(InvalidArgument, match="annotator"):
            client.release_lease(mine, annotator="", pool=POOL)


def test_who_am_i_without_tokens_says_authentication_is_off(address: str) -> None:
    with Client(address) as client:
        who = client.who_am_i()
    assert (who.name, who.role, who.authentication) == ("anonymous", "admin", False)


def test_who_am_i_and_the_roles_of_the_new_methods(models_dir: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"vic": {"token": "v", "role": "viewer"}, "ada": {"token": "a", "role": "annotator"}}))
    with in_process(models_dir, tmp_path / "state", tokens=tokens) as running:
        address = f"127.0.0.1:{running.port}"
        with Client(address, token="v") as viewer, Client(address, token="a") as annotator:
            assert (viewer.who_am_i().name, viewer.who_am_i().role) == ("vic", "viewer")
            who = annotator.who_am_i()
            assert (who.name, who.role, who.authentication) == ("ada", "annotator", True)
            with pytest.raises(PermissionDenied, match="annotator role"):
                viewer.list_pools()
            with pytest.raises(PermissionDenied):
                viewer.release_lease("x", annotator="vic")
            assert annotator.list_pools() == []
        with Client(address, token="nope") as stranger, pytest.raises(Unauthenticated):
            stranger.who_am_i()
