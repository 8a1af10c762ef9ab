"""`ceal trainer`: watch a pool, fine-tune, export a candidate, promote it only past the held-out gate."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TypeAlias

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(sub: Sub) -> None:
    p = sub.add_parser("trainer", help="continuous training: candidate → held-out gate → promote or reject")
    p.add_argument("--server", default="127.0.0.1:50051")
    p.add_argument(
        "--token", default=os.environ.get("CEAL_TOKEN"), help="bearer token, annotator role (default $CEAL_TOKEN)"
    )
    p.add_argument("--models", type=Path, required=True, help="models folder the servers watch (shared volume)")
    p.add_argument("--work", type=Path, required=True, help="the trainer's scratch folder")
    p.add_argument("--promotions", type=Path, help="as `ceal serve --promotions` (default: inside --models)")
    p.add_argument("--name", default="lesion")
    p.add_argument("--pool", default="")
    p.add_argument("--init", type=Path, help="checkpoint of the served version when its folder has none")
    p.add_argument("--once", action="store_true", help="one turn (train if due), then exit")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between checks while waiting")
    p.add_argument("--heldout-share", type=float, default=0.15, help="share of human labels held out (by id hash)")
    p.add_argument("--min-new-labels", type=int, default=20, help="train after this many new human labels ...")
    p.add_argument("--min-new-share", type=float, default=0.10, help="... or this share more, whichever is first")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--no-pseudo", action="store_true", help="train on human labels only")
    p.add_argument("--eval-samples", type=int, default=10, help="Monte-Carlo samples T per held-out image")
    p.add_argument("--margin", type=float, default=0.01, help="mean Dice loss the gate tolerates")
    p.add_argument("--plateau-threshold", type=float, default=0.005, help="Dice gain per 20 labels = plateau")
    p.add_argument("--seed", type=int, default=0)
    from ceal.trainer.learning_cli import add_learning_arguments

    add_learning_arguments(
        p, unlabelled_help="a folder of the pool's images (those with a label are left out)", inherit=True
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ceal.client import Client
    from ceal.trainer.learning_cli import learning_overrides
    from ceal.trainer.worker.gate import GateSettings
    from ceal.trainer.worker.rounds import Stopped, TrainerSettings, run_round, watch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    stopping = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("ceal.trainer").info("SIGTERM: stopping after the stage in hand")
        stopping.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    settings = TrainerSettings(
        models=args.models,
        work=args.work,
        promotions=args.promotions,
        name=args.name,
        pool=args.pool,
        init=args.init,
        heldout_share=args.heldout_share,
        min_new_labels=args.min_new_labels,
        min_new_share=args.min_new_share,
        epochs=args.epochs,
        learning_rate=args.lr,
        pseudo=not args.no_pseudo,
        eval_samples=args.eval_samples,
        gate=GateSettings(margin=args.margin, seed=args.seed),
        plateau_threshold=args.plateau_threshold,
        seed=args.seed,
        overrides=learning_overrides(args),
        unlabelled=args.unlabelled,
    )
    try:
        with Client(args.server, timeout=600, token=args.token) as client:
            if args.once:
                result = run_round(client, settings, stopping.is_set)
                detail = result.message.removeprefix(f"{result.decision}: ")  # the gate's reason starts with it
                print(f"trainer: {result.decision}: {detail}", flush=True)
            else:
                watch(client, settings, interval=args.interval, stop=stopping.is_set)
    except Stopped as exc:
        print(f"trainer: {exc}", file=sys.stderr, flush=True)
    return 0
