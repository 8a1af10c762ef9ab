"""`ceal pool`: the active-learning pool from the command line, from a folder of images to a worklist.

    ceal pool register IMAGES...            folders or files (PNG, JPEG, TIFF, BMP, DICOM), names kept
    ceal pool import MASKS --images DIR     masks matched to the images by file name → human labels
    ceal pool score                         score what is missing or stale
    ceal pool query --annotator NAME        what to label next (leased to NAME), by file name
    ceal pool label IMAGE MASK --annotator NAME
    ceal pool export OUT                    labels back to OUT/<image's name>.png
    ceal pool stats

Every action takes the connection flags (`ceal.client.connect`) and --pool. Images are named by their path
relative to the folder given (or their file name), and that name is what query lists and exports show.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from ceal.client import files
from ceal.client.connect import DefaultsHelpFormatter, add_connection_arguments, client_options
from ceal.client.errors import CealError
from ceal.client.requests import STRATEGIES, pool_image
from ceal.client.results import QueryList, readable

__all__ = ["import_folder", "register"]

BATCH = 32  # images per RegisterImages call
Action = Callable[[Any, argparse.Namespace], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pool", help="register images, import masks, score, query, label and export a pool")
    actions = p.add_subparsers(dest="pool_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, run: Action) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_text, formatter_class=DefaultsHelpFormatter)
        a.add_argument("--pool", default="default", help="pool name")
        add_connection_arguments(a)
        a.set_defaults(func=lambda args: _with_client(run, args))
        return a

    r = action("register", "add images (folders or files) to the pool, keeping their file names", _register)
    r.add_argument("images", nargs="+", type=Path, help="image files or folders (searched recursively)")

    i = action("import", "store a folder of masks as human labels of the images they match by name", _import)
    i.add_argument("masks", type=Path, help="mask folder: X.png (or X_segmentation.png, X_mask.png) for image X")
    i.add_argument("--images", type=Path, required=True, help="the image folder the masks belong to")
    i.add_argument("--annotator", default="import", help="who drew the masks (stored with each label)")

    s = action("score", "score every image whose score is missing or from an older model", _score)
    s.add_argument("--model", default="", help="model name (default: the server's default model)")
    s.add_argument("--samples", type=int, default=0, help="Monte-Carlo samples T (0: the server's default)")
    s.add_argument("--force", action="store_true", help="rescore images whose score is fresh")

    q = action("query", "list what to label next, leased to --annotator", _query)
    q.add_argument("--strategy", default="ceal", choices=sorted(STRATEGIES), help="selection strategy")
    q.add_argument("--k", type=int, default=10, help="how many items (series or studies with --series/--study)")
    q.add_argument("--annotator", default="", help="lease the items to this annotator (no lease when empty)")
    q.add_argument("--model", default="", help="model name (default: the server's default model)")
    q.add_argument("--budget-seconds", type=float, default=0.0, help="annotation time budget (cost_sensitive)")
    q.add_argument("--lease-minutes", type=float, default=30.0, help="how long the items stay leased")
    level = q.add_mutually_exclusive_group()
    level.add_argument("--series", action="store_true", help="whole series: every slice leased together")
    level.add_argument("--study", action="store_true", help="whole studies: every slice leased together")
    q.add_argument("--round", type=int, default=0, help="active-learning round (CEAL's threshold tightens)")
    q.add_argument("--seed", type=int, default=0, help="seed for random, power_bald, random_foreground and typiclust")
    q.add_argument("--json", action="store_true", help="one JSON object per item instead of a table")

    lab = action("label", "store one mask as the human label of an image", _label)
    lab.add_argument("image", help="the image's id, or its file (registered again, idempotently, to find the id)")
    lab.add_argument("mask", type=Path, help="mask file (PNG): 0 background, 1 (or 255) foreground")
    lab.add_argument("--annotator", required=True, help="who drew the mask")
    lab.add_argument("--seconds", type=float, default=0.0, help="time spent drawing it (feeds the cost model)")

    e = action("export", "write the pool's labels to a folder, one PNG per image, named as registered", _export)
    e.add_argument("out", type=Path, help="folder to write into (created)")
    e.add_argument("--pseudo", action="store_true", help="include pseudo labels (human labels win)")
    e.add_argument(
        "--values", choices=("auto", "index"), default="auto", help="auto: binary masks as 0/255; index: as stored"
    )

    action("stats", "counts of images, scores, labels and leases", _stats)


def _with_client(run: Action, args: argparse.Namespace) -> int:
    from ceal.client.sync import Client

    try:
        options = client_options(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with Client(**options) as client:
            return run(client, args)
    except files.FolderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CealError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _register_files(client: Any, pool: str, found: Sequence[files.Found]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for batch in _batches(found):
        out.extend(client.register_images([_pool_image(f) for f in batch], pool=pool))
    return out


def _pool_image(found: files.Found) -> Any:
    meta = files.dicom_keys(found.path) if files.is_dicom(found.path) else None
    if meta is None:
        return pool_image(found.path, name=found.name)
    return pool_image(
        found.path,
        name=found.name,
        dicom=(meta.study_uid, meta.series_uid, meta.sop_uid),
        slice_index=meta.instance_number,
    )


def _register(client: Any, args: argparse.Namespace) -> int:
    found = files.find_images(args.images)
    results = _register_files(client, args.pool, found)
    new = sum(created for _, created in results)
    print(f"registered {len(results)} images in pool {args.pool!r} ({new} new, {len(results) - new} already there)")
    return 0


def import_folder(client: Any, images: Path, masks: Path, pool: str, annotator: str) -> tuple[int, int]:
    """Register every image under `images` (named by path) and store each mask of `masks` that matches one by
    name as its human label. Returns (images registered, masks stored). Raises FolderError, CealError (naming
    the mask file a refused label came from)."""
    found = files.find_images([images])
    pairs, _ = files.match_masks(found, masks)
    ids = dict(zip((f.name for f in found), (i for i, _ in _register_files(client, pool, found)), strict=True))
    for image, mask_path in pairs:
        try:
            client.submit_label(ids[image.name], files.read_mask(mask_path), annotator=annotator, pool=pool)
        except CealError as exc:
            raise type(exc)(f"{mask_path} (mask of {image.name}): {exc}") from exc
    return len(found), len(pairs)


def _import(client: Any, args: argparse.Namespace) -> int:
    registered, labelled = import_folder(client, args.images, args.masks, args.pool, args.annotator)
    print(
        f"imported {labelled} masks as human labels in pool {args.pool!r}; {registered - labelled} images have no mask"
    )
    return 0


def _score(client: Any, args: argparse.Namespace) -> int:
    last = client.score_pool(pool=args.pool, model=args.model, samples=args.samples, force=args.force, progress=True)
    print(
        f"scored {last.done} images with {last.model_name}@{last.model_version} "
        f"({last.fresh} already fresh) in pool {args.pool!r}"
    )
    return 0


def _query(client: Any, args: argparse.Namespace) -> int:
    ql: QueryList = client.query_list(
        pool=args.pool,
        strategy=args.strategy,
        k=args.k,
        model=args.model,
        annotator=args.annotator,
        budget_seconds=args.budget_seconds,
        lease_seconds=max(1, round(args.lease_minutes * 60)),
        series=args.series,
        study=args.study,
        round=args.round,
        seed=args.seed,
    )
    if args.json:
        for item in ql.items:
            print(json.dumps(_item_dict(item)))
    else:
        print("rank\tname\timage_id\tscore\tseconds\tslices\treason")
        for item in ql.items:
            print(
                f"{item.rank}\t{item.name or '-'}\t{item.image_id}\t{readable(item.score)}\t"
                f"{item.estimated_seconds:.0f}\t{len(item.slice_image_ids) or 1}\t{item.reason}"
            )
    if not ql.items:
        print(f"nothing to label: {ql.note}" if ql.note else _why_empty(client, args, ql), file=sys.stderr)
    elif ql.note:
        print(f"note: {ql.note}", file=sys.stderr)
    elif ql.unscored:
        print(f"note: {ql.unscored} images are not scored yet; run `ceal pool score` to include them", file=sys.stderr)
    return 0


def _item_dict(item: Any) -> dict[str, Any]:
    return {
        "rank": item.rank,
        "name": item.name,
        "image_id": item.image_id,
        "score": item.score,
        "estimated_seconds": item.estimated_seconds,
        "reason": item.reason,
        "series_key": item.series_key,
        "study_key": item.study_key,
        "slice_image_ids": list(item.slice_image_ids),
        "lease_expires_at": item.lease_expires_at.isoformat() if item.lease_expires_at else None,
    }


def _why_empty(client: Any, args: argparse.Namespace, ql: QueryList) -> str:
    """Why a query list came back empty, from the pool's counts."""
    stats = client.pool_stats(pool=args.pool, model=args.model)
    if stats.images == 0:
        return f"nothing to label: pool {args.pool!r} has no images; run `ceal pool register FOLDER` first"
    if stats.scored_fresh == 0:
        return f"nothing to label: no image of pool {args.pool!r} is scored by the current model; run `ceal pool score`"
    if stats.labelled_human >= stats.images:
        return f"nothing to label: every image of pool {args.pool!r} has a human label"
    if args.strategy == "cost_sensitive":
        return (
            f"nothing fits a budget of {args.budget_seconds:g} s: every free image is predicted to take longer; "
            "raise --budget-seconds"
        )
    return (
        f"nothing to label: the {stats.images - stats.labelled_human} unlabelled images are leased to other "
        f"annotators ({stats.leased} leases live) or unscored ({ql.unscored})"
    )


def _label(client: Any, args: argparse.Namespace) -> int:
    path = Path(args.image)
    image_id = args.image
    if path.is_file():
        found = files.Found(path, path.name)
        ((image_id, _),) = _register_files(client, args.pool, [found])
    label_id, version = client.submit_label(
        image_id, files.read_mask(args.mask), annotator=args.annotator, pool=args.pool, seconds_spent=args.seconds
    )
    print(f"label {label_id} stored: image {image_id} version {version}")
    return 0


def _export(client: Any, args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    sources = ("human", "pseudo") if args.pseudo else ("human",)
    written = 0
    for record in client.export_labels(pool=args.pool, sources=sources, include_images=False):
        target = files.mask_path_for(args.out, record.name, record.image_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        mask = np.asarray(record.mask, dtype=np.uint8)
        if args.values == "auto" and mask.size and int(mask.max()) <= 1:
            mask = mask * np.uint8(255)
        PILImage.fromarray(mask).save(target)
        written += 1
    print(f"exported {written} labels of pool {args.pool!r} to {args.out}/")
    return 0


def _stats(client: Any, args: argparse.Namespace) -> int:
    s = client.pool_stats(pool=args.pool)
    print(
        f"pool {s.pool}: {s.images} images in {s.series} series; human labels {s.labelled_human}, "
        f"pseudo labels {s.labelled_pseudo}; scored by {s.model_name}@{s.model_version}: {s.scored_fresh} fresh, "
        f"{s.scored_stale} stale; {s.leased} leased"
    )
    return 0
