"""Connection flags shared by every client command (`ceal predict`, `ceal pool`, `ceal loop`, `ceal pacs`).

    --server HOST:PORT       default $CEAL_SERVER, else 127.0.0.1:50051
    --token TOKEN            bearer token; default $CEAL_TOKEN
    --token-file FILE        the token read from a file (keeps it out of the process list and shell history)
    --tls                    TLS with the system's root certificates
    --tls-ca FILE            TLS, trusting this PEM CA (a private CA)
    --tls-cert/--tls-key     mutual TLS: this client's PEM certificate and key

`client_options(args)` turns the parsed flags into `Client(**options)` keyword arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ceal.client.channel import DEFAULT_ADDRESS, SERVER_ENV, TOKEN_ENV, resolve_settings

__all__ = ["DefaultsHelpFormatter", "add_connection_arguments", "client_options"]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after each option's help, unless the help already says its default or there is
    nothing to show (None, "", False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, "", False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds --server, --token, --token-file, --tls, --tls-ca, --tls-cert and --tls-key to `parser`."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--server",
        default=None,
        metavar="HOST:PORT",
        help=f"ceal server to call (default: ${SERVER_ENV}, else {DEFAULT_ADDRESS})",
    )
    group.add_argument(
        "--token", default=None, help=f"bearer token for a server run with --tokens (default: ${TOKEN_ENV})"
    )
    group.add_argument("--token-file", type=Path, default=None, help="read the bearer token from this file")
    group.add_argument("--tls", action="store_true", help="use TLS, trusting the system's root certificates")
    group.add_argument("--tls-ca", type=Path, default=None, help="use TLS, trusting this PEM CA certificate")
    group.add_argument("--tls-cert", type=Path, default=None, help="mutual TLS: this client's PEM certificate")
    group.add_argument("--tls-key", type=Path, default=None, help="mutual TLS: the PEM key of --tls-cert")


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """`Client(**client_options(args))`; checks the flags now (a bad address or half a key pair raises
    ValueError with what to change) so a command fails before it does any work."""
    options: dict[str, Any] = {
        "address": args.server,
        "token": args.token,
        "token_file": args.token_file,
        "tls": bool(args.tls),
        "root_certificates": args.tls_ca,
        "client_certificate": args.tls_cert,
        "client_key": args.tls_key,
    }
    settings = resolve_settings(**options)
    return {
        "address": settings.address,
        "token": settings.token,
        "tls": settings.tls,
        "root_certificates": settings.root_certificates,
        "client_certificate": settings.client_certificate,
        "client_key": settings.client_key,
    }
