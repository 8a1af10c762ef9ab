"""End-to-end pool rescoring: ScorePool over gRPC with SQLite and with Postgres, against the in-process engine.

    .venv/bin/python benchmarks/pool_bench.py [--images 2000] [--samples 20] [--threads 1] [--no-postgres]

One model on every side: the CEAL layout with dropout after the last decoder block, made small enough for
2,000 images to take minutes on a shared 2-core CPU (base_filters 8, depth 4, 96×128, seeded random weights:
the work per image does not depend on the weights at fixed T). The pool: `--images` synthetic 96×128 RGB
lesion images.

- In-process: the engine's dynamic batcher fed 8 images at a time (the batch PoolScorer submits), the next
  batch queued before the last one's results are read (as PoolScorer does), image scores computed as the store
  keeps them (`score_row`); no store, no gRPC.
- Served: `ceal serve` in a subprocess on a SQLite folder, then on a Postgres database (the tests' throwaway
  cluster, `tests/support/postgres.py`); the images registered through the SDK (timed apart), then
  `Client.score_pool` at fixed T: image reads from the store, the engine, score writes, progress over gRPC.
- Time to a fresh pool: a new version exported into the models folder while the server runs; the registry
  loads it (it polls every 2 s) and rescores the pool in the background (adaptive T by default); the clock
  stops when GetPoolStats counts every image fresh for the new version, and GetPoolStats says the mean T.
  The in-process side runs the same rule for the comparison.

Sides run one after another with the same onnxruntime threads (`--threads`); every ScorePool pass (`--rounds`
per store, later ones forced) sits between two in-process passes and is compared with their mean, so drift of
a shared machine's load falls on both sides alike (and shows in the in-process passes' spread).
Goal: served ≥ 90 % of in-process images per second.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, table
from ceal.client import Client
from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import Engine
from ceal.service.engine.loaded import LoadedModel, Samples, load_model
from ceal.service.engine.preprocess import prepare
from ceal.service.pool.scoring import DEFAULT_RESCORE_TOLERANCE, score_row, scoring_rule
from ceal.trainer.data.synth import case_rng, make_case
from ceal.trainer.export import export_model
from ceal.trainer.unet import UNet, UNetConfig
from tests.support.server import ServerProcess

GOAL = 0.90
MODEL = UNetConfig(base_filters=8, depth=4, dropout_placement="last_decoder")
SIZE = (96, 128)
NAME, POOL, BATCH = "poolbench", "bench", 8


def in_process(model: LoadedModel, images: list[np.ndarray], samples: int, tolerance: float) -> tuple[float, float]:
    """(images per second, mean T) scoring `images` through the batcher 8 at a time, as PoolScorer does: the next
    batch is submitted before the last one's results are read, so the engine never waits for this loop."""
    rule = scoring_rule(samples, tolerance, 0)
    engine = Engine(DynamicBatcher(max_images=BATCH, max_delay=0.005, max_queue=64))
    rng, drawn = np.random.default_rng(0), 0

    def submit(start: int) -> list[Future[Samples]]:
        return [
            engine.batcher.submit(
                model, prepare(image, model.meta)[None], samples, rng.spawn(1)[0], None, adaptive=rule
            )
            for image in images[start : start + BATCH]
        ]

    started = time.perf_counter()
    try:
        pending = submit(0)
        for start in range(0, len(images), BATCH):
            futures, pending = pending, submit(start + BATCH)
            for i, future in enumerate(futures):
                out = future.result()
                drawn += out.probabilities.shape[1]
                image = images[start + i]
                score_row(model, f"img{start + i}", out.probabilities[0], out.descriptors[0], image.shape[:2])
    finally:
        engine.batcher.close()
    return len(images) / (time.perf_counter() - started), drawn / len(images)


def served(
    work: Path,
    state: str,
    images: list[np.ndarray],
    samples: int,
    threads: int,
    label: str,
    between: Callable[[], float],
    rounds: int,
) -> dict[str, object]:
    """Register; `rounds` ScorePool passes at fixed T (the first scores, later ones force a rescore), each
    followed by `between()` (an in-process pass: its images/s); then a new version and the time until the
    pool is fresh again. Ratios: each ScorePool pass against the mean of the in-process passes either side."""
    models = work / f"models-{label}"
    shutil.copytree(work / "models", models)
    server = ServerProcess(
        models, state, work / f"server-{label}.log", "--threads", str(threads), "--samples", str(samples)
    )
    client = Client(server.address, timeout=3600)
    try:
        started = time.perf_counter()
        for start in range(0, len(images), 100):
            client.register_images(images[start : start + 100], pool=POOL)
        registered = time.perf_counter() - started
        rates, ratios, previous = [], [], between()
        for r in range(rounds):
            started = time.perf_counter()
            final = client.score_pool(pool=POOL, samples=samples, force=r > 0)
            rates.append(len(images) / (time.perf_counter() - started))
            assert final.finished and final.total == len(images), final
            after = between()
            ratios.append(rates[-1] / ((previous + after) / 2))
            print(f"  {label} pass {r + 1}: {rates[-1]:.1f} images/s, {ratios[-1]:.0%} of in-process", flush=True)
            previous = after
        torch.manual_seed(2)
        started = time.perf_counter()
        export_model(UNet(MODEL), {"train_config": {"height": SIZE[0], "width": SIZE[1]}}, models, NAME)
        while True:  # the registry picks the version up, then rescores in the background
            stats = client.pool_stats(pool=POOL)
            if stats.model_version == 2 and stats.scored_fresh == len(images):
                break
            time.sleep(0.2)
        fresh = time.perf_counter() - started
        return {
            "register_s": registered,
            "score_ips": float(np.median(rates)),
            "ratio": float(np.median(ratios)),
            "ratios": ratios,
            "score_mean_t": final.mean_samples,
            "fresh_s": fresh,
            "fresh_mean_t": stats.mean_samples,
        }
    finally:
        client.close()
        server.terminate()


@contextlib.contextmanager
def postgres_url(skip: bool) -> Iterator[str | None]:
    if skip:
        yield None
        return
    from tests.support.postgres import PostgresUnavailableError, running_postgres

    try:
        with running_postgres() as cluster:
            yield cluster.create_database("poolbench")
    except PostgresUnavailableError as exc:
        print(f"Postgres not available ({exc}); the Postgres side is skipped", flush=True)
        yield None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=20, help="T at fixed T; T_max under adaptive T")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads, both sides")
    parser.add_argument(
        "--rounds", type=int, default=2, help="ScorePool passes per store, each between in-process ones"
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ceal-poolbench-"))
    torch.manual_seed(1)
    directory = export_model(
        UNet(MODEL), {"train_config": {"height": SIZE[0], "width": SIZE[1]}}, work / "models", NAME
    )
    model = load_model(directory, intra_op_threads=args.threads)
    images = [make_case(case_rng(5, i), *SIZE).image for i in range(args.images)]
    tolerance = DEFAULT_RESCORE_TOLERANCE
    print(
        f"# pool bench: {machine()}; U-Net base {MODEL.base_filters} depth {MODEL.depth}, dropout "
        f"{MODEL.dropout_placement}, {SIZE[0]}×{SIZE[1]}, {args.images} images, T = {args.samples} (adaptive "
        f"rescoring: tolerance {tolerance:g}, floor 8), {args.threads} onnxruntime thread(s)",
        flush=True,
    )
    rows, ratios = [], []
    try:
        fixed: list[float] = []

        def between() -> float:
            fixed.append(in_process(model, images, args.samples, 0.0)[0])
            return fixed[-1]

        adaptive = in_process(model, images, args.samples, tolerance)
        print(f"  in-process adaptive: {adaptive[0]:.1f} images/s (mean T {adaptive[1]:.1f})", flush=True)
        sides = {"SQLite": str(work / "state")}
        results = {}
        with postgres_url(args.no_postgres) as url:
            if url is not None:
                sides["Postgres"] = url
            for label, state in sides.items():
                results[label] = served(
                    work, state, images, args.samples, args.threads, label.lower(), between, args.rounds
                )
        shown = " / ".join(f"{f:.1f}" for f in fixed)
        rows.append(("in-process engine", shown, "", f"{len(images) / adaptive[0]:.1f}", f"{adaptive[1]:.1f}", ""))
        for label, r in results.items():
            ratios.append(float(r["ratio"]))  # type: ignore[arg-type]
            each = ", ".join(f"{x:.0%}" for x in r["ratios"])  # type: ignore[attr-defined]
            rows.append(
                (
                    f"ScorePool over gRPC, {label}",
                    f"{r['score_ips']:.1f}",
                    f"{r['ratio']:.0%} ({each})",
                    f"{r['fresh_s']:.1f}",
                    f"{r['fresh_mean_t']:.1f}",
                    f"{r['register_s']:.1f}",
                )
            )
    finally:
        model = None  # type: ignore[assignment]
        shutil.rmtree(work, ignore_errors=True)
    print(
        table(
            (
                "side",
                f"images/s at T = {args.samples} (in-process: each pass; served: median)",
                "of in-process (median; each pass)",
                "s to a fresh pool (new version, adaptive)",
                "mean T",
                "register s",
            ),
            rows,
        )
    )
    print(
        "in-process 's to a fresh pool' is the adaptive pass alone (no version to detect and load); served ones "
        "include the registry's poll (≤ 2 s) and the load and trial inference of the new version"
    )
    if ratios:
        verdict = "meets" if min(ratios) >= GOAL else "MISSES"
        shares = ", ".join(f"{r:.0%}" for r in ratios)
        print(f"served / in-process images per second: {shares}: {verdict} the {GOAL:.0%} goal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
