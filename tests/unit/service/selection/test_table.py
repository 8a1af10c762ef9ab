from __future__ import annotations

import numpy as np
import pytest

from ceal.service.errors import InvalidInput
from ceal.service.selection import MEASURES, ScoreTable, Selection


def _columns(n: int) -> dict[str, object]:
    return {
        "image_ids": tuple(f"img{i}" for i in range(n)),
        **{name: np.zeros(n) for name in ("entropy", "mutual_information", "variance", "confidence")},
        "boundary_length": np.zeros(n),
        "components": np.zeros(n),
    }


@pytest.mark.parametrize(
    "field", ["entropy", "mutual_information", "variance", "confidence", "boundary_length", "components"]
)
def test_a_column_of_the_wrong_length_is_named(field: str) -> None:
    columns = _columns(4)
    columns[field] = np.zeros(3)
    with pytest.raises(ValueError, match=f"^{field} has 3 values but image_ids has 4"):
        ScoreTable(**columns)  # type: ignore[arg-type]


def test_a_two_dimensional_column_is_refused() -> None:
    columns = _columns(4)
    columns["variance"] = np.zeros((4, 2))
    with pytest.raises(InvalidInput, match="variance must be 1-D"):
        ScoreTable(**columns)  # type: ignore[arg-type]


def test_descriptors_and_series_keys_must_match_the_rows() -> None:
    with pytest.raises(InvalidInput, match=r"descriptors must be \(N, D\) with N = 4"):
        ScoreTable(**_columns(4), descriptors=np.zeros((3, 8), np.float32))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="series_keys has 2 keys but image_ids has 4"):
        ScoreTable(**_columns(4), series_keys=("a", "b"))  # type: ignore[arg-type]


def test_duplicate_ids_and_negative_mask_sizes_are_refused_without_echoing_ids() -> None:
    columns = _columns(3)
    columns["image_ids"] = ("secret", "other", "secret")
    with pytest.raises(InvalidInput, match="must be unique") as caught:
        ScoreTable(**columns)  # type: ignore[arg-type]
    assert "secret" not in str(caught.value)
    columns = _columns(3)
    columns["boundary_length"] = np.array([1.0, -1.0, np.nan])
    with pytest.raises(InvalidInput, match=r"boundary_length .* must be >= 0"):
        ScoreTable(**columns)  # type: ignore[arg-type]


def test_columns_are_read_only_copies() -> None:
    columns = _columns(3)
    source = np.array([0.1, 0.2, 0.3])
    columns["entropy"] = source
    table = ScoreTable(**columns)  # type: ignore[arg-type]
    source[0] = 9.0
    assert table.entropy[0] == 0.1
    with pytest.raises(ValueError, match="read-only"):
        table.entropy[0] = 1.0
    assert len(table) == 3


def test_measure_looks_up_columns_and_names_the_choices() -> None:
    table = ScoreTable(**_columns(2))  # type: ignore[arg-type]
    for name in MEASURES:
        assert table.measure(name) is getattr(table, name)
    with pytest.raises(InvalidInput, match="choose one of"):
        table.measure("confidence")


def test_selection_checks_its_own_consistency() -> None:
    with pytest.raises(InvalidInput, match="equal lengths"):
        Selection(query=(1, 2), scores=(0.5,), reasons=("a", "b"), estimated_seconds=(1.0, 2.0))
    with pytest.raises(InvalidInput, match="both queried and pseudo-labelled"):
        Selection(
            query=(1,),
            scores=(0.5,),
            reasons=("a",),
            estimated_seconds=(1.0,),
            pseudo=(1,),
            pseudo_scores=(0.9,),
            pseudo_reasons=("b",),
        )
    selection = Selection(query=(3, 1), scores=(0.5, 0.4), reasons=("a", "b"), estimated_seconds=(1.5, 2.0))
    assert selection.total_seconds == 3.5
    assert len(selection) == 2
