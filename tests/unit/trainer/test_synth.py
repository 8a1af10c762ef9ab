"""Synthetic lesion generator: determinism, true masks, the spread of case attributes, ISIC layout."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ceal.trainer.data import _synth_render as render
from ceal.trainer.data import folders
from ceal.trainer.data.synth import (
    CASE_KINDS,
    CaseAttributes,
    case_rng,
    isic_id,
    make_case,
    write_isic,
)

H, W = 40, 56  # small cases keep the test run short; the generator is size-independent


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_kind_table_odds() -> None:
    assert sum(kind.probability for kind in CASE_KINDS) == pytest.approx(1.0)
    hard = [kind for kind in CASE_KINDS if kind.name not in ("typical", "multiple")]
    assert {kind.name for kind in hard} == {"faint", "border", "heavy_hair", "marks"}
    assert sum(kind.probability for kind in hard) == pytest.approx(0.10)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    write_isic(tmp_path / "a", 5, seed=3, height=H, width=W, progress=False)
    write_isic(tmp_path / "b", 5, seed=3, height=H, width=W, progress=False)
    write_isic(tmp_path / "c", 5, seed=4, height=H, width=W, progress=False)
    a, b, c = (_tree_bytes(tmp_path / name) for name in "abc")
    assert len(a) == 5 + 5 + 1
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a if name.startswith("images"))


def test_case_depends_only_on_seed_and_index(tmp_path: Path) -> None:
    write_isic(tmp_path / "short", 2, seed=9, height=H, width=W, progress=False)
    write_isic(tmp_path / "long", 4, seed=9, height=H, width=W, progress=False)
    short, long = _tree_bytes(tmp_path / "short"), _tree_bytes(tmp_path / "long")
    assert all(long[name] == blob for name, blob in short.items() if name != "cases.csv")
    case = make_case(case_rng(9, 3), H, W)
    mask = np.asarray(Image.open(tmp_path / "long" / "masks" / f"{isic_id(3)}_segmentation.png"))
    np.testing.assert_array_equal(mask, case.mask)


def test_isic_layout_matches_find_pairs_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = write_isic(tmp_path, 4, seed=1, height=H, width=W, progress=True)
    assert "synth" in capsys.readouterr().err  # the progress bar goes to stderr
    assert ids == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]
    pairs = folders.find_pairs(tmp_path / "images", tmp_path / "masks")
    assert [pair.image_id for pair in pairs] == ids
    for pair in pairs:
        assert pair.mask_path is not None
        assert Image.open(pair.image_path).format == "JPEG"
        raw = np.asarray(Image.open(pair.mask_path))
        assert raw.shape == (H, W)
        assert set(np.unique(raw)) <= {0, 255}
        np.testing.assert_array_equal(folders.load_mask(pair.mask_path), raw // 255)
        assert folders.load_image(pair.image_path).shape == (H, W, 3)
    with (tmp_path / "cases.csv").open(newline="") as table:
        rows = list(csv.DictReader(table))
    assert [row["id"] for row in rows] == ids
    assert list(rows[0]) == ["id", *(field.name for field in dataclasses.fields(CaseAttributes))]
    assert {row["kind"] for row in rows} <= {kind.name for kind in CASE_KINDS}


@pytest.mark.parametrize("kind", [kind.name for kind in CASE_KINDS])
def test_each_kind_gives_binary_nonempty_masks(kind: str) -> None:
    for index in range(6):
        case = make_case(case_rng(5, index), H, W, kind=kind)
        assert case.image.shape == (H, W, 3) and case.image.dtype == np.uint8
        assert case.mask.shape == (H, W) and case.mask.dtype == np.uint8
        assert set(np.unique(case.mask)) == {0, 255}
        attrs = case.attributes
        assert attrs.kind == kind
        assert attrs.lesion_fraction == pytest.approx(float((case.mask > 0).mean()))
        if kind == "border":
            assert attrs.touches_border
        if kind == "multiple":
            assert attrs.lesion_count >= 2
        if kind == "faint":
            assert attrs.contrast <= 0.2
        if kind == "heavy_hair":
            assert attrs.hair_count >= 25
        if kind == "marks":
            assert attrs.marks in ("ruler", "ink", "ruler+ink")
        else:
            assert attrs.marks == ""


def test_faint_lesions_are_fainter_than_typical() -> None:
    def median_delta(kind: str) -> float:
        deltas = [make_case(case_rng(2, i), H, W, kind=kind).attributes.luma_delta for i in range(10)]
        return float(np.median(np.abs(deltas)))

    assert median_delta("faint") < 0.5 * median_delta("typical")


def test_attributes_spread_over_200_cases() -> None:
    cases = [make_case(case_rng(11, index), H, W).attributes for index in range(200)]
    kinds = [attrs.kind for attrs in cases]
    assert set(kinds) == {kind.name for kind in CASE_KINDS}
    hard = sum(kind not in ("typical", "multiple") for kind in kinds)
    assert 5 <= hard <= 40  # about 10 % of 200
    sizes = np.array([attrs.lesion_fraction for attrs in cases])
    assert sizes.min() < 0.01 and sizes.max() > 0.25  # tiny to large
    irregularity = np.array([attrs.irregularity for attrs in cases])
    assert irregularity.min() < 0.15 and irregularity.max() > 0.7
    contrast = np.array([attrs.contrast for attrs in cases])
    assert contrast.min() < 0.2 and contrast.max() > 0.9
    assert {attrs.colours > 0 for attrs in cases} == {True, False}
    assert {attrs.hair_count > 0 for attrs in cases} == {True, False}
    assert {attrs.touches_border for attrs in cases} == {True, False}
    tones = np.array([attrs.skin_tone for attrs in cases])
    assert tones.max() - tones.min() > 0.5
    vignetting = np.array([attrs.vignetting for attrs in cases])
    assert vignetting.min() < 0.05 and vignetting.max() > 0.4


def test_hair_changes_the_image_not_the_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    hairy = make_case(case_rng(0, 0), H, W, kind="heavy_hair")
    monkeypatch.setattr(render, "draw_hairs", lambda *args: None)
    bald = make_case(case_rng(0, 0), H, W, kind="heavy_hair")
    np.testing.assert_array_equal(hairy.mask, bald.mask)
    assert not np.array_equal(hairy.image, bald.image)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    index=st.integers(0, 10**6),
    height=st.integers(16, 48),
    width=st.integers(16, 48),
)
def test_any_case_has_a_true_mask(seed: int, index: int, height: int, width: int) -> None:
    case = make_case(case_rng(seed, index), height, width)
    assert case.image.shape == (height, width, 3)
    assert set(np.unique(case.mask)) == {0, 255} or case.mask.all()
    assert 1 <= case.attributes.lesion_count <= 5


def test_bad_arguments_say_what_to_change(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="choose one of typical, multiple"):
        make_case(case_rng(0, 0), H, W, kind="melanoma")
    with pytest.raises(ValueError, match="at least 16 px"):
        make_case(case_rng(0, 0), 8, W)
    with pytest.raises(ValueError, match="seed and index must be"):
        case_rng(-1, 0)
    with pytest.raises(ValueError, match="n must be"):
        write_isic(tmp_path, -1, seed=0, progress=False)
