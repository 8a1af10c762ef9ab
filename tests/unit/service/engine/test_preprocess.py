"""Pixels of any size, dtype and channel count → model input, and predictions back at the original size."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import MAPS, Engine, PredictOptions
from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare, resize_planes, to_channels, to_unit_range
from ceal.service.metadata import ModelMetadata

SETTINGS = settings(deadline=None, max_examples=40)
INTEGER_DTYPES: list[type[np.generic]] = [np.uint8, np.uint16, np.int16]
FLOAT_DTYPES: list[type[np.generic]] = [np.float32, np.float64]


def _meta(channels: int, height: int = 48, width: int = 64) -> ModelMetadata:
    return ModelMetadata(
        name="m",
        version=1,
        input_channels=channels,
        input_height=height,
        input_width=width,
        num_classes=1,
        mean=0.5,
        std=0.25,
        dropout_rate=0.5,
    )


def _images(dtype: type[np.generic], channels: int | None = None) -> st.SearchStrategy[npt.NDArray[np.generic]]:
    """Images (H, W) or (H, W, channels) of `dtype`, sides 1..40; floats in [-1, 2] (some out of range)."""
    sides = st.tuples(st.integers(1, 40), st.integers(1, 40))
    shapes = sides.map(lambda s: s if channels is None else (*s, channels))
    elements = st.floats(-1.0, 2.0, width=32) if np.dtype(dtype).kind == "f" else None
    return hnp.arrays(dtype, shapes, elements=elements)


def test_integer_scaling_fixed_points() -> None:
    assert to_unit_range(np.array([0, 51, 255], np.uint8)).tolist() == pytest.approx([0.0, 0.2, 1.0])
    assert to_unit_range(np.array([0, 13107, 65535], np.uint16)).tolist() == pytest.approx([0.0, 0.2, 1.0])
    # Signed integers (CT in Hounsfield units, say) are min-max scaled per image.
    assert to_unit_range(np.array([-1000, 0, 1000], np.int16)).tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert to_unit_range(np.full((3, 3), -7, np.int16)).tolist() == np.zeros((3, 3)).tolist()
    # Floats are taken as already in [0, 1]: values outside are clipped, not rescaled.
    assert to_unit_range(np.array([-0.5, 0.25, 1.5])).tolist() == [0.0, 0.25, 1.0]


@SETTINGS
@given(st.sampled_from(INTEGER_DTYPES + FLOAT_DTYPES).flatmap(_images))
def test_unit_range_is_float32_in_0_1_same_shape_and_keeps_order(pixels: npt.NDArray[np.generic]) -> None:
    unit = to_unit_range(pixels)
    assert unit.dtype == np.float32 and unit.shape == pixels.shape
    assert unit.min() >= 0.0 and unit.max() <= 1.0
    flat_in, flat_out = pixels.ravel().astype(np.float64), unit.ravel()
    order = np.argsort(flat_in, kind="stable")
    assert np.all(np.diff(flat_out[order]) >= 0)  # a brighter pixel never becomes darker


@SETTINGS
@given(_images(np.uint8))
def test_grayscale_becomes_three_equal_channels(pixels: npt.NDArray[np.uint8]) -> None:
    unit = to_unit_range(pixels)
    for gray in (unit, unit[..., None]):
        rgb = to_channels(gray, 3)
        assert rgb.shape == (*pixels.shape, 3)
        for c in range(3):
            assert np.array_equal(rgb[..., c], unit)
    assert np.array_equal(to_channels(unit, 1)[..., 0], unit)


@SETTINGS
@given(_images(np.uint8, channels=3))
def test_rgb_becomes_luminance_for_one_channel_models(pixels: npt.NDArray[np.uint8]) -> None:
    unit = to_unit_range(pixels)
    gray = to_channels(unit, 1)
    assert gray.shape == (*pixels.shape[:2], 1)
    want = 0.299 * unit[..., 0] + 0.587 * unit[..., 1] + 0.114 * unit[..., 2]
    np.testing.assert_allclose(gray[..., 0], want, rtol=0, atol=1e-6)
    assert np.array_equal(to_channels(unit, 3), unit)  # RGB for an RGB model is untouched


@SETTINGS
@given(
    st.sampled_from(INTEGER_DTYPES).flatmap(lambda d: _images(d) | _images(d, 1) | _images(d, 3)),
    st.sampled_from([1, 3]),
    st.integers(1, 50),
    st.integers(1, 50),
)
def test_prepare_gives_the_model_shape_for_any_input(
    pixels: npt.NDArray[np.generic], channels: int, height: int, width: int
) -> None:
    meta = _meta(channels, height, width)
    x = prepare(pixels, meta)
    assert x.shape == (channels, height, width) and x.dtype == np.float32
    lo, hi = (0.0 - meta.mean) / meta.std, (1.0 - meta.mean) / meta.std
    assert x.min() >= lo - 1e-5 and x.max() <= hi + 1e-5


@pytest.mark.parametrize("channels", [1, 3])
def test_prepare_normalises_with_the_metadata(channels: int) -> None:
    meta = _meta(channels)
    pixels = np.full((30, 70, 3), 204, np.uint8)  # 0.8 in unit range, any size: resizing keeps a constant
    np.testing.assert_allclose(prepare(pixels, meta), (0.8 - meta.mean) / meta.std, rtol=1e-6)


@SETTINGS
@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30), st.integers(1, 30), st.floats(-5, 5))
def test_resize_keeps_constants_and_shapes(h: int, w: int, height: int, width: int, value: float) -> None:
    planes = np.full((2, 3, h, w), value, np.float32)
    out = resize_planes(planes, height, width)
    assert out.shape == (2, 3, height, width) and out.dtype == np.float32
    np.testing.assert_allclose(out, value, rtol=1e-5, atol=1e-5)
    assert np.array_equal(resize_planes(planes, h, w), planes)  # same size: untouched


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    serving = Engine(DynamicBatcher(max_delay=0.0))
    yield serving
    serving.batcher.close()


@pytest.mark.parametrize(
    ("shape", "dtype", "low", "high"),
    [
        ((48, 64, 3), np.uint8, 0, 255),
        ((1, 1), np.uint8, 0, 255),
        ((37, 101), np.uint16, 0, 65535),
        ((300, 120, 3), np.uint16, 0, 4095),
        ((97, 61, 1), np.int16, -1024, 3071),
        ((20, 333), np.float32, 0, 1),
    ],
)
def test_predictions_come_back_at_the_original_size(
    engine: Engine, loaded_model: LoadedModel, shape: tuple[int, ...], dtype: type[np.generic], low: int, high: int
) -> None:
    rng = np.random.default_rng(0)
    pixels = (low + rng.random(shape) * (high - low)).astype(dtype)
    prediction = engine.predict(loaded_model, pixels, PredictOptions(samples=4, seed=0, maps=MAPS))
    size = shape[:2]
    assert prediction.probability.shape == size and prediction.label_map.shape == size
    assert prediction.label_map.dtype == np.uint8
    assert sorted(prediction.maps) == sorted(m for m in MAPS if m not in ("probability", "label_map"))
    for name, plane in prediction.maps.items():
        assert plane.shape == size and plane.dtype == np.float32, name
    assert prediction.samples == 4 and np.isfinite(prediction.probability).all()


class TestKeepAspect:
    """ "pad" models: the image keeps its aspect inside the input, and maps come back cropped to it."""

    def test_content_box(self) -> None:
        from ceal.service.engine.preprocess import content_box

        assert content_box(100, 100, 96, 128, "pad") == (0, 16, 96, 96)  # square into 3:4: bars left and right
        assert content_box(50, 200, 96, 128, "pad") == (32, 0, 32, 128)  # wide: bars above and below
        assert content_box(100, 100, 96, 128, "stretch") == (0, 0, 96, 128)
        assert content_box(96, 128, 96, 128, "pad") == (0, 0, 96, 128)  # same aspect: no padding at all

    def test_pad_then_crop_round_trips(self) -> None:
        from ceal.service.engine.preprocess import crop_to_content, fit_planes

        rng = np.random.default_rng(0)
        planes = rng.random((2, 60, 60)).astype(np.float32)
        padded = fit_planes(planes, 96, 128, "pad", fill=-1.0)
        assert padded.shape == (2, 96, 128)
        assert np.all(padded[..., :16] == -1.0) and np.all(padded[..., 112:] == -1.0)
        inner = crop_to_content(padded, 60, 60, "pad")
        assert inner.shape == (2, 96, 96) and np.all(inner > -1.0)

    def test_prepare_pads_with_normalised_black(self) -> None:
        meta = ModelMetadata("m", 1, 3, 32, 64, 1, mean=0.5, std=0.25, dropout_rate=0.5, resize="pad")
        x = prepare(np.full((32, 32, 3), 255, np.uint8), meta)  # a white square into a 1:2 input
        assert x.shape == (3, 32, 64)
        np.testing.assert_allclose(x[:, :, :16], (0.0 - 0.5) / 0.25)  # black bars
        np.testing.assert_allclose(x[:, :, 16:48], (1.0 - 0.5) / 0.25)  # the image, unstretched

    def test_metadata_refuses_an_unknown_mode(self) -> None:
        from ceal.service.metadata import MetadataError

        raw = {**ModelMetadata("m", 1, 3, 32, 64, 1, 0.5, 0.25, 0.5).__dict__, "resize": "crop"}
        with pytest.raises(MetadataError, match="resize"):
            ModelMetadata.from_dict(raw)
