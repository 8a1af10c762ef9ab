"""The sync's pure parts: the watermark rule, the state file, the options check and the worklist table."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceal.client import QueryItem, QueryList
from ceal.pacs.errors import PacsError
from ceal.pacs.sync import SyncError, SyncOptions
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
