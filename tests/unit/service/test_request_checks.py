"""The checks every request and every image file get before any work: `check_fields` (enum values known,
floats finite, by descriptor, naming the field's path) and `image_formats` (format sniffed from the bytes,
DICOM scaling attributes finite and in range)."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from ceal.service import image_formats
from ceal.service.errors import InvalidInput
from ceal.service.servicers.fields import check_fields
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import segmentation_pb2 as seg_pb


def test_unknown_enum_values_are_named_with_their_path_and_the_choices() -> None:
    request = al_pb.RegisterImagesRequest()
    request.images.add().image.encoded.format = 9  # type: ignore[assignment]
    with pytest.raises(InvalidInput, match=r"images\[0\]\.image\.encoded\.format: ImageFormat 9 is not known"):
        check_fields(request)
    options = seg_pb.PredictOptions(maps=[seg_pb.MAP_KIND_ENTROPY, 42])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match=r"maps\[1\]: MapKind 42 is not known; use one of MAP_KIND_UNSPECIFIED"):
        check_fields(seg_pb.PredictRequest(options=options))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused_naming_the_field(value: float) -> None:
    request = seg_pb.PredictRequest(options=seg_pb.PredictOptions(top_k_percent=value))
    with pytest.raises(InvalidInput, match=r"options\.top_k_percent is -?(nan|inf); send a finite number"):
        check_fields(request)


def test_valid_requests_pass_unchanged() -> None:
    request = al_pb.GetQueryListRequest(k=5, level=al_pb.QUERY_LEVEL_SERIES, budget_seconds=60.0)
    before = request.SerializeToString()
    check_fields(request)
    check_fields(al_pb.SubmitLabelRequest(seconds_spent=-1.0))  # negative is the handler's business
    assert request.SerializeToString() == before


def _pil(fmt: str) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (4, 4)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("PNG", "PNG"), ("JPEG", "JPEG"), ("BMP", "BMP"), ("GIF", "GIF"), ("TIFF", "TIFF"), ("WEBP", "WebP")],
)
def test_sniff_names_the_format_of_the_bytes(fmt: str, name: str) -> None:
    assert image_formats.sniff(_pil(fmt)) == name


def test_sniff_knows_dicom_and_says_none_for_unknown_bytes() -> None:
    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None
    assert image_formats.sniff(Path(path).read_bytes()) == "DICOM"
    assert image_formats.sniff(b"hello world, not an image") is None


def _ct(**attributes: object) -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(
    "attributes",
    [
        {"RescaleSlope": "NaN"},
        {"RescaleSlope": "1e308"},
        {"RescaleSlope": "0"},
        {"RescaleIntercept": "-1e12"},
        {"WindowCenter": "inf", "WindowWidth": "400"},
        {"WindowCenter": "40", "WindowWidth": "-5"},
        {"WindowCenter": ["40", "nan"], "WindowWidth": ["400", "400"]},
    ],
    ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()),
)
def test_dicom_scaling_attributes_out_of_range_are_refused(attributes: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match=r"DICOM \w+ is .*; it must be a finite number"):
        image_formats.check_dicom_attributes(_ct(**attributes))


def test_dicom_scaling_attributes_in_range_pass() -> None:
    image_formats.check_dicom_attributes(_ct(RescaleSlope="-2.5", RescaleIntercept="-1024"))
    image_formats.check_dicom_attributes(_ct(WindowCenter=["40", "400"], WindowWidth=["400", "2000"]))
    image_formats.check_transfer_syntax(_ct())  # uncompressed: nothing to check


def test_declared_format_must_match_the_bytes() -> None:
    image_formats.check_declared_format(_pil("PNG"), "PNG")
    with pytest.raises(InvalidInput, match="format is JPEG but the bytes are PNG data"):
        image_formats.check_declared_format(_pil("PNG"), "JPEG")
    with pytest.raises(InvalidInput, match="format is PNG but the bytes are not a recognisable image file"):
        image_formats.check_declared_format(b"\x00" * 64, "PNG")
