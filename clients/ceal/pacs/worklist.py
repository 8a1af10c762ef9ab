"""`worklist`: the series a radiologist should open next, from the pool's series-level query list.

Each entry names the study and series by UID (what a PACS viewer opens), the number of slices, the score the
list was ranked by and the reason in words. The server knows no patient names, and nothing here asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ceal.client import Client, QueryList

__all__ = ["Worklist", "WorklistEntry", "format_worklist", "from_query_list", "worklist"]


@dataclass(frozen=True)
class WorklistEntry:
    rank: int
    study_uid: str  # "" when the images were registered without DICOM keys
    series_uid: str
    slices: int
    score: float
    estimated_seconds: float
    reason: str


@dataclass(frozen=True)
class Worklist:
    model: str  # "name/version" that scored the pool
    entries: tuple[WorklistEntry, ...]
    unscored: int  # pool images the model has not scored yet (not in this list)


def from_query_list(ql: QueryList) -> Worklist:
    """A series-level query list (`Client.query_list(series=True)`) as worklist entries, in rank order."""
    entries = tuple(
        WorklistEntry(
            rank=item.rank,
            study_uid=item.study_key,
            series_uid=item.series_key,
            slices=len(item.slice_image_ids) or 1,
            score=item.score,
            estimated_seconds=item.estimated_seconds,
            reason=item.reason,
        )
        for item in sorted(ql.items, key=lambda i: i.rank)
    )
    return Worklist(f"{ql.model_name}/{ql.model_version}", entries, ql.unscored)


def worklist(
    client: Client, *, strategy: str = "ceal", k: int = 10, annotator: str = "", pool: str = "", score: bool = True
) -> Worklist:
    """Score what the pool is missing (unless `score` is False), then rank its series for `annotator`.

    With an annotator the series are leased to them, so two radiologists are not sent the same series.
    """
    if score:
        client.score_pool(pool=pool)
    return from_query_list(client.query_list(strategy=strategy, k=k, annotator=annotator, pool=pool, series=True))


def format_worklist(wl: Worklist) -> str:
    """A tab-separated table with a header, one line per series, and a note on unscored images."""
    lines = ["rank\tstudy_uid\tseries_uid\tslices\tscore\test_seconds\treason"]
    lines += [
        f"{e.rank}\t{e.study_uid or '-'}\t{e.series_uid or '-'}\t{e.slices}\t{e.score:.5f}\t"
        f"{e.estimated_seconds:.0f}\t{e.reason}"
        for e in wl.entries
    ]
    if not wl.entries:
        lines.append("(nothing to label: the pool is empty, fully labelled or leased to others)")
    if wl.unscored:
        lines.append(f"({wl.unscored} image(s) not scored by {wl.model} yet are not listed: run with scoring on)")
    return "\n".join(lines)
