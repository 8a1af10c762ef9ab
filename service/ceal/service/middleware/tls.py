"""Server TLS: a certificate and key, and for mutual TLS the CA that signs the clients' certificates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["TLSConfig", "TLSError"]


class TLSError(ValueError):
    """The TLS files are missing or incomplete; the message says which."""


@dataclass(frozen=True)
class TLSConfig:
    cert: Path  # PEM certificate chain of the server
    key: Path  # PEM private key
    client_ca: Path | None = None  # PEM CA: clients must present a certificate it signed (mutual TLS)

    @classmethod
    def from_paths(cls, cert: Path | None, key: Path | None, client_ca: Path | None) -> TLSConfig | None:
        """None when no TLS file is given; an error when only some are."""
        if cert is None and key is None:
            if client_ca is not None:
                raise TLSError("--tls-client-ca needs --tls-cert and --tls-key too")
            return None
        if cert is None or key is None:
            raise TLSError("TLS needs both --tls-cert and --tls-key")
        for path in (cert, key, client_ca):
            if path is not None and not path.is_file():
                raise TLSError(f"TLS file {path} does not exist")
        return cls(cert, key, client_ca)

    def credentials(self) -> grpc.ServerCredentials:
        ca = self.client_ca.read_bytes() if self.client_ca is not None else None
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())], root_certificates=ca, require_client_auth=ca is not None
        )
