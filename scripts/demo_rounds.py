"""The part of `make demo` that talks to the running server through the SDK."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ceal.client import Client, pool_image
from ceal.client.cli import overlay

POOL = "demo"


def mask_of(image_path: Path, data: Path) -> np.ndarray:
    return (np.asarray(PILImage.open(data / "masks" / f"{image_path.stem}_segmentation.png")) > 127).astype(np.uint8)


def annotation_seconds(mask: np.ndarray) -> float:
    """A stand-in radiologist's time: longer for long, fragmented borders."""
    edge = mask.astype(bool) & ~np.pad(mask.astype(bool), 1, mode="edge")[1:-1, 1:-1].copy()
    border = np.count_nonzero(mask.astype(bool) ^ np.roll(mask.astype(bool), 1, axis=0)) + int(edge.sum())
    return 20.0 + 0.1 * border


def validation_dice(client: Client, val: list[Path], data: Path) -> float:
    dice = []
    for path, p in zip(val, client.predict_many(val, maps=("label_map",), samples=10, seed=0), strict=True):
        assert p.label_map is not None
        pred, true = p.label_map != 0, mask_of(path, data) != 0
        total = pred.sum() + true.sum()
        dice.append(1.0 if total == 0 else 2 * (pred & true).sum() / total)
    return float(np.mean(dice))


def wait_for_version(client: Client, version: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(m.version >= version and m.is_latest for m in client.list_models()):
            return
        time.sleep(0.5)
    raise SystemExit(f"the server did not load version {version} within {timeout:.0f} s")


def trainer_once(address: str, out: Path, epochs: int) -> tuple[str, str]:
    """`ceal trainer --once`: fine-tune the served version, export a candidate, gate it; (decision, message)."""
    args = ["trainer", "--once", "--server", address, "--models", str(out / "models"), "--work", str(out / "trainer")]
    args += ["--pool", POOL, "--epochs", str(epochs)]
    print("$ ceal " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "ceal.cli.main", *args], check=True, stdout=subprocess.PIPE, text=True)
    last = [line for line in done.stdout.splitlines() if line.startswith("trainer: ")][-1]
    decision, _, message = last.removeprefix("trainer: ").partition(": ")
    return decision, message


def show_scores(client: Client, pool_paths: dict[str, Path]) -> None:
    ranked = client.query_list(pool=POOL, strategy="bald", k=len(pool_paths))
    print(f"scores of the {len(ranked.items)} unlabelled images (mutual information, mean over pixels):")
    cells = [f"{pool_paths[i.image_id].stem[-4:]}:{i.score:.2e}" for i in ranked.items]
    for start in range(0, len(cells), 6):
        print("  " + "  ".join(cells[start : start + 6]))
    print("10 most uncertain:")
    for item in ranked.items[:10]:
        print(f"  {item.rank:2d}. {pool_paths[item.image_id].name}  {item.reason}")


def demo_with_server(
    address: str,
    out: Path,
    pool: list[Path],
    val_dir: Path,
    labelled: Path,
    *,
    rounds: int,
    per_round: int,
    epochs: int,
) -> None:
    data = out / "data"
    val = sorted((val_dir / "images").iterdir())
    seed = sorted((labelled / "images").iterdir())
    with Client(address, timeout=600) as client:
        for m in client.list_models():
            print(
                f"model {m.name} v{m.version}: input {m.input_shape}, dropout {m.dropout_rate}, "
                f"validation Dice {m.validation_dice:.3f}, {m.provider}"
            )

        print("\n=== 5. register the images in a pool; the seed set arrives with its labels ===")
        ids = client.register_images([pool_image(p) for p in seed + pool], pool=POOL)
        pool_paths = {image_id: p for (image_id, _), p in zip(ids[len(seed) :], pool, strict=True)}
        for (image_id, _), path in zip(ids[: len(seed)], seed, strict=True):
            client.submit_label(
                image_id,
                mask_of(path, data),
                annotator="seed-set",
                pool=POOL,
                seconds_spent=annotation_seconds(mask_of(path, data)),
            )
        print(f"{len(ids)} images registered, {len(seed)} seed labels stored")

        print("\n=== 6. score the pool: T=20 Monte-Carlo dropout samples per image ===")
        done = client.score_pool(pool=POOL, progress=True)
        print(f"scored {done.done} images at {done.images_per_second:.1f} images/s")
        show_scores(client, pool_paths)
        overlays = out / "overlays"
        overlays.mkdir(exist_ok=True)
        top = client.query_list(pool=POOL, strategy="bald", k=3)
        for item in top.items:
            path = pool_paths[item.image_id]
            p = client.predict(path, maps=("label_map", "entropy"))
            mask_img, unc_img = overlay(np.asarray(PILImage.open(path)), p)
            PILImage.fromarray(np.concatenate([mask_img, unc_img], axis=1)).save(overlays / f"{path.stem}.png")
        print(f"overlays (mask | uncertainty) of the 3 most uncertain written to {overlays}/")

        history = [("v1", len(seed), 0, validation_dice(client, val, data))]
        print(f"\nvalidation Dice of v1 (through the service, {len(val)} images): {history[0][3]:.3f}")
        for r in range(1, rounds + 1):
            print(f"\n=== 7.{r} active-learning round {r}: CEAL query list for radiologist-1 ===")
            ql = client.query_list(
                pool=POOL, strategy="ceal", k=per_round, annotator="radiologist-1", round=r, max_pseudo_labels=per_round
            )
            for item in ql.items[:5]:
                print(f"  {item.rank:2d}. {pool_paths[item.image_id].name}  {item.reason}")
            print(
                f"  ... {len(ql.items)} images leased to radiologist-1, {len(ql.pseudo_labels)} confident images "
                "offered as pseudo-labels"
            )
            for item in ql.items:  # the oracle: the ground-truth mask stands in for the radiologist
                mask = mask_of(pool_paths[item.image_id], data)
                client.submit_label(
                    item.image_id, mask, annotator="radiologist-1", pool=POOL, seconds_spent=annotation_seconds(mask)
                )
            for image_id, _ in ql.pseudo_labels:  # stamped with the version that drew them
                p = client.predict(
                    pool_paths[image_id], maps=("label_map",), keep_largest_component=True, fill_holes=True
                )
                assert p.label_map is not None
                client.submit_label(
                    image_id, p.label_map, annotator="model", source="pseudo", pool=POOL, model_version=p.model_version
                )
            stats = client.pool_stats(pool=POOL)
            print(f"  pool: {stats.labelled_human} human labels, {stats.labelled_pseudo} pseudo labels")
            decision, message = trainer_once(address, out, max(4, epochs // 2))
            print(f"  gate decision, round {r}: {decision}: {message}")
            served = next(m for m in client.list_models() if m.is_latest)
            if decision == "promoted":
                version = max(m.version for m in client.list_models())
                wait_for_version(client, version)
                print(f"  server serves v{version}; rescoring the stale pool")
                done = client.score_pool(pool=POOL, progress=True)
                print(
                    f"  ScorePool: {done.done} images left to score, "
                    f"{done.fresh} already rescored by the server in the background"
                )
                served = next(m for m in client.list_models() if m.is_latest)
            else:
                print(f"  v{served.version} stays in service; its scores and the worklist are unchanged")
            history.append(
                (f"v{served.version}", stats.labelled_human, stats.labelled_pseudo, validation_dice(client, val, data))
            )
        stop = client.pool_stats(pool=POOL)
        if stop.expected_gain_next_20 == stop.expected_gain_next_20:  # not NaN: the curve has enough points
            print(
                f"\nstop signal (learning curve on held-out Dice): next 20 labels {stop.expected_gain_next_20:+.3f} "
                f"[{stop.expected_gain_next_20_low:+.3f}, {stop.expected_gain_next_20_high:+.3f}], next "
                f"annotator-hour {stop.expected_gain_per_hour:+.3f}; "
                f"plateau (< {stop.plateau_threshold}): {stop.plateau}"
            )
        else:
            print("\nstop signal: not yet (the learning curve needs 3 promoted versions)")

        print("\nserved  human labels  pseudo labels  validation Dice (after each round)")
        for name, human, pseudo, dice in history:
            print(f"{name:5s}  {human:12d}  {pseudo:13d}  {dice:15.3f}")
