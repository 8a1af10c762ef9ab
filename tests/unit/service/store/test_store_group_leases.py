"""Contract tests for series- and study-level leases (`acquire_group_leases`), on every backend.

The promise: a series (or study) goes to one annotator whole — every slice no human has labelled is leased
with it — and never to two annotators at once, however many ask together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from ceal.service.store import GroupLease, InvalidInput, Lease, NewImage, PoolStore

Pixels = Callable[..., np.ndarray]
Advance = Callable[[float], None]
START = 1_700_000_000.0  # the fake clock's start (conftest)


def _series(store: PoolStore, pixels: Pixels, n_series: int, slices: int, studies: int = 0) -> dict[str, list[str]]:
    """Registers n_series series of `slices` slices (study i % studies when studies > 0); ids by series key,
    in slice order."""
    images = [
        NewImage(
            pixels(s * 100 + z),
            series_key=f"S{s}",
            study_key=f"T{s % studies}" if studies else None,
            slice_index=z,
        )
        for s in range(n_series)
        for z in reversed(range(slices))  # registered out of order: leases still come in slice order
    ]
    ids = [image_id for image_id, _ in store.register_images("p", images)]
    out: dict[str, list[str]] = {}
    for image, image_id in zip(images, ids, strict=True):
        out.setdefault(str(image.series_key), []).append(image_id)
    return {key: list(reversed(members)) for key, members in out.items()}


def _human_label(store: PoolStore, image_id: str) -> None:
    store.submit_label("p", image_id, np.zeros((6, 5), np.uint8), annotator="x", source="human", seconds_spent=1)


class TestGroupLeases:
    def test_every_slice_of_a_series_goes_with_it(self, store: PoolStore, pixels: Pixels) -> None:
        series = _series(store, pixels, 3, 6)
        got = store.acquire_group_leases("p", ["S1", "S0", "S2"], "rad-a", 1, 60, level="series")
        assert got == [GroupLease("S1", tuple(Lease(i, "rad-a", START + 60) for i in series["S1"]))]
        second = store.acquire_group_leases("p", ["S1", "S0", "S2"], "rad-b", 1, 60, level="series")
        assert [g.key for g in second] == ["S0"] and [x.image_id for x in second[0].leases] == series["S0"]
        assert store.counts("p", "unet", 1).leased == 12  # six slices each, not one
        third = store.acquire_group_leases("p", ["S1", "S0", "S2"], "rad-c", 5, 60, level="series")
        assert [g.key for g in third] == ["S2"]
        assert store.acquire_group_leases("p", ["S1", "S0", "S2"], "rad-d", 5, 60, level="series") == []

    def test_a_series_with_one_slice_leased_elsewhere_is_not_handed_out(
        self, store: PoolStore, pixels: Pixels, advance: Advance
    ) -> None:
        series = _series(store, pixels, 2, 4)
        store.acquire_leases("p", [series["S0"][2]], "rad-a", 1, 60)  # one slice, leased on its own
        got = store.acquire_group_leases("p", ["S0", "S1"], "rad-b", 2, 60, level="series")
        assert [g.key for g in got] == ["S1"]
        # rad-a's own one-slice lease does not block rad-a: the series is extended to all its slices
        mine = store.acquire_group_leases("p", ["S0"], "rad-a", 1, 60, level="series")
        assert [x.image_id for x in mine[0].leases] == series["S0"]
        advance(61)  # every lease ran out
        again = store.acquire_group_leases("p", ["S0", "S1"], "rad-c", 2, 60, level="series")
        assert [g.key for g in again] == ["S0", "S1"]

    def test_human_labelled_slices_stay_out_and_a_finished_series_is_skipped(
        self, store: PoolStore, pixels: Pixels
    ) -> None:
        series = _series(store, pixels, 2, 3)
        _human_label(store, series["S0"][1])
        for image_id in series["S1"]:
            _human_label(store, image_id)
        got = store.acquire_group_leases("p", ["S1", "S0", "nope"], "rad-a", 2, 60, level="series")
        assert [g.key for g in got] == ["S0"]
        assert [x.image_id for x in got[0].leases] == [series["S0"][0], series["S0"][2]]
        # image-level leasing now sees the series' slices as taken
        assert store.acquire_leases("p", series["S0"], "rad-b", 3, 60) == []

    def test_study_level_leases_every_series_of_the_study(self, store: PoolStore, pixels: Pixels) -> None:
        series = _series(store, pixels, 4, 2, studies=2)  # T0 = S0 + S2, T1 = S1 + S3
        got = store.acquire_group_leases("p", ["T1", "T0"], "rad-a", 1, 60, level="study")
        assert [g.key for g in got] == ["T1"]
        assert {x.image_id for x in got[0].leases} == set(series["S1"] + series["S3"])
        assert store.acquire_group_leases("p", ["S1", "S0"], "rad-b", 2, 60, level="series")[0].key == "S0"

    def test_bad_requests(self, store: PoolStore, pixels: Pixels) -> None:
        _series(store, pixels, 1, 2)
        with pytest.raises(InvalidInput, match="group level"):
            store.acquire_group_leases("p", ["S0"], "rad-a", 1, 60, level="ward")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="positive number of seconds"):
            store.acquire_group_leases("p", ["S0"], "rad-a", 1, 0, level="series")
        with pytest.raises(InvalidInput, match="annotator"):
            store.acquire_group_leases("p", ["S0"], "", 1, 60, level="series")
        assert store.acquire_group_leases("p", ["S0"], "rad-a", 0, 60, level="series") == []
        assert store.active_leases("p") == []

    @pytest.mark.parametrize("annotators", [2, 8])
    def test_concurrent_annotators_get_disjoint_whole_series(
        self, store: PoolStore, pixels: Pixels, annotators: int
    ) -> None:
        slices = 3
        series = _series(store, pixels, 2 * annotators + 2, slices)
        ranked = sorted(series)  # everyone ranks the same way: the worst case for contention
        start = threading.Barrier(annotators)
        taken: dict[str, list[GroupLease]] = {}
        errors: list[BaseException] = []
        # a one-slice leaser races them too: a series it touches must go to nobody else
        single = series[ranked[-1]][1]

        def work(name: str) -> None:
            try:
                start.wait()
                taken[name] = store.acquire_group_leases("p", ranked, name, 2, 600, level="series")
            except BaseException as exc:  # surfaced below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"rad-{i}",)) for i in range(annotators)]
        for thread in threads:
            thread.start()
        solo = store.acquire_leases("p", [single], "solo", 1, 600)
        for thread in threads:
            thread.join()
        assert errors == []
        keys = [g.key for got in taken.values() for g in got]
        assert len(keys) == len(set(keys))  # no series handed out twice
        assert all(len(got) == 2 for got in taken.values())  # a spare series for everyone who raced
        for got in taken.values():
            for g in got:
                assert [x.image_id for x in g.leases] == series[g.key]  # every slice, together
        holders: dict[str, set[str]] = {}
        for lease in store.active_leases("p"):
            key = next(k for k, members in series.items() if lease.image_id in members)
            holders.setdefault(key, set()).add(lease.annotator)
        assert all(len(names) == 1 for names in holders.values())  # one annotator per series, solo included
        if solo:
            assert ranked[-1] not in keys


def test_names_are_kept_beside_the_id(store: PoolStore, pixels: Pixels) -> None:
    first = store.register_images("p", [NewImage(pixels(1), name="scan_001.png"), NewImage(pixels(2))])
    again = store.register_images("p", [NewImage(pixels(1), name="renamed.png")])
    assert again == [(first[0][0], False)]
    records = {r.image_id: r for r in store.list_images("p")}
    assert records[first[0][0]].name == "scan_001.png"  # the first name stays
    assert records[first[1][0]].name == ""
    assert store.get_image("p", first[0][0]).name == "scan_001.png"
    with pytest.raises(InvalidInput, match="1024"):
        store.register_images("p", [NewImage(pixels(3), name="x" * 1025)])
