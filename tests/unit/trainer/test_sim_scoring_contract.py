"""The simulation serves its models with the preprocessing contract, preparing what the pre-contract path did."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ceal.service.engine.preprocess import prepare
from ceal.trainer.simulate.config import SimConfig
from ceal.trainer.simulate.scoring import serve
from ceal.trainer.unet import UNet, UNetConfig


def test_served_models_carry_the_contract_and_prepare_as_before(caplog: pytest.LogCaptureFixture) -> None:
    cfg = SimConfig(height=16, width=24, depth=2)
    rng = np.random.default_rng(0)
    images = (rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), np.full((16, 24, 3), 7, np.uint8))
    with caplog.at_level("WARNING"):
        loaded = serve(UNet(UNetConfig(base_filters=4, depth=2)), cfg, version=1)
        prepared = [prepare(image, loaded.meta) for image in images]
    assert "pre-contract" not in caplog.text  # the simulation's rounds no longer log the legacy warning
    assert loaded.meta.preprocessing is not None
    assert (loaded.meta.preprocessing.height, loaded.meta.preprocessing.width) == (16, 24)
    legacy = dataclasses.replace(loaded.meta, preprocessing=None)  # the path every earlier run took
    for image, now in zip(images, prepared, strict=True):
        np.testing.assert_array_equal(now, prepare(image, legacy))
