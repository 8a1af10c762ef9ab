"""`make load`: a local server with a small trained model and a scored pool, then locust, headless, bounded.

    .venv/bin/python tests/load/run_load.py [--users 8] [--seconds 30] [--images 48] [--samples 8]

Trains a tiny U-Net on synthetic lesions (about 10 s), exports it, starts `ceal serve` on 127.0.0.1 with a
fresh SQLite pool, registers and scores `--images` synthetic images, runs tests/load/locustfile.py for
`--seconds` with `--users` users, prints locust's statistics and exits non-zero when any request failed
(or none was made).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ceal.client import Client
from ceal.trainer.data.synth import case_rng, make_case
from tests.support.models import export_checkpoint, train_tiny
from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
POOL = "load"
HEIGHT, WIDTH = 96, 128  # what the users send and label; the server resizes to the model's 48×64


def prepare_server(work: Path, images: int, samples: int) -> ServerProcess:
    torch.set_num_threads(1)  # a shared 2-core machine: one training thread is the fastest
    models = work / "models"
    export_checkpoint(train_tiny(work), models)
    server = ServerProcess(models, work / "state", work / "server.log")
    with Client(server.address, timeout=300) as client:
        pixels = [make_case(case_rng(11, i), HEIGHT, WIDTH).image for i in range(images)]
        client.register_images(pixels, pool=POOL)
        done = client.score_pool(pool=POOL, samples=samples)
        print(
            f"pool {POOL!r}: {len(pixels)} images registered, {done.done} scored "
            f"({done.images_per_second:.1f} images/s)",
            flush=True,
        )
    return server


def failures(csv_prefix: Path) -> tuple[int, int]:
    """(requests, failures) from locust's aggregated statistics."""
    with open(f"{csv_prefix}_stats.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                return int(row["Request Count"]), int(row["Failure Count"])
    return 0, 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--images", type=int, default=48, help="pool size")
    parser.add_argument("--samples", type=int, default=8, help="Monte-Carlo samples T per Predict and score")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ceal-load-"))
    server = prepare_server(work, args.images, args.samples)
    env = {
        **os.environ,
        "CEAL_LOAD_POOL": POOL,
        "CEAL_LOAD_IMAGE": f"{HEIGHT}x{WIDTH}",
        "CEAL_LOAD_SAMPLES": str(args.samples),
        "PYTHONPATH": str(ROOT),
    }
    prefix = work / "locust"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "tests/load/locustfile.py"),
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.users),
        "-t",
        f"{args.seconds}s",
        "--host",
        server.address,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "30",
    ]
    try:
        code = subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode
    finally:
        server.terminate()
    total, failed = failures(prefix)
    ok = code == 0 and total > 0 and failed == 0
    print(f"locust exit {code}: {total} requests, {failed} failures in {args.seconds} s with {args.users} users")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"server log and locust CSVs kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
