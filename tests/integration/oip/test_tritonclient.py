"""tritonclient[grpc], used as a Triton user uses it, against a real ceal server: same mask and entropy as the SDK.

The Triton side runs in its own process and venv (tritonclient's protobuf pin; see conftest.py), so nothing of
ceal is on its path: what it gets, it got through `inference.GRPCInferenceService` alone.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ceal.client import Client
from tests.support.models import synth_dataset

HERE = Path(__file__).resolve().parent


def _triton_infer(python: Path, address: str, image: np.ndarray, tmp_path: Path, *extra: str) -> dict[str, object]:
    np.save(tmp_path / "image.npy", image)
    out = tmp_path / "out.npz"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(python), str(HERE / "triton_user.py"), address, str(tmp_path / "image.npy"), str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as saved:
        return {name: saved[name] for name in saved.files}


def _image_and_threshold(address: str, dtype: str = "uint8") -> tuple[np.ndarray, float]:
    """A (60, 80, 3) synthetic lesion (not the model's 48×64 input size) and a threshold that splits its
    mean probability about in half, so the mask has both classes and equal masks mean something (the tiny
    test model is not confident enough for 0.5)."""
    image = synth_dataset(1, seed=0, height=60, width=80).images[0].astype(dtype)
    with Client(address) as client:
        probability = client.predict(image, samples=8, seed=3, maps=("probability",)).probability
    assert probability is not None
    return image, float(np.median(probability))


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_tritonclient_infer_matches_the_sdk_predict(
    address: str, triton_python: Path, tmp_path: Path, dtype: str
) -> None:
    image, threshold = _image_and_threshold(address, dtype)
    got = _triton_infer(
        triton_python, address, image, tmp_path, "--samples", "8", "--seed", "3", "--threshold", repr(threshold)
    )
    with Client(address) as client:
        want = client.predict(
            image,
            samples=8,
            seed=3,
            threshold=threshold,
            maps=("probability", "label_map", "entropy", "mutual_information", "variance"),
        )
    label_map, entropy = got["label_map"], got["entropy"]
    assert isinstance(label_map, np.ndarray) and isinstance(entropy, np.ndarray)
    assert label_map.dtype == np.uint8 and label_map.shape == (60, 80)
    assert want.label_map is not None and want.entropy is not None and want.probability is not None
    assert 0.2 < want.label_map.mean() < 0.8  # both classes in the mask
    np.testing.assert_array_equal(label_map, want.label_map)
    np.testing.assert_array_equal(entropy, want.entropy)
    np.testing.assert_array_equal(got["probability"], want.probability)
    np.testing.assert_array_equal(got["mutual_information"], want.mutual_information)
    np.testing.assert_array_equal(got["variance"], want.variance)
    score = got["score"]
    assert isinstance(score, np.ndarray) and score.dtype == np.float64 and score.shape == (1,)
    assert float(score[0]) == pytest.approx(want.score, rel=1e-12)

    response = json.loads(str(got["response"]))
    assert response["model_name"] == "lesion" and response["model_version"] == "1" and response["id"] == "triton-user-1"
    assert response["parameters"]["samples"]["int64_param"] == "8"
    meta = json.loads(str(got["model_metadata"]))
    assert meta["platform"] == "onnxruntime_onnx" and meta["versions"] == ["1"]
    assert [t["name"] for t in meta["inputs"]] == ["image"]
    assert {t["name"] for t in meta["outputs"]} == {
        "probability",
        "label_map",
        "entropy",
        "mutual_information",
        "variance",
        "score",
    }
    assert json.loads(str(got["server_metadata"]))["name"] == "ceal"


def test_another_seed_gives_other_samples(address: str, triton_python: Path, tmp_path: Path) -> None:
    image, _threshold = _image_and_threshold(address)
    a = _triton_infer(triton_python, address, image, tmp_path, "--samples", "6", "--seed", "3")
    b = _triton_infer(triton_python, address, image, tmp_path, "--samples", "6", "--seed", "4")
    assert not np.array_equal(a["entropy"], b["entropy"])
