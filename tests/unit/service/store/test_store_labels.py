"""Contract tests for labels, run against every backend the `store` fixture offers."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ceal.service.store import Conflict, InvalidInput, Label, LabelSource, NewImage, NotFound, PoolStore

Pixels = Callable[..., np.ndarray]
_pool_names = (f"prop{i}" for i in itertools.count())


def _mask(seed: int, shape: tuple[int, int] = (6, 5)) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) > 0.5).astype(np.uint8)


SOURCES: list[LabelSource] = ["human", "pseudo"]


def _human(store: PoolStore, pool: str, image_id: str, mask: np.ndarray, key: str | None = None) -> Label:
    return store.submit_label(
        pool, image_id, mask, annotator="ann", source="human", seconds_spent=5.0, idempotency_key=key
    )


def _pseudo(store: PoolStore, pool: str, image_id: str, mask: np.ndarray) -> Label:
    return store.submit_label(
        pool, image_id, mask, annotator="model", source="pseudo", seconds_spent=0.0, model_version=1
    )


def _one_image(store: PoolStore, pixels: Pixels, pool: str = "p") -> str:
    ((image_id, _),) = store.register_images(pool, [NewImage(pixels(0))])
    return image_id


class TestLabels:
    def test_versions_count_up_across_sources(self, store: PoolStore, pixels: Pixels) -> None:
        image_id = _one_image(store, pixels)
        first = store.submit_label(
            "p", image_id, _mask(1), annotator="model", source="pseudo", seconds_spent=0, model_version=3
        )
        second = store.submit_label("p", image_id, _mask(2), annotator="ann", source="human", seconds_spent=41.5)
        third = store.submit_label("p", image_id, _mask(3), annotator="ann", source="human", seconds_spent=12)
        assert [first.version, second.version, third.version] == [1, 2, 3]
        assert len({first.label_id, second.label_id, third.label_id}) == 3
        history = store.label_history("p", image_id)
        assert history == [first, second, third]
        assert history[0].model_version == 3 and history[1].model_version is None
        np.testing.assert_array_equal(history[2].mask, _mask(3))
        assert history[1].seconds_spent == 41.5
        assert store.label_history("other", _one_image(store, pixels, "other")) == []  # labels are per pool
        with pytest.raises(NotFound):
            store.label_history("p", "0" * 32)

    def test_masks_are_stored_as_uint8(self, store: PoolStore, pixels: Pixels) -> None:
        image_id = _one_image(store, pixels)
        as_bool = store.submit_label(
            "p", image_id, _mask(1).astype(bool), annotator="a", source="human", seconds_spent=1
        )
        as_int = store.submit_label(
            "p", image_id, _mask(2).astype(np.int64) * 255, annotator="a", source="human", seconds_spent=1
        )
        for label, sent in ((as_bool, _mask(1)), (as_int, _mask(2) * 255)):
            stored = store.label_history("p", image_id)[label.version - 1].mask
            assert stored.dtype == np.uint8
            np.testing.assert_array_equal(stored, sent)

    @pytest.mark.parametrize(
        ("mask", "message"),
        [
            (
                np.zeros((5, 6), np.uint8),
                r"mask shape \(5, 6\) does not match the image's \(H, W\) = \(6, 5\)",
            ),
            (np.zeros((6, 5, 1), np.uint8), r"\(6, 5, 1\).*\(6, 5\)"),
            (np.zeros((6, 5), np.float32), "dtype float32 is not accepted"),
            (np.full((6, 5), 256, np.int32), "0-255"),
            (np.full((6, 5), -1, np.int8), "0-255"),
        ],
        ids=["transposed", "3d", "float", "too-big", "negative"],
    )
    def test_bad_masks_say_what_to_send(self, store: PoolStore, pixels: Pixels, mask: np.ndarray, message: str) -> None:
        image_id = _one_image(store, pixels)
        with pytest.raises(InvalidInput, match=message):
            store.submit_label("p", image_id, mask, annotator="a", source="human", seconds_spent=1)
        assert store.label_history("p", image_id) == []

    def test_bad_label_arguments(self, store: PoolStore, pixels: Pixels) -> None:
        image_id = _one_image(store, pixels)
        mask = _mask(1)
        with pytest.raises(InvalidInput, match="model_version"):
            store.submit_label("p", image_id, mask, annotator="m", source="pseudo", seconds_spent=0)
        with pytest.raises(InvalidInput, match="'human' or 'pseudo'"):
            store.submit_label("p", image_id, mask, annotator="a", source="robot", seconds_spent=1)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="annotator"):
            store.submit_label("p", image_id, mask, annotator="", source="human", seconds_spent=1)
        with pytest.raises(InvalidInput, match="seconds_spent"):
            store.submit_label("p", image_id, mask, annotator="a", source="human", seconds_spent=float("nan"))
        with pytest.raises(NotFound):
            store.submit_label("p", "0" * 32, mask, annotator="a", source="human", seconds_spent=1)

    def test_idempotency_key_returns_the_first_label(self, store: PoolStore, pixels: Pixels) -> None:
        image_id = _one_image(store, pixels)
        first = _human(store, "p", image_id, _mask(1), "req-1")
        again = _human(store, "p", image_id, _mask(1).astype(bool), "req-1")
        assert again == first
        np.testing.assert_array_equal(again.mask, first.mask)
        assert len(store.label_history("p", image_id)) == 1
        with pytest.raises(Conflict, match="new key") as raised:
            _human(store, "p", image_id, _mask(2), "req-1")
        assert "req-1" in str(raised.value)
        other = _one_image(store, lambda seed: pixels(seed + 99))
        with pytest.raises(Conflict):
            _human(store, "p", other, _mask(1), "req-1")
        # Keys are per pool: the same key elsewhere is a new submission.
        elsewhere = _one_image(store, pixels, "q")
        assert _human(store, "q", elsewhere, _mask(1), "req-1").version == 1
        assert len(store.label_history("p", image_id)) == 1

    def test_latest_labels_human_wins_and_newest_version(self, store: PoolStore, pixels: Pixels) -> None:
        ids = [image_id for image_id, _ in store.register_images("p", [NewImage(pixels(i)) for i in range(4)])]
        a, b, c, _unlabelled = ids
        _pseudo(store, "p", a, _mask(1))
        a_human = _human(store, "p", a, _mask(2))
        _pseudo(store, "p", a, _mask(3))  # newer, but a human has labelled a
        _pseudo(store, "p", b, _mask(4))
        b_pseudo = _pseudo(store, "p", b, _mask(5))
        c_first = _human(store, "p", c, _mask(6))
        c_human = _human(store, "p", c, _mask(7))

        both = {label.image_id: label for label in store.latest_labels("p", {"human", "pseudo"})}
        assert both == {a: a_human, b: b_pseudo, c: c_human}
        assert c_first not in both.values()
        assert {label.image_id: label for label in store.latest_labels("p", {"human"})} == {
            a: a_human,
            c: c_human,
        }
        assert [label.label_id for label in store.latest_labels("p", {"pseudo"})] == [b_pseudo.label_id]
        assert store.labelled_ids("p", "human") == {a, c}
        assert store.labelled_ids("p", "pseudo") == {b}
        assert store.labelled_ids("p") == {a, b, c}
        counts = store.counts("p", "unet", 1)
        assert (counts.labelled_human, counts.labelled_pseudo) == (2, 1)
        with pytest.raises(InvalidInput, match="subset of human, pseudo"):
            store.latest_labels("p", set())
        with pytest.raises(InvalidInput):
            store.latest_labels("p", {"human", "gold"})

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(SOURCES)), max_size=12))
    def test_latest_labels_agree_with_history(
        self, store: PoolStore, pixels: Pixels, submissions: list[tuple[int, LabelSource]]
    ) -> None:
        pool = next(_pool_names)
        ids = [image_id for image_id, _ in store.register_images(pool, [NewImage(pixels(i)) for i in range(4)])]
        for n, (index, source) in enumerate(submissions):
            (_human if source == "human" else _pseudo)(store, pool, ids[index], _mask(n))
        latest = {label.image_id: label for label in store.latest_labels(pool, {"human", "pseudo"})}
        for image_id in ids:
            history = store.label_history(pool, image_id)
            assert [label.version for label in history] == list(range(1, len(history) + 1))
            humans = [label for label in history if label.source == "human"]
            expected = (humans or history)[-1] if history else None
            assert latest.get(image_id) == expected
        assert store.labelled_ids(pool) == set(latest)
        human_ids, pseudo_ids = store.labelled_ids(pool, "human"), store.labelled_ids(pool, "pseudo")
        assert human_ids.isdisjoint(pseudo_ids) and human_ids | pseudo_ids == set(latest)
        counts = store.counts(pool, "unet", 1)
        assert (counts.labelled_human, counts.labelled_pseudo) == (len(human_ids), len(pseudo_ids))


def test_concurrent_labels_of_one_image_get_every_version_once(store: PoolStore, pixels: Pixels) -> None:
    """Annotators racing on one image (on Postgres, several replicas): versions 1..n, no gap, no error."""
    import threading

    image_id = _one_image(store, pixels)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def submit(n: int) -> None:
        try:
            start.wait()
            for i in range(4):
                _human(store, "p", image_id, _mask(n * 10 + i))
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [label.version for label in store.label_history("p", image_id)] == list(range(1, 25))
