"""A model exported before the preprocessing contract (no `preprocessing` in its metadata) still serves, with the
outputs that ceal gave before it (recorded by tests/fixtures/legacy_model/make_fixture.py on that commit)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from ceal.client import Client
from ceal.service.engine import preprocess
from ceal.service.metadata import ModelMetadata
from tests.fixtures.legacy_model.make_fixture import HERE, SAMPLES, SEED, inputs
from tests.support.server import in_process

pytestmark = pytest.mark.slow


def test_a_model_exported_before_the_contract_serves_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models = tmp_path / "models"
    shutil.copytree(HERE / "models", models)
    assert "preprocessing" not in (models / "legacy" / "1" / "metadata.json").read_text()  # the old shape
    assert ModelMetadata.read(models / "legacy" / "1").preprocessing is None
    expected = np.load(HERE / "expected.npz")
    caplog.set_level(logging.WARNING, logger="ceal.service.engine.preprocess")
    preprocess._legacy_said.discard(("legacy", 1))  # said once per process: another test may have served it
    with in_process(models) as running, Client(f"127.0.0.1:{running.port}") as client:
        for key, image in inputs().items():
            for _ in range(2):
                p = client.predict(image, samples=SAMPLES, seed=SEED, maps=("probability", "label_map", "entropy"))
                assert p.probability is not None and p.label_map is not None and p.entropy is not None
                np.testing.assert_allclose(p.probability, expected[f"{key}_probability"], atol=1e-5, err_msg=key)
                np.testing.assert_allclose(p.entropy, expected[f"{key}_entropy"], atol=1e-5, err_msg=key)
                np.testing.assert_array_equal(p.label_map, expected[f"{key}_label_map"], err_msg=key)
                assert p.score == pytest.approx(float(expected[f"{key}_score"]), rel=1e-4, abs=1e-7)
    said = [r for r in caplog.records if "before the preprocessing contract" in r.getMessage()]
    assert len(said) == 1 and "legacy/1" in said[0].getMessage()  # said once, naming the model
