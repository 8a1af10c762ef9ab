"""The second synthetic family (nuclei) and the family switch shared by `ceal data synth` and the simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from ceal.trainer.data.families import family_arrays, write_family
from ceal.trainer.data.nuclei import NUCLEI_KINDS, make_nuclei_case
from ceal.trainer.data.synth import case_rng


def test_nuclei_are_many_small_bright_objects_on_gray() -> None:
    cases = [make_nuclei_case(case_rng(0, i), 64, 96) for i in range(12)]
    for case in cases:
        assert case.image.shape == (64, 96, 3) and np.array_equal(case.image[..., 0], case.image[..., 2])
        fg = case.mask > 0
        if case.kind != "dim":  # nuclei are brighter than the background (dim ones barely)
            assert case.image[..., 0][fg].mean() > case.image[..., 0][~fg].mean() + 10
    components = [ndimage.label(c.mask > 0)[1] for c in cases]
    assert np.median(components) >= 4  # unlike a lesion image: several objects, not one
    fractions = [float((c.mask > 0).mean()) for c in cases]
    assert 0.02 < np.median(fractions) < 0.4


def test_the_same_seed_gives_the_same_case_and_kinds_are_checked() -> None:
    a, b = make_nuclei_case(case_rng(3, 7), 32, 32), make_nuclei_case(case_rng(3, 7), 32, 32)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert make_nuclei_case(case_rng(3, 7), 32, 32, kind="debris").kind == "debris"
    with pytest.raises(ValueError, match="unknown nuclei kind"):
        make_nuclei_case(case_rng(0, 0), 32, 32, kind="mitosis")
    assert abs(sum(v[0] for v in NUCLEI_KINDS.values()) - 1) < 1e-9


def test_family_arrays_and_files(tmp_path: Path) -> None:
    ids, images, masks = family_arrays("nuclei", 3, 0, 32, 48)
    assert ids == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002"] and set(np.unique(masks)) <= {0, 1}
    write_family("nuclei", tmp_path, 3, 0, 32, 48, progress=False)
    first = np.asarray(Image.open(tmp_path / "images" / "ISIC_0000000.png"))
    assert np.array_equal(first, images[0])  # lossless: what the simulation draws is what is written
    assert (tmp_path / "masks" / "ISIC_0000002_segmentation.png").is_file()
    lesions = family_arrays("lesion", 2, 0, 32, 48)[1]
    assert not np.array_equal(lesions[..., 0], lesions[..., 2])  # the lesions are in colour
    with pytest.raises(ValueError, match="unknown synthetic family"):
        family_arrays("xray", 1, 0, 32, 32)
