"""`ceal data synth`, `ceal train`, `ceal export`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from ceal.trainer.placements import PLACEMENTS

if TYPE_CHECKING:
    from ceal.trainer.quantize import Int8Converter

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _parser(sub: Sub, name: str, help_text: str) -> argparse.ArgumentParser:
    from ceal.client.connect import DefaultsHelpFormatter

    return sub.add_parser(name, help=help_text, formatter_class=DefaultsHelpFormatter)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register_data(sub: Sub) -> None:
    p = sub.add_parser("data", help="datasets: synthesise a lesion or nuclei set in the ISIC 2017 layout")
    dsub = p.add_subparsers(dest="data_command", required=True)
    s = _parser(dsub, "synth", "write a synthetic data set (ISIC 2017 layout): dermoscopy-like lesions or nuclei")
    s.add_argument(
        "--family",
        choices=["lesion", "nuclei"],
        default="lesion",
        help="lesion: dermoscopy-like RGB lesions; nuclei: grayscale fluorescence-like cell nuclei",
    )
    s.add_argument("--out", type=Path, required=True, help="output folder (images/, masks/, cases.csv)")
    s.add_argument("--n", type=int, default=200, help="number of images")
    s.add_argument("--seed", type=int, default=0, help="random seed (the same seed writes the same images)")
    s.add_argument("--height", type=int, default=192, help="image height in pixels")
    s.add_argument("--width", type=int, default=256, help="image width in pixels")
    s.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    from ceal.trainer.data.families import write_family

    ids = write_family(args.family, args.out, args.n, args.seed, args.height, args.width, progress=True)
    print(f"wrote {len(ids)} images to {args.out}/images and masks to {args.out}/masks")
    return 0


def register_train(sub: Sub) -> None:
    from ceal.client.connect import add_connection_arguments
    from ceal.trainer.learning_cli import add_learning_arguments

    p = _parser(sub, "train", "train a U-Net with Monte-Carlo dropout on image/mask folders")
    p.add_argument("--images", type=Path, required=True, help="image folder (PNG/JPEG/BMP/TIFF; ISIC 2017 layout too)")
    p.add_argument("--masks", type=Path, required=True, help="mask folder: X.png or X_segmentation.png for image X")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    p.add_argument("--init", type=Path, help="fine-tune from this checkpoint instead of starting fresh")
    p.add_argument(
        "--allow-unlabelled",
        action="store_true",
        help="train on the images that have a mask and leave the others out (with --pool they still enter the pool)",
    )
    p.add_argument("--height", type=int, default=96, help="training height (multiple of 2**depth)")
    p.add_argument("--width", type=int, default=128, help="training width (multiple of 2**depth)")
    p.add_argument(
        "--resize",
        choices=["pad", "stretch"],
        default="pad",
        help="pad: keep each image's aspect (fit, centre, pad); stretch: resize to --height x --width. "
        "Recorded in the model, so the server resizes the same way",
    )
    p.add_argument("--epochs", type=int, default=20, help="passes over the training images")
    p.add_argument("--batch-size", type=int, default=8, help="images per optimiser step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of images held out for validation Dice")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and augmentation")
    p.add_argument("--base-filters", type=int, default=16, help="filters of the first U-Net level (doubling per level)")
    p.add_argument("--depth", type=int, default=4, help="U-Net levels (downsamplings)")
    p.add_argument("--dropout", type=float, default=0.5, help="Monte-Carlo dropout rate")
    p.add_argument(
        "--dropout-placement",
        default="bottleneck",
        choices=PLACEMENTS,
        help="where the dropout layers sit (last_decoder: only after the last decoder block(s), a cheap suffix)",
    )
    p.add_argument(
        "--last-decoder-blocks", type=int, default=1, help="with last_decoder: how many of the last decoder blocks"
    )
    p.add_argument("--num-classes", type=int, default=1, help="1 = sigmoid (binary); C >= 2 = softmax")
    p.add_argument(
        "--uint16-max",
        type=int,
        default=65535,
        help="16-bit images are divided by this (4095 for 12-bit data); recorded in the model, served the same",
    )
    add_learning_arguments(p, unlabelled_help="a folder of them (default: the images in --images without a mask)")
    pool = p.add_argument_group("pool", "put the training set into a server's pool, so `ceal loop` trains on it too")
    pool.add_argument("--pool", help="register every image (by file name) and its mask as a human label in this pool")
    pool.add_argument("--annotator", default="seed", help="annotator recorded with the imported masks")
    add_connection_arguments(p)
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    import sys

    import torch

    from ceal.trainer.data.folders import DatasetError, split_ids
    from ceal.trainer.dataset import load_folder, load_unlabelled
    from ceal.trainer.learning_cli import learning_overrides
    from ceal.trainer.train import TrainConfig, train_and_save
    from ceal.trainer.unet import UNetConfig, load_checkpoint

    _logging()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = TrainConfig(
        height=args.height,
        width=args.width,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        resize=args.resize,
        preprocessing={"uint16_max": args.uint16_max} if args.uint16_max != 65535 else {},
        **learning_overrides(args),
    )
    unlabelled = None
    try:
        data = load_folder(
            args.images,
            args.masks,
            cfg.height,
            cfg.width,
            allow_unlabelled=args.allow_unlabelled,
            resize=cfg.resize,
            params=cfg.params(),
        )
        if cfg.resize == "stretch":
            _warn_if_squashed(args.images, cfg.height, cfg.width)
        if cfg.semi:
            folder, masks = (args.unlabelled, None) if args.unlabelled else (args.images, args.masks)
            unlabelled = load_unlabelled(folder, masks, cfg.height, cfg.width, resize=cfg.resize, params=cfg.params())
    except DatasetError as exc:
        print(f"ceal train: {exc}", file=sys.stderr)
        return 2
    train_ids, val_ids = split_ids(data.ids, args.val_fraction, args.seed)
    index = {image_id: i for i, image_id in enumerate(data.ids)}
    train = data.subset([index[i] for i in train_ids])
    val = data.subset([index[i] for i in val_ids])
    init = load_checkpoint(args.init)[0] if args.init else None
    unet = UNetConfig(
        in_channels=3,
        num_classes=args.num_classes,
        base_filters=args.base_filters,
        depth=args.depth,
        dropout=args.dropout,
        dropout_placement=args.dropout_placement,
        last_decoder_blocks=args.last_decoder_blocks,
    )
    record = train_and_save(train, val, args.out, cfg, unet, init=init, unlabelled=unlabelled)
    print(
        f"checkpoint {args.out}: {len(train.ids)} train / {len(val.ids)} val images, "
        f"validation Dice {record['validation_dice']:.3f}"
    )
    per_class = record.get("validation_per_class") or {}
    assert isinstance(per_class, dict)
    for name, scores in per_class.items():
        print(f"  {name}: Dice {scores['dice']:.3f}, HD95 {scores['hd95']:.1f} px over {scores['images']} image(s)")
    if args.pool:
        return _seed_pool(args)
    return 0


def _warn_if_squashed(images: Path, height: int, width: int) -> None:
    """Say so when the images' shape differs clearly from the training size (they are resized to it)."""
    from PIL import Image

    from ceal.trainer.data.folders import IMAGE_SUFFIXES

    first = next((p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES), None)
    if first is None:
        return
    try:
        with Image.open(first) as img:
            w, h = img.size
    except OSError:  # a .npy or .dcm image (PIL does not read those): no warning
        return
    if abs((w / h) / (width / height) - 1) > 0.1:
        logging.getLogger("ceal.train").warning(
            "images are %d×%d (aspect %.2f) but train at %d×%d (aspect %.2f): they are stretched to fit; "
            "pass --height/--width of the same aspect (multiples of 2**depth) to keep their shape",
            w,
            h,
            w / h,
            width,
            height,
            width / height,
        )


def _seed_pool(args: argparse.Namespace) -> int:
    """`ceal train --pool`: the training images and masks into the server's pool, as `ceal pool import`."""
    import sys

    from ceal.client import CealError, Client
    from ceal.client.connect import client_options
    from ceal.client.files import FolderError
    from ceal.client.pool_cli import import_folder

    try:
        with Client(**client_options(args)) as client:
            registered, labelled = import_folder(client, args.images, args.masks, args.pool, args.annotator)
    except (CealError, FolderError, ValueError) as exc:
        print(f"ceal train: the checkpoint is saved, but the pool could not be seeded: {exc}", file=sys.stderr)
        return 1
    print(f"pool {args.pool!r}: {registered} images registered, {labelled} masks stored as human labels")
    return 0


def register_export(sub: Sub) -> None:
    p = _parser(sub, "export", "export a checkpoint to ONNX with dropout live (models/<name>/<version>/)")
    p.add_argument("checkpoint", type=Path, help="checkpoint folder written by `ceal train` or `ceal loop`")
    p.add_argument("--models", type=Path, required=True, help="models folder the server watches")
    p.add_argument("--name", default="lesion", help="model name")
    q = p.add_argument_group("int8", "static int8 quantisation, refused unless it ranks and segments like fp32")
    q.add_argument("--int8", action="store_true", help="export an int8 (QDQ) model; needs --images and --masks")
    q.add_argument("--images", type=Path, help="the training image folder (calibration and validation)")
    q.add_argument("--masks", type=Path, help="the training mask folder")
    q.add_argument("--val-fraction", type=float, default=0.2, help="as given to `ceal train` (same split)")
    q.add_argument("--seed", type=int, default=0, help="as given to `ceal train` (same split); also the gate's")
    q.add_argument("--calibration", type=int, default=32, help="training images to calibrate on")
    q.add_argument("--gate-samples", type=int, default=20, help="Monte-Carlo samples T of the fidelity gate")
    p.set_defaults(func=_export)


def _int8_converter(args: argparse.Namespace, training: dict[str, object]) -> Int8Converter:
    from ceal.trainer.data.folders import split_ids
    from ceal.trainer.dataset import load_folder
    from ceal.trainer.quantize import Int8Converter, Int8Settings

    cfg = training.get("train_config", {})
    assert isinstance(cfg, dict)
    size = int(cfg.get("height", 96)), int(cfg.get("width", 128))
    data = load_folder(args.images, args.masks, *size, resize=str(cfg.get("resize", "stretch")))
    train_ids, val_ids = split_ids(data.ids, args.val_fraction, args.seed)
    index = {image_id: i for i, image_id in enumerate(data.ids)}
    settings = Int8Settings(calibration_images=args.calibration, samples=args.gate_samples, seed=args.seed)
    return Int8Converter(data.subset([index[i] for i in train_ids]), data.subset([index[i] for i in val_ids]), settings)


def _export(args: argparse.Namespace) -> int:
    from ceal.trainer.export import ExportError, export_model
    from ceal.trainer.unet import load_checkpoint

    _logging()
    if args.int8 and (args.images is None or args.masks is None):
        print("export refused: --int8 calibrates on training images; give --images and --masks")
        return 2
    model, training = load_checkpoint(args.checkpoint)
    try:
        convert = _int8_converter(args, training) if args.int8 else None
        target = export_model(model, training, args.models, args.name, convert=convert, checkpoint=args.checkpoint)
    except ExportError as exc:
        print(f"export refused: {exc}")
        return 1
    if convert is not None and convert.fidelity is not None:
        f = convert.fidelity
        print(
            f"int8 fidelity on {f.images} validation images: Spearman ρ MI {f.spearman_mutual_information:.3f}, "
            f"entropy {f.spearman_entropy:.3f}; Dice {f.dice_fp32:.4f} → {f.dice_int8:.4f}"
        )
    from ceal.trainer.loop import remember_export

    remember_export(args.checkpoint, target)  # so `ceal loop --init` knows the model's name
    print(f"exported {target}")
    return 0


def register_loop(sub: Sub) -> None:
    from ceal.client.connect import add_connection_arguments
    from ceal.trainer.learning_cli import add_learning_arguments

    p = _parser(sub, "loop", "export labels from the server, fine-tune, export the next model version")
    p.add_argument("--init", type=Path, required=True, help="checkpoint to fine-tune")
    p.add_argument("--out", type=Path, required=True, help="new checkpoint folder")
    p.add_argument("--models", type=Path, required=True, help="models folder the server watches")
    p.add_argument(
        "--name",
        default=None,
        help="model name to export (default: the name --init was exported as; required if it never was)",
    )
    p.add_argument("--pool", default="default", help="pool whose labels to train on")
    p.add_argument("--epochs", type=int, default=10, help="passes over the labelled images")
    p.add_argument("--no-pseudo", action="store_true", help="train on human labels only")
    add_learning_arguments(
        p, unlabelled_help="a folder of the pool's images (those with a label are left out)", inherit=True
    )
    add_connection_arguments(p)
    p.set_defaults(func=_loop)


def _loop(args: argparse.Namespace) -> int:
    import sys

    from ceal.client import CealError, Client
    from ceal.client.connect import client_options
    from ceal.trainer.learning_cli import learning_overrides
    from ceal.trainer.loop import LoopError, model_name_for, run_loop

    _logging()
    try:
        name = model_name_for(args.init, args.name)
        with Client(**{**client_options(args), "timeout": 600}) as client:
            result = run_loop(
                client,
                args.init,
                args.out,
                args.models,
                name,
                epochs=args.epochs,
                pool=args.pool,
                pseudo=not args.no_pseudo,
                overrides=learning_overrides(args),
                unlabelled=args.unlabelled,
            )
    except (LoopError, CealError, ValueError) as exc:
        print(f"ceal loop: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, LoopError | ValueError) else 1
    print(
        f"trained on {result.human} human + {result.pseudo} pseudo labels of pool {args.pool!r}; "
        f"exported {result.version_dir}"
    )
    return 0
