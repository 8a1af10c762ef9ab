"""Label masks against the model's classes: 0/1 as is, 0/255 normalised for a binary model, the rest refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceal.service.errors import InvalidInput
from ceal.service.pool.masks import mask_values, normalise_mask
from ceal.service.server import plaintext_token_warning


def _mask(*values: int) -> np.ndarray:
    return np.array([list(values) * 2], dtype=np.uint8)


def test_binary_masks() -> None:
    assert np.array_equal(normalise_mask(_mask(0, 1), 2), _mask(0, 1))
    assert np.array_equal(normalise_mask(_mask(0, 255), 2), _mask(0, 1))
    assert np.array_equal(normalise_mask(_mask(255, 255), 2), _mask(1, 1))
    assert np.array_equal(normalise_mask(np.array([[True, False]]), 2), np.array([[1, 0]], np.uint8))
    assert np.array_equal(normalise_mask(_mask(0, 0), 2), _mask(0, 0))
    with pytest.raises(
        InvalidInput, match=r"mask values 0, 1, 255 do not fit the model's 2 classes \(bg, fg\) \(255 neither"
    ):
        normalise_mask(_mask(0, 1, 255), 2, ("bg", "fg"))
    with pytest.raises(InvalidInput, match=r"mask values 0, 2"):
        normalise_mask(_mask(0, 2), 2)


def test_multi_class_masks() -> None:
    assert np.array_equal(normalise_mask(_mask(0, 1, 2, 3), 4), _mask(0, 1, 2, 3))
    with pytest.raises(InvalidInput, match=r"include 4, 255, outside the model's 4 classes: send class indices 0..3"):
        normalise_mask(_mask(0, 4, 255), 4)
    with pytest.raises(InvalidInput, match=r"\.\.\. \(12 values\)"):
        normalise_mask(np.arange(12, dtype=np.uint8)[None] + 10, 3)


@given(st.lists(st.integers(0, 255), min_size=1, max_size=40), st.integers(2, 6))
def test_accepted_masks_come_back_as_class_indices(values: list[int], classes: int) -> None:
    mask = np.array([values], dtype=np.uint8)
    try:
        out = normalise_mask(mask, classes)
    except InvalidInput as exc:
        assert any(v >= classes for v in values) and str(min(v for v in values if v >= classes)) in str(exc)
        return
    assert out.dtype == np.uint8 and out.shape == mask.shape and int(out.max()) < classes
    assert mask_values(out) == sorted({1 if (classes == 2 and v == 255) else v for v in values})


@pytest.mark.parametrize(
    ("address", "tls", "tokens", "warned"),
    [
        ("0.0.0.0:50051", False, True, True),
        ("10.1.2.3:50051", False, True, True),
        ("ceal.example.org:50051", False, True, True),
        ("127.0.0.1:50051", False, True, False),
        ("[::1]:50051", False, True, False),
        ("localhost:50051", False, True, False),
        ("0.0.0.0:50051", True, True, False),
        ("0.0.0.0:50051", False, False, False),
    ],
)
def test_tokens_without_tls_beyond_loopback_warn(address: str, tls: bool, tokens: bool, warned: bool) -> None:
    warning = plaintext_token_warning(address, tls, tokens)
    assert (warning is not None) == warned
    if warning:
        assert "--tls-cert" in warning and address.rsplit(":", 1)[0] in warning
