"""`ceal serve`: run the gRPC server."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gRPC inference and active-learning server")
    p.add_argument("--models", type=Path, required=True, help="models folder: <name>/<version>/model.onnx")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=50051, help="port (0 picks a free one)")
    p.add_argument("--state", help="pool store: a folder (SQLite) or a postgresql:// URL")
    p.add_argument("--default-model", help="model used when a request names none")
    p.add_argument("--samples", type=int, default=20, help="default Monte-Carlo samples T")
    p.add_argument("--max-samples", type=int, default=100, help="largest T a request may ask for")
    p.add_argument("--max-batch", type=int, default=8, help="dynamic batcher: images per engine run")
    p.add_argument("--max-queue", type=int, default=64, help="queued requests before RESOURCE_EXHAUSTED")
    p.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ceal.service.server import ServerConfig, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(
        models=args.models,
        address=f"{args.host}:{args.port}",
        state=args.state,
        default_model=args.default_model,
        default_samples=args.samples,
        max_samples=args.max_samples,
        max_batch_images=args.max_batch,
        max_queue=args.max_queue,
    )
    return serve(config, args.port_file)
