"""`ceal train --pool` seeds the pool with the training set (partly labelled folders by a flag); `ceal loop`
takes the model name from the checkpoint's export and names the pool it found empty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from ceal.cli.main import main
from ceal.client import Client
from ceal.trainer.loop import LoopError, exported_name, labels_dataset, model_name_for, remember_export
from tests.support.models import synth_dataset

TINY = ["--epochs", "1", "--base-filters", "4", "--depth", "2", "--height", "32", "--width", "32", "--batch-size", "4"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """images/ with 8 images, masks/ for 6 of them (0/255)."""
    data = synth_dataset(8, seed=21, height=32, width=32)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(8):
        PILImage.fromarray(data.images[i]).save(tmp_path / "images" / f"img{i}.png")
        if i < 6:
            PILImage.fromarray(data.masks[i] * np.uint8(255)).save(tmp_path / "masks" / f"img{i}.png")
    return tmp_path


def test_train_seeds_the_pool(address: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--images", str(folder / "images"), "--masks", str(folder / "masks"), *TINY]
    code = main([*args, "--out", str(folder / "ckpt"), "--pool", "seed", "--server", address])
    err = capsys.readouterr().err
    assert code == 2 and "--allow-unlabelled" in err and "Traceback" not in err  # 2 of 8 have no mask
    code = main([*args, "--out", str(folder / "ckpt"), "--allow-unlabelled", "--pool", "seed", "--server", address])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "8 images registered, 6 masks stored" in out
    with Client(address) as client:
        stats = client.pool_stats(pool="seed")
        names = sorted(r.name for r in client.export_labels(pool="seed", include_images=False))
    assert (stats.images, stats.labelled_human) == (8, 6)
    assert names == [f"img{i}.png" for i in range(6)]


def test_train_without_images_says_so(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = folder / "empty"
    empty.mkdir()
    code = main(["train", "--images", str(empty), "--masks", str(folder / "masks"), "--out", str(folder / "c"), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "no images" in err


def test_loop_model_name_comes_from_the_export(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    with pytest.raises(LoopError, match="pass --name"):
        model_name_for(ckpt, None)
    assert model_name_for(ckpt, "skin") == "skin"
    version_dir = tmp_path / "models" / "skin" / "3"
    version_dir.mkdir(parents=True)
    remember_export(ckpt, version_dir)
    assert exported_name(ckpt) == "skin"
    assert model_name_for(ckpt, None) == "skin"


def test_loop_names_the_empty_pool(address: str) -> None:
    with Client(address) as client, pytest.raises(LoopError, match=r"pool 'ward-9' holds no human labels"):
        labels_dataset(client, 32, 32, pool="ward-9", pseudo=False)


def test_every_option_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    from ceal.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("train", "loop", "export", "predict", "pool"):
        command = sub.choices[name]  # type: ignore[index]
        nested = [a for a in command._actions if a.dest == "pool_command"]
        parsers = list(nested[0].choices.values()) if nested else [command]  # type: ignore[union-attr]
        for p in parsers:
            for action in p._actions:
                if action.option_strings and action.dest != "help":
                    assert action.help, f"ceal {name} {action.option_strings[0]} has no help text"


def test_resize_pair_keeps_the_aspect() -> None:
    from ceal.trainer.data.folders import resize_pair

    image = np.full((40, 40, 3), 200, np.uint8)
    mask = np.ones((40, 40), np.uint8)
    x, y = resize_pair(image, mask, 32, 64, "pad")
    assert x.shape == (32, 64, 3) and y.shape == (32, 64)
    assert np.all(x[:, :16] == 0) and np.all(x[:, 16:48] == 200) and np.all(x[:, 48:] == 0)
    assert int(y.sum()) == 32 * 32  # the mask pads with background, its square stays square
    stretched, _ = resize_pair(image, mask, 32, 64)
    assert np.all(stretched == 200)


def test_train_records_pad_and_the_server_serves_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Square images, a 1:2 training size: trained padded, exported `resize: pad`, served at the image's size."""
    from ceal.service.metadata import ModelMetadata
    from ceal.trainer.unet import load_checkpoint
    from tests.support.server import in_process

    data = synth_dataset(6, seed=3, height=40, width=40)
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(6):
        PILImage.fromarray(data.images[i]).save(tmp_path / "images" / f"s{i}.png")
        PILImage.fromarray(data.masks[i]).save(tmp_path / "masks" / f"s{i}.png")
    ckpt, models = tmp_path / "ckpt", tmp_path / "models"
    size = ["--height", "32", "--width", "64"]  # after TINY's 32 x 32: the later flags win
    code = main(
        [
            "train",
            "--images",
            str(tmp_path / "images"),
            "--masks",
            str(tmp_path / "masks"),
            "--out",
            str(ckpt),
            *TINY,
            *size,
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert load_checkpoint(ckpt)[1]["train_config"]["resize"] == "pad"  # type: ignore[index]
    assert main(["export", str(ckpt), "--models", str(models), "--name", "sq"]) == 0
    assert ModelMetadata.read(models / "sq" / "1").resize == "pad"
    assert exported_name(ckpt) == "sq"
    with in_process(models) as running, Client(f"127.0.0.1:{running.port}") as client:
        p = client.predict(data.images[0], samples=4, maps=("probability", "entropy"))
    assert p.probability is not None and p.probability.shape == (40, 40)
    assert p.entropy is not None and p.entropy.shape == (40, 40)
