"""The `ceal` command: subcommands are plugins registered by each part of the package.

Each part (client, pacs, service, trainer) declares its subcommands under the `ceal.commands` entry
point group, so this dispatcher imports none of them directly: the client install never pulls in
torch or onnxruntime, and a subcommand whose extra is missing says which extra to install.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version

EXTRAS = {
    "serve": "service",
    "data": "train",
    "train": "train",
    "export": "train",
    "loop": "train",
    "trainer": "train",
    "simulate": "train",
    "pacs": "pacs",
    "console": "console",
}


def _version() -> str:
    try:
        return version("ceal")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ceal", description="Cost-effective active learning for segmentation.")
    parser.add_argument("--version", action="version", version=f"ceal {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group="ceal.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:
            extra = EXTRAS.get(ep.name, ep.name)
            p = sub.add_parser(ep.name, help=f"(unavailable: pip install 'ceal[{extra}]')")
            p.set_defaults(func=_missing(ep.name, extra, exc))
            continue
        register(sub)
    return parser


def _missing(name: str, extra: str, exc: ImportError) -> object:
    def run(_: argparse.Namespace) -> int:
        print(
            f"ceal {name} needs the '{extra}' extra ({exc}); install it with: pip install 'ceal[{extra}]'",
            file=sys.stderr,
        )
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
