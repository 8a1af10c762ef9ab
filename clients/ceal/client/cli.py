"""`ceal predict`: segment image files through a server; writes overlays and prints the scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from tqdm import tqdm

from ceal.client.connect import DefaultsHelpFormatter, add_connection_arguments, client_options
from ceal.client.errors import CealError
from ceal.client.overlay import overlay
from ceal.client.results import readable

__all__ = ["overlay", "register", "run"]  # overlay: kept here for scripts that import it from the CLI


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "predict",
        help="segment images with a running server and write overlays",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("images", nargs="+", type=Path, help="PNG, JPEG or DICOM files")
    add_connection_arguments(p)
    p.add_argument("--model", default="", help="model name (default: the server's default)")
    p.add_argument("--samples", type=int, default=0, help="Monte-Carlo samples T (default: the server's)")
    p.add_argument("--out", type=Path, default=Path("predictions"), help="folder for overlay PNGs")
    p.add_argument("--top", type=int, default=10, help="how many of the most uncertain to list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ceal.client.sync import Client

    try:
        connection = client_options(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, float]] = []
    try:
        with Client(**connection) as client:
            for path, pred in zip(
                args.images,
                client.predict_many(args.images, model=args.model, samples=args.samples, progress=True),
                strict=True,
            ):
                image = np.asarray(PILImage.open(path)) if path.suffix.lower() != ".dcm" else None
                if image is not None:
                    mask_img, unc_img = overlay(image, pred)
                    PILImage.fromarray(mask_img).save(args.out / f"{path.stem}_mask.png")
                    PILImage.fromarray(unc_img).save(args.out / f"{path.stem}_uncertainty.png")
                results.append((path.name, pred.score))
                tqdm.write(
                    f"{path.name}\tscore={readable(pred.score)}\tforeground={pred.foreground_fraction:.3f}"
                    f"\tmodel={pred.model_name}@{pred.model_version}"
                )
    except CealError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"\n{min(args.top, len(results))} most uncertain (mutual information, mean):")
    for rank, (name, score) in enumerate(sorted(results, key=lambda r: -r[1])[: args.top], 1):
        print(f"{rank:3d}. {name}\t{readable(score)}")
    print(f"overlays written to {args.out}/")
    return 0
