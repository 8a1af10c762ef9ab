"""Image/mask folder pairs: ISIC 2017 and generic layouts, loading, resizing, the train/val split."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ceal.imaging import PreprocessParams
from ceal.trainer.data.folders import (
    DatasetError,
    Pair,
    find_pairs,
    load_image,
    load_mask,
    resize_pair,
    split_ids,
)


def _save(path: Path, arr: np.ndarray, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kwargs)
    return path


def _rgb(seed: int = 0, shape: tuple[int, int] = (12, 16)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _binary(shape: tuple[int, int] = (12, 16)) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[3:8, 4:10] = 255
    return mask


def test_isic_layout_pairs_and_skips_superpixels(tmp_path: Path) -> None:
    for name in ("ISIC_0000002", "ISIC_0000001"):
        _save(tmp_path / "images" / f"{name}.jpg", _rgb())
        _save(tmp_path / "images" / f"{name}_superpixels.png", _rgb())
        _save(tmp_path / "masks" / f"{name}_segmentation.png", _binary())
    (tmp_path / "images" / "ISIC_metadata.csv").write_text("image_id\n")
    pairs = find_pairs(tmp_path / "images", tmp_path / "masks")
    assert pairs == [
        Pair(
            "ISIC_0000001",
            tmp_path / "images" / "ISIC_0000001.jpg",
            tmp_path / "masks" / "ISIC_0000001_segmentation.png",
        ),
        Pair(
            "ISIC_0000002",
            tmp_path / "images" / "ISIC_0000002.jpg",
            tmp_path / "masks" / "ISIC_0000002_segmentation.png",
        ),
    ]


def test_generic_layout_pairs_by_stem_across_suffixes(tmp_path: Path) -> None:
    _save(tmp_path / "img" / "b.TIF", _rgb())
    _save(tmp_path / "img" / "a.png", _rgb())
    _save(tmp_path / "img" / "c.bmp", _rgb())
    _save(tmp_path / "img" / "d.jpeg", _rgb())
    _save(tmp_path / "lab" / "a.png", _binary())
    _save(tmp_path / "lab" / "b.png", _binary())
    _save(tmp_path / "lab" / "c.tif", _binary())
    _save(tmp_path / "lab" / "d.bmp", _binary())
    _save(tmp_path / "lab" / "orphan.png", _binary())  # a mask without an image is ignored
    pairs = find_pairs(tmp_path / "img", tmp_path / "lab")
    assert [(p.image_id, p.image_path.name, p.mask_path and p.mask_path.name) for p in pairs] == [
        ("a", "a.png", "a.png"),
        ("b", "b.TIF", "b.png"),
        ("c", "c.bmp", "c.tif"),
        ("d", "d.jpeg", "d.bmp"),
    ]


def test_images_and_masks_in_one_folder(tmp_path: Path) -> None:
    _save(tmp_path / "X.jpg", _rgb())
    _save(tmp_path / "X_segmentation.png", _binary())
    assert find_pairs(tmp_path, tmp_path) == [Pair("X", tmp_path / "X.jpg", tmp_path / "X_segmentation.png")]


def test_missing_masks_error_counts_and_names_them(tmp_path: Path) -> None:
    for i in range(8):
        _save(tmp_path / "images" / f"case{i}.png", _rgb())
    _save(tmp_path / "masks" / "case0_segmentation.png", _binary())
    with pytest.raises(DatasetError) as info:
        find_pairs(tmp_path / "images", tmp_path / "masks")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "7 of 8 images" in message
    assert "case1.png, case2.png, case3.png, case4.png, case5.png, …" in message
    assert "case7.png" not in message and "case0.png" not in message
    assert "allow_unlabelled=True" in message and "_segmentation.png" in message

    pairs = find_pairs(tmp_path / "images", tmp_path / "masks", allow_unlabelled=True)
    assert [p.mask_path is None for p in pairs] == [False] + [True] * 7


def test_folder_errors_say_what_to_change(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        find_pairs(tmp_path / "nowhere", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no images in .*\.png"):
        find_pairs(tmp_path / "empty", tmp_path)
    _save(tmp_path / "dup" / "a.png", _rgb())
    _save(tmp_path / "dup" / "a.jpg", _rgb())
    with pytest.raises(DatasetError, match="two images share the id 'a'"):
        find_pairs(tmp_path / "dup", tmp_path / "dup")
    _save(tmp_path / "one" / "a.png", _rgb())
    _save(tmp_path / "two" / "a.png", _binary())
    _save(tmp_path / "two" / "a_segmentation.png", _binary())
    with pytest.raises(DatasetError, match="two masks for image 'a'"):
        find_pairs(tmp_path / "one", tmp_path / "two")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read image bad\.png"):
        load_image(tmp_path / "bad.png")


def test_load_image_modes(tmp_path: Path) -> None:
    rgb = _rgb(1)
    np.testing.assert_array_equal(load_image(_save(tmp_path / "rgb.png", rgb)), rgb)
    grey = rgb[..., 0]
    out = load_image(_save(tmp_path / "grey.png", grey))
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))
    rgba = np.concatenate([rgb, np.full((12, 16, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(load_image(_save(tmp_path / "rgba.png", rgba)), rgb)
    deep = np.linspace(1000, 61000, 12 * 16).reshape(12, 16).astype(np.uint16)
    out = load_image(_save(tmp_path / "deep.png", deep))
    # 16-bit: divided by 65535 as the server divides it (the contract), not stretched per image
    assert out.shape == (12, 16, 3)
    np.testing.assert_array_equal(out[..., 0], np.rint(deep / 65535 * 255).astype(np.uint8))
    twelve = load_image(_save(tmp_path / "deep.png", deep // 16), PreprocessParams(uint16_max=4095))
    assert abs(int(twelve.max()) - 238) <= 1 and abs(int(twelve.min()) - 4) <= 1  # 12-bit range set in params
    assert load_image(_save(tmp_path / "photo.jpg", rgb, quality=95)).shape == (12, 16, 3)


def test_load_mask_binary_and_multiclass(tmp_path: Path) -> None:
    binary = _binary()
    np.testing.assert_array_equal(load_mask(_save(tmp_path / "b.png", binary)), binary // 255)
    np.testing.assert_array_equal(load_mask(_save(tmp_path / "01.png", binary // 255)), binary // 255)
    classes = np.arange(12 * 16).reshape(12, 16).astype(np.uint8) % 4  # values 0..3 are class indices
    out = load_mask(_save(tmp_path / "c.png", classes))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, classes)
    palette = Image.frombytes("P", (16, 12), classes.tobytes())
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "p.png"), classes)
    noisy = np.clip(binary.astype(np.int16) + np.where(binary > 0, -60, 60), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(load_mask(_save(tmp_path / "n.png", noisy)), binary // 255)
    coloured = np.stack([binary, np.zeros_like(binary), np.zeros_like(binary)], axis=2)
    np.testing.assert_array_equal(load_mask(_save(tmp_path / "rgb.png", coloured)), binary // 255)
    Image.fromarray(binary > 0).save(tmp_path / "one_bit.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "one_bit.png"), binary // 255)


def test_resize_pair() -> None:
    image = np.full((12, 16, 3), 90, dtype=np.uint8)
    mask = (np.arange(12 * 16).reshape(12, 16) % 3).astype(np.uint8)
    out_image, out_mask = resize_pair(image, mask, 30, 20)
    assert out_image.shape == (30, 20, 3) and out_mask.shape == (30, 20)
    assert (out_image == 90).all()  # bilinear of a constant is the constant
    assert set(np.unique(out_mask)) <= {0, 1, 2}  # nearest never invents a class
    same_image, same_mask = resize_pair(_rgb(2), mask, 12, 16)
    np.testing.assert_array_equal(same_image, _rgb(2))
    np.testing.assert_array_equal(same_mask, mask)
    with pytest.raises(DatasetError, match="its mask is 12×15"):
        resize_pair(image, mask[:, :15], 8, 8)


@settings(max_examples=60, deadline=None)
@given(
    ids=st.sets(st.text("abcdef0123_", min_size=1, max_size=8), max_size=60),
    val_fraction=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**31),
)
def test_split_is_disjoint_complete_and_deterministic(ids: set[str], val_fraction: float, seed: int) -> None:
    ordered = sorted(ids)
    train, val = split_ids(ordered, val_fraction, seed)
    assert not set(train) & set(val)
    assert set(train) | set(val) == ids
    assert train == sorted(train) and val == sorted(val)
    assert abs(len(val) - val_fraction * len(ids)) <= 1
    if val_fraction > 0 and len(ids) >= 2:
        assert val
    shuffled = ordered[:]
    random.Random(seed).shuffle(shuffled)
    assert split_ids(shuffled, val_fraction, seed) == (train, val)


def test_split_depends_on_seed_and_rejects_bad_input() -> None:
    ids = [f"ISIC_{i:07d}" for i in range(100)]
    assert split_ids(ids, 0.2, 0)[1] != split_ids(ids, 0.2, 1)[1]
    assert len(split_ids(ids, 0.2, 0)[1]) == 20
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        split_ids(ids, 1.0, 0)
    with pytest.raises(ValueError, match="1 are repeated"):
        split_ids([*ids, ids[0]], 0.2, 0)
