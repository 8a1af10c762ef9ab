"""The SDK's public names are exactly the ones we mean to support."""

from __future__ import annotations

import ceal.client

EXPECTED = [
    "AlreadyExists",
    "AsyncClient",
    "CealError",
    "Client",
    "DeadlineExceeded",
    "InvalidArgument",
    "LabelRecord",
    "MessageTooLarge",
    "ModelInfo",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "Prediction",
    "QueryItem",
    "QueryList",
    "ServerError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "pool_image",
]


def test_all_is_pinned() -> None:
    assert ceal.client.__all__ == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in ceal.client.__all__:
        assert getattr(ceal.client, name) is not None


def test_both_clients_offer_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in vars(cls) if not n.startswith("_")}

    assert public(ceal.client.Client) == public(ceal.client.AsyncClient)
