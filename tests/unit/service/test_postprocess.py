"""Label-map clean-up and shape measures, against flood fills and loops written out here."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ceal.service import postprocess as pp
from ceal.service.errors import InvalidInput

U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
SETTINGS = settings(deadline=None, max_examples=80)
SHAPES = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9)
label_maps = hnp.arrays(np.uint8, SHAPES, elements=st.integers(0, 3))
masks = hnp.arrays(np.bool_, SHAPES)
FOUR = [(-1, 0), (1, 0), (0, -1), (0, 1)]
EIGHT = [(a, b) for a, b in itertools.product((-1, 0, 1), repeat=2) if (a, b) != (0, 0)]


def _neighbours(shape: tuple[int, ...], i: int, j: int, steps: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    for a, b in steps:
        if 0 <= i + a < shape[0] and 0 <= j + b < shape[1]:
            yield i + a, j + b


def _components(mask: Mask, steps: list[tuple[int, int]]) -> list[set[tuple[int, int]]]:
    """Connected components of True pixels by breadth-first flood fill."""
    seen: set[tuple[int, int]] = set()
    found = []
    for row, col in zip(*np.nonzero(mask), strict=True):
        start = (int(row), int(col))
        if start in seen:
            continue
        seen.add(start)
        component, queue = {start}, deque([start])
        while queue:
            for nxt in _neighbours(mask.shape, *queue.popleft(), steps):
                if mask[nxt] and nxt not in seen:
                    seen.add(nxt)
                    component.add(nxt)
                    queue.append(nxt)
        found.append(component)
    return found


def _enclosed_by(labels: U8, value: int) -> Mask:
    """Pixels not of class ``value`` that cannot reach the image edge without crossing class ``value``."""
    enclosed = np.zeros(labels.shape, dtype=bool)
    h, w = labels.shape
    for component in _components(labels != value, FOUR):
        if not any(i in (0, h - 1) or j in (0, w - 1) for i, j in component):
            for pixel in component:
                enclosed[pixel] = True
    return enclosed


def _draw(rows: list[str]) -> U8:
    return np.array([[int(ch) for ch in row] for row in rows], dtype=np.uint8)


@SETTINGS
@given(label_maps)
def test_keep_largest_component_keeps_one_largest_piece_per_class(labels: U8) -> None:
    kept = pp.keep_largest_component(labels)
    assert kept.dtype == np.uint8 and kept.shape == labels.shape
    assert np.all((kept == labels) | (kept == 0))
    for value in range(1, 4):
        before = _components(labels == value, EIGHT)
        after = _components(kept == value, EIGHT)
        assert len(after) == min(1, len(before))
        if before:
            assert len(after[0]) == max(len(c) for c in before)
            assert after[0] in before
    np.testing.assert_array_equal(pp.keep_largest_component(kept), kept)


def test_keep_largest_component_on_a_drawn_map() -> None:
    labels = _draw(["11000", "11022", "00020", "10002", "00000"])
    expected = _draw(["11000", "11022", "00020", "00002", "00000"])  # the 2s touch diagonally: one piece
    np.testing.assert_array_equal(pp.keep_largest_component(labels), expected)


@SETTINGS
@given(label_maps)
def test_fill_holes_fills_exactly_the_enclosed_background(labels: U8) -> None:
    filled = pp.fill_holes(labels)
    assert filled.dtype == np.uint8
    assert np.all((filled == labels) | (labels == 0))  # only background changes
    enclosing = {v: _enclosed_by(labels, v) for v in range(1, 4) if np.any(labels == v)}
    for i, j in zip(*np.nonzero(labels == 0), strict=True):
        owners = [v for v, enclosed in enclosing.items() if enclosed[i, j]]
        if owners:
            assert filled[i, j] in owners
        else:
            assert filled[i, j] == 0
    np.testing.assert_array_equal(pp.fill_holes(filled), filled)


def test_fill_holes_prefers_the_innermost_class_and_keeps_inner_classes() -> None:
    labels = _draw([
        "1111111",
        "1000001",
        "1022201",
        "1020201",
        "1022201",
        "1000001",
        "1111111",
    ])  # fmt: skip
    expected = _draw(["1111111", "1111111", "1122211", "1122211", "1122211", "1111111", "1111111"])
    np.testing.assert_array_equal(pp.fill_holes(labels), expected)
    diagonal_ring = _draw(["010", "101", "010"])  # an 8-connected ring encloses its 4-connected centre
    np.testing.assert_array_equal(pp.fill_holes(diagonal_ring), _draw(["010", "111", "010"]))
    open_cup = _draw(["101", "101", "111"])
    np.testing.assert_array_equal(pp.fill_holes(open_cup), open_cup)


@SETTINGS
@given(masks)
def test_boundary_length_counts_pixels_with_a_background_four_neighbour(mask: Mask) -> None:
    h, w = mask.shape
    expected = 0
    for i, j in zip(*np.nonzero(mask), strict=True):
        on_edge = i in (0, h - 1) or j in (0, w - 1)
        expected += on_edge or any(not mask[n] for n in _neighbours(mask.shape, i, j, FOUR))
    assert pp.boundary_length(mask) == expected


def test_boundary_length_of_drawn_shapes() -> None:
    assert pp.boundary_length(np.zeros((4, 4), dtype=bool)) == 0
    assert pp.boundary_length(np.ones((4, 5), dtype=bool)) == 14  # the image perimeter: 2·4 + 2·5 - 4
    square = np.zeros((7, 7), dtype=bool)
    square[1:6, 1:6] = True
    assert pp.boundary_length(square) == 16
    square[3, 3] = False  # a hole at the centre turns its four interior neighbours into boundary
    assert pp.boundary_length(square) == 20


@SETTINGS
@given(masks)
def test_component_count_matches_an_eight_connected_flood_fill(mask: Mask) -> None:
    assert pp.component_count(mask) == len(_components(mask, EIGHT))


def test_component_count_joins_diagonals() -> None:
    assert pp.component_count(np.eye(4, dtype=bool)) == 1
    assert pp.component_count(np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1]], dtype=bool)) == 4
    assert pp.component_count(np.zeros((3, 3), dtype=bool)) == 0


@pytest.mark.parametrize(
    ("call", "argument", "message"),
    [
        (pp.keep_largest_component, np.zeros((3, 3), dtype=np.int64), "uint8"),
        (pp.fill_holes, np.zeros(3, dtype=np.uint8), r"\(H, W\)"),
        (pp.boundary_length, np.zeros((3, 3), dtype=np.uint8), "boolean"),
        (pp.component_count, np.zeros((0, 3), dtype=bool), r"\(H, W\)"),
    ],
)
def test_wrong_inputs_say_what_to_change(call: object, argument: npt.NDArray[np.generic], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call(argument)  # type: ignore[operator]
