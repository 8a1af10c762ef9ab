"""`ceal models list | promote | rollback`: the model versions with their status, and the admin overrides.

The token (admin role for promote and rollback) comes from `--token` or the CEAL_TOKEN environment variable.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from ceal.client.errors import CealError
from ceal.client.results import ModelInfo


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="list model versions with their status; promote or roll back (admin)")
    msub = p.add_subparsers(dest="models_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default="127.0.0.1:50051", help="host:port of the ceal server")
    common.add_argument("--token", default=os.environ.get("CEAL_TOKEN"), help="bearer token (default $CEAL_TOKEN)")
    common.add_argument("--name", default="", help="model name (default: the server's default)")
    ls = msub.add_parser("list", parents=[common], help="every version on disk with status, held-out Dice, parent")
    ls.set_defaults(func=_list)
    pr = msub.add_parser("promote", parents=[common], help="serve a version now, overriding the gate (admin)")
    pr.add_argument("version", type=int)
    pr.add_argument("--reason", default="", help="recorded in the promotion history")
    pr.set_defaults(func=_promote)
    rb = msub.add_parser("rollback", parents=[common], help="withdraw the served version at once (admin)")
    rb.add_argument("version", type=int, nargs="?", default=0, help="version to serve (default: previous promoted)")
    rb.add_argument("--reason", default="", help="recorded in the promotion history")
    rb.set_defaults(func=_rollback)


def describe(m: ModelInfo) -> str:
    """One line per version: `v3  promoted *served*  held-out Dice 0.812 [0.790, 0.834] (n=12)  parent v2  ...`."""
    served = " *served*" if m.is_latest else ""
    low, high = m.heldout_dice_interval
    dice = (
        f"held-out Dice {m.heldout_dice:.3f} [{low:.3f}, {high:.3f}] (n={m.heldout_images})"
        if not math.isnan(m.heldout_dice)
        else "held-out Dice -"
    )
    parent = f"parent v{m.parent_version}" if m.parent_version else "parent -"
    return f"{m.name} v{m.version:<3d} {m.status}{served:9s} {dice}  {parent}  {m.status_reason}"


def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ceal.client.sync import Client

    return Client(args.server, token=args.token or None)


def _list(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            for m in client.list_models(args.name):
                print(describe(m))
    except CealError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _promote(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            served, previous = client.promote_model(args.version, name=args.name, reason=args.reason)
    except CealError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"version {served} is served (was {previous}); the pool is being rescored")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            served, previous = client.rollback_model(args.version, name=args.name, reason=args.reason)
    except CealError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"rolled back: version {served} is served, version {previous} withdrawn; the pool is being rescored")
    return 0
