"""Semi-supervised training: which pixels and images a pseudo-label covers, and what the record says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ceal.trainer.dataset import load_unlabelled
from ceal.trainer.semi import SemiConfig, Unlabelled, _targets
from ceal.trainer.train import Dataset, TrainConfig, train_and_save
from ceal.trainer.unet import UNet, UNetConfig, load_checkpoint
from tests.support.determinism import deterministic_torch


def _logits(p: np.ndarray) -> torch.Tensor:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return torch.from_numpy(np.log(p / (1 - p))).float()[:, None]


def test_fixmatch_keeps_confident_pixels_ceal_whole_confident_images() -> None:
    p = np.full((3, 2, 2), 0.5)
    p[0] = [[0.99, 0.01], [0.6, 0.97]]  # three confident pixels, one not
    p[1] = [[0.99, 0.99], [0.98, 0.01]]  # all confident, foreground present
    p[2] = [[0.01, 0.02], [0.01, 0.03]]  # all confident, but no foreground
    target, mask = _targets(_logits(p), SemiConfig("fixmatch", 0.95))
    assert target[0].tolist() == [[1, 0], [1, 1]] and mask[0].tolist() == [[1, 1], [0, 1]]
    _, image_mask = _targets(_logits(p), SemiConfig("ceal", 0.95))
    # image 0: mean confidence (0.99+0.99+0.6+0.97)/4 < 0.95; image 2: confident but empty (CEAL's gate)
    assert image_mask.sum((1, 2)).tolist() == [0.0, 4.0, 0.0]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="fixmatch, ceal"):
        SemiConfig("meanteacher")
    with pytest.raises(ValueError, match="threshold"):
        SemiConfig("fixmatch", threshold=0.3)


def _data(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 16, 16), np.uint8)
    for i in range(n):
        y, x = rng.integers(2, 8, 2)
        masks[i, y : y + 6, x : x + 6] = 1
    images = np.repeat((masks * 200 + 20)[..., None], 3, axis=3).astype(np.uint8)
    return Dataset([f"img{i}" for i in range(n)], images, masks)


def test_training_records_which_unlabelled_images_contributed(tmp_path: Path) -> None:
    labelled, pool = _data(8, 0), _data(6, 1)
    cfg = TrainConfig(
        height=16,
        width=16,
        epochs=4,
        batch_size=4,
        learning_rate=3e-3,
        semi="fixmatch",
        semi_threshold=0.6,
        augmentation="standard",
    )

    def train(out: Path) -> dict[str, object]:
        with deterministic_torch(0):
            unet = UNetConfig(base_filters=4, depth=2)
            return train_and_save(labelled, None, out, cfg, unet, progress=False, unlabelled=(pool.ids, pool.images))

    record = train(tmp_path / "a")
    semi = record["semi"]
    assert isinstance(semi, dict) and semi["mode"] == "fixmatch" and semi["images"] == 6
    weights = semi["contributed"]
    assert weights and set(weights) <= set(pool.ids) and all(0 < w <= 1 for w in weights.values())
    assert record["augmentation_params"]["preset"] == "standard"  # type: ignore[index]
    _, saved = load_checkpoint(tmp_path / "a")
    assert saved["train_config"]["semi"] == "fixmatch" and saved["semi"] == semi  # type: ignore[index]
    again = train(tmp_path / "b")  # the same seed: the same draws, weights and losses
    assert again["semi"] == semi and again["history"] == record["history"]


def test_unlabelled_loss_has_a_gradient_and_tallies_draws() -> None:
    pool = _data(5, 2)
    torch.manual_seed(0)
    model = UNet(UNetConfig(base_filters=4, depth=2))
    model.train()
    unlabelled = Unlabelled(pool.ids, pool.images, SemiConfig("fixmatch", 0.5), seed=3)
    loss = unlabelled.loss(model, 4, 0.5, 0.25)
    loss.backward()  # type: ignore[no-untyped-call]
    assert loss.item() > 0 and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert unlabelled.draws.sum() == 4 and unlabelled.record()["drawn"] == (unlabelled.draws > 0).sum()


def test_load_unlabelled_takes_the_images_without_a_mask(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((20, 30, 3), 100, np.uint8)).save(tmp_path / "images" / f"{name}.png")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "masks" / "b.png")
    ids, images = load_unlabelled(tmp_path / "images", tmp_path / "masks", 16, 16, progress=False)
    assert ids == ["a", "c"] and images.shape == (2, 16, 16, 3)
    ids, _ = load_unlabelled(tmp_path / "images", None, 16, 16, exclude={"a"}, progress=False)
    assert ids == ["b", "c"]


def test_loop_and_trainer_read_the_pool_folder_minus_the_labelled(tmp_path: Path) -> None:
    from ceal.trainer.loop import LoopError, unlabelled_pool

    for name in ("a", "b", "c"):
        Image.fromarray(np.full((20, 30, 3), 100, np.uint8)).save(tmp_path / f"{name}.png")
    assert unlabelled_pool(TrainConfig(height=16, width=16), tmp_path, {"a"}, 3) is None  # semi off
    semi = TrainConfig(height=16, width=16, semi="ceal")
    found = unlabelled_pool(semi, tmp_path, {"a"}, 3)
    assert found is not None and found[0] == ["b", "c"] and found[1].shape == (2, 16, 16, 3)
    with pytest.raises(LoopError, match="needs --unlabelled"):
        unlabelled_pool(semi, None, set(), 3)


def test_learning_flags_keep_the_checkpoints_settings_unless_given() -> None:
    import argparse

    from ceal.trainer.learning_cli import add_learning_arguments, learning_overrides

    fine_tune = argparse.ArgumentParser()
    add_learning_arguments(fine_tune, unlabelled_help="x", inherit=True)
    assert learning_overrides(fine_tune.parse_args([])) == {}
    assert learning_overrides(fine_tune.parse_args(["--semi", "off", "--augmentation", "standard"])) == {
        "semi": "",
        "augmentation": "standard",
    }
    fresh = argparse.ArgumentParser()
    add_learning_arguments(fresh, unlabelled_help="x")
    assert learning_overrides(fresh.parse_args([])) == {
        "augmentation": "flips",
        "semi": "",
        "semi_threshold": 0.95,
        "semi_weight": 1.0,
    }
