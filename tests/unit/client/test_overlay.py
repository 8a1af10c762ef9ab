"""The PNG overlays: mask as an outline, uncertainty on one absolute scale with a colour bar."""

from __future__ import annotations

import math

import numpy as np

from ceal.client.overlay import BAR_WIDTH, heat_colours, outline, overlay
from ceal.client.results import Prediction


def _prediction(label_map: np.ndarray, entropy: np.ndarray) -> Prediction:
    return Prediction("0", "m", 1, 4, 0.0, {}, 0.0, label_map=label_map, entropy=entropy.astype(np.float32))


def test_the_mask_is_drawn_as_its_outline_only() -> None:
    image = np.full((32, 32), 100, np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 1
    over, _ = overlay(image, _prediction(mask, np.zeros((32, 32))))
    factor = over.shape[0] // 32
    assert over.shape[0] >= 256 and over.shape[:2] == (32 * factor, 32 * factor)
    inside = over[16 * factor, 16 * factor]
    edge = over[8 * factor, 16 * factor]
    assert tuple(inside) == (100, 100, 100)  # the interior keeps the image's own pixels
    assert tuple(edge) == (0, 220, 255)
    assert outline(mask).sum() == 4 * 16 - 4


def test_the_same_uncertainty_looks_the_same_on_every_image() -> None:
    image = np.full((16, 16), 80, np.uint8)
    calm = np.full((16, 16), 0.05)
    busy = np.full((16, 16), 0.05)
    busy[:4] = math.log(2)  # the busy image also has maximally uncertain rows
    _, calm_img = overlay(image, _prediction(np.zeros((16, 16), np.uint8), calm))
    _, busy_img = overlay(image, _prediction(np.zeros((16, 16), np.uint8), busy))
    f = calm_img.shape[0] // 16
    # a pixel of 0.05 nats gets the same colour whether or not its image has a hotter part elsewhere
    assert np.array_equal(calm_img[12 * f, 8 * f], busy_img[12 * f, 8 * f])
    assert busy_img[f, 8 * f, 0] > calm_img[f, 8 * f, 0] + 100  # the uncertain rows are red
    assert calm_img.shape[1] == 16 * f + BAR_WIDTH  # the colour bar sits to the right


def test_heat_colours_run_from_blue_to_red_and_stay_saturated() -> None:
    ramp = heat_colours(np.linspace(0, 1, 11))
    assert np.all(np.diff(ramp[:, 0]) > 0)  # red rises from one end to the other
    assert ramp[0, 2] > ramp[0, 0] and ramp[-1, 0] > 200 > ramp[-1, 2]  # blue when calm, red when not
    assert np.all(ramp.max(axis=1) - ramp.min(axis=1) > 100)  # no pale colour that vanishes on bright skin
