"""The two clients offer the same surface (the public names themselves are pinned in tests/unit/public_api.json)."""

from __future__ import annotations

import ceal.client


def test_both_clients_offer_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in vars(cls) if not n.startswith("_")}

    assert public(ceal.client.Client) == public(ceal.client.AsyncClient)
