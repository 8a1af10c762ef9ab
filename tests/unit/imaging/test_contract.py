"""ceal.imaging: the preprocessing contract's intensity rules, resize, parameters and DICOM VOI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.pixels.processing import apply_windowing
from pydicom.uid import ExplicitVRLittleEndian

from ceal.imaging import PreprocessParams, resize_planes, to_channels, to_model_input, to_unit
from ceal.imaging.dicom import DicomPixelError, dicom_frames, window
from ceal.service.metadata import MetadataError, ModelMetadata

P = PreprocessParams()


def test_eight_and_sixteen_bit_of_the_same_content_are_the_same_unit_values() -> None:
    v = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(to_unit(v.astype(np.uint16) * 257, P), to_unit(v, P), atol=1e-7)
    np.testing.assert_allclose(to_unit((v / 255).astype(np.float32), P), to_unit(v, P), atol=1e-7)


def test_twelve_bit_data_uses_the_declared_range_not_a_per_image_stretch() -> None:
    twelve = np.array([0, 1024, 4095], np.uint16)
    assert to_unit(twelve, P).tolist() == pytest.approx([0.0, 1024 / 65535, 4095 / 65535])
    assert to_unit(twelve, P.replace(uint16_max=4095)).tolist() == pytest.approx([0.0, 1024 / 4095, 1.0])
    assert to_unit(twelve[1:], P.replace(uint16="minmax")).tolist() == [0.0, 1.0]


def test_signed_floats_and_bools() -> None:
    assert to_unit(np.array([-1000, 0, 1000], np.int16), P).tolist() == pytest.approx([0.0, 0.5, 1.0])
    full = to_unit(np.array([-32768, 32767], np.int16), P.replace(integer="full"))
    assert full.tolist() == pytest.approx([0.0, 1.0])
    assert to_unit(np.array([-0.5, 0.25, 1.5]), P).tolist() == [0.0, 0.25, 1.0]
    assert to_unit(np.array([2.0, 4.0]), P.replace(floating="minmax")).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="not an image"):
        to_unit(np.zeros((2, 2), bool), P)


def test_channels_and_alpha() -> None:
    grey = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    assert to_channels(grey, 3).shape == (4, 5, 3)
    rgba = np.random.default_rng(1).random((4, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(to_channels(rgba, 3), rgba[..., :3])
    np.testing.assert_allclose(to_channels(rgba, 1)[..., 0], rgba[..., :3] @ [0.299, 0.587, 0.114], rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 60), st.integers(2, 60), st.integers(1, 70), st.integers(1, 70))
def test_resize_is_pils_antialiased_bilinear(h: int, w: int, out_h: int, out_w: int) -> None:
    plane = np.random.default_rng(h * w).random((h, w)).astype(np.float32)
    pil = np.asarray(Image.fromarray(plane, mode="F").resize((out_w, out_h), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(resize_planes(plane, out_h, out_w), pil, atol=1e-5)


def test_model_input_shape_and_normalisation() -> None:
    params = P.replace(channels=3, height=8, width=6, mean=0.25, std=0.5)
    x = to_model_input(np.full((16, 12), 255, np.uint8), params)
    assert x.shape == (3, 8, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x, (1.0 - 0.25) / 0.5)


def test_params_round_trip_and_refuse_what_they_do_not_know() -> None:
    params = P.replace(uint16_max=4095, ct_window=(50.0, 350.0))
    assert PreprocessParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params
    with pytest.raises(ValueError, match="unknown fields"):
        PreprocessParams.from_dict({"gamma": 2.2})
    with pytest.raises(ValueError, match="std must be positive"):
        PreprocessParams(std=0.0)
    with pytest.raises(ValueError, match="uint16 must be"):
        PreprocessParams.from_dict({"uint16": "sbit"})


def _meta(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "name": "m",
        "version": 1,
        "input_channels": 3,
        "input_height": 8,
        "input_width": 6,
        "num_classes": 1,
        "mean": 0.5,
        "std": 0.25,
        "dropout_rate": 0.5,
        "validation_dice": 0.8,
    }
    return {**raw, **changes}


def test_metadata_carries_the_contract_and_old_metadata_has_none() -> None:
    assert ModelMetadata.from_dict(_meta()).preprocessing is None  # exported before the contract
    meta = ModelMetadata.with_contract(**_meta(), preprocessing={"uint16_max": 4095})  # type: ignore[arg-type]
    assert meta.preprocessing is not None and meta.preprocessing.uint16_max == 4095
    back = ModelMetadata.from_dict(json.loads(meta.to_json()))
    assert back == meta and "preprocessing" in json.loads(meta.to_json())
    assert "preprocessing" not in json.loads(ModelMetadata.from_dict(_meta()).to_json())
    wrong = {**P.to_dict(), "height": 99}
    with pytest.raises(MetadataError, match="disagrees"):
        ModelMetadata.from_dict(_meta(preprocessing=wrong))
    with pytest.raises(MetadataError, match="unknown fields"):
        ModelMetadata.from_dict(_meta(preprocessing={"gamma": 1}))


def _grey(values: np.ndarray, **attributes: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = values.astype(np.uint16).tobytes()
    for key, value in attributes.items():
        setattr(ds, key, value)
    return ds


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_window_functions_are_pydicoms_mapped_onto_unit_range(function: str) -> None:
    values = np.linspace(-200, 1200, 301)
    ds = _grey(np.zeros((1, 1)), WindowCenter=400, WindowWidth=700, VOILUTFunction=function)
    reference = apply_windowing(values, ds) / 65535.0  # pydicom's output spans 0..2^16-1 for 16-bit unsigned
    np.testing.assert_allclose(window(values, 400, 700, function), reference, atol=1e-6)


def test_dicom_voi_lut_sequence_monochrome1_and_defaults() -> None:
    stored = np.arange(16, dtype=np.uint16).reshape(4, 4) * 100
    lut = Dataset()
    lut.LUTDescriptor = [16, 0, 8]
    lut.LUTData = [int(i * 255 / 15) for i in range(16)]  # a 16-entry LUT over 0..15, 8-bit output
    ds = _grey(stored, VOILUTSequence=[lut], Modality="MR")
    ds.PixelData = (stored // 100).astype(np.uint16).tobytes()
    frames, source = dicom_frames(ds, P)
    assert source == "VOI LUT Sequence"
    np.testing.assert_allclose(frames[0], np.array(lut.LUTData).reshape(4, 4) / 255.0, atol=1e-6)
    inverted = _grey(stored, Modality="MR", PhotometricInterpretation="MONOCHROME1")
    np.testing.assert_allclose(dicom_frames(inverted, P)[0], 1.0 - dicom_frames(_grey(stored, Modality="MR"), P)[0])
    ct = _grey(stored, Modality="CT", RescaleIntercept=-1024, RescaleSlope=1)
    frames, source = dicom_frames(ct, P)
    assert source.startswith("CT default")
    np.testing.assert_allclose(frames, window(stored.astype(float) - 1024, 40, 400)[None])
    ignored = dicom_frames(
        _grey(stored, Modality="CT", WindowCenter=0, WindowWidth=10), P.replace(dicom_use_file_voi=False)
    )
    assert ignored[1].startswith("CT default")


def test_dicom_errors_name_what_to_fix() -> None:
    with pytest.raises(DicomPixelError, match="below 1"):
        window(np.zeros(3), 0, 0.5)
    with pytest.raises(DicomPixelError, match="not supported"):
        dicom_frames(_grey(np.zeros((2, 2)), PhotometricInterpretation="PALETTE COLOR"), P)
    bad = _grey(np.zeros((2, 2)), RescaleSlope="1e400")
    with pytest.raises(DicomPixelError):
        dicom_frames(bad, P)


def test_pad_keeps_the_aspect_as_the_pre_contract_server_pads() -> None:
    from ceal.service.engine.preprocess import legacy_prepare

    pixels = np.random.default_rng(3).integers(0, 256, (30, 90, 3), dtype=np.uint8)
    meta = ModelMetadata.with_contract(**_meta(input_height=32, input_width=48, resize="pad"))  # type: ignore[arg-type]
    assert meta.preprocessing is not None and meta.preprocessing.resize == "pad"
    x = to_model_input(pixels, meta.preprocessing)
    np.testing.assert_allclose(x, legacy_prepare(pixels, meta), atol=1e-5)
    assert np.all(x[:, :8] == (0.0 - meta.mean) / meta.std)  # black bands above and below the 16-row content
