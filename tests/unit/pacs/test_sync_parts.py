"""The sync's pure parts: the watermark rule, the state file, the options check and the worklist table."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceal.client import QueryItem, QueryList
from ceal.pacs.errors import PacsError
from ceal.pacs.protocol import SeriesInfo
from ceal.pacs.sync import SyncError, SyncOptions, sync
from ceal.pacs.watermark import next_watermark, read_watermark, with_lookback, write_watermark
from ceal.pacs.worklist import Worklist, format_worklist, from_query_list

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))


@given(previous=st.none() | days, found=st.lists(days, max_size=8), data=st.data())
def test_the_next_run_sees_every_failed_series_and_never_goes_back(
    previous: str | None, found: list[str], data: st.DataObject
) -> None:
    found = [d for d in found if previous is None or d >= previous]  # what `since=previous` can find
    failed_mask = data.draw(st.lists(st.booleans(), min_size=len(found), max_size=len(found)))
    ok = [d for d, bad in zip(found, failed_mask, strict=True) if not bad]
    failed = [d for d, bad in zip(found, failed_mask, strict=True) if bad]
    after = next_watermark(previous, ok, failed)
    if previous is not None:
        assert after is not None and after >= previous
    if failed:
        assert after is not None and all(after <= d for d in failed)  # `since` is inclusive
    else:
        assert after == max([*ok, *([previous] if previous else [])], default=None)


def test_a_failed_series_without_a_study_date_keeps_the_watermark() -> None:
    assert next_watermark("20240101", ["20240301"], [""]) == "20240101"
    assert next_watermark("20240101", ["", "20240301"], []) == "20240301"


@given(day=st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 1, 1)), back=st.integers(0, 400))
def test_lookback_moves_the_watermark_back_by_calendar_days(day: date, back: int) -> None:
    assert with_lookback(day.strftime("%Y%m%d"), back) == (day - timedelta(days=back)).strftime("%Y%m%d")
    assert with_lookback(None, back) is None


def test_the_state_file_round_trips_and_says_what_is_wrong(tmp_path: Path) -> None:
    state = tmp_path / "sub" / "state.json"
    assert read_watermark(state) is None
    write_watermark(state, "20240115")
    assert read_watermark(state) == "20240115"
    assert [p.name for p in state.parent.iterdir()] == ["state.json"]  # no temporary file left behind
    state.write_text("not json")
    with pytest.raises(PacsError, match="fix or delete it"):
        read_watermark(state)
    state.write_text('{"watermark": "2024-01-15"}')
    with pytest.raises(PacsError, match="invalid watermark"):
        read_watermark(state)


def test_options_refuse_derived_modalities_and_unknown_measures() -> None:
    assert SyncOptions(modalities=frozenset({" ct", "Mr "})).modalities == {"CT", "MR"}
    with pytest.raises(SyncError, match="never synced"):
        SyncOptions(modalities=frozenset({"CT", "SEG"}))
    with pytest.raises(SyncError, match="choose one of entropy"):
        SyncOptions(measure="dice")
    with pytest.raises(SyncError, match="no modalities"):
        SyncOptions(modalities=frozenset({""}))


def _item(rank: int, series: str, study: str, slices: int) -> QueryItem:
    return QueryItem(
        image_id=f"img-{rank}",
        rank=rank,
        score=1.0 / rank,
        reason=f"reason {rank}",
        estimated_seconds=30.0 * slices,
        series_key=series,
        study_key=study,
        lease_expires_at=None,
        slice_image_ids=tuple(f"s{i}" for i in range(slices)),
    )


def test_the_worklist_lists_series_in_rank_order_with_their_slices() -> None:
    ql = QueryList("lesion", 3, (_item(2, "1.2.2", "1.1", 1), _item(1, "1.2.1", "1.1", 4), _item(3, "", "", 0)), (), 5)
    wl = from_query_list(ql)
    assert [(e.rank, e.series_uid, e.slices) for e in wl.entries] == [(1, "1.2.1", 4), (2, "1.2.2", 1), (3, "", 1)]
    header, first, *_, last, note = format_worklist(wl).splitlines()
    assert header.split("\t") == ["rank", "study_uid", "series_uid", "slices", "score", "est_seconds", "reason"]
    assert first.split("\t") == ["1", "1.1", "1.2.1", "4", "1.00000", "120", "reason 1"]
    assert last.split("\t")[1:3] == ["-", "-"]
    assert "5 image(s) not scored by lesion/3" in note


def test_an_empty_worklist_says_why() -> None:
    assert "nothing to label" in format_worklist(Worklist("lesion/1", (), 0))


class _ListingOnlyPacs:
    """A PACS that lists series and refuses everything else: a dry run must only list."""

    def __init__(self, series: list[SeriesInfo]) -> None:
        self.series = series

    def find_series(self, since: str | None = None) -> list[SeriesInfo]:
        return self.series

    def retrieve_series(self, info: SeriesInfo) -> list[object]:
        raise AssertionError("a dry run retrieved a series")

    def store(self, datasets: object) -> None:
        raise AssertionError("a dry run stored something")

    def has_derived(self, series_uid: str, sop_uids: object) -> bool:
        raise AssertionError("a dry run asked the PACS for outputs")


class _OneModel:
    def list_models(self, name: str = "") -> list[SimpleNamespace]:
        return [SimpleNamespace(name="lesion", version=3, class_names=["background", "lesion"], preprocessing=None)]


FOUND = [
    SeriesInfo("1.1", "1.1.1", "CT", "20240101", "CHEST AXIAL"),
    SeriesInfo("1.1", "1.1.2", "CT", "20240101", "abdomen"),
    SeriesInfo("1.2", "1.2.1", "MR", "20240102", "T1 chest"),
    SeriesInfo("1.2", "1.2.2", "SEG", "20240102", "Lesion"),
]


def test_filters_narrow_the_sync_and_a_dry_run_only_lists(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    pacs, client = _ListingOnlyPacs(FOUND), _OneModel()
    options = SyncOptions(series_description="chest", dry_run=True)
    report = sync(pacs, client, options, state=state)  # type: ignore[arg-type]
    assert [i.series_uid for i in report.planned] == ["1.1.1", "1.2.1"]
    assert report.outcomes == () and not state.exists() and "dry run: 2 series" in report.summary()
    only_study = sync(pacs, client, SyncOptions(study="1.1", dry_run=True))  # type: ignore[arg-type]
    assert [i.series_uid for i in only_study.planned] == ["1.1.1", "1.1.2"]
    assert not SyncOptions(modalities=frozenset({"MR"})).wants(FOUND[0])


def test_a_uid_root_is_checked_when_the_options_are_made() -> None:
    assert SyncOptions(uid_root="1.2.826.0.1.3680043.10.543").uid_root == "1.2.826.0.1.3680043.10.543."
    with pytest.raises(SyncError, match="not a DICOM UID prefix"):
        SyncOptions(uid_root="2.25.x")
