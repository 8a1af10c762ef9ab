"""One preprocessing contract: the same image, in every form a user has it, reaches the model the same way.

The image: 8-bit grey content `v` (40×36, for a 32×32 model, so the resize is exercised too). Its forms: an
8-bit PNG, a 16-bit PNG of v·257, a float TIFF and a NumPy array of v/255, a DICOM (16-bit, its window mapping
0..65535 onto [0, 1]) and a CT DICOM whose Rescale puts v on the soft-tissue window. Its paths: the trainer's
loader (`load_image` → `resize_pair` → x/255), the server (`Predict` on a real server; its input computed by
the very functions Predict runs) and the PACS bridge (`decode_dataset` → float pixels → `Predict`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ceal.client import Client
from ceal.pacs.decode import decode_dataset
from ceal.service.codec import decode_image_bytes
from ceal.service.engine.preprocess import prepare
from ceal.service.metadata import ModelMetadata
from ceal.trainer.data.folders import load_image, read_pixels, resize_pair
from ceal.trainer.export import export_model
from ceal.trainer.unet import UNet, UNetConfig
from tests.support.server import in_process

pytestmark = pytest.mark.slow

H, W, SIZE = 40, 36, 32
TOLERANCE = 1.0 / 255.0
SAMPLES, SEED = 4, 5


def _content() -> np.ndarray:
    """Smooth 8-bit content in 20..235 (uint8 (H, W)): not the full range, so a per-image stretch shows."""
    y, x = np.mgrid[0:H, 0:W]
    wave = 0.5 + 0.5 * np.sin(x / 5.0) * np.cos(y / 7.0)
    noise = np.random.default_rng(1).random((H, W)) * 0.2
    v = (wave * 0.8 + noise) / 1.0
    return np.rint(20 + (v - v.min()) / (v.max() - v.min()) * 215).astype(np.uint8)


def _dicom(stored: np.ndarray, **attributes: object) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(attributes)])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", str(attributes)])
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = int(stored.dtype == np.int16)
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.PixelData = stored.tobytes()
    return ds


def _dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same content as files of every kind (see the module doc)."""
    folder = tmp_path_factory.mktemp("forms")
    v = _content()
    Image.fromarray(v).save(folder / "v8.png")
    Image.fromarray(v.astype(np.uint16) * 257).save(folder / "v16.png")
    Image.fromarray((v / 255.0).astype(np.float32), mode="F").save(folder / "vf.tiff")
    np.save(folder / "vf.npy", (v / 255.0).astype(np.float32))
    window = _dicom((v.astype(np.uint16) * 257), Modality="OT", WindowCenter=32768, WindowWidth=65536)
    (folder / "window.dcm").write_bytes(_dicom_bytes(window))
    # CT: HU = v·399/255 - 160, which the soft-tissue window 40/400 (none in the file) maps back to v/255
    ct = _dicom(v.astype(np.int16), Modality="CT", RescaleSlope="1.56470588235294", RescaleIntercept=-160)
    (folder / "ct.dcm").write_bytes(_dicom_bytes(ct))
    return {p.stem if p.suffix != ".npy" else "vf_npy": p for p in folder.iterdir()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, ModelMetadata]]:
    """A tiny model exported by today's trainer (so its metadata carries the contract) on a real server."""
    torch.manual_seed(0)
    model = UNet(UNetConfig(base_filters=4, depth=2, dropout=0.5))
    with torch.no_grad():  # larger weights: an output that moves with its input
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.mul_(3.0)
    models = tmp_path_factory.mktemp("models")
    folder = export_model(model.eval(), {"train_config": {"height": SIZE, "width": SIZE}}, models, "parity")
    meta = ModelMetadata.read(folder)
    assert meta.preprocessing is not None and meta.preprocessing.height == SIZE
    with in_process(models) as running, Client(f"127.0.0.1:{running.port}") as client:
        yield client, meta


def _trainer_input(path: Path, meta: ModelMetadata) -> np.ndarray:
    assert meta.preprocessing is not None
    image = load_image(path, meta.preprocessing)
    x, _ = resize_pair(image, np.zeros(image.shape[:2], np.uint8), SIZE, SIZE)
    return ((np.moveaxis(x, 2, 0) / 255.0 - meta.mean) / meta.std).astype(np.float32)  # as train.to_tensor


def _server_input(data: bytes | np.ndarray, meta: ModelMetadata) -> np.ndarray:
    pixels = data if isinstance(data, np.ndarray) else decode_image_bytes(data, 0, dicom=meta.preprocessing)
    return prepare(pixels, meta)


def _bridge_pixels(path: Path, meta: ModelMetadata) -> np.ndarray:
    assert meta.preprocessing is not None
    return decode_dataset(pydicom.dcmread(path), params=meta.preprocessing)[0].pixels


def test_every_form_and_path_gives_the_same_model_input_and_mask(
    forms: dict[str, Path], served: tuple[Client, ModelMetadata]
) -> None:
    client, meta = served
    reference = _server_input(forms["v8"].read_bytes(), meta)  # (3, 32, 32)
    assert reference.shape == (3, SIZE, SIZE) and float(reference.std()) > 0.5
    inputs: dict[str, np.ndarray] = {}
    sent: dict[str, bytes | np.ndarray] = {}
    for name in ("v8", "v16", "window", "ct"):
        sent[f"predict:{name}"] = forms[name].read_bytes()
    sent["predict:float-array"] = read_pixels(forms["vf_npy"])
    sent["predict:float-tiff"] = read_pixels(forms["vf"])
    for name in ("window", "ct"):
        sent[f"bridge:{name}"] = _bridge_pixels(forms[name], meta)
    for key, data in sent.items():
        inputs[key] = _server_input(data, meta)
    for name in ("v8", "v16", "vf", "vf_npy", "window", "ct"):
        inputs[f"trainer:{name}"] = _trainer_input(forms[name], meta)
    # normalised units: 1/255 of an intensity is 1/(255·std) of the model input
    for key, x in inputs.items():
        diff = float(np.abs(x - reference).max()) * meta.std
        print(f"{key}: max |input - 8-bit PNG's| = {diff:.2e}")
        assert diff <= TOLERANCE, f"{key}: model input differs by {diff:.4f} (in [0, 1] units) from the 8-bit PNG"
    masks = {}
    for key, data in sent.items():
        p = client.predict(data, samples=SAMPLES, seed=SEED, maps=("label_map", "probability"))
        assert p.label_map is not None and p.probability is not None
        masks[key] = p.label_map
    first = masks["predict:v8"]
    assert 0 < first.mean() < 1  # the mask says something about the image
    for key, mask in masks.items():
        np.testing.assert_array_equal(mask, first, err_msg=f"{key}: predicted mask differs from the 8-bit PNG's")


def test_a_12_bit_png_reaches_the_model_alike_in_training_and_serving(
    tmp_path: Path, served: tuple[Client, ModelMetadata]
) -> None:
    """Before the contract: mean 0.50 in training (per-image stretch) against 0.03 in serving (÷ 65535)."""
    _, meta = served
    twelve = np.random.default_rng(2).integers(0, 4096, (SIZE, SIZE)).astype(np.uint16)
    Image.fromarray(twelve).save(tmp_path / "twelve.png")
    trained = _trainer_input(tmp_path / "twelve.png", meta) * meta.std + meta.mean
    served_unit = _server_input((tmp_path / "twelve.png").read_bytes(), meta) * meta.std + meta.mean
    assert abs(float(trained.mean()) - float(served_unit.mean())) <= TOLERANCE
    assert float(np.abs(trained - served_unit).max()) <= TOLERANCE


def test_a_ct_file_reaches_the_model_alike_from_the_bridge_and_the_server(served: tuple[Client, ModelMetadata]) -> None:
    """Before the contract, CT_small differed by up to 0.45 between the bridge and an upload to the server."""
    _, meta = served
    path = Path(str(get_testdata_file("CT_small.dcm", download=False)))
    assert meta.preprocessing is not None
    bridge = decode_dataset(pydicom.dcmread(path), params=meta.preprocessing)[0].pixels
    server = decode_image_bytes(path.read_bytes(), 0, dicom=meta.preprocessing)
    assert float(np.abs(bridge - server).max()) == 0.0
    assert float(np.abs(prepare(bridge, meta) - prepare(server, meta)).max()) == 0.0


def test_the_bridge_reads_the_served_models_contract(served: tuple[Client, ModelMetadata]) -> None:
    """ListModels carries `preprocessing`, so the bridge decodes with the model's own DICOM settings."""
    from ceal.pacs.sync import model_params

    client, meta = served
    assert model_params(client, "parity") == meta.preprocessing
