"""`make demo`: the whole ceal loop on CPU with embedded defaults.

1. synthesise a lesion set (ISIC 2017 layout); 2. train a small U-Net with MC dropout on a labelled seed set;
3. export ONNX with dropout live; 4. start `ceal serve` on 127.0.0.1; 5. through the SDK: predict, rank the
unlabelled pool by uncertainty, write overlays; 6. active-learning rounds: the oracle labels the images the
service asks for, `ceal trainer --once` fine-tunes a candidate and gates it on held-out labels, a promoted
version hot-loads and the pool is rescored (each round prints the gate's decision); 7. stop cleanly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CEAL = [sys.executable, "-m", "ceal.cli.main"]


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run(args: list[str]) -> None:
    print("$ ceal " + " ".join(args), flush=True)
    subprocess.run([*CEAL, *args], check=True)


def start_server(models: Path, state: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = state / "port"
    port_file.unlink(missing_ok=True)
    args = ["serve", "--models", str(models), "--state", str(state), "--port", "0", "--port-file", str(port_file)]
    print("$ ceal " + " ".join(args) + f"  (log: {log_path})", flush=True)
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([*CEAL, *args], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start; see {log_path}")
        time.sleep(0.2)
    return proc, f"127.0.0.1:{port_file.read_text().strip()}"


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    print(f"server stopped (exit code {code})")
    if code != 0:
        raise SystemExit("server did not stop cleanly")


def split_dataset(data: Path, work: Path, n_labelled: int, n_val: int) -> tuple[Path, list[Path], Path]:
    """Seed set (labelled), validation set, and the unlabelled pool, as folders of links."""
    images = sorted((data / "images").glob("*.jpg"))
    parts = {"labelled": images[:n_labelled], "val": images[n_labelled : n_labelled + n_val]}
    for name, files in parts.items():
        for sub in ("images", "masks"):
            d = work / name / sub
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        for f in files:
            (work / name / "images" / f.name).symlink_to(f)
            mask = data / "masks" / f"{f.stem}_segmentation.png"
            (work / name / "masks" / mask.name).symlink_to(mask)
    return work / "labelled", images[n_labelled + n_val :], work / "val"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "demo")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--labelled", type=int, default=60, help="initial human-labelled seed set")
    parser.add_argument("--val", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-round", type=int, default=20, help="human labels per round")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    models, state = out / "models", out / "state"
    state.mkdir()
    started = time.monotonic()

    step("1. synthesise a dermoscopy-like lesion set (ISIC 2017 layout)")
    run(["data", "synth", "--out", str(out / "data"), "--n", str(args.images), "--seed", "0"])
    labelled, pool, val = split_dataset(out / "data", out, args.labelled, args.val)
    print(
        f"{len(list((labelled / 'images').iterdir()))} labelled, {len(pool)} unlabelled, "
        f"{len(list((val / 'images').iterdir()))} validation images"
    )

    step("2. train a U-Net with Monte-Carlo dropout on the labelled seed set")
    run(
        [
            "train",
            "--images",
            str(labelled / "images"),
            "--masks",
            str(labelled / "masks"),
            "--out",
            str(out / "ckpt-1"),
            "--epochs",
            str(args.epochs),
            "--val-fraction",
            "0.15",
        ]
    )

    step("3. export to ONNX with dropout live (parity-checked)")
    run(["export", str(out / "ckpt-1"), "--models", str(models), "--name", "lesion"])

    step("4. serve it over gRPC on 127.0.0.1")
    proc, address = start_server(models, state, out / "server.log")
    try:
        from demo_rounds import demo_with_server  # type: ignore[import-not-found]

        demo_with_server(
            address, out, pool, val, labelled, rounds=args.rounds, per_round=args.per_round, epochs=args.epochs
        )
    finally:
        step("stop the server (SIGTERM drains calls in flight)")
        stop_server(proc)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s; everything is under {out}")
    print_console_hint(models, state)
    return 0


def print_console_hint(models: Path, state: Path, port: int = 8080) -> None:
    """How to label the demo's pool yourself, in the browser (the labelling console)."""
    step("label it yourself: the console")
    print(f"  ceal serve --models {models} --state {state} --port 50051 &")
    print(f"  ceal console --server 127.0.0.1:50051 --port {port}")
    print(f"then open http://127.0.0.1:{port}/ in a browser; the demo server has no tokens: type your name, sign in.")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
