"""`ceal console`: serve the labelling console (uvicorn) for one ceal server."""

from __future__ import annotations

import argparse
from pathlib import Path

import starlette  # noqa: F401  (a missing `console` extra fails here, at registration, and `ceal` says so)
import uvicorn


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("console", help="serve the labelling console (a web page) for a ceal server")
    p.add_argument("--server", default="127.0.0.1:50051", help="host:port of the ceal gRPC server")
    p.add_argument("--host", default="127.0.0.1", help="address the console listens on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port of the console (default 8080)")
    p.add_argument("--tls", action="store_true", help="reach the ceal server over TLS")
    p.add_argument("--root-certificates", type=Path, help="PEM CA of the server's certificate (with --tls)")
    p.add_argument(
        "--secure-cookie", action="store_true", help="mark the session cookie Secure (console served over HTTPS)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ceal.console.app import create_app

    settings: dict[str, object] = {"tls": args.tls}
    if args.root_certificates:
        settings["root_certificates"] = args.root_certificates
    app = create_app(args.server, secure_cookie=args.secure_cookie, **settings)
    print(f"ceal console for {args.server}: open http://{args.host}:{args.port}/ and sign in with your token")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
