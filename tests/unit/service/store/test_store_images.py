"""Contract tests for images and scores, run against every backend the `store` fixture offers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.store import DicomRef, InvalidInput, NewImage, NotFound, PoolStore, ScoreRow, image_id_of

Pixels = Callable[..., np.ndarray]
Score = Callable[..., ScoreRow]
DICOM = DicomRef(study_uid="1.2.3.4", series_uid="1.2.3.4.5", sop_uid="1.2.3.4.5.6", frame=2)


def _register(store: PoolStore, pixels: Pixels, n: int, pool: str = "p") -> list[str]:
    return [image_id for image_id, _ in store.register_images(pool, [NewImage(pixels(i)) for i in range(n)])]


class TestImages:
    def test_register_is_idempotent_and_ids_are_content_hashes(self, store: PoolStore, pixels: Pixels) -> None:
        a, b = pixels(1), pixels(2)
        first = store.register_images("p", [NewImage(a), NewImage(b), NewImage(a.copy())])
        assert first == [(image_id_of(a), True), (image_id_of(b), True), (image_id_of(a), False)]
        again = store.register_images("p", [NewImage(b, series_key="other")])
        assert again == [(image_id_of(b), False)]
        assert store.get_image("p", image_id_of(b)).series_key == image_id_of(b)  # first metadata kept
        assert len(store.list_images("p")) == 2
        assert store.register_images("q", [NewImage(a)]) == [(image_id_of(a), True)]  # pools are separate
        assert store.pools() == ["p", "q"]

    @pytest.mark.parametrize(
        ("shape", "dtype"), [((6, 5), np.uint16), ((4, 3, 3), np.uint8), ((5, 5), np.float32), ((3, 4), bool)]
    )
    def test_pixels_come_back_exactly(
        self, store: PoolStore, pixels: Pixels, shape: tuple[int, ...], dtype: type
    ) -> None:
        original = pixels(7, shape, dtype)
        ((image_id, _),) = store.register_images("p", [NewImage(original)])
        back = store.load_pixels("p", image_id)
        assert back.dtype == original.dtype
        np.testing.assert_array_equal(back, original)
        record = store.get_image("p", image_id)
        channels = shape[2] if len(shape) == 3 else 1
        assert (record.height, record.width, record.channels) == (shape[0], shape[1], channels)
        assert record.dtype == np.dtype(dtype).str

    def test_keys_default_to_dicom_then_to_the_image(self, store: PoolStore, pixels: Pixels) -> None:
        plain, dicom, keyed = pixels(1), pixels(2), pixels(3)
        store.register_images(
            "p",
            [
                NewImage(plain),
                NewImage(dicom, dicom=DICOM, slice_index=4),
                NewImage(keyed, dicom=DICOM, series_key="s1", study_key="", slice_index=1),
            ],
        )
        plain_record = store.get_image("p", image_id_of(plain))
        assert plain_record.series_key == plain_record.study_key == image_id_of(plain)
        assert plain_record.dicom is None
        dicom_record = store.get_image("p", image_id_of(dicom))
        assert (dicom_record.series_key, dicom_record.study_key) == (DICOM.series_uid, DICOM.study_uid)
        assert dicom_record.dicom == DICOM
        assert dicom_record.slice_index == 4
        keyed_record = store.get_image("p", image_id_of(keyed))
        assert (keyed_record.series_key, keyed_record.study_key) == ("s1", DICOM.study_uid)

    def test_unknown_image_is_not_found(self, store: PoolStore) -> None:
        with pytest.raises(NotFound, match="register it first"):
            store.get_image("p", "0" * 32)
        with pytest.raises(NotFound):
            store.load_pixels("p", "0" * 32)
        assert store.list_images("nothing-here") == []

    @pytest.mark.parametrize(
        "bad",
        [np.zeros(5), np.zeros((0, 4)), np.zeros((2, 2, 2, 2)), np.array([["a"]]), [[1, 2], [3, 4]]],
        ids=["1d", "empty", "4d", "strings", "list"],
    )
    def test_malformed_pixels_are_refused_and_nothing_is_stored(
        self, store: PoolStore, pixels: Pixels, bad: object
    ) -> None:
        with pytest.raises(InvalidInput, match="pixels"):
            store.register_images("p", [NewImage(pixels(1)), NewImage(bad)])  # type: ignore[arg-type]
        assert store.list_images("p") == []

    @pytest.mark.parametrize("pool", ["", " p", "a b", "x" * 129, "../etc", "-p"])
    def test_bad_pool_names_say_what_is_allowed(self, store: PoolStore, pool: str) -> None:
        with pytest.raises(InvalidInput, match="letters, digits"):
            store.list_images(pool)


class TestScores:
    def test_fresh_stale_and_missing(self, store: PoolStore, pixels: Pixels, score: Score) -> None:
        a, b, c = _register(store, pixels, 3)
        assert sorted(store.needs_scoring("p", "unet", 1)) == sorted([a, b, c])
        store.put_scores("p", [score(a, 1), score(b, 1)])
        assert store.needs_scoring("p", "unet", 1) == [c]
        assert sorted(store.needs_scoring("p", "unet", 2)) == sorted([a, b, c])  # version 1 scores are stale
        assert sorted(store.needs_scoring("p", "unet", 1, force=True)) == sorted([a, b, c])
        assert sorted(store.needs_scoring("p", "other-model", 1)) == sorted([a, b, c])
        store.put_scores("p", [score(a, 2)])
        assert [row.image_id for row in store.score_rows("p", "unet", 2)] == [a]
        assert [row.image_id for row in store.score_rows("p", "unet", 1)] == [b]
        counts = store.counts("p", "unet", 2)
        assert (counts.scored_fresh, counts.scored_stale) == (1, 1)

    def test_upsert_keeps_one_current_row_per_model(
        self, store: PoolStore, pixels: Pixels, score: Score, advance: Callable[[float], None]
    ) -> None:
        (a,) = _register(store, pixels, 1)
        store.put_scores("p", [score(a, 1, entropy=0.5)])
        advance(10)
        store.put_scores("p", [score(a, 1, entropy=0.7), score(a, 1, model="other", entropy=0.1)])
        (row,) = store.score_rows("p", "unet", 1)
        assert row.entropy == pytest.approx(0.7)
        assert row.scored_at is not None
        assert [r.entropy for r in store.score_rows("p", "other", 1)] == [pytest.approx(0.1)]

    def test_rows_round_trip_with_descriptor(self, store: PoolStore, pixels: Pixels, score: Score) -> None:
        a, b = _register(store, pixels, 2)
        descriptor = np.linspace(-1, 1, 16, dtype=np.float32)
        sent = [
            score(a, 3, descriptor=descriptor, components=4, scored_at=123.5),
            score(b, 3, entropy=np.float32(0.125), components=np.int64(2)),
        ]
        store.put_scores("p", sent)
        got = {row.image_id: row for row in store.score_rows("p", "unet", 3)}
        assert got[a] == sent[0]  # descriptor is compared below (arrays are left out of ==)
        assert got[a].descriptor is not None
        np.testing.assert_array_equal(got[a].descriptor, descriptor)
        assert got[b].descriptor is None
        assert (got[b].entropy, got[b].components) == (0.125, 2)

    def test_bad_rows_write_nothing(self, store: PoolStore, pixels: Pixels, score: Score) -> None:
        (a,) = _register(store, pixels, 1)
        with pytest.raises(InvalidInput, match="entropy=nan"):
            store.put_scores("p", [score(a), score(a, entropy=float("nan"))])
        with pytest.raises(NotFound, match="register images before scoring"):
            store.put_scores("p", [score(a), score("f" * 32)])
        with pytest.raises(InvalidInput, match="1-D float"):
            store.put_scores("p", [score(a, descriptor=np.zeros((2, 2)))])
        assert store.score_rows("p", "unet", 1) == []

    def test_counts_images_and_series(self, store: PoolStore, pixels: Pixels) -> None:
        store.register_images("p", [NewImage(pixels(i), series_key=f"s{i % 2}", slice_index=i) for i in range(5)])
        counts = store.counts("p", "unet", 1)
        assert (counts.images, counts.series, counts.scored_fresh, counts.leased) == (5, 2, 0, 0)
